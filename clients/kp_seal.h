/*  =========================================================================
    kp_seal - sealed and signed bodies, vouched keys, signed receipts

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    Not installed. A kp_seal_t holds one partner's end-to-end keys: its
    Ed25519 signing secret and X25519 sealing secret (in sodium_malloc'd
    memory, wiped on destroy) and the region's registration public key,
    which vouches for every partner's public keys. With it kp_client seals
    outgoing bodies to their readers, opens and checks incoming ones, and
    signs receipts. The sealed format is in docs/PROTOCOL.md, "Sealed
    bodies". Belongs to one thread; the static functions are stateless.
@end
*/
#ifndef KP_SEAL_H_INCLUDED
#define KP_SEAL_H_INCLUDED

#include "kp_util.h"

#define KP_SEAL_VERSION 1               //  first byte of a sealed body
#define KP_SEAL_READERS_MAX 16          //  recipient + auditors
#define KP_SEAL_SLOT_SIZE 80            //  crypto_box_seal of a 32-byte key
#define KP_SEAL_RECEIPT_MAX 186         //  largest receipt we make
#define KP_SEAL_PARTNER_MAX 64          //  partner id bytes
#define KP_SEAL_REGION_MAX 256          //  region name bytes

typedef struct _kp_seal_t kp_seal_t;

//  A partner's public keys as a verified registration vouches for them
typedef struct {
    char region [KP_SEAL_REGION_MAX + 1];   //  region name
    char partner [KP_SEAL_PARTNER_MAX + 1]; //  partner id
    Kp__Wire__Role role;            //  its role
    bool covenant;                  //  school in the covenant
    uint8_t curve_key [32];         //  CURVE transport key
    uint8_t sign_key [32];          //  Ed25519 public key
    uint8_t seal_key [32];          //  X25519 public key
    int64_t registered_at_ms;       //  when the registration was made
} kp_vouched_t;

//  New keys of partner from its secrets: sign_secret is a libsodium
//  Ed25519 secret key (64 bytes), seal_secret an X25519 one (32). They are
//  copied into guarded memory; wipe your copies. Never NULL.
kp_seal_t *
    kp_seal_new (const char *partner, const uint8_t *sign_secret,
                 const uint8_t *seal_secret);

//  Load our keys from a secret cert made by kp-keys (metadata partner,
//  sign-secret, seal-secret, registration). Returns NULL and a reason
//  (static, one line, never a secret) if the cert has no such keys.
kp_seal_t *
    kp_seal_load (const char *cert_path, const char **reason_p);

//  Wipe the secrets and destroy; idempotent, nulls *self_p.
void
    kp_seal_destroy (kp_seal_t **self_p);

//  Our partner id.
const char *
    kp_seal_partner (kp_seal_t *self);

//  Trust registrations signed by this region registration public key
//  (32 bytes). If our own registration was loaded with the cert, it must
//  verify with this key and vouch for our keys: returns -1 and a reason if
//  not (wrong region key, or a cert from another region).
int
    kp_seal_set_region_key (kp_seal_t *self, const uint8_t *region_key,
                            const char **reason_p);

//  Read the region key from a file (REGION/registration.pub: 64 hex digits
//  on one line) and set it. 0, or -1 and a reason.
int
    kp_seal_load_region_key (kp_seal_t *self, const char *path, const char **reason_p);

//  True once a region key is set.
bool
    kp_seal_has_region_key (kp_seal_t *self);

//  Verify a registration with our region key and, if we know our region's
//  name, that it is of our region. Fills *vouched. 0, or -1 and a reason.
int
    kp_seal_verify (kp_seal_t *self, const Kp__Wire__Registration *registration,
                    kp_vouched_t *vouched, const char **reason_p);

//  Verify a registration with region_key (32 bytes). 0, or -1 and a reason.
int
    kp_seal_registration_verify (const uint8_t *region_key,
                                 const Kp__Wire__Registration *registration,
                                 kp_vouched_t *vouched, const char **reason_p);

//  The binding of a body to its envelope: "ketenpost-body-v1" and the
//  envelope fields id, type, sender, recipient_partner, recipient,
//  reference, subject, purpose, acting_user, on_behalf_of (PROTOCOL.md).
//  envelope->sender and ->recipient_partner must be set. Returns a new
//  buffer (caller frees) and its size.
uint8_t *
    kp_seal_binding (const Kp__Wire__Envelope *envelope, size_t *size_p);

//  Sign body with our key and seal it for reader_count readers (their
//  X25519 keys, 32 bytes each; the recipient first), bound to envelope.
//  Returns the sealed bytes (caller frees) and their size.
uint8_t *
    kp_seal_body (kp_seal_t *self, const Kp__Wire__Envelope *envelope,
                  const uint8_t *body, size_t body_size,
                  const uint8_t (*reader_keys) [32], size_t reader_count,
                  size_t *sealed_size_p);

//  Open a sealed body addressed to us under envelope, and check the
//  sender's signature with sign_key (the sender's vouched key). Returns the
//  body (caller wipes and frees) and its size, or NULL and a reason.
uint8_t *
    kp_seal_open (kp_seal_t *self, const Kp__Wire__Envelope *envelope,
                  const uint8_t *sealed, size_t sealed_size, const uint8_t *sign_key,
                  size_t *body_size_p, const char **reason_p);

//  Open a sealed body of which we are one of the other readers (an auditor
//  the sender sealed it to as well): the envelope's recipient_partner need
//  not be us. Otherwise as kp_seal_open: our slot, the binding of this
//  envelope, the sender's signature with sign_key. Returns the body
//  (caller wipes and frees) and its size, or NULL and a reason.
uint8_t *
    kp_seal_open_reader (kp_seal_t *self, const Kp__Wire__Envelope *envelope,
                         const uint8_t *sealed, size_t sealed_size,
                         const uint8_t *sign_key, size_t *body_size_p,
                         const char **reason_p);

//  Open a sealed body as one of its readers with a bare X25519 keypair,
//  without checking a signature (an auditor's view, and for tests).
//  Returns the plaintext signature (64) || body, or NULL.
uint8_t *
    kp_seal_open_as (const Kp__Wire__Envelope *envelope, const uint8_t *sealed,
                     size_t sealed_size, const uint8_t *seal_public,
                     const uint8_t *seal_secret, size_t *plain_size_p);

//  Make our signed receipt for message id (16 bytes) whose sealed body has
//  hash body_hash (32 bytes), acknowledged at acked_at_ms, into receipt
//  (KP_SEAL_RECEIPT_MAX bytes). Returns its size.
size_t
    kp_seal_receipt (kp_seal_t *self, const uint8_t *id, const uint8_t *body_hash,
                     int64_t acked_at_ms, uint8_t *receipt);

//  Check a receipt's signature with the recipient's sign_key, and that it
//  is about id and by recipient; if body_hash is not NULL, that it covers
//  that body hash. Sets *acked_at_p. 0, or -1 and a reason.
int
    kp_seal_receipt_verify (const uint8_t *receipt, size_t size, const uint8_t *sign_key,
                            const uint8_t *id, const char *recipient,
                            const uint8_t *body_hash, int64_t *acked_at_p,
                            const char **reason_p);

#endif
