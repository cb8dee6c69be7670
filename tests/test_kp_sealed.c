/*  =========================================================================
    test_kp_sealed - sealed bodies end to end, through the real broker

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
    What the operator's broker holds and what each recipient gets: a marker
    in every body never appears in the broker's data directory, its log or
    its memory while the messages wait in its queues; a school never
    receives a field beyond its four; the sender gets the recipient's
    signed receipt and can verify it; keys the region did not vouch for
    (a forged registration, as a lying broker or operator would serve) are
    refused on both ends. All persons are fictitious.
*/
#include "kp_testutil.h"
#include "kp_msg_internal.h"
#include "kp_body.pb-c.h"
#include <criterion/criterion.h>
#include <ftw.h>
#include <signal.h>
#include <sodium.h>
#include <sys/uio.h>

#define S_WAIT 10000                //  msec to wait for a delivery
#define S_MARKER "MARKER-q7Zx-Fictief"
#define S_HINT "Hintstraat 99 7511"

static kp_test_region_t *s_region;

static void
s_region_start (void)
{
    s_region = kp_test_region_new ();
    cr_assert_eq (kp_test_broker_start (s_region, NULL), 0, "broker did not start");
}

static void
s_region_stop (void)
{
    kp_test_region_destroy (&s_region);
}

TestSuite (kp_sealed, .init = s_region_start, .fini = s_region_stop, .timeout = 60.);

//  Send json as type to address; asserts acceptance; returns the id
static char *
s_send (kp_client_t *client, const char *type, const char *to, const char *json,
        const char *reference)
{
    kp_msg_t *msg = kp_msg_new (type, to);
    cr_assert_not_null (msg);
    if (reference)
        cr_assert_eq (kp_msg_set_reference (msg, reference), 0);
    cr_assert_eq (kp_msg_set_body_json (msg, json), 0, "%s", kp_msg_error (msg));
    kp_receipt_t receipt;
    cr_assert_eq (kp_client_send (client, msg, &receipt), 0, "%s: %s", receipt.error,
                  receipt.reason);
    char *id = strdup (kp_msg_id (msg));
    kp_msg_destroy (&msg);
    return id;
}

//  Receive until the item with id (and status, or a message) arrives
static kp_msg_t *
s_expect (kp_client_t *client, const char *id, const char *status)
{
    int64_t deadline = kp_mono_ms () + S_WAIT;
    while (kp_mono_ms () < deadline) {
        kp_msg_t *msg = kp_client_recv (client, (int) (deadline - kp_mono_ms ()));
        if (!msg)
            continue;
        if (streq (kp_msg_id (msg), id)
        &&  (status? streq (kp_msg_status (msg), status): !kp_msg_is_status (msg)))
            return msg;
        cr_assert_eq (kp_client_ack (client, msg), 0);
        kp_msg_destroy (&msg);
    }
    return NULL;
}

//  --------------------------------------------------------------------------
//  Where a marker may hide: files under a directory, a process's memory

static size_t s_file_hits;

static int
s_scan_file (const char *path, const struct stat *status, int flag, struct FTW *walk)
{
    (void) walk;
    if (flag != FTW_F || !S_ISREG (status->st_mode))
        return 0;
    FILE *file = fopen (path, "rb");
    if (!file)
        return 0;
    char *data = malloc ((size_t) status->st_size + 1);
    size_t size = fread (data, 1, (size_t) status->st_size, file);
    fclose (file);
    if (memmem (data, size, S_MARKER, strlen (S_MARKER))) {
        fprintf (stderr, "marker found in %s\n", path);
        s_file_hits++;
    }
    free (data);
    return 0;
}

//  Number of files under dir holding the marker
static size_t
s_marker_files (const char *dir)
{
    s_file_hits = 0;
    nftw (dir, s_scan_file, 16, FTW_PHYS);
    return s_file_hits;
}

//  Read size bytes at address of process pid: /proc/PID/mem, else
//  process_vm_readv. Returns bytes read, 0 if unreadable.
static size_t
s_peek (pid_t pid, int mem_fd, uint64_t address, uint8_t *buffer, size_t size)
{
    if (mem_fd >= 0) {
        ssize_t count = pread (mem_fd, buffer, size, (off_t) address);
        return count > 0? (size_t) count: 0;
    }
    struct iovec local = { buffer, size };
    struct iovec remote = { (void *) (uintptr_t) address, size };
    ssize_t count = process_vm_readv (pid, &local, 1, &remote, 1, 0);
    return count > 0? (size_t) count: 0;
}

//  Count the marker in the readable memory of pid; sets *scanned_p to the
//  bytes read. Mappings over 256 MiB (a sanitizer's shadow) are skipped:
//  a body would sit in the heap or a stack, never there.
static size_t
s_marker_in_memory (pid_t pid, size_t *scanned_p)
{
    char *maps_path = zsys_sprintf ("/proc/%d/maps", (int) pid);
    char *mem_path = zsys_sprintf ("/proc/%d/mem", (int) pid);
    FILE *maps = fopen (maps_path, "r");
    cr_assert_not_null (maps, "cannot read %s", maps_path);
    int mem_fd = open (mem_path, O_RDONLY);
    size_t marker_size = strlen (S_MARKER);
    size_t chunk = 1 << 20;
    uint8_t *buffer = malloc (chunk + marker_size);
    size_t hits = 0;
    *scanned_p = 0;
    char line [512];
    while (fgets (line, sizeof line, maps)) {
        unsigned long long start, end;
        char perms [8];
        if (sscanf (line, "%llx-%llx %7s", &start, &end, perms) != 3 || perms [0] != 'r')
            continue;
        if (strstr (line, "[vvar]") || strstr (line, "[vsyscall]")
        ||  end - start > 256ULL * 1024 * 1024)
            continue;
        size_t carry = 0;
        for (uint64_t address = start; address < end; address += chunk) {
            size_t want = end - address < chunk? (size_t) (end - address): chunk;
            size_t got = s_peek (pid, mem_fd, address, buffer + carry, want);
            if (got == 0)
                break;
            *scanned_p += got;
            if (memmem (buffer, carry + got, S_MARKER, marker_size))
                hits++;
            //  keep a tail, so a marker across two chunks is found
            size_t total = carry + got;
            carry = total < marker_size - 1? total: marker_size - 1;
            memmove (buffer, buffer + total - carry, carry);
        }
    }
    free (buffer);
    if (mem_fd >= 0)
        close (mem_fd);
    fclose (maps);
    free (mem_path);
    free (maps_path);
    return hits;
}

Test (kp_sealed, no_body_in_broker_disk_log_or_memory)
{
    kp_client_t *police = kp_test_client (s_region, "police-oost");
    kp_client_t *vt = kp_test_client (s_region, "vt-twente");
    char *day = kp_test_school_day ();
    //  Every type, each body with the marker; nobody receives yet, so all
    //  wait in the broker's queues (and the Veilig Thuis ones are acked
    //  later, so a feedback can carry the marker too)
    char *signal_id = s_send (police, "signal", "municipality:GM0153",
                              "{\"kind\":\"MELDING\",\"narrative\":\"" S_MARKER "\","
                              "\"persons\":[{\"role\":\"VICTIM\",\"name\":\"" S_MARKER
                              "\"}]}", NULL);
    char *json = zsys_sprintf ("{\"child_name\":\"" S_MARKER "\",\"date_of_birth\":"
                               "\"2015-03-04\",\"school_day\":\"%s\",\"lookup_hint\":\""
                               S_MARKER "\"}", day);
    char *request_id = s_send (police, "school_notification", "municipality:GM0153",
                               json, NULL);
    free (json);
    char *referral_id = s_send (vt, "referral", "municipality:GM0153",
                                "{\"case_id\":\"" S_MARKER "\",\"safety_summary\":\""
                                S_MARKER "\"}", NULL);
    cr_assert_eq (kp_client_receive (vt, 8), 0);
    kp_msg_t *msg = s_expect (vt, signal_id, NULL);
    cr_assert_not_null (msg);
    //  The recipient does read it: the marker is really in the body
    char *opened = kp_msg_json (msg);
    cr_expect_not_null (strstr (opened, S_MARKER));
    free (opened);
    cr_assert_eq (kp_client_ack (vt, msg), 0);
    kp_msg_destroy (&msg);
    char *feedback_id = s_send (vt, "feedback", "partner:police-oost",
                                "{\"status\":\"CLOSED\",\"note\":\"" S_MARKER "\"}",
                                signal_id);

    //  While they are queued: the broker's files and memory
    cr_expect_eq (s_marker_files (s_region->data), 0, "a body is readable on disk");
    char *log_path = zsys_sprintf ("%s/broker.log", s_region->dir);
    cr_expect_eq (s_marker_files (log_path), 0, "a body is in the broker's log");
    free (log_path);
    size_t scanned = 0;
    size_t hits = s_marker_in_memory (s_region->pid, &scanned);
    cr_expect_gt (scanned, 1 << 20, "read only %zu bytes of the broker", scanned);
    cr_expect_eq (hits, 0, "a body is readable in the broker's memory");
    //  The scanner works: our own memory holds the marker in clear
    size_t own_scanned = 0;
    cr_expect_gt (s_marker_in_memory (getpid (), &own_scanned), 0,
                  "the scanner does not find what is there");

    free (feedback_id);
    free (referral_id);
    free (request_id);
    free (signal_id);
    free (day);
    kp_client_destroy (&vt);
    kp_client_destroy (&police);
}

Test (kp_sealed, school_never_receives_a_forbidden_field)
{
    kp_client_t *police = kp_test_client (s_region, "police-oost");
    kp_client_t *lp = kp_test_client (s_region, "lp-enschede");
    kp_client_t *school = kp_test_client (s_region, "school-12ab00");
    char *day = kp_test_school_day ();
    char *json = zsys_sprintf ("{\"child_name\":\"Fictief Kind\",\"date_of_birth\":"
                               "\"2015-03-04\",\"school_day\":\"%s\",\"lookup_hint\":\""
                               S_HINT "\"}", day);
    char *request_id = s_send (police, "school_notification", "municipality:GM0153",
                               json, NULL);
    cr_assert_eq (kp_client_receive (lp, 4), 0);
    kp_msg_t *request = s_expect (lp, request_id, NULL);
    cr_assert_not_null (request);
    char *text = kp_msg_json (request);
    cr_expect_not_null (strstr (text, S_HINT), "leerplicht needs the hint: %s", text);
    free (text);
    cr_assert_eq (kp_client_ack (lp, request), 0);

    //  Forwarding with the hint: the school schema has no room for it
    kp_msg_t *forward = kp_msg_new ("school_notification", "school:12AB00");
    cr_expect_eq (kp_msg_set_body_json (forward, json), -1);
    //  ... nor as raw bytes packed with the request schema
    size_t size;
    const uint8_t *packed = kp_msg_body (request, &size);
    kp_msg_set_body (forward, packed, size);
    cr_assert_eq (kp_msg_set_reference (forward, request_id), 0);
    kp_receipt_t receipt;
    cr_expect_eq (kp_client_send (lp, forward, &receipt), -1);
    cr_expect_str_eq (receipt.error, "INVALID");
    kp_msg_destroy (&forward);
    kp_msg_destroy (&request);
    free (json);

    //  The minimal forward arrives with exactly four fields
    json = zsys_sprintf ("{\"child_name\":\"Fictief Kind\",\"date_of_birth\":"
                         "\"2015-03-04\",\"school_day\":\"%s\"}", day);
    char *notification_id = s_send (lp, "school_notification", "school:12AB00", json,
                                    request_id);
    free (json);
    cr_assert_eq (kp_client_receive (school, 4), 0);
    kp_msg_t *notification = s_expect (school, notification_id, NULL);
    cr_assert_not_null (notification);
    const uint8_t *body = kp_msg_body (notification, &size);
    Kp__Body__SchoolNotification *unpacked =
        kp__body__school_notification__unpack (NULL, size, body);
    cr_assert_not_null (unpacked);
    cr_expect_eq (unpacked->base.n_unknown_fields, 0);
    cr_expect_str_eq (unpacked->child_name, "Fictief Kind");
    cr_expect_str_eq (unpacked->code_words, "Handle with Care");
    cr_expect_str_eq (unpacked->school_day, day);
    kp__body__school_notification__free_unpacked (unpacked, NULL);
    text = kp_msg_json (notification);
    cr_expect_null (strstr (text, S_HINT), "%s", text);
    cr_expect_null (strstr (text, "lookup_hint"), "%s", text);
    //  Its deadlines came along: overdue at 07:30, over at 18:00
    cr_expect_not_null (strstr (text, "\"expires_at\":"), "%s", text);
    cr_expect_gt (notification->due_at_ms, 0);
    cr_expect_eq (notification->expires_at_ms - notification->due_at_ms,
                  (18 * 60 - (7 * 60 + 30)) * 60 * 1000LL);
    free (text);
    cr_assert_eq (kp_client_ack (school, notification), 0);
    kp_msg_destroy (&notification);
    free (notification_id);
    free (request_id);
    free (day);
    kp_client_destroy (&school);
    kp_client_destroy (&lp);
    kp_client_destroy (&police);
}

Test (kp_sealed, sender_gets_a_verifiable_receipt)
{
    kp_client_t *police = kp_test_client (s_region, "police-oost");
    char *id = s_send (police, "signal", "municipality:GM0153",
                       "{\"kind\":\"MELDING\",\"narrative\":\"receipt test\"}", NULL);
    kp_client_t *vt = kp_test_client (s_region, "vt-twente");
    cr_assert_eq (kp_client_receive (vt, 4), 0);
    kp_msg_t *msg = s_expect (vt, id, NULL);
    cr_assert_not_null (msg);
    cr_assert_eq (kp_client_ack (vt, msg), 0);
    kp_msg_destroy (&msg);

    //  The sending client: it knows the sealed body and vt's key
    cr_assert_eq (kp_client_receive (police, 4), 0);
    kp_msg_t *status = s_expect (police, id, "DELIVERED");
    cr_assert_not_null (status);
    size_t size = 0;
    cr_expect_not_null (kp_msg_receipt (status, &size));
    cr_expect_gt (size, 64);
    cr_expect (kp_msg_receipt_verified (status));
    char *json = kp_msg_json (status);
    cr_expect_not_null (strstr (json, "\"receipt\":\""), "%s", json);
    cr_expect_not_null (strstr (json, "\"receipt_verified\":true"), "%s", json);
    free (json);
    kp_msg_destroy (&status);
    free (id);
    kp_client_destroy (&police);

    //  A fresh client (another run of the sender, here the local team, whose
    //  sessions have never received) asks the directory for the recipient's
    //  key and verifies as well
    kp_client_t *sender = kp_test_client (s_region, "lt-enschede");
    id = s_send (sender, "signal", "municipality:GM0153",
                 "{\"kind\":\"MELDING\",\"narrative\":\"receipt test 2\"}", NULL);
    kp_client_destroy (&sender);
    msg = s_expect (vt, id, NULL);
    cr_assert_not_null (msg);
    cr_assert_eq (kp_client_ack (vt, msg), 0);
    kp_msg_destroy (&msg);
    sender = kp_test_client (s_region, "lt-enschede");
    cr_assert_eq (kp_client_receive (sender, 4), 0);
    status = s_expect (sender, id, "DELIVERED");
    cr_assert_not_null (status);
    cr_expect (kp_msg_receipt_verified (status));
    cr_assert_eq (kp_client_ack (sender, status), 0);
    kp_msg_destroy (&status);
    free (id);
    kp_client_destroy (&sender);
    kp_client_destroy (&vt);
}

Test (kp_sealed, without_region_key_nothing_is_sent_or_taken)
{
    char *cert = kp_test_cert (s_region, "police-oost");
    kp_client_t *police = kp_client_new (s_region->endpoint, s_region->broker_cert,
                                         cert, 5000);
    cr_assert_not_null (police);
    kp_msg_t *msg = kp_msg_new ("signal", "municipality:GM0153");
    cr_assert_eq (kp_msg_set_body_json (msg, "{\"kind\":\"MELDING\"}"), 0);
    kp_receipt_t receipt;
    cr_expect_eq (kp_client_send (police, msg, &receipt), -1);
    cr_expect_str_eq (receipt.error, "INVALID");
    cr_expect_not_null (strstr (receipt.reason, "region key"), "%s", receipt.reason);
    //  A wrong region key file is refused up front
    cr_expect_eq (kp_client_set_region_key (police, s_region->broker_cert), -1);
    kp_msg_destroy (&msg);
    kp_client_destroy (&police);
    free (cert);
}

//  --------------------------------------------------------------------------
//  A forged registration: vt-twente's public cert now holds keys that the
//  region's registration key never signed (as a lying broker would serve)

static void
s_forge_registration (const char *region, const char *id, Kp__Wire__Role role)
{
    uint8_t forger_public [32], forger_secret [64];
    crypto_sign_keypair (forger_public, forger_secret);
    uint8_t sign_public [32], sign_secret [64], seal_public [32], seal_secret [32];
    crypto_sign_keypair (sign_public, sign_secret);
    crypto_box_keypair (seal_public, seal_secret);
    char *path = zsys_sprintf ("%s/partners/%s", region, id);
    zconfig_t *root = zconfig_load (path);
    cr_assert_not_null (root);
    Kp__Wire__RegistrationStatement statement = KP__WIRE__REGISTRATION_STATEMENT__INIT;
    uint8_t curve [32] = { 0 };
    statement.region = (char *) "test-broker";
    statement.partner = (char *) id;
    statement.role = role;
    statement.curve_key.data = curve;
    statement.curve_key.len = 32;
    statement.sign_key.data = sign_public;
    statement.sign_key.len = 32;
    statement.seal_key.data = seal_public;
    statement.seal_key.len = 32;
    uint8_t packed [512];
    size_t size = kp__wire__registration_statement__pack (&statement, packed);
    uint8_t signature [64];
    crypto_sign_detached (signature, NULL, packed, size, forger_secret);
    Kp__Wire__Registration registration = KP__WIRE__REGISTRATION__INIT;
    registration.statement.data = packed;
    registration.statement.len = size;
    registration.signature.data = signature;
    registration.signature.len = 64;
    uint8_t outer [1024];
    size_t outer_size = kp__wire__registration__pack (&registration, outer);
    char text [2048];
    sodium_bin2base64 (text, sizeof text, outer, outer_size,
                       sodium_base64_VARIANT_ORIGINAL);
    zconfig_put (root, "metadata/registration", text);
    char *temp = zsys_sprintf ("%s/.forged", region);
    cr_assert_eq (zconfig_save (root, temp), 0);
    cr_assert_eq (rename (temp, path), 0);
    zconfig_destroy (&root);
    free (temp);
    free (path);
}

Test (kp_sealed, forged_registration_is_refused, .timeout = 60.)
{
    //  Sender side: vt-twente's keys as served are forged; the body is not
    //  sealed to them
    kp_client_t *police = kp_test_client (s_region, "police-oost");
    s_forge_registration (s_region->region, "vt-twente", KP__WIRE__ROLE__VEILIG_THUIS);
    kp_test_broker_stop (s_region, SIGTERM);
    cr_assert_eq (kp_test_broker_start (s_region, NULL), 0);
    kp_msg_t *msg = kp_msg_new ("signal", "municipality:GM0153");
    cr_assert_eq (kp_msg_set_body_json (msg, "{\"kind\":\"MELDING\"}"), 0);
    kp_receipt_t receipt;
    cr_expect_eq (kp_client_send (police, msg, &receipt), -1);
    cr_expect_str_eq (receipt.error, "UNTRUSTED", "%s: %s", receipt.error,
                      receipt.reason);
    cr_expect_not_null (strstr (receipt.reason, "not signed by the region"), "%s",
                        receipt.reason);
    kp_msg_destroy (&msg);
    kp_client_destroy (&police);
}

Test (kp_sealed, forged_sender_registration_is_refused_by_the_recipient, .timeout = 60.)
{
    //  Receiver side: the broker attaches a forged registration of the
    //  sender; the recipient refuses, and the sender hears why
    s_forge_registration (s_region->region, "police-oost", KP__WIRE__ROLE__POLICE);
    kp_test_broker_stop (s_region, SIGTERM);
    cr_assert_eq (kp_test_broker_start (s_region, NULL), 0);
    kp_client_t *police = kp_test_client (s_region, "police-oost");
    char *id = s_send (police, "signal", "municipality:GM0153",
                       "{\"kind\":\"MELDING\"}", NULL);
    kp_client_t *vt = kp_test_client (s_region, "vt-twente");
    cr_assert_eq (kp_client_receive (vt, 4), 0);
    kp_msg_t *msg = kp_client_recv (vt, 1500);
    cr_expect_null (msg, "a message with a forged sender was handed out");
    kp_msg_destroy (&msg);
    cr_assert_eq (kp_client_receive (police, 4), 0);
    kp_msg_t *status = s_expect (police, id, "REFUSED");
    cr_assert_not_null (status);
    char *json = kp_msg_json (status);
    cr_expect_not_null (strstr (json, "not signed by the region"), "%s", json);
    free (json);
    cr_assert_eq (kp_client_ack (police, status), 0);
    kp_msg_destroy (&status);
    free (id);
    kp_client_destroy (&vt);
    kp_client_destroy (&police);
}
