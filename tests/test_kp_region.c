/*  =========================================================================
    test_kp_region - making a region, adding and revoking partners, kp-keys

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
    Each test works in its own mkdtemp directory, removed at the end, with
    keys made at runtime. The kp-keys tests run the built program and check
    its exit codes, and that no secret key text ever reaches its output.
*/
#include "kp_region.h"
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <fcntl.h>
#include <ftw.h>
#include <sodium.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define S_KP_KEYS KP_BIN_DIR "/keys/kp-keys"

static char *s_dir;                 //  this test's temp dir
static char *s_region;              //  s_dir/region (not made by the fixture)

static int
s_remove_entry (const char *path, const struct stat *status, int flag, struct FTW *walk)
{
    (void) status;
    (void) flag;
    (void) walk;
    return remove (path);
}

static void
s_setup (void)
{
    s_dir = strdup ("/tmp/kp-test-region-XXXXXX");
    cr_assert_not_null (mkdtemp (s_dir));
    s_region = zsys_sprintf ("%s/region", s_dir);
    cr_assert_eq (sodium_init () >= 0, true);
}

static void
s_teardown (void)
{
    nftw (s_dir, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    zstr_free (&s_region);
    zstr_free (&s_dir);
}

TestSuite (kp_region, .init = s_setup, .fini = s_teardown, .timeout = 60.);

//  --------------------------------------------------------------------------
//  Helpers

//  region/relative as a new string
static char *
s_path (const char *relative)
{
    return zsys_sprintf ("%s/%s", s_region, relative);
}

//  Permission bits of region/relative, or -1 if it does not exist
static int
s_mode (const char *relative)
{
    char *path = s_path (relative);
    struct stat status;
    int mode = lstat (path, &status) == 0? (int) (status.st_mode & 07777): -1;
    free (path);
    return mode;
}

static bool
s_exists (const char *relative)
{
    return s_mode (relative) >= 0;
}

//  Whole file at path as a new string, or NULL
static char *
s_slurp (const char *path)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return NULL;
    char *text = NULL;
    size_t size = 0;
    FILE *stream = open_memstream (&text, &size);
    int c;
    while ((c = fgetc (file)) != EOF)
        fputc (c, stream);
    fclose (stream);
    fclose (file);
    return text;
}

//  A value (e.g. "curve/public-key") of the cert region/relative; caller
//  frees; NULL if absent
static char *
s_cert_value (const char *relative, const char *key)
{
    char *path = s_path (relative);
    zconfig_t *root = zconfig_load (path);
    free (path);
    if (!root)
        return NULL;
    const char *value = zconfig_get (root, key, NULL);
    char *copy = value? strdup (value): NULL;
    zconfig_destroy (&root);
    return copy;
}

static void
s_snapshot_add (const char *path, FILE *stream)
{
    DIR *dir = opendir (path);
    if (!dir)
        return;
    zlistx_t *names = zlistx_new ();
    zlistx_set_destructor (names, (zlistx_destructor_fn *) zstr_free);
    zlistx_set_comparator (names, (zlistx_comparator_fn *) strcmp);
    struct dirent *entry;
    while ((entry = readdir (dir)))
        if (!streq (entry->d_name, ".") && !streq (entry->d_name, ".."))
            zlistx_add_end (names, strdup (entry->d_name));
    closedir (dir);
    zlistx_sort (names);
    for (char *name = (char *) zlistx_first (names); name;
         name = (char *) zlistx_next (names)) {
        char *child = zsys_sprintf ("%s/%s", path, name);
        struct stat status;
        lstat (child, &status);
        fprintf (stream, "%s %o %jd %jd.%09ld\n", child, (unsigned) status.st_mode,
                 (intmax_t) status.st_size, (intmax_t) status.st_mtim.tv_sec,
                 status.st_mtim.tv_nsec);
        if (S_ISDIR (status.st_mode))
            s_snapshot_add (child, stream);
        free (child);
    }
    zlistx_destroy (&names);
}

//  Every path under the region with mode, size and mtime: a new string
static char *
s_snapshot (void)
{
    char *text = NULL;
    size_t size = 0;
    FILE *stream = open_memstream (&text, &size);
    s_snapshot_add (s_region, stream);
    fclose (stream);
    return text;
}

//  Register a partner with fresh keys; asserts it worked
static void
s_add (const char *id, Kp__Wire__Role role, const char *address, bool covenant)
{
    const char *addresses [] = { address, NULL };
    cr_assert_eq (kp_region_add (s_region, id, role, "Demo", addresses, covenant, NULL),
                  0, "cannot add %s", id);
}

//  A fresh CURVE public key, Z85; caller frees
static char *
s_fresh_key (void)
{
    zcert_t *cert = zcert_new ();
    char *key = strdup (zcert_public_txt (cert));
    zcert_destroy (&cert);
    return key;
}

//  Output of one kp-keys run
typedef struct {
    int status;                     //  exit code, -1 if it did not exit
    char *out;                      //  its stdout
    char *err;                      //  its stderr
} s_run_t;

static void
s_run_free (s_run_t *run)
{
    zstr_free (&run->out);
    zstr_free (&run->err);
}

//  Run kp-keys with args (NULL-terminated, after the program name); its
//  output goes to files in the temp dir. No deadline here: the test's
//  timeout is the deadline.
static s_run_t
s_run_argv (const char *const *args)
{
    const char *argv [32] = { S_KP_KEYS };
    size_t argc = 1;
    for (size_t index = 0; args [index]; index++) {
        cr_assert_lt (argc, 31);
        argv [argc++] = args [index];
    }
    argv [argc] = NULL;
    char *out_path = zsys_sprintf ("%s/kp-keys.out", s_dir);
    char *err_path = zsys_sprintf ("%s/kp-keys.err", s_dir);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init (&actions);
    posix_spawn_file_actions_addopen (&actions, STDOUT_FILENO, out_path,
                                      O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen (&actions, STDERR_FILENO, err_path,
                                      O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t pid;
    extern char **environ;
    int rc = posix_spawn (&pid, S_KP_KEYS, &actions, NULL, (char *const *) argv, environ);
    posix_spawn_file_actions_destroy (&actions);
    cr_assert_eq (rc, 0, "cannot run %s: %s", S_KP_KEYS, strerror (rc));
    int status = 0;
    cr_assert_eq (waitpid (pid, &status, 0), pid);
    s_run_t run = { WIFEXITED (status)? WEXITSTATUS (status): -1,
                    s_slurp (out_path), s_slurp (err_path) };
    cr_assert_not_null (run.out);
    cr_assert_not_null (run.err);
    unlink (out_path);
    unlink (err_path);
    free (err_path);
    free (out_path);
    return run;
}

//  Run kp-keys with the NULL-terminated arguments after it
static s_run_t
s_run (const char *first, ...)
{
    const char *args [32];
    size_t count = 0;
    va_list list;
    va_start (list, first);
    for (const char *arg = first; arg; arg = va_arg (list, const char *)) {
        cr_assert_lt (count, 31);
        args [count++] = arg;
    }
    va_end (list);
    args [count] = NULL;
    return s_run_argv (args);
}

//  --------------------------------------------------------------------------
//  kp_region_init

Test (kp_region, init_makes_the_region_with_private_secrets)
{
    cr_assert_eq (kp_region_init (s_region, "broker twente"), 0);
    cr_expect_eq (s_mode ("broker"), 0644);
    cr_expect_eq (s_mode ("broker_secret"), 0600);
    cr_expect_eq (s_mode ("checkpoint.pub"), 0644);
    cr_expect_eq (s_mode ("checkpoint_secret"), 0600);
    cr_expect_eq (s_mode ("partners"), 0755);
    cr_expect_eq (s_mode ("revoked"), 0755);
    cr_expect_eq (s_mode ("secrets"), 0700);

    char *name = s_cert_value ("broker", "metadata/name");
    cr_expect_str_eq (name, "broker twente");
    free (name);
    char *created = s_cert_value ("broker", "metadata/created");
    cr_assert_not_null (created);
    cr_expect_eq (strlen (created), 20);
    cr_expect_eq (created [19], 'Z');
    free (created);
    char *public_key = s_cert_value ("broker", "curve/public-key");
    cr_expect_null (s_cert_value ("broker", "curve/secret-key"));
    char *secret_public = s_cert_value ("broker_secret", "curve/public-key");
    char *secret_key = s_cert_value ("broker_secret", "curve/secret-key");
    cr_assert_not_null (public_key);
    cr_assert_not_null (secret_key);
    cr_expect_str_eq (public_key, secret_public);
    //  The secret belongs to the public key
    uint8_t secret_bin [32], public_bin [32], derived [32];
    cr_assert_not_null (zmq_z85_decode (secret_bin, secret_key));
    cr_assert_not_null (zmq_z85_decode (public_bin, public_key));
    crypto_scalarmult_base (derived, secret_bin);
    cr_expect_eq (memcmp (derived, public_bin, 32), 0);
    free (secret_key);
    free (secret_public);
    free (public_key);

    //  Checkpoint key: hex lines; the secret signs what the public verifies
    char *pub_path = s_path ("checkpoint.pub");
    char *sec_path = s_path ("checkpoint_secret");
    char *pub_text = s_slurp (pub_path);
    char *sec_text = s_slurp (sec_path);
    cr_assert_eq (strlen (pub_text), 65);
    cr_assert_eq (strlen (sec_text), 129);
    cr_expect_eq (pub_text [64], '\n');
    cr_expect_eq (sec_text [128], '\n');
    pub_text [64] = 0;
    sec_text [128] = 0;
    uint8_t sign_public [crypto_sign_PUBLICKEYBYTES];
    uint8_t sign_secret [crypto_sign_SECRETKEYBYTES];
    cr_assert_eq (kp_hex_decode (pub_text, sign_public, sizeof sign_public), 0);
    cr_assert_eq (kp_hex_decode (sec_text, sign_secret, sizeof sign_secret), 0);
    uint8_t signature [crypto_sign_BYTES];
    const uint8_t message [] = "checkpoint";
    crypto_sign_detached (signature, NULL, message, sizeof message, sign_secret);
    cr_expect_eq (crypto_sign_verify_detached (signature, message, sizeof message,
                                               sign_public), 0);
    free (sec_text);
    free (pub_text);
    free (sec_path);
    free (pub_path);

    //  Nothing else was left beside the region
    DIR *dir = opendir (s_dir);
    struct dirent *entry;
    while ((entry = readdir (dir)))
        cr_expect (streq (entry->d_name, ".") || streq (entry->d_name, "..")
                   || streq (entry->d_name, "region"), "left behind: %s", entry->d_name);
    closedir (dir);
}

Test (kp_region, init_refuses_an_existing_region)
{
    cr_assert_eq (kp_region_init (s_region, "first"), 0);
    char *before = s_snapshot ();
    cr_expect_eq (kp_region_init (s_region, "second"), -1);
    char *trailing = zsys_sprintf ("%s/", s_region);
    cr_expect_eq (kp_region_init (trailing, "second"), -1);
    char *after = s_snapshot ();
    cr_expect_str_eq (after, before);
    free (trailing);
    free (after);
    free (before);
}

Test (kp_region, init_refuses_a_nonempty_dir_and_a_file)
{
    cr_assert_eq (mkdir (s_region, 0755), 0);
    char *stray = s_path ("notes.txt");
    FILE *file = fopen (stray, "w");
    fclose (file);
    cr_expect_eq (kp_region_init (s_region, "broker"), -1);
    cr_expect_not (s_exists ("broker"));
    free (stray);
    char *plain = zsys_sprintf ("%s/plain", s_dir);
    file = fopen (plain, "w");
    fclose (file);
    cr_expect_eq (kp_region_init (plain, "broker"), -1);
    free (plain);
}

Test (kp_region, init_fills_an_empty_dir)
{
    cr_assert_eq (mkdir (s_region, 0755), 0);
    cr_expect_eq (kp_region_init (s_region, "broker"), 0);
    cr_expect (s_exists ("broker_secret"));
}

Test (kp_region, init_refuses_a_bad_name_and_writes_nothing)
{
    cr_expect_eq (kp_region_init (s_region, ""), -1);
    cr_expect_eq (kp_region_init (s_region, "say \"hi\""), -1);
    cr_expect_eq (kp_region_init (s_region, "two\nlines"), -1);
    cr_expect_not (s_exists (""));
}

Test (kp_region, paths_of_broker_cert_and_secrets)
{
    char *broker = kp_region_broker_cert (s_region);
    char *expected = s_path ("broker");
    cr_expect_str_eq (broker, expected);
    free (expected);
    free (broker);
    char *secret = kp_region_secret_path (s_region, "lt-enschede");
    expected = s_path ("secrets/lt-enschede_secret");
    cr_expect_str_eq (secret, expected);
    free (expected);
    free (secret);
}

//  --------------------------------------------------------------------------
//  kp_region_add

//  A partner to add: strings inline, as Criterion does not copy what
//  parameter pointers point to into the test's process
typedef struct {
    char id [72];                   //  partner id
    Kp__Wire__Role role;            //  its role
    char addresses [3][16];         //  up to 3; "" ends the list
    bool covenant;                  //  covenant member
    char name [32];                 //  organisation name
    char public_key [48];           //  "" = make a keypair; "DUPKEY" = police-oost's,
                                    //  "REVKEY" = a revoked partner's, "BROKER" = the
                                    //  broker's
} s_partner_case_t;

//  Make the region of the add tests: police-oost active, lt-gone revoked
static void
s_region_with_partners (void)
{
    cr_assert_eq (kp_region_init (s_region, "broker"), 0);
    s_add ("police-oost", KP__WIRE__ROLE__POLICE, NULL, false);
    s_add ("lt-gone", KP__WIRE__ROLE__LOCAL_TEAM, "GM0141", false);
    cr_assert_eq (kp_region_revoke (s_region, "lt-gone"), 0);
}

//  Call kp_region_add with a case
static int
s_add_case (const s_partner_case_t *param)
{
    const char *addresses [4] = { NULL };
    for (size_t index = 0; index < 3 && *param->addresses [index]; index++)
        addresses [index] = param->addresses [index];
    char *key = NULL;
    if (streq (param->public_key, "DUPKEY"))
        key = s_cert_value ("partners/police-oost", "curve/public-key");
    else
    if (streq (param->public_key, "REVKEY"))
        key = s_cert_value ("revoked/lt-gone", "curve/public-key");
    else
    if (streq (param->public_key, "BROKER"))
        key = s_cert_value ("broker", "curve/public-key");
    else
    if (*param->public_key)
        key = strdup (param->public_key);
    int rc = kp_region_add (s_region, param->id, param->role, param->name, addresses,
                            param->covenant, key);
    free (key);
    return rc;
}

ParameterizedTestParameters (kp_region, add_accepts_each_role)
{
    static s_partner_case_t cases [] = {
        { "police-oost-2", KP__WIRE__ROLE__POLICE, { "" }, false, "Politie", "" },
        { "police-gm", KP__WIRE__ROLE__POLICE, { "GM0153", "GM0164" }, false, "P", "" },
        { "vt-twente", KP__WIRE__ROLE__VEILIG_THUIS, { "GM0153", "GM0164", "GM1774" },
          false, "Veilig Thuis Twente", "" },
        { "lt-enschede", KP__WIRE__ROLE__LOCAL_TEAM, { "GM0153" }, false, "Wijkteam",
          "" },
        { "lp-enschede", KP__WIRE__ROLE__LEERPLICHT, { "GM0153" }, false, "Leerplicht",
          "" },
        { "school-12ab00", KP__WIRE__ROLE__SCHOOL, { "12AB00" }, true, "Basisschool",
          "" },
        { "school-34cd00", KP__WIRE__ROLE__SCHOOL, { "34CD00" }, false, "Het Lyceum",
          "" },
        { "auditor-fg", KP__WIRE__ROLE__AUDITOR, { "" }, false, "Functionaris", "" },
        { "0-starts-with-digit", KP__WIRE__ROLE__POLICE, { "" }, false, "Zeroes", "" },
        { "name-unicode", KP__WIRE__ROLE__POLICE, { "" }, false,
          "Gemeente Súdwest-Fryslân", "" },
        { "a234567890123456789012345678901234567890123456789012345678901234",
          KP__WIRE__ROLE__POLICE, { "" }, false, "Longest id", "" },
    };
    return cr_make_param_array (s_partner_case_t, cases, sizeof cases / sizeof cases [0]);
}

ParameterizedTest (s_partner_case_t *param, kp_region, add_accepts_each_role)
{
    s_region_with_partners ();
    cr_assert_eq (s_add_case (param), 0, "refused %s", param->id);
    char *active = zsys_sprintf ("partners/%s", param->id);
    char *secret = zsys_sprintf ("secrets/%s_secret", param->id);
    cr_expect_eq (s_mode (active), 0644);
    cr_expect_eq (s_mode (secret), 0600);
    char *role = s_cert_value (active, "metadata/role");
    cr_expect_str_eq (role, kp_role_name (param->role));
    char *partner = s_cert_value (active, "metadata/partner");
    cr_expect_str_eq (partner, param->id);
    char *covenant = s_cert_value (active, "metadata/covenant");
    cr_expect_str_eq (covenant, param->covenant? "1": "0");
    char *public_key = s_cert_value (active, "curve/public-key");
    char *secret_public = s_cert_value (secret, "curve/public-key");
    cr_expect_str_eq (public_key, secret_public);
    cr_expect_null (s_cert_value (active, "curve/secret-key"));
    char *secret_key = s_cert_value (secret, "curve/secret-key");
    cr_expect_eq (strlen (secret_key), KP_KEY_TEXT);

    kp_registry_t *registry = kp_registry_new (s_region);
    cr_assert_not_null (registry);
    const kp_partner_t *found = kp_registry_by_key (registry, public_key);
    cr_assert_not_null (found);
    cr_expect_str_eq (found->id, param->id);
    cr_expect_str_eq (found->name, param->name);
    cr_expect_eq (found->role, param->role);
    cr_expect_eq (found->covenant, param->covenant);
    size_t count = 0;
    while (count < 3 && *param->addresses [count])
        count++;
    cr_assert_eq (found->address_count, count);
    for (size_t index = 0; index < count; index++)
        cr_expect_str_eq (found->addresses [index], param->addresses [index]);
    kp_registry_destroy (&registry);
    free (secret_key);
    free (secret_public);
    free (public_key);
    free (covenant);
    free (partner);
    free (role);
    free (secret);
    free (active);
}

ParameterizedTestParameters (kp_region, add_refuses_bad_input_and_writes_nothing)
{
    static s_partner_case_t cases [] = {
        //  Ids
        { "", KP__WIRE__ROLE__POLICE, { "" }, false, "P", "" },
        { "Police", KP__WIRE__ROLE__POLICE, { "" }, false, "P", "" },
        { "police_oost", KP__WIRE__ROLE__POLICE, { "" }, false, "P", "" },
        { "-police", KP__WIRE__ROLE__POLICE, { "" }, false, "P", "" },
        { "police oost", KP__WIRE__ROLE__POLICE, { "" }, false, "P", "" },
        { "../escape", KP__WIRE__ROLE__POLICE, { "" }, false, "P", "" },
        { ".hidden", KP__WIRE__ROLE__POLICE, { "" }, false, "P", "" },
        { "a/b", KP__WIRE__ROLE__POLICE, { "" }, false, "P", "" },
        { "a2345678901234567890123456789012345678901234567890123456789012345",
          KP__WIRE__ROLE__POLICE, { "" }, false, "P", "" },
        //  Roles
        { "nobody", KP__WIRE__ROLE__ROLE_UNSPECIFIED, { "" }, false, "P", "" },
        { "nobody", (Kp__Wire__Role) 99, { "" }, false, "P", "" },
        //  Names
        { "p-1", KP__WIRE__ROLE__POLICE, { "" }, false, "", "" },
        { "p-1", KP__WIRE__ROLE__POLICE, { "" }, false, "say \"hi\"", "" },
        { "p-1", KP__WIRE__ROLE__POLICE, { "" }, false, "two\nlines", "" },
        { "p-1", KP__WIRE__ROLE__POLICE, { "" }, false, "bad \xff utf8", "" },
        //  Addresses by role
        { "vt-1", KP__WIRE__ROLE__VEILIG_THUIS, { "" }, false, "V", "" },
        { "lt-1", KP__WIRE__ROLE__LOCAL_TEAM, { "" }, false, "L", "" },
        { "lp-1", KP__WIRE__ROLE__LEERPLICHT, { "" }, false, "L", "" },
        { "lt-1", KP__WIRE__ROLE__LOCAL_TEAM, { "GM015" }, false, "L", "" },
        { "lt-1", KP__WIRE__ROLE__LOCAL_TEAM, { "gm0153" }, false, "L", "" },
        { "lt-1", KP__WIRE__ROLE__LOCAL_TEAM, { "GM0153", "GM0153" }, false, "L", "" },
        { "lt-1", KP__WIRE__ROLE__LOCAL_TEAM, { "12AB00" }, false, "L", "" },
        { "sc-1", KP__WIRE__ROLE__SCHOOL, { "" }, true, "S", "" },
        { "sc-1", KP__WIRE__ROLE__SCHOOL, { "12ab00" }, true, "S", "" },
        { "sc-1", KP__WIRE__ROLE__SCHOOL, { "GM0153" }, true, "S", "" },
        { "sc-1", KP__WIRE__ROLE__SCHOOL, { "12AB00", "34CD00" }, true, "S", "" },
        { "au-1", KP__WIRE__ROLE__AUDITOR, { "GM0153" }, false, "A", "" },
        //  Covenant only for schools
        { "p-1", KP__WIRE__ROLE__POLICE, { "" }, true, "P", "" },
        { "vt-1", KP__WIRE__ROLE__VEILIG_THUIS, { "GM0153" }, true, "V", "" },
        //  Duplicate and revoked ids
        { "police-oost", KP__WIRE__ROLE__POLICE, { "" }, false, "P", "" },
        { "lt-gone", KP__WIRE__ROLE__LOCAL_TEAM, { "GM0141" }, false, "L", "" },
        //  Keys
        { "p-1", KP__WIRE__ROLE__POLICE, { "" }, false, "P", "DUPKEY" },
        { "p-1", KP__WIRE__ROLE__POLICE, { "" }, false, "P", "REVKEY" },
        { "p-1", KP__WIRE__ROLE__POLICE, { "" }, false, "P", "BROKER" },
        { "p-1", KP__WIRE__ROLE__POLICE, { "" }, false, "P", "short" },
        { "p-1", KP__WIRE__ROLE__POLICE, { "" }, false, "P",
          "~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~" },
        { "p-1", KP__WIRE__ROLE__POLICE, { "" }, false, "P",
          "0123456789012345678901234567890123456789X" },
    };
    return cr_make_param_array (s_partner_case_t, cases, sizeof cases / sizeof cases [0]);
}

ParameterizedTest (s_partner_case_t *param, kp_region,
                   add_refuses_bad_input_and_writes_nothing)
{
    s_region_with_partners ();
    char *before = s_snapshot ();
    cr_expect_eq (s_add_case (param), -1, "accepted id=%s name=%s key=%s", param->id,
                  param->name, param->public_key);
    char *after = s_snapshot ();
    cr_expect_str_eq (after, before, "changed the region: id=%s", param->id);
    free (after);
    free (before);
}

Test (kp_region, add_with_a_public_key_writes_no_secret)
{
    s_region_with_partners ();
    char *key = s_fresh_key ();
    const char *addresses [] = { "GM0153", NULL };
    cr_assert_eq (kp_region_add (s_region, "vt-own-key", KP__WIRE__ROLE__VEILIG_THUIS,
                                 "VT", addresses, false, key), 0);
    cr_expect_not (s_exists ("secrets/vt-own-key_secret"));
    char *stored = s_cert_value ("partners/vt-own-key", "curve/public-key");
    cr_expect_str_eq (stored, key);
    //  The same key twice is refused
    cr_expect_eq (kp_region_add (s_region, "vt-again", KP__WIRE__ROLE__VEILIG_THUIS,
                                 "VT", addresses, false, key), -1);
    free (stored);
    free (key);
}

Test (kp_region, add_refuses_a_leftover_secret_of_an_interrupted_add)
{
    s_region_with_partners ();
    char *leftover = s_path ("secrets/lt-new_secret");
    FILE *file = fopen (leftover, "w");
    fclose (file);
    const char *addresses [] = { "GM0153", NULL };
    cr_expect_eq (kp_region_add (s_region, "lt-new", KP__WIRE__ROLE__LOCAL_TEAM, "L",
                                 addresses, false, NULL), -1);
    cr_expect_not (s_exists ("partners/lt-new"));
    free (leftover);
}

Test (kp_region, add_refuses_a_dir_that_is_no_region)
{
    cr_assert_eq (mkdir (s_region, 0755), 0);
    const char *addresses [] = { NULL };
    cr_expect_eq (kp_region_add (s_region, "p-1", KP__WIRE__ROLE__POLICE, "P", addresses,
                                 false, NULL), -1);
    cr_expect_not (s_exists ("partners"));
}

//  --------------------------------------------------------------------------
//  kp_region_revoke

Test (kp_region, revoke_moves_the_cert_and_deletes_the_secret)
{
    s_region_with_partners ();
    s_add ("lt-enschede", KP__WIRE__ROLE__LOCAL_TEAM, "GM0153", false);
    char *key = s_cert_value ("partners/lt-enschede", "curve/public-key");
    cr_assert_eq (kp_region_revoke (s_region, "lt-enschede"), 0);
    cr_expect_not (s_exists ("partners/lt-enschede"));
    cr_expect_not (s_exists ("secrets/lt-enschede_secret"));
    cr_expect_eq (s_mode ("revoked/lt-enschede"), 0644);
    char *revoked_key = s_cert_value ("revoked/lt-enschede", "curve/public-key");
    cr_expect_str_eq (revoked_key, key);
    char *revoked = s_cert_value ("revoked/lt-enschede", "metadata/revoked");
    cr_assert_not_null (revoked);
    cr_expect_eq (strlen (revoked), 20);
    char *role = s_cert_value ("revoked/lt-enschede", "metadata/role");
    cr_expect_str_eq (role, "local_team");
    free (role);
    free (revoked);
    free (revoked_key);
    free (key);
}

Test (kp_region, revoke_refuses_unknown_revoked_and_bad_ids)
{
    s_region_with_partners ();
    char *before = s_snapshot ();
    cr_expect_eq (kp_region_revoke (s_region, "lt-gone"), -1);
    cr_expect_eq (kp_region_revoke (s_region, "nobody"), -1);
    cr_expect_eq (kp_region_revoke (s_region, "../broker"), -1);
    cr_expect_eq (kp_region_revoke (s_region, ""), -1);
    char *after = s_snapshot ();
    cr_expect_str_eq (after, before);
    free (after);
    free (before);
}

Test (kp_region, revoke_of_a_partner_without_secret)
{
    s_region_with_partners ();
    char *key = s_fresh_key ();
    const char *addresses [] = { NULL };
    cr_assert_eq (kp_region_add (s_region, "p-own", KP__WIRE__ROLE__POLICE, "P",
                                 addresses, false, key), 0);
    cr_expect_eq (kp_region_revoke (s_region, "p-own"), 0);
    cr_expect (s_exists ("revoked/p-own"));
    free (key);
}

Test (kp_region, revoke_finishes_an_interrupted_revoke)
{
    s_region_with_partners ();
    //  As a crash after revoked/ID was written and before partners/ID went
    char *active = s_path ("partners/police-oost");
    char *revoked = s_path ("revoked/police-oost");
    cr_assert_eq (link (active, revoked), 0);
    cr_expect_eq (kp_region_revoke (s_region, "police-oost"), 0);
    cr_expect_not (s_exists ("partners/police-oost"));
    cr_expect_not (s_exists ("secrets/police-oost_secret"));
    cr_expect (s_exists ("revoked/police-oost"));
    free (revoked);
    free (active);
}

//  --------------------------------------------------------------------------
//  kp-keys, the program

Test (kp_region, kp_keys_help_exits_0)
{
    s_run_t run = s_run ("--help", NULL);
    cr_expect_eq (run.status, 0);
    cr_expect_not_null (strstr (run.out, "usage: kp-keys"));
    s_run_free (&run);
    const char *commands [] = { "init", "add", "list", "show", "revoke" };
    for (size_t index = 0; index < 5; index++) {
        run = s_run (commands [index], "--help", NULL);
        cr_expect_eq (run.status, 0, "%s --help", commands [index]);
        cr_expect_not_null (strstr (run.out, commands [index]));
        cr_expect_str_empty (run.err);
        s_run_free (&run);
    }
}

Test (kp_region, kp_keys_usage_errors_exit_2)
{
    cr_assert_eq (kp_region_init (s_region, "broker"), 0);
    const char *region = s_region;
    const char *cases [][12] = {
        { NULL },
        { "frobnicate", NULL },
        { "list", "--region", region, "--bogus", NULL },
        { "list", "-x", NULL },
        { "list", NULL },
        { "list", "--region", NULL },
        { "list", "--region", region, "stray", NULL },
        { "list", "--region", region, "--id", "x", NULL },
        { "show", "--region", region, NULL },
        { "revoke", "--region", region, NULL },
        { "add", "--region", region, "--id", "p-1", "--name", "P", NULL },
        { "add", "--region", region, "--role", "police", "--name", "P", NULL },
        { "add", "--region", region, "--id", "p-1", "--role", "police", NULL },
        { "add", "--region", region, "--id", "p-1", "--role", "cop", "--name", "P",
          NULL },
        { "add", "--region", region, "--id", "p-1", "--role", "POLICE", "--name", "P",
          NULL },
        { "revoke", "--region", region, "--id", "a", "--id", "b", NULL },
        { "init", "--region", region, "--json", NULL },
    };
    char *before = s_snapshot ();
    for (size_t index = 0; index < sizeof cases / sizeof cases [0]; index++) {
        s_run_t run = s_run_argv (cases [index]);
        cr_expect_eq (run.status, 2, "case %zu exit %d: %s", index, run.status, run.err);
        cr_expect_not_null (strstr (run.err, "kp-keys: "), "case %zu: no message", index);
        s_run_free (&run);
    }
    char *after = s_snapshot ();
    cr_expect_str_eq (after, before);
    free (after);
    free (before);
}

Test (kp_region, kp_keys_failures_exit_1)
{
    const char *region = s_region;
    s_run_t run = s_run ("init", "--region", region, NULL);
    cr_assert_eq (run.status, 0, "%s", run.err);
    s_run_free (&run);
    run = s_run ("add", "--region", region, "--id", "p-1", "--role", "police",
                 "--name", "P", NULL);
    cr_assert_eq (run.status, 0, "%s", run.err);
    s_run_free (&run);
    const char *cases [][14] = {
        { "init", "--region", region, NULL },
        { "add", "--region", region, "--id", "p-1", "--role", "police", "--name", "P",
          NULL },
        { "add", "--region", region, "--id", "Bad_Id", "--role", "police", "--name", "P",
          NULL },
        { "add", "--region", region, "--id", "lt-1", "--role", "local_team",
          "--name", "L", NULL },
        { "add", "--region", region, "--id", "lt-1", "--role", "local_team",
          "--name", "L", "--address", "GM15", NULL },
        { "add", "--region", region, "--id", "sc-1", "--role", "school",
          "--name", "S", "--address", "12AB00", "--address", "34CD00", NULL },
        { "add", "--region", region, "--id", "p-2", "--role", "police", "--name", "P",
          "--covenant", NULL },
        { "add", "--region", region, "--id", "p-2", "--role", "police", "--name", "P",
          "--public-key", "short", NULL },
        { "show", "--region", region, "--id", "nobody", NULL },
        { "revoke", "--region", region, "--id", "nobody", NULL },
        { "list", "--region", "/nonexistent/region", NULL },
    };
    char *before = s_snapshot ();
    for (size_t index = 0; index < sizeof cases / sizeof cases [0]; index++) {
        run = s_run_argv (cases [index]);
        cr_expect_eq (run.status, 1, "case %zu exit %d: %s", index, run.status, run.err);
        cr_expect_neq (strlen (run.err), 0, "case %zu: no message", index);
        cr_expect_str_empty (run.out, "case %zu printed: %s", index, run.out);
        s_run_free (&run);
    }
    char *after = s_snapshot ();
    cr_expect_str_eq (after, before);
    free (after);
    free (before);
}

//  Collects all kp-keys output of a test
static void
s_output_add (zlistx_t *outputs, s_run_t *run)
{
    zlistx_add_end (outputs, run->out);
    zlistx_add_end (outputs, run->err);
    run->out = NULL;
    run->err = NULL;
}

//  Every secret key text of the region: the secret-key lines of the secret
//  certs and the checkpoint secret
static void
s_secrets_add (zlistx_t *secrets)
{
    char *value = s_cert_value ("broker_secret", "curve/secret-key");
    cr_assert_not_null (value);
    zlistx_add_end (secrets, value);
    char *path = s_path ("checkpoint_secret");
    char *text = s_slurp (path);
    cr_assert_not_null (text);
    text [strcspn (text, "\n")] = 0;
    zlistx_add_end (secrets, text);
    //  Half of it too: a printed seed alone would give the key away
    zlistx_add_end (secrets, strndup (text, 64));
    free (path);
    char *secrets_dir = s_path ("secrets");
    DIR *dir = opendir (secrets_dir);
    cr_assert_not_null (dir);
    struct dirent *entry;
    while ((entry = readdir (dir))) {
        if (entry->d_name [0] == '.')
            continue;
        char *relative = zsys_sprintf ("secrets/%s", entry->d_name);
        value = s_cert_value (relative, "curve/secret-key");
        cr_assert_not_null (value, "no secret-key in %s", relative);
        cr_assert_eq (strlen (value), KP_KEY_TEXT);
        zlistx_add_end (secrets, value);
        free (relative);
    }
    closedir (dir);
    free (secrets_dir);
}

Test (kp_region, kp_keys_never_prints_a_secret)
{
    const char *region = s_region;
    zlistx_t *outputs = zlistx_new ();
    zlistx_set_destructor (outputs, (zlistx_destructor_fn *) zstr_free);
    zlistx_t *secrets = zlistx_new ();
    zlistx_set_destructor (secrets, (zlistx_destructor_fn *) zstr_free);
    const char *runs [][14] = {
        { "init", "--region", region, "--name", "Broker Twente", NULL },
        { "add", "--region", region, "--id", "police-oost", "--role", "police",
          "--name", "Politie Oost", NULL },
        { "add", "--region", region, "--id", "vt-twente", "--role", "veilig_thuis",
          "--name", "Veilig Thuis Twente", "--address", "GM0153", "--address", "GM0164",
          NULL },
        { "add", "--region", region, "--id", "lt-enschede", "--role", "local_team",
          "--name", "Wijkteam Enschede", "-a", "GM0153", NULL },
        { "add", "--region", region, "--id", "lp-enschede", "--role", "leerplicht",
          "--name", "Leerplicht Enschede", "--address", "GM0153", NULL },
        { "add", "--region", region, "--id", "school-12ab00", "--role", "school",
          "--name", "Basisschool 't Hofje", "--address", "12AB00", "--covenant", NULL },
        { "add", "--region", region, "--id", "auditor-fg", "--role", "auditor",
          "--name", "Functionaris Gegevensbescherming", NULL },
        { "list", "--region", region, NULL },
        { "list", "--region", region, "--json", NULL },
        { "show", "--region", region, "--id", "vt-twente", NULL },
        { "add", "--region", region, "--id", "vt-twente", "--role", "veilig_thuis",
          "--name", "Again", "--address", "GM0153", NULL },
    };
    for (size_t index = 0; index < sizeof runs / sizeof runs [0]; index++) {
        s_run_t run = s_run_argv (runs [index]);
        bool refused = index == sizeof runs / sizeof runs [0] - 1;
        cr_expect_eq (run.status, refused? 1: 0, "run %zu: %s", index, run.err);
        s_output_add (outputs, &run);
    }
    //  add printed the public key and the path of the secret
    s_run_t run = s_run ("add", "--region", region, "--id", "lt-hengelo",
                         "--role", "local_team", "--name", "Wijkteam Hengelo",
                         "--address", "GM0164", NULL);
    cr_assert_eq (run.status, 0, "%s", run.err);
    char *public_key = s_cert_value ("partners/lt-hengelo", "curve/public-key");
    char *secret_path = kp_region_secret_path (region, "lt-hengelo");
    cr_expect_not_null (strstr (run.out, public_key));
    cr_expect_not_null (strstr (run.out, secret_path));
    free (secret_path);
    free (public_key);
    s_output_add (outputs, &run);

    //  Every secret there is, before revoke deletes some
    s_secrets_add (secrets);
    cr_assert_geq (zlistx_size (secrets), 10);
    run = s_run ("revoke", "--region", region, "--id", "lt-enschede", NULL);
    cr_expect_eq (run.status, 0, "%s", run.err);
    cr_expect_not (s_exists ("secrets/lt-enschede_secret"));
    s_output_add (outputs, &run);
    run = s_run ("show", "--region", region, "--id", "lt-enschede", NULL);
    cr_expect_eq (run.status, 0, "%s", run.err);
    cr_expect_not_null (strstr (run.out, "revoked"));
    s_output_add (outputs, &run);
    run = s_run ("list", "--region", region, NULL);
    s_output_add (outputs, &run);

    for (const char *output = (const char *) zlistx_first (outputs); output;
         output = (const char *) zlistx_next (outputs))
        for (const char *secret = (const char *) zlistx_first (secrets); secret;
             secret = (const char *) zlistx_next (secrets))
            cr_expect_null (strstr (output, secret), "a secret key was printed");
    zlistx_destroy (&secrets);
    zlistx_destroy (&outputs);
}

Test (kp_region, kp_keys_list_shows_active_and_revoked)
{
    const char *region = s_region;
    s_run_t run = s_run ("init", "--region", region, NULL);
    cr_assert_eq (run.status, 0, "%s", run.err);
    s_run_free (&run);
    cr_assert_eq (kp_region_init (s_region, "again"), -1);
    s_add ("police-oost", KP__WIRE__ROLE__POLICE, NULL, false);
    s_add ("school-12ab00", KP__WIRE__ROLE__SCHOOL, "12AB00", true);
    s_add ("lt-enschede", KP__WIRE__ROLE__LOCAL_TEAM, "GM0153", false);
    cr_assert_eq (kp_region_revoke (s_region, "police-oost"), 0);

    run = s_run ("list", "--region", region, NULL);
    cr_assert_eq (run.status, 0, "%s", run.err);
    cr_expect_not_null (strstr (run.out, "ID"));
    char *key = s_cert_value ("partners/school-12ab00", "curve/public-key");
    char *prefix = strndup (key, 8);
    cr_expect_not_null (strstr (run.out, prefix), "no key prefix");
    cr_expect_null (strstr (run.out, key), "the table shows only the prefix");
    size_t lines = 0;
    for (const char *cursor = run.out; *cursor; cursor++)
        lines += *cursor == '\n';
    cr_expect_eq (lines, 4);
    cr_expect_not_null (strstr (run.out, "revoked"));
    s_run_free (&run);

    run = s_run ("list", "--region", region, "--json", NULL);
    cr_assert_eq (run.status, 0, "%s", run.err);
    const char *expected [] = {
        "{\"id\":\"lt-enschede\",\"status\":\"active\",\"role\":\"local_team\","
        "\"name\":\"Demo\",\"addresses\":[\"GM0153\"],\"covenant\":false,",
        "{\"id\":\"police-oost\",\"status\":\"revoked\",\"role\":\"police\","
        "\"name\":\"Demo\",\"addresses\":[],\"covenant\":false,",
        "{\"id\":\"school-12ab00\",\"status\":\"active\",\"role\":\"school\","
        "\"name\":\"Demo\",\"addresses\":[\"12AB00\"],\"covenant\":true,",
    };
    char *line = run.out;
    for (size_t index = 0; index < 3; index++) {
        char *end = strchr (line, '\n');
        cr_assert_not_null (end, "line %zu missing", index);
        *end = 0;
        cr_expect_eq (strncmp (line, expected [index], strlen (expected [index])), 0,
                      "line %zu: %s", index, line);
        cr_expect_eq (end [-1], '}');
        line = end + 1;
    }
    cr_expect_str_empty (line);
    cr_expect_str_empty (run.err);
    s_run_free (&run);
    free (prefix);
    free (key);
}

//  --------------------------------------------------------------------------
//  The registration key and the partners' vouched keys

//  The packed Registration in cert (partners/ID or revoked/ID), decoded
static Kp__Wire__Registration *
s_registration (const char *relative)
{
    char *text = s_cert_value (relative, "metadata/registration");
    cr_assert_not_null (text, "%s has no registration", relative);
    size_t text_size = strlen (text);
    uint8_t *data = malloc (text_size);
    size_t size = 0;
    cr_assert_eq (sodium_base642bin (data, text_size, text, text_size, NULL, &size,
                                     NULL, sodium_base64_VARIANT_ORIGINAL), 0);
    Kp__Wire__Registration *registration = kp__wire__registration__unpack (NULL, size,
                                                                           data);
    cr_assert_not_null (registration);
    free (data);
    free (text);
    return registration;
}

//  The region's registration public key
static void
s_registration_key (uint8_t *key)
{
    char *path = s_path ("registration.pub");
    char *text = s_slurp (path);
    cr_assert_not_null (text);
    cr_assert_eq (strlen (text), 65);
    text [64] = 0;
    cr_assert_eq (kp_hex_decode (text, key, 32), 0);
    free (text);
    free (path);
}

Test (kp_region, init_makes_the_registration_key)
{
    cr_assert_eq (kp_region_init (s_region, "ketenpost-twente"), 0);
    cr_expect_eq (s_mode ("registration.pub"), 0644);
    cr_expect_eq (s_mode ("registration_secret"), 0600);
    uint8_t public_key [32];
    s_registration_key (public_key);
    char *path = s_path ("registration_secret");
    char *text = s_slurp (path);
    cr_assert_eq (strlen (text), 129);
    text [128] = 0;
    uint8_t secret_key [64];
    cr_assert_eq (kp_hex_decode (text, secret_key, 64), 0);
    uint8_t derived [32];
    crypto_sign_ed25519_sk_to_pk (derived, secret_key);
    cr_expect_eq (memcmp (derived, public_key, 32), 0);
    //  Not the checkpoint key
    char *checkpoint_path = s_path ("checkpoint.pub");
    char *checkpoint = s_slurp (checkpoint_path);
    char *registration_path = s_path ("registration.pub");
    char *registration = s_slurp (registration_path);
    cr_expect_str_neq (checkpoint, registration);
    free (registration);
    free (registration_path);
    free (checkpoint);
    free (checkpoint_path);
    free (text);
    free (path);
}

Test (kp_region, add_vouches_for_the_partner_keys)
{
    cr_assert_eq (kp_region_init (s_region, "ketenpost-twente"), 0);
    const char *addresses [] = { "GM0153", "GM0164", NULL };
    cr_assert_eq (kp_region_add (s_region, "vt-twente", KP__WIRE__ROLE__VEILIG_THUIS,
                                 "VT", addresses, false, NULL), 0);
    uint8_t region_key [32];
    s_registration_key (region_key);
    Kp__Wire__Registration *registration = s_registration ("partners/vt-twente");
    cr_expect_eq (crypto_sign_verify_detached (registration->signature.data,
                                               registration->statement.data,
                                               registration->statement.len,
                                               region_key), 0);
    Kp__Wire__RegistrationStatement *statement =
        kp__wire__registration_statement__unpack (NULL, registration->statement.len,
                                                  registration->statement.data);
    cr_assert_not_null (statement);
    cr_expect_str_eq (statement->region, "ketenpost-twente");
    cr_expect_str_eq (statement->partner, "vt-twente");
    cr_expect_eq (statement->role, KP__WIRE__ROLE__VEILIG_THUIS);
    cr_assert_eq (statement->n_addresses, 2);
    cr_expect_str_eq (statement->addresses [1], "GM0164");
    cr_expect_gt (statement->registered_at_ms, 0);
    //  The curve key is the cert's; the secrets in the secret cert belong
    //  to the vouched public keys
    char *curve_text = s_cert_value ("partners/vt-twente", "curve/public-key");
    uint8_t curve [32];
    cr_assert_not_null (zmq_z85_decode (curve, curve_text));
    cr_expect_eq (memcmp (curve, statement->curve_key.data, 32), 0);
    char *sign_hex = s_cert_value ("secrets/vt-twente_secret", "metadata/sign-secret");
    char *seal_hex = s_cert_value ("secrets/vt-twente_secret", "metadata/seal-secret");
    cr_assert_not_null (sign_hex);
    cr_assert_not_null (seal_hex);
    uint8_t sign_secret [64], seal_secret [32], derived [32];
    cr_assert_eq (kp_hex_decode (sign_hex, sign_secret, 64), 0);
    cr_assert_eq (kp_hex_decode (seal_hex, seal_secret, 32), 0);
    crypto_sign_ed25519_sk_to_pk (derived, sign_secret);
    cr_expect_eq (memcmp (derived, statement->sign_key.data, 32), 0);
    crypto_scalarmult_base (derived, seal_secret);
    cr_expect_eq (memcmp (derived, statement->seal_key.data, 32), 0);
    //  ... and never in the public cert
    char *public_path = s_path ("partners/vt-twente");
    char *public_text = s_slurp (public_path);
    cr_expect_null (strstr (public_text, "secret"), "%s", public_text);
    cr_expect_null (strstr (public_text, sign_hex));
    cr_expect_null (strstr (public_text, seal_hex));
    //  Revocation keeps the registration
    cr_assert_eq (kp_region_revoke (s_region, "vt-twente"), 0);
    Kp__Wire__Registration *kept = s_registration ("revoked/vt-twente");
    cr_expect_eq (kept->statement.len, registration->statement.len);
    kp__wire__registration__free_unpacked (kept, NULL);
    free (public_text);
    free (public_path);
    free (seal_hex);
    free (sign_hex);
    free (curve_text);
    kp__wire__registration_statement__free_unpacked (statement, NULL);
    kp__wire__registration__free_unpacked (registration, NULL);
}

Test (kp_region, add_with_own_keys_registers_them)
{
    cr_assert_eq (kp_region_init (s_region, "r"), 0);
    char *curve = s_fresh_key ();
    uint8_t sign_public [32], sign_secret [64], seal_public [32], seal_secret [32];
    crypto_sign_keypair (sign_public, sign_secret);
    crypto_box_keypair (seal_public, seal_secret);
    char *sign_hex = kp_hex_encode (sign_public, 32);
    char *seal_hex = kp_hex_encode (seal_public, 32);
    const char *addresses [] = { "GM0153", NULL };
    //  All three or none
    cr_expect_eq (kp_region_add_keys (s_region, "lt-own", KP__WIRE__ROLE__LOCAL_TEAM, "L",
                                      addresses, false, curve, sign_hex, NULL), -1);
    cr_expect_eq (kp_region_add_keys (s_region, "lt-own", KP__WIRE__ROLE__LOCAL_TEAM, "L",
                                      addresses, false, NULL, sign_hex, seal_hex), -1);
    cr_expect_eq (kp_region_add_keys (s_region, "lt-own", KP__WIRE__ROLE__LOCAL_TEAM, "L",
                                      addresses, false, curve, "abc", seal_hex), -1);
    cr_assert_eq (kp_region_add_keys (s_region, "lt-own", KP__WIRE__ROLE__LOCAL_TEAM, "L",
                                      addresses, false, curve, sign_hex, seal_hex), 0);
    cr_expect_not (s_exists ("secrets/lt-own_secret"));
    Kp__Wire__Registration *registration = s_registration ("partners/lt-own");
    Kp__Wire__RegistrationStatement *statement =
        kp__wire__registration_statement__unpack (NULL, registration->statement.len,
                                                  registration->statement.data);
    cr_expect_eq (memcmp (statement->sign_key.data, sign_public, 32), 0);
    cr_expect_eq (memcmp (statement->seal_key.data, seal_public, 32), 0);
    kp__wire__registration_statement__free_unpacked (statement, NULL);
    kp__wire__registration__free_unpacked (registration, NULL);

    //  The tool: region-key, add with the three keys, show; never a secret
    s_run_t run = s_run ("region-key", "--region", s_region, NULL);
    cr_expect_eq (run.status, 0, "%s", run.err);
    char *pub_path = s_path ("registration.pub");
    char *pub_text = s_slurp (pub_path);
    pub_text [64] = 0;
    cr_expect_not_null (strstr (run.out, pub_text), "%s", run.out);
    s_run_free (&run);
    run = s_run ("add", "--region", s_region, "--id", "lt-half", "--role", "local_team",
                 "--name", "H", "--address", "GM0164", "--sign-key", sign_hex, NULL);
    cr_expect_eq (run.status, 2, "%s", run.err);
    s_run_free (&run);
    run = s_run ("add", "--region", s_region, "--id", "lt-gen", "--role", "local_team",
                 "--name", "G", "--address", "GM0164", NULL);
    cr_expect_eq (run.status, 0, "%s", run.err);
    cr_expect_not_null (strstr (run.out, "sign-key: "), "%s", run.out);
    cr_expect_not_null (strstr (run.out, "seal-key: "), "%s", run.out);
    s_run_free (&run);
    run = s_run ("show", "--region", s_region, "--id", "lt-gen", NULL);
    cr_expect_eq (run.status, 0, "%s", run.err);
    cr_expect_not_null (strstr (run.out, "registration-key: "), "%s", run.out);
    char *sign_secret_hex = s_cert_value ("secrets/lt-gen_secret", "metadata/sign-secret");
    cr_expect_null (strstr (run.out, sign_secret_hex + 20), "show printed a secret");
    free (sign_secret_hex);
    s_run_free (&run);
    free (pub_text);
    free (pub_path);
    free (seal_hex);
    free (sign_hex);
    free (curve);
}
