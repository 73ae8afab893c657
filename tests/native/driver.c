// Host driver for the C kernels under AddressSanitizer/UBSan (tests/test_native_kernels.py).
// Reads cases from stdin and answers each on stdout, all little-endian:
//   case:   u32 op, u32 n_args, i32 args[n_args], u32 n_bufs, then per buffer
//           i32 nbytes (-1: absent) and its bytes, then u32 out_nbytes
//   answer: i32 rc, then the out buffer's bytes
// Every buffer is malloc'ed at its exact size, so a one-byte overrun is reported; the out
// buffer starts filled with 0x5A so a refused call can be seen to write nothing.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mnv_kernels.h"

enum { CONV, DEPTHWISE, FC, AVG_POOL, MAX_POOL, ADD, RESHAPE, SOFTMAX, QUANTIZE, DEQUANTIZE,
    GATHER, CONCATENATION };

static int read_exact(void *p, size_t n) {
    return fread(p, 1, n, stdin) == n;
}

static void *read_buffer(int32_t *nbytes) {
    if (!read_exact(nbytes, 4)) {
        exit(2);
    }
    if (*nbytes < 0) {
        return NULL;
    }
    void *p = malloc(*nbytes ? (size_t)*nbytes : 1);
    if (!p || !read_exact(p, (size_t)*nbytes)) {
        exit(2);
    }
    return p;
}

static int run(uint32_t op, const int32_t *args, size_t n_args, void **buf, int32_t *len,
    uint32_t n_bufs, void *out, size_t out_len) {
    if (op <= FC) {
        mnv_channels ch = {buf[2], buf[3], buf[4], (size_t)len[3] / 4};
        if ((size_t)len[4] / 4 < ch.count) {
            ch.count = (size_t)len[4] / 4;
        }
        if (buf[2] && (size_t)len[2] / 4 < ch.count) {
            ch.count = (size_t)len[2] / 4;
        }
        int (*kernel)(const int8_t *, size_t, const int8_t *, size_t, const mnv_channels *,
            int8_t *, size_t, const int32_t *, size_t) =
            op == CONV ? mnv_conv_2d : op == DEPTHWISE ? mnv_depthwise_conv_2d
            : mnv_fully_connected;
        return kernel(buf[0], len[0], buf[1], len[1], &ch, out, out_len, args, n_args);
    }
    switch (op) {
        case AVG_POOL:
            return mnv_average_pool_2d(buf[0], len[0], out, out_len, args, n_args);
        case MAX_POOL:
            return mnv_max_pool_2d(buf[0], len[0], out, out_len, args, n_args);
        case ADD:
            return mnv_add(buf[0], len[0], buf[1], len[1], out, out_len, args, n_args);
        case RESHAPE:
            return mnv_reshape(buf[0], len[0], out, out_len, args, n_args);
        case SOFTMAX:
            return mnv_softmax(buf[0], len[0], out, out_len, args, n_args);
        case QUANTIZE:  // as the binding: float32 elements in mode 0, bytes in mode 1
            return mnv_quantize(buf[0], n_args && args[0] == 0 ? (size_t)len[0] / 4
                : (size_t)len[0], out, out_len, args, n_args);
        case DEQUANTIZE:
            return mnv_dequantize(buf[0], len[0], out, out_len / 4, args, n_args);
        case GATHER:
            return mnv_gather(buf[0], len[0], buf[1], (size_t)len[1] / 4, out, out_len, args,
                n_args);
        case CONCATENATION: {  // every buffer is an input
            size_t lens[5];
            for (int i = 0; i < 5; i++) {
                lens[i] = (size_t)(len[i] < 0 ? 0 : len[i]);
            }
            return mnv_concatenation((const int8_t *const *)buf, lens, n_bufs, out, out_len,
                args, n_args);
        }
        default:
            return -100;
    }
}

int main(void) {
    uint32_t op;
    while (read_exact(&op, 4)) {
        uint32_t n_args, n_bufs, out_len;
        if (!read_exact(&n_args, 4)) {
            return 2;
        }
        int32_t *args = malloc(n_args ? n_args * 4 : 1);
        if (!args || !read_exact(args, n_args * 4) || !read_exact(&n_bufs, 4) || n_bufs > 5) {
            return 2;
        }
        void *buf[5] = {0};
        int32_t len[5] = {0};
        for (uint32_t i = 0; i < n_bufs; i++) {
            buf[i] = read_buffer(&len[i]);
        }
        if (!read_exact(&out_len, 4)) {
            return 2;
        }
        void *out = malloc(out_len ? out_len : 1);
        memset(out, 0x5A, out_len);
        int32_t rc = run(op, args, n_args, buf, len, n_bufs, out, out_len);
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
