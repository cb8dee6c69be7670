/*  =========================================================================
    kp_seal - sealed and signed bodies, vouched keys, signed receipts

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    End-to-end protection of message bodies: the broker routes on the
    envelope and stores only what this class makes. A body is signed with
    the sender's Ed25519 key and encrypted (XChaCha20-Poly1305) under a
    fresh content key, which is wrapped (crypto_box_seal) for each reader:
    the recipient, and auditors where the region says so. Signature and
    ciphertext are bound to the envelope, so a body cut out and pasted
    under another envelope does not open. The byte layout is specified in
    docs/PROTOCOL.md, "Sealed bodies".
@discuss
    Who may read is decided by which seal keys the sender uses, and those
    come from registrations signed by the region's registration key, which
    the client got out of band (REGION/registration.pub), never from the
    broker. The broker hands out registrations but cannot make one.

    Secrets live in sodium_malloc'd memory (guard pages, no swap where the
    kernel allows mlock) and are wiped on destroy. Content keys and
    plaintexts in transit are wiped after use.
@end
*/
#include "kp_seal.h"
#include <sodium.h>
#include <fcntl.h>
#include <sys/stat.h>

#define S_BODY_DOMAIN "ketenpost-body-v1"
#define S_RECEIPT_DOMAIN "ketenpost-receipt-v1"
#define S_RECEIPT_VERSION 1
#define S_KEY_SIZE crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define S_NONCE_SIZE crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define S_TAG_SIZE crypto_aead_xchacha20poly1305_ietf_ABYTES
#define S_STATEMENT_MAX 16384       //  largest statement we unpack
#define S_CERT_MAX 65536            //  largest secret cert we read

struct _kp_seal_t {
    char partner [KP_SEAL_PARTNER_MAX + 1];     //  our partner id
    uint8_t *secrets;               //  guarded: sign secret (64) || seal secret (32)
    uint8_t sign_key [32];          //  our Ed25519 public key
    uint8_t seal_key [32];          //  our X25519 public key
    bool has_region_key;            //  region_key is set
    uint8_t region_key [32];        //  the region's registration public key
    char region [KP_SEAL_REGION_MAX + 1];   //  our region's name, or ""
    Kp__Wire__Registration *registration;   //  our own, from the cert, or NULL
};

#define S_SIGN_SECRET(self) ((self)->secrets)
#define S_SEAL_SECRET(self) ((self)->secrets + crypto_sign_SECRETKEYBYTES)

//  --------------------------------------------------------------------------
//  New keys of partner from its secrets (copied into guarded memory)

kp_seal_t *
kp_seal_new (const char *partner, const uint8_t *sign_secret, const uint8_t *seal_secret)
{
    assert (partner);
    assert (sign_secret);
    assert (seal_secret);
    int rc = sodium_init ();
    assert (rc >= 0);
    kp_seal_t *self = (kp_seal_t *) zmalloc (sizeof (kp_seal_t));
    assert (self);
    snprintf (self->partner, sizeof self->partner, "%s", partner);
    self->secrets = (uint8_t *) sodium_malloc (crypto_sign_SECRETKEYBYTES
                                               + crypto_box_SECRETKEYBYTES);
    assert (self->secrets);
    memcpy (S_SIGN_SECRET (self), sign_secret, crypto_sign_SECRETKEYBYTES);
    memcpy (S_SEAL_SECRET (self), seal_secret, crypto_box_SECRETKEYBYTES);
    crypto_sign_ed25519_sk_to_pk (self->sign_key, S_SIGN_SECRET (self));
    crypto_scalarmult_base (self->seal_key, S_SEAL_SECRET (self));
    return self;
}

//  --------------------------------------------------------------------------
//  Read a small file into a new NUL-terminated buffer; NULL if it cannot
//  be read, is too large or holds a NUL. Caller wipes and frees.
static char *
s_file_read (const char *path, size_t max, size_t *size_p)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat status;
    char *text = NULL;
    if (fstat (fd, &status) == 0 && S_ISREG (status.st_mode)
    &&  status.st_size >= 0 && (size_t) status.st_size <= max) {
        size_t size = (size_t) status.st_size;
        text = (char *) malloc (size + 1);
        assert (text);
        size_t done = 0;
        while (done < size) {
            ssize_t count = read (fd, text + done, size - done);
            if (count < 0 && errno == EINTR)
                continue;
            if (count <= 0)
                break;
            done += (size_t) count;
        }
        text [done] = 0;
        if (done != size || strlen (text) != size) {
            sodium_memzero (text, size);
            zstr_free (&text);
        }
        else
            *size_p = size;
    }
    close (fd);
    return text;
}

//  Wipe every value in a ZPL tree in place, before it is freed
static void
s_config_wipe (zconfig_t *config)
{
    for (; config; config = zconfig_next (config)) {
        char *value = zconfig_value (config);
        if (value)
            sodium_memzero (value, strlen (value));
        s_config_wipe (zconfig_child (config));
    }
}

//  Decode base64 text of a packed Registration; NULL if it is not one
static Kp__Wire__Registration *
s_registration_decode (const char *text)
{
    size_t text_size = strlen (text);
    uint8_t *data = (uint8_t *) malloc (text_size + 1);
    assert (data);
    size_t size = 0;
    Kp__Wire__Registration *registration = NULL;
    if (sodium_base642bin (data, text_size, text, text_size, NULL, &size, NULL,
                           sodium_base64_VARIANT_ORIGINAL) == 0 && size > 0)
        registration = kp__wire__registration__unpack (NULL, size, data);
    free (data);
    return registration;
}

//  --------------------------------------------------------------------------
//  Load our keys from a secret cert; NULL and a reason if it has none
//
//  The cert is read into a buffer that we wipe, and every value of the
//  parsed tree is wiped before it is freed. zconfig's parser may still
//  leave short-lived copies of its own in freed heap memory.

kp_seal_t *
kp_seal_load (const char *cert_path, const char **reason_p)
{
    assert (cert_path);
    assert (reason_p);
    if (sodium_init () < 0) {
        *reason_p = "libsodium cannot start";
        return NULL;
    }
    size_t size = 0;
    char *text = s_file_read (cert_path, S_CERT_MAX, &size);
    if (!text) {
        *reason_p = "cannot read the secret cert";
        return NULL;
    }
    zconfig_t *root = zconfig_str_load (text);
    sodium_memzero (text, size);
    free (text);
    if (!root) {
        *reason_p = "the secret cert is not a certificate";
        return NULL;
    }
    kp_seal_t *self = NULL;
    const char *partner = zconfig_get (root, "metadata/partner", "");
    const char *sign_hex = zconfig_get (root, "metadata/sign-secret", "");
    const char *seal_hex = zconfig_get (root, "metadata/seal-secret", "");
    const char *registration = zconfig_get (root, "metadata/registration", "");
    uint8_t *secrets = (uint8_t *) sodium_malloc (crypto_sign_SECRETKEYBYTES
                                                  + crypto_box_SECRETKEYBYTES);
    assert (secrets);
    if (!*partner || strlen (partner) > KP_SEAL_PARTNER_MAX)
        *reason_p = "the cert names no partner";
    else
    if (!*sign_hex || !*seal_hex)
        *reason_p = "the cert holds no signing and sealing keys (make it with a "
                    "kp-keys that vouches for partner keys)";
    else
    if (kp_hex_decode (sign_hex, secrets, crypto_sign_SECRETKEYBYTES)
    ||  kp_hex_decode (seal_hex, secrets + crypto_sign_SECRETKEYBYTES,
                       crypto_box_SECRETKEYBYTES))
        *reason_p = "the cert's signing or sealing key is damaged";
    else {
        self = kp_seal_new (partner, secrets, secrets + crypto_sign_SECRETKEYBYTES);
        if (*registration)
            self->registration = s_registration_decode (registration);
    }
    sodium_free (secrets);
    s_config_wipe (root);
    zconfig_destroy (&root);
    return self;
}

//  --------------------------------------------------------------------------
//  Wipe and destroy; idempotent

void
kp_seal_destroy (kp_seal_t **self_p)
{
    assert (self_p);
    kp_seal_t *self = *self_p;
    if (!self)
        return;
    sodium_free (self->secrets);    //  wipes before it frees
    if (self->registration)
        kp__wire__registration__free_unpacked (self->registration, NULL);
    free (self);
    *self_p = NULL;
}

const char *
kp_seal_partner (kp_seal_t *self)
{
    assert (self);
    return self->partner;
}

bool
kp_seal_has_region_key (kp_seal_t *self)
{
    assert (self);
    return self->has_region_key;
}

//  --------------------------------------------------------------------------
//  Verify a registration with region_key; fill *vouched. 0, or -1 + reason

int
kp_seal_registration_verify (const uint8_t *region_key,
                             const Kp__Wire__Registration *registration,
                             kp_vouched_t *vouched, const char **reason_p)
{
    assert (region_key);
    assert (vouched);
    assert (reason_p);
    if (!registration || registration->statement.len == 0
    ||  registration->statement.len > S_STATEMENT_MAX) {
        *reason_p = "no registration";
        return -1;
    }
    if (registration->signature.len != crypto_sign_BYTES
    ||  crypto_sign_verify_detached (registration->signature.data,
                                     registration->statement.data,
                                     registration->statement.len, region_key)) {
        *reason_p = "registration is not signed by the region's registration key";
        return -1;
    }
    Kp__Wire__RegistrationStatement *statement =
        kp__wire__registration_statement__unpack (NULL, registration->statement.len,
                                                  registration->statement.data);
    int rc = -1;
    if (!statement
    ||  protobuf_c_message_get_packed_size (&statement->base)
        != registration->statement.len
    ||  !kp_message_strings_valid (&statement->base))
        *reason_p = "registration statement does not decode";
    else
    if (!*statement->partner || strlen (statement->partner) > KP_SEAL_PARTNER_MAX
    ||  strlen (statement->region) > KP_SEAL_REGION_MAX
    ||  statement->curve_key.len != 32 || statement->sign_key.len != 32
    ||  statement->seal_key.len != 32)
        *reason_p = "registration statement is incomplete";
    else {
        memset (vouched, 0, sizeof *vouched);
        snprintf (vouched->region, sizeof vouched->region, "%s", statement->region);
        snprintf (vouched->partner, sizeof vouched->partner, "%s", statement->partner);
        vouched->role = statement->role;
        vouched->covenant = statement->covenant;
        memcpy (vouched->curve_key, statement->curve_key.data, 32);
        memcpy (vouched->sign_key, statement->sign_key.data, 32);
        memcpy (vouched->seal_key, statement->seal_key.data, 32);
        vouched->registered_at_ms = statement->registered_at_ms;
        rc = 0;
    }
    if (statement)
        kp__wire__registration_statement__free_unpacked (statement, NULL);
    return rc;
}

//  --------------------------------------------------------------------------
//  Trust this region key; our own registration must verify with it

int
kp_seal_set_region_key (kp_seal_t *self, const uint8_t *region_key, const char **reason_p)
{
    assert (self);
    assert (region_key);
    assert (reason_p);
    if (self->registration) {
        kp_vouched_t own;
        if (kp_seal_registration_verify (region_key, self->registration, &own,
                                         reason_p)) {
            *reason_p = "our own registration does not verify with this region key "
                        "(wrong registration.pub?)";
            return -1;
        }
        if (!streq (own.partner, self->partner)
        ||  sodium_memcmp (own.sign_key, self->sign_key, 32) != 0
        ||  sodium_memcmp (own.seal_key, self->seal_key, 32) != 0) {
            *reason_p = "our registration does not vouch for the keys in our cert";
            return -1;
        }
        snprintf (self->region, sizeof self->region, "%s", own.region);
    }
    memcpy (self->region_key, region_key, 32);
    self->has_region_key = true;
    return 0;
}

//  --------------------------------------------------------------------------
//  Read and set the region key from a hex file

int
kp_seal_load_region_key (kp_seal_t *self, const char *path, const char **reason_p)
{
    assert (self);
    assert (path);
    assert (reason_p);
    size_t size = 0;
    char *text = s_file_read (path, 4096, &size);
    if (!text) {
        *reason_p = "cannot read the region key file";
        return -1;
    }
    text [strcspn (text, "\r\n")] = 0;
    uint8_t key [32];
    int rc = kp_hex_decode (text, key, sizeof key);
    free (text);
    if (rc) {
        *reason_p = "the region key file does not hold 64 hex digits";
        return -1;
    }
    return kp_seal_set_region_key (self, key, reason_p);
}

//  --------------------------------------------------------------------------
//  Verify a registration with our region key, and its region name

int
kp_seal_verify (kp_seal_t *self, const Kp__Wire__Registration *registration,
                kp_vouched_t *vouched, const char **reason_p)
{
    assert (self);
    if (!self->has_region_key) {
        *reason_p = "no region key: cannot check partner keys";
        return -1;
    }
    if (kp_seal_registration_verify (self->region_key, registration, vouched, reason_p))
        return -1;
    if (*self->region && !streq (vouched->region, self->region)) {
        *reason_p = "registration is of another region";
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  The binding: domain, then each envelope field as u32be length || bytes.
//  Not created_at_ms: a resend of a message with its id (kp-send --id, in
//  a new process) has a new created_at, and must seal to the same bytes.

static void
s_put_field (uint8_t **cursor_p, const void *data, size_t size)
{
    uint8_t *cursor = *cursor_p;
    cursor [0] = (uint8_t) (size >> 24);
    cursor [1] = (uint8_t) (size >> 16);
    cursor [2] = (uint8_t) (size >> 8);
    cursor [3] = (uint8_t) size;
    if (size)
        memcpy (cursor + 4, data, size);
    *cursor_p = cursor + 4 + size;
}

static void
s_put_u64 (uint8_t *out, uint64_t value)
{
    for (int index = 7; index >= 0; index--) {
        out [index] = (uint8_t) value;
        value >>= 8;
    }
}

static uint64_t
s_get_u64 (const uint8_t *in)
{
    uint64_t value = 0;
    for (int index = 0; index < 8; index++)
        value = (value << 8) | in [index];
    return value;
}

uint8_t *
kp_seal_binding (const Kp__Wire__Envelope *envelope, size_t *size_p)
{
    assert (envelope);
    assert (size_p);
    const char *sender = envelope->sender? envelope->sender: "";
    const char *recipient_partner = envelope->recipient_partner
                                  ? envelope->recipient_partner: "";
    const char *recipient = envelope->recipient? envelope->recipient: "";
    const char *purpose = envelope->purpose? envelope->purpose: "";
    const char *acting_user = envelope->acting_user? envelope->acting_user: "";
    const char *on_behalf_of = envelope->on_behalf_of? envelope->on_behalf_of: "";
    size_t size = strlen (S_BODY_DOMAIN) + 10 * 4
                + envelope->id.len + 4 + strlen (sender) + strlen (recipient_partner)
                + strlen (recipient) + envelope->reference.len + envelope->subject.len
                + strlen (purpose) + strlen (acting_user) + strlen (on_behalf_of);
    uint8_t *binding = (uint8_t *) malloc (size);
    assert (binding);
    uint8_t *cursor = binding;
    memcpy (cursor, S_BODY_DOMAIN, strlen (S_BODY_DOMAIN));
    cursor += strlen (S_BODY_DOMAIN);
    uint32_t type_value = (uint32_t) envelope->type;
    uint8_t type [4] = {
        (uint8_t) (type_value >> 24), (uint8_t) (type_value >> 16),
        (uint8_t) (type_value >> 8), (uint8_t) type_value
    };
    s_put_field (&cursor, envelope->id.data, envelope->id.len);
    s_put_field (&cursor, type, sizeof type);
    s_put_field (&cursor, sender, strlen (sender));
    s_put_field (&cursor, recipient_partner, strlen (recipient_partner));
    s_put_field (&cursor, recipient, strlen (recipient));
    s_put_field (&cursor, envelope->reference.data, envelope->reference.len);
    s_put_field (&cursor, envelope->subject.data, envelope->subject.len);
    s_put_field (&cursor, purpose, strlen (purpose));
    s_put_field (&cursor, acting_user, strlen (acting_user));
    s_put_field (&cursor, on_behalf_of, strlen (on_behalf_of));
    assert ((size_t) (cursor - binding) == size);
    *size_p = size;
    return binding;
}

//  binding || more, in a new buffer; caller frees
static uint8_t *
s_concat (const uint8_t *first, size_t first_size, const uint8_t *second,
          size_t second_size, size_t *size_p)
{
    uint8_t *joined = (uint8_t *) malloc (first_size + second_size + 1);
    assert (joined);
    memcpy (joined, first, first_size);
    if (second_size)
        memcpy (joined + first_size, second, second_size);
    *size_p = first_size + second_size;
    return joined;
}

//  --------------------------------------------------------------------------
//  Sign and seal body for its readers, bound to envelope

uint8_t *
kp_seal_body (kp_seal_t *self, const Kp__Wire__Envelope *envelope, const uint8_t *body,
              size_t body_size, const uint8_t (*reader_keys) [32], size_t reader_count,
              size_t *sealed_size_p)
{
    assert (self);
    assert (envelope);
    assert (body || body_size == 0);
    assert (reader_keys);
    assert (reader_count >= 1 && reader_count <= KP_SEAL_READERS_MAX);
    assert (sealed_size_p);
    size_t binding_size;
    uint8_t *binding = kp_seal_binding (envelope, &binding_size);

    //  The plaintext: signature over binding || body, then the body
    size_t signed_size;
    uint8_t *signed_data = s_concat (binding, binding_size, body, body_size,
                                     &signed_size);
    size_t plain_size = crypto_sign_BYTES + body_size;
    uint8_t *plain = (uint8_t *) sodium_malloc (plain_size);
    assert (plain);
    crypto_sign_detached (plain, NULL, signed_data, signed_size, S_SIGN_SECRET (self));
    if (body_size)
        memcpy (plain + crypto_sign_BYTES, body, body_size);
    sodium_memzero (signed_data, signed_size);
    free (signed_data);

    size_t header_size = 2 + reader_count * KP_SEAL_SLOT_SIZE + S_NONCE_SIZE;
    size_t sealed_size = header_size + plain_size + S_TAG_SIZE;
    uint8_t *sealed = (uint8_t *) malloc (sealed_size);
    assert (sealed);
    sealed [0] = KP_SEAL_VERSION;
    sealed [1] = (uint8_t) reader_count;
    //  Content key, nonce and the slots' ephemeral keys are derived from
    //  our signing secret, the binding and the body, so that a resend of
    //  the same message (same id) is byte for byte the same sealed body,
    //  as the broker requires of a resend. Different messages have
    //  different ids, hence unrelated keys.
    uint8_t *seed = (uint8_t *) sodium_malloc (crypto_generichash_KEYBYTES);
    uint8_t *key = (uint8_t *) sodium_malloc (S_KEY_SIZE);
    uint8_t *ephemeral = (uint8_t *) sodium_malloc (crypto_box_SEEDBYTES
                                                    + crypto_box_SECRETKEYBYTES);
    assert (seed && key && ephemeral);
    crypto_generichash_state state;
    crypto_generichash_init (&state, S_SIGN_SECRET (self), crypto_sign_SEEDBYTES,
                             crypto_generichash_KEYBYTES);
    crypto_generichash_update (&state, (const uint8_t *) "ketenpost-seal-v1", 17);
    crypto_generichash_update (&state, binding, binding_size);
    crypto_generichash_update (&state, plain, plain_size);
    crypto_generichash_final (&state, seed, crypto_generichash_KEYBYTES);
    sodium_memzero (&state, sizeof state);
    crypto_generichash (key, S_KEY_SIZE, (const uint8_t *) "key", 3, seed,
                        crypto_generichash_KEYBYTES);
    for (size_t reader = 0; reader < reader_count; reader++) {
        //  A crypto_box_seal slot: ephemeral public key || crypto_box of
        //  the content key with nonce BLAKE2b-192 (ephemeral pk || reader pk)
        uint8_t label [5] = { 's', 'l', 'o', 't', (uint8_t) reader };
        uint8_t *slot = sealed + 2 + reader * KP_SEAL_SLOT_SIZE;
        uint8_t slot_nonce [crypto_box_NONCEBYTES];
        crypto_generichash (ephemeral, crypto_box_SEEDBYTES, label, sizeof label, seed,
                            crypto_generichash_KEYBYTES);
        crypto_box_seed_keypair (slot, ephemeral + crypto_box_SEEDBYTES, ephemeral);
        crypto_generichash_init (&state, NULL, 0, sizeof slot_nonce);
        crypto_generichash_update (&state, slot, crypto_box_PUBLICKEYBYTES);
        crypto_generichash_update (&state, reader_keys [reader],
                                   crypto_box_PUBLICKEYBYTES);
        crypto_generichash_final (&state, slot_nonce, sizeof slot_nonce);
        int rc = crypto_box_easy (slot + crypto_box_PUBLICKEYBYTES, key, S_KEY_SIZE,
                                  slot_nonce, reader_keys [reader],
                                  ephemeral + crypto_box_SEEDBYTES);
        assert (rc == 0);
    }
    uint8_t *nonce = sealed + 2 + reader_count * KP_SEAL_SLOT_SIZE;
    crypto_generichash (nonce, S_NONCE_SIZE, (const uint8_t *) "nonce", 5, seed,
                        crypto_generichash_KEYBYTES);
    sodium_free (ephemeral);
    sodium_free (seed);

    //  Associated data: the binding and the whole header
    size_t ad_size;
    uint8_t *ad = s_concat (binding, binding_size, sealed, header_size, &ad_size);
    unsigned long long cipher_size = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt (sealed + header_size, &cipher_size,
                                                plain, plain_size, ad, ad_size, NULL,
                                                nonce, key);
    assert (cipher_size == plain_size + S_TAG_SIZE);
    sodium_free (key);
    sodium_free (plain);
    free (ad);
    free (binding);
    *sealed_size_p = sealed_size;
    return sealed;
}

//  --------------------------------------------------------------------------
//  Open as a reader: find our slot, decrypt; the plaintext or NULL

static uint8_t *
s_open (const Kp__Wire__Envelope *envelope, const uint8_t *sealed, size_t sealed_size,
        const uint8_t *seal_public, const uint8_t *seal_secret, size_t *plain_size_p,
        const char **reason_p)
{
    if (sealed_size < 2 || sealed [0] != KP_SEAL_VERSION) {
        *reason_p = "body is not sealed (unknown format)";
        return NULL;
    }
    size_t reader_count = sealed [1];
    size_t header_size = 2 + reader_count * KP_SEAL_SLOT_SIZE + S_NONCE_SIZE;
    if (reader_count < 1 || reader_count > KP_SEAL_READERS_MAX
    ||  sealed_size < header_size + S_TAG_SIZE + crypto_sign_BYTES) {
        *reason_p = "sealed body is truncated or malformed";
        return NULL;
    }
    uint8_t *key = (uint8_t *) sodium_malloc (S_KEY_SIZE);
    assert (key);
    bool found = false;
    for (size_t reader = 0; reader < reader_count && !found; reader++)
        found = crypto_box_seal_open (key, sealed + 2 + reader * KP_SEAL_SLOT_SIZE,
                                      KP_SEAL_SLOT_SIZE, seal_public, seal_secret) == 0;
    if (!found) {
        sodium_free (key);
        *reason_p = "sealed body is not sealed to our key";
        return NULL;
    }
    size_t binding_size;
    uint8_t *binding = kp_seal_binding (envelope, &binding_size);
    size_t ad_size;
    uint8_t *ad = s_concat (binding, binding_size, sealed, header_size, &ad_size);
    free (binding);
    size_t cipher_size = sealed_size - header_size;
    uint8_t *plain = (uint8_t *) malloc (cipher_size);
    assert (plain);
    unsigned long long plain_size = 0;
    int rc = crypto_aead_xchacha20poly1305_ietf_decrypt (
        plain, &plain_size, NULL, sealed + header_size, cipher_size, ad, ad_size,
        sealed + header_size - S_NONCE_SIZE, key);
    sodium_free (key);
    free (ad);
    if (rc) {
        free (plain);
        *reason_p = "sealed body does not open under this envelope (altered, or "
                    "moved from another message)";
        return NULL;
    }
    *plain_size_p = (size_t) plain_size;
    return plain;
}

uint8_t *
kp_seal_open_as (const Kp__Wire__Envelope *envelope, const uint8_t *sealed,
                 size_t sealed_size, const uint8_t *seal_public,
                 const uint8_t *seal_secret, size_t *plain_size_p)
{
    assert (envelope);
    assert (sealed);
    assert (seal_public);
    assert (seal_secret);
    assert (plain_size_p);
    const char *reason = NULL;
    return s_open (envelope, sealed, sealed_size, seal_public, seal_secret,
                   plain_size_p, &reason);
}

//  --------------------------------------------------------------------------
//  Open with our sealing key and check the sender's signature over the
//  binding and the body; the body (caller wipes and frees) or NULL + reason

static uint8_t *
s_open_signed (kp_seal_t *self, const Kp__Wire__Envelope *envelope,
               const uint8_t *sealed, size_t sealed_size, const uint8_t *sign_key,
               size_t *body_size_p, const char **reason_p)
{
    size_t plain_size = 0;
    uint8_t *plain = s_open (envelope, sealed, sealed_size, self->seal_key,
                             S_SEAL_SECRET (self), &plain_size, reason_p);
    if (!plain)
        return NULL;
    size_t body_size = plain_size - crypto_sign_BYTES;
    size_t binding_size;
    uint8_t *binding = kp_seal_binding (envelope, &binding_size);
    size_t signed_size;
    uint8_t *signed_data = s_concat (binding, binding_size, plain + crypto_sign_BYTES,
                                     body_size, &signed_size);
    int rc = crypto_sign_verify_detached (plain, signed_data, signed_size, sign_key);
    sodium_memzero (signed_data, signed_size);
    free (signed_data);
    free (binding);
    if (rc) {
        sodium_memzero (plain, plain_size);
        free (plain);
        *reason_p = "sender's signature on the body does not verify";
        return NULL;
    }
    memmove (plain, plain + crypto_sign_BYTES, body_size);
    sodium_memzero (plain + body_size, crypto_sign_BYTES);
    *body_size_p = body_size;
    return plain;
}

//  --------------------------------------------------------------------------
//  Open a body sealed to us and check the sender's signature

uint8_t *
kp_seal_open (kp_seal_t *self, const Kp__Wire__Envelope *envelope, const uint8_t *sealed,
              size_t sealed_size, const uint8_t *sign_key, size_t *body_size_p,
              const char **reason_p)
{
    assert (self);
    assert (envelope);
    assert (sealed || sealed_size == 0);
    assert (sign_key);
    assert (body_size_p);
    assert (reason_p);
    if (!envelope->recipient_partner
    ||  !streq (envelope->recipient_partner, self->partner)) {
        *reason_p = "envelope names another recipient";
        return NULL;
    }
    return s_open_signed (self, envelope, sealed, sealed_size, sign_key, body_size_p,
                          reason_p);
}

//  --------------------------------------------------------------------------
//  Open a body of which we are a reader but not the recipient (an auditor
//  the sender also sealed it to), with the same checks as kp_seal_open

uint8_t *
kp_seal_open_reader (kp_seal_t *self, const Kp__Wire__Envelope *envelope,
                     const uint8_t *sealed, size_t sealed_size, const uint8_t *sign_key,
                     size_t *body_size_p, const char **reason_p)
{
    assert (self);
    assert (envelope);
    assert (sealed || sealed_size == 0);
    assert (sign_key);
    assert (body_size_p);
    assert (reason_p);
    if (!envelope->sender || !envelope->recipient_partner) {
        *reason_p = "envelope names no sender or recipient: no binding";
        return NULL;
    }
    return s_open_signed (self, envelope, sealed, sealed_size, sign_key, body_size_p,
                          reason_p);
}

//  --------------------------------------------------------------------------
//  Receipts: version || id || body hash || acked at || L || recipient ||
//  signature over "ketenpost-receipt-v1" || everything before it

static size_t
s_receipt_signed (const uint8_t *receipt, size_t content_size, uint8_t *out)
{
    size_t domain_size = strlen (S_RECEIPT_DOMAIN);
    memcpy (out, S_RECEIPT_DOMAIN, domain_size);
    memcpy (out + domain_size, receipt, content_size);
    return domain_size + content_size;
}

size_t
kp_seal_receipt (kp_seal_t *self, const uint8_t *id, const uint8_t *body_hash,
                 int64_t acked_at_ms, uint8_t *receipt)
{
    assert (self);
    assert (id);
    assert (body_hash);
    assert (receipt);
    size_t partner_size = strlen (self->partner);
    receipt [0] = S_RECEIPT_VERSION;
    memcpy (receipt + 1, id, KP_ID_SIZE);
    memcpy (receipt + 17, body_hash, KP_HASH_SIZE);
    s_put_u64 (receipt + 49, (uint64_t) acked_at_ms);
    receipt [57] = (uint8_t) partner_size;
    memcpy (receipt + 58, self->partner, partner_size);
    size_t content_size = 58 + partner_size;
    uint8_t message [64 + KP_SEAL_RECEIPT_MAX];
    size_t message_size = s_receipt_signed (receipt, content_size, message);
    crypto_sign_detached (receipt + content_size, NULL, message, message_size,
                          S_SIGN_SECRET (self));
    return content_size + crypto_sign_BYTES;
}

int
kp_seal_receipt_verify (const uint8_t *receipt, size_t size, const uint8_t *sign_key,
                        const uint8_t *id, const char *recipient,
                        const uint8_t *body_hash, int64_t *acked_at_p,
                        const char **reason_p)
{
    assert (sign_key);
    assert (id);
    assert (recipient);
    assert (reason_p);
    if (!receipt || size < 58 + 1 + crypto_sign_BYTES || size > KP_SEAL_RECEIPT_MAX
    ||  receipt [0] != S_RECEIPT_VERSION
    ||  (size_t) receipt [57] + 58 + crypto_sign_BYTES != size) {
        *reason_p = "receipt is malformed";
        return -1;
    }
    size_t content_size = size - crypto_sign_BYTES;
    uint8_t message [64 + KP_SEAL_RECEIPT_MAX];
    size_t message_size = s_receipt_signed (receipt, content_size, message);
    if (crypto_sign_verify_detached (receipt + content_size, message, message_size,
                                     sign_key)) {
        *reason_p = "receipt signature does not verify with the recipient's key";
        return -1;
    }
    if (memcmp (receipt + 1, id, KP_ID_SIZE) != 0) {
        *reason_p = "receipt is about another message";
        return -1;
    }
    if (strlen (recipient) != receipt [57]
    ||  memcmp (receipt + 58, recipient, receipt [57]) != 0) {
        *reason_p = "receipt is signed by another partner";
        return -1;
    }
    if (body_hash && memcmp (receipt + 17, body_hash, KP_HASH_SIZE) != 0) {
        *reason_p = "receipt covers another body";
        return -1;
    }
    if (acked_at_p)
        *acked_at_p = (int64_t) s_get_u64 (receipt + 49);
    return 0;
}
