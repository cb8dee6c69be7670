/*  =========================================================================
    kp_checkpoint - signed tree heads in the C2SP signed-note format

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    A checkpoint (C2SP tlog-checkpoint) is a signed note (C2SP signed-note):

        <origin>\n
        <tree size, decimal>\n
        <root hash, standard base64>\n
        \n
        — <key name> <base64 (key id (4 bytes) || Ed25519 signature (64))>\n

    The signature is over the note text up to and including the third
    line's newline. The key id is the first 4 bytes of
    SHA-256(key name || "\n" || 0x01 || public key), 0x01 being the
    Ed25519 algorithm byte. The broker signs with the region's checkpoint
    key (REGION/checkpoint_secret); auditors verify with
    REGION/checkpoint.pub, which they got out of band.

    A verifier key string (for other note tools) is
    "<key name>+<key id, 8 hex digits>+<base64 (0x01 || public key)>".
@end
*/
#ifndef KP_CHECKPOINT_H_INCLUDED
#define KP_CHECKPOINT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define KP_CHECKPOINT_PUBLIC 32         //  Ed25519 public key bytes
#define KP_CHECKPOINT_SECRET 64         //  libsodium Ed25519 secret key bytes
#define KP_CHECKPOINT_MAX_ORIGIN 256    //  bytes in an origin or key name

//  A parsed, verified checkpoint
typedef struct {
    char origin [KP_CHECKPOINT_MAX_ORIGIN + 1];
    uint64_t size;                      //  tree size
    uint8_t root [32];                  //  Merkle root
} kp_checkpoint_t;

//  Sign a checkpoint for (origin, size, root) with the Ed25519 secret key
//  under key_name. origin and key_name: 1..256 printable ASCII characters,
//  no spaces or '+' in key_name. Returns the note text (caller frees), or
//  NULL if an argument is not valid.
char *
    kp_checkpoint_sign (const char *origin, uint64_t size, const uint8_t *root,
                        const char *key_name, const uint8_t *secret_key);

//  Parse note and verify that it carries a valid signature by public_key
//  under key_name (other signature lines are ignored). Fills *checkpoint
//  and returns 0; returns -1 and sets *error (a static string saying what
//  is wrong) if the note is malformed or no valid signature is found.
int
    kp_checkpoint_verify (const char *note, size_t note_size, const char *key_name,
                          const uint8_t *public_key, kp_checkpoint_t *checkpoint,
                          const char **error) __attribute__ ((warn_unused_result));

//  The 4-byte key id of public_key under key_name.
void
    kp_checkpoint_key_id (const char *key_name, const uint8_t *public_key,
                          uint8_t *key_id);

//  The verifier key string for key_name and public_key; caller frees.
char *
    kp_checkpoint_vkey (const char *key_name, const uint8_t *public_key);

//  Read REGION/checkpoint.pub (hex) into public_key. 0, or -1 with one
//  logged line.
int
    kp_checkpoint_load_public (const char *region_dir, uint8_t *public_key)
    __attribute__ ((warn_unused_result));

//  Read REGION/checkpoint_secret (hex) into secret_key (a locked buffer of
//  the caller's; wipe it with sodium_memzero when done). 0, or -1 with one
//  logged line that never shows the key.
int
    kp_checkpoint_load_secret (const char *region_dir, uint8_t *secret_key)
    __attribute__ ((warn_unused_result));

#endif
