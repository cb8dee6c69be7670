/*  =========================================================================
    kp_sha256 - SHA-256 (FIPS 180-4), with the CPU's SHA extensions if any

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    The hash of the broker's hot paths: body hashes and the Merkle tree's
    leaf and node hashes. The same digests as libsodium's
    crypto_hash_sha256, computed with the x86 SHA extensions (SHA-NI)
    where the CPU has them and in portable C otherwise; the choice is made
    on every call from what the compiler's runtime found at start-up, so
    there is no state of ours. A kp_sha256_t belongs to its caller; the
    functions are safe from any thread on distinct states.

    One shot:

        uint8_t digest [KP_SHA256_SIZE];
        kp_sha256 (digest, data, size);

    Streaming, for input that comes in pieces:

        kp_sha256_t state;
        kp_sha256_init (&state);
        kp_sha256_update (&state, prefix, 1);
        kp_sha256_update (&state, data, size);
        kp_sha256_final (&state, digest);
@end
*/
#ifndef KP_SHA256_H_INCLUDED
#define KP_SHA256_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KP_SHA256_SIZE 32               //  digest bytes
#define KP_SHA256_BLOCK 64              //  message block bytes

//  Streaming state. Fields are private: use the functions below. The state
//  is a plain value: it may be copied to hash several continuations of a
//  common prefix.
typedef struct {
    uint32_t hash [8];              //  H0..H7 after the blocks so far
    uint64_t length;                //  bytes hashed so far
    uint8_t block [KP_SHA256_BLOCK];    //  start of a block not yet full
} kp_sha256_t;

//  --------------------------------------------------------------------------
//  Start a new hash in self (caller-owned storage, nothing allocated).
void
    kp_sha256_init (kp_sha256_t *self);

//  Add size bytes of data (data may be NULL when size is 0).
void
    kp_sha256_update (kp_sha256_t *self, const void *data, size_t size);

//  Write the digest of everything added into out. self must be initialised
//  again before further use.
void
    kp_sha256_final (kp_sha256_t *self, uint8_t out [KP_SHA256_SIZE]);

//  --------------------------------------------------------------------------
//  The digest of size bytes of data, in one call (data may be NULL when
//  size is 0). out may overlap data: it is written last.
void
    kp_sha256 (uint8_t out [KP_SHA256_SIZE], const void *data, size_t size);

//  The same digest, always in portable C: the fallback of kp_sha256,
//  callable on its own so that tests check both.
void
    kp_sha256_software (uint8_t out [KP_SHA256_SIZE], const void *data, size_t size);

//  True if kp_sha256 and the streaming functions use the CPU's SHA
//  extensions (SHA-NI with SSE4.1).
bool
    kp_sha256_accelerated (void);

#endif
