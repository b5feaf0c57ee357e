/* The float64 model matrix (row-major, rows x columns) from Arrow columns, in one pass.
 *
 * Column c is either float64 values (kind 0) or int32 category codes (kind 1, pyarrow's index_in:
 * the position in the model's training categories), each with Arrow's validity bitmap (NULL: no
 * nulls) and the array's offset. A null becomes NaN; a value is copied as it is (NaN, +-inf and -0
 * included) and a code converted to double exactly: the matrix LightGBM builds from a pandas frame
 * with the model's categoricals. `selection` (NULL: every row) lists the source rows to take, so
 * the rows that failed validation are skipped without copying the chunk first.
 *
 * Rows are written in blocks so a block of the output stays in cache while every column is
 * written into it. Built by driftline/scoring/native_build.py; called by native_matrix.py.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#define BLOCK_ROWS 512

static inline int is_valid(const uint8_t *validity, int64_t i) {
    return validity == NULL || ((validity[i >> 3] >> (i & 7)) & 1);
}

int driftline_fill_matrix(int64_t rows, int64_t columns, const int64_t *selection, const int8_t *kinds,
                          const void *const *values, const uint8_t *const *validity, const int64_t *offsets,
                          double *out) {
    for (int64_t first = 0; first < rows; first += BLOCK_ROWS) {
        int64_t last = first + BLOCK_ROWS < rows ? first + BLOCK_ROWS : rows;
        for (int64_t c = 0; c < columns; c++) {
            const uint8_t *valid = validity[c];
            int64_t offset = offsets[c];
            double *cell = out + first * columns + c;
            if (kinds[c] == 0) {
                const double *data = (const double *)values[c];
                for (int64_t r = first; r < last; r++, cell += columns) {
                    int64_t i = (selection ? selection[r] : r) + offset;
                    *cell = is_valid(valid, i) ? data[i] : NAN;
                }
            } else if (kinds[c] == 1) {
                const int32_t *data = (const int32_t *)values[c];
                for (int64_t r = first; r < last; r++, cell += columns) {
                    int64_t i = (selection ? selection[r] : r) + offset;
                    *cell = is_valid(valid, i) ? (double)data[i] : NAN;
                }
            } else {
                return -1;
            }
        }
    }
    return 0;
}
