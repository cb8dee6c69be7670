/*  =========================================================================
    test_kp_tools - kp-send and kp-inbox, run as programs against ketenpostd

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
    Every flow of the demo, exit codes 0/1/2 with one line on stderr, the
    three kp-inbox sinks, and exactly-once handling across a kill -9 of the
    broker. The programs come from the build tree (kp_test_program). All
    persons are fictitious; no BSN appears anywhere.
*/
#include "kp_testutil.h"
#include <criterion/criterion.h>
#include <sodium.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define S_SIGNAL_BODY \
    "{\"kind\":\"MELDING\",\"violence_types\":[\"PARTNER_VIOLENCE\"]," \
    "\"urgency\":\"ACUTE\",\"municipality\":\"GM0153\",\"persons\":[{\"role\":" \
    "\"VICTIM\",\"name\":\"Fictief Persoon\",\"date_of_birth\":\"1990-01-01\"}]," \
    "\"children_present\":1,\"narrative\":\"Fictieve testmelding.\"}"
#define S_REFERRAL_BODY \
    "{\"case_id\":\"VT-2026-0001\",\"safety_assessment\":\"SAFETY_STRUCTURAL\"," \
    "\"monitoring\":{\"who\":\"lt-enschede\",\"until\":\"2026-12-31\"}}"
#define S_REQUEST_BODY \
    "{\"child_name\":\"Fictief Kind\",\"date_of_birth\":\"2015-03-04\"," \
    "\"school_day\":\"2030-11-25\",\"lookup_hint\":\"7511 AA\"}"
#define S_NOTIFICATION_BODY \
    "{\"child_name\":\"Fictief Kind\",\"date_of_birth\":\"2015-03-04\"," \
    "\"school_day\":\"2030-11-25\"}"
#define S_RUN_TIMEOUT 20000         //  msec any one program run may take

static kp_test_region_t *s_region;
static pid_t s_background;          //  a program started by s_spawn, or 0

//  --------------------------------------------------------------------------
//  One broker for the suite
static void
s_region_start (void)
{
    s_region = kp_test_region_new ();
    cr_assert_eq (kp_test_broker_start (s_region, NULL), 0, "broker did not start");
}

//  --------------------------------------------------------------------------
//  Stop the broker and remove the region

static void
s_region_stop (void)
{
    //  A failed assertion may leave a background program running
    if (s_background > 0) {
        kill (s_background, SIGKILL);
        waitpid (s_background, NULL, 0);
        s_background = 0;
    }
    kp_test_region_destroy (&s_region);
}

TestSuite (kp_tools, .init = s_region_start, .fini = s_region_stop, .timeout = 60.);

//  --------------------------------------------------------------------------
//  Helpers

//  --------------------------------------------------------------------------
//  The shared flags for partner id (or for a cert path if id has a '/')
static char *
s_flags (const char *id)
{
    char *cert = strchr (id, '/')? strdup (id): kp_test_cert (s_region, id);
    char *flags = zsys_sprintf ("--broker '%s' --broker-cert '%s' --cert '%s' "
                                "--region-key '%s'", s_region->endpoint,
                                s_region->broker_cert, cert, s_region->region_key);
    free (cert);
    return flags;
}

//  --------------------------------------------------------------------------
//  Run program (relative to the build tree) as id with args
static int
s_run (const char *program, const char *id, const char *args, char **out_p, char **err_p)
{
    char *path = kp_test_program (program);
    char *flags = id? s_flags (id): strdup ("");
    char *command = zsys_sprintf ("'%s' %s %s", path, flags, args);
    int rc = kp_test_run (command, S_RUN_TIMEOUT, out_p, err_p);
    free (command);
    free (flags);
    free (path);
    return rc;
}

//  --------------------------------------------------------------------------
//  Number of lines in text
static int
s_lines (const char *text)
{
    int count = 0;
    for (; text && *text; text++)
        count += *text == '\n';
    return count;
}

//  --------------------------------------------------------------------------
//  Assert stderr is exactly one line from program, containing what
static void
s_expect_one_line (const char *err, const char *program, const char *what)
{
    cr_expect_eq (s_lines (err), 1, "want one line on stderr, got: %s", err);
    cr_expect_eq (strncmp (err, program, strlen (program)), 0, "%s", err);
    if (what)
        cr_expect_not_null (strstr (err, what), "want '%s' in: %s", what, err);
}

//  --------------------------------------------------------------------------
//  The string value of "name" in a one-line JSON object; caller frees
static char *
s_field (const char *json, const char *name)
{
    char *key = zsys_sprintf ("\"%s\":\"", name);
    const char *start = json? strstr (json, key): NULL;
    char *value = NULL;
    if (start) {
        start += strlen (key);
        const char *end = strchr (start, '"');
        if (end)
            value = strndup (start, (size_t) (end - start));
    }
    free (key);
    return value;
}

//  --------------------------------------------------------------------------
//  kp-send as id; asserts acceptance and returns the message id
static char *
s_send_ok (const char *id, const char *type, const char *to, const char *body,
           const char *extra, const char *partner)
{
    char *args = zsys_sprintf ("--type %s --to %s --body '%s' %s", type, to, body,
                               extra? extra: "");
    char *out = NULL, *err = NULL;
    int rc = s_run ("clients/kp-send", id, args, &out, &err);
    cr_assert_eq (rc, 0, "kp-send %s %s: exit %d: %s", type, to, rc, err);
    cr_expect_str_empty (err);
    cr_expect_eq (s_lines (out), 1, "%s", out);
    char *expected = zsys_sprintf ("\"recipient_partner\":\"%s\"", partner);
    cr_expect_not_null (strstr (out, expected), "%s", out);
    cr_expect_not_null (strstr (out, "\"duplicate\":false}"), "%s", out);
    cr_expect_not_null (strstr (out, "\"accepted_at\":\"20"), "%s", out);
    free (expected);
    char *message_id = s_field (out, "id");
    cr_assert_not_null (message_id, "%s", out);
    cr_expect_eq (strlen (message_id), 32);
    free (args);
    free (out);
    free (err);
    return message_id;
}

//  --------------------------------------------------------------------------
//  Read a whole file; NULL if missing. Caller frees.
static char *
s_slurp (const char *path)
{
    FILE *file = fopen (path, "r");
    if (!file)
        return NULL;
    char *text = NULL;
    size_t size = 0;
    FILE *stream = open_memstream (&text, &size);
    char buffer [4096];
    size_t count;
    while ((count = fread (buffer, 1, sizeof buffer, file)) > 0)
        fwrite (buffer, 1, count, stream);
    fclose (stream);
    fclose (file);
    return text;
}

//  --------------------------------------------------------------------------
//  Number of entries in dir (without . and ..)
static int
s_dir_entries (const char *dir)
{
    zdir_t *listing = zdir_new (dir, NULL);
    if (!listing)
        return 0;
    int count = (int) zdir_count (listing);
    zdir_destroy (&listing);
    return count;
}

//  --------------------------------------------------------------------------
//  Start a program in the background (the shell execs it, so the pid is
//  the program's); stdout and stderr to files. The suite's .fini kills it
//  if the test fails before reaping it.
static pid_t
s_spawn (const char *command, const char *out_path, const char *err_path)
{
    char *line = zsys_sprintf ("exec %s", command);
    pid_t pid = fork ();
    cr_assert (pid >= 0);
    if (pid == 0) {
        int out_fd = open (out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int err_fd = open (err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2 (out_fd, STDOUT_FILENO);
        dup2 (err_fd, STDERR_FILENO);
        execl ("/bin/sh", "sh", "-c", line, (char *) NULL);
        _exit (127);
    }
    free (line);
    s_background = pid;
    return pid;
}

//  --------------------------------------------------------------------------
//  Wait for pid with a deadline; its exit code, or -1 (killed) on timeout
static int
s_reap (pid_t pid, int timeout_ms)
{
    int64_t deadline = kp_mono_ms () + timeout_ms;
    int status = 0;
    while (waitpid (pid, &status, WNOHANG) == 0) {
        if (kp_mono_ms () >= deadline) {
            kill (pid, SIGKILL);
            waitpid (pid, &status, 0);
            if (pid == s_background)
                s_background = 0;
            return -1;
        }
        poll (NULL, 0, 20);         //  yield between checks
    }
    if (pid == s_background)
        s_background = 0;
    return WIFEXITED (status)? WEXITSTATUS (status): -1;
}

//  --------------------------------------------------------------------------
//  Wait until path has at least lines lines; false on timeout
static bool
s_wait_lines (const char *path, int lines, int timeout_ms)
{
    int64_t deadline = kp_mono_ms () + timeout_ms;
    while (kp_mono_ms () < deadline) {
        char *text = s_slurp (path);
        int count = s_lines (text);
        free (text);
        if (count >= lines)
            return true;
        poll (NULL, 0, 20);         //  yield between checks
    }
    return false;
}

//  --------------------------------------------------------------------------
//  Restart the broker with extra config
static void
s_broker_restart (int sig, const char *extra)
{
    kp_test_broker_stop (s_region, sig);
    cr_assert_eq (kp_test_broker_start (s_region, extra), 0, "broker did not restart");
}

//  --------------------------------------------------------------------------
//  Usage errors: exit 2, one line on stderr, nothing on stdout

typedef struct {
    const char *program;
    bool flags;                     //  prepend valid --broker/--cert flags
    const char *args;
} s_usage_case_t;

static const s_usage_case_t s_usage_cases [] = {
    { "clients/kp-send", false, "" },
    { "clients/kp-send", true, "--type signal --body '{}'" },
    { "clients/kp-send", true, "--type letter --to partner:vt-twente --body '{}'" },
    { "clients/kp-send", true,
      "--type signal --to municipality:GM0153 --body '{}' --id zz" },
    { "clients/kp-send", true,
      "--type signal --to municipality:GM0153 --body '{}' --subject 0123" },
    { "clients/kp-send", true,
      "--type signal --to municipality:GM0153 --body '{}' --ttl 1h" },
    { "clients/kp-send", true,
      "--type signal --to municipality:GM0153 --body '{}' --body-file /dev/null" },
    { "clients/kp-send", true, "--type signal --to municipality:GM0153 --frobnicate" },
    { "clients/kp-send", true,
      "--type signal --to municipality:GM0153 --body '{}' extra" },
    { "clients/kp-inbox", false, "--broker tcp://127.0.0.1:1" },
    { "clients/kp-inbox", true, "--out /tmp --exec true" },
    { "clients/kp-inbox", true, "--count 0" },
    { "clients/kp-inbox", true, "--idle-exit soon" },
    { "clients/kp-inbox", true, "--credit" },
    { "clients/kp-send", false, "--broker tcp://127.0.0.1:1 --broker-cert b --cert c "
      "--type signal --to municipality:GM0153 --body '{}'" },
    { "clients/kp-inbox", false, "--broker tcp://127.0.0.1:1 --broker-cert b --cert c" },
};

Test (kp_tools, usage_errors_exit_2_with_one_line)
{
    for (size_t index = 0; index < sizeof s_usage_cases / sizeof s_usage_cases [0];
         index++) {
        const s_usage_case_t *test_case = s_usage_cases + index;
        char *out = NULL, *err = NULL;
        int rc = s_run (test_case->program, test_case->flags? "police-oost": NULL,
                        test_case->args, &out, &err);
        cr_expect_eq (rc, 2, "%s %s: exit %d", test_case->program, test_case->args, rc);
        cr_expect_str_empty (out, "%s", test_case->args);
        s_expect_one_line (err, strstr (test_case->program, "kp-send")? "kp-send: "
                                                                    : "kp-inbox: ", NULL);
        free (out);
        free (err);
    }
    char *out = NULL;
    cr_expect_eq (s_run ("clients/kp-send", NULL, "--help", &out, NULL), 0);
    cr_expect_not_null (strstr (out, "usage: kp-send"));
    free (out);
}

//  --------------------------------------------------------------------------
//  The demo flows

Test (kp_tools, signal_then_feedback_to_the_police)
{
    char *signal_id = s_send_ok ("police-oost", "signal", "municipality:GM0153",
                                 S_SIGNAL_BODY, "--purpose WMO-2.6 --user agent-0815",
                                 "vt-twente");
    char *out = NULL, *err = NULL;
    int rc = s_run ("clients/kp-inbox", "vt-twente", "--count 1", &out, &err);
    cr_assert_eq (rc, 0, "%s", err);
    cr_expect_str_empty (err);
    cr_expect_eq (s_lines (out), 1, "%s", out);
    char *field = s_field (out, "id");
    cr_expect_str_eq (field, signal_id);
    free (field);
    cr_expect_not_null (strstr (out, "\"type\":\"signal\""), "%s", out);
    cr_expect_not_null (strstr (out, "\"sender\":\"police-oost\""), "%s", out);
    cr_expect_not_null (strstr (out, "\"sender_role\":\"police\""), "%s", out);
    cr_expect_not_null (strstr (out, "\"purpose\":\"WMO-2.6\""), "%s", out);
    cr_expect_not_null (strstr (out, "\"acting_user\":\"agent-0815\""), "%s", out);
    cr_expect_not_null (strstr (out, "\"narrative\":\"Fictieve testmelding.\""),
                        "%s", out);
    free (out);
    free (err);

    char *extra = zsys_sprintf ("--reference %s", signal_id);
    char *feedback_id = s_send_ok ("vt-twente", "feedback", "partner:police-oost",
                                   "{\"status\":\"FOLLOW_UP_STARTED\"}", extra,
                                   "police-oost");
    free (extra);
    rc = s_run ("clients/kp-inbox", "police-oost", "--count 2", &out, &err);
    cr_assert_eq (rc, 0, "%s", err);
    cr_expect_eq (s_lines (out), 2, "%s", out);
    char *status = zsys_sprintf ("{\"status\":\"DELIVERED\",\"id\":\"%s\"", signal_id);
    cr_expect_not_null (strstr (out, status), "%s", out);
    char *reference = zsys_sprintf ("\"reference\":\"%s\"", signal_id);
    cr_expect_not_null (strstr (out, reference), "%s", out);
    cr_expect_not_null (strstr (out, "\"status\":\"FOLLOW_UP_STARTED\""), "%s", out);
    free (reference);
    free (status);
    free (out);
    free (err);
    free (feedback_id);
    free (signal_id);
}

Test (kp_tools, referral_then_accept_to_veilig_thuis)
{
    char *referral_id = s_send_ok ("vt-twente", "referral", "municipality:GM0153",
                                   S_REFERRAL_BODY, NULL, "lt-enschede");
    char *out = NULL, *err = NULL;
    int rc = s_run ("clients/kp-inbox", "lt-enschede", "--count 1", &out, &err);
    cr_assert_eq (rc, 0, "%s", err);
    cr_expect_not_null (strstr (out, "\"type\":\"referral\""), "%s", out);
    cr_expect_not_null (strstr (out, "\"case_id\":\"VT-2026-0001\""), "%s", out);
    cr_expect_not_null (strstr (out, "\"recipient_role\":\"local_team\""), "%s", out);
    free (out);
    free (err);

    char *extra = zsys_sprintf ("--reference %s", referral_id);
    char *accept_id = s_send_ok ("lt-enschede", "feedback", "partner:vt-twente",
                                 "{\"status\":\"ACCEPTED\"}", extra, "vt-twente");
    free (extra);
    rc = s_run ("clients/kp-inbox", "vt-twente", "--count 2", &out, &err);
    cr_assert_eq (rc, 0, "%s", err);
    char *accept = zsys_sprintf ("{\"id\":\"%s\",\"type\":\"feedback\"", accept_id);
    cr_expect_not_null (strstr (out, accept), "%s", out);
    cr_expect_not_null (strstr (out, "\"body\":{\"status\":\"ACCEPTED\"}"), "%s", out);
    char *delivered = zsys_sprintf ("{\"status\":\"DELIVERED\",\"id\":\"%s\"",
                                    referral_id);
    cr_expect_not_null (strstr (out, delivered), "%s", out);
    free (delivered);
    free (accept);
    free (out);
    free (err);
    free (accept_id);
    free (referral_id);
}

Test (kp_tools, school_notification_route_and_read_receipt)
{
    //  Leg 1: police -> leerplicht, with a lookup hint
    char *request_id = s_send_ok ("police-oost", "school_notification",
                                  "municipality:GM0153", S_REQUEST_BODY, NULL,
                                  "lp-enschede");
    char *out = NULL, *err = NULL;
    int rc = s_run ("clients/kp-inbox", "lp-enschede", "--count 1", &out, &err);
    cr_assert_eq (rc, 0, "%s", err);
    cr_expect_not_null (strstr (out, "\"lookup_hint\":\"7511 AA\""), "%s", out);
    cr_expect_not_null (strstr (out, "\"recipient_role\":\"leerplicht\""), "%s", out);
    free (out);
    free (err);

    //  Leg 2: leerplicht -> school; the school-bound schema refuses a hint
    rc = s_run ("clients/kp-send", "lp-enschede",
                "--type school_notification --to school:12AB00 --body '"
                S_REQUEST_BODY "'", &out, &err);
    cr_expect_eq (rc, 1);
    cr_expect_str_empty (out);
    s_expect_one_line (err, "kp-send: ", "lookup_hint");
    free (out);
    free (err);
    char *extra = zsys_sprintf ("--reference %s", request_id);
    char *notification_id = s_send_ok ("lp-enschede", "school_notification",
                                       "school:12AB00", S_NOTIFICATION_BODY, extra,
                                       "school-12ab00");
    free (extra);

    //  The school receives it into a file and sends the read receipt
    char *dir = zsys_sprintf ("%s/school-inbox", s_region->dir);
    char *args = zsys_sprintf ("--out '%s' --read-receipt --count 1", dir);
    rc = s_run ("clients/kp-inbox", "school-12ab00", args, &out, &err);
    cr_assert_eq (rc, 0, "%s", err);
    cr_expect_str_empty (out, "--out prints nothing");
    char *path = zsys_sprintf ("%s/%s.json", dir, notification_id);
    char *text = s_slurp (path);
    cr_assert_not_null (text, "no file %s", path);
    cr_expect_not_null (strstr (text, "\"code_words\":\"Handle with Care\""), "%s", text);
    cr_expect_not_null (strstr (text, "\"child_name\":\"Fictief Kind\""), "%s", text);
    cr_expect_null (strstr (text, "lookup_hint"), "%s", text);
    cr_expect_null (strstr (text, "7511"), "%s", text);
    cr_expect_eq (s_dir_entries (dir), 1);
    free (text);
    free (path);
    free (args);
    free (out);
    free (err);

    //  Leerplicht gets the DELIVERED status and the READ feedback
    rc = s_run ("clients/kp-inbox", "lp-enschede", "--idle-exit 2000", &out, &err);
    cr_assert_eq (rc, 0, "%s", err);
    char *delivered = zsys_sprintf ("{\"status\":\"DELIVERED\",\"id\":\"%s\"",
                                    notification_id);
    cr_expect_not_null (strstr (out, delivered), "%s", out);
    //  ... with the school's signed receipt, which kp-inbox (another run
    //  than the sender) checks with the school's vouched key
    cr_expect_not_null (strstr (out, "\"receipt_verified\":true"), "%s", out);
    char *reference = zsys_sprintf ("\"reference\":\"%s\"", notification_id);
    cr_expect_not_null (strstr (out, reference), "%s", out);
    cr_expect_not_null (strstr (out, "\"sender\":\"school-12ab00\""), "%s", out);
    cr_expect_not_null (strstr (out, "\"body\":{\"status\":\"READ\"}"), "%s", out);
    free (reference);
    free (delivered);
    free (out);
    free (err);
    free (dir);
    free (notification_id);
    free (request_id);
}

//  One refusal: sender, arguments, code on stderr
typedef struct {
    const char *sender;
    const char *args;
    const char *code;
} s_refusal_case_t;

static const s_refusal_case_t s_refusal_cases [] = {
    { "school-12ab00", "--type referral --to municipality:GM0153 --body '"
      S_REFERRAL_BODY "'", "kp-send: refused: FORBIDDEN: " },
    { "lp-enschede", "--type school_notification --to school:34CD00 --body '"
      S_NOTIFICATION_BODY "'", "kp-send: refused: NOT_COVENANT: " },
    { "police-oost", "--type signal --to municipality:GM9999 --body '"
      S_SIGNAL_BODY "'", "kp-send: refused: UNKNOWN_ADDRESS: " },
    { "police-oost", "--type feedback --to partner:vt-twente --reference "
      "0123456789abcdef0123456789abcdef --body '{\"status\":\"RECEIVED\"}'",
      "kp-send: refused: " },
    { "police-oost", "--type signal --to municipality:GM0153 --body '{\"colour\":1}'",
      "kp-send: invalid signal: " },
    { "police-oost", "--type signal --to municipality:GM0153 --body '{}'",
      "kp-send: invalid signal: " },
    { "police-oost", "--type signal --to municipality:GM0153 --body-file /nonexistent",
      "kp-send: cannot read body" },
};

Test (kp_tools, refusals_exit_1_with_one_line)
{
    for (size_t index = 0; index < sizeof s_refusal_cases / sizeof s_refusal_cases [0];
         index++) {
        const s_refusal_case_t *test_case = s_refusal_cases + index;
        char *out = NULL, *err = NULL;
        int rc = s_run ("clients/kp-send", test_case->sender, test_case->args,
                        &out, &err);
        cr_expect_eq (rc, 1, "%s: exit %d", test_case->args, rc);
        cr_expect_str_empty (out, "%s", out);
        cr_expect_eq (strncmp (err, test_case->code, strlen (test_case->code)), 0,
                      "want '%s', got: %s", test_case->code, err);
        cr_expect_eq (s_lines (err), 1, "%s", err);
        free (out);
        free (err);
    }
}

Test (kp_tools, unknown_key_exits_1_with_one_line)
{
    zcert_t *stranger = zcert_new ();
    char *path = zsys_sprintf ("%s/stranger", s_region->dir);
    cr_assert_eq (zcert_save (stranger, path), 0);
    zcert_destroy (&stranger);
    char *secret = zsys_sprintf ("%s_secret", path);
    char *out = NULL, *err = NULL;
    int rc = s_run ("clients/kp-send", secret, "--timeout 800 --type signal "
                    "--to municipality:GM0153 --body '" S_SIGNAL_BODY "'", &out, &err);
    cr_expect_eq (rc, 1);
    cr_expect_str_empty (out);
    s_expect_one_line (err, "kp-send: ", "did not answer within 800 ms");
    free (out);
    free (err);
    rc = s_run ("clients/kp-inbox", secret, "--timeout 800", &out, &err);
    cr_expect_eq (rc, 1);
    s_expect_one_line (err, "kp-inbox: ", "did not answer");
    free (out);
    free (err);
    free (secret);
    free (path);
}

Test (kp_tools, same_id_gets_the_first_receipt)
{
    const char *args = "--type signal --to municipality:GM0153 --id "
                       "00112233445566778899aabbccddeeff --body-file -";
    char *path = kp_test_program ("clients/kp-send");
    char *flags = s_flags ("police-oost");
    char *command = zsys_sprintf ("echo '%s' | '%s' %s %s", S_SIGNAL_BODY, path,
                                  flags, args);
    char *first = NULL, *second = NULL;
    cr_assert_eq (kp_test_run (command, S_RUN_TIMEOUT, &first, NULL), 0);
    cr_assert_eq (kp_test_run (command, S_RUN_TIMEOUT, &second, NULL), 0);
    cr_expect_not_null (strstr (first, "\"id\":\"00112233445566778899aabbccddeeff\""));
    cr_expect_not_null (strstr (first, "\"duplicate\":false"), "%s", first);
    cr_expect_not_null (strstr (second, "\"duplicate\":true"), "%s", second);
    char *seq = strstr (first, "\"seq\":");
    cr_assert_not_null (seq);
    char *seq_text = strndup (seq, strcspn (seq, ","));
    cr_expect_not_null (strstr (second, seq_text), "same seq: %s vs %s", first, second);
    free (seq_text);
    free (first);
    free (second);
    free (command);
    free (flags);
    free (path);
}

//  --------------------------------------------------------------------------
//  kp-inbox sinks

Test (kp_tools, out_writes_one_file_per_item)
{
    char *ids [3];
    for (int index = 0; index < 3; index++)
        ids [index] = s_send_ok ("police-oost", "signal", "municipality:GM0153",
                                 S_SIGNAL_BODY, NULL, "vt-twente");
    char *dir = zsys_sprintf ("%s/vt-out", s_region->dir);
    char *args = zsys_sprintf ("--out '%s' --count 3", dir);
    char *out = NULL, *err = NULL;
    int rc = s_run ("clients/kp-inbox", "vt-twente", args, &out, &err);
    cr_assert_eq (rc, 0, "%s", err);
    cr_expect_str_empty (out);
    cr_expect_str_empty (err);
    cr_expect_eq (s_dir_entries (dir), 3, "one file per message, no temp files");
    for (int index = 0; index < 3; index++) {
        char *path = zsys_sprintf ("%s/%s.json", dir, ids [index]);
        char *text = s_slurp (path);
        cr_expect_not_null (text, "missing %s", path);
        cr_expect_eq (s_lines (text), 1);
        free (text);
        free (path);
    }
    free (out);
    free (err);
    free (args);

    //  The statuses go to files named by id and status
    char *status_dir = zsys_sprintf ("%s/police-out", s_region->dir);
    args = zsys_sprintf ("--out '%s' --count 3", status_dir);
    rc = s_run ("clients/kp-inbox", "police-oost", args, &out, &err);
    cr_assert_eq (rc, 0, "%s", err);
    for (int index = 0; index < 3; index++) {
        char *path = zsys_sprintf ("%s/%s.DELIVERED.json", status_dir, ids [index]);
        char *text = s_slurp (path);
        cr_expect_not_null (text, "missing %s", path);
        cr_expect_not_null (strstr (text ? text: "", "{\"status\":\"DELIVERED\""));
        free (text);
        free (path);
        free (ids [index]);
    }
    cr_expect_eq (s_dir_entries (status_dir), 3);
    free (out);
    free (err);
    free (args);
    free (status_dir);
    free (dir);
}

Test (kp_tools, exec_acks_only_when_the_command_succeeds)
{
    //  A short heartbeat, so the broker soon sees the failed run's session
    //  is gone and hands the message to the next one
    s_broker_restart (SIGTERM, "server\n    heartbeat = 500\n");
    char *id = s_send_ok ("police-oost", "signal", "municipality:GM0153", S_SIGNAL_BODY,
                          NULL, "vt-twente");
    char *out = NULL, *err = NULL;
    int rc = s_run ("clients/kp-inbox", "vt-twente",
                    "--exec 'cat >/dev/null; exit 3' --count 1", &out, &err);
    cr_expect_eq (rc, 1);
    cr_expect_str_empty (out);
    s_expect_one_line (err, "kp-inbox: ", "exited with status 3");
    cr_expect_not_null (strstr (err, id), "%s", err);
    free (out);
    free (err);

    char *dir = zsys_sprintf ("%s/exec", s_region->dir);
    cr_assert_eq (zsys_dir_create ("%s", dir), 0);
    char *args = zsys_sprintf ("--exec 'cat > %s/\"$KP_MSG_ID\".json; echo "
                               "\"$KP_MSG_TYPE $KP_MSG_SENDER $KP_MSG_KIND\" > %s/env' "
                               "--count 1", dir, dir);
    rc = s_run ("clients/kp-inbox", "vt-twente", args, &out, &err);
    cr_assert_eq (rc, 0, "%s", err);
    char *path = zsys_sprintf ("%s/%s.json", dir, id);
    char *text = s_slurp (path);
    cr_assert_not_null (text, "command did not get the message again");
    char *expected = zsys_sprintf ("{\"id\":\"%s\",\"type\":\"signal\"", id);
    cr_expect_eq (strncmp (text, expected, strlen (expected)), 0, "%s", text);
    free (expected);
    free (text);
    free (path);
    path = zsys_sprintf ("%s/env", dir);
    text = s_slurp (path);
    cr_expect_str_eq (text, "signal police-oost message\n");
    free (text);
    free (path);
    free (out);
    free (err);

    //  Now it was acked: the sender has its DELIVERED status
    rc = s_run ("clients/kp-inbox", "police-oost",
                "--exec 'echo \"$KP_MSG_KIND $KP_MSG_STATUS $KP_MSG_ID\"' --count 1",
                &out, &err);
    cr_assert_eq (rc, 0, "%s", err);
    expected = zsys_sprintf ("status DELIVERED %s\n", id);
    cr_expect_str_eq (out, expected);
    free (expected);
    free (out);
    free (err);
    free (args);
    free (dir);
    free (id);
}

Test (kp_tools, idle_exit_collects_what_waited_while_offline)
{
    char *first = s_send_ok ("lp-enschede", "school_notification", "school:12AB00",
                             S_NOTIFICATION_BODY, NULL, "school-12ab00");
    char *second = s_send_ok ("lp-enschede", "school_notification", "school:12AB00",
                              S_NOTIFICATION_BODY, NULL, "school-12ab00");
    char *dir = zsys_sprintf ("%s/school", s_region->dir);
    char *args = zsys_sprintf ("--out '%s' --idle-exit 1000", dir);
    char *out = NULL, *err = NULL;
    int64_t started = kp_mono_ms ();
    int rc = s_run ("clients/kp-inbox", "school-12ab00", args, &out, &err);
    cr_assert_eq (rc, 0, "%s", err);
    cr_expect_lt (kp_mono_ms () - started, 10000);
    cr_expect_eq (s_dir_entries (dir), 2);
    char *path = zsys_sprintf ("%s/%s.json", dir, second);
    char *text = s_slurp (path);
    cr_expect_not_null (text);
    cr_expect_not_null (strstr (text? text: "", "Handle with Care"));
    free (text);
    free (path);
    free (out);
    free (err);
    free (args);
    free (dir);
    free (first);
    free (second);
}

Test (kp_tools, journal_keeps_a_redelivery_from_the_application)
{
    char *id = s_send_ok ("police-oost", "signal", "municipality:GM0153", S_SIGNAL_BODY,
                          NULL, "vt-twente");
    //  As if an earlier run journalled the ack and crashed before sending it
    char *state = zsys_sprintf ("%s/vt-state", s_region->dir);
    cr_assert_eq (zsys_dir_create ("%s", state), 0);
    char *journal = zsys_sprintf ("%s/journal", state);
    FILE *file = fopen (journal, "w");
    fprintf (file, "%s\n", id);
    fclose (file);
    char *args = zsys_sprintf ("--state '%s' --idle-exit 1500", state);
    char *out = NULL, *err = NULL;
    int rc = s_run ("clients/kp-inbox", "vt-twente", args, &out, &err);
    cr_assert_eq (rc, 0, "%s", err);
    cr_expect_str_empty (out, "handed out again: %s", out);
    free (out);
    free (err);
    //  ...and acked silently: the sender sees it delivered
    rc = s_run ("clients/kp-inbox", "police-oost", "--count 1", &out, &err);
    cr_assert_eq (rc, 0, "%s", err);
    char *expected = zsys_sprintf ("{\"status\":\"DELIVERED\",\"id\":\"%s\"", id);
    cr_expect_not_null (strstr (out, expected), "%s", out);
    free (expected);
    free (out);
    free (err);
    free (args);
    free (journal);
    free (state);
    free (id);
}

Test (kp_tools, no_duplicate_across_a_broker_crash)
{
    char *state = zsys_sprintf ("%s/vt-state", s_region->dir);
    char *seen = zsys_sprintf ("%s/seen", s_region->dir);
    char *out_path = zsys_sprintf ("%s/inbox.out", s_region->dir);
    char *err_path = zsys_sprintf ("%s/inbox.err", s_region->dir);
    char *program = kp_test_program ("clients/kp-inbox");
    char *flags = s_flags ("vt-twente");
    char *command = zsys_sprintf ("'%s' %s --state '%s' --count 6 "
                                  "--exec 'echo \"$KP_MSG_ID\" >> %s'",
                                  program, flags, state, seen);
    pid_t pid = s_spawn (command, out_path, err_path);
    char *ids [6];
    for (int index = 0; index < 3; index++)
        ids [index] = s_send_ok ("police-oost", "signal", "municipality:GM0153",
                                 S_SIGNAL_BODY, NULL, "vt-twente");
    cr_assert (s_wait_lines (seen, 3, 15000), "inbox did not handle the first three");

    kp_test_broker_stop (s_region, SIGKILL);
    cr_assert_eq (kp_test_broker_start (s_region, NULL), 0, "broker did not restart");
    for (int index = 3; index < 6; index++)
        ids [index] = s_send_ok ("police-oost", "signal", "municipality:GM0153",
                                 S_SIGNAL_BODY, NULL, "vt-twente");
    int rc = s_reap (pid, 30000);
    char *err_text = s_slurp (err_path);
    cr_expect_eq (rc, 0, "kp-inbox exit %d: %s", rc, err_text);
    free (err_text);

    char *text = s_slurp (seen);
    cr_assert_not_null (text);
    cr_expect_eq (s_lines (text), 6, "each message exactly once:\n%s", text);
    for (int index = 0; index < 6; index++) {
        char *line = zsys_sprintf ("%s\n", ids [index]);
        cr_expect_not_null (strstr (text, line), "missing %s", ids [index]);
        free (line);
    }
    free (text);

    //  A second run with the same state hands out nothing
    char *args = zsys_sprintf ("--state '%s' --idle-exit 1500 "
                               "--exec 'echo \"$KP_MSG_ID\" >> %s'", state, seen);
    rc = s_run ("clients/kp-inbox", "vt-twente", args, NULL, NULL);
    cr_expect_eq (rc, 0);
    text = s_slurp (seen);
    cr_expect_eq (s_lines (text), 6, "handed out again:\n%s", text);
    free (text);
    for (int index = 0; index < 6; index++)
        free (ids [index]);
    free (args);
    free (command);
    free (flags);
    free (program);
    free (err_path);
    free (out_path);
    free (seen);
    free (state);
}

Test (kp_tools, sigterm_finishes_and_exits_0)
{
    char *out_path = zsys_sprintf ("%s/inbox.out", s_region->dir);
    char *err_path = zsys_sprintf ("%s/inbox.err", s_region->dir);
    char *program = kp_test_program ("clients/kp-inbox");
    char *flags = s_flags ("vt-twente");
    char *command = zsys_sprintf ("'%s' %s", program, flags);
    pid_t pid = s_spawn (command, out_path, err_path);
    char *id = s_send_ok ("police-oost", "signal", "municipality:GM0153", S_SIGNAL_BODY,
                          NULL, "vt-twente");
    cr_assert (s_wait_lines (out_path, 1, 15000), "nothing printed");
    kill (pid, SIGTERM);
    int rc = s_reap (pid, 10000);
    char *err_text = s_slurp (err_path);
    cr_expect_eq (rc, 0, "exit %d: %s", rc, err_text);
    cr_expect_str_empty (err_text);
    free (err_text);
    char *text = s_slurp (out_path);
    cr_expect_not_null (strstr (text, id));
    free (text);
    free (id);
    free (command);
    free (flags);
    free (program);
    free (err_path);
    free (out_path);
}

Test (kp_tools, inbox_exits_1_when_its_key_is_revoked)
{
    char *out_path = zsys_sprintf ("%s/inbox.out", s_region->dir);
    char *err_path = zsys_sprintf ("%s/inbox.err", s_region->dir);
    char *program = kp_test_program ("clients/kp-inbox");
    char *flags = s_flags ("lt-hengelo");
    char *command = zsys_sprintf ("'%s' %s", program, flags);
    pid_t pid = s_spawn (command, out_path, err_path);
    //  Once it printed a referral it is surely connected
    char *id = s_send_ok ("vt-twente", "referral", "municipality:GM0164",
                          S_REFERRAL_BODY, NULL, "lt-hengelo");
    cr_assert (s_wait_lines (out_path, 1, 15000), "nothing printed");
    cr_assert_eq (kp_region_revoke (s_region->region, "lt-hengelo"), 0);
    int rc = s_reap (pid, 10000);
    char *err_text = s_slurp (err_path);
    cr_expect_eq (rc, 1, "exit %d: %s", rc, err_text);
    s_expect_one_line (err_text, "kp-inbox: ", "REVOKED");
    free (err_text);
    free (id);
    free (command);
    free (flags);
    free (program);
    free (err_path);
    free (out_path);
}
