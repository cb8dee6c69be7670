/*  =========================================================================
    test_kp_registry - the partner registry: load, lookups, revoke, reload

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
    Each test makes a region with fresh keys in its own mkdtemp directory
    and removes it at the end. No sleeps: staleness is shown by undoing the
    directory timestamps, not by waiting for the clock.
*/
#include "kp_region.h"
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <ftw.h>
#include <sys/stat.h>

static char *s_dir;                 //  this test's temp dir
static char *s_region;              //  s_dir/region

//  A partner of the demo region
typedef struct {
    const char *id;                 //  partner id
    Kp__Wire__Role role;            //  its role
    const char *addresses [4];      //  NULL-terminated
    bool covenant;                  //  covenant member
} s_demo_t;

static const s_demo_t s_demo [] = {
    { "vt-twente", KP__WIRE__ROLE__VEILIG_THUIS, { "GM0153", "GM0164", "GM0141" },
      false },
    { "police-oost", KP__WIRE__ROLE__POLICE, { NULL }, false },
    { "lt-enschede", KP__WIRE__ROLE__LOCAL_TEAM, { "GM0153" }, false },
    { "lt-hengelo", KP__WIRE__ROLE__LOCAL_TEAM, { "GM0164" }, false },
    { "lp-enschede", KP__WIRE__ROLE__LEERPLICHT, { "GM0153" }, false },
    { "school-12ab00", KP__WIRE__ROLE__SCHOOL, { "12AB00" }, true },
    { "auditor-fg", KP__WIRE__ROLE__AUDITOR, { NULL }, false },
};
#define S_DEMO_COUNT (sizeof s_demo / sizeof s_demo [0])

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
    s_dir = strdup ("/tmp/kp-test-registry-XXXXXX");
    cr_assert_not_null (mkdtemp (s_dir));
    s_region = zsys_sprintf ("%s/region", s_dir);
    cr_assert_eq (kp_region_init (s_region, "test-broker"), 0);
    for (size_t index = 0; index < S_DEMO_COUNT; index++)
        cr_assert_eq (kp_region_add (s_region, s_demo [index].id, s_demo [index].role,
                                     "Demo organisatie 's-Hertogenbosch",
                                     (const char **) s_demo [index].addresses,
                                     s_demo [index].covenant,
                                     NULL), 0, "cannot add %s", s_demo [index].id);
}

static void
s_teardown (void)
{
    nftw (s_dir, s_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    zstr_free (&s_region);
    zstr_free (&s_dir);
}

TestSuite (kp_registry, .timeout = 30.);

//  The public key in a cert file; caller frees
static char *
s_cert_key (const char *path)
{
    zconfig_t *root = zconfig_load (path);
    cr_assert_not_null (root, "cannot load %s", path);
    char *key = strdup (zconfig_get (root, "curve/public-key", ""));
    zconfig_destroy (&root);
    return key;
}

static char *
s_partner_key (const char *id)
{
    char *path = zsys_sprintf ("%s/partners/%s", s_region, id);
    char *key = s_cert_key (path);
    free (path);
    return key;
}

//  Write text to region/subdir/name
static void
s_file_put (const char *subdir, const char *name, const char *text)
{
    char *path = zsys_sprintf ("%s/%s/%s", s_region, subdir, name);
    FILE *file = fopen (path, "w");
    cr_assert_not_null (file, "cannot write %s", path);
    fputs (text, file);
    fclose (file);
    free (path);
}

//  A fresh public key, Z85; caller frees
static char *
s_fresh_key (void)
{
    zcert_t *cert = zcert_new ();
    char *key = strdup (zcert_public_txt (cert));
    zcert_destroy (&cert);
    return key;
}

Test (kp_registry, loads_every_partner_in_id_order, .init = s_setup, .fini = s_teardown)
{
    kp_registry_t *registry = kp_registry_new (s_region);
    cr_assert_not_null (registry);
    cr_assert_eq (kp_registry_size (registry), S_DEMO_COUNT);
    const char *previous = "";
    size_t count = 0;
    for (const kp_partner_t *partner = kp_registry_first (registry); partner;
         partner = kp_registry_next (registry)) {
        cr_expect_gt (strcmp (partner->id, previous), 0, "%s after %s", partner->id,
                      previous);
        cr_expect_eq (strlen (partner->public_key), KP_KEY_TEXT);
        cr_expect_str_eq (partner->name, "Demo organisatie 's-Hertogenbosch");
        cr_expect_eq (partner->addresses [partner->address_count], NULL);
        cr_expect_eq (strlen (partner->created), 20);
        previous = partner->id;
        count++;
    }
    cr_assert_eq (count, S_DEMO_COUNT);
    cr_assert_null (kp_registry_next (registry));
    kp_registry_destroy (&registry);
    cr_assert_null (registry);
    kp_registry_destroy (&registry);
}

Test (kp_registry, partner_fields_match_what_was_added,
      .init = s_setup, .fini = s_teardown)
{
    kp_registry_t *registry = kp_registry_new (s_region);
    const kp_partner_t *partner = kp_registry_by_id (registry, "vt-twente");
    cr_assert_not_null (partner);
    cr_expect_eq (partner->role, KP__WIRE__ROLE__VEILIG_THUIS);
    cr_assert_eq (partner->address_count, 3);
    cr_expect_str_eq (partner->addresses [0], "GM0153");
    cr_expect_str_eq (partner->addresses [2], "GM0141");
    cr_expect_not (partner->covenant);
    partner = kp_registry_by_id (registry, "school-12ab00");
    cr_assert_not_null (partner);
    cr_expect_eq (partner->role, KP__WIRE__ROLE__SCHOOL);
    cr_expect (partner->covenant);
    partner = kp_registry_by_id (registry, "police-oost");
    cr_assert_not_null (partner);
    cr_expect_eq (partner->address_count, 0);
    kp_registry_destroy (&registry);
}

Test (kp_registry, by_key_finds_the_partner_of_a_key, .init = s_setup, .fini = s_teardown)
{
    kp_registry_t *registry = kp_registry_new (s_region);
    for (size_t index = 0; index < S_DEMO_COUNT; index++) {
        char *key = s_partner_key (s_demo [index].id);
        const kp_partner_t *partner = kp_registry_by_key (registry, key);
        cr_assert_not_null (partner, "%s not found by key", s_demo [index].id);
        cr_expect_str_eq (partner->id, s_demo [index].id);
        free (key);
    }
    char *stranger = s_fresh_key ();
    cr_expect_null (kp_registry_by_key (registry, stranger));
    free (stranger);
    cr_expect_null (kp_registry_by_key (registry, ""));
    cr_expect_null (kp_registry_by_key (registry, "too-short"));
    char *key = s_partner_key ("lt-enschede");
    char *longer = zsys_sprintf ("%sX", key);
    cr_expect_null (kp_registry_by_key (registry, longer));
    free (longer);
    free (key);
    kp_registry_destroy (&registry);
}

Test (kp_registry, by_id_finds_only_registered_ids, .init = s_setup, .fini = s_teardown)
{
    kp_registry_t *registry = kp_registry_new (s_region);
    cr_expect_not_null (kp_registry_by_id (registry, "lt-hengelo"));
    cr_expect_not_null (kp_registry_by_id (registry, "auditor-fg"));
    cr_expect_null (kp_registry_by_id (registry, "lt-almelo"));
    cr_expect_null (kp_registry_by_id (registry, ""));
    cr_expect_null (kp_registry_by_id (registry, "LT-HENGELO"));
    kp_registry_destroy (&registry);
}

Test (kp_registry, serving_resolves_role_and_address, .init = s_setup, .fini = s_teardown)
{
    const char *first_team [] = { "GM0153", NULL };
    cr_assert_eq (kp_region_add (s_region, "lt-aaa", KP__WIRE__ROLE__LOCAL_TEAM, "A",
                                 first_team, false, NULL), 0);
    kp_registry_t *registry = kp_registry_new (s_region);
    const kp_partner_t *partner =
        kp_registry_serving (registry, KP__WIRE__ROLE__VEILIG_THUIS, "GM0141");
    cr_assert_not_null (partner);
    cr_expect_str_eq (partner->id, "vt-twente");
    partner = kp_registry_serving (registry, KP__WIRE__ROLE__LOCAL_TEAM, "GM0164");
    cr_assert_not_null (partner);
    cr_expect_str_eq (partner->id, "lt-hengelo");
    //  Two local teams serve GM0153: the first by id
    partner = kp_registry_serving (registry, KP__WIRE__ROLE__LOCAL_TEAM, "GM0153");
    cr_assert_not_null (partner);
    cr_expect_str_eq (partner->id, "lt-aaa");
    partner = kp_registry_serving (registry, KP__WIRE__ROLE__SCHOOL, "12AB00");
    cr_assert_not_null (partner);
    cr_expect_str_eq (partner->id, "school-12ab00");
    cr_expect_null (kp_registry_serving (registry, KP__WIRE__ROLE__LEERPLICHT, "GM0164"));
    cr_expect_null (kp_registry_serving (registry, KP__WIRE__ROLE__LOCAL_TEAM, "GM9999"));
    cr_expect_null (kp_registry_serving (registry, KP__WIRE__ROLE__SCHOOL, "GM0153"));
    kp_registry_destroy (&registry);
}

Test (kp_registry, revoked_partner_is_not_found, .init = s_setup, .fini = s_teardown)
{
    char *key = s_partner_key ("lt-enschede");
    cr_assert_eq (kp_region_revoke (s_region, "lt-enschede"), 0);
    kp_registry_t *registry = kp_registry_new (s_region);
    cr_assert_not_null (registry);
    cr_expect_eq (kp_registry_size (registry), S_DEMO_COUNT - 1);
    cr_expect_null (kp_registry_by_id (registry, "lt-enschede"));
    cr_expect_null (kp_registry_by_key (registry, key));
    cr_expect_null (kp_registry_serving (registry, KP__WIRE__ROLE__LOCAL_TEAM, "GM0153"));
    free (key);
    kp_registry_destroy (&registry);
}

Test (kp_registry, interrupted_revoke_counts_as_revoked,
      .init = s_setup, .fini = s_teardown)
{
    //  A crash after revoked/ID was written and before partners/ID went
    char *active = zsys_sprintf ("%s/partners/lp-enschede", s_region);
    char *revoked = zsys_sprintf ("%s/revoked/lp-enschede", s_region);
    cr_assert_eq (link (active, revoked), 0);
    kp_registry_t *registry = kp_registry_new (s_region);
    cr_assert_not_null (registry);
    cr_expect_null (kp_registry_by_id (registry, "lp-enschede"));
    cr_expect_eq (kp_registry_size (registry), S_DEMO_COUNT - 1);
    kp_registry_destroy (&registry);
    free (revoked);
    free (active);
}

Test (kp_registry, ignores_dotfiles_and_secret_files, .init = s_setup, .fini = s_teardown)
{
    s_file_put ("partners", ".lt-almelo.tmp-abc123", "half a cert \x01\n");
    s_file_put ("partners", "lt-almelo_secret", "not for here\n");
    kp_registry_t *registry = kp_registry_new (s_region);
    cr_assert_not_null (registry);
    cr_expect_eq (kp_registry_size (registry), S_DEMO_COUNT);
    kp_registry_destroy (&registry);
}

Test (kp_registry, missing_partners_dir_fails, .init = s_setup, .fini = s_teardown)
{
    char *missing = zsys_sprintf ("%s/nowhere", s_dir);
    cr_expect_null (kp_registry_new (missing));
    free (missing);
}

Test (kp_registry, subdirectory_in_partners_fails, .init = s_setup, .fini = s_teardown)
{
    char *subdir = zsys_sprintf ("%s/partners/old", s_region);
    cr_assert_eq (mkdir (subdir, 0755), 0);
    cr_expect_null (kp_registry_new (s_region));
    free (subdir);
}

Test (kp_registry, stale_right_after_a_revoke, .init = s_setup, .fini = s_teardown)
{
    kp_registry_t *registry = kp_registry_new (s_region);
    cr_assert_not (kp_registry_stale (registry));
    cr_assert_eq (kp_region_revoke (s_region, "police-oost"), 0);
    cr_expect (kp_registry_stale (registry));
    kp_registry_destroy (&registry);
}

Test (kp_registry, stale_even_when_dir_times_are_unchanged,
      .init = s_setup, .fini = s_teardown)
{
    //  A revoke within the same clock tick as the load: set the directory
    //  times back to what they were, so only the entries tell
    char *partners = zsys_sprintf ("%s/partners", s_region);
    char *revoked = zsys_sprintf ("%s/revoked", s_region);
    struct stat partners_status, revoked_status;
    cr_assert_eq (stat (partners, &partners_status), 0);
    cr_assert_eq (stat (revoked, &revoked_status), 0);
    kp_registry_t *registry = kp_registry_new (s_region);
    cr_assert_eq (kp_region_revoke (s_region, "lt-hengelo"), 0);
    struct timespec partners_times [2] = {
        partners_status.st_atim, partners_status.st_mtim
    };
    struct timespec revoked_times [2] = {
        revoked_status.st_atim, revoked_status.st_mtim
    };
    cr_assert_eq (utimensat (AT_FDCWD, partners, partners_times, 0), 0);
    cr_assert_eq (utimensat (AT_FDCWD, revoked, revoked_times, 0), 0);
    cr_expect (kp_registry_stale (registry));
    kp_registry_destroy (&registry);
    free (revoked);
    free (partners);
}

Test (kp_registry, stale_after_a_cert_is_edited_in_place,
      .init = s_setup, .fini = s_teardown)
{
    kp_registry_t *registry = kp_registry_new (s_region);
    char *path = zsys_sprintf ("%s/partners/police-oost", s_region);
    FILE *file = fopen (path, "a");
    cr_assert_not_null (file);
    fputs ("#   a comment\n", file);
    fclose (file);
    cr_expect (kp_registry_stale (registry));
    bool changed = true;
    cr_expect_eq (kp_registry_reload (registry, &changed), 0);
    cr_expect_not (changed, "a comment changes no partner");
    cr_expect_not (kp_registry_stale (registry));
    kp_registry_destroy (&registry);
    free (path);
}

Test (kp_registry, reload_reports_whether_the_set_changed,
      .init = s_setup, .fini = s_teardown)
{
    kp_registry_t *registry = kp_registry_new (s_region);
    bool changed = true;
    cr_assert_eq (kp_registry_reload (registry, &changed), 0);
    cr_expect_not (changed);
    cr_assert_eq (kp_region_revoke (s_region, "lt-enschede"), 0);
    cr_assert_eq (kp_registry_reload (registry, &changed), 0);
    cr_expect (changed);
    cr_expect_null (kp_registry_by_id (registry, "lt-enschede"));
    cr_expect_not (kp_registry_stale (registry));
    cr_assert_eq (kp_registry_reload (registry, &changed), 0);
    cr_expect_not (changed);
    const char *addresses [] = { "GM0147", NULL };
    cr_assert_eq (kp_region_add (s_region, "lt-borne", KP__WIRE__ROLE__LOCAL_TEAM,
                                 "Borne", addresses, false, NULL), 0);
    cr_expect (kp_registry_stale (registry));
    cr_assert_eq (kp_registry_reload (registry, NULL), 0);
    const kp_partner_t *partner = kp_registry_by_id (registry, "lt-borne");
    cr_assert_not_null (partner);
    cr_expect_eq (kp_registry_serving (registry, KP__WIRE__ROLE__LOCAL_TEAM, "GM0147"),
                  partner);
    kp_registry_destroy (&registry);
}

Test (kp_registry, failed_reload_keeps_old_set_but_drops_revoked,
      .init = s_setup, .fini = s_teardown)
{
    kp_registry_t *registry = kp_registry_new (s_region);
    s_file_put ("partners", "broken", "metadata\n    partner = \"broken\"\n");
    cr_assert_eq (kp_region_revoke (s_region, "police-oost"), 0);
    bool changed = false;
    cr_expect_eq (kp_registry_reload (registry, &changed), -1);
    cr_expect (changed);
    cr_expect_null (kp_registry_by_id (registry, "police-oost"));
    cr_expect_not_null (kp_registry_by_id (registry, "vt-twente"));
    cr_expect_eq (kp_registry_size (registry), S_DEMO_COUNT - 1);
    //  The broken cert is reported once per change, not on every check
    cr_expect_not (kp_registry_stale (registry));
    kp_registry_destroy (&registry);
}

//  A malformed partner cert: file name and content; KEY in the content
//  becomes a fresh public key, DUPKEY vt-twente's. Criterion copies the
//  parameters into each test's process but not what pointers point to (the
//  worker's address space differs), so the strings are inline.
typedef struct {
    char label [32];                //  what is wrong
    char file [16];                 //  name in partners/
    char content [400];             //  the cert text
} s_malformed_t;

#define S_META(partner, role, addresses, covenant) \
    "metadata\n    partner = \"" partner "\"\n    role = \"" role "\"\n" \
    "    name = \"Demo\"\n    addresses = \"" addresses "\"\n" \
    "    covenant = \"" covenant "\"\n    created = \"2026-01-01T00:00:00Z\"\n"
#define S_CURVE "curve\n    public-key = \"KEY\"\n"

ParameterizedTestParameters (kp_registry, malformed_cert_fails_closed)
{
    static s_malformed_t cases [] = {
        { "not ZPL", "lt-x", "\x01\x02 {{{\n" },
        { "empty file", "lt-x", "" },
        { "no key", "lt-x", S_META ("lt-x", "local_team", "GM0153", "0") },
        { "short key", "lt-x", S_META ("lt-x", "local_team", "GM0153", "0")
          "curve\n    public-key = \"abc\"\n" },
        { "bad Z85 key", "lt-x", S_META ("lt-x", "local_team", "GM0153", "0")
          "curve\n    public-key = \"~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~~\"\n" },
        { "secret key inside", "lt-x", S_META ("lt-x", "local_team", "GM0153", "0")
          S_CURVE "    secret-key = \"KEY\"\n" },
        { "no metadata", "lt-x", S_CURVE },
        { "no role", "lt-x", "metadata\n    partner = \"lt-x\"\n    name = \"D\"\n"
          "    addresses = \"GM0153\"\n    covenant = \"0\"\n    created = \"x\"\n"
          S_CURVE },
        { "unknown role", "lt-x", S_META ("lt-x", "cop", "GM0153", "0") S_CURVE },
        { "upper-case role", "lt-x", S_META ("lt-x", "LOCAL_TEAM", "GM0153", "0")
          S_CURVE },
        { "partner not file name", "lt-x", S_META ("lt-y", "local_team", "GM0153", "0")
          S_CURVE },
        { "bad file name", "LT_X", S_META ("LT_X", "local_team", "GM0153", "0") S_CURVE },
        { "bad address", "lt-x", S_META ("lt-x", "local_team", "GM15", "0") S_CURVE },
        { "empty address", "lt-x", S_META ("lt-x", "local_team", "GM0153,,GM0164", "0")
          S_CURVE },
        { "address twice", "lt-x", S_META ("lt-x", "local_team", "GM0153,GM0153", "0")
          S_CURVE },
        { "team without address", "lt-x", S_META ("lt-x", "local_team", "", "0")
          S_CURVE },
        { "team with school code", "lt-x", S_META ("lt-x", "local_team", "12AB00", "0")
          S_CURVE },
        { "school with two codes", "sc-x", S_META ("sc-x", "school", "12AB00,34CD00", "1")
          S_CURVE },
        { "school with municipality", "sc-x", S_META ("sc-x", "school", "GM0153", "1")
          S_CURVE },
        { "auditor with address", "au-x", S_META ("au-x", "auditor", "GM0153", "0")
          S_CURVE },
        { "covenant for police", "po-x", S_META ("po-x", "police", "", "1") S_CURVE },
        { "covenant not 0 or 1", "sc-x", S_META ("sc-x", "school", "12AB00", "yes")
          S_CURVE },
        { "duplicate key", "lt-x", S_META ("lt-x", "local_team", "GM0153", "0")
          "curve\n    public-key = \"DUPKEY\"\n" },
    };
    return cr_make_param_array (s_malformed_t, cases, sizeof cases / sizeof cases [0]);
}

//  text with every "from" replaced by to; caller frees
static char *
s_replace (const char *text, const char *from, const char *to)
{
    char *result = strdup (text);
    char *found;
    while ((found = strstr (result, from))) {
        *found = 0;
        char *next = zsys_sprintf ("%s%s%s", result, to, found + strlen (from));
        free (result);
        result = next;
    }
    return result;
}

ParameterizedTest (s_malformed_t *param, kp_registry, malformed_cert_fails_closed,
                   .init = s_setup, .fini = s_teardown)
{
    char *duplicate = s_partner_key ("vt-twente");
    char *fresh = s_fresh_key ();
    char *with_duplicate = s_replace (param->content, "DUPKEY", duplicate);
    char *content = s_replace (with_duplicate, "KEY", fresh);
    s_file_put ("partners", param->file, content);
    cr_expect_null (kp_registry_new (s_region), "loaded despite: %s", param->label);
    free (content);
    free (with_duplicate);
    free (fresh);
    free (duplicate);
}

Test (kp_registry, well_formed_handmade_cert_loads, .init = s_setup, .fini = s_teardown)
{
    //  The same template as the malformed cases, with nothing wrong
    char *fresh = s_fresh_key ();
    char *content = s_replace (S_META ("lt-x", "local_team", "GM0153,GM0164", "0")
                               S_CURVE, "KEY", fresh);
    s_file_put ("partners", "lt-x", content);
    kp_registry_t *registry = kp_registry_new (s_region);
    cr_assert_not_null (registry);
    const kp_partner_t *partner = kp_registry_by_key (registry, fresh);
    cr_assert_not_null (partner);
    cr_expect_str_eq (partner->id, "lt-x");
    cr_expect_eq (partner->address_count, 2);
    kp_registry_destroy (&registry);
    free (content);
    free (fresh);
}

//  An address and whether it is valid
typedef struct {
    char address [16];              //  the text (inline: see s_malformed_t)
    bool valid;                     //  expected answer
} s_address_case_t;

ParameterizedTestParameters (kp_registry, address_syntax)
{
    static s_address_case_t cases [] = {
        { "GM0153", true }, { "GM0000", true }, { "GM1894", true },
        { "12AB00", true }, { "34CD00", true }, { "99ZZ99", true },
        { "", false }, { "GM", false }, { "GM015", false }, { "GM01534", false },
        { "gm0153", false }, { "Gm0153", false }, { "GM0A53", false },
        { "GM 153", false },
        { "12ab00", false }, { "1AB000", false }, { "AB1200", false }, { "12AB0", false },
        { "12AB000", false }, { "12A100", false }, { "12AB00 ", false },
    };
    return cr_make_param_array (s_address_case_t, cases, sizeof cases / sizeof cases [0]);
}

ParameterizedTest (s_address_case_t *param, kp_registry, address_syntax)
{
    cr_expect_eq (kp_address_valid (param->address), param->valid, "[%s]",
                  param->address);
}

Test (kp_registry, null_self_is_a_programming_error, .signal = SIGABRT)
{
    kp_registry_size (NULL);
}
