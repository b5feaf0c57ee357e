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

/* out: nrow x (ncol + 1), accumulated into (the caller zeroes it). Returns 0, or -1 when out of memory. */
int driftline_linear_treeshap(
    const double *X, int64_t nrow, int32_t ncol, int32_t ntrees,
    const int32_t *tree_start,  /* ntrees + 1: first node of each tree */
    const int32_t *tree_points, /* per tree: Gauss points */
    const int32_t *tree_point_start, /* per tree: offset into ys / ws */
    const double *ys, const double *ws,
    const int32_t *parent,      /* per node, local to its tree; -1 for the root */
    const int32_t *ancestor,    /* nearest ancestor node whose incoming edge splits on the same feature, or -1 */
    const int8_t *is_left,      /* the node is its parent's left child */
    const double *b,            /* combined cover fraction of the node's feature down to this node */
    const double *leaf_value,   /* leaves: their value; internal nodes: unused */
    const int32_t *split_feature, /* internal nodes: the feature split on; leaves: -1 */
    const int8_t *decision_type, const double *threshold,
    const int32_t *cat_start, const int32_t *cat_len, const uint32_t *cat_bits,
    int32_t max_nodes, int32_t max_points,
    double *out)
{
    size_t cells = (size_t)max_nodes * (size_t)max_points;
    double *P = malloc(sizeof(double) * cells);
    double *S = malloc(sizeof(double) * cells);
    double *Sub = malloc(sizeof(double) * cells);
    int8_t *a = malloc((size_t)max_nodes);
    int8_t *left = malloc((size_t)max_nodes);
    if (!P || !S || !Sub || !a || !left) {
        free(P); free(S); free(Sub); free(a); free(left);
        return -1;
    }
    for (int64_t r = 0; r < nrow; ++r) {
        const double *x = X + r * ncol;
        double *phi = out + r * (ncol + 1);
        for (int32_t t = 0; t < ntrees; ++t) {
            const int32_t base = tree_start[t], n = tree_start[t + 1] - base, q = tree_points[t];
            if (n < 2) continue; /* a single leaf: only the expected value */
            const double *y = ys + tree_point_start[t], *w = ws + tree_point_start[t];
            const int32_t *par = parent + base, *anc = ancestor + base, *feat = split_feature + base;
            const double *bb = b + base;
            /* Down: the product of the path's factors at each node, and where the row goes. */
            for (int32_t i = 0; i < n; ++i) {
                double *Pi = P + (size_t)i * q;
                if (i == 0) {
                    a[0] = 1;
                    for (int k = 0; k < q; ++k) Pi[k] = 1.0;
                } else {
                    const int32_t p = par[i], u = anc[i];
                    const int8_t edge = is_left[base + i] == left[p];
                    const double *Pp = P + (size_t)p * q;
                    const double bi = bb[i];
                    if (u < 0) {
                        a[i] = edge;
                        if (edge) for (int k = 0; k < q; ++k) Pi[k] = Pp[k] * (1.0 - y[k] + bi * y[k]);
                        else for (int k = 0; k < q; ++k) Pi[k] = Pp[k] * (bi * y[k]);
                    } else { /* the feature again: its factor so far replaced by the combined one */
                        const double bu = bb[u];
                        const int8_t au = a[u];
                        a[i] = au & edge;
                        for (int k = 0; k < q; ++k) {
                            const double old = au ? 1.0 - y[k] + bu * y[k] : bu * y[k];
                            const double now = a[i] ? 1.0 - y[k] + bi * y[k] : bi * y[k];
                            Pi[k] = Pp[k] * now / old;
                        }
                    }
                }
                double *Si = S + (size_t)i * q, *Subi = Sub + (size_t)i * q;
                if (feat[i] >= 0) {
                    const int32_t node = base + i;
                    left[i] = (int8_t)goes_left(
                        fabs(x[feat[i]]) <= ZERO_THRESHOLD ? 0.0 : x[feat[i]], decision_type[node], threshold[node],
                        cat_bits + cat_start[node], cat_len[node]);
                    memset(Si, 0, sizeof(double) * q);
                } else {
                    const double v = leaf_value[base + i];
                    for (int k = 0; k < q; ++k) Si[k] = v * Pi[k];
                }
                memset(Subi, 0, sizeof(double) * q);
            }
            /* Up: children before parents; each edge adds its feature's share. */
            for (int32_t i = n - 1; i > 0; --i) {
                const int32_t p = par[i], u = anc[i];
                const double *Si = S + (size_t)i * q, *Subi = Sub + (size_t)i * q;
                const double bi = bb[i], coef = (double)a[i] - bi;
                if (coef != 0.0) {
                    double acc = 0.0;
                    if (a[i]) for (int k = 0; k < q; ++k) acc += w[k] * (Si[k] - Subi[k]) / (1.0 - y[k] + bi * y[k]);
                    else for (int k = 0; k < q; ++k) acc += w[k] * (Si[k] - Subi[k]) / (bi * y[k]);
                    phi[feat[p]] += coef * acc;
                }
                double *Sp = S + (size_t)p * q;
                if (u >= 0) {
                    double *Subu = Sub + (size_t)u * q;
                    for (int k = 0; k < q; ++k) Subu[k] += Si[k];
                }
                for (int k = 0; k < q; ++k) Sp[k] += Si[k];
            }
        }
    }
    free(P); free(S); free(Sub); free(a); free(left);
    return 0;
}
