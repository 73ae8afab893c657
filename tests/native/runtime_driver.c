// Checks natmod/armv6m_runtime.c's __aeabi_lmul and __aeabi_idiv against the host's own
// 64-bit multiply and division on edge and pseudo-random operands. Prints "ok N" or the
// first mismatch.
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>

int64_t __aeabi_lmul(int64_t a, int64_t b);
int __aeabi_idiv(int n, int d);

static uint64_t state = 0x9E3779B97F4A7C15ull;

static uint64_t next(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
}

int main(void) {
    static const int64_t edges[] = {0, 1, -1, 2, -2, INT32_MAX, INT32_MIN, 0xFFFFFFFFll,
                                    INT64_MAX, INT64_MIN, 1ll << 31, 1ll << 62, -(1ll << 40)};
    const int n_edges = sizeof(edges) / sizeof(edges[0]);
    long checks = 0;
    for (int i = 0; i < 200000; i++) {
        int64_t a = i < n_edges * n_edges ? edges[i / n_edges] : (int64_t)next();
        int64_t b = i < n_edges * n_edges ? edges[i % n_edges] : (int64_t)next();
        if (i % 3 == 1) {  // the kernels' case: sign-extended 32-bit operands
            a = (int32_t)a;
            b = (int32_t)b;
        }
        int64_t want = (int64_t)((uint64_t)a * (uint64_t)b);
        if (__aeabi_lmul(a, b) != want) {
            printf("lmul %" PRId64 " %" PRId64 "\n", a, b);
            return 1;
        }
        int32_t n = (int32_t)a, d = (int32_t)b;
        if (d == 0 || (n == INT32_MIN && d == -1)) {
            continue;
        }
        if (__aeabi_idiv(n, d) != n / d) {
            printf("idiv %" PRId32 " %" PRId32 "\n", n, d);
            return 1;
        }
        checks++;
    }
    printf("ok %ld\n", checks);
    return 0;
}
