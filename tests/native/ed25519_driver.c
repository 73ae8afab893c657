// Driver for natmod/kernels/ed25519.c and sha512.c (tests/test_ed25519_native.py): built for
// the host under AddressSanitizer/UBSan, and freestanding (-DMNV_FREESTANDING) for Cortex-M0
// under qemu-arm, linked as the native module links (armv6m_runtime.c, no libc, no libgcc).
// It includes ed25519.c itself so the field arithmetic can be checked on its own.
// Requests on stdin: u8 command, u32 length, that many bytes; each answered on stdout with
// i32 rc, u32 length, that many bytes (little-endian).
//   V key[32] sig[64] message   -> rc of mnv_ed25519_verify
//   H message                   -> SHA-512 digest
//   M/A/S a[32] b[32]           -> a*b, a+b, a-b mod p, canonical (a, b any 256-bit values)
//   Q/I a[32]                   -> a^2, 1/a mod p
//   R digest[64]                -> digest mod L
//   D point[32]                 -> rc of point_decode, then x and y canonical
#include "ed25519.c"

#ifdef MNV_FREESTANDING
#include "freestanding_io.h"
#else
#include <stdio.h>
#include <stdlib.h>

static void leave(int code) {
    fflush(stdout);
    exit(code);
}

static int read_exact(void *p, size_t n) {
    return fread(p, 1, n, stdin) == n;
}

static void write_all(const void *p, size_t n) {
    if (fwrite(p, 1, n, stdout) != n) {
        leave(3);
    }
}
#endif

#define MAX_REQUEST 4096
static uint8_t request[MAX_REQUEST];

static void answer(int32_t rc, const uint8_t *out, uint32_t len) {
    write_all(&rc, 4);
    write_all(&len, 4);
    if (len) {
        write_all(out, len);
    }
}

static void field_op(uint8_t command, const uint8_t *in) {
    fe a, b, r;
    uint8_t out[32];
    limbs_from_bytes(a, in);
    limbs_from_bytes(b, in + 32);
    switch (command) {
    case 'M': fe_mul(r, a, b); break;
    case 'A': fe_add(r, a, b); break;
    case 'S': fe_sub(r, a, b); break;
    case 'Q': fe_square(r, a); break;
    default: fe_invert(r, a); break;
    }
    fe_freeze(out, r);
    answer(0, out, 32);
}

static void serve(void) {
    uint8_t command;
    uint32_t len;
    while (read_exact(&command, 1)) {
        if (!read_exact(&len, 4) || len > MAX_REQUEST || !read_exact(request, len)) {
            leave(2);
        }
        if (command == 'V' && len >= 96) {
            answer(mnv_ed25519_verify(request, request + 96, len - 96, request + 32), 0, 0);
        } else if (command == 'H') {
            mnv_sha512 h;
            uint8_t digest[64];
            mnv_sha512_init(&h);
            // In uneven pieces, so that blocks straddle the calls.
            for (uint32_t at = 0, step = 1; at < len; at += step, step = step * 2 + 1) {
                mnv_sha512_update(&h, request + at, step < len - at ? step : len - at);
            }
            mnv_sha512_final(&h, digest);
            answer(0, digest, 64);
        } else if ((command == 'M' || command == 'A' || command == 'S') && len == 64) {
            field_op(command, request);
        } else if ((command == 'Q' || command == 'I') && len == 32) {
            field_op(command, request);
        } else if (command == 'R' && len == 64) {
            uint8_t k[32];
            scalar_reduce(k, request);
            answer(0, k, 32);
        } else if (command == 'D' && len == 32) {
            point p;
            uint8_t out[64] = {0};
            const int rc = point_decode(&p, request);
            if (rc == 0) {
                fe_freeze(out, p.x);
                fe_freeze(out + 32, p.y);
            }
            answer(rc, out, 64);
        } else {
            leave(5);
        }
    }
}

#ifdef MNV_FREESTANDING
void _start(void) {
    serve();
    leave(0);
}
#else
int main(void) {
    serve();
    fflush(stdout);
    return 0;
}
#endif
