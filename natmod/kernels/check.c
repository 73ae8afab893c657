// Argument checks shared by the kernels: after these pass, every index a kernel computes
// stays inside its buffers and every coordinate fits an int32.
#include "mnv_fixed.h"

#define MNV_COORD_LIMIT ((int64_t)MNV_MAX_COORD + 1)

// All dims >= 1 and their product equals `expected` (no overflow: we stop past it).
int mnv_product_is(size_t expected, const int32_t *dims, int n) {
    uint64_t product = 1;
    for (int i = 0; i < n; i++) {
        if (dims[i] < 1) {
            return 0;
        }
        product *= (uint32_t)dims[i];
        if (product > expected) {
            return 0;
        }
    }
    return product == expected;
}

int mnv_shifts_ok(const int32_t *shift, size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (shift[i] < MNV_MIN_SHIFT || shift[i] > MNV_MAX_SHIFT) {
            return 0;
        }
    }
    return 1;
}

int mnv_act_ok(int32_t lo, int32_t hi) {
    return -128 <= lo && lo <= hi && hi <= 127;
}

// One spatial axis of a window op: every origin `o * stride - pad` and every tap offset
// `k * dil` stays well inside int32, so per-pixel arithmetic cannot overflow.
int mnv_window_ok(int32_t in, int32_t out, int32_t k, int32_t stride, int32_t dil,
    int32_t pad) {
    if (in < 1 || out < 1 || k < 1 || stride < 1 || dil < 1) {
        return 0;
    }
    if (in >= MNV_COORD_LIMIT || stride >= MNV_COORD_LIMIT || dil >= MNV_COORD_LIMIT ||
        pad >= MNV_COORD_LIMIT || pad <= -MNV_COORD_LIMIT) {
        return 0;
    }
    int64_t reach = (int64_t)(out - 1) * stride + (int64_t)(k - 1) * dil;
    return reach < MNV_COORD_LIMIT;
}

// Taps k in [*k0, *k1) are those with 0 <= origin + k * dil < in.
void mnv_tap_range(int32_t origin, int32_t k, int32_t dil, int32_t in, int32_t *k0,
    int32_t *k1) {
    int32_t first = 0, end = k;
    if (origin < 0) {
        first = dil == 1 ? -origin : (-origin + dil - 1) / dil;
    }
    if (origin >= in) {
        end = 0;
    } else {
        int32_t room = dil == 1 ? in - origin : (in - origin + dil - 1) / dil;
        if (room < end) {
            end = room;
        }
    }
    if (first > end) {
        first = end;
    }
    *k0 = first;
    *k1 = end;
}
