// SHA-512 (FIPS 180-4) in plain C for Ed25519 verification (ed25519.c): streaming, caller-owned
// state, no allocation, no libc. Only constant 64-bit shifts, so armv6m needs no libgcc helper.
#ifndef MNV_SHA512_H
#define MNV_SHA512_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t state[8];
    uint64_t total;      // bytes hashed so far
    uint8_t block[128];  // the unfinished block; `total % 128` bytes of it are used
} mnv_sha512;

void mnv_sha512_init(mnv_sha512 *h);
void mnv_sha512_update(mnv_sha512 *h, const uint8_t *data, size_t len);
void mnv_sha512_final(mnv_sha512 *h, uint8_t digest[64]);

#endif
