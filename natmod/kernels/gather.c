// GATHER and CONCATENATION: data movement, no arithmetic on values (docs/capsule-format.md).
#include "mnv_kernels.h"

// A table entry meaning "pad here". Other entries are >= 0 and the four tables' largest
// entries sum to less than the input size (< 2**29), so an element's offset sum is negative
// exactly when it is padding, and four pad marks still fit in an int32.
#define PAD_MARK (-0x20000000)
#define MAX_GATHER_INPUT 0x20000000

enum { G_IN_SIZE, G_D0, G_D1, G_D2, G_D3, G_PAD, G_N_ARGS };

// Every table entry is a pad mark or inside the input, and no sum of one entry per table
// reaches past it.
static int table_ok(const int32_t *table, const int32_t *dims, int32_t in_size) {
    int64_t reach = 0;
    size_t pos = 0;
    for (int d = 0; d < 4; d++) {
        int32_t top = 0;
        for (int32_t i = 0; i < dims[d]; i++) {
            const int32_t v = table[pos + (size_t)i];
            if (v == PAD_MARK) {
                continue;
            }
            if (v < 0 || v >= in_size) {
                return 0;
            }
            top = v > top ? v : top;
        }
        reach += top;
        pos += (size_t)dims[d];
    }
    return reach < in_size;
}

int mnv_gather(const int8_t *in, size_t in_len, const int32_t *table, size_t table_len,
    int8_t *out, size_t out_len, const int32_t *args, size_t n_args) {
    if (n_args != G_N_ARGS) {
        return MNV_EARGS;
    }
    const int32_t in_size = args[G_IN_SIZE];
    if (in_size < 1 || in_size >= MAX_GATHER_INPUT || (size_t)in_size != in_len) {
        return MNV_ESHAPE;
    }
    const int32_t *dims = args + G_D0;
    uint64_t count = 1, entries = 0;
    for (int d = 0; d < 4; d++) {
        if (dims[d] < 1 || dims[d] >= MAX_GATHER_INPUT) {
            return MNV_ESHAPE;
        }
        count *= (uint64_t)dims[d];
        entries += (uint64_t)dims[d];
        if (count > out_len) {
            return MNV_ESHAPE;
        }
    }
    if (count != out_len || entries != table_len) {
        return MNV_ESHAPE;
    }
    if (args[G_PAD] < -128 || args[G_PAD] > 127 || !table_ok(table, dims, in_size)) {
        return MNV_ERANGE;
    }
    const int8_t pad = (int8_t)args[G_PAD];
    const int32_t *t0 = table, *t1 = t0 + dims[0], *t2 = t1 + dims[1], *t3 = t2 + dims[2];
    int8_t *o = out;
    for (int32_t i0 = 0; i0 < dims[0]; i0++) {
        const int32_t a0 = t0[i0];
        for (int32_t i1 = 0; i1 < dims[1]; i1++) {
            const int32_t a1 = a0 + t1[i1];
            for (int32_t i2 = 0; i2 < dims[2]; i2++) {
                const int32_t a2 = a1 + t2[i2];
                for (int32_t i3 = 0; i3 < dims[3]; i3++) {
                    const int32_t a = a2 + t3[i3];
                    *o++ = a >= 0 ? in[a] : pad;
                }
            }
        }
    }
    return MNV_OK;
}

int mnv_concatenation_part(const int8_t *in, size_t in_len, int8_t *out, size_t out_len,
    const int32_t *args, size_t n_args, size_t k) {
    // args: outer, then the inner size of every input; this copies input k (with out NULL it
    // only checks, so a caller can check every input before writing anything).
    if (n_args < 2 || k >= n_args - 1) {
        return MNV_EARGS;
    }
    uint64_t total = 0, offset = 0;
    for (size_t j = 0; j < n_args; j++) {
        if (args[j] < 1) {
            return MNV_ESHAPE;
        }
        if (j >= 1) {
            offset += j <= k ? (uint64_t)args[j] : 0;
            total += (uint64_t)args[j];
        }
    }
    const uint64_t outer = (uint64_t)args[0], inner = (uint64_t)args[k + 1];
    if (outer * total != out_len || outer * inner != in_len) {
        return MNV_ESHAPE;
    }
    if (out == NULL) {
        return MNV_OK;
    }
    for (uint64_t row = 0; row < outer; row++) {
        const int8_t *src = in + row * inner;
        int8_t *dst = out + row * total + offset;
        for (uint64_t j = 0; j < inner; j++) {
            dst[j] = src[j];
        }
    }
    return MNV_OK;
}

int mnv_concatenation(const int8_t *const *inputs, const size_t *in_lens, size_t count,
    int8_t *out, size_t out_len, const int32_t *args, size_t n_args) {
    if (count + 1 != n_args) {
        return MNV_EARGS;
    }
    for (size_t k = 0; k < count; k++) {
        int rc = mnv_concatenation_part(inputs[k], in_lens[k], NULL, out_len, args, n_args, k);
        if (rc != MNV_OK) {
            return rc;
        }
    }
    for (size_t k = 0; k < count; k++) {
        mnv_concatenation_part(inputs[k], in_lens[k], out, out_len, args, n_args, k);
    }
    return MNV_OK;
}
