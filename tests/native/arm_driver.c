// tests/native/driver.c's protocol for the microcontroller builds: the same kernels compiled
// for Cortex-M0 (armv6m, with natmod/armv6m_runtime.c and no libgcc, as the native module
// links) or Cortex-M4F, run on the host under qemu-arm's user mode. Freestanding: a few
// Linux system calls stand in for libc.
#include <stddef.h>
#include <stdint.h>

#include "mnv_kernels.h"

#include "freestanding_io.h"

// One case's buffers live in a bump arena, reset per case; 8-byte aligned like malloc.
static uint8_t heap[4 << 20] __attribute__((aligned(8)));
static size_t heap_used;

static void *take(size_t n) {
    n = (n + 7) & ~(size_t)7;
    if (n > sizeof(heap) - heap_used) {
        leave(4);
    }
    void *p = heap + heap_used;
    heap_used += n;
    return p;
}

static int run(uint32_t op, const int32_t *args, size_t n_args, void **buf, int32_t *len,
    uint32_t n_bufs, void *out, size_t out_len) {
    if (op <= 2) {
        mnv_channels ch = {buf[2], buf[3], buf[4], (size_t)len[3] / 4};
        if ((size_t)len[4] / 4 < ch.count) {
            ch.count = (size_t)len[4] / 4;
        }
        if (buf[2] && (size_t)len[2] / 4 < ch.count) {
            ch.count = (size_t)len[2] / 4;
        }
        if (op == 0) {
            return mnv_conv_2d(buf[0], len[0], buf[1], len[1], &ch, out, out_len, args, n_args);
        }
        if (op == 1) {
            return mnv_depthwise_conv_2d(buf[0], len[0], buf[1], len[1], &ch, out, out_len,
                args, n_args);
        }
        return mnv_fully_connected(buf[0], len[0], buf[1], len[1], &ch, out, out_len, args,
            n_args);
    }
    switch (op) {
        case 3:
            return mnv_average_pool_2d(buf[0], len[0], out, out_len, args, n_args);
        case 4:
            return mnv_max_pool_2d(buf[0], len[0], out, out_len, args, n_args);
        case 5:
            return mnv_add(buf[0], len[0], buf[1], len[1], out, out_len, args, n_args);
        case 6:
            return mnv_reshape(buf[0], len[0], out, out_len, args, n_args);
        case 7:
            return mnv_softmax(buf[0], len[0], out, out_len, args, n_args);
#ifdef MNV_WITH_FLOAT
        case 8:
            return mnv_quantize(buf[0], n_args && args[0] == 0 ? (size_t)len[0] / 4
                : (size_t)len[0], out, out_len, args, n_args);
        case 9:
            return mnv_dequantize(buf[0], len[0], out, out_len / 4, args, n_args);
#endif
        case 10:
            return mnv_gather(buf[0], len[0], buf[1], (size_t)len[1] / 4, out, out_len, args,
                n_args);
        case 11: {  // every buffer is an input
            size_t lens[5];
            for (int i = 0; i < 5; i++) {
                lens[i] = (size_t)(len[i] < 0 ? 0 : len[i]);
            }
            return mnv_concatenation((const int8_t *const *)buf, lens, n_bufs, out, out_len,
                args, n_args);
        }
        default:
            return -100;  // not in this build (armv6m has no float kernels)
    }
}

static void serve(void) {
    uint32_t op;
    while (read_exact(&op, 4)) {
        uint32_t n_args, n_bufs, out_len;
        heap_used = 0;
        if (!read_exact(&n_args, 4)) {
            leave(2);
        }
        int32_t *args = take(n_args * 4);
        if (!read_exact(args, n_args * 4) || !read_exact(&n_bufs, 4) || n_bufs > 5) {
            leave(2);
        }
        void *buf[5] = {0};
        int32_t len[5] = {0};
        for (uint32_t i = 0; i < n_bufs; i++) {
            if (!read_exact(&len[i], 4)) {
                leave(2);
            }
            if (len[i] >= 0) {
                buf[i] = take((size_t)len[i]);
                if (!read_exact(buf[i], (size_t)len[i])) {
                    leave(2);
                }
            }
        }
        if (!read_exact(&out_len, 4)) {
            leave(2);
        }
        uint8_t *out = take(out_len);
        memset(out, 0x5A, out_len);
        int32_t rc = run(op, args, n_args, buf, len, n_bufs, out, out_len);
        write_all(&rc, 4);
        write_all(out, out_len);
    }
}

void _start(void) {
    serve();
    leave(0);
}
