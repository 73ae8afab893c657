// Freestanding stand-ins for libc in the qemu-arm drivers (arm_driver.c, ed25519_driver.c):
// a few Linux system calls through `svc 0`, and the memset/memcpy the compiler may call.
#ifndef MNV_FREESTANDING_IO_H
#define MNV_FREESTANDING_IO_H

#include <stddef.h>

static long sys3(long n, long a, long b, long c) {
    register long r7 __asm__("r7") = n;
    register long r0 __asm__("r0") = a;
    register long r1 __asm__("r1") = b;
    register long r2 __asm__("r2") = c;
    __asm__ volatile ("svc 0" : "+r" (r0) : "r" (r7), "r" (r1), "r" (r2) : "memory");
    return r0;
}

static void leave(int code) {
    sys3(1, code, 0, 0);  // exit
    for (;;) {
    }
}

#include "mnv_libc.h"

static int read_exact(void *p, size_t n) {
    unsigned char *b = p;
    while (n) {
        long got = sys3(3, 0, (long)b, (long)n);  // read(stdin)
        if (got <= 0) {
            return 0;
        }
        b += got;
        n -= (size_t)got;
    }
    return 1;
}

static void write_all(const void *p, size_t n) {
    const unsigned char *b = p;
    while (n) {
        long put = sys3(4, 1, (long)b, (long)n);  // write(stdout)
        if (put <= 0) {
            leave(3);
        }
        b += put;
        n -= (size_t)put;
    }
}

#endif
