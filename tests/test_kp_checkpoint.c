/*  =========================================================================
    test_kp_checkpoint - signed-note checkpoints: signing, strict
    verification, key ids, and the region's key files

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
*/
#include <criterion/criterion.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>
#include "kp_checkpoint.h"
#include "kp_testutil.h"

#define ORIGIN      "ketenpost.example/region-twente"
#define KEY_NAME    "region-twente"
#define EM_DASH     "\xe2\x80\x94"

TestSuite (kp_checkpoint, .timeout = 60.);

//  A fresh Ed25519 key pair and a root
typedef struct {
    uint8_t public_key [crypto_sign_PUBLICKEYBYTES];
    uint8_t secret_key [crypto_sign_SECRETKEYBYTES];
    uint8_t root [32];
} s_keys_t;

static void
s_keys_new (s_keys_t *keys)
{
    cr_assert (sodium_init () >= 0);
    crypto_sign_keypair (keys->public_key, keys->secret_key);
    randombytes_buf (keys->root, sizeof keys->root);
}

static int
s_verify (const char *note, const s_keys_t *keys, kp_checkpoint_t *checkpoint,
          const char **error)
{
    return kp_checkpoint_verify (note, strlen (note), KEY_NAME, keys->public_key,
                                 checkpoint, error);
}

//  Verify must refuse note, with a reason
static void
s_assert_refused (const char *note, const s_keys_t *keys, const char *why)
{
    kp_checkpoint_t checkpoint;
    const char *error = NULL;
    cr_assert_eq (s_verify (note, keys, &checkpoint, &error), -1, "accepted: %s", why);
    cr_assert_not_null (error, "no reason given: %s", why);
}

//  A signature line "— name base64 (key id || signature of body)\n", signed
//  by the test itself, so that malformed bodies can carry a valid signature
static char *
s_signature_line (const char *body, const char *name, const s_keys_t *keys)
{
    uint8_t blob [4 + crypto_sign_BYTES];
    kp_checkpoint_key_id (name, keys->public_key, blob);
    crypto_sign_detached (blob + 4, NULL, (const uint8_t *) body, strlen (body),
                          keys->secret_key);
    char text [sodium_base64_ENCODED_LEN (sizeof blob, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64 (text, sizeof text, blob, sizeof blob,
                       sodium_base64_VARIANT_ORIGINAL);
    char *line = zsys_sprintf (EM_DASH " %s %s\n", name, text);
    cr_assert_not_null (line);
    return line;
}

//  body, blank line, and a signature line of ours over body
static char *
s_note_signed (const char *body, const s_keys_t *keys)
{
    char *line = s_signature_line (body, KEY_NAME, keys);
    char *note = zsys_sprintf ("%s\n%s", body, line);
    free (line);
    return note;
}

static char *
s_root_text (const uint8_t *root, size_t size)
{
    char *text = (char *) malloc (sodium_base64_ENCODED_LEN (size,
                                  sodium_base64_VARIANT_ORIGINAL));
    cr_assert_not_null (text);
    sodium_bin2base64 (text, sodium_base64_ENCODED_LEN (size,
                       sodium_base64_VARIANT_ORIGINAL), root, size,
                       sodium_base64_VARIANT_ORIGINAL);
    return text;
}

//  --------------------------------------------------------------------------

Test (kp_checkpoint, sign_then_verify)
{
    s_keys_t keys;
    s_keys_new (&keys);
    char *note = kp_checkpoint_sign (ORIGIN, 1234567, keys.root, KEY_NAME,
                                     keys.secret_key);
    cr_assert_not_null (note);
    //  The exact text: three body lines, a blank line, one signature line
    char *root_text = s_root_text (keys.root, 32);
    char *body = zsys_sprintf ("%s\n1234567\n%s\n", ORIGIN, root_text);
    char *expected = s_note_signed (body, &keys);
    cr_assert_str_eq (note, expected);

    kp_checkpoint_t checkpoint;
    const char *error = "unset";
    cr_assert_eq (s_verify (note, &keys, &checkpoint, &error), 0, "refused: %s", error);
    cr_assert_str_eq (checkpoint.origin, ORIGIN);
    cr_assert_eq (checkpoint.size, 1234567);
    cr_assert_arr_eq (checkpoint.root, keys.root, 32);

    //  Size 0 and the largest size
    free (note);
    note = kp_checkpoint_sign (ORIGIN, 0, keys.root, KEY_NAME, keys.secret_key);
    cr_assert_eq (s_verify (note, &keys, &checkpoint, &error), 0);
    cr_assert_eq (checkpoint.size, 0);
    free (note);
    note = kp_checkpoint_sign (ORIGIN, UINT64_MAX, keys.root, KEY_NAME, keys.secret_key);
    cr_assert_eq (s_verify (note, &keys, &checkpoint, &error), 0);
    cr_assert_eq (checkpoint.size, UINT64_MAX);
    cr_assert_not_null (strstr (note, "\n18446744073709551615\n"));
    free (note);
    free (root_text);
    free (body);
    free (expected);
}

Test (kp_checkpoint, every_single_byte_flip_is_refused)
{
    s_keys_t keys;
    s_keys_new (&keys);
    char *note = kp_checkpoint_sign (ORIGIN, 42, keys.root, KEY_NAME, keys.secret_key);
    cr_assert_not_null (note);
    size_t size = strlen (note);
    char *changed = strdup (note);
    size_t tried = 0;
    for (size_t at = 0; at < size; at++) {
        for (int flip = 0; flip < 9; flip++) {
            memcpy (changed, note, size + 1);
            changed [at] ^= flip < 8? (char) (1 << flip): (char) 0xff;
            kp_checkpoint_t checkpoint;
            const char *error = NULL;
            int rc = kp_checkpoint_verify (changed, size, KEY_NAME, keys.public_key,
                                           &checkpoint, &error);
            cr_assert_eq (rc, -1, "flip %d at byte %zu accepted", flip, at);
            cr_assert_not_null (error);
            tried++;
        }
    }
    cr_assert_eq (tried, size * 9);
    //  Cut at every length, and one byte more
    for (size_t length = 0; length < size; length++) {
        kp_checkpoint_t checkpoint;
        const char *error = NULL;
        cr_assert_eq (kp_checkpoint_verify (note, length, KEY_NAME, keys.public_key,
                                            &checkpoint, &error), -1,
                      "cut at %zu accepted", length);
    }
    char *longer = zsys_sprintf ("%sx", note);
    s_assert_refused (longer, &keys, "trailing byte");
    free (longer);
    free (changed);
    free (note);
}

Test (kp_checkpoint, wrong_key_or_key_name_is_refused)
{
    s_keys_t keys, other;
    s_keys_new (&keys);
    s_keys_new (&other);
    char *note = kp_checkpoint_sign (ORIGIN, 7, keys.root, KEY_NAME, keys.secret_key);
    kp_checkpoint_t checkpoint;
    const char *error = NULL;
    cr_assert_eq (kp_checkpoint_verify (note, strlen (note), KEY_NAME, other.public_key,
                                        &checkpoint, &error), -1);
    cr_assert_eq (kp_checkpoint_verify (note, strlen (note), "region-oost",
                                        keys.public_key, &checkpoint, &error), -1);
    free (note);

    //  Our name and our key id, but another key's signature
    char *root_text = s_root_text (keys.root, 32);
    char *body = zsys_sprintf ("%s\n7\n%s\n", ORIGIN, root_text);
    uint8_t blob [4 + crypto_sign_BYTES];
    kp_checkpoint_key_id (KEY_NAME, keys.public_key, blob);
    crypto_sign_detached (blob + 4, NULL, (const uint8_t *) body, strlen (body),
                          other.secret_key);
    char text [sodium_base64_ENCODED_LEN (sizeof blob, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64 (text, sizeof text, blob, sizeof blob,
                       sodium_base64_VARIANT_ORIGINAL);
    note = zsys_sprintf ("%s\n" EM_DASH " %s %s\n", body, KEY_NAME, text);
    cr_assert_eq (s_verify (note, &keys, &checkpoint, &error), -1);
    cr_assert_str_eq (error, "signature does not verify");
    free (note);
    free (body);
    free (root_text);
}

Test (kp_checkpoint, malformed_notes_are_refused)
{
    s_keys_t keys;
    s_keys_new (&keys);
    char *root = s_root_text (keys.root, 32);
    uint8_t bytes [33];
    memset (bytes, 0xab, sizeof bytes);
    char *root_31 = s_root_text (bytes, 31);
    char *root_33 = s_root_text (bytes, 33);
    //  The canonical text of the root, with the unused low bits of its last
    //  character set: the same bytes in a non-canonical encoding
    char *root_loose = strdup (root);
    const char *alphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    int value = (int) (strchr (alphabet, root_loose [42]) - alphabet);
    root_loose [42] = alphabet [value | 3];
    if (streq (root_loose, root))
        root_loose [42] = alphabet [value & ~3];
    cr_assert_str_neq (root_loose, root);
    char *root_short = strndup (root, 43);

    //  Bodies that are signed properly but are not a checkpoint: origin,
    //  size and root lines (NULL root: the good one)
    struct {
        const char *why;
        const char *origin, *size, *root;
    } lines [] = {
        { "size with a leading zero", ORIGIN, "012", NULL },
        { "size 00", ORIGIN, "00", NULL },
        { "size with a sign", ORIGIN, "+12", NULL },
        { "negative size", ORIGIN, "-1", NULL },
        { "empty size", ORIGIN, "", NULL },
        { "size past 2^64", ORIGIN, "18446744073709551616", NULL },
        { "size with a space", ORIGIN, "12 ", NULL },
        { "root of 31 bytes", ORIGIN, "12", root_31 },
        { "root of 33 bytes", ORIGIN, "12", root_33 },
        { "root not base64", ORIGIN, "12",
          "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!=" },
        { "root in url-safe base64", ORIGIN, "12",
          "-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_8=" },
        { "root without padding", ORIGIN, "12", root_short },
        { "root in a non-canonical encoding", ORIGIN, "12", root_loose },
        { "root in hex", ORIGIN, "12",
          "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff" },
        { "empty root", ORIGIN, "12", "" },
        { "empty origin", "", "12", NULL },
        { "origin with a tab", "a\tb", "12", NULL },
        { "origin with a carriage return", ORIGIN "\r", "12", NULL },
        { "origin with UTF-8", "caf\xc3\xa9", "12", NULL },
        { "extra body line", ORIGIN, "12\nextension", NULL },
    };
    for (size_t item = 0; item < sizeof lines / sizeof lines [0]; item++) {
        char *body = zsys_sprintf ("%s\n%s\n%s\n", lines [item].origin,
                                   lines [item].size,
                                   lines [item].root? lines [item].root: root);
        char *note = s_note_signed (body, &keys);
        s_assert_refused (note, &keys, lines [item].why);
        free (note);
        free (body);
    }
    char *two_lines = zsys_sprintf ("%s\n12\n", ORIGIN);
    char *note = s_note_signed (two_lines, &keys);
    s_assert_refused (note, &keys, "two body lines");
    free (note);
    free (two_lines);

    //  Good body, bad layout after it
    char *body = zsys_sprintf ("%s\n12\n%s\n", ORIGIN, root);
    char *line = s_signature_line (body, KEY_NAME, &keys);
    char *good = zsys_sprintf ("%s\n%s", body, line);
    kp_checkpoint_t checkpoint;
    const char *error = NULL;
    cr_assert_eq (s_verify (good, &keys, &checkpoint, &error), 0, "%s", error);
    struct {
        const char *why;
        char *note;
    } notes [] = {
        { "missing blank line", zsys_sprintf ("%s%s", body, line) },
        { "two blank lines", zsys_sprintf ("%s\n\n%s", body, line) },
        { "no signature line", zsys_sprintf ("%s\n", body) },
        { "no final newline", zsys_sprintf ("%s\n%.*s", body, (int) strlen (line) - 1,
                                            line) },
        { "extra line after the signature", zsys_sprintf ("%s\n%sextra\n", body, line) },
        { "blank line after the signature", zsys_sprintf ("%s\n%s\n", body, line) },
        { "signature line without em dash", zsys_sprintf ("%s\n%s", body, line + 3) },
        { "hyphen for em dash", zsys_sprintf ("%s\n- %s", body, line + 4) },
        { "CRLF line ends", zsys_sprintf ("%s\r\n%s", body, line) },
        { "two spaces after the dash", zsys_sprintf ("%s\n" EM_DASH "  %s", body,
                                                     line + 4) },
    };
    for (size_t item = 0; item < sizeof notes / sizeof notes [0]; item++) {
        cr_assert_not_null (notes [item].note);
        s_assert_refused (notes [item].note, &keys, notes [item].why);
        free (notes [item].note);
    }
    //  A NUL byte inside an otherwise good note
    char *with_nul = strdup (good);
    with_nul [5] = 0;
    cr_assert_eq (kp_checkpoint_verify (with_nul, strlen (good), KEY_NAME,
                                        keys.public_key, &checkpoint, &error), -1);
    cr_assert_eq (kp_checkpoint_verify (good, 0, KEY_NAME, keys.public_key,
                                        &checkpoint, &error), -1);
    free (with_nul);
    free (good);
    free (line);
    free (body);
    free (root);
    free (root_31);
    free (root_33);
    free (root_loose);
    free (root_short);
}

Test (kp_checkpoint, one_good_signature_of_ours_among_others)
{
    s_keys_t keys, witness;
    s_keys_new (&keys);
    s_keys_new (&witness);
    char *root = s_root_text (keys.root, 32);
    char *body = zsys_sprintf ("%s\n99\n%s\n", ORIGIN, root);
    char *ours = s_signature_line (body, KEY_NAME, &keys);
    char *theirs = s_signature_line (body, "witness.example", &witness);
    kp_checkpoint_t checkpoint;
    const char *error = NULL;

    char *note = zsys_sprintf ("%s\n%s%s", body, ours, theirs);
    cr_assert_eq (s_verify (note, &keys, &checkpoint, &error), 0, "%s", error);
    cr_assert_eq (checkpoint.size, 99);
    free (note);
    note = zsys_sprintf ("%s\n%s%s", body, theirs, ours);
    cr_assert_eq (s_verify (note, &keys, &checkpoint, &error), 0, "%s", error);
    free (note);
    //  Only theirs
    note = zsys_sprintf ("%s\n%s", body, theirs);
    s_assert_refused (note, &keys, "only a witness signature");
    free (note);
    //  Ours under the witness's name (right key, wrong name)
    char *renamed = s_signature_line (body, "witness.example", &keys);
    note = zsys_sprintf ("%s\n%s%s", body, theirs, renamed);
    s_assert_refused (note, &keys, "our key under another name");
    free (note);
    free (renamed);
    //  A good one of ours and a broken one of ours: accepted
    char *broken = strdup (ours);
    //  Another base64 letter well inside the line: still valid base64,
    //  a different signature (a bit flip could make it invalid base64)
    char *letter = broken + strlen (broken) - 10;
    *letter = *letter == 'A'? 'B': 'A';
    note = zsys_sprintf ("%s\n%s%s", body, broken, ours);
    cr_assert_eq (s_verify (note, &keys, &checkpoint, &error), 0, "%s", error);
    free (note);
    //  A witness line with bad base64 makes the note malformed
    note = zsys_sprintf ("%s\n%s" EM_DASH " witness.example !!!!\n", body, ours);
    s_assert_refused (note, &keys, "witness line with bad base64");
    free (note);
    free (broken);
    free (ours);
    free (theirs);
    free (body);
    free (root);
}

Test (kp_checkpoint, key_id_and_vkey_by_hand)
{
    s_keys_t keys;
    s_keys_new (&keys);
    //  SHA-256 ("region-twente" || "\n" || 0x01 || public key), first 4 bytes
    uint8_t input [sizeof KEY_NAME - 1 + 2 + 32];
    memcpy (input, KEY_NAME, sizeof KEY_NAME - 1);
    input [sizeof KEY_NAME - 1] = '\n';
    input [sizeof KEY_NAME] = 0x01;
    memcpy (input + sizeof KEY_NAME + 1, keys.public_key, 32);
    uint8_t hash [32];
    crypto_hash_sha256 (hash, input, sizeof input);
    uint8_t key_id [4];
    kp_checkpoint_key_id (KEY_NAME, keys.public_key, key_id);
    cr_assert_arr_eq (key_id, hash, 4);

    //  The verifier key: name+hex id+base64 (0x01 || key)
    char *vkey = kp_checkpoint_vkey (KEY_NAME, keys.public_key);
    cr_assert_not_null (vkey);
    uint8_t typed [33];
    typed [0] = 0x01;
    memcpy (typed + 1, keys.public_key, 32);
    char *typed_text = s_root_text (typed, sizeof typed);
    char *expected = zsys_sprintf ("%s+%02x%02x%02x%02x+%s", KEY_NAME, hash [0],
                                   hash [1], hash [2], hash [3], typed_text);
    cr_assert_str_eq (vkey, expected);
    free (vkey);
    free (expected);
    free (typed_text);

    //  The signature line of a signed note starts with that key id
    char *note = kp_checkpoint_sign (ORIGIN, 1, keys.root, KEY_NAME, keys.secret_key);
    const char *line = strstr (note, "\n\n" EM_DASH " " KEY_NAME " ");
    cr_assert_not_null (line);
    const char *text = line + 2 + 4 + strlen (KEY_NAME) + 1;
    uint8_t blob [68];
    size_t length = 0;
    cr_assert_eq (sodium_base642bin (blob, sizeof blob, text, strlen (text) - 1, NULL,
                                     &length, NULL, sodium_base64_VARIANT_ORIGINAL), 0);
    cr_assert_eq (length, 68);
    cr_assert_arr_eq (blob, hash, 4);
    free (note);
}

Test (kp_checkpoint, bad_sign_arguments_give_null)
{
    s_keys_t keys;
    s_keys_new (&keys);
    char long_text [KP_CHECKPOINT_MAX_ORIGIN + 2];
    memset (long_text, 'a', sizeof long_text - 1);
    long_text [sizeof long_text - 1] = 0;
    cr_assert_null (kp_checkpoint_sign ("", 1, keys.root, KEY_NAME, keys.secret_key));
    cr_assert_null (kp_checkpoint_sign ("a\nb", 1, keys.root, KEY_NAME, keys.secret_key));
    cr_assert_null (kp_checkpoint_sign (long_text, 1, keys.root, KEY_NAME,
                                        keys.secret_key));
    cr_assert_null (kp_checkpoint_sign (ORIGIN, 1, keys.root, "", keys.secret_key));
    cr_assert_null (kp_checkpoint_sign (ORIGIN, 1, keys.root, "a b", keys.secret_key));
    cr_assert_null (kp_checkpoint_sign (ORIGIN, 1, keys.root, "a+b", keys.secret_key));
    cr_assert_null (kp_checkpoint_sign (ORIGIN, 1, keys.root, long_text,
                                        keys.secret_key));
    cr_assert_null (kp_checkpoint_vkey ("a b", keys.public_key));
    //  The longest valid ones
    long_text [KP_CHECKPOINT_MAX_ORIGIN] = 0;
    char *note = kp_checkpoint_sign (long_text, 1, keys.root, long_text, keys.secret_key);
    cr_assert_not_null (note);
    kp_checkpoint_t checkpoint;
    const char *error = NULL;
    cr_assert_eq (kp_checkpoint_verify (note, strlen (note), long_text, keys.public_key,
                                        &checkpoint, &error), 0, "%s", error);
    cr_assert_str_eq (checkpoint.origin, long_text);
    free (note);
    note = kp_checkpoint_sign ("origin with spaces", 1, keys.root, KEY_NAME,
                               keys.secret_key);
    cr_assert_eq (s_verify (note, &keys, &checkpoint, &error), 0, "%s", error);
    cr_assert_str_eq (checkpoint.origin, "origin with spaces");
    free (note);
}

//  --------------------------------------------------------------------------
//  The region's key files

//  Run a load with stdout and stderr sent to a file; returns what it logged
static char *
s_logged (int (*load) (const char *, uint8_t *), const char *region, uint8_t *key,
          int *rc_p)
{
    char *dir = kp_test_tempdir ();
    char *path = zsys_sprintf ("%s/log", dir);
    fflush (stdout);
    fflush (stderr);
    int saved_out = dup (1), saved_err = dup (2);
    int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert (fd >= 0);
    dup2 (fd, 1);
    dup2 (fd, 2);
    *rc_p = load (region, key);
    fflush (stdout);
    fflush (stderr);
    dup2 (saved_out, 1);
    dup2 (saved_err, 2);
    close (saved_out);
    close (saved_err);
    close (fd);
    char text [4096] = "";
    fd = open (path, O_RDONLY);
    ssize_t length = read (fd, text, sizeof text - 1);
    close (fd);
    text [length > 0? length: 0] = 0;
    kp_test_rmtree (dir);
    free (path);
    free (dir);
    return strdup (text);
}

static void
s_file_write (const char *path, const char *text, mode_t mode)
{
    unlink (path);
    int fd = open (path, O_WRONLY | O_CREAT | O_EXCL, mode);
    cr_assert (fd >= 0, "%s: %s", path, strerror (errno));
    cr_assert_eq (write (fd, text, strlen (text)), (ssize_t) strlen (text));
    cr_assert_eq (fchmod (fd, mode), 0);
    close (fd);
}

static char *
s_file_read (const char *path)
{
    char text [512];
    int fd = open (path, O_RDONLY);
    cr_assert (fd >= 0);
    ssize_t length = read (fd, text, sizeof text - 1);
    close (fd);
    cr_assert (length > 0);
    text [length] = 0;
    return strdup (text);
}

Test (kp_checkpoint, keys_load_from_a_region)
{
    char *dir = kp_test_tempdir ();
    char *region = zsys_sprintf ("%s/region", dir);
    cr_assert_eq (kp_region_init (region, "broker-1"), 0);
    uint8_t public_key [KP_CHECKPOINT_PUBLIC];
    uint8_t *secret_key = (uint8_t *) sodium_malloc (KP_CHECKPOINT_SECRET);
    cr_assert_not_null (secret_key);
    cr_assert_eq (kp_checkpoint_load_public (region, public_key), 0);
    cr_assert_eq (kp_checkpoint_load_secret (region, secret_key), 0);
    //  The secret's public half is the public key
    cr_assert_arr_eq (secret_key + 32, public_key, 32);
    uint8_t root [32];
    randombytes_buf (root, sizeof root);
    char *note = kp_checkpoint_sign ("broker-1", 5, root, "broker-1", secret_key);
    kp_checkpoint_t checkpoint;
    const char *error = NULL;
    cr_assert_eq (kp_checkpoint_verify (note, strlen (note), "broker-1", public_key,
                                        &checkpoint, &error), 0, "%s", error);
    cr_assert_eq (checkpoint.size, 5);
    free (note);
    sodium_memzero (secret_key, KP_CHECKPOINT_SECRET);
    sodium_free (secret_key);
    kp_test_rmtree (dir);
    free (region);
    free (dir);
}

Test (kp_checkpoint, bad_key_files_are_refused_without_showing_the_key)
{
    char *dir = kp_test_tempdir ();
    char *region = zsys_sprintf ("%s/region", dir);
    cr_assert_eq (kp_region_init (region, "broker-1"), 0);
    char *secret_path = zsys_sprintf ("%s/checkpoint_secret", region);
    char *public_path = zsys_sprintf ("%s/checkpoint.pub", region);
    char *secret_text = s_file_read (secret_path);
    cr_assert_eq (strlen (secret_text), 129);
    uint8_t key [KP_CHECKPOINT_SECRET];
    int rc;

    //  Readable by others
    cr_assert_eq (chmod (secret_path, 0644), 0);
    char *logged = s_logged (kp_checkpoint_load_secret, region, key, &rc);
    cr_assert_eq (rc, -1);
    cr_assert_not_null (strstr (logged, secret_path), "logged: %s", logged);
    free (logged);

    //  Its public half changed: damaged
    char *damaged = strdup (secret_text);
    damaged [100] = damaged [100] == '0'? '1': '0';
    s_file_write (secret_path, damaged, 0600);
    logged = s_logged (kp_checkpoint_load_secret, region, key, &rc);
    cr_assert_eq (rc, -1);
    cr_assert_not_null (strstr (logged, "checkpoint_secret"), "logged: %s", logged);
    //  Neither half of the key appears in what was logged
    cr_assert_null (strstr (logged, (char []) { secret_text [0], secret_text [1],
                            secret_text [2], secret_text [3], secret_text [4],
                            secret_text [5], secret_text [6], secret_text [7], 0 }));
    cr_assert_null (strstr (logged, damaged + 64));
    free (logged);
    //  Not hex, too short, two lines, empty
    const char *bad [] = { "zz", "abcd\n", "", NULL };
    char *two_lines = zsys_sprintf ("%s%s", secret_text, secret_text);
    char *not_hex = strdup (secret_text);
    not_hex [10] = 'g';
    for (int item = 0; bad [item]; item++) {
        s_file_write (secret_path, bad [item], 0600);
        cr_assert_eq (kp_checkpoint_load_secret (region, key), -1, "%s", bad [item]);
    }
    s_file_write (secret_path, two_lines, 0600);
    cr_assert_eq (kp_checkpoint_load_secret (region, key), -1);
    s_file_write (secret_path, not_hex, 0600);
    logged = s_logged (kp_checkpoint_load_secret, region, key, &rc);
    cr_assert_eq (rc, -1);
    cr_assert_null (strstr (logged, not_hex + 20), "logged: %s", logged);
    free (logged);
    //  Restored: loads again; without the final newline too
    s_file_write (secret_path, secret_text, 0600);
    cr_assert_eq (kp_checkpoint_load_secret (region, key), 0);
    secret_text [128] = 0;
    s_file_write (secret_path, secret_text, 0600);
    cr_assert_eq (kp_checkpoint_load_secret (region, key), 0);
    //  Missing files
    cr_assert_eq (unlink (secret_path), 0);
    cr_assert_eq (kp_checkpoint_load_secret (region, key), -1);
    uint8_t public_key [KP_CHECKPOINT_PUBLIC];
    s_file_write (public_path, "0011\n", 0644);
    cr_assert_eq (kp_checkpoint_load_public (region, public_key), -1);
    cr_assert_eq (unlink (public_path), 0);
    cr_assert_eq (kp_checkpoint_load_public (region, public_key), -1);

    sodium_memzero (key, sizeof key);
    sodium_memzero (secret_text, strlen (secret_text));
    free (secret_text);
    free (damaged);
    free (two_lines);
    free (not_hex);
    free (secret_path);
    free (public_path);
    kp_test_rmtree (dir);
    free (region);
    free (dir);
}
