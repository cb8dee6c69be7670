/*  =========================================================================
    test_kp_config - ZPL config: defaults, every key, refusals, overrides

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
    Each test writes its config into a fresh temporary directory and reads
    the broker's error line back from a log stream of its own, so a refusal
    is checked for its wording and its "kp_config: FILE: PATH:" prefix.
*/
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <criterion/theories.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kp_config.h"

//  The keys without defaults, as the smallest file that passes the check
#define MINIMAL \
    "security\n    mechanism = curve\n    region = /srv/region\n" \
    "bind\n    endpoint = tcp://127.0.0.1:7700\n" \
    "log\n    dir = /srv/data\n"

//  --------------------------------------------------------------------------
//  Per-test state: a temp dir and a log stream. Each test runs in its own
//  process, so these statics are never shared.

static char *s_dir;                 //  temporary directory
static char *s_path;                //  s_dir/ketenpostd.cfg
static FILE *s_log;                 //  zsys log lines land here

//  --------------------------------------------------------------------------
//  Make a temp dir and a private log stream before each test

static void
s_setup (void)
{
    char *pattern = zsys_sprintf ("%s/kp_config_XXXXXX", P_tmpdir);
    cr_assert_not_null (pattern);
    cr_assert_not_null (mkdtemp (pattern));
    s_dir = pattern;
    s_path = zsys_sprintf ("%s/ketenpostd.cfg", s_dir);
    s_log = tmpfile ();
    cr_assert_not_null (s_log);
    zsys_set_logstream (s_log);
}

//  --------------------------------------------------------------------------
//  Restore logging and remove the temp dir after each test

static void
s_teardown (void)
{
    zsys_set_logstream (stderr);
    fclose (s_log);
    unlink (s_path);
    rmdir (s_dir);
    zstr_free (&s_path);
    zstr_free (&s_dir);
}

TestSuite (kp_config, .init = s_setup, .fini = s_teardown);

//  --------------------------------------------------------------------------
//  Write text as the config file
static void
s_write (const char *text)
{
    FILE *file = fopen (s_path, "w");
    cr_assert_not_null (file);
    cr_assert_eq (fputs (text, file) >= 0, true);
    cr_assert_eq (fclose (file), 0);
}

//  --------------------------------------------------------------------------
//  Everything logged so far; caller frees
static char *
s_logged (void)
{
    fflush (s_log);
    long size = ftell (s_log);
    cr_assert_geq (size, 0);
    char *text = (char *) calloc (1, (size_t) size + 1);
    cr_assert_not_null (text);
    rewind (s_log);
    cr_assert_eq (fread (text, 1, (size_t) size, s_log), (size_t) size);
    return text;
}

//  --------------------------------------------------------------------------
//  Load text as a config file
static kp_config_t *
s_load (const char *text)
{
    s_write (text);
    return kp_config_load (s_path);
}

//  ==========================================================================
//  Defaults and parsing
//  ==========================================================================

Test (kp_config, new_holds_every_default)
{
    kp_config_t *config = kp_config_new ();
    cr_assert_not_null (config);
    cr_assert_str_eq (config->name, "ketenpostd");
    cr_assert_eq (config->verbose, 0);
    cr_assert_eq (config->logsystem, 0);
    cr_assert_eq (config->heartbeat, 5000);
    cr_assert_eq (config->handshake, 10000);
    cr_assert_null (config->region);
    cr_assert_null (config->server_cert);
    cr_assert_null (config->endpoint);
    cr_assert_null (config->data_dir);
    cr_assert_eq (config->segment_size, 67108864);
    cr_assert_eq (config->load_truncated, 1);
    cr_assert_eq (config->max_message, 1048576);
    cr_assert_eq (config->max_body [0], 0);
    cr_assert_eq (config->max_body [KP__WIRE__MESSAGE_TYPE__SIGNAL], 65536);
    cr_assert_eq (config->max_body [KP__WIRE__MESSAGE_TYPE__REFERRAL], 65536);
    cr_assert_eq (config->max_body [KP__WIRE__MESSAGE_TYPE__SCHOOL_NOTIFICATION], 4096);
    cr_assert_eq (config->max_body [KP__WIRE__MESSAGE_TYPE__FEEDBACK], 16384);
    cr_assert_eq (config->max_sessions, 10000);
    cr_assert_eq (config->credit, 1000);
    cr_assert_eq (config->ack_timeout, 30000);
    cr_assert_eq (config->default_ttl, 604800000LL);
    cr_assert_eq (config->school_route, KP__WIRE__ROLE__LEERPLICHT);

    //  Defaults alone do not make a broker: the check names what is missing
    cr_assert_eq (kp_config_check (config), -1);
    char *logged = s_logged ();
    cr_assert (strstr (logged, "kp_config: security/region: not set"), "%s", logged);
    free (logged);
    kp_config_destroy (&config);
    cr_assert_null (config);
    kp_config_destroy (&config);        //  idempotent
}

Test (kp_config, minimal_file_gets_defaults_and_a_derived_server_cert)
{
    kp_config_t *config = s_load (MINIMAL);
    cr_assert_not_null (config);
    cr_assert_str_eq (config->region, "/srv/region");
    cr_assert_str_eq (config->endpoint, "tcp://127.0.0.1:7700");
    cr_assert_str_eq (config->data_dir, "/srv/data");
    cr_assert_eq (config->heartbeat, 5000);
    cr_assert_null (config->server_cert);
    cr_assert_eq (kp_config_check (config), 0);
    cr_assert_str_eq (config->server_cert, "/srv/region/broker");
    cr_assert_eq (kp_config_check (config), 0);
    cr_assert_str_eq (config->server_cert, "/srv/region/broker");
    kp_config_destroy (&config);
}

Test (kp_config, every_key_is_parsed)
{
    kp_config_t *config = s_load (
        "#   every key, none at its default\n"
        "server\n"
        "    name = broker-7            #   trailing comment\n"
        "    verbose = 1\n"
        "    logsystem = 1\n"
        "    heartbeat = 700\n"
        "    handshake = 800\n"
        "security\n"
        "    mechanism = curve\n"
        "    region = \"/srv/my region\"\n"
        "    server-cert = /srv/certs/broker\n"
        "bind\n"
        "    endpoint = ipc:///run/ketenpost.sock\n"
        "log\n"
        "    dir = /srv/data\n"
        "    segment-size = 4096\n"
        "    load-truncated = 0\n"
        "limits\n"
        "    max-message = 67108864\n"
        "    max-signal = 1001\n"
        "    max-referral = 1002\n"
        "    max-school-notification = 1003\n"
        "    max-feedback = 1004\n"
        "    max-sessions = 3\n"
        "delivery\n"
        "    credit = 4\n"
        "    ack-timeout = 86400000\n"
        "    default-ttl = 31622400000\n"
        "policy\n"
        "    school-route = veilig_thuis\n");
    cr_assert_not_null (config);
    cr_assert_str_eq (config->name, "broker-7");
    cr_assert_eq (config->verbose, 1);
    cr_assert_eq (config->logsystem, 1);
    cr_assert_eq (config->heartbeat, 700);
    cr_assert_eq (config->handshake, 800);
    cr_assert_str_eq (config->region, "/srv/my region");
    cr_assert_str_eq (config->server_cert, "/srv/certs/broker");
    cr_assert_str_eq (config->endpoint, "ipc:///run/ketenpost.sock");
    cr_assert_str_eq (config->data_dir, "/srv/data");
    cr_assert_eq (config->segment_size, 4096);
    cr_assert_eq (config->load_truncated, 0);
    cr_assert_eq (config->max_message, 67108864);
    cr_assert_eq (config->max_body [KP__WIRE__MESSAGE_TYPE__SIGNAL], 1001);
    cr_assert_eq (config->max_body [KP__WIRE__MESSAGE_TYPE__REFERRAL], 1002);
    cr_assert_eq (config->max_body [KP__WIRE__MESSAGE_TYPE__SCHOOL_NOTIFICATION], 1003);
    cr_assert_eq (config->max_body [KP__WIRE__MESSAGE_TYPE__FEEDBACK], 1004);
    cr_assert_eq (config->max_sessions, 3);
    cr_assert_eq (config->credit, 4);
    cr_assert_eq (config->ack_timeout, 86400000);
    cr_assert_eq (config->default_ttl, 31622400000LL);
    cr_assert_eq (config->school_route, KP__WIRE__ROLE__VEILIG_THUIS);
    //  An explicit server-cert is kept
    cr_assert_eq (kp_config_check (config), 0);
    cr_assert_str_eq (config->server_cert, "/srv/certs/broker");
    kp_config_destroy (&config);
}

Test (kp_config, audit_open_types_lists_the_types_auditors_may_open)
{
    kp_config_t *config = kp_config_new ();
    for (int type = 0; type < 5; type++)
        cr_assert_not (config->audit_open [type], "off by default");
    cr_assert_eq (kp_config_set (config, "audit/open-types", "signal, referral"), 0);
    cr_assert (config->audit_open [KP__WIRE__MESSAGE_TYPE__SIGNAL]);
    cr_assert (config->audit_open [KP__WIRE__MESSAGE_TYPE__REFERRAL]);
    cr_assert_not (config->audit_open [KP__WIRE__MESSAGE_TYPE__SCHOOL_NOTIFICATION]);
    cr_assert_eq (kp_config_set (config, "audit/open-types", "referral,bogus"), -1);
    cr_assert (config->audit_open [KP__WIRE__MESSAGE_TYPE__SIGNAL], "unchanged after an error");
    cr_assert_eq (kp_config_set (config, "audit/open-types", ""), 0);
    cr_assert_not (config->audit_open [KP__WIRE__MESSAGE_TYPE__SIGNAL]);
    kp_config_destroy (&config);
}

Test (kp_config, order_of_sections_does_not_matter)
{
    kp_config_t *config = s_load (
        "log\n    dir = /srv/data\n"
        "limits\n    max-sessions = 5\n"
        "bind\n    endpoint = tcp://*:7700\n"
        "security\n    region = /srv/region\n    mechanism = curve\n"
        "limits\n    max-message = 8192\n");
    cr_assert_not_null (config);
    cr_assert_eq (config->max_sessions, 5);
    cr_assert_eq (config->max_message, 8192);
    cr_assert_eq (kp_config_check (config), 0);
    kp_config_destroy (&config);
}

Test (kp_config, body_limit_over_frame_limit_warns)
{
    kp_config_t *config = s_load (MINIMAL "limits\n    max-message = 8192\n");
    cr_assert_not_null (config);
    cr_assert_eq (kp_config_check (config), 0);
    char *logged = s_logged ();
    cr_assert (strstr (logged, "limits/max-signal=65536 exceeds limits/max-message=8192"),
               "%s", logged);
    cr_assert_null (strstr (logged, "max-school-notification"), "%s", logged);
    free (logged);
    kp_config_destroy (&config);
}

//  ==========================================================================
//  Refusals: each bad file gives NULL (or a failed check) and one line
//  ==========================================================================

typedef struct {
    const char *text;               //  the config file
    const char *error;              //  what the error line must hold
    bool at_check;                  //  refused by kp_config_check, not load
} refusal_t;

static refusal_t refusals [] = {
    { MINIMAL "server\n    colour = blue\n", "server/colour: unknown key", false },
    { MINIMAL "servers\n    name = x\n", "servers: unknown section", false },
    { MINIMAL "verbose = 1\n", "verbose: unknown section", false },
    { MINIMAL "server = main\n    name = x\n", "server: a section holds keys", false },
    { MINIMAL "server\n    name\n        first = x\n", "server/name: a key holds a value",
      false },
    { MINIMAL "server\n    heartbeat = 5s\n",
      "server/heartbeat: \"5s\" is not a whole number",
      false },
    { MINIMAL "server\n    heartbeat = five\n", "\"five\" is not a whole number", false },
    { MINIMAL "server\n    heartbeat = \n",
      "server/heartbeat: \"\" is not a whole number",
      false },
    { MINIMAL "server\n    heartbeat = 1e3\n", "\"1e3\" is not a whole number", false },
    { MINIMAL "server\n    heartbeat = +500\n", "\"+500\" is not a whole number", false },
    { MINIMAL "server\n    heartbeat = 0x100\n", "\"0x100\" is not a whole number",
      false },
    { MINIMAL "server\n    heartbeat = -\n", "\"-\" is not a whole number", false },
    { MINIMAL "server\n    heartbeat = 99\n",
      "server/heartbeat: 99 is out of range 100..600000",
      false },
    { MINIMAL "server\n    handshake = 600001\n",
      "server/handshake: 600001 is out of range",
      false },
    { MINIMAL "log\n    segment-size = 4095\n", "log/segment-size: 4095 is out of range",
      false },
    { MINIMAL "limits\n    max-message = 4095\n",
      "limits/max-message: 4095 is out of range 4096..67108864", false },
    { MINIMAL "limits\n    max-message = 67108865\n",
      "limits/max-message: 67108865 is out",
      false },
    { MINIMAL "limits\n    max-signal = 99999999999999999999\n",
      "limits/max-signal: 99999999999999999999 is out of range", false },
    { MINIMAL "limits\n    max-sessions = -1\n",
      "limits/max-sessions: -1 is out of range",
      false },
    { MINIMAL "delivery\n    credit = 0\n", "delivery/credit: 0 is out of range", false },
    { MINIMAL "audit\n    open-types = \"signal,letter\"\n",
      "audit/open-types: \"letter\" is not a message type", false },
    { MINIMAL "delivery\n    default-ttl = 9223372036854775807\n",
      "delivery/default-ttl: 9223372036854775807 is out of range", false },
    { MINIMAL "server\n    verbose = yes\n", "server/verbose: \"yes\" must be 0 or 1",
      false },
    { MINIMAL "log\n    load-truncated = 2\n", "log/load-truncated: \"2\" must be 0 or 1",
      false },
    { MINIMAL "server\n    name = \"\"\n", "server/name: must not be empty", false },
    { MINIMAL "server\n    heartbeat = 500\n    heartbeat = 600\n",
      "server/heartbeat: given twice", false },
    { MINIMAL "policy\n    school-route = school\n",
      "policy/school-route: \"school\" must be leerplicht or veilig_thuis", false },
    { MINIMAL "policy\n    school-route = police\n", "must be leerplicht or veilig_thuis",
      false },
    { "security\n    mechanism = plain\n    region = /srv/region\n"
      "bind\n    endpoint = tcp://127.0.0.1:7700\nlog\n    dir = /srv/data\n",
      "security/mechanism: \"plain\" is not accepted", false },
    { "security\n    mechanism = CURVE\n    region = /srv/region\n"
      "bind\n    endpoint = tcp://127.0.0.1:7700\nlog\n    dir = /srv/data\n",
      "security/mechanism: \"CURVE\" is not accepted", false },
    { "security\n    region = /srv/region\n"
      "bind\n    endpoint = tcp://127.0.0.1:7700\nlog\n    dir = /srv/data\n",
      "security/mechanism: missing", false },
    { "bind\n    endpoint = tcp://127.0.0.1:7700\nlog\n    dir = /srv/data\n",
      "security/mechanism: missing", false },
    { "", "security/mechanism: missing", false },
    { "security\n    mechanism = curve\n"
      "bind\n    endpoint = tcp://127.0.0.1:7700\nlog\n    dir = /srv/data\n",
      "security/region: not set", true },
    { "security\n    mechanism = curve\n    region = /srv/region\n"
      "log\n    dir = /srv/data\n", "bind/endpoint: not set", true },
    { "security\n    mechanism = curve\n    region = /srv/region\n"
      "bind\n    endpoint = tcp://127.0.0.1:7700\n", "log/dir: not set", true },
    { "security\n    mechanism = curve\n    region = /srv/region\n"
      "bind\n    endpoint = udp://127.0.0.1:7700\nlog\n    dir = /srv/data\n",
      "bind/endpoint: \"udp://127.0.0.1:7700\" must be tcp://HOST:PORT or ipc://PATH",
      false },
    { "security\n    mechanism = curve\n    region = /srv/region\n"
      "bind\n    endpoint = tcp://\nlog\n    dir = /srv/data\n",
      "bind/endpoint: \"tcp://\" must be", false },
    { "security\n    mechanism = curve\n    region = /srv/region\n"
      "bind\n    endpoint = 127.0.0.1:7700\nlog\n    dir = /srv/data\n",
      "bind/endpoint: \"127.0.0.1:7700\" must be", false },
    { "server\n   name = x\n" MINIMAL, "not valid ZPL", false },
};

//  --------------------------------------------------------------------------
//  Criterion runs each parameterized test in a fresh process of its own, so
//  parameters must not hold pointers into this one: pass table indices
static void
s_free_indices (struct criterion_test_params *params)
{
    cr_free (params->params);
}

ParameterizedTestParameters (kp_config, bad_config_is_refused)
{
    size_t count = sizeof refusals / sizeof refusals [0];
    size_t *indices = (size_t *) cr_malloc (count * sizeof (size_t));
    cr_assert_not_null (indices);
    for (size_t index = 0; index < count; index++)
        indices [index] = index;
    return cr_make_param_array (size_t, indices, count, s_free_indices);
}

ParameterizedTest (size_t *index, kp_config, bad_config_is_refused)
{
    const refusal_t *example = &refusals [*index];
    kp_config_t *config = s_load (example->text);
    if (example->at_check) {
        cr_assert_not_null (config, "load refused: %s", example->text);
        cr_assert_eq (kp_config_check (config), -1);
        kp_config_destroy (&config);
    }
    else
        cr_assert_null (config, "accepted: %s", example->text);

    char *logged = s_logged ();
    cr_assert (strstr (logged, example->error), "log \"%s\" lacks \"%s\"",
               logged, example->error);
    if (!example->at_check) {
        //  Load errors name the file
        char *prefix = zsys_sprintf ("kp_config: %s: ", s_path);
        cr_assert (strstr (logged, prefix), "log \"%s\" lacks \"%s\"", logged, prefix);
        zstr_free (&prefix);
    }
    //  One line of ours (zconfig adds its own for a syntax error)
    size_t lines = 0;
    for (const char *cursor = logged; (cursor = strstr (cursor, "kp_config: ")); cursor++)
        lines++;
    cr_assert_eq (lines, 1, "%s", logged);
    free (logged);
}

Test (kp_config, missing_file_is_named_with_the_reason)
{
    char *missing = zsys_sprintf ("%s/nowhere.cfg", s_dir);
    cr_assert_null (kp_config_load (missing));
    char *logged = s_logged ();
    char *expected = zsys_sprintf ("kp_config: %s: cannot read: "
                                   "No such file or directory", missing);
    cr_assert (strstr (logged, expected), "%s", logged);
    zstr_free (&expected);
    zstr_free (&missing);
    free (logged);
}

Test (kp_config, directories_and_binary_files_are_refused)
{
    cr_assert_null (kp_config_load (s_dir));
    FILE *file = fopen (s_path, "w");
    cr_assert_not_null (file);
    size_t size = sizeof (MINIMAL) + 1;     //  the text, a NUL, an 'x'
    cr_assert_eq (fwrite (MINIMAL "\0x", 1, size, file), size);
    cr_assert_eq (fclose (file), 0);
    cr_assert_null (kp_config_load (s_path));
    char *logged = s_logged ();
    char *directory = zsys_sprintf ("kp_config: %s: cannot read: Is a directory", s_dir);
    cr_assert (strstr (logged, directory), "%s", logged);
    cr_assert (strstr (logged, "not a text file (it holds a NUL byte)"), "%s", logged);
    zstr_free (&directory);
    free (logged);
}

Test (kp_config, large_files_are_read_whole)
{
    //  Far past the first read buffer, the last key still counts
    char *padding = (char *) malloc (100001);
    cr_assert_not_null (padding);
    memset (padding, '#', 100000);
    padding [100000] = 0;
    char *text = zsys_sprintf ("%s\n" MINIMAL "limits\n    max-sessions = 77\n", padding);
    kp_config_t *config = s_load (text);
    cr_assert_not_null (config);
    cr_assert_eq (config->max_sessions, 77);
    kp_config_destroy (&config);
    zstr_free (&text);
    free (padding);
}

//  ==========================================================================
//  Overrides
//  ==========================================================================

Test (kp_config, set_overrides_with_the_same_checks)
{
    kp_config_t *config = s_load (MINIMAL);
    cr_assert_not_null (config);
    cr_assert_eq (kp_config_set (config, "bind/endpoint", "tcp://*:7800"), 0);
    cr_assert_str_eq (config->endpoint, "tcp://*:7800");
    cr_assert_eq (kp_config_set (config, "log/dir", "/srv/other"), 0);
    cr_assert_str_eq (config->data_dir, "/srv/other");
    cr_assert_eq (kp_config_set (config, "delivery/credit", "32"), 0);
    cr_assert_eq (config->credit, 32);
    cr_assert_eq (kp_config_set (config, "policy/school-route", "VEILIG_THUIS"), 0);
    cr_assert_eq (config->school_route, KP__WIRE__ROLE__VEILIG_THUIS);
    cr_assert_eq (kp_config_set (config, "security/mechanism", "curve"), 0);

    //  A refused value leaves the field as it was
    cr_assert_eq (kp_config_set (config, "bind/endpoint", "udp://x"), -1);
    cr_assert_str_eq (config->endpoint, "tcp://*:7800");
    cr_assert_eq (kp_config_set (config, "delivery/credit", "lots"), -1);
    cr_assert_eq (config->credit, 32);
    cr_assert_eq (kp_config_set (config, "security/mechanism", "null"), -1);
    cr_assert_eq (kp_config_set (config, "bind/port", "7700"), -1);
    char *logged = s_logged ();
    cr_assert (strstr (logged, "kp_config: bind/endpoint: \"udp://x\" must be"), "%s",
               logged);
    cr_assert (strstr (logged, "kp_config: bind/port: unknown key"), "%s", logged);
    free (logged);

    //  A region given by flag moves the derived server cert with it
    cr_assert_eq (kp_config_set (config, "security/region", "/srv/flag-region"), 0);
    cr_assert_eq (kp_config_check (config), 0);
    cr_assert_str_eq (config->server_cert, "/srv/flag-region/broker");
    kp_config_destroy (&config);
}

Test (kp_config, flags_can_supply_what_the_file_lacks)
{
    kp_config_t *config = s_load ("security\n    mechanism = curve\n");
    cr_assert_not_null (config);
    cr_assert_eq (kp_config_check (config), -1);
    cr_assert_eq (kp_config_set (config, "security/region", "/srv/region"), 0);
    cr_assert_eq (kp_config_set (config, "bind/endpoint", "ipc:///tmp/kp.sock"), 0);
    cr_assert_eq (kp_config_set (config, "log/dir", "/srv/data"), 0);
    cr_assert_eq (kp_config_check (config), 0);
    kp_config_destroy (&config);
}

//  Boundaries of a ranged key, through the flag path
TheoryDataPoints (kp_config, heartbeat_range) = {
    DataPoints (long long, -1, 0, 99, 100, 101, 5000, 599999, 600000, 600001,
                2147483648LL, 9223372036854775807LL),
};

Theory ((long long value), kp_config, heartbeat_range)
{
    kp_config_t *config = kp_config_new ();
    char *text = zsys_sprintf ("%lld", value);
    int rc = kp_config_set (config, "server/heartbeat", text);
    if (value >= 100 && value <= 600000) {
        cr_assert_eq (rc, 0, "%lld refused", value);
        cr_assert_eq (config->heartbeat, value);
    }
    else {
        cr_assert_eq (rc, -1, "%lld accepted", value);
        cr_assert_eq (config->heartbeat, 5000);
    }
    zstr_free (&text);
    kp_config_destroy (&config);
}

//  ==========================================================================
//  The shipped sample
//  ==========================================================================

//  --------------------------------------------------------------------------
//  The source tree, from this file's path (CMake compiles with absolute
//  paths); caller frees. NULL if __FILE__ is relative.
static char *
s_source_dir (void)
{
    const char *suffix = "tests/test_kp_config.c";
    size_t size = strlen (__FILE__);
    if (__FILE__ [0] != '/' || size < strlen (suffix)
    ||  strcmp (__FILE__ + size - strlen (suffix), suffix))
        return NULL;
    return strndup (__FILE__, size - strlen (suffix));
}

Test (kp_config, sample_config_loads_and_shows_the_defaults)
{
    char *source = s_source_dir ();
    if (!source)
        cr_skip_test ("source dir unknown: __FILE__ is %s", __FILE__);
    char *sample = zsys_sprintf ("%sbroker/ketenpostd.cfg", source);
    kp_config_t *config = kp_config_load (sample);
    cr_assert_not_null (config, "sample refused: see the log");
    cr_assert_eq (kp_config_check (config), 0);
    cr_assert_str_eq (config->endpoint, "tcp://127.0.0.1:7700");
    cr_assert_str_eq (config->server_cert, "/etc/ketenpost/region/broker");

    //  Every value in the sample is the default
    kp_config_t *defaults = kp_config_new ();
    cr_assert_str_eq (config->name, defaults->name);
    cr_assert_eq (config->verbose, defaults->verbose);
    cr_assert_eq (config->logsystem, defaults->logsystem);
    cr_assert_eq (config->heartbeat, defaults->heartbeat);
    cr_assert_eq (config->handshake, defaults->handshake);
    cr_assert_eq (config->segment_size, defaults->segment_size);
    cr_assert_eq (config->load_truncated, defaults->load_truncated);
    cr_assert_eq (config->max_message, defaults->max_message);
    cr_assert_arr_eq (config->max_body, defaults->max_body, sizeof defaults->max_body);
    cr_assert_eq (config->max_sessions, defaults->max_sessions);
    cr_assert_eq (config->credit, defaults->credit);
    cr_assert_eq (config->ack_timeout, defaults->ack_timeout);
    cr_assert_eq (config->default_ttl, defaults->default_ttl);
    cr_assert_eq (config->school_route, defaults->school_route);
    kp_config_destroy (&defaults);
    kp_config_destroy (&config);
    zstr_free (&sample);
    free (source);
}

Test (kp_config, sample_keys_are_documented)
{
    char *source = s_source_dir ();
    if (!source)
        cr_skip_test ("source dir unknown: __FILE__ is %s", __FILE__);
    char *sample = zsys_sprintf ("%sbroker/ketenpostd.cfg", source);
    char *docs_path = zsys_sprintf ("%sdocs/CONFIG.md", source);
    zconfig_t *root = zconfig_load (sample);
    cr_assert_not_null (root);
    zfile_t *docs_file = zfile_new (NULL, docs_path);
    cr_assert_not_null (docs_file, "%s missing", docs_path);
    cr_assert_eq (zfile_input (docs_file), 0);
    zchunk_t *chunk = zfile_read (docs_file, zfile_cursize (docs_file), 0);
    cr_assert_not_null (chunk);
    char *docs = zchunk_strdup (chunk);
    size_t keys = 0;
    for (zconfig_t *section = zconfig_child (root); section;
         section = zconfig_next (section))
        for (zconfig_t *key = zconfig_child (section); key; key = zconfig_next (key)) {
            char *path = zsys_sprintf ("`%s/%s`", zconfig_name (section),
                                       zconfig_name (key));
            cr_expect (strstr (docs, path), "%s is not in docs/CONFIG.md", path);
            zstr_free (&path);
            keys++;
        }
    cr_assert_geq (keys, 20);
    cr_expect (strstr (docs, "`security/server-cert`"));
    zstr_free (&docs);
    zchunk_destroy (&chunk);
    zfile_destroy (&docs_file);
    zconfig_destroy (&root);
    zstr_free (&docs_path);
    zstr_free (&sample);
    free (source);
}
