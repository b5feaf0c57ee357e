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

/* Rows evaluated side by side: every per-point loop runs over them, so it vectorises. */
#define LANES 8

#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
/* AVX2 where the CPU has it, chosen when the library loads; the same .so runs on any x86-64. */
#define VECTOR_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define VECTOR_CLONES
#endif

/* out: nrow x (ncol + 1), accumulated into (the caller zeroes it). Returns 0, or -1 when out of memory.
 * Each tree is walked depth first over a block of LANES rows; the work space is one level per depth. */
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
    const size_t levels = (size_t)max_depth + 1, level = (size_t)max_points * LANES;
    double *P = malloc(sizeof(double) * levels * level);
    double *S = malloc(sizeof(double) * levels * level);
    double *Sub = malloc(sizeof(double) * levels * level);
    double *A = malloc(sizeof(double) * levels * LANES); /* combined a (0 or 1) of each level's node */
    int8_t *go_left = malloc(levels * LANES);
    int32_t *path = malloc(sizeof(int32_t) * levels);
    if (!P || !S || !Sub || !A || !go_left || !path) {
        free(P); free(S); free(Sub); free(A); free(go_left); free(path);
        return -1;
    }
    for (int64_t first = 0; first < nrow; first += LANES) {
        const int m = nrow - first < LANES ? (int)(nrow - first) : LANES;
        const double *xs[LANES];
        for (int r = 0; r < LANES; ++r) xs[r] = X + (first + (r < m ? r : m - 1)) * ncol; /* pad with the last row */
        for (int32_t t = 0; t < ntrees; ++t) {
            const int32_t base = tree_start[t], n = tree_start[t + 1] - base, q = tree_points[t];
            if (n < 2) continue; /* a single leaf: only the expected value */
            const double *y = ys + tree_point_start[t], *w = ws + tree_point_start[t];
            const double *i0 = inv_f0 + tree_table_start[t], *i1 = inv_f1 + tree_table_start[t];
            int top = -1;
            for (int32_t i = 0; i <= n; ++i) {
                const int d = i < n ? depth[base + i] : 1;
                /* Up: every node on the path at this depth or deeper is complete. */
                for (; top >= d && top >= 1; --top) {
                    const int32_t node = base + path[top], u = ancestor[node];
                    const double bi = b[node], *Ad = A + (size_t)top * LANES;
                    double *Sd = S + top * level, *Subd = Sub + top * level, *Sp = S + (top - 1) * level;
                    const double *inv0 = i0 + (size_t)path[top] * q, *inv1 = i1 + (size_t)path[top] * q;
                    double acc[LANES] = {0};
                    if (has_deeper[node])
                        for (int k = 0; k < q; ++k)
                            for (int r = 0; r < LANES; ++r)
                                acc[r] += w[k] * (Sd[k * LANES + r] - Subd[k * LANES + r]) * (Ad[r] != 0.0 ? inv1[k] : inv0[k]);
                    else
                        for (int k = 0; k < q; ++k)
                            for (int r = 0; r < LANES; ++r)
                                acc[r] += w[k] * Sd[k * LANES + r] * (Ad[r] != 0.0 ? inv1[k] : inv0[k]);
                    const int32_t f = split_feature[base + path[top - 1]];
                    for (int r = 0; r < m; ++r) out[(first + r) * (ncol + 1) + f] += (Ad[r] - bi) * acc[r];
                    if (u >= 0) {
                        double *Subu = Sub + (size_t)depth[base + u] * level;
                        for (size_t c = 0; c < (size_t)q * LANES; ++c) Subu[c] += Sd[c];
                    }
                    for (size_t c = 0; c < (size_t)q * LANES; ++c) Sp[c] += Sd[c];
                }
                if (i == n) break;
                /* Down: node i at depth d, below the path's node at d - 1. */
                const int32_t node = base + i;
                double *Pd = P + d * level, *Sd = S + d * level, *Ad = A + (size_t)d * LANES;
                path[d] = i;
                top = d;
                if (d == 0) {
                    for (int r = 0; r < LANES; ++r) Ad[r] = 1.0;
                    for (size_t c = 0; c < (size_t)q * LANES; ++c) Pd[c] = 1.0;
                } else {
                    const int32_t u = ancestor[node];
                    const double bi = b[node], *Pp = P + (d - 1) * level;
                    const int8_t *left = go_left + (size_t)(d - 1) * LANES;
                    if (u < 0) {
                        for (int r = 0; r < LANES; ++r) Ad[r] = left[r] == is_left[node] ? 1.0 : 0.0;
                        for (int k = 0; k < q; ++k) {
                            const double f1 = 1.0 - y[k] + bi * y[k], f0 = bi * y[k];
                            for (int r = 0; r < LANES; ++r) Pd[k * LANES + r] = Pp[k * LANES + r] * (Ad[r] != 0.0 ? f1 : f0);
                        }
                    } else { /* the feature again: its factor so far replaced by the combined one */
                        const double *Au = A + (size_t)depth[base + u] * LANES;
                        for (int r = 0; r < LANES; ++r) Ad[r] = left[r] == is_left[node] ? Au[r] : 0.0;
                        for (int k = 0; k < q; ++k) {
                            const double f1 = 1.0 - y[k] + bi * y[k], f0 = bi * y[k];
                            const double u1 = i1[(size_t)u * q + k], u0 = i0[(size_t)u * q + k];
                            for (int r = 0; r < LANES; ++r)
                                Pd[k * LANES + r] = Pp[k * LANES + r] * (Ad[r] != 0.0 ? f1 : f0) * (Au[r] != 0.0 ? u1 : u0);
                        }
                    }
                }
                if (split_feature[node] >= 0) {
                    const int32_t f = split_feature[node];
                    for (int r = 0; r < LANES; ++r) {
                        const double x = xs[r][f];
                        go_left[(size_t)d * LANES + r] = (int8_t)goes_left(
                            fabs(x) <= ZERO_THRESHOLD ? 0.0 : x, decision_type[node], threshold[node],
                            cat_bits + cat_start[node], cat_len[node]);
                    }
                    memset(Sd, 0, sizeof(double) * q * LANES);
                } else {
                    const double v = leaf_value[node];
                    for (size_t c = 0; c < (size_t)q * LANES; ++c) Sd[c] = v * Pd[c];
                }
                if (has_deeper[node]) memset(Sub + d * level, 0, sizeof(double) * q * LANES);
            }
        }
    }
    free(P); free(S); free(Sub); free(A); free(go_left); free(path);
    return 0;
}
