/*  =========================================================================
    kp_checkpoint - signed tree heads in the C2SP signed-note format

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    Signs and verifies C2SP tlog-checkpoint notes with Ed25519, and loads
    the region's checkpoint keys (hex files written by kp_region). The
    verifier is strict: it accepts exactly one form of each line and
    refuses anything else with a static reason. Stateless; safe from any
    thread.
@end
*/
#include <czmq.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>
#include "kp_checkpoint.h"
#include "kp_util.h"

#define S_EM_DASH           "\xe2\x80\x94 "     //  U+2014 and a space
#define S_EM_DASH_SIZE      4
#define S_ALGORITHM_ED25519 0x01                //  signed-note signature type
#define S_KEY_ID            4                   //  key id bytes
#define S_SIGNATURE         (S_KEY_ID + crypto_sign_BYTES)
#define S_ROOT_BASE64       44                  //  base64 of 32 bytes
#define S_MAX_NOTE          65536               //  bytes in a note we read
#define S_MAX_SIGNATURES    100                 //  signature lines in a note
#define S_MAX_SIGNATURE     512                 //  decoded bytes of one line
#define S_MAX_SIZE_DIGITS   20                  //  digits of UINT64_MAX
#define S_KEY_FILE_MAX      256                 //  bytes in a hex key file

//  --------------------------------------------------------------------------
//  True if text [0, size) is 1..KP_CHECKPOINT_MAX_ORIGIN printable ASCII
//  characters; spaces too if spaces is true, and never '+' if plus is false

static bool
s_text_valid (const char *text, size_t size, bool spaces, bool plus)
{
    if (size == 0 || size > KP_CHECKPOINT_MAX_ORIGIN)
        return false;
    for (size_t index = 0; index < size; index++) {
        unsigned char c = (unsigned char) text [index];
        if (c < 0x20 || c > 0x7e || (c == ' ' && !spaces) || (c == '+' && !plus))
            return false;
    }
    return true;
}

//  --------------------------------------------------------------------------
//  The 4-byte key id of public_key under key_name: the first bytes of
//  SHA-256 (key_name || "\n" || 0x01 || public_key)

void
kp_checkpoint_key_id (const char *key_name, const uint8_t *public_key, uint8_t *key_id)
{
    assert (key_name);
    assert (public_key);
    assert (key_id);
    const uint8_t separator [2] = { '\n', S_ALGORITHM_ED25519 };
    uint8_t hash [crypto_hash_sha256_BYTES];
    crypto_hash_sha256_state state;
    crypto_hash_sha256_init (&state);
    crypto_hash_sha256_update (&state, (const uint8_t *) key_name, strlen (key_name));
    crypto_hash_sha256_update (&state, separator, sizeof separator);
    crypto_hash_sha256_update (&state, public_key, KP_CHECKPOINT_PUBLIC);
    crypto_hash_sha256_final (&state, hash);
    memcpy (key_id, hash, S_KEY_ID);
}

//  --------------------------------------------------------------------------
//  The verifier key string "<name>+<key id hex>+<base64 (0x01 || key)>";
//  caller frees. NULL if key_name is not a valid key name.

char *
kp_checkpoint_vkey (const char *key_name, const uint8_t *public_key)
{
    assert (key_name);
    assert (public_key);
    if (!s_text_valid (key_name, strlen (key_name), false, false))
        return NULL;
    uint8_t key_id [S_KEY_ID];
    kp_checkpoint_key_id (key_name, public_key, key_id);
    uint8_t typed_key [1 + KP_CHECKPOINT_PUBLIC];
    typed_key [0] = S_ALGORITHM_ED25519;
    memcpy (typed_key + 1, public_key, KP_CHECKPOINT_PUBLIC);
    char key_text [sodium_base64_ENCODED_LEN (1 + KP_CHECKPOINT_PUBLIC,
                                              sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64 (key_text, sizeof key_text, typed_key, sizeof typed_key,
                       sodium_base64_VARIANT_ORIGINAL);
    char *vkey = zsys_sprintf ("%s+%02x%02x%02x%02x+%s", key_name, key_id [0],
                               key_id [1], key_id [2], key_id [3], key_text);
    assert (vkey);
    return vkey;
}

//  --------------------------------------------------------------------------
//  Sign a checkpoint; see kp_checkpoint.h. The signature covers the three
//  body lines with their newlines; the key id comes from the public half
//  of the libsodium secret key (its last 32 bytes).

char *
kp_checkpoint_sign (const char *origin, uint64_t size, const uint8_t *root,
                    const char *key_name, const uint8_t *secret_key)
{
    assert (origin);
    assert (root);
    assert (key_name);
    assert (secret_key);
    if (!s_text_valid (origin, strlen (origin), true, true)
    ||  !s_text_valid (key_name, strlen (key_name), false, false))
        return NULL;
    if (sodium_init () < 0)
        return NULL;

    char root_text [sodium_base64_ENCODED_LEN (32, sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64 (root_text, sizeof root_text, root, 32,
                       sodium_base64_VARIANT_ORIGINAL);
    char *body = zsys_sprintf ("%s\n%" PRIu64 "\n%s\n", origin, size, root_text);
    assert (body);

    uint8_t public_key [KP_CHECKPOINT_PUBLIC];
    crypto_sign_ed25519_sk_to_pk (public_key, secret_key);
    uint8_t signature [S_SIGNATURE];
    kp_checkpoint_key_id (key_name, public_key, signature);
    crypto_sign_detached (signature + S_KEY_ID, NULL, (const uint8_t *) body,
                          strlen (body), secret_key);
    char signature_text [sodium_base64_ENCODED_LEN (S_SIGNATURE,
                                                    sodium_base64_VARIANT_ORIGINAL)];
    sodium_bin2base64 (signature_text, sizeof signature_text, signature,
                       sizeof signature, sodium_base64_VARIANT_ORIGINAL);
    char *note = zsys_sprintf ("%s\n" S_EM_DASH "%s %s\n", body, key_name,
                               signature_text);
    assert (note);
    free (body);
    return note;
}

//  --------------------------------------------------------------------------
//  Decode standard base64 text [0, size) into out (room for limit bytes),
//  accepting only the canonical encoding (with padding, and nothing that
//  encodes the same bytes differently), so that no two texts give the same
//  bytes. Returns the decoded length, or -1.

static int
s_base64_decode (const char *text, size_t size, uint8_t *out, size_t limit)
{
    size_t length;
    if (size == 0
    ||  sodium_base642bin (out, limit, text, size, NULL, &length, NULL,
                           sodium_base64_VARIANT_ORIGINAL))
        return -1;
    size_t encoded_size = sodium_base64_ENCODED_LEN (length,
                                                     sodium_base64_VARIANT_ORIGINAL);
    char *encoded = (char *) malloc (encoded_size);
    assert (encoded);
    sodium_bin2base64 (encoded, encoded_size, out, length,
                       sodium_base64_VARIANT_ORIGINAL);
    bool canonical = strlen (encoded) == size && memcmp (encoded, text, size) == 0;
    free (encoded);
    return canonical? (int) length: -1;
}

//  --------------------------------------------------------------------------
//  Parse a tree size: decimal digits, no sign, no leading zero but in "0",
//  at most UINT64_MAX. Returns 0 or -1.

static int
s_size_parse (const char *text, size_t size, uint64_t *value_p)
{
    if (size == 0 || size > S_MAX_SIZE_DIGITS || (text [0] == '0' && size > 1))
        return -1;
    uint64_t value = 0;
    for (size_t index = 0; index < size; index++) {
        if (text [index] < '0' || text [index] > '9')
            return -1;
        uint64_t digit = (uint64_t) (text [index] - '0');
        if (value > (UINT64_MAX - digit) / 10)
            return -1;
        value = value * 10 + digit;
    }
    *value_p = value;
    return 0;
}

//  --------------------------------------------------------------------------
//  Parse and verify a checkpoint note; see kp_checkpoint.h. The note is
//  exactly: origin, size and root lines; an empty line; one or more
//  signature lines "— <name> <base64>"; every line ends with "\n". We check
//  the form of every line, then look for a line of ours (name and key id)
//  whose signature over the body verifies.

int
kp_checkpoint_verify (const char *note, size_t note_size, const char *key_name,
                      const uint8_t *public_key, kp_checkpoint_t *checkpoint,
                      const char **error)
{
    assert (note);
    assert (key_name);
    assert (public_key);
    assert (checkpoint);
    assert (error);
    *error = NULL;
    if (sodium_init () < 0) {
        *error = "libsodium does not start";
        return -1;
    }
    if (note_size == 0) {
        *error = "note is empty";
        return -1;
    }
    if (note_size > S_MAX_NOTE) {
        *error = "note is too long";
        return -1;
    }
    if (memchr (note, 0, note_size)) {
        *error = "note contains a NUL byte";
        return -1;
    }
    if (note [note_size - 1] != '\n') {
        *error = "note does not end with a newline";
        return -1;
    }
    const char *end = note + note_size;

    //  The body: origin, size, root
    const char *origin = note;
    const char *newline = (const char *) memchr (origin, '\n', (size_t) (end - origin));
    if (!s_text_valid (origin, (size_t) (newline - origin), true, true)) {
        *error = "origin line is not 1-256 printable ASCII characters";
        return -1;
    }
    size_t origin_size = (size_t) (newline - origin);
    const char *size_line = newline + 1;
    newline = (const char *) memchr (size_line, '\n', (size_t) (end - size_line));
    if (!newline) {
        *error = "note has no tree size line";
        return -1;
    }
    uint64_t tree_size;
    if (s_size_parse (size_line, (size_t) (newline - size_line), &tree_size)) {
        *error = "tree size is not a decimal number without leading zeros";
        return -1;
    }
    const char *root_line = newline + 1;
    newline = (const char *) memchr (root_line, '\n', (size_t) (end - root_line));
    if (!newline) {
        *error = "note has no root hash line";
        return -1;
    }
    uint8_t root [32 + 3];          //  room to tell a longer root apart
    if (s_base64_decode (root_line, (size_t) (newline - root_line), root,
                         sizeof root) != 32) {
        *error = "root hash line is not the base64 of 32 bytes";
        return -1;
    }
    const char *body_end = newline + 1;

    //  The empty line, then the signature lines
    if (body_end == end || *body_end != '\n') {
        *error = "body is not three lines followed by an empty line";
        return -1;
    }
    const char *line = body_end + 1;
    if (line == end) {
        *error = "note has no signature line";
        return -1;
    }
    uint8_t our_key_id [S_KEY_ID];
    kp_checkpoint_key_id (key_name, public_key, our_key_id);
    size_t key_name_size = strlen (key_name);
    size_t signatures = 0;
    bool ours_seen = false;
    bool verified = false;
    while (line < end) {
        newline = (const char *) memchr (line, '\n', (size_t) (end - line));
        if (++signatures > S_MAX_SIGNATURES) {
            *error = "note has too many signature lines";
            return -1;
        }
        if (newline - line < S_EM_DASH_SIZE
        ||  memcmp (line, S_EM_DASH, S_EM_DASH_SIZE) != 0) {
            *error = "signature line does not start with an em dash and a space";
            return -1;
        }
        const char *name = line + S_EM_DASH_SIZE;
        const char *space = (const char *) memchr (name, ' ', (size_t) (newline - name));
        if (!space || !s_text_valid (name, (size_t) (space - name), false, false)) {
            *error = "signature line has no valid key name";
            return -1;
        }
        uint8_t signature [S_MAX_SIGNATURE];
        int length = s_base64_decode (space + 1, (size_t) (newline - space - 1),
                                      signature, sizeof signature);
        if (length <= S_KEY_ID) {
            *error = "signature line has no valid base64 signature";
            return -1;
        }
        if ((size_t) (space - name) == key_name_size
        &&  memcmp (name, key_name, key_name_size) == 0
        &&  memcmp (signature, our_key_id, S_KEY_ID) == 0) {
            ours_seen = true;
            if (length == S_SIGNATURE
            &&  crypto_sign_verify_detached (signature + S_KEY_ID, (const uint8_t *) note,
                                             (size_t) (body_end - note),
                                             public_key) == 0)
                verified = true;
        }
        line = newline + 1;
    }
    if (!verified) {
        *error = ours_seen? "signature does not verify":
                            "note has no signature by our key name and key id";
        return -1;
    }
    memcpy (checkpoint->origin, origin, origin_size);
    checkpoint->origin [origin_size] = 0;
    checkpoint->size = tree_size;
    memcpy (checkpoint->root, root, 32);
    return 0;
}

//  --------------------------------------------------------------------------
//  Read a small key file REGION/name into text (room for limit bytes plus a
//  NUL), refusing anything that is not a regular file or is longer; a
//  secret must not be readable by group or others. Returns the length, or
//  -1 with one logged line (which never shows the contents).

static ssize_t
s_key_file_read (const char *region_dir, const char *name, bool secret, char *text,
                 size_t limit)
{
    char *path = zsys_sprintf ("%s/%s", region_dir, name);
    assert (path);
    ssize_t length = -1;
    int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    struct stat info;
    if (fd < 0 || fstat (fd, &info)) {
        zsys_error ("kp_checkpoint: cannot read %s: %s", path, strerror (errno));
        goto cleanup;
    }
    if (!S_ISREG (info.st_mode)) {
        zsys_error ("kp_checkpoint: %s is not a regular file", path);
        goto cleanup;
    }
    if (secret && (info.st_mode & 077)) {
        zsys_error ("kp_checkpoint: %s is readable by group or others; "
                    "chmod 600 it", path);
        goto cleanup;
    }
    size_t fill = 0;
    while (fill <= limit) {
        ssize_t rc = read (fd, text + fill, limit + 1 - fill);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0) {
            zsys_error ("kp_checkpoint: cannot read %s: %s", path, strerror (errno));
            goto cleanup;
        }
        if (rc == 0)
            break;
        fill += (size_t) rc;
    }
    if (fill > limit) {
        zsys_error ("kp_checkpoint: %s is too long for a key file", path);
        goto cleanup;
    }
    text [fill] = 0;
    length = (ssize_t) fill;

cleanup:
    if (fd >= 0)
        close (fd);
    free (path);
    return length;
}

//  --------------------------------------------------------------------------
//  Read the hex key file REGION/name, one line of 2 * size hex digits, into
//  key. Every buffer that held the text is wiped. Returns 0, or -1 with one
//  logged line.

static int
s_key_load (const char *region_dir, const char *name, bool secret, uint8_t *key,
            size_t size)
{
    char text [S_KEY_FILE_MAX + 1];
    assert (size * 2 + 1 <= S_KEY_FILE_MAX);
    int rc = -1;
    ssize_t length = s_key_file_read (region_dir, name, secret, text, S_KEY_FILE_MAX);
    if (length >= 0) {
        if (length > 0 && text [length - 1] == '\n')
            text [--length] = 0;
        if (kp_hex_decode (text, key, size) == 0)
            rc = 0;
        else {
            sodium_memzero (key, size);
            zsys_error ("kp_checkpoint: %s/%s is not one line of %zu hex digits",
                        region_dir, name, size * 2);
        }
    }
    sodium_memzero (text, sizeof text);
    return rc;
}

//  --------------------------------------------------------------------------
//  Read REGION/checkpoint.pub into public_key

int
kp_checkpoint_load_public (const char *region_dir, uint8_t *public_key)
{
    assert (region_dir);
    assert (public_key);
    return s_key_load (region_dir, "checkpoint.pub", false, public_key,
                       KP_CHECKPOINT_PUBLIC);
}

//  --------------------------------------------------------------------------
//  Read REGION/checkpoint_secret into secret_key, and check that it is a
//  whole libsodium Ed25519 secret key: its seed must give its public half.
//  Every temporary copy is wiped; on failure secret_key is wiped too.

int
kp_checkpoint_load_secret (const char *region_dir, uint8_t *secret_key)
{
    assert (region_dir);
    assert (secret_key);
    if (sodium_init () < 0) {
        zsys_error ("kp_checkpoint: libsodium does not start");
        return -1;
    }
    if (s_key_load (region_dir, "checkpoint_secret", true, secret_key,
                    KP_CHECKPOINT_SECRET))
        return -1;
    uint8_t seed [crypto_sign_SEEDBYTES];
    uint8_t derived_public [crypto_sign_PUBLICKEYBYTES];
    uint8_t derived_secret [crypto_sign_SECRETKEYBYTES];
    crypto_sign_ed25519_sk_to_seed (seed, secret_key);
    crypto_sign_seed_keypair (derived_public, derived_secret, seed);
    int rc = sodium_memcmp (derived_secret, secret_key, KP_CHECKPOINT_SECRET);
    sodium_memzero (seed, sizeof seed);
    sodium_memzero (derived_secret, sizeof derived_secret);
    if (rc) {
        sodium_memzero (secret_key, KP_CHECKPOINT_SECRET);
        zsys_error ("kp_checkpoint: %s/checkpoint_secret is damaged: its public half "
                    "does not match its seed", region_dir);
        return -1;
    }
    return 0;
}
