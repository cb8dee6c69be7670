/*  =========================================================================
    test_kp_seal - sealed and signed bodies, vouched keys, signed receipts

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
    Round trips, and every way a body or a key may be wrong: an envelope
    field changed, a body pasted under another envelope, a registration
    forged with another key, the wrong recipient key, a flipped byte, and
    auditors who can read only when the sender included them. Keys are
    made at runtime. Also the secret cert kp_region writes: its keys load,
    and the public cert never holds them.
*/
#include "kp_testutil.h"
#include "kp_seal.h"
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <sodium.h>

//  One party's keys and registration
typedef struct {
    char partner [65];
    Kp__Wire__Role role;
    uint8_t sign_public [32];
    uint8_t sign_secret [64];
    uint8_t seal_public [32];
    uint8_t seal_secret [32];
    uint8_t *registration;          //  packed Registration
    size_t registration_size;
} s_party_t;

static uint8_t s_region_public [32];
static uint8_t s_region_secret [64];

//  Pack a statement for party and sign it with secret; fills registration
static void
s_register (s_party_t *party, const uint8_t *secret, const char *region)
{
    Kp__Wire__RegistrationStatement statement = KP__WIRE__REGISTRATION_STATEMENT__INIT;
    uint8_t curve [32];
    randombytes_buf (curve, sizeof curve);
    statement.region = (char *) region;
    statement.partner = party->partner;
    statement.role = party->role;
    statement.curve_key.data = curve;
    statement.curve_key.len = 32;
    statement.sign_key.data = party->sign_public;
    statement.sign_key.len = 32;
    statement.seal_key.data = party->seal_public;
    statement.seal_key.len = 32;
    statement.registered_at_ms = 1795000000000;
    size_t size = kp__wire__registration_statement__get_packed_size (&statement);
    uint8_t *packed = malloc (size);
    kp__wire__registration_statement__pack (&statement, packed);
    uint8_t signature [64];
    crypto_sign_detached (signature, NULL, packed, size, secret);
    Kp__Wire__Registration registration = KP__WIRE__REGISTRATION__INIT;
    registration.statement.data = packed;
    registration.statement.len = size;
    registration.signature.data = signature;
    registration.signature.len = 64;
    free (party->registration);
    party->registration_size = kp__wire__registration__get_packed_size (&registration);
    party->registration = malloc (party->registration_size);
    kp__wire__registration__pack (&registration, party->registration);
    free (packed);
}

static void
s_party (s_party_t *party, const char *partner, Kp__Wire__Role role)
{
    memset (party, 0, sizeof *party);
    snprintf (party->partner, sizeof party->partner, "%s", partner);
    party->role = role;
    crypto_sign_keypair (party->sign_public, party->sign_secret);
    crypto_box_keypair (party->seal_public, party->seal_secret);
    s_register (party, s_region_secret, "test-region");
}

static s_party_t s_police, s_vt, s_auditor;

static void
s_setup (void)
{
    cr_assert_geq (sodium_init (), 0);
    crypto_sign_keypair (s_region_public, s_region_secret);
    s_party (&s_police, "police-oost", KP__WIRE__ROLE__POLICE);
    s_party (&s_vt, "vt-twente", KP__WIRE__ROLE__VEILIG_THUIS);
    s_party (&s_auditor, "audit-fg", KP__WIRE__ROLE__AUDITOR);
}

static void
s_teardown (void)
{
    free (s_police.registration);
    free (s_vt.registration);
    free (s_auditor.registration);
}

TestSuite (kp_seal, .init = s_setup, .fini = s_teardown, .timeout = 10.);

static kp_seal_t *
s_seal_of (const s_party_t *party)
{
    kp_seal_t *seal = kp_seal_new (party->partner, party->sign_secret, party->seal_secret);
    const char *reason = NULL;
    cr_assert_eq (kp_seal_set_region_key (seal, s_region_public, &reason), 0);
    return seal;
}

static uint8_t s_id [16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
static uint8_t s_other_id [16] = { 9 };
static uint8_t s_reference [16] = { 7, 7 };
static uint8_t s_subject [32] = { 5, 5, 5 };

//  A signal envelope from police to Veilig Thuis
static void
s_envelope (Kp__Wire__Envelope *envelope)
{
    Kp__Wire__Envelope init = KP__WIRE__ENVELOPE__INIT;
    *envelope = init;
    envelope->id.data = s_id;
    envelope->id.len = 16;
    envelope->type = KP__WIRE__MESSAGE_TYPE__SIGNAL;
    envelope->recipient = (char *) "municipality:GM0153";
    envelope->created_at_ms = 1795000000123;
    envelope->purpose = (char *) "jw-art-7";
    envelope->acting_user = (char *) "agent-4711";
    envelope->on_behalf_of = (char *) "basisteam";
    envelope->reference.data = s_reference;
    envelope->reference.len = 16;
    envelope->subject.data = s_subject;
    envelope->subject.len = 32;
    envelope->sender = (char *) "police-oost";
    envelope->sender_role = KP__WIRE__ROLE__POLICE;
    envelope->recipient_partner = (char *) "vt-twente";
    envelope->recipient_role = KP__WIRE__ROLE__VEILIG_THUIS;
}

#define S_BODY "MARKER-fictief-kind body bytes"

//  Seal S_BODY from police for readers
static uint8_t *
s_sealed (const Kp__Wire__Envelope *envelope, const s_party_t *const *readers,
          size_t count, size_t *size_p)
{
    kp_seal_t *police = s_seal_of (&s_police);
    uint8_t keys [KP_SEAL_READERS_MAX][32];
    for (size_t index = 0; index < count; index++)
        memcpy (keys [index], readers [index]->seal_public, 32);
    uint8_t *sealed = kp_seal_body (police, envelope, (const uint8_t *) S_BODY,
                                    strlen (S_BODY), (const uint8_t (*) [32]) keys,
                                    count, size_p);
    kp_seal_destroy (&police);
    return sealed;
}

//  Open as vt-twente; the body or NULL with *reason_p
static uint8_t *
s_open_vt (const Kp__Wire__Envelope *envelope, const uint8_t *sealed, size_t size,
           size_t *body_size_p, const char **reason_p)
{
    kp_seal_t *vt = s_seal_of (&s_vt);
    uint8_t *body = kp_seal_open (vt, envelope, sealed, size, s_police.sign_public,
                                  body_size_p, reason_p);
    kp_seal_destroy (&vt);
    return body;
}

Test (kp_seal, round_trip)
{
    Kp__Wire__Envelope envelope;
    s_envelope (&envelope);
    const s_party_t *readers [] = { &s_vt };
    size_t size;
    uint8_t *sealed = s_sealed (&envelope, readers, 1, &size);
    cr_assert_not_null (sealed);
    cr_expect_eq (sealed [0], KP_SEAL_VERSION);
    cr_expect_null (memmem (sealed, size, "MARKER", 6), "the body shows through");
    size_t body_size = 0;
    const char *reason = NULL;
    uint8_t *body = s_open_vt (&envelope, sealed, size, &body_size, &reason);
    cr_assert_not_null (body, "refused: %s", reason);
    cr_expect_eq (body_size, strlen (S_BODY));
    cr_expect_eq (memcmp (body, S_BODY, body_size), 0);
    free (body);
    //  Sealing is deterministic per message: a resend is the same bytes
    size_t again_size;
    uint8_t *again = s_sealed (&envelope, readers, 1, &again_size);
    cr_expect_eq (again_size, size);
    cr_expect_eq (memcmp (again, sealed, size), 0);
    free (again);
    free (sealed);
}

//  Each bound envelope field, changed after sealing
typedef enum {
    S_FIELD_ID, S_FIELD_TYPE, S_FIELD_SENDER, S_FIELD_RECIPIENT_PARTNER,
    S_FIELD_RECIPIENT, S_FIELD_REFERENCE, S_FIELD_SUBJECT,
    S_FIELD_PURPOSE, S_FIELD_USER, S_FIELD_BEHALF, S_FIELD_COUNT
} s_field_t;

ParameterizedTestParameters (kp_seal, changed_envelope_field_is_refused)
{
    static s_field_t fields [S_FIELD_COUNT];
    for (int index = 0; index < S_FIELD_COUNT; index++)
        fields [index] = (s_field_t) index;
    return cr_make_param_array (s_field_t, fields, S_FIELD_COUNT);
}

ParameterizedTest (s_field_t *field, kp_seal, changed_envelope_field_is_refused)
{
    Kp__Wire__Envelope envelope;
    s_envelope (&envelope);
    const s_party_t *readers [] = { &s_vt };
    size_t size;
    uint8_t *sealed = s_sealed (&envelope, readers, 1, &size);
    uint8_t other_subject [32] = { 6 };
    switch (*field) {
        case S_FIELD_ID: envelope.id.data = s_other_id; break;
        case S_FIELD_TYPE: envelope.type = KP__WIRE__MESSAGE_TYPE__REFERRAL; break;
        case S_FIELD_SENDER: envelope.sender = (char *) "lt-enschede"; break;
        case S_FIELD_RECIPIENT_PARTNER:
            //  opened by the right key, but the envelope names another
            //  recipient: refused before opening, and would not open
            envelope.recipient_partner = (char *) "vt-other"; break;
        case S_FIELD_RECIPIENT: envelope.recipient = (char *) "municipality:GM0164"; break;
        case S_FIELD_REFERENCE: envelope.reference.len = 0; break;
        case S_FIELD_SUBJECT: envelope.subject.data = other_subject; break;
        case S_FIELD_PURPOSE: envelope.purpose = (char *) "other"; break;
        case S_FIELD_USER: envelope.acting_user = (char *) "agent-0815"; break;
        case S_FIELD_BEHALF: envelope.on_behalf_of = (char *) ""; break;
        default: cr_assert_fail ();
    }
    size_t body_size;
    const char *reason = NULL;
    uint8_t *body = s_open_vt (&envelope, sealed, size, &body_size, &reason);
    cr_expect_null (body, "field %d changed, yet the body opened", (int) *field);
    cr_expect_not_null (reason);
    free (body);
    free (sealed);
}

Test (kp_seal, body_resealed_under_another_envelope_is_refused)
{
    //  The broker (or anyone) takes the sealed bytes of message A and puts
    //  them under the envelope of message B, with a matching hash
    Kp__Wire__Envelope first, second;
    s_envelope (&first);
    s_envelope (&second);
    second.id.data = s_other_id;
    const s_party_t *readers [] = { &s_vt };
    size_t size;
    uint8_t *sealed = s_sealed (&first, readers, 1, &size);
    size_t body_size;
    const char *reason = NULL;
    cr_expect_null (s_open_vt (&second, sealed, size, &body_size, &reason));
    cr_expect_not_null (strstr (reason, "does not open under this envelope"), "%s", reason);
    //  A reader who can open A re-encrypts its plaintext (signature and
    //  body) for B: the sender's signature covers A's envelope only
    size_t plain_size;
    uint8_t *plain = kp_seal_open_as (&first, sealed, size, s_vt.seal_public,
                                      s_vt.seal_secret, &plain_size);
    cr_assert_not_null (plain);
    kp_seal_t *forger = kp_seal_new ("vt-twente", s_vt.sign_secret, s_vt.seal_secret);
    uint8_t keys [1][32];
    memcpy (keys [0], s_vt.seal_public, 32);
    size_t forged_size;
    uint8_t *forged = kp_seal_body (forger, &second, plain + 64, plain_size - 64,
                                    (const uint8_t (*) [32]) keys, 1, &forged_size);
    kp_seal_destroy (&forger);
    //  ... signed with the forger's key, not the police's: refused
    uint8_t *body = s_open_vt (&second, forged, forged_size, &body_size, &reason);
    cr_expect_null (body);
    cr_expect_not_null (strstr (reason, "signature"), "%s", reason);
    free (body);
    free (forged);
    free (plain);
    free (sealed);
}

Test (kp_seal, forged_registration_is_refused)
{
    uint8_t other_public [32], other_secret [64];
    crypto_sign_keypair (other_public, other_secret);
    s_party_t mallory;
    s_party (&mallory, "vt-twente", KP__WIRE__ROLE__VEILIG_THUIS);
    //  Signed by another key than the region's: a lying broker's own key
    s_register (&mallory, other_secret, "test-region");
    Kp__Wire__Registration *registration =
        kp__wire__registration__unpack (NULL, mallory.registration_size,
                                        mallory.registration);
    cr_assert_not_null (registration);
    kp_seal_t *police = s_seal_of (&s_police);
    kp_vouched_t vouched;
    const char *reason = NULL;
    cr_expect_eq (kp_seal_verify (police, registration, &vouched, &reason), -1);
    cr_expect_not_null (strstr (reason, "not signed by the region"), "%s", reason);
    //  A flipped bit in a genuine statement
    registration->statement.data [registration->statement.len - 1] ^= 1;
    cr_expect_eq (kp_seal_verify (police, registration, &vouched, &reason), -1);
    kp__wire__registration__free_unpacked (registration, NULL);
    //  Another region's genuine registration
    s_register (&mallory, s_region_secret, "other-region");
    registration = kp__wire__registration__unpack (NULL, mallory.registration_size,
                                                   mallory.registration);
    kp_seal_t *own = kp_seal_new ("police-oost", s_police.sign_secret, s_police.seal_secret);
    //  our own region name comes with our own registration from the cert;
    //  here we check the statement's region directly
    cr_expect_eq (kp_seal_verify (police, registration, &vouched, &reason), 0);
    cr_expect_str_eq (vouched.region, "other-region");
    kp_seal_destroy (&own);
    kp__wire__registration__free_unpacked (registration, NULL);
    //  The genuine one verifies and yields the keys
    registration = kp__wire__registration__unpack (NULL, s_vt.registration_size,
                                                   s_vt.registration);
    cr_expect_eq (kp_seal_verify (police, registration, &vouched, &reason), 0);
    cr_expect_str_eq (vouched.partner, "vt-twente");
    cr_expect_eq (memcmp (vouched.seal_key, s_vt.seal_public, 32), 0);
    kp__wire__registration__free_unpacked (registration, NULL);
    //  No region key: nothing is trusted
    kp_seal_t *bare = kp_seal_new ("x", s_police.sign_secret, s_police.seal_secret);
    cr_expect_eq (kp_seal_verify (bare, NULL, &vouched, &reason), -1);
    kp_seal_destroy (&bare);
    kp_seal_destroy (&police);
    free (mallory.registration);
}

Test (kp_seal, wrong_recipient_key_is_refused)
{
    Kp__Wire__Envelope envelope;
    s_envelope (&envelope);
    const s_party_t *readers [] = { &s_auditor };     //  sealed to someone else
    size_t size;
    uint8_t *sealed = s_sealed (&envelope, readers, 1, &size);
    size_t body_size;
    const char *reason = NULL;
    cr_expect_null (s_open_vt (&envelope, sealed, size, &body_size, &reason));
    cr_expect_not_null (strstr (reason, "not sealed to our key"), "%s", reason);
    free (sealed);
}

Test (kp_seal, tampered_ciphertext_is_refused)
{
    Kp__Wire__Envelope envelope;
    s_envelope (&envelope);
    const s_party_t *readers [] = { &s_vt };
    size_t size;
    uint8_t *sealed = s_sealed (&envelope, readers, 1, &size);
    for (size_t offset = 0; offset < size; offset += 7) {
        sealed [offset] ^= 0x20;
        size_t body_size;
        const char *reason = NULL;
        uint8_t *body = s_open_vt (&envelope, sealed, size, &body_size, &reason);
        cr_expect_null (body, "flipped byte %zu went unnoticed", offset);
        free (body);
        sealed [offset] ^= 0x20;
    }
    size_t body_size;
    const char *reason = NULL;
    cr_expect_null (s_open_vt (&envelope, sealed, size - 1, &body_size, &reason));
    cr_expect_null (s_open_vt (&envelope, sealed, 10, &body_size, &reason));
    cr_expect_null (s_open_vt (&envelope, sealed, 0, &body_size, &reason));
    //  Signed by someone else than the sender the envelope names
    kp_seal_t *vt = s_seal_of (&s_vt);
    cr_expect_null (kp_seal_open (vt, &envelope, sealed, size, s_auditor.sign_public,
                                  &body_size, &reason));
    kp_seal_destroy (&vt);
    free (sealed);
}

Test (kp_seal, auditor_opens_only_when_included)
{
    Kp__Wire__Envelope envelope;
    s_envelope (&envelope);
    const s_party_t *with [] = { &s_vt, &s_auditor };
    size_t size;
    uint8_t *sealed = s_sealed (&envelope, with, 2, &size);
    size_t plain_size;
    uint8_t *plain = kp_seal_open_as (&envelope, sealed, size, s_auditor.seal_public,
                                      s_auditor.seal_secret, &plain_size);
    cr_assert_not_null (plain, "auditor included but cannot open");
    cr_expect_eq (memcmp (plain + 64, S_BODY, strlen (S_BODY)), 0);
    free (plain);
    size_t body_size;
    const char *reason = NULL;
    uint8_t *body = s_open_vt (&envelope, sealed, size, &body_size, &reason);
    cr_expect_not_null (body, "recipient cannot open: %s", reason);
    free (body);
    free (sealed);

    const s_party_t *without [] = { &s_vt };
    sealed = s_sealed (&envelope, without, 1, &size);
    cr_expect_null (kp_seal_open_as (&envelope, sealed, size, s_auditor.seal_public,
                                     s_auditor.seal_secret, &plain_size));
    free (sealed);
}

Test (kp_seal, receipt_is_signed_by_the_recipient)
{
    kp_seal_t *vt = s_seal_of (&s_vt);
    uint8_t hash [32] = { 4, 2 };
    uint8_t receipt [KP_SEAL_RECEIPT_MAX];
    size_t size = kp_seal_receipt (vt, s_id, hash, 1795000000999, receipt);
    kp_seal_destroy (&vt);
    int64_t acked_at = 0;
    const char *reason = NULL;
    cr_expect_eq (kp_seal_receipt_verify (receipt, size, s_vt.sign_public, s_id,
                                          "vt-twente", hash, &acked_at, &reason), 0,
                  "%s", reason);
    cr_expect_eq (acked_at, 1795000000999);
    cr_expect_eq (kp_seal_receipt_verify (receipt, size, s_vt.sign_public, s_id,
                                          "vt-twente", NULL, NULL, &reason), 0);
    //  Wrong key, message, recipient, body, or a flipped byte: refused
    cr_expect_eq (kp_seal_receipt_verify (receipt, size, s_police.sign_public, s_id,
                                          "vt-twente", hash, NULL, &reason), -1);
    cr_expect_eq (kp_seal_receipt_verify (receipt, size, s_vt.sign_public, s_other_id,
                                          "vt-twente", hash, NULL, &reason), -1);
    cr_expect_eq (kp_seal_receipt_verify (receipt, size, s_vt.sign_public, s_id,
                                          "lt-enschede", hash, NULL, &reason), -1);
    uint8_t other_hash [32] = { 4, 3 };
    cr_expect_eq (kp_seal_receipt_verify (receipt, size, s_vt.sign_public, s_id,
                                          "vt-twente", other_hash, NULL, &reason), -1);
    receipt [50] ^= 1;
    cr_expect_eq (kp_seal_receipt_verify (receipt, size, s_vt.sign_public, s_id,
                                          "vt-twente", hash, NULL, &reason), -1);
    cr_expect_eq (kp_seal_receipt_verify (receipt, 3, s_vt.sign_public, s_id,
                                          "vt-twente", hash, NULL, &reason), -1);
}

//  --------------------------------------------------------------------------
//  The keys kp_region writes

Test (kp_seal, region_cert_keys_load_and_stay_out_of_the_public_cert)
{
    kp_test_region_t *region = kp_test_region_new ();
    char *secret = kp_test_cert (region, "vt-twente");
    const char *reason = NULL;
    kp_seal_t *seal = kp_seal_load (secret, &reason);
    cr_assert_not_null (seal, "%s", reason);
    cr_expect_str_eq (kp_seal_partner (seal), "vt-twente");
    cr_expect_eq (kp_seal_load_region_key (seal, region->region_key, &reason), 0,
                  "%s", reason);
    //  Another region's key does not vouch for our cert
    char *other_path = zsys_sprintf ("%s/other.pub", region->dir);
    FILE *file = fopen (other_path, "w");
    uint8_t other_public [32], other_secret [64];
    crypto_sign_keypair (other_public, other_secret);
    char *hex = kp_hex_encode (other_public, 32);
    fprintf (file, "%s\n", hex);
    fclose (file);
    kp_seal_t *again = kp_seal_load (secret, &reason);
    cr_expect_eq (kp_seal_load_region_key (again, other_path, &reason), -1);
    kp_seal_destroy (&again);
    kp_seal_destroy (&seal);

    //  The public cert carries the registration, never a secret
    char *public_path = zsys_sprintf ("%s/partners/vt-twente", region->region);
    zconfig_t *root = zconfig_load (public_path);
    cr_assert_not_null (root);
    cr_expect_not_null (zconfig_get (root, "metadata/registration", NULL));
    cr_expect_null (zconfig_get (root, "metadata/sign-secret", NULL));
    cr_expect_null (zconfig_get (root, "metadata/seal-secret", NULL));
    cr_expect_null (zconfig_get (root, "curve/secret-key", NULL));
    zconfig_destroy (&root);
    root = zconfig_load (secret);
    cr_expect_eq (strlen (zconfig_get (root, "metadata/sign-secret", "")), 128);
    cr_expect_eq (strlen (zconfig_get (root, "metadata/seal-secret", "")), 64);
    zconfig_destroy (&root);
    //  A cert without keys (a stranger's zcert) loads no seal
    zcert_t *stranger = zcert_new ();
    char *stranger_path = zsys_sprintf ("%s/stranger", region->dir);
    zcert_save (stranger, stranger_path);
    zcert_destroy (&stranger);
    char *stranger_secret = zsys_sprintf ("%s_secret", stranger_path);
    cr_expect_null (kp_seal_load (stranger_secret, &reason));
    cr_expect_not_null (reason);
    free (stranger_secret);
    free (stranger_path);
    free (public_path);
    free (hex);
    free (other_path);
    free (secret);
    kp_test_region_destroy (&region);
}
