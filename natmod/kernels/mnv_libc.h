// The two libc functions gcc may emit calls to, for builds that link no libc: the native
// module (minerva_nat.c) and the freestanding qemu-arm test drivers. Include it in exactly one
// translation unit of a program.
#ifndef MNV_LIBC_H
#define MNV_LIBC_H

#include <stddef.h>

void *memset(void *s, int c, size_t n) {
    unsigned char *p = s;
    while (n--) {
        *p++ = (unsigned char)c;
    }
    return s;
}

void *memcpy(void *dst, const void *src, size_t n) {
    unsigned char *d = dst;
    const unsigned char *s = src;
    while (n--) {
        *d++ = *s++;
    }
    return dst;
}

#endif
