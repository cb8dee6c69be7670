/*  =========================================================================
    kp_region - make a region directory and register, list, revoke partners

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    The writing side of the registry (see kp_region.h for the layout). Used
    by kp-keys and by tests; stateless, one call per operation. Writers of
    one region are serialised with flock on the region directory.
@discuss
    Every file is written as a dotfile temp in its final directory, fsynced,
    renamed into place without replacing (RENAME_NOREPLACE, or link where
    the file system lacks it), and the directory is fsynced. The registry
    skips dotfiles, so a crash leaves at worst a stale temp file.

    The order of the writes is the crash story:
    init    builds the whole region in a temp directory beside it and renames
            it into place last, so a region is either complete or absent.
    add     writes secrets/ID_secret first and partners/ID last: partners/ID
            is the commit point. A crash between leaves an unused secret,
            which a new add of that id reports.
    revoke  writes revoked/ID (the cert plus metadata revoked) and fsyncs
            revoked/ before it removes partners/ID. A crash between leaves the
            id in both, which the registry reads as revoked and a new revoke
            finishes. The partner is never in neither.

    Secret keys are generated with libsodium into stack buffers, which are
    wiped, as are the zcert's own copies before it is destroyed. zcert and
    zconfig also copy the secret text into heap buffers of their own, which
    they free without wiping; kp-keys is a short-lived process.
@end
*/
#include "kp_region.h"
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#define S_CERT_MAX 65536            //  largest cert we read back, bytes


//  --------------------------------------------------------------------------
//  Durable file writing

//  Current UTC time as ISO 8601, e.g. 2026-11-22T10:53:18Z
static void
s_time_iso (char *buffer, size_t size)
{
    time_t now = time (NULL);
    struct tm parts;
    gmtime_r (&now, &parts);
    strftime (buffer, size, "%Y-%m-%dT%H:%M:%SZ", &parts);
}

//  fsync a directory, so the entries made or removed in it are durable
static int
s_dir_sync (const char *path)
{
    int fd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || fsync (fd)) {
        int err = errno;
        zsys_error ("kp_region: cannot sync dir path=%s error=%s", path, strerror (err));
        if (fd >= 0)
            close (fd);
        return -1;
    }
    close (fd);
    return 0;
}

//  Rename from to to, failing with EEXIST rather than replace anything
static int
s_rename_new (const char *from, const char *to)
{
    if (renameat2 (AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
        return -1;
    //  File systems without RENAME_NOREPLACE: link refuses an existing
    //  target just as atomically
    if (link (from, to))
        return -1;
    unlink (from);
    return 0;
}

//  Create a new temp file (mode 0600) for dir/name; sets *temp_path_p to
//  its path (caller frees). Returns the open fd, or -1 after a zsys_error.
static int
s_temp_new (const char *dir, const char *name, char **temp_path_p)
{
    char *temp_path = zsys_sprintf ("%s/.%s.tmp-XXXXXX", dir, name);
    assert (temp_path);
    int fd = mkostemp (temp_path, O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        zsys_error ("kp_region: cannot create file dir=%s error=%s", dir, strerror (err));
        free (temp_path);
        return -1;
    }
    *temp_path_p = temp_path;
    return fd;
}

//  Write all of data to fd, over short writes and EINTR
static int
s_write_all (int fd, const void *data, size_t size)
{
    const uint8_t *cursor = (const uint8_t *) data;
    while (size > 0) {
        ssize_t count = write (fd, cursor, size);
        if (count < 0 && errno == EINTR)
            continue;
        if (count <= 0)
            return -1;
        cursor += count;
        size -= (size_t) count;
    }
    return 0;
}

//  True if the file open as fd holds text1 and (if not NULL) text2: proof
//  that a write through stdio, which does not report a short write, got to
//  the end. The copy read is wiped.
static bool
s_file_holds (int fd, const char *text1, const char *text2)
{
    struct stat status;
    if (fstat (fd, &status) || status.st_size <= 0 || status.st_size > S_CERT_MAX)
        return false;
    size_t size = (size_t) status.st_size;
    char *content = (char *) malloc (size);
    assert (content);
    bool holds = false;
    size_t done = 0;
    while (done < size) {
        ssize_t count = pread (fd, content + done, size - done, (off_t) done);
        if (count < 0 && errno == EINTR)
            continue;
        if (count <= 0)
            break;
        done += (size_t) count;
    }
    if (done == size)
        holds = memmem (content, size, text1, strlen (text1))
             && (!text2 || memmem (content, size, text2, strlen (text2)));
    sodium_memzero (content, size);
    free (content);
    return holds;
}

//  Make a written temp file final: set mode, fsync, close, rename it to
//  dir/name without replacing, fsync dir. Closes fd. On failure removes
//  the temp file (and the final one if only the dir sync failed).
static int
s_file_publish (int fd, const char *temp_path, const char *dir, const char *name,
                mode_t mode)
{
    int rc = -1;
    bool renamed = false;
    char *path = zsys_sprintf ("%s/%s", dir, name);
    assert (path);
    struct stat status;
    //  mkostemp made the file 0600; set the mode wanted, then verify it
    if (fchmod (fd, mode) || fstat (fd, &status)) {
        int err = errno;
        zsys_error ("kp_region: cannot set mode path=%s error=%s", path, strerror (err));
        goto cleanup;
    }
    if ((status.st_mode & 07777) != mode) {
        zsys_error ("kp_region: wrong mode path=%s mode=%o", path,
                    (unsigned) (status.st_mode & 07777));
        goto cleanup;
    }
    if (fsync (fd)) {
        int err = errno;
        zsys_error ("kp_region: cannot sync path=%s error=%s", path, strerror (err));
        goto cleanup;
    }
    int closed = close (fd);
    int close_err = errno;
    fd = -1;
    if (closed) {
        zsys_error ("kp_region: cannot close path=%s error=%s", path,
                    strerror (close_err));
        goto cleanup;
    }
    if (s_rename_new (temp_path, path)) {
        int err = errno;
        if (err == EEXIST)
            zsys_error ("kp_region: exists, not overwritten path=%s", path);
        else
            zsys_error ("kp_region: cannot rename path=%s error=%s", path,
                        strerror (err));
        goto cleanup;
    }
    renamed = true;
    if (s_dir_sync (dir)) {
        unlink (path);
        goto cleanup;
    }
    rc = 0;

cleanup:
    if (fd >= 0)
        close (fd);
    if (!renamed)
        unlink (temp_path);
    free (path);
    return rc;
}

//  Write a new file dir/name holding size bytes of data, with mode
static int
s_data_write (const char *dir, const char *name, const void *data, size_t size,
              mode_t mode)
{
    char *temp_path = NULL;
    int fd = s_temp_new (dir, name, &temp_path);
    if (fd < 0)
        return -1;
    if (s_write_all (fd, data, size)) {
        int err = errno;
        zsys_error ("kp_region: cannot write dir=%s file=%s error=%s", dir, name,
                    strerror (err));
        close (fd);
        unlink (temp_path);
        free (temp_path);
        return -1;
    }
    int rc = s_file_publish (fd, temp_path, dir, name, mode);
    free (temp_path);
    return rc;
}

//  Write cert as a new file dir/name: its public cert, or with secret its
//  secret cert (mode 0600)
static int
s_cert_write (const char *dir, const char *name, zcert_t *cert, bool secret)
{
    char *temp_path = NULL;
    int fd = s_temp_new (dir, name, &temp_path);
    if (fd < 0)
        return -1;
    //  zcert writes the path through stdio: the same inode as fd
    int rc = secret? zcert_save_secret (cert, temp_path)
                   : zcert_save_public (cert, temp_path);
    if (rc || !s_file_holds (fd, zcert_public_txt (cert),
                             secret? zcert_secret_txt (cert): NULL)) {
        zsys_error ("kp_region: cannot write cert dir=%s file=%s", dir, name);
        close (fd);
        unlink (temp_path);
        free (temp_path);
        return -1;
    }
    rc = s_file_publish (fd, temp_path, dir, name, secret? 0600: 0644);
    free (temp_path);
    return rc;
}

//  New cert from a fresh CURVE keypair (or public_bin with no secret, if
//  not NULL); the stack copy of the secret is wiped
static zcert_t *
s_cert_new (const uint8_t *public_bin)
{
    uint8_t public_key [crypto_box_PUBLICKEYBYTES];
    uint8_t secret_key [crypto_box_SECRETKEYBYTES] = { 0 };
    if (public_bin)
        memcpy (public_key, public_bin, sizeof public_key);
    else
        crypto_box_keypair (public_key, secret_key);
    zcert_t *cert = zcert_new_from (public_key, secret_key);
    sodium_memzero (secret_key, sizeof secret_key);
    assert (cert);
    return cert;
}

//  Wipe the secret key held in a zcert, then destroy it
static void
s_cert_destroy (zcert_t **cert_p)
{
    assert (cert_p);
    if (*cert_p) {
        //  The accessors return const pointers into the zcert's own heap
        //  object, which is writable: wipe its binary and text secret key
        sodium_memzero ((byte *) zcert_secret_key (*cert_p), 32);
        sodium_memzero ((char *) zcert_secret_txt (*cert_p), KP_KEY_TEXT);
        zcert_destroy (cert_p);
    }
}

static int
s_remove_entry (const char *path, const struct stat *status, int flag, struct FTW *walk)
{
    (void) status;
    (void) flag;
    (void) walk;
    return remove (path);
}

//  Take the region's writer lock: flock on the directory itself, so two
//  kp-keys runs cannot both pass the duplicate checks. Returns the fd to
//  close, or -1 after a zsys_error.
static int
s_region_lock (const char *region_dir)
{
    int fd = open (region_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || flock (fd, LOCK_EX)) {
        zsys_error ("kp_region: cannot lock region path=%s error=%s", region_dir,
                    strerror (errno));
        if (fd >= 0)
            close (fd);
        return -1;
    }
    return fd;
}

//  True if path exists (as anything)
static bool
s_exists (const char *path)
{
    struct stat status;
    return lstat (path, &status) == 0;
}

//  True if path is a directory with no entries
static bool
s_dir_empty (const char *path)
{
    DIR *dir = opendir (path);
    if (!dir)
        return false;
    bool empty = true;
    struct dirent *entry;
    while (empty && (entry = readdir (dir)))
        if (!streq (entry->d_name, ".") && !streq (entry->d_name, ".."))
            empty = false;
    closedir (dir);
    return empty;
}

//  Make directory parent/name with exactly mode (whatever the umask)
static int
s_dir_make (const char *parent, const char *name, mode_t mode)
{
    char *path = zsys_sprintf ("%s/%s", parent, name);
    assert (path);
    int rc = 0;
    if (mkdir (path, mode) || chmod (path, mode)) {
        int err = errno;
        zsys_error ("kp_region: cannot make dir path=%s error=%s", path, strerror (err));
        rc = -1;
    }
    free (path);
    return rc;
}

//  Write the broker's CURVE cert pair into dir
static int
s_broker_write (const char *dir, const char *name, const char *created, char *key_prefix)
{
    zcert_t *cert = s_cert_new (NULL);
    zcert_set_meta (cert, "name", "%s", name);
    zcert_set_meta (cert, "created", "%s", created);
    int rc = s_cert_write (dir, "broker_secret", cert, true);
    if (rc == 0)
        rc = s_cert_write (dir, "broker", cert, false);
    memcpy (key_prefix, zcert_public_txt (cert), 8);
    key_prefix [8] = 0;
    s_cert_destroy (&cert);
    return rc;
}

//  Write a new Ed25519 keypair into dir as hex lines: the secret first
//  (secret_name, 0600), then the public key (public_name, 0644)
static int
s_sign_key_write (const char *dir, const char *secret_name, const char *public_name)
{
    uint8_t public_key [crypto_sign_PUBLICKEYBYTES];
    uint8_t secret_key [crypto_sign_SECRETKEYBYTES];
    char public_hex [crypto_sign_PUBLICKEYBYTES * 2 + 2];
    char secret_hex [crypto_sign_SECRETKEYBYTES * 2 + 2];
    crypto_sign_keypair (public_key, secret_key);
    sodium_bin2hex (public_hex, sizeof public_hex, public_key, sizeof public_key);
    sodium_bin2hex (secret_hex, sizeof secret_hex, secret_key, sizeof secret_key);
    sodium_memzero (secret_key, sizeof secret_key);
    size_t public_length = strlen (public_hex);
    size_t secret_length = strlen (secret_hex);
    public_hex [public_length++] = '\n';
    secret_hex [secret_length++] = '\n';
    int rc = s_data_write (dir, secret_name, secret_hex, secret_length, 0600);
    sodium_memzero (secret_hex, sizeof secret_hex);
    if (rc == 0)
        rc = s_data_write (dir, public_name, public_hex, public_length, 0644);
    return rc;
}

//  --------------------------------------------------------------------------
//  Create region_dir (absent or empty) with the broker cert, the checkpoint
//  key and the partners/, revoked/ and secrets/ dirs. 0 or -1.

int
kp_region_init (const char *region_dir, const char *name)
{
    assert (region_dir);
    assert (name);
    int rc = -1;
    char *region = strdup (region_dir);
    assert (region);
    char *parent = NULL;
    char *temp_dir = NULL;
    char key_prefix [9] = "";

    if (!kp_partner_name_valid (name)) {
        zsys_error ("kp_region: bad broker name (1-256 bytes of UTF-8, "
                    "no control characters or '\"')");
        goto cleanup;
    }
    if (sodium_init () < 0) {
        zsys_error ("kp_region: libsodium does not start");
        goto cleanup;
    }
    size_t length = strlen (region);
    while (length > 1 && region [length - 1] == '/')
        region [--length] = 0;
    if (s_exists (region) && !s_dir_empty (region)) {
        zsys_error ("kp_region: region exists and is not an empty dir path=%s", region);
        goto cleanup;
    }
    //  Build the region in a temp dir beside it and rename it into place
    //  last: a crash leaves no half region behind (only a dot dir)
    char *slash = strrchr (region, '/');
    const char *base = slash? slash + 1: region;
    if (!slash)
        parent = strdup (".");
    else
    if (slash == region)
        parent = strdup ("/");
    else
        parent = strndup (region, (size_t) (slash - region));
    assert (parent);
    if (*base == 0 || streq (base, ".") || streq (base, "..")) {
        zsys_error ("kp_region: region must name a new dir path=%s", region);
        goto cleanup;
    }
    temp_dir = zsys_sprintf ("%s/.%s.tmp-XXXXXX", parent, base);
    assert (temp_dir);
    if (!mkdtemp (temp_dir)) {
        zsys_error ("kp_region: cannot make dir in parent=%s error=%s", parent,
                    strerror (errno));
        zstr_free (&temp_dir);
        goto cleanup;
    }
    char created [32];
    s_time_iso (created, sizeof created);
    if (s_dir_make (temp_dir, "partners", 0755)
    ||  s_dir_make (temp_dir, "revoked", 0755)
    ||  s_dir_make (temp_dir, "secrets", 0700)
    ||  s_broker_write (temp_dir, name, created, key_prefix)
    ||  s_sign_key_write (temp_dir, "checkpoint_secret", "checkpoint.pub")
    ||  s_sign_key_write (temp_dir, "registration_secret", "registration.pub"))
        goto cleanup;
    if (chmod (temp_dir, 0755) || s_dir_sync (temp_dir))
        goto cleanup;
    //  rename() replaces an empty directory, and only an empty one
    if (rename (temp_dir, region)) {
        zsys_error ("kp_region: cannot create region path=%s error=%s", region,
                    strerror (errno));
        goto cleanup;
    }
    zstr_free (&temp_dir);
    if (s_dir_sync (parent))
        goto cleanup;
    zsys_notice ("kp_region: region created path=%s broker=%s key=%s", region, name,
                 key_prefix);
    rc = 0;

cleanup:
    if (temp_dir)
        nftw (temp_dir, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free (temp_dir);
    free (parent);
    free (region);
    return rc;
}

//  Parse the ZPL file at path; NULL if it cannot be read, is larger than
//  64 KiB, holds a NUL byte or is not ZPL. (zconfig_load leaks on a parse
//  error.) The text read is wiped: it may be a secret cert.
static zconfig_t *
s_zpl_load (const char *path)
{
    zconfig_t *root = NULL;
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    struct stat status;
    if (fd < 0)
        return NULL;
    if (fstat (fd, &status) == 0 && S_ISREG (status.st_mode)
    &&  status.st_size <= S_CERT_MAX) {
        size_t size = (size_t) status.st_size;
        char *text = (char *) malloc (size + 1);
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
        if (done == size && strlen (text) == size)
            root = zconfig_str_load (text);
        sodium_memzero (text, size);
        free (text);
    }
    close (fd);
    return root;
}

//  The public key of a cert file (ZPL), or NULL; caller frees
static char *
s_cert_public_key (const char *path)
{
    zconfig_t *root = s_zpl_load (path);
    if (!root)
        return NULL;
    const char *key = zconfig_get (root, "curve/public-key", NULL);
    char *copy = key && strlen (key) == KP_KEY_TEXT? strdup (key): NULL;
    zconfig_destroy (&root);
    return copy;
}

//  Which revoked partner holds public_key: a new string (caller frees) or
//  NULL if none. Sets *failed_p after a zsys_error if revoked/ is unreadable.
static char *
s_revoked_holder (const char *revoked_dir, const char *public_key, bool *failed_p)
{
    *failed_p = false;
    char *holder = NULL;
    DIR *dir = opendir (revoked_dir);
    if (!dir) {
        if (errno == ENOENT)
            return NULL;
        zsys_error ("kp_region: cannot read dir path=%s error=%s", revoked_dir,
                    strerror (errno));
        *failed_p = true;
        return NULL;
    }
    struct dirent *entry;
    while (!holder && !*failed_p && (entry = readdir (dir))) {
        if (entry->d_name [0] == '.')
            continue;
        char *path = zsys_sprintf ("%s/%s", revoked_dir, entry->d_name);
        assert (path);
        char *key = s_cert_public_key (path);
        if (!key) {
            zsys_error ("kp_region: bad revoked cert path=%s", path);
            *failed_p = true;
        }
        else
        if (sodium_memcmp (key, public_key, KP_KEY_TEXT) == 0)
            holder = strdup (entry->d_name);
        free (key);
        free (path);
    }
    closedir (dir);
    return holder;
}

//  True if text is a canonical 40-character Z85 key; decodes it into key
static bool
s_key_text_valid (const char *text, uint8_t *key)
{
    if (strnlen (text, KP_KEY_TEXT + 1) != KP_KEY_TEXT || !zmq_z85_decode (key, text))
        return false;
    char check [KP_KEY_TEXT + 1];
    zmq_z85_encode (check, key, 32);
    return streq (check, text);
}

//  Addresses joined with commas; caller frees
static char *
s_addresses_join (const char *const *addresses, size_t count)
{
    size_t size = 1;
    for (size_t index = 0; index < count; index++)
        size += strlen (addresses [index]) + 1;
    char *text = (char *) zmalloc (size);
    assert (text);
    for (size_t index = 0; index < count; index++) {
        if (index)
            strcat (text, ",");
        strcat (text, addresses [index]);
    }
    return text;
}

//  Read a hex key file (its first line: exactly size bytes as hex) into
//  key. The text read is wiped. 0, or -1 after a zsys_error.
static int
s_hex_key_read (const char *path, uint8_t *key, size_t size)
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        zsys_error ("kp_region: cannot read key path=%s error=%s", path,
                    strerror (errno));
        return -1;
    }
    char text [256];
    size_t done = 0;
    while (done < sizeof text - 1) {
        ssize_t count = read (fd, text + done, sizeof text - 1 - done);
        if (count < 0 && errno == EINTR)
            continue;
        if (count <= 0)
            break;
        done += (size_t) count;
    }
    close (fd);
    text [done] = 0;
    text [strcspn (text, "\r\n")] = 0;
    int rc = kp_hex_decode (text, key, size);
    sodium_memzero (text, sizeof text);
    if (rc)
        zsys_error ("kp_region: not a key of %zu bytes in hex path=%s", size, path);
    return rc;
}

//  Build partner id's RegistrationStatement and sign it with the region's
//  registration key (REGION/registration_secret). Returns the packed
//  Registration as standard base64 (caller frees), or NULL after a
//  zsys_error.
static char *
s_registration_new (const char *region_dir, const char *id, Kp__Wire__Role role,
                    const char *const *addresses, size_t address_count, bool covenant,
                    const uint8_t *curve_key, const uint8_t *sign_key,
                    const uint8_t *seal_key)
{
    char *text = NULL;
    uint8_t *statement_data = NULL;
    uint8_t *registration_data = NULL;
    zconfig_t *broker = NULL;
    char *broker_path = zsys_sprintf ("%s/broker", region_dir);
    char *secret_path = zsys_sprintf ("%s/registration_secret", region_dir);
    assert (broker_path && secret_path);
    uint8_t *secret_key = (uint8_t *) sodium_malloc (crypto_sign_SECRETKEYBYTES);
    assert (secret_key);
    if (s_hex_key_read (secret_path, secret_key, crypto_sign_SECRETKEYBYTES)) {
        zsys_error ("kp_region: the region has no registration key; partners are "
                    "registered on the host that holds registration_secret");
        goto cleanup;
    }
    broker = s_zpl_load (broker_path);
    const char *region_name = broker? zconfig_get (broker, "metadata/name", NULL): NULL;
    if (!region_name || !*region_name) {
        zsys_error ("kp_region: the broker cert names no region path=%s", broker_path);
        goto cleanup;
    }
    Kp__Wire__RegistrationStatement statement = KP__WIRE__REGISTRATION_STATEMENT__INIT;
    statement.region = (char *) region_name;
    statement.partner = (char *) id;
    statement.role = role;
    statement.n_addresses = address_count;
    statement.addresses = (char **) addresses;
    statement.covenant = covenant;
    statement.curve_key.data = (uint8_t *) curve_key;
    statement.curve_key.len = 32;
    statement.sign_key.data = (uint8_t *) sign_key;
    statement.sign_key.len = crypto_sign_PUBLICKEYBYTES;
    statement.seal_key.data = (uint8_t *) seal_key;
    statement.seal_key.len = crypto_box_PUBLICKEYBYTES;
    statement.registered_at_ms = kp_now_ms ();
    size_t statement_size =
        kp__wire__registration_statement__get_packed_size (&statement);
    statement_data = (uint8_t *) malloc (statement_size);
    assert (statement_data);
    kp__wire__registration_statement__pack (&statement, statement_data);

    uint8_t signature [crypto_sign_BYTES];
    crypto_sign_detached (signature, NULL, statement_data, statement_size, secret_key);
    Kp__Wire__Registration registration = KP__WIRE__REGISTRATION__INIT;
    registration.statement.data = statement_data;
    registration.statement.len = statement_size;
    registration.signature.data = signature;
    registration.signature.len = sizeof signature;
    size_t registration_size = kp__wire__registration__get_packed_size (&registration);
    registration_data = (uint8_t *) malloc (registration_size);
    assert (registration_data);
    kp__wire__registration__pack (&registration, registration_data);
    size_t text_size = sodium_base64_ENCODED_LEN (registration_size,
                                                  sodium_base64_VARIANT_ORIGINAL);
    text = (char *) malloc (text_size);
    assert (text);
    sodium_bin2base64 (text, text_size, registration_data, registration_size,
                       sodium_base64_VARIANT_ORIGINAL);

cleanup:
    sodium_free (secret_key);
    free (registration_data);
    free (statement_data);
    zconfig_destroy (&broker);
    free (secret_path);
    free (broker_path);
    return text;
}

//  Wipe a metadata value of cert in place (CZMQ frees it without wiping)
static void
s_meta_wipe (zcert_t *cert, const char *name)
{
    const char *value = zcert_meta (cert, name);
    if (value)
        sodium_memzero ((char *) (uintptr_t) value, strlen (value));
}

//  --------------------------------------------------------------------------
//  Register a partner: public cert partners/ID and, unless public_key is
//  given, a new keypair's secret cert secrets/ID_secret. 0 or -1.

int
kp_region_add (const char *region_dir, const char *id, Kp__Wire__Role role,
               const char *name, const char *const *addresses, bool covenant,
               const char *public_key)
{
    return kp_region_add_keys (region_dir, id, role, name, addresses, covenant,
                               public_key, NULL, NULL);
}

//  --------------------------------------------------------------------------
//  Register a partner, with the signing and sealing public keys it made
//  itself (hex) when public_key is given. 0 or -1.
//
//  Without public_key we make all three keypairs: the CURVE secret goes to
//  the secret cert as usual, and the signing and sealing secrets go there
//  as metadata (sign-secret, seal-secret). zcert_save_public writes every
//  metadata entry too, so the public cert is written from a second zcert
//  that never held them.

int
kp_region_add_keys (const char *region_dir, const char *id, Kp__Wire__Role role,
                    const char *name, const char *const *addresses, bool covenant,
                    const char *public_key, const char *sign_key_hex,
                    const char *seal_key_hex)
{
    assert (region_dir);
    assert (id);
    assert (name);
    int rc = -1;
    zcert_t *public_cert = NULL;
    char *registration = NULL;
    uint8_t sign_public [crypto_sign_PUBLICKEYBYTES];
    uint8_t seal_public [crypto_box_PUBLICKEYBYTES];
    //  sign secret (64) || seal secret (32), guarded memory
    uint8_t *secrets = (uint8_t *) sodium_malloc (crypto_sign_SECRETKEYBYTES
                                                  + crypto_box_SECRETKEYBYTES);
    assert (secrets);
    int lock_fd = -1;
    bool secret_written = false;
    kp_registry_t *registry = NULL;
    zcert_t *cert = NULL;
    char *holder = NULL;
    char *broker_key = NULL;
    char *address_text = NULL;
    char *partners_dir = zsys_sprintf ("%s/partners", region_dir);
    char *revoked_dir = zsys_sprintf ("%s/revoked", region_dir);
    char *secrets_dir = zsys_sprintf ("%s/secrets", region_dir);
    char *active_path = zsys_sprintf ("%s/%s", partners_dir, id);
    char *revoked_path = zsys_sprintf ("%s/%s", revoked_dir, id);
    char *secret_name = zsys_sprintf ("%s_secret", id);
    char *secret_path = zsys_sprintf ("%s/%s", secrets_dir, secret_name);
    char *broker_path = zsys_sprintf ("%s/broker", region_dir);
    assert (partners_dir && revoked_dir && secrets_dir && active_path && revoked_path
            && secret_name && secret_path && broker_path);

    size_t address_count = 0;
    while (addresses && addresses [address_count])
        address_count++;
    const char *fault = kp_partner_check (id, role, name, addresses, address_count,
                                         covenant);
    if (fault) {
        //  An id that is not valid may hold anything: it is not echoed
        zsys_error ("kp_region: partner refused id=%s reason=%s",
                    kp_partner_id_valid (id)? id: "(invalid)", fault);
        goto cleanup;
    }
    uint8_t key_bin [32];
    if (public_key && !s_key_text_valid (public_key, key_bin)) {
        zsys_error ("kp_region: partner refused id=%s reason=public key is not "
                    "40 Z85 characters", id);
        goto cleanup;
    }
    if ((sign_key_hex || seal_key_hex)
    &&  (!public_key || !sign_key_hex || !seal_key_hex
    ||   kp_hex_decode (sign_key_hex, sign_public, sizeof sign_public)
    ||   kp_hex_decode (seal_key_hex, seal_public, sizeof seal_public))) {
        zsys_error ("kp_region: partner refused id=%s reason=give the public, "
                    "signing and sealing keys together (Z85, 64 hex, 64 hex)", id);
        goto cleanup;
    }
    struct stat status;
    if (stat (partners_dir, &status) || !S_ISDIR (status.st_mode)) {
        zsys_error ("kp_region: not a region (no partners dir) path=%s", region_dir);
        goto cleanup;
    }
    lock_fd = s_region_lock (region_dir);
    if (lock_fd < 0)
        goto cleanup;
    if (s_exists (active_path)) {
        zsys_error ("kp_region: partner refused id=%s reason=id already registered", id);
        goto cleanup;
    }
    if (s_exists (revoked_path)) {
        zsys_error ("kp_region: partner refused id=%s reason=id was revoked, "
                    "and revoked ids are never reused", id);
        goto cleanup;
    }
    if (!public_key && s_exists (secret_path)) {
        zsys_error ("kp_region: partner refused id=%s reason=secret cert left by an "
                    "interrupted add; remove it first path=%s", id, secret_path);
        goto cleanup;
    }
    registry = kp_registry_new (region_dir);
    if (!registry) {
        zsys_error ("kp_region: partner refused id=%s reason=the registry does not load",
                    id);
        goto cleanup;
    }
    cert = s_cert_new (public_key? key_bin: NULL);
    const char *key_text = zcert_public_txt (cert);
    const kp_partner_t *other = kp_registry_by_key (registry, key_text);
    if (other) {
        zsys_error ("kp_region: partner refused id=%s reason=key already registered "
                    "to partner %s", id, other->id);
        goto cleanup;
    }
    bool failed;
    holder = s_revoked_holder (revoked_dir, key_text, &failed);
    if (failed)
        goto cleanup;
    if (holder) {
        zsys_error ("kp_region: partner refused id=%s reason=key belongs to revoked "
                    "partner %s", id, holder);
        goto cleanup;
    }
    broker_key = s_cert_public_key (broker_path);
    if (broker_key && sodium_memcmp (broker_key, key_text, KP_KEY_TEXT) == 0) {
        zsys_error ("kp_region: partner refused id=%s reason=key is the broker's", id);
        goto cleanup;
    }
    char created [32];
    s_time_iso (created, sizeof created);
    address_text = s_addresses_join (addresses, address_count);
    zcert_set_meta (cert, "partner", "%s", id);
    zcert_set_meta (cert, "role", "%s", kp_role_name (role));
    zcert_set_meta (cert, "name", "%s", name);
    zcert_set_meta (cert, "addresses", "%s", address_text);
    zcert_set_meta (cert, "covenant", "%s", covenant? "1": "0");
    zcert_set_meta (cert, "created", "%s", created);
    if (!public_key) {
        crypto_sign_keypair (sign_public, secrets);
        crypto_box_keypair (seal_public, secrets + crypto_sign_SECRETKEYBYTES);
    }
    if (!public_key || sign_key_hex) {
        registration = s_registration_new (region_dir, id, role, addresses,
                                           address_count, covenant,
                                           zcert_public_key (cert), sign_public,
                                           seal_public);
        if (!registration)
            goto cleanup;
        zcert_set_meta (cert, "registration", "%s", registration);
    }
    else
        zsys_warning ("kp_region: partner id=%s has no signing and sealing keys: it "
                      "cannot send or receive sealed bodies", id);
    //  The public cert: same key and metadata, never a secret
    public_cert = s_cert_new (zcert_public_key (cert));
    zlist_t *keys = zcert_meta_keys (cert);
    for (const char *key = (const char *) zlist_first (keys); key;
         key = (const char *) zlist_next (keys))
        zcert_set_meta (public_cert, key, "%s", zcert_meta (cert, key));
    zlist_destroy (&keys);
    if (!public_key) {
        char sign_hex [crypto_sign_SECRETKEYBYTES * 2 + 1];
        char seal_hex [crypto_box_SECRETKEYBYTES * 2 + 1];
        sodium_bin2hex (sign_hex, sizeof sign_hex, secrets, crypto_sign_SECRETKEYBYTES);
        sodium_bin2hex (seal_hex, sizeof seal_hex, secrets + crypto_sign_SECRETKEYBYTES,
                        crypto_box_SECRETKEYBYTES);
        zcert_set_meta (cert, "sign-secret", "%s", sign_hex);
        zcert_set_meta (cert, "seal-secret", "%s", seal_hex);
        sodium_memzero (sign_hex, sizeof sign_hex);
        sodium_memzero (seal_hex, sizeof seal_hex);
        if (s_cert_write (secrets_dir, secret_name, cert, true))
            goto cleanup;
        secret_written = true;
    }
    //  partners/ID is the commit point: written last
    if (s_cert_write (partners_dir, id, public_cert, false))
        goto cleanup;
    zsys_notice ("kp_region: partner added id=%s role=%s key=%.8s", id,
                 kp_role_name (role), key_text);
    rc = 0;

cleanup:
    if (rc && secret_written) {
        unlink (secret_path);
        s_dir_sync (secrets_dir);
    }
    if (cert) {
        s_meta_wipe (cert, "sign-secret");
        s_meta_wipe (cert, "seal-secret");
    }
    s_cert_destroy (&cert);
    s_cert_destroy (&public_cert);
    sodium_free (secrets);
    free (registration);
    kp_registry_destroy (&registry);
    if (lock_fd >= 0)
        close (lock_fd);
    free (address_text);
    free (broker_key);
    free (holder);
    free (broker_path);
    free (secret_path);
    free (secret_name);
    free (revoked_path);
    free (active_path);
    free (secrets_dir);
    free (revoked_dir);
    free (partners_dir);
    return rc;
}

//  Write revoked/ID: the cert of partners/ID plus metadata revoked = now.
//  Sets key_prefix to the first 8 characters of its key.
static int
s_revoked_write (const char *active_path, const char *revoked_dir, const char *id,
                 char *key_prefix)
{
    int rc = -1;
    zcert_t *cert = NULL;
    zconfig_t *root = s_zpl_load (active_path);
    const char *key = root? zconfig_get (root, "curve/public-key", NULL): NULL;
    uint8_t key_bin [32];
    if (!key || !s_key_text_valid (key, key_bin)) {
        zsys_error ("kp_region: cannot revoke, bad partner cert path=%s "
                    "(move it to revoked/ by hand)", active_path);
        goto cleanup;
    }
    //  A fresh public cert with the same key and metadata: only the public
    //  key is read, whatever else the file holds
    cert = s_cert_new (key_bin);
    zconfig_t *metadata = zconfig_locate (root, "metadata");
    for (zconfig_t *item = metadata? zconfig_child (metadata): NULL; item;
         item = zconfig_next (item))
        zcert_set_meta (cert, zconfig_name (item), "%s", zconfig_value (item));
    char revoked [32];
    s_time_iso (revoked, sizeof revoked);
    zcert_set_meta (cert, "revoked", "%s", revoked);
    memcpy (key_prefix, key, 8);
    key_prefix [8] = 0;
    rc = s_cert_write (revoked_dir, id, cert, false);

cleanup:
    s_cert_destroy (&cert);
    zconfig_destroy (&root);
    return rc;
}

//  --------------------------------------------------------------------------
//  Revoke partner id: revoked/ID (with revoked = time) made durable before
//  partners/ID goes; its secret cert is deleted. 0 or -1.

int
kp_region_revoke (const char *region_dir, const char *id)
{
    assert (region_dir);
    assert (id);
    if (!kp_partner_id_valid (id)) {
        zsys_error ("kp_region: cannot revoke, bad id (want [a-z0-9-]{1,64})");
        return -1;
    }
    int rc = -1;
    int lock_fd = -1;
    char key_prefix [9] = "";
    char *partners_dir = zsys_sprintf ("%s/partners", region_dir);
    char *revoked_dir = zsys_sprintf ("%s/revoked", region_dir);
    char *secrets_dir = zsys_sprintf ("%s/secrets", region_dir);
    char *active_path = zsys_sprintf ("%s/%s", partners_dir, id);
    char *revoked_path = zsys_sprintf ("%s/%s", revoked_dir, id);
    char *secret_path = zsys_sprintf ("%s/%s_secret", secrets_dir, id);
    assert (partners_dir && revoked_dir && secrets_dir && active_path && revoked_path
            && secret_path);

    struct stat status;
    if (stat (partners_dir, &status) || !S_ISDIR (status.st_mode)
    ||  stat (revoked_dir, &status) || !S_ISDIR (status.st_mode)) {
        zsys_error ("kp_region: not a region (no partners or revoked dir) path=%s",
                    region_dir);
        goto cleanup;
    }
    lock_fd = s_region_lock (region_dir);
    if (lock_fd < 0)
        goto cleanup;
    bool active = s_exists (active_path);
    bool revoked = s_exists (revoked_path);
    if (!active) {
        if (revoked)
            zsys_error ("kp_region: cannot revoke, already revoked id=%s", id);
        else
            zsys_error ("kp_region: cannot revoke, no such partner id=%s", id);
        goto cleanup;
    }
    if (revoked)
        zsys_notice ("kp_region: finishing an interrupted revoke id=%s", id);
    else
    if (s_revoked_write (active_path, revoked_dir, id, key_prefix))
        goto cleanup;
    //  revoked/ID is durable: only now may partners/ID go
    if (unlink (active_path) && errno != ENOENT) {
        zsys_error ("kp_region: cannot remove path=%s error=%s", active_path,
                    strerror (errno));
        goto cleanup;
    }
    if (s_dir_sync (partners_dir))
        goto cleanup;
    //  A revoked secret is useless to the partner and dangerous to keep
    if (unlink (secret_path) == 0) {
        if (s_dir_sync (secrets_dir))
            goto cleanup;
    }
    else
    if (errno != ENOENT) {
        zsys_error ("kp_region: cannot remove path=%s error=%s", secret_path,
                    strerror (errno));
        goto cleanup;
    }
    zsys_notice ("kp_region: partner revoked id=%s key=%s", id,
                 *key_prefix? key_prefix: "-");
    rc = 0;

cleanup:
    if (lock_fd >= 0)
        close (lock_fd);
    free (secret_path);
    free (revoked_path);
    free (active_path);
    free (secrets_dir);
    free (revoked_dir);
    free (partners_dir);
    return rc;
}

//  --------------------------------------------------------------------------
//  Path of partner id's secret cert; caller frees

char *
kp_region_secret_path (const char *region_dir, const char *id)
{
    assert (region_dir);
    assert (id);
    char *path = zsys_sprintf ("%s/secrets/%s_secret", region_dir, id);
    assert (path);
    return path;
}

//  --------------------------------------------------------------------------
//  Path of the broker's public cert; caller frees

char *
kp_region_broker_cert (const char *region_dir)
{
    assert (region_dir);
    char *path = zsys_sprintf ("%s/broker", region_dir);
    assert (path);
    return path;
}

//  --------------------------------------------------------------------------
//  Path of the registration public key; caller frees

char *
kp_region_registration_key (const char *region_dir)
{
    assert (region_dir);
    char *path = zsys_sprintf ("%s/registration.pub", region_dir);
    assert (path);
    return path;
}
