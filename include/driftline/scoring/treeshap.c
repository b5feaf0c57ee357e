/* Exact Linear TreeSHAP (Yu, Ma, Wang 2022, "Linear TreeShap") for LightGBM trees: the values
 * LightGBM's pred_contrib (TreeSHAP, O(leaves x depth^2) per tree) returns, in O(leaves x depth).
 *
 * For a leaf l of value v whose path splits on the features F, with a_i = 1 when the row follows
 * every edge of the path that splits on i (else 0) and b_i = the product of those edges' cover
 * fractions (count(child) / count(parent)), feature j in F gets
 *     phi_j(l) = (a_j - b_j) * integral_0^1 v * prod_{i in F, i != j} (a_i (1 - y) + b_i y) dy,
 * a polynomial of degree < depth, so Gauss-Legendre with ceil(depth / 2) points is exact. Each
 * edge e (feature j) sums that integral over the leaves below it whose deepest j edge is e: the
 * leaves' products summed bottom-up, minus the subtrees below a deeper j edge, divided by e's
 * factor (a_j (1 - y) + b_j y, never 0 at the interior Gauss points).
 *
 * Nodes of a tree are in pre-order (0 = root); the arrays are built by driftline/scoring/treeshap.py
 * from the model text. The expected value (last column) is added by the caller.
 */
#define _POSIX_C_SOURCE 200112L /* posix_memalign */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* LightGBM's kZeroThreshold (a float constant), used both when a dense row is read (smaller
 * magnitudes become 0.0) and for missing_type Zero. */
static const double ZERO_THRESHOLD = (double)1e-35f;


static int find_in_bitset(const uint32_t *bits, int32_t n, int pos) {
    int i = pos / 32;
    if (i >= n) return 0;
    return (bits[i] >> (pos % 32)) & 1;
}

/* 1 when the row goes left at this split: LightGBM's Tree::Decision, line for line. */
static int goes_left(double x, int8_t decision_type, double threshold, const uint32_t *bits, int32_t nbits) {
    int missing_type = (decision_type >> 2) & 3;
    if (decision_type & 1) { /* categorical */
        /* The same conversion as LightGBM's static_cast<int> on this platform (NaN, +-inf and
         * values beyond int go right on x86-64 there and here). */
        int cat = (int)x;
        if (cat < 0) return 0;
        if (isnan(x)) {
            if (missing_type == 2) return 0;
            cat = 0;
        }
        return find_in_bitset(bits, nbits, cat);
    }
    if (isnan(x) && missing_type != 2) x = 0.0;
    if ((missing_type == 1 && x >= -ZERO_THRESHOLD && x <= ZERO_THRESHOLD) || (missing_type == 2 && isnan(x)))
        return (decision_type & 2) != 0;
    return x <= threshold;
}

/* Rows evaluated side by side, as NV vectors of VW doubles: every per-point step is a fixed run of
 * NV vector operations, which the compiler keeps in registers. Written with explicit vector types
 * because the auto-vectoriser's result swung 2x with the block size (measured: 8 rows versioned
 * loops and spilled, 32 rows did not). 32 rows amortise the per-node work (branches, the split
 * test, the scalar per-node values) over more rows. */
#define VW 4
#define NV 8
#define LANES (VW * NV)
typedef double vdouble __attribute__((vector_size(VW * sizeof(double))));
typedef int64_t vmask __attribute__((vector_size(VW * sizeof(double)))); /* all ones or all zeros per lane */

/* yes where the mask is set, else no: a bitwise blend, so the values are exactly one or the other.
 * (Macros rather than functions: a function passing 32-byte vectors draws GCC's ABI note in the
 * baseline clone.) */
#define pick(m, yes, no) ((vdouble)(((vmask)(yes) & (m)) | ((vmask)(no) & ~(m))))
#define splat(x) ((vdouble){(x), (x), (x), (x)})

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
/* AVX2 where the CPU has it, chosen when the library loads; the same .so runs on any x86-64. */
#define VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define VECTOR_CLONES
#endif

/* The block's left/right decision at one split, one mask per vector (set: the row goes left). */
static inline void split_masks(vmask *left, const double *xt, int8_t decision_type, double threshold,
                               const uint32_t *bits, int32_t nbits) {
    const int missing_type = (decision_type >> 2) & 3, default_left = (decision_type & 2) != 0;
    int64_t lanes[LANES];
    if (decision_type & 1) {
        for (int r = 0; r < LANES; ++r) lanes[r] = -(int64_t)goes_left(xt[r], decision_type, threshold, bits, nbits);
    } else if (missing_type == 0) { /* NaN reads as 0.0 */
        for (int r = 0; r < LANES; ++r) lanes[r] = -(int64_t)((isnan(xt[r]) ? 0.0 : xt[r]) <= threshold);
    } else if (missing_type == 2) { /* NaN goes the default way */
        for (int r = 0; r < LANES; ++r) lanes[r] = -(int64_t)(isnan(xt[r]) ? default_left : xt[r] <= threshold);
    } else { /* missing_type 1: zero (and NaN, read as zero) goes the default way */
        for (int r = 0; r < LANES; ++r) {
            const double x = isnan(xt[r]) ? 0.0 : xt[r];
            lanes[r] = -(int64_t)(x >= -ZERO_THRESHOLD && x <= ZERO_THRESHOLD ? default_left : x <= threshold);
        }
    }
    memcpy(left, lanes, sizeof lanes);
}

/* out: nrow x (ncol + 1), accumulated into (the caller zeroes it). Returns 0, or -1 when out of memory.
 *
 * Each tree is walked depth first over a block of LANES rows; the work space is one level per depth:
 * P (the path's product at each Gauss point), S (the leaves' products summed bottom-up), Sub (what
 * deeper edges on the same feature take back), A (the combined a of the level's node, as a mask).
 * Only internal nodes are pushed on the path. A leaf is finished where it is met, from its parent's
 * level, which saves its own level's product, sum and reciprocal (half the nodes are leaves):
 *   - its S is v P_parent f (f: its factor at the Gauss points for the row's a), added to the parent's;
 *   - its edge's integral sum_k w_k S_k / f_k is v sum_k w_k P_parent,k when the leaf's feature was
 *     not split on above (W: computed once per parent, shared by its two children), or, when it was
 *     (ancestor u), v sum_k w_k P_parent,k / f_u,k: the combined factor replaced u's, so both the
 *     leaf's and u's own factors are divided out.
 * The block's contributions gather in phi (feature x lanes) and are added to out once per block. */
VECTOR_CLONES
int driftline_linear_treeshap(
    const double *X, int64_t nrow, int32_t ncol, int32_t ntrees,
    const int32_t *tree_start,  /* ntrees + 1: first node of each tree */
    const int32_t *tree_points, /* per tree: Gauss points */
    const int32_t *tree_point_start, /* per tree: offset into ys / ws */
    const double *ys, const double *ws,
    const int32_t *depth,       /* per node: edges from the root */
    const int32_t *ancestor,    /* nearest ancestor node whose incoming edge splits on the same feature, or -1 */
    const int8_t *is_left,      /* the node is its parent's left child */
    const double *b,            /* combined cover fraction of the node's feature down to this node */
    const double *leaf_value,   /* leaves: their value; internal nodes: unused */
    const int32_t *split_feature, /* internal nodes: the feature split on; leaves: -1 */
    const int8_t *decision_type, const double *threshold,
    const int32_t *cat_start, const int32_t *cat_len, const uint32_t *cat_bits,
    const int32_t *tree_table_start, /* per tree: offset into inv_f0 / inv_f1 (node x point) */
    const double *inv_f0, const double *inv_f1, /* 1 / (b y) and 1 / (1 - y + b y) per node and point */
    const int8_t *has_deeper,   /* a node some deeper edge on the same feature names as its ancestor */
    int32_t max_depth, int32_t max_points,
    double *out)
{
    const size_t levels = (size_t)max_depth + 1, level = (size_t)max_points * NV; /* vectors per level */
    const size_t columns = (size_t)ncol > 0 ? (size_t)ncol : 1;
    /* One allocation, vector aligned: P, S, Sub (levels x points x NV), A, left, W (levels x NV),
     * the block's rows by column (xt) and its contributions (phi). */
    const size_t vectors = 3 * levels * level + 3 * levels * NV + 2 * columns * NV;
    void *space = NULL;
    int8_t *w_ready = malloc(levels);
    int32_t *path = malloc(sizeof(int32_t) * levels);
    if (posix_memalign(&space, 64, sizeof(vdouble) * vectors) != 0) space = NULL;
    if (!space || !w_ready || !path) {
        free(space); free(w_ready); free(path);
        return -1;
    }
    vdouble *P = space, *S = P + levels * level, *Sub = S + levels * level;
    vmask *A = (vmask *)(Sub + levels * level), *left = A + levels * NV;
    vdouble *W = (vdouble *)(left + levels * NV), *phi_v = W + levels * NV;
    double *xt = (double *)(phi_v + columns * NV), *phi = (double *)phi_v;
    const vdouble zero = splat(0.0), one = splat(1.0);
    const vmask all = (vmask)(one == one); /* every lane set */

    for (int64_t first = 0; first < nrow; first += LANES) {
        const int m = nrow - first < LANES ? (int)(nrow - first) : LANES;
        /* The block's rows by column, padded with the last row, magnitudes below LightGBM's zero
         * threshold read as 0.0 (as LightGBM reads a dense row). */
        for (int r = 0; r < LANES; ++r) {
            const double *row = X + (first + (r < m ? r : m - 1)) * ncol;
            for (int32_t f = 0; f < ncol; ++f) xt[(size_t)f * LANES + r] = fabs(row[f]) <= ZERO_THRESHOLD ? 0.0 : row[f];
        }
        memset(phi, 0, sizeof(vdouble) * columns * NV);
        for (int32_t t = 0; t < ntrees; ++t) {
            const int32_t base = tree_start[t], n = tree_start[t + 1] - base, q = tree_points[t];
            if (n < 2) continue; /* a single leaf: only the expected value */
            const double *y = ys + tree_point_start[t], *w = ws + tree_point_start[t];
            const double *i0 = inv_f0 + tree_table_start[t], *i1 = inv_f1 + tree_table_start[t];
            int top = -1;
            for (int32_t i = 0; i <= n; ++i) {
                const int d = i < n ? depth[base + i] : 1;
                /* Up: every internal node on the path at this depth or deeper is complete. */
                for (; top >= d && top >= 1; --top) {
                    const int32_t node = base + path[top], u = ancestor[node];
                    const vmask *Ad = A + (size_t)top * NV;
                    const vdouble *Sd = S + top * level, *Subd = Sub + top * level;
                    const double *inv0 = i0 + (size_t)path[top] * q, *inv1 = i1 + (size_t)path[top] * q;
                    vdouble *Sp = S + (top - 1) * level;
                    vdouble *phi_f = phi_v + (size_t)split_feature[base + path[top - 1]] * NV;
                    const vdouble bi = splat(b[node]);
                    for (int v = 0; v < NV; ++v) {
                        vdouble acc = zero;
                        if (has_deeper[node])
                            for (int k = 0; k < q; ++k)
                                acc += splat(w[k]) * (Sd[k * NV + v] - Subd[k * NV + v]) * pick(Ad[v], splat(inv1[k]), splat(inv0[k]));
                        else
                            for (int k = 0; k < q; ++k)
                                acc += splat(w[k]) * Sd[k * NV + v] * pick(Ad[v], splat(inv1[k]), splat(inv0[k]));
                        phi_f[v] += (pick(Ad[v], one, zero) - bi) * acc;
                    }
                    if (u >= 0) {
                        vdouble *Subu = Sub + (size_t)depth[base + u] * level;
                        for (int c = 0; c < q * NV; ++c) Subu[c] += Sd[c];
                    }
                    for (int c = 0; c < q * NV; ++c) Sp[c] += Sd[c];
                }
                if (i == n) break;
                /* Down: node i at depth d, below the path's node at d - 1. */
                const int32_t node = base + i, u = ancestor[node];
                if (d == 0) { /* the root: every row follows it */
                    for (int v = 0; v < NV; ++v) A[v] = all;
                    for (int c = 0; c < q * NV; ++c) P[c] = one;
                } else {
                    const vmask *Lp = left + (size_t)(d - 1) * NV, *Au = u >= 0 ? A + (size_t)depth[base + u] * NV : NULL;
                    const vdouble *Pp = P + (d - 1) * level;
                    const double bs = b[node];
                    /* The combined a: the row follows this edge (and, for a feature split on again, u's). */
                    vmask a[NV];
                    for (int v = 0; v < NV; ++v) a[v] = (is_left[node] ? Lp[v] : ~Lp[v]) & (Au ? Au[v] : all);
                    if (split_feature[node] < 0) {
                        /* A leaf: finished here, into its parent's level (see above). */
                        const double v_leaf = leaf_value[node];
                        const vdouble bi = splat(bs), value = splat(v_leaf);
                        vdouble *Sp = S + (d - 1) * level;
                        vdouble *phi_f = phi_v + (size_t)split_feature[base + path[d - 1]] * NV;
                        if (u < 0) {
                            vdouble *Wp = W + (size_t)(d - 1) * NV;
                            if (!w_ready[d - 1]) {
                                for (int v = 0; v < NV; ++v) {
                                    vdouble sum = zero;
                                    for (int k = 0; k < q; ++k) sum += splat(w[k]) * Pp[k * NV + v];
                                    Wp[v] = sum;
                                }
                                w_ready[d - 1] = 1;
                            }
                            for (int k = 0; k < q; ++k) {
                                const vdouble f1 = splat(v_leaf * (1.0 - y[k] + bs * y[k])), f0 = splat(v_leaf * (bs * y[k]));
                                for (int v = 0; v < NV; ++v) Sp[k * NV + v] += Pp[k * NV + v] * pick(a[v], f1, f0);
                            }
                            for (int v = 0; v < NV; ++v) phi_f[v] += (pick(a[v], one, zero) - bi) * (value * Wp[v]);
                        } else { /* the feature again: u's factor divided out, the combined one in */
                            vdouble *Subu = Sub + (size_t)depth[base + u] * level;
                            vdouble acc[NV];
                            for (int v = 0; v < NV; ++v) acc[v] = zero;
                            for (int k = 0; k < q; ++k) {
                                const vdouble f1 = splat(1.0 - y[k] + bs * y[k]), f0 = splat(bs * y[k]);
                                const vdouble u1 = splat(i1[(size_t)u * q + k]), u0 = splat(i0[(size_t)u * q + k]);
                                for (int v = 0; v < NV; ++v) {
                                    const vdouble T = value * Pp[k * NV + v] * pick(Au[v], u1, u0);
                                    const vdouble s = T * pick(a[v], f1, f0);
                                    acc[v] += splat(w[k]) * T;
                                    Sp[k * NV + v] += s;
                                    Subu[k * NV + v] += s;
                                }
                            }
                            for (int v = 0; v < NV; ++v) phi_f[v] += (pick(a[v], one, zero) - bi) * acc[v];
                        }
                        continue;
                    }
                    vdouble *Pd = P + d * level;
                    for (int v = 0; v < NV; ++v) A[(size_t)d * NV + v] = a[v];
                    if (u < 0) {
                        for (int k = 0; k < q; ++k) {
                            const vdouble f1 = splat(1.0 - y[k] + bs * y[k]), f0 = splat(bs * y[k]);
                            for (int v = 0; v < NV; ++v) Pd[k * NV + v] = Pp[k * NV + v] * pick(a[v], f1, f0);
                        }
                    } else { /* the feature again: its factor so far replaced by the combined one */
                        for (int k = 0; k < q; ++k) {
                            const vdouble f1 = splat(1.0 - y[k] + bs * y[k]), f0 = splat(bs * y[k]);
                            const vdouble u1 = splat(i1[(size_t)u * q + k]), u0 = splat(i0[(size_t)u * q + k]);
                            for (int v = 0; v < NV; ++v)
                                Pd[k * NV + v] = Pp[k * NV + v] * pick(a[v], f1, f0) * pick(Au[v], u1, u0);
                        }
                    }
                }
                /* An internal node: pushed on the path. */
                path[d] = i;
                top = d;
                w_ready[d] = 0;
                split_masks(left + (size_t)d * NV, xt + (size_t)split_feature[node] * LANES, decision_type[node],
                            threshold[node], cat_bits + cat_start[node], cat_len[node]);
                memset(S + d * level, 0, sizeof(vdouble) * q * NV);
                if (has_deeper[node]) memset(Sub + d * level, 0, sizeof(vdouble) * q * NV);
            }
        }
        for (int r = 0; r < m; ++r)
            for (int32_t f = 0; f < ncol; ++f) out[(first + r) * (ncol + 1) + f] += phi[(size_t)f * LANES + r];
    }
    free(space); free(w_ready); free(path);
    return 0;
}
