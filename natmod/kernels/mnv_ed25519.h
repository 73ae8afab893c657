// Ed25519 signature verification (RFC 8032, section 5.1.7) in plain C: caller buffers, no
// allocation, no libc, under 1.5 KB of stack. Only verification: a board holds no private key.
#ifndef MNV_ED25519_H
#define MNV_ED25519_H

#include <stddef.h>
#include <stdint.h>

#define MNV_ED25519_VALID 0
#define MNV_ED25519_MISMATCH (-1)  // everything decodes, but [S]B != R + [k]A
#define MNV_ED25519_BAD_KEY (-2)   // the public key encodes no curve point
#define MNV_ED25519_BAD_R (-3)     // the signature's R encodes no curve point
#define MNV_ED25519_BAD_S (-4)     // the signature's S is not below the group order L

// MNV_ED25519_VALID when `signature` (64 bytes) is `public_key`'s (32 bytes) on the
// `message_len` bytes at `message`; otherwise one of the codes above says why not.
int mnv_ed25519_verify(const uint8_t *public_key, const uint8_t *message, size_t message_len,
    const uint8_t *signature);

#endif
