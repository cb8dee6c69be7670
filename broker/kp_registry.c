/*  =========================================================================
    kp_registry - the region's partners: key -> id, role, addresses

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    A kp_registry_t is the broker's read-only view of REGION/partners/: one
    public zcert (ZPL) file per partner, named by the partner id, with the
    metadata partner, role, name, addresses, covenant and created. An id that
    also appears in REGION/revoked/ is never loaded: a revoke that crashed
    half-way is resolved in favour of revoked. Any malformed cert or bad
    metadata fails the whole load (fail closed). The registry is owned by one
    thread (the server actor, or kp-keys); it holds no locks and no statics.
@discuss
    Staleness is a SHA-256 over a stat of partners/ and revoked/ and of every
    entry in them (name, inode, size, mtime and ctime with nanoseconds), so a
    revoke done within the same second as the last load is still seen: the
    entry count and inodes change even when the clock does not.
@end
*/
#include "kp_registry.h"
#include <dirent.h>
#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>

#define S_ID_MAX 64                 //  longest partner id
#define S_NAME_MAX 256              //  longest organisation name, bytes
#define S_ADDRESSES_MAX 400         //  more than the municipalities of NL
#define S_CERT_MAX 65536            //  largest cert file read, bytes

//  The partners of one load, sorted by id
typedef struct {
    kp_partner_t **items;           //  array of size partners, owned
    size_t size;                    //  number of partners
} s_partner_list_t;

struct _kp_registry_t {
    char *partners_dir;             //  REGION/partners
    char *revoked_dir;              //  REGION/revoked
    s_partner_list_t *list;         //  what the last good load found
    size_t cursor;                  //  position of first/next
    uint8_t fingerprint [crypto_hash_sha256_BYTES];  //  dirs at last load
};


//  --------------------------------------------------------------------------
//  Validation of partner fields: the one set of rules for the broker, which
//  refuses to load a partner that breaks them, and kp-keys, which refuses to
//  write one.

//  True if address is a CBS municipality code, GM + 4 digits
static bool
s_municipality_valid (const char *address)
{
    if (strlen (address) != 6 || address [0] != 'G' || address [1] != 'M')
        return false;
    for (size_t index = 2; index < 6; index++)
        if (address [index] < '0' || address [index] > '9')
            return false;
    return true;
}

//  True if address is a school code, 2 digits + 2 capitals + 2 digits
static bool
s_school_valid (const char *address)
{
    if (strlen (address) != 6)
        return false;
    for (size_t index = 0; index < 6; index++) {
        char c = address [index];
        bool letter = index == 2 || index == 3;
        if (letter && (c < 'A' || c > 'Z'))
            return false;
        if (!letter && (c < '0' || c > '9'))
            return false;
    }
    return true;
}

bool
kp_partner_id_valid (const char *id)
{
    assert (id);
    size_t length = strlen (id);
    if (length == 0 || length > S_ID_MAX || id [0] == '-')
        return false;
    for (size_t index = 0; index < length; index++) {
        char c = id [index];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'))
            return false;
    }
    return true;
}

bool
kp_partner_name_valid (const char *name)
{
    assert (name);
    size_t length = strlen (name);
    if (length == 0 || length > S_NAME_MAX || !kp_utf8_valid (name))
        return false;
    //  No C0 or C1 control characters, no DEL, no double quote
    for (const uint8_t *cursor = (const uint8_t *) name; *cursor; cursor++) {
        if (*cursor < 0x20 || *cursor == 0x7F || *cursor == '"')
            return false;
        if (cursor [0] == 0xC2 && cursor [1] >= 0x80 && cursor [1] < 0xA0)
            return false;
    }
    return true;
}

bool
kp_address_valid (const char *address)
{
    assert (address);
    return s_municipality_valid (address) || s_school_valid (address);
}

const char *
kp_partner_check (const char *id, Kp__Wire__Role role, const char *name,
                  const char *const *addresses, size_t address_count, bool covenant)
{
    if (!kp_partner_id_valid (id))
        return "bad id (want [a-z0-9-]{1,64}, starting with a letter or digit)";
    if (!kp_role_name (role))
        return "bad role";
    if (!kp_partner_name_valid (name))
        return "bad name (1-256 bytes of UTF-8, no control characters or '\"')";
    if (address_count > S_ADDRESSES_MAX)
        return "too many addresses";
    for (size_t index = 0; index < address_count; index++) {
        if (!kp_address_valid (addresses [index]))
            return "bad address (want GM + 4 digits, or a school code like 12AB00)";
        for (size_t other = 0; other < index; other++)
            if (streq (addresses [index], addresses [other]))
                return "address listed twice";
    }
    if (role == KP__WIRE__ROLE__SCHOOL) {
        if (address_count != 1 || !s_school_valid (addresses [0]))
            return "a school needs exactly one school-code address";
    }
    else {
        for (size_t index = 0; index < address_count; index++)
            if (!s_municipality_valid (addresses [index]))
                return "only a school has a school-code address";
    }
    if ((role == KP__WIRE__ROLE__VEILIG_THUIS || role == KP__WIRE__ROLE__LOCAL_TEAM
    ||   role == KP__WIRE__ROLE__LEERPLICHT) && address_count == 0)
        return "this role needs at least one municipality address";
    if (role == KP__WIRE__ROLE__AUDITOR && address_count > 0)
        return "an auditor serves no addresses";
    if (covenant && role != KP__WIRE__ROLE__SCHOOL)
        return "only a school can be a covenant member";
    return NULL;
}


//  --------------------------------------------------------------------------
//  Partners and lists of them

static void
s_partner_destroy (kp_partner_t **self_p)
{
    assert (self_p);
    kp_partner_t *self = *self_p;
    if (!self)
        return;
    for (size_t index = 0; index < self->address_count; index++)
        free (self->addresses [index]);
    free (self->addresses);
    if (self->registration)
        kp__wire__registration__free_unpacked (self->registration, NULL);
    free (self->created);
    free (self->name);
    free (self->id);
    free (self);
    *self_p = NULL;
}

static void
s_partner_list_destroy (s_partner_list_t **self_p)
{
    assert (self_p);
    s_partner_list_t *self = *self_p;
    if (!self)
        return;
    for (size_t index = 0; index < self->size; index++)
        s_partner_destroy (&self->items [index]);
    free (self->items);
    free (self);
    *self_p = NULL;
}

//  Split a comma-separated list into a new NULL-terminated array; "" gives
//  an empty array. Returns NULL on an empty element ("GM0153,,GM0164").
static char **
s_addresses_split (const char *text, size_t *count_p)
{
    size_t count = 0;
    if (*text) {
        count = 1;
        for (const char *cursor = text; *cursor; cursor++)
            count += *cursor == ',';
    }
    char **addresses = (char **) zmalloc ((count + 1) * sizeof (char *));
    assert (addresses);
    const char *start = text;
    for (size_t index = 0; index < count; index++) {
        size_t length = strcspn (start, ",");
        addresses [index] = strndup (start, length);
        assert (addresses [index]);
        start += length + 1;
        if (length == 0) {
            for (size_t done = 0; done <= index; done++)
                free (addresses [done]);
            free (addresses);
            return NULL;
        }
    }
    *count_p = count;
    return addresses;
}

//  Parse the ZPL file at path; NULL if it cannot be read, is larger than
//  64 KiB, holds a NUL byte or is not ZPL. (zconfig_load leaks on a parse
//  error, and a malformed cert is an expected input here.)
static zconfig_t *
s_zpl_load (const char *path)
{
    zconfig_t *root = NULL;
    char *text = NULL;
    size_t size = 0;
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    struct stat status;
    if (fd < 0 || fstat (fd, &status) || !S_ISREG (status.st_mode)
    ||  status.st_size > S_CERT_MAX)
        goto cleanup;
    size = (size_t) status.st_size;
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
    if (done == size && strlen (text) == size)
        root = zconfig_str_load (text);

cleanup:
    if (text) {
        //  A secret cert put here by mistake must not linger in the heap
        sodium_memzero (text, size);
        free (text);
    }
    if (fd >= 0)
        close (fd);
    return root;
}

//  Log why the cert at path cannot be loaded: one line per failed load
static void
s_cert_refuse (const char *path, const char *reason)
{
    zsys_error ("kp_registry: bad partner cert path=%s reason=%s", path, reason);
}

//  Load one partner cert, the file partners/file_id. Returns a new partner,
//  or NULL after one zsys_error line naming the file and the fault.
static kp_partner_t *
s_partner_load (const char *path, const char *file_id)
{
    kp_partner_t *self = NULL;
    zconfig_t *root = s_zpl_load (path);
    if (!root) {
        s_cert_refuse (path, "not a readable ZPL file of at most 64 KiB");
        goto cleanup;
    }
    const char *public_key = zconfig_get (root, "curve/public-key", NULL);
    uint8_t key_bin [32];
    if (!public_key || strlen (public_key) != KP_KEY_TEXT
    ||  !zmq_z85_decode (key_bin, public_key)) {
        s_cert_refuse (path, "curve/public-key is not 40 Z85 characters");
        goto cleanup;
    }
    //  Only the canonical encoding: decode then encode gives the same text
    char key_text [KP_KEY_TEXT + 1];
    zmq_z85_encode (key_text, key_bin, sizeof key_bin);
    if (!streq (key_text, public_key)) {
        s_cert_refuse (path, "curve/public-key is not canonical Z85");
        goto cleanup;
    }
    if (zconfig_locate (root, "curve/secret-key")) {
        s_cert_refuse (path, "holds a secret key; only public certs belong here");
        goto cleanup;
    }
    const char *partner = zconfig_get (root, "metadata/partner", NULL);
    const char *role_name = zconfig_get (root, "metadata/role", NULL);
    const char *name = zconfig_get (root, "metadata/name", NULL);
    const char *address_text = zconfig_get (root, "metadata/addresses", NULL);
    const char *covenant = zconfig_get (root, "metadata/covenant", NULL);
    const char *created = zconfig_get (root, "metadata/created", NULL);
    if (!partner || !role_name || !name || !address_text || !covenant || !created) {
        s_cert_refuse (path, "metadata lacks one of partner, role, name, addresses, "
                             "covenant, created");
        goto cleanup;
    }
    if (!streq (partner, file_id)) {
        s_cert_refuse (path, "metadata partner differs from the file name");
        goto cleanup;
    }
    Kp__Wire__Role role = kp_role_from_name (role_name);
    if (!kp_role_name (role) || !streq (kp_role_name (role), role_name)) {
        s_cert_refuse (path, "metadata role is not a known role");
        goto cleanup;
    }
    if (!streq (covenant, "0") && !streq (covenant, "1")) {
        s_cert_refuse (path, "metadata covenant is not 0 or 1");
        goto cleanup;
    }
    if (*created == 0) {
        s_cert_refuse (path, "metadata created is empty");
        goto cleanup;
    }
    self = (kp_partner_t *) zmalloc (sizeof (kp_partner_t));
    assert (self);
    self->addresses = s_addresses_split (address_text, &self->address_count);
    if (!self->addresses) {
        s_cert_refuse (path, "metadata addresses has an empty element");
        s_partner_destroy (&self);
        goto cleanup;
    }
    self->covenant = streq (covenant, "1");
    const char *fault = kp_partner_check (partner, role, name,
                                         (const char *const *) self->addresses,
                                         self->address_count, self->covenant);
    if (fault) {
        s_cert_refuse (path, fault);
        s_partner_destroy (&self);
        goto cleanup;
    }
    //  The registration (the partner's keys, signed by the region's
    //  registration key) is passed on to clients, who check it; the broker
    //  only checks that it is base64
    const char *registration = zconfig_get (root, "metadata/registration", NULL);
    if (registration && *registration) {
        size_t text_size = strlen (registration);
        uint8_t *packed = (uint8_t *) malloc (text_size);
        assert (packed);
        size_t packed_size = 0;
        if (sodium_base642bin (packed, text_size, registration, text_size, NULL,
                               &packed_size, NULL, sodium_base64_VARIANT_ORIGINAL) == 0)
            self->registration = kp__wire__registration__unpack (NULL, packed_size, packed);
        free (packed);
        if (!self->registration) {
            s_cert_refuse (path, "metadata registration is not a base64 Registration");
            s_partner_destroy (&self);
            goto cleanup;
        }
    }
    self->id = strdup (partner);
    self->role = role;
    self->name = strdup (name);
    self->created = strdup (created);
    assert (self->id && self->name && self->created);
    memcpy (self->public_key, key_text, sizeof self->public_key);

cleanup:
    zconfig_destroy (&root);
    return self;
}

static void
s_free_item (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

static int
s_compare_names (const void *item1, const void *item2)
{
    return strcmp ((const char *) item1, (const char *) item2);
}

//  Names in a directory, sorted, without dot and temp files (kp-keys writes
//  temp files as dotfiles). Returns a new list, caller destroys it; or NULL
//  with errno set.
static zlistx_t *
s_dir_names (const char *path)
{
    DIR *dir = opendir (path);
    if (!dir)
        return NULL;
    zlistx_t *names = zlistx_new ();
    assert (names);
    zlistx_set_destructor (names, s_free_item);
    zlistx_set_comparator (names, s_compare_names);
    struct dirent *entry;
    errno = 0;
    while ((entry = readdir (dir))) {
        if (entry->d_name [0] != '.') {
            char *name = strdup (entry->d_name);
            assert (name);
            zlistx_add_end (names, name);
        }
        errno = 0;
    }
    int err = errno;
    closedir (dir);
    if (err) {
        zlistx_destroy (&names);
        errno = err;
        return NULL;
    }
    zlistx_sort (names);
    return names;
}

//  True if name ends with "_secret"
static bool
s_is_secret_name (const char *name)
{
    size_t length = strlen (name);
    return length >= 7 && streq (name + length - 7, "_secret");
}

static int
s_compare_partners (const void *item1, const void *item2)
{
    const kp_partner_t *partner1 = *(const kp_partner_t *const *) item1;
    const kp_partner_t *partner2 = *(const kp_partner_t *const *) item2;
    return strcmp (partner1->id, partner2->id);
}

//  Load every partner in partners/ that is not in revoked/. Returns a new
//  list sorted by id, or NULL after one zsys_error line.
static s_partner_list_t *
s_partner_list_load (kp_registry_t *self)
{
    s_partner_list_t *list = NULL;
    zlistx_t *revoked = NULL;
    zlistx_t *names = s_dir_names (self->partners_dir);
    if (!names) {
        zsys_error ("kp_registry: cannot read partners dir path=%s error=%s",
                    self->partners_dir, strerror (errno));
        goto cleanup;
    }
    revoked = s_dir_names (self->revoked_dir);
    if (!revoked && errno != ENOENT) {
        zsys_error ("kp_registry: cannot read revoked dir path=%s error=%s",
                    self->revoked_dir, strerror (errno));
        goto cleanup;
    }
    list = (s_partner_list_t *) zmalloc (sizeof (s_partner_list_t));
    assert (list);
    list->items = (kp_partner_t **) zmalloc ((zlistx_size (names) + 1)
                                             * sizeof (kp_partner_t *));
    assert (list->items);
    for (const char *name = (const char *) zlistx_first (names); name;
         name = (const char *) zlistx_next (names)) {
        char *path = zsys_sprintf ("%s/%s", self->partners_dir, name);
        assert (path);
        //  A secret never belongs here, but a stray one must not stop the
        //  broker: it is skipped, and the operator told to move it
        if (s_is_secret_name (name)) {
            zsys_warning ("kp_registry: secret cert in partners dir, ignored; "
                          "move it out path=%s", path);
            free (path);
            continue;
        }
        if (revoked && zlistx_find (revoked, (void *) name)) {
            zsys_warning ("kp_registry: partner both active and revoked, "
                          "taken as revoked id=%s (kp-keys revoke finishes it)", name);
            free (path);
            continue;
        }
        struct stat status;
        if (stat (path, &status) || !S_ISREG (status.st_mode)) {
            s_cert_refuse (path, "not a regular file");
            free (path);
            s_partner_list_destroy (&list);
            goto cleanup;
        }
        if (!kp_partner_id_valid (name)) {
            s_cert_refuse (path, "file name is not a partner id");
            free (path);
            s_partner_list_destroy (&list);
            goto cleanup;
        }
        kp_partner_t *partner = s_partner_load (path, name);
        free (path);
        if (!partner) {
            s_partner_list_destroy (&list);
            goto cleanup;
        }
        list->items [list->size++] = partner;
    }
    qsort (list->items, list->size, sizeof (kp_partner_t *), s_compare_partners);
    //  Two partners with one key would make the key -> id map ambiguous
    for (size_t index = 0; index < list->size; index++)
        for (size_t other = index + 1; other < list->size; other++)
            if (sodium_memcmp (list->items [index]->public_key,
                               list->items [other]->public_key, KP_KEY_TEXT) == 0) {
                zsys_error ("kp_registry: duplicate partner key id=%s id=%s dir=%s",
                            list->items [index]->id, list->items [other]->id,
                            self->partners_dir);
                s_partner_list_destroy (&list);
                goto cleanup;
            }

cleanup:
    zlistx_destroy (&revoked);
    zlistx_destroy (&names);
    return list;
}

//  True if both lists hold the same partners with the same fields
static bool
s_registration_equal (const Kp__Wire__Registration *one, const Kp__Wire__Registration *two)
{
    if (!one || !two)
        return one == two;
    return one->statement.len == two->statement.len
        && one->signature.len == two->signature.len
        && (one->statement.len == 0
            || memcmp (one->statement.data, two->statement.data, one->statement.len) == 0)
        && (one->signature.len == 0
            || memcmp (one->signature.data, two->signature.data, one->signature.len) == 0);
}

static bool
s_partner_list_equal (s_partner_list_t *list1, s_partner_list_t *list2)
{
    if (list1->size != list2->size)
        return false;
    for (size_t index = 0; index < list1->size; index++) {
        const kp_partner_t *partner1 = list1->items [index];
        const kp_partner_t *partner2 = list2->items [index];
        if (!streq (partner1->id, partner2->id)
        ||  !streq (partner1->public_key, partner2->public_key)
        ||  partner1->role != partner2->role
        ||  partner1->covenant != partner2->covenant
        ||  !streq (partner1->name, partner2->name)
        ||  !streq (partner1->created, partner2->created)
        ||  partner1->address_count != partner2->address_count
        ||  !s_registration_equal (partner1->registration, partner2->registration))
            return false;
        for (size_t address = 0; address < partner1->address_count; address++)
            if (!streq (partner1->addresses [address], partner2->addresses [address]))
                return false;
    }
    return true;
}


//  --------------------------------------------------------------------------
//  Fingerprint of the directories, for kp_registry_stale

static void
s_fingerprint_line (crypto_hash_sha256_state *state, const char *name,
                    const struct stat *status)
{
    char *line = zsys_sprintf ("%s %ju %ju %jd %jd.%09ld %jd.%09ld\n", name,
                               (uintmax_t) status->st_ino, (uintmax_t) status->st_nlink,
                               (intmax_t) status->st_size,
                               (intmax_t) status->st_mtim.tv_sec,
                               status->st_mtim.tv_nsec,
                               (intmax_t) status->st_ctim.tv_sec,
                               status->st_ctim.tv_nsec);
    assert (line);
    crypto_hash_sha256_update (state, (const uint8_t *) line, strlen (line));
    free (line);
}

//  Feed a stat of dir and of every entry in it, in name order
static void
s_fingerprint_dir (crypto_hash_sha256_state *state, const char *path)
{
    DIR *dir = opendir (path);
    if (!dir) {
        char *line = zsys_sprintf ("%s missing %d\n", path, errno);
        assert (line);
        crypto_hash_sha256_update (state, (const uint8_t *) line, strlen (line));
        free (line);
        return;
    }
    struct stat status;
    if (fstat (dirfd (dir), &status) == 0)
        s_fingerprint_line (state, path, &status);
    zlistx_t *lines = zlistx_new ();
    assert (lines);
    zlistx_set_destructor (lines, s_free_item);
    zlistx_set_comparator (lines, s_compare_names);
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        if (streq (entry->d_name, ".") || streq (entry->d_name, ".."))
            continue;
        if (fstatat (dirfd (dir), entry->d_name, &status, AT_SYMLINK_NOFOLLOW))
            memset (&status, 0, sizeof status);
        //  The name leads, so sorting the lines sorts by name
        char *line = zsys_sprintf ("%s %ju %jd %jd.%09ld %jd.%09ld", entry->d_name,
                                   (uintmax_t) status.st_ino, (intmax_t) status.st_size,
                                   (intmax_t) status.st_mtim.tv_sec,
                                   status.st_mtim.tv_nsec,
                                   (intmax_t) status.st_ctim.tv_sec,
                                   status.st_ctim.tv_nsec);
        assert (line);
        zlistx_add_end (lines, line);
    }
    closedir (dir);
    zlistx_sort (lines);
    for (const char *line = (const char *) zlistx_first (lines); line;
         line = (const char *) zlistx_next (lines)) {
        crypto_hash_sha256_update (state, (const uint8_t *) line, strlen (line) + 1);
    }
    zlistx_destroy (&lines);
}

static void
s_fingerprint (kp_registry_t *self, uint8_t *digest)
{
    crypto_hash_sha256_state state;
    crypto_hash_sha256_init (&state);
    s_fingerprint_dir (&state, self->partners_dir);
    s_fingerprint_dir (&state, self->revoked_dir);
    crypto_hash_sha256_final (&state, digest);
}


//  --------------------------------------------------------------------------
//  Load the registry of region_dir; NULL (one zsys_error line) if the
//  partners directory is missing or any cert in it is malformed

kp_registry_t *
kp_registry_new (const char *region_dir)
{
    assert (region_dir);
    if (sodium_init () < 0) {
        zsys_error ("kp_registry: libsodium does not start");
        return NULL;
    }
    kp_registry_t *self = (kp_registry_t *) zmalloc (sizeof (kp_registry_t));
    assert (self);
    self->partners_dir = zsys_sprintf ("%s/partners", region_dir);
    self->revoked_dir = zsys_sprintf ("%s/revoked", region_dir);
    assert (self->partners_dir && self->revoked_dir);
    self->cursor = 0;
    //  Fingerprint first: a change made while we read shows up as stale
    s_fingerprint (self, self->fingerprint);
    self->list = s_partner_list_load (self);
    if (!self->list)
        kp_registry_destroy (&self);
    return self;
}

//  --------------------------------------------------------------------------
//  Destroy the registry; idempotent, nulls *self_p

void
kp_registry_destroy (kp_registry_t **self_p)
{
    assert (self_p);
    kp_registry_t *self = *self_p;
    if (!self)
        return;
    s_partner_list_destroy (&self->list);
    free (self->revoked_dir);
    free (self->partners_dir);
    free (self);
    *self_p = NULL;
}

//  After a failed reload, still drop each partner whose cert left
//  partners/ or appeared in revoked/: a malformed file elsewhere must never
//  keep a revoked key admitted. Returns true if any was dropped.
static bool
s_drop_revoked (kp_registry_t *self)
{
    s_partner_list_t *list = self->list;
    size_t kept = 0;
    for (size_t index = 0; index < list->size; index++) {
        kp_partner_t *partner = list->items [index];
        char *active_path = zsys_sprintf ("%s/%s", self->partners_dir, partner->id);
        char *revoked_path = zsys_sprintf ("%s/%s", self->revoked_dir, partner->id);
        assert (active_path && revoked_path);
        struct stat status;
        bool gone = (stat (active_path, &status) && errno == ENOENT)
                 || stat (revoked_path, &status) == 0;
        free (revoked_path);
        free (active_path);
        if (gone) {
            zsys_notice ("kp_registry: partner dropped id=%s key=%.8s",
                         partner->id, partner->public_key);
            s_partner_destroy (&partner);
        }
        else
            list->items [kept++] = partner;
    }
    bool dropped = kept < list->size;
    list->size = kept;
    return dropped;
}

//  --------------------------------------------------------------------------
//  Re-read the directory. On failure keeps the old contents (less partners
//  revoked or removed since) and returns -1. Sets *changed_p if not NULL.

int
kp_registry_reload (kp_registry_t *self, bool *changed_p)
{
    assert (self);
    bool changed = false;
    //  The fingerprint is kept even when the load fails, so a broken cert
    //  is reported once per change of the directory, not on every check
    s_fingerprint (self, self->fingerprint);
    s_partner_list_t *fresh = s_partner_list_load (self);
    if (!fresh) {
        changed = s_drop_revoked (self);
        if (changed)
            self->cursor = self->list->size;
        if (changed_p)
            *changed_p = changed;
        return -1;
    }
    if (s_partner_list_equal (self->list, fresh))
        s_partner_list_destroy (&fresh);
    else {
        changed = true;
        s_partner_list_destroy (&self->list);
        self->list = fresh;
        //  Pointers from before are gone: end any iteration in progress
        self->cursor = self->list->size;
    }
    if (changed_p)
        *changed_p = changed;
    return 0;
}

//  --------------------------------------------------------------------------
//  True if partners/ or revoked/ look changed since the last load

bool
kp_registry_stale (kp_registry_t *self)
{
    assert (self);
    uint8_t fingerprint [crypto_hash_sha256_BYTES];
    s_fingerprint (self, fingerprint);
    return memcmp (fingerprint, self->fingerprint, sizeof fingerprint) != 0;
}

//  --------------------------------------------------------------------------
//  Partner with this Z85 public key, or NULL; compares in constant time

const kp_partner_t *
kp_registry_by_key (kp_registry_t *self, const char *public_key)
{
    assert (self);
    assert (public_key);
    if (strnlen (public_key, KP_KEY_TEXT + 1) != KP_KEY_TEXT)
        return NULL;
    //  Look at every partner, so the time taken does not say which matched
    const kp_partner_t *found = NULL;
    for (size_t index = 0; index < self->list->size; index++) {
        const kp_partner_t *partner = self->list->items [index];
        if (sodium_memcmp (partner->public_key, public_key, KP_KEY_TEXT) == 0
        &&  !found)
            found = partner;
    }
    return found;
}

//  --------------------------------------------------------------------------
//  Partner with this id, or NULL

const kp_partner_t *
kp_registry_by_id (kp_registry_t *self, const char *id)
{
    assert (self);
    assert (id);
    size_t low = 0;
    size_t high = self->list->size;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        int order = strcmp (id, self->list->items [middle]->id);
        if (order == 0)
            return self->list->items [middle];
        if (order < 0)
            high = middle;
        else
            low = middle + 1;
    }
    return NULL;
}

//  --------------------------------------------------------------------------
//  The first partner (by id) of role that serves address, or NULL

const kp_partner_t *
kp_registry_serving (kp_registry_t *self, Kp__Wire__Role role, const char *address)
{
    assert (self);
    assert (address);
    for (size_t index = 0; index < self->list->size; index++) {
        const kp_partner_t *partner = self->list->items [index];
        if (partner->role != role)
            continue;
        for (size_t item = 0; item < partner->address_count; item++)
            if (streq (partner->addresses [item], address))
                return partner;
    }
    return NULL;
}

//  --------------------------------------------------------------------------
//  First partner in id order, or NULL if none

const kp_partner_t *
kp_registry_first (kp_registry_t *self)
{
    assert (self);
    self->cursor = 0;
    return kp_registry_next (self);
}

//  --------------------------------------------------------------------------
//  Next partner in id order, or NULL at the end

const kp_partner_t *
kp_registry_next (kp_registry_t *self)
{
    assert (self);
    if (self->cursor >= self->list->size)
        return NULL;
    return self->list->items [self->cursor++];
}

//  --------------------------------------------------------------------------
//  Number of partners loaded

size_t
kp_registry_size (kp_registry_t *self)
{
    assert (self);
    return self->list->size;
}
