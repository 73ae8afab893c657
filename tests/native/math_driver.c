// Host driver for the math kernels (natmod/kernels/mnv_math.h) under AddressSanitizer/UBSan,
// with the protocol of tests/native/driver.c:
//   case:   u32 op, u32 n_args, i32 args[n_args], u32 n_bufs, then per buffer
//           i32 nbytes and its bytes, then u32 out_nbytes
//   answer: i32 rc, then the out buffer's bytes
// op: 0 lookup, 1 binary, 2 mean, 3 quantize_int16. Buffers are malloc'ed at their exact
// size; the out buffer starts filled with 0x5A so a refused call can be seen to write nothing.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnv_math.h"

static int read_exact(void *p, size_t n) {
    return fread(p, 1, n, stdin) == n;
}

int main(void) {
    uint32_t op;
    while (read_exact(&op, 4)) {
        uint32_t n_args, n_bufs, out_len;
        if (!read_exact(&n_args, 4)) {
            return 2;
        }
        int32_t *args = malloc(n_args ? n_args * 4 : 1);
        if (!args || !read_exact(args, n_args * 4) || !read_exact(&n_bufs, 4) || n_bufs > 2) {
            return 2;
        }
        void *buf[2] = {0};
        int32_t len[2] = {0};
        for (uint32_t i = 0; i < n_bufs; i++) {
            if (!read_exact(&len[i], 4) || len[i] < 0) {
                return 2;
            }
            buf[i] = malloc(len[i] ? (size_t)len[i] : 1);
            if (!buf[i] || !read_exact(buf[i], (size_t)len[i])) {
                return 2;
            }
        }
        if (!read_exact(&out_len, 4)) {
            return 2;
        }
        int8_t *out = malloc(out_len ? out_len : 1);
        memset(out, 0x5A, out_len);
        int32_t rc = -100;
        if (op == 0 && n_bufs == 2) {
            rc = mnv_lookup(buf[0], len[0], buf[1], len[1], out, out_len, args, n_args);
        } else if (op == 1 && n_bufs == 2) {
            rc = mnv_binary(buf[0], len[0], buf[1], len[1], out, out_len, args, n_args);
        } else if (op == 2 && n_bufs == 1) {
            rc = mnv_mean(buf[0], len[0], out, out_len, args, n_args);
        } else if (op == 3 && n_bufs == 1) {
            // An odd byte count leaves its last byte outside any element, as the binding.
            rc = mnv_quantize_int16(buf[0], (size_t)len[0] / 2, out, out_len, args, n_args);
        }
        fwrite(&rc, 4, 1, stdout);
        fwrite(out, 1, out_len, stdout);
        fflush(stdout);
        free(out);
        for (uint32_t i = 0; i < n_bufs; i++) {
            free(buf[i]);
        }
        free(args);
    }
    return 0;
}
