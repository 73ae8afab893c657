// The two compiler run-time helpers the kernels need on Cortex-M0/M0+ (armv6m has no 64-bit
// multiply and no divide instruction). A native module links no libgcc, so they are here,
// in plain C using only 32-bit operations (no recursion into themselves); the host tests
// check them against native arithmetic (tests/native/runtime_driver.c).
#include <stdint.h>

int64_t __aeabi_lmul(int64_t a, int64_t b);
int __aeabi_idiv(int n, int d);

// 32 x 32 -> 64 unsigned, from 16-bit halves.
static uint64_t mul_u32_wide(uint32_t a, uint32_t b) {
    const uint32_t a0 = a & 0xffffu, a1 = a >> 16, b0 = b & 0xffffu, b1 = b >> 16;
    const uint32_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    const uint32_t mid = (p00 >> 16) + (p01 & 0xffffu) + (p10 & 0xffffu);
    const uint32_t lo = (p00 & 0xffffu) | (mid << 16);
    const uint32_t hi = p11 + (p01 >> 16) + (p10 >> 16) + (mid >> 16);
    return ((uint64_t)hi << 32) | lo;
}

// The low 64 bits of a * b (the same for signed and unsigned operands).
int64_t __aeabi_lmul(int64_t a, int64_t b) {
    const uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
    const uint32_t al = (uint32_t)ua, ah = (uint32_t)(ua >> 32);
    const uint32_t bl = (uint32_t)ub, bh = (uint32_t)(ub >> 32);
    uint64_t product = mul_u32_wide(al, bl);
    product += (uint64_t)(ah * bl + al * bh) << 32;
    return (int64_t)product;
}

// Signed division truncating toward zero, by shift and subtract; d != 0.
int __aeabi_idiv(int n, int d) {
    const uint32_t un = n < 0 ? 0u - (uint32_t)n : (uint32_t)n;
    const uint32_t ud = d < 0 ? 0u - (uint32_t)d : (uint32_t)d;
    uint32_t q = 0, r = 0;
    for (int i = 31; i >= 0; i--) {
        r = (r << 1) | ((un >> i) & 1u);
        if (r >= ud) {
            r -= ud;
            q |= 1u << i;
        }
    }
    return (n < 0) != (d < 0) ? (int)(0u - q) : (int)q;
}
