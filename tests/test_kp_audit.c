/*  =========================================================================
    test_kp_audit - kp-audit: verify, replay, prove, fetch, consistency

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
    Three kinds of test, all running the real kp-audit from the build tree:

    *   logs the test writes itself, record by record, with checkpoints
        signed by a key made at runtime: every rule of the order of events,
        framing and decoding, and the speed of verify;
    *   copies of a real ketenpostd's data dir after real traffic, damaged
        on purpose: raw byte flips (the CRC catches them), records rewritten
        with a valid frame, dropped, reordered, inserted, a truncated log,
        and history rewritten and re-signed with the region's real
        checkpoint key (only a checkpoint kept from before catches that);
    *   kp-audit against the running broker: fetch (twice, incrementally),
        prove, consistency, and a partner who is not an auditor.

    All on 127.0.0.1, in temporary directories. No sleeps: deadlines.
*/
#include "kp_testutil.h"
#include "kp_log.h"
#include "kp_merkle.h"
#include "kp_checkpoint.h"
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <sodium.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>

#define S_SIGNAL_BODY \
    "{\"kind\":\"MELDING\",\"violence_types\":[\"PARTNER_VIOLENCE\"]," \
    "\"urgency\":\"ACUTE\",\"municipality\":\"GM0153\",\"persons\":[{\"role\":" \
    "\"VICTIM\",\"name\":\"Fictief Persoon\",\"date_of_birth\":\"1990-01-01\"}]," \
    "\"children_present\":1,\"narrative\":\"Fictieve testmelding.\"}"
#define S_REFERRAL_BODY \
    "{\"case_id\":\"VT-2026-0001\",\"safety_assessment\":\"SAFETY_STRUCTURAL\"," \
    "\"monitoring\":{\"who\":\"lt-enschede\",\"until\":\"2026-12-31\"}}"
//  School notification bodies take the school day (%s): see s_school_day
#define S_REQUEST_BODY \
    "{\"child_name\":\"Fictief Kind\",\"date_of_birth\":\"2015-03-04\"," \
    "\"school_day\":\"%s\",\"lookup_hint\":\"7511 AA\"}"
#define S_NOTIFICATION_BODY \
    "{\"child_name\":\"Fictief Kind\",\"date_of_birth\":\"2015-03-04\"," \
    "\"school_day\":\"%s\"}"
#define S_SUBJECT_HEX "5ab1ec755ab1ec755ab1ec755ab1ec755ab1ec755ab1ec755ab1ec755ab1ec75"
#define S_OTHER_HEX "0e1e0e1e0e1e0e1e0e1e0e1e0e1e0e1e0e1e0e1e0e1e0e1e0e1e0e1e0e1e0e1e"
#define S_ORIGIN "ketenpostd"       //  the broker's name when its config sets none
#define S_AUDITOR "auditor-1"
#define S_RUN_TIMEOUT 60000         //  msec any one kp-audit run may take
#define S_WAIT 10000                //  msec to wait for something that must come
#define S_T0 1767225600000LL        //  2026-01-01T00:00:00Z
#define S_HOUR 3600000LL

//  --------------------------------------------------------------------------
//  Running kp-audit

//  Run kp-audit with args; captures stdout and stderr (may be NULL)
static int
s_audit (const char *args, char **out_p, char **err_p)
{
    char *program = kp_test_program ("clients/kp-audit");
    char *command = zsys_sprintf ("'%s' %s", program, args);
    int rc = kp_test_run (command, S_RUN_TIMEOUT, out_p, err_p);
    free (command);
    free (program);
    return rc;
}

static int
s_lines (const char *text)
{
    int count = 0;
    for (; text && *text; text++)
        count += *text == '\n';
    return count;
}

//  Assert a run failed with exit code rc and one line on stderr holding
//  every one of the (NULL-terminated) texts
static void
s_expect_failure (int got, int want, const char *err, const char *first, ...)
{
    cr_expect_eq (got, want, "exit %d, want %d; stderr: %s", got, want, err);
    cr_expect_eq (s_lines (err), 1, "want one line on stderr, got: %s", err);
    cr_expect (err && strncmp (err, "kp-audit: ", 10) == 0, "stderr: %s", err);
    va_list args;
    va_start (args, first);
    for (const char *text = first; text; text = va_arg (args, const char *))
        cr_expect (err && strstr (err, text), "want '%s' in: %s", text, err);
    va_end (args);
}

//  --------------------------------------------------------------------------
//  A book: a data dir the test writes record by record, with checkpoints

typedef struct {
    char *dir;                      //  temp dir
    char *data;                     //  dir/data: log/ and checkpoints/
    char *key_file;                 //  the checkpoint public key (hex)
    uint8_t secret [KP_CHECKPOINT_SECRET];
    kp_log_t *log;
    kp_log_t *checkpoints;
    kp_merkle_edge_t edge;          //  the tree of what was appended
    int64_t now;                    //  time of the next record
    int64_t due_in;                 //  s_accept: due this long after now, or 0
} s_book_t;

static kp_log_t *
s_log_new (const char *dir, const char *name)
{
    char *path = zsys_sprintf ("%s/%s", dir, name);
    kp_log_status_t status;
    kp_log_t *log = kp_log_open (path, 64 * 1024 * 1024, false, &status);
    cr_assert_not_null (log, "cannot open %s", path);
    free (path);
    return log;
}

//  New book; signs with region's checkpoint key, or a fresh one if NULL
static s_book_t *
s_book_new (const char *region)
{
    s_book_t *self = (s_book_t *) zmalloc (sizeof (s_book_t));
    cr_assert_not_null (self);
    cr_assert_geq (sodium_init (), 0);
    self->dir = kp_test_tempdir ();
    self->data = zsys_sprintf ("%s/data", self->dir);
    cr_assert_eq (mkdir (self->data, 0700), 0);
    if (region) {
        cr_assert_eq (kp_checkpoint_load_secret (region, self->secret), 0);
        self->key_file = zsys_sprintf ("%s/checkpoint.pub", region);
    }
    else {
        uint8_t public_key [KP_CHECKPOINT_PUBLIC];
        crypto_sign_keypair (public_key, self->secret);
        self->key_file = zsys_sprintf ("%s/checkpoint.pub", self->dir);
        char *hex = kp_hex_encode (public_key, sizeof public_key);
        FILE *file = fopen (self->key_file, "w");
        cr_assert_not_null (file);
        fprintf (file, "%s\n", hex);
        fclose (file);
        free (hex);
    }
    self->log = s_log_new (self->data, "log");
    self->checkpoints = s_log_new (self->data, "checkpoints");
    kp_merkle_edge_init (&self->edge);
    self->now = S_T0;
    return self;
}

//  Sync and close the logs, so that kp-audit can read them
static void
s_book_close (s_book_t *self)
{
    if (self->log) {
        cr_assert_eq (kp_log_sync (self->log), 0);
        cr_assert_eq (kp_log_sync (self->checkpoints), 0);
    }
    kp_log_destroy (&self->log);
    kp_log_destroy (&self->checkpoints);
}

static void
s_book_destroy (s_book_t **self_p)
{
    s_book_t *self = *self_p;
    if (!self)
        return;
    s_book_close (self);
    sodium_memzero (self->secret, sizeof self->secret);
    if (!getenv ("KP_TEST_KEEP"))
        kp_test_rmtree (self->dir);
    free (self->key_file);
    free (self->data);
    free (self->dir);
    free (self);
    *self_p = NULL;
}

//  Append stored bytes as the next record
static void
s_book_raw (s_book_t *self, const uint8_t *data, size_t size)
{
    uint64_t seq, pos;
    cr_assert_eq (kp_log_append (self->log, data, size, &seq, &pos), 0);
    uint8_t leaf [KP_MERKLE_HASH];
    kp_merkle_leaf_hash (data, size, leaf);
    kp_merkle_edge_push (&self->edge, leaf);
}

//  Append a record; its seq is the next one unless keep_seq, its time now
//  (advancing a second) unless set. Returns its index.
static uint64_t
s_book_put (s_book_t *self, Kp__Wire__Record *record, bool keep_seq)
{
    uint64_t index = kp_log_size (self->log);
    if (!keep_seq)
        record->seq = index;
    if (record->time_ms == 0)
        record->time_ms = self->now;
    self->now += 1000;
    size_t size = kp__wire__record__get_packed_size (record);
    uint8_t *data = (uint8_t *) malloc (size);
    kp__wire__record__pack (record, data);
    s_book_raw (self, data, size);
    free (data);
    return index;
}

//  Sign a checkpoint of everything appended; returns the note (caller frees)
static char *
s_book_sign (s_book_t *self)
{
    uint8_t root [KP_MERKLE_HASH];
    kp_merkle_edge_root (&self->edge, root);
    char *note = kp_checkpoint_sign (S_ORIGIN, self->edge.size, root, S_ORIGIN,
                                     self->secret);
    cr_assert_not_null (note);
    uint64_t seq, pos;
    cr_assert_eq (kp_log_append (self->checkpoints, note, strlen (note), &seq, &pos), 0);
    return note;
}

//  Write text to dir/name; returns the path (caller frees)
static char *
s_write_text (const char *dir, const char *name, const char *text)
{
    char *path = zsys_sprintf ("%s/%s", dir, name);
    FILE *file = fopen (path, "w");
    cr_assert_not_null (file);
    fputs (text, file);
    fclose (file);
    return path;
}

//  --------------------------------------------------------------------------
//  Records of a plausible history

static void
s_partner_event (s_book_t *book, Kp__Wire__EventKind event, const char *id,
                 Kp__Wire__Role role)
{
    Kp__Wire__Record record = KP__WIRE__RECORD__INIT;
    uint8_t key_hash [32];
    memset (key_hash, id [0], sizeof key_hash);
    record.event = event;
    record.sender = (char *) id;
    record.sender_role = role;
    if (event == KP__WIRE__EVENT_KIND__PARTNER_REGISTERED) {
        record.key_hash.data = key_hash;
        record.key_hash.len = sizeof key_hash;
    }
    s_book_put (book, &record, false);
}

//  The id of message number tag: 16 bytes of its low byte, the higher
//  bytes mixed into the first few (so tags below 256 read 0101...01)
static void
s_message_id (uint32_t tag, uint8_t *id)
{
    memset (id, tag & 0xff, KP_ID_SIZE);
    id [1] ^= (uint8_t) (tag >> 8);
    id [2] ^= (uint8_t) (tag >> 16);
    id [3] ^= (uint8_t) (tag >> 24);
}

//  An ACCEPTED record of message number tag
static uint64_t
s_accept (s_book_t *book, uint32_t tag, const char *sender, const char *recipient)
{
    uint8_t id [KP_ID_SIZE], subject [32], body_hash [32];
    s_message_id (tag, id);
    memset (subject, tag & 0xff, sizeof subject);
    memset (body_hash, (tag & 0xff) ^ 0xff, sizeof body_hash);
    Kp__Wire__Envelope envelope = KP__WIRE__ENVELOPE__INIT;
    envelope.id.data = id;
    envelope.id.len = sizeof id;
    envelope.type = KP__WIRE__MESSAGE_TYPE__SIGNAL;
    envelope.recipient = (char *) "municipality:GM0153";
    envelope.created_at_ms = book->now;
    envelope.expires_at_ms = book->now + S_HOUR;
    envelope.due_at_ms = book->due_in? book->now + book->due_in: 0;
    envelope.purpose = (char *) "JW-1.2";
    envelope.acting_user = (char *) "agent-0042";
    envelope.subject.data = subject;
    envelope.subject.len = sizeof subject;
    envelope.body_length = 321;
    envelope.body_hash.data = body_hash;
    envelope.body_hash.len = sizeof body_hash;
    envelope.sender = (char *) sender;
    envelope.sender_role = KP__WIRE__ROLE__POLICE;
    envelope.recipient_partner = (char *) recipient;
    envelope.recipient_role = KP__WIRE__ROLE__VEILIG_THUIS;
    Kp__Wire__Record record = KP__WIRE__RECORD__INIT;
    record.event = KP__WIRE__EVENT_KIND__ACCEPTED;
    record.message_id = envelope.id;
    record.type = envelope.type;
    record.sender = (char *) sender;
    record.sender_role = envelope.sender_role;
    record.recipient = (char *) recipient;
    record.recipient_role = envelope.recipient_role;
    record.acting_user = envelope.acting_user;
    record.purpose = envelope.purpose;
    record.subject = envelope.subject;
    record.body_hash = envelope.body_hash;
    record.envelope = &envelope;
    record.body_pos = 16;
    return s_book_put (book, &record, false);
}

//  DELIVERED_TO, ACKNOWLEDGED, NACKED, EXPIRED_EVENT or STATUS_ACKNOWLEDGED
//  about seq ref (message tag), to recipient
static uint64_t
s_follow (s_book_t *book, Kp__Wire__EventKind event, uint64_t ref, uint32_t tag,
          const char *recipient, int64_t time_ms)
{
    uint8_t id [KP_ID_SIZE];
    s_message_id (tag, id);
    Kp__Wire__Record record = KP__WIRE__RECORD__INIT;
    record.event = event;
    record.message_id.data = id;
    record.message_id.len = sizeof id;
    record.type = KP__WIRE__MESSAGE_TYPE__SIGNAL;
    record.sender = (char *) "police-oost";
    record.sender_role = KP__WIRE__ROLE__POLICE;
    record.recipient = (char *) recipient;
    record.recipient_role = KP__WIRE__ROLE__VEILIG_THUIS;
    record.ref_seq = ref;
    record.time_ms = time_ms;
    if (event == KP__WIRE__EVENT_KIND__EXPIRED_EVENT)
        record.outcome = KP__WIRE__ERROR_CODE__EXPIRED;
    if (event == KP__WIRE__EVENT_KIND__NACKED)
        record.outcome = KP__WIRE__ERROR_CODE__UNEXPECTED;
    return s_book_put (book, &record, false);
}

//  A VOIDED record of seq ref (message tag, accepted by s_accept from
//  sender to recipient), as the broker writes it at start when a crash
//  kept the ACCEPTED record and lost the body
static uint64_t
s_void (s_book_t *book, uint64_t ref, uint32_t tag, const char *sender,
        const char *recipient)
{
    uint8_t id [KP_ID_SIZE], body_hash [32];
    s_message_id (tag, id);
    memset (body_hash, (tag & 0xff) ^ 0xff, sizeof body_hash);
    Kp__Wire__Record record = KP__WIRE__RECORD__INIT;
    record.event = KP__WIRE__EVENT_KIND__VOIDED;
    record.message_id.data = id;
    record.message_id.len = sizeof id;
    record.type = KP__WIRE__MESSAGE_TYPE__SIGNAL;
    record.sender = (char *) sender;
    record.sender_role = KP__WIRE__ROLE__POLICE;
    record.recipient = (char *) recipient;
    record.recipient_role = KP__WIRE__ROLE__VEILIG_THUIS;
    record.body_hash.data = body_hash;
    record.body_hash.len = sizeof body_hash;
    record.ref_seq = ref;
    record.outcome = KP__WIRE__ERROR_CODE__UNAVAILABLE;
    return s_book_put (book, &record, false);
}

static void
s_broker_event (s_book_t *book, Kp__Wire__EventKind event)
{
    Kp__Wire__Record record = KP__WIRE__RECORD__INIT;
    record.event = event;
    s_book_put (book, &record, false);
}

//  A history a correct broker could have written: registrations, a
//  delivered and acked message, a nacked one, an expired one, a refusal
static void
s_good_history (s_book_t *book)
{
    s_partner_event (book, KP__WIRE__EVENT_KIND__PARTNER_REGISTERED, "police-oost",
                     KP__WIRE__ROLE__POLICE);
    s_partner_event (book, KP__WIRE__EVENT_KIND__PARTNER_REGISTERED, "vt-twente",
                     KP__WIRE__ROLE__VEILIG_THUIS);
    s_partner_event (book, KP__WIRE__EVENT_KIND__PARTNER_REGISTERED, "lt-enschede",
                     KP__WIRE__ROLE__LOCAL_TEAM);
    s_broker_event (book, KP__WIRE__EVENT_KIND__BROKER_START);
    uint64_t first = s_accept (book, 1, "police-oost", "vt-twente");
    s_follow (book, KP__WIRE__EVENT_KIND__DELIVERED_TO, first, 1, "vt-twente", 0);
    s_follow (book, KP__WIRE__EVENT_KIND__DELIVERED_TO, first, 1, "vt-twente", 0);
    uint64_t acked = s_follow (book, KP__WIRE__EVENT_KIND__ACKNOWLEDGED, first, 1,
                               "vt-twente", 0);
    s_follow (book, KP__WIRE__EVENT_KIND__STATUS_ACKNOWLEDGED, acked, 1, "vt-twente", 0);
    uint64_t second = s_accept (book, 2, "police-oost", "vt-twente");
    s_follow (book, KP__WIRE__EVENT_KIND__DELIVERED_TO, second, 2, "vt-twente", 0);
    uint64_t nacked = s_follow (book, KP__WIRE__EVENT_KIND__NACKED, second, 2,
                                "vt-twente", 0);
    s_follow (book, KP__WIRE__EVENT_KIND__STATUS_ACKNOWLEDGED, nacked, 2, "vt-twente", 0);
    uint64_t third = s_accept (book, 3, "police-oost", "vt-twente");
    uint64_t expired = s_follow (book, KP__WIRE__EVENT_KIND__EXPIRED_EVENT, third, 3,
                                 "vt-twente", book->now + S_HOUR);
    book->now += S_HOUR;
    s_follow (book, KP__WIRE__EVENT_KIND__STATUS_ACKNOWLEDGED, expired, 3, "vt-twente",
              0);
    Kp__Wire__Record rejected = KP__WIRE__RECORD__INIT;
    rejected.event = KP__WIRE__EVENT_KIND__REJECTED;
    rejected.sender = (char *) "lt-enschede";
    rejected.outcome = KP__WIRE__ERROR_CODE__FORBIDDEN;
    s_book_put (book, &rejected, false);
    s_broker_event (book, KP__WIRE__EVENT_KIND__AUTH_FAILURE);
    s_broker_event (book, KP__WIRE__EVENT_KIND__BROKER_STOP);
    s_broker_event (book, KP__WIRE__EVENT_KIND__BROKER_START);
}

//  --------------------------------------------------------------------------
//  Synthetic logs: the rules

TestSuite (kp_audit_rules, .timeout = 60.);

Test (kp_audit_rules, verify_passes_on_a_correct_history)
{
    s_book_t *book = s_book_new (NULL);
    free (s_book_sign (book));          //  the empty tree
    s_good_history (book);
    free (s_book_sign (book));
    s_accept (book, 9, "police-oost", "vt-twente");     //  not yet signed
    s_book_close (book);
    char *args = zsys_sprintf ("verify --dir '%s' --checkpoint-key '%s'", book->data,
                               book->key_file);
    char *out = NULL, *err = NULL;
    int rc = s_audit (args, &out, &err);
    cr_expect_eq (rc, 0, "stderr: %s", err);
    const char *want = "ok: 21 records (4 messages), 2 checkpoints";
    cr_expect (out && strncmp (out, want, strlen (want)) == 0, "stdout: %s", out);
    cr_expect (out && strstr (out, "1 records after it not signed yet"), "%s", out);
    free (out);
    free (err);
    free (args);
    s_book_destroy (&book);
}

//  A history with one thing wrong, written after a correct one, and signed
//  (as a misbehaving broker would sign its own log)
typedef struct {
    const char *name;
    int problem;
    const char *expect;
} s_rule_case_t;

enum {
    S_DELIVERED_WRONG_PARTNER, S_ACK_WITHOUT_DELIVERY, S_ACCEPTED_FROM_REVOKED,
    S_ACCEPTED_FROM_STRANGER, S_ACCEPTED_TO_REVOKED, S_DELIVERED_NOT_ACCEPTED,
    S_DELIVERED_AFTER_ACK, S_DELIVERED_AFTER_EXPIRY, S_ACK_AFTER_NACK, S_SECOND_ACCEPTED,
    S_STATUS_ACK_OF_DELIVERY, S_STATUS_ACK_TWICE, S_TIME_BACK, S_SEQ_WRONG,
    S_UNDECODABLE, S_EXPIRED_EARLY, S_REJECTED_OK, S_REVOKED_STRANGER,
    S_DELIVERED_TO_REVOKED, S_UNKNOWN_EVENT, S_NEXT_ID_WRONG, S_AUDIT_ANSWERED_POLICE,
    S_OVERDUE_AFTER_ACK, S_OVERDUE_EARLY, S_OVERDUE_UNDUE, S_BODY_DELETED_EARLY,
    S_BODY_DELETED_TWICE, S_STATUS_WRONG, S_VOIDED_NOT_ACCEPTED, S_VOIDED_OTHER_ID,
    S_VOIDED_UNLIKE, S_VOIDED_DELIVERED, S_VOIDED_SETTLED, S_VOIDED_OUTCOME,
    S_VOIDED_TWICE, S_VOIDED_OLD_LIFE, S_DELIVERED_AFTER_VOIDED,
    S_BODY_DELETED_AFTER_VOIDED, S_ACCEPTED_BEFORE_START, S_STOP_BEFORE_START,
    S_VOIDED_AFTER_CLEAN_STOP,
    S_ACCEPTED_AGAIN_OTHER_VOIDED, S_ACCEPTED_THRICE
};

static const s_rule_case_t s_rule_cases [] = {
    { "delivered_to_wrong_partner", S_DELIVERED_WRONG_PARTNER,
      "DELIVERED_TO for seq 20 went to lt-enschede, but 20 is addressed to vt-twente" },
    { "ack_without_delivery", S_ACK_WITHOUT_DELIVERY,
      "ACKNOWLEDGED for seq 20, which was never delivered" },
    { "accepted_from_revoked", S_ACCEPTED_FROM_REVOKED,
      "ACCEPTED message 14141414141414141414141414141414 from police-oost, revoked at "
      "record 20" },
    { "accepted_from_stranger", S_ACCEPTED_FROM_STRANGER,
      "from police-west, who was never registered" },
    { "accepted_to_revoked", S_ACCEPTED_TO_REVOKED,
      "to vt-twente, revoked at record 20" },
    { "delivered_not_accepted", S_DELIVERED_NOT_ACCEPTED,
      "DELIVERED_TO for seq 3 but 3 is not ACCEPTED" },
    { "delivered_after_ack", S_DELIVERED_AFTER_ACK,
      "DELIVERED_TO for seq 4 after it was settled (ACKNOWLEDGED at record 7)" },
    { "delivered_after_expiry", S_DELIVERED_AFTER_EXPIRY,
      "DELIVERED_TO for seq 13 after its EXPIRED_EVENT at record 14" },
    { "ack_after_nack", S_ACK_AFTER_NACK,
      "ACKNOWLEDGED for seq 9 after it was settled (NACKED at record 11)" },
    { "second_accepted", S_SECOND_ACCEPTED,
      "a second ACCEPTED for message 01010101010101010101010101010101 (the first is "
      "record 4)" },
    { "status_ack_of_a_delivery", S_STATUS_ACK_OF_DELIVERY,
      "STATUS_ACKNOWLEDGED for seq 5, but 5 is not an ACKNOWLEDGED, NACKED, "
      "EXPIRED_EVENT or OVERDUE_EVENT record" },
    { "status_ack_twice", S_STATUS_ACK_TWICE,
      "STATUS_ACKNOWLEDGED for seq 7 again (it was acknowledged at record 8)" },
    { "time_goes_back", S_TIME_BACK, "time goes back" },
    { "seq_wrong", S_SEQ_WRONG, "its seq field is 21" },
    { "undecodable", S_UNDECODABLE, "does not decode as a Record" },
    { "expired_early", S_EXPIRED_EARLY, "EXPIRED_EVENT for seq 20 at" },
    { "rejected_ok", S_REJECTED_OK, "REJECTED with outcome OK" },
    { "revoked_stranger", S_REVOKED_STRANGER, "PARTNER_REVOKED for 'nobody'" },
    { "delivered_to_revoked", S_DELIVERED_TO_REVOKED,
      "DELIVERED_TO for seq 20 to vt-twente, revoked at record 21" },
    { "unknown_event", S_UNKNOWN_EVENT, "unknown event 99" },
    { "delivery_names_other_message", S_NEXT_ID_WRONG,
      "DELIVERED_TO for seq 20 names another message" },
    { "audit_answered_for_police", S_AUDIT_ANSWERED_POLICE,
      "record 21: AUDITOR_ACCESS answered for police-oost, whose role is police, not "
      "auditor" },
    { "overdue_after_ack", S_OVERDUE_AFTER_ACK,
      "OVERDUE_EVENT for seq 4 after it was settled (ACKNOWLEDGED at record 7)" },
    { "overdue_early", S_OVERDUE_EARLY, "record 21: OVERDUE_EVENT for seq 20 at" },
    { "overdue_without_due_time", S_OVERDUE_UNDUE, "which has no due time" },
    { "body_deleted_early", S_BODY_DELETED_EARLY,
      "record 21: BODY_DELETED for seq 20 before it was settled" },
    { "body_deleted_twice", S_BODY_DELETED_TWICE,
      "record 21: a second BODY_DELETED for seq 4" },
    { "status_names_the_wrong_status", S_STATUS_WRONG,
      "STATUS_ACKNOWLEDGED of status REFUSED for seq" },
    { "voided_not_accepted", S_VOIDED_NOT_ACCEPTED,
      "record 20: VOIDED for seq 5 but 5 is not ACCEPTED" },
    { "voided_names_other_message", S_VOIDED_OTHER_ID,
      "record 21: VOIDED for seq 20 names another message than 20 accepted "
      "(14141414141414141414141414141414)" },
    { "voided_unlike_its_accepted", S_VOIDED_UNLIKE,
      "record 21: VOIDED for seq 20: it differs from its ACCEPTED record in recipient" },
    { "voided_after_delivery", S_VOIDED_DELIVERED,
      "record 22: VOIDED for seq 20 after it was delivered (DELIVERED_TO before)" },
    { "voided_after_ack", S_VOIDED_SETTLED,
      "record 20: VOIDED for seq 4 after it was settled (ACKNOWLEDGED at record 7)" },
    { "voided_with_outcome_ok", S_VOIDED_OUTCOME,
      "record 21: VOIDED for seq 20 with outcome OK, not UNAVAILABLE" },
    { "voided_twice", S_VOIDED_TWICE,
      "record 22: a second VOIDED for seq 20 (the first is record 21)" },
    { "voided_of_an_earlier_life", S_VOIDED_OLD_LIFE,
      "record 22: VOIDED for seq 20, accepted before the BROKER_START at record 21" },
    { "delivered_after_voided", S_DELIVERED_AFTER_VOIDED,
      "record 23: DELIVERED_TO for seq 20, which was VOIDED at record 21" },
    { "body_deleted_after_voided", S_BODY_DELETED_AFTER_VOIDED,
      "record 22: BODY_DELETED for seq 20, which was VOIDED at record 21" },
    { "accepted_between_voided_and_start", S_ACCEPTED_BEFORE_START,
      "record 22: ACCEPTED after the VOIDED at record 21, before the next BROKER_START" },
    { "voided_after_a_clean_stop", S_VOIDED_AFTER_CLEAN_STOP,
      "record 22: VOIDED for seq 20 after the clean BROKER_STOP at record 21" },
    { "stop_between_voided_and_start", S_STOP_BEFORE_START,
      "record 22: BROKER_STOP after the VOIDED at record 21, before the next "
      "BROKER_START" },
    { "accepted_again_when_another_was_voided", S_ACCEPTED_AGAIN_OTHER_VOIDED,
      "record 24: a second ACCEPTED for message 14141414141414141414141414141414 (the "
      "first is record 20)" },
    { "accepted_again_after_its_resend", S_ACCEPTED_THRICE,
      "record 24: a second ACCEPTED for message 14141414141414141414141414141414 (the "
      "first is record 23)" },
};

//  Parameters are indices into a static table: Criterion runs each test
//  in another process, where only cr_malloc'd memory is shared
static void
s_free_indices (struct criterion_test_params *params)
{
    cr_free (params->params);
}

static struct criterion_test_params
s_indices (size_t count)
{
    size_t *indices = (size_t *) cr_malloc (count * sizeof (size_t));
    cr_assert_not_null (indices);
    for (size_t index = 0; index < count; index++)
        indices [index] = index;
    return cr_make_param_array (size_t, indices, count, s_free_indices);
}

ParameterizedTestParameters (kp_audit_rules, each_broken_rule_is_named)
{
    return s_indices (sizeof s_rule_cases / sizeof s_rule_cases [0]);
}

//  Append the one wrong thing (the correct history ends at record 19)
static void
s_break_rule (s_book_t *book, int problem)
{
    const Kp__Wire__EventKind delivered = KP__WIRE__EVENT_KIND__DELIVERED_TO;
    const Kp__Wire__EventKind acked = KP__WIRE__EVENT_KIND__ACKNOWLEDGED;
    switch (problem) {
        case S_DELIVERED_WRONG_PARTNER: {
            uint64_t seq = s_accept (book, 0x14, "police-oost", "vt-twente");
            s_follow (book, delivered, seq, 0x14, "lt-enschede", 0);
            break;
        }
        case S_ACK_WITHOUT_DELIVERY: {
            uint64_t seq = s_accept (book, 0x14, "police-oost", "vt-twente");
            s_follow (book, acked, seq, 0x14, "vt-twente", 0);
            break;
        }
        case S_ACCEPTED_FROM_REVOKED:
            s_partner_event (book, KP__WIRE__EVENT_KIND__PARTNER_REVOKED, "police-oost",
                             0);
            s_accept (book, 0x14, "police-oost", "vt-twente");
            break;
        case S_ACCEPTED_FROM_STRANGER:
            s_accept (book, 0x14, "police-west", "vt-twente");
            break;
        case S_ACCEPTED_TO_REVOKED:
            s_partner_event (book, KP__WIRE__EVENT_KIND__PARTNER_REVOKED, "vt-twente", 0);
            s_accept (book, 0x14, "police-oost", "vt-twente");
            break;
        case S_DELIVERED_NOT_ACCEPTED:
            s_follow (book, delivered, 3, 1, "vt-twente", 0);
            break;
        case S_DELIVERED_AFTER_ACK:
            s_follow (book, delivered, 4, 1, "vt-twente", 0);
            break;
        case S_DELIVERED_AFTER_EXPIRY:
            s_follow (book, delivered, 13, 3, "vt-twente", 0);
            break;
        case S_ACK_AFTER_NACK:
            s_follow (book, acked, 9, 2, "vt-twente", 0);
            break;
        case S_SECOND_ACCEPTED:
            s_accept (book, 1, "police-oost", "vt-twente");
            break;
        case S_STATUS_ACK_OF_DELIVERY:
            s_follow (book, KP__WIRE__EVENT_KIND__STATUS_ACKNOWLEDGED, 5, 1, "vt-twente",
                      0);
            break;
        case S_STATUS_ACK_TWICE:
            s_follow (book, KP__WIRE__EVENT_KIND__STATUS_ACKNOWLEDGED, 7, 1, "vt-twente",
                      0);
            break;
        case S_TIME_BACK:
            s_follow (book, KP__WIRE__EVENT_KIND__BROKER_STOP, 0, 0, "",
                      book->now - S_HOUR);
            break;
        case S_SEQ_WRONG: {
            Kp__Wire__Record record = KP__WIRE__RECORD__INIT;
            record.seq = 21;
            record.event = KP__WIRE__EVENT_KIND__BROKER_STOP;
            s_book_put (book, &record, true);
            break;
        }
        case S_UNDECODABLE: {
            uint8_t garbage [] = { 0xff, 0xff, 0xff, 0xff, 0x0f };
            s_book_raw (book, garbage, sizeof garbage);
            break;
        }
        case S_EXPIRED_EARLY: {
            uint64_t seq = s_accept (book, 0x14, "police-oost", "vt-twente");
            s_follow (book, KP__WIRE__EVENT_KIND__EXPIRED_EVENT, seq, 0x14, "vt-twente",
                      0);
            break;
        }
        case S_REJECTED_OK: {
            Kp__Wire__Record record = KP__WIRE__RECORD__INIT;
            record.event = KP__WIRE__EVENT_KIND__REJECTED;
            record.sender = (char *) "police-oost";
            s_book_put (book, &record, false);
            break;
        }
        case S_REVOKED_STRANGER:
            s_partner_event (book, KP__WIRE__EVENT_KIND__PARTNER_REVOKED, "nobody", 0);
            break;
        case S_DELIVERED_TO_REVOKED: {
            uint64_t seq = s_accept (book, 0x14, "police-oost", "vt-twente");
            s_partner_event (book, KP__WIRE__EVENT_KIND__PARTNER_REVOKED, "vt-twente", 0);
            s_follow (book, delivered, seq, 0x14, "vt-twente", 0);
            break;
        }
        case S_UNKNOWN_EVENT:
            s_broker_event (book, (Kp__Wire__EventKind) 99);
            break;
        case S_NEXT_ID_WRONG: {
            uint64_t seq = s_accept (book, 0x14, "police-oost", "vt-twente");
            s_follow (book, delivered, seq, 0x15, "vt-twente", 0);
            break;
        }
        case S_AUDIT_ANSWERED_POLICE: {
            //  Refused (FORBIDDEN) is fine; answered is not
            Kp__Wire__Record record = KP__WIRE__RECORD__INIT;
            record.event = KP__WIRE__EVENT_KIND__AUDITOR_ACCESS;
            record.sender = (char *) "police-oost";
            record.sender_role = KP__WIRE__ROLE__POLICE;
            record.purpose = (char *) "entries";
            record.outcome = KP__WIRE__ERROR_CODE__FORBIDDEN;
            s_book_put (book, &record, false);
            record.outcome = KP__WIRE__ERROR_CODE__OK;
            s_book_put (book, &record, false);
            break;
        }
        case S_OVERDUE_AFTER_ACK:
            s_follow (book, KP__WIRE__EVENT_KIND__OVERDUE_EVENT, 4, 1, "vt-twente", 0);
            break;
        case S_OVERDUE_EARLY: {
            book->due_in = S_HOUR;
            uint64_t seq = s_accept (book, 0x14, "police-oost", "vt-twente");
            s_follow (book, KP__WIRE__EVENT_KIND__OVERDUE_EVENT, seq, 0x14, "vt-twente",
                      0);
            break;
        }
        case S_OVERDUE_UNDUE: {
            uint64_t seq = s_accept (book, 0x14, "police-oost", "vt-twente");
            s_follow (book, KP__WIRE__EVENT_KIND__OVERDUE_EVENT, seq, 0x14, "vt-twente",
                      0);
            break;
        }
        case S_BODY_DELETED_EARLY: {
            uint64_t seq = s_accept (book, 0x14, "police-oost", "vt-twente");
            s_follow (book, KP__WIRE__EVENT_KIND__BODY_DELETED, seq, 0x14, "vt-twente",
                      0);
            break;
        }
        case S_BODY_DELETED_TWICE:
            s_follow (book, KP__WIRE__EVENT_KIND__BODY_DELETED, 4, 1, "vt-twente", 0);
            s_follow (book, KP__WIRE__EVENT_KIND__BODY_DELETED, 4, 1, "vt-twente", 0);
            break;
        case S_STATUS_WRONG: {
            uint64_t seq = s_accept (book, 0x14, "police-oost", "vt-twente");
            s_follow (book, delivered, seq, 0x14, "vt-twente", 0);
            uint64_t settled = s_follow (book, acked, seq, 0x14, "vt-twente", 0);
            Kp__Wire__Record record = KP__WIRE__RECORD__INIT;
            record.event = KP__WIRE__EVENT_KIND__STATUS_ACKNOWLEDGED;
            record.ref_seq = settled;
            record.status = KP__WIRE__STATUS_KIND__REFUSED;
            s_book_put (book, &record, false);
            break;
        }
        //  The good history ends with a BROKER_START (record 19); a crash
        //  after record 20 lost its body, found at the next start
        case S_VOIDED_NOT_ACCEPTED:
            s_void (book, 5, 1, "police-oost", "vt-twente");
            break;
        case S_VOIDED_OTHER_ID: {
            uint64_t seq = s_accept (book, 0x14, "police-oost", "vt-twente");
            s_void (book, seq, 0x15, "police-oost", "vt-twente");
            break;
        }
        case S_VOIDED_UNLIKE: {
            uint64_t seq = s_accept (book, 0x14, "police-oost", "vt-twente");
            s_void (book, seq, 0x14, "police-oost", "lt-enschede");
            break;
        }
        case S_VOIDED_DELIVERED: {
            uint64_t seq = s_accept (book, 0x14, "police-oost", "vt-twente");
            s_follow (book, delivered, seq, 0x14, "vt-twente", 0);
            s_void (book, seq, 0x14, "police-oost", "vt-twente");
            break;
        }
        case S_VOIDED_SETTLED: {
            //  Record 4 of an earlier life, delivered and acked
            s_void (book, 4, 1, "police-oost", "vt-twente");
            break;
        }
        case S_VOIDED_OUTCOME: {
            uint64_t seq = s_accept (book, 0x14, "police-oost", "vt-twente");
            uint8_t id [KP_ID_SIZE];
            s_message_id (0x14, id);
            Kp__Wire__Record record = KP__WIRE__RECORD__INIT;
            record.event = KP__WIRE__EVENT_KIND__VOIDED;
            record.message_id.data = id;
            record.message_id.len = sizeof id;
            record.ref_seq = seq;
            s_book_put (book, &record, false);
            break;
        }
        case S_VOIDED_TWICE: {
            uint64_t seq = s_accept (book, 0x14, "police-oost", "vt-twente");
            s_void (book, seq, 0x14, "police-oost", "vt-twente");
            s_void (book, seq, 0x14, "police-oost", "vt-twente");
            break;
        }
        case S_VOIDED_OLD_LIFE: {
            //  Started once with its body on disk: that body stays
            uint64_t seq = s_accept (book, 0x14, "police-oost", "vt-twente");
            s_broker_event (book, KP__WIRE__EVENT_KIND__BROKER_START);
            s_void (book, seq, 0x14, "police-oost", "vt-twente");
            break;
        }
        case S_DELIVERED_AFTER_VOIDED: {
            uint64_t seq = s_accept (book, 0x14, "police-oost", "vt-twente");
            s_void (book, seq, 0x14, "police-oost", "vt-twente");
            s_broker_event (book, KP__WIRE__EVENT_KIND__BROKER_START);
            s_follow (book, delivered, seq, 0x14, "vt-twente", 0);
            break;
        }
        case S_BODY_DELETED_AFTER_VOIDED: {
            uint64_t seq = s_accept (book, 0x14, "police-oost", "vt-twente");
            s_void (book, seq, 0x14, "police-oost", "vt-twente");
            s_follow (book, KP__WIRE__EVENT_KIND__BODY_DELETED, seq, 0x14, "vt-twente",
                      0);
            break;
        }
        case S_ACCEPTED_BEFORE_START: {
            uint64_t seq = s_accept (book, 0x14, "police-oost", "vt-twente");
            s_void (book, seq, 0x14, "police-oost", "vt-twente");
            s_accept (book, 0x15, "police-oost", "vt-twente");
            break;
        }
        case S_VOIDED_AFTER_CLEAN_STOP: {
            //  A clean stop synced the body: nothing can void it after
            uint64_t seq = s_accept (book, 0x14, "police-oost", "vt-twente");
            s_broker_event (book, KP__WIRE__EVENT_KIND__BROKER_STOP);
            s_void (book, seq, 0x14, "police-oost", "vt-twente");
            break;
        }
        case S_STOP_BEFORE_START: {
            uint64_t seq = s_accept (book, 0x14, "police-oost", "vt-twente");
            s_void (book, seq, 0x14, "police-oost", "vt-twente");
            s_broker_event (book, KP__WIRE__EVENT_KIND__BROKER_STOP);
            break;
        }
        case S_ACCEPTED_AGAIN_OTHER_VOIDED: {
            //  0x15 was voided, not 0x14: 0x14 stays accepted
            s_accept (book, 0x14, "police-oost", "vt-twente");
            uint64_t seq = s_accept (book, 0x15, "police-oost", "vt-twente");
            s_void (book, seq, 0x15, "police-oost", "vt-twente");
            s_broker_event (book, KP__WIRE__EVENT_KIND__BROKER_START);
            s_accept (book, 0x14, "police-oost", "vt-twente");
            break;
        }
        case S_ACCEPTED_THRICE: {
            //  Voided and sent again is fine; once more is a duplicate
            uint64_t seq = s_accept (book, 0x14, "police-oost", "vt-twente");
            s_void (book, seq, 0x14, "police-oost", "vt-twente");
            s_broker_event (book, KP__WIRE__EVENT_KIND__BROKER_START);
            s_accept (book, 0x14, "police-oost", "vt-twente");
            s_accept (book, 0x14, "police-oost", "vt-twente");
            break;
        }
        default:
            cr_assert_fail ("unknown case %d", problem);
    }
}

ParameterizedTest (size_t *index, kp_audit_rules, each_broken_rule_is_named)
{
    const s_rule_case_t *rule = &s_rule_cases [*index];
    s_book_t *book = s_book_new (NULL);
    s_good_history (book);
    cr_assert_eq (book->edge.size, 20);
    free (s_book_sign (book));
    s_break_rule (book, rule->problem);
    s_book_put (book, &(Kp__Wire__Record) KP__WIRE__RECORD__INIT, false);
    free (s_book_sign (book));
    s_book_close (book);
    char *args = zsys_sprintf ("verify --dir '%s' --checkpoint-key '%s'", book->data,
                               book->key_file);
    char *err = NULL;
    int rc = s_audit (args, NULL, &err);
    s_expect_failure (rc, 1, err, rule->expect, NULL);
    //  The broker signed it: the finding is the record, not a changed log
    cr_expect (err && !strstr (err, "does not match"), "%s: %s", rule->name, err);
    free (err);
    free (args);
    s_book_destroy (&book);
}

Test (kp_audit_rules, a_time_step_back_within_the_tolerance_passes)
{
    s_book_t *book = s_book_new (NULL);
    s_good_history (book);
    s_follow (book, KP__WIRE__EVENT_KIND__BROKER_START, 0, 0, "", book->now - 30000);
    free (s_book_sign (book));
    s_book_close (book);
    char *args = zsys_sprintf ("verify --dir '%s' --checkpoint-key '%s'", book->data,
                               book->key_file);
    char *err = NULL;
    cr_expect_eq (s_audit (args, NULL, &err), 0, "%s", err);
    free (err);
    free (args);
    args = zsys_sprintf ("verify --dir '%s' --checkpoint-key '%s' --tolerance 10",
                         book->data, book->key_file);
    int rc = s_audit (args, NULL, &err);
    s_expect_failure (rc, 1, err, "record 20: time goes back", "tolerance of 10 s", NULL);
    free (err);
    free (args);
    s_book_destroy (&book);
}

//  A school notification due at 07:30 that was overdue, then acked (its
//  DELIVERED and OVERDUE statuses acked by the sender, with their status
//  named), then its body deleted; and one expired and deleted
Test (kp_audit_rules, overdue_statuses_and_deleted_bodies_pass)
{
    s_book_t *book = s_book_new (NULL);
    s_good_history (book);
    book->due_in = 60000;
    uint64_t seq = s_accept (book, 0x30, "police-oost", "vt-twente");
    s_follow (book, KP__WIRE__EVENT_KIND__DELIVERED_TO, seq, 0x30, "vt-twente", 0);
    uint64_t overdue = s_follow (book, KP__WIRE__EVENT_KIND__OVERDUE_EVENT, seq, 0x30,
                                 "vt-twente", book->now + 60000);
    book->now += 60000;
    uint64_t acked = s_follow (book, KP__WIRE__EVENT_KIND__ACKNOWLEDGED, seq, 0x30,
                               "vt-twente", 0);
    Kp__Wire__Record status = KP__WIRE__RECORD__INIT;
    status.event = KP__WIRE__EVENT_KIND__STATUS_ACKNOWLEDGED;
    status.ref_seq = overdue;
    status.status = KP__WIRE__STATUS_KIND__OVERDUE;
    s_book_put (book, &status, false);
    Kp__Wire__Record delivered = KP__WIRE__RECORD__INIT;
    delivered.event = KP__WIRE__EVENT_KIND__STATUS_ACKNOWLEDGED;
    delivered.ref_seq = acked;
    delivered.status = KP__WIRE__STATUS_KIND__DELIVERED;
    s_book_put (book, &delivered, false);
    s_follow (book, KP__WIRE__EVENT_KIND__BODY_DELETED, seq, 0x30, "vt-twente", 0);
    s_follow (book, KP__WIRE__EVENT_KIND__BODY_DELETED, 13, 3, "vt-twente", 0);
    free (s_book_sign (book));
    s_book_close (book);
    char *args = zsys_sprintf ("verify --dir '%s' --checkpoint-key '%s'", book->data,
                               book->key_file);
    char *err = NULL;
    cr_expect_eq (s_audit (args, NULL, &err), 0, "%s", err);
    free (err);
    free (args);
    s_book_destroy (&book);
}

//  A crash that kept two ACCEPTED records and lost their bodies: the next
//  start voids both (registering a partner between), the sender sends one
//  again under its id, and it is delivered and acked. A crash during the
//  next start leaves a VOIDED as the last record. All correct; replay
//  shows the VOIDED records, prove proves the resend and refuses the one
//  voided and not sent again.
Test (kp_audit_rules, a_voided_message_sent_again_passes)
{
    s_book_t *book = s_book_new (NULL);
    s_good_history (book);
    uint64_t lost = s_accept (book, 0x20, "police-oost", "vt-twente");
    uint64_t gone = s_accept (book, 0x21, "police-oost", "vt-twente");
    //  The crash; then the start
    s_void (book, lost, 0x20, "police-oost", "vt-twente");
    s_partner_event (book, KP__WIRE__EVENT_KIND__PARTNER_REGISTERED, "lp-enschede",
                     KP__WIRE__ROLE__LEERPLICHT);
    s_void (book, gone, 0x21, "police-oost", "vt-twente");
    s_broker_event (book, KP__WIRE__EVENT_KIND__BROKER_START);
    uint64_t again = s_accept (book, 0x20, "police-oost", "vt-twente");
    s_follow (book, KP__WIRE__EVENT_KIND__DELIVERED_TO, again, 0x20, "vt-twente", 0);
    uint64_t acked = s_follow (book, KP__WIRE__EVENT_KIND__ACKNOWLEDGED, again, 0x20,
                               "vt-twente", 0);
    s_follow (book, KP__WIRE__EVENT_KIND__STATUS_ACKNOWLEDGED, acked, 0x20, "vt-twente",
              0);
    //  Another crash, and one during the start that voided its message
    uint64_t last = s_accept (book, 0x22, "police-oost", "vt-twente");
    s_void (book, last, 0x22, "police-oost", "vt-twente");
    cr_assert_eq (book->edge.size, 32);
    free (s_book_sign (book));
    s_book_close (book);

    char *args = zsys_sprintf ("verify --dir '%s' --checkpoint-key '%s'", book->data,
                               book->key_file);
    char *out = NULL, *err = NULL;
    int rc = s_audit (args, &out, &err);
    cr_expect_eq (rc, 0, "stderr: %s", err);
    const char *want = "ok: 32 records (4 messages, 3 voided), 1 checkpoints";
    cr_expect (out && strncmp (out, want, strlen (want)) == 0, "stdout: %s", out);
    free (out);
    free (err);
    free (args);

    args = zsys_sprintf ("replay --dir '%s' --event voided", book->data);
    rc = s_audit (args, &out, &err);
    cr_expect_eq (rc, 0, "stderr: %s", err);
    cr_expect_eq (s_lines (out), 3, "%s", out);
    cr_expect (out && strstr (out, "{\"seq\":22,\"event\":\"VOIDED\""), "%s", out);
    cr_expect (out && strstr (out, "\"ref_seq\":20"), "%s", out);
    cr_expect (out && strstr (out, "\"outcome\":\"UNAVAILABLE\""), "%s", out);
    free (out);
    free (err);
    free (args);

    //  The resend is the message that stands
    args = zsys_sprintf ("prove --dir '%s' --checkpoint-key '%s' "
                         "--id 20202020202020202020202020202020", book->data,
                         book->key_file);
    rc = s_audit (args, &out, &err);
    cr_expect_eq (rc, 0, "stderr: %s", err);
    cr_expect (out && strstr (out, "\"index\":26,"), "%s", out);
    free (out);
    free (err);
    free (args);
    args = zsys_sprintf ("prove --dir '%s' --checkpoint-key '%s' "
                         "--id 21212121212121212121212121212121", book->data,
                         book->key_file);
    rc = s_audit (args, &out, &err);
    s_expect_failure (rc, 1, err, "message 21212121212121212121212121212121 was VOIDED "
                      "at record 24", "ACCEPTED record 21", NULL);
    cr_expect (!out || !*out, "%s", out);
    free (out);
    free (err);
    free (args);
    s_book_destroy (&book);
}

Test (kp_audit_rules, checkpoints_are_required_and_checked)
{
    s_book_t *book = s_book_new (NULL);
    s_good_history (book);
    s_book_close (book);
    char *args = zsys_sprintf ("verify --dir '%s' --checkpoint-key '%s'", book->data,
                               book->key_file);
    char *err = NULL;
    int rc = s_audit (args, NULL, &err);
    s_expect_failure (rc, 1, err, "holds no checkpoint", NULL);
    free (err);
    free (args);

    //  Signed by another key
    s_book_t *other = s_book_new (NULL);
    s_good_history (other);
    free (s_book_sign (other));
    s_book_close (other);
    args = zsys_sprintf ("verify --dir '%s' --checkpoint-key '%s'", other->data,
                         book->key_file);
    rc = s_audit (args, NULL, &err);
    s_expect_failure (rc, 1, err, "checkpoints record 0: signature does not verify",
                      NULL);
    free (err);
    free (args);

    //  A key file that is not a key; a directory without a log
    char *bad_key = s_write_text (other->dir, "bad.pub", "not a key\n");
    args = zsys_sprintf ("verify --dir '%s' --checkpoint-key '%s'", other->data, bad_key);
    free (bad_key);
    rc = s_audit (args, NULL, &err);
    s_expect_failure (rc, 1, err, "is not 64 hex digits", NULL);
    free (err);
    free (args);
    args = zsys_sprintf ("verify --dir '%s' --checkpoint-key '%s'", other->dir,
                         other->key_file);
    rc = s_audit (args, NULL, &err);
    s_expect_failure (rc, 1, err, "is not a log directory", NULL);
    free (err);
    free (args);
    s_book_destroy (&other);
    s_book_destroy (&book);
}

Test (kp_audit_rules, checkpoints_must_grow_and_fit_the_log)
{
    s_book_t *book = s_book_new (NULL);
    s_good_history (book);
    char *note = s_book_sign (book);
    uint64_t seq, pos;
    cr_assert_eq (kp_log_append (book->checkpoints, note, strlen (note), &seq, &pos), 0);
    s_book_close (book);
    char *args = zsys_sprintf ("verify --dir '%s' --checkpoint-key '%s'", book->data,
                               book->key_file);
    char *err = NULL;
    int rc = s_audit (args, NULL, &err);
    s_expect_failure (rc, 1, err, "checkpoints record 1: size 20 is not larger", NULL);
    free (err);
    free (args);
    free (note);
    s_book_destroy (&book);

    //  A checkpoint over more records than the log has: records were cut
    book = s_book_new (NULL);
    s_good_history (book);
    free (s_book_sign (book));
    s_book_close (book);
    char *segment = zsys_sprintf ("%s/log/00000000000000000000.kplog", book->data);
    struct stat info;
    cr_assert_eq (stat (segment, &info), 0);
    //  Cut the last record whole: it is a STATUS... no, the REJECTED one
    kp_log_status_t status;
    char *log_path = zsys_sprintf ("%s/log", book->data);
    kp_log_t *log = kp_log_open (log_path, 1 << 20, false, &status);
    cr_assert_not_null (log);
    uint64_t last;
    cr_assert_eq (kp_log_seek (log, 19, &last), 0);
    kp_log_destroy (&log);
    cr_assert_eq (truncate (segment, (off_t) (last & 0xffffffffffULL)), 0);
    args = zsys_sprintf ("verify --dir '%s' --checkpoint-key '%s'", book->data,
                         book->key_file);
    rc = s_audit (args, NULL, &err);
    s_expect_failure (rc, 1, err, "covers more records than the log holds (19)", NULL);
    free (err);
    free (args);
    free (log_path);
    free (segment);
    s_book_destroy (&book);
}

//  --------------------------------------------------------------------------
//  Speed: a generated log of 200,000 records, messages of four records each
//  (accepted, delivered, acknowledged, status acknowledged), a checkpoint
//  every 10,000 records. The rate goes to the test's log; the target is
//  500,000 records/s in a plain build (SHA-256 bound), not asserted here
//  because sanitizers and busy machines make it meaningless.

Test (kp_audit_rules, verify_speed_on_200000_records, .timeout = 300.)
{
    s_book_t *book = s_book_new (NULL);
    s_partner_event (book, KP__WIRE__EVENT_KIND__PARTNER_REGISTERED, "police-oost",
                     KP__WIRE__ROLE__POLICE);
    s_partner_event (book, KP__WIRE__EVENT_KIND__PARTNER_REGISTERED, "vt-twente",
                     KP__WIRE__ROLE__VEILIG_THUIS);
    uint32_t message = 1000;
    while (book->edge.size + 4 <= 200000) {
        uint64_t seq = s_accept (book, message, "police-oost", "vt-twente");
        s_follow (book, KP__WIRE__EVENT_KIND__DELIVERED_TO, seq, message, "vt-twente", 0);
        uint64_t acked = s_follow (book, KP__WIRE__EVENT_KIND__ACKNOWLEDGED, seq, message,
                                   "vt-twente", 0);
        s_follow (book, KP__WIRE__EVENT_KIND__STATUS_ACKNOWLEDGED, acked, message,
                  "vt-twente", 0);
        message++;
        if (book->edge.size % 10000 < 4)
            free (s_book_sign (book));
    }
    free (s_book_sign (book));
    s_book_close (book);
    char *args = zsys_sprintf ("verify --dir '%s' --checkpoint-key '%s'", book->data,
                               book->key_file);
    char *out = NULL, *err = NULL;
    int rc = s_audit (args, &out, &err);
    cr_expect_eq (rc, 0, "stderr: %s", err);
    cr_expect (out && strstr (out, "ok: 199998 records (49999 messages)"), "%s", out);
    const char *rate = out? strstr (out, " s, "): NULL;
    cr_log_info ("kp-audit verify of 199998 records:%s", rate? rate + 3: " (no rate)");
    free (out);
    free (err);
    free (args);
    s_book_destroy (&book);
}

//  --------------------------------------------------------------------------
//  A real broker, with an auditor registered before it starts

static kp_test_region_t *s_region;

static void
s_region_start (void)
{
    s_region = kp_test_region_new ();
    const char *no_addresses [] = { NULL };
    cr_assert_eq (kp_region_add (s_region->region, S_AUDITOR, KP__WIRE__ROLE__AUDITOR,
                                 "Inspectie", no_addresses, false, NULL), 0);
    cr_assert_eq (kp_test_broker_start (s_region, NULL), 0, "broker did not start");
}

static void
s_region_stop (void)
{
    kp_test_region_destroy (&s_region);
}

//  Stop the broker cleanly (it signs a last checkpoint) and check it did
static void
s_broker_stop (void)
{
    int status = kp_test_broker_stop (s_region, SIGTERM);
    char *log_path = zsys_sprintf ("%s/broker.log", s_region->dir);
    FILE *file = fopen (log_path, "r");
    char line [1024];
    bool sanitizer = false;
    while (file && fgets (line, sizeof line, file))
        if (strstr (line, "Sanitizer") || strstr (line, "runtime error"))
            sanitizer = true;
    if (file)
        fclose (file);
    cr_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0 && !sanitizer,
               "ketenpostd did not stop cleanly (status %d); see %s", status, log_path);
    free (log_path);
}

//  The client flags for partner id
static char *
s_client_flags (const char *id)
{
    char *cert = kp_test_cert (s_region, id);
    char *flags = zsys_sprintf ("--broker '%s' --broker-cert '%s' --cert '%s'",
                                s_region->endpoint, s_region->broker_cert, cert);
    free (cert);
    return flags;
}

//  count signals police-oost -> vt-twente, the even ones about S_SUBJECT_HEX,
//  the odd ones about S_OTHER_HEX; each acked by vt-twente, each status acked
//  by police-oost; and one refused submit. Fills ids and seqs.
static void
s_traffic (int count, char ids [][33], uint64_t *seqs)
{
    kp_client_t *police = kp_test_client (s_region, "police-oost");
    kp_client_t *vt = kp_test_client (s_region, "vt-twente");
    cr_assert_eq (kp_client_receive (vt, 16), 0);
    cr_assert_eq (kp_client_receive (police, 16), 0);
    for (int index = 0; index < count; index++) {
        kp_msg_t *msg = kp_msg_new ("signal", "municipality:GM0153");
        cr_assert_eq (kp_msg_set_subject (msg, index % 2? S_OTHER_HEX: S_SUBJECT_HEX), 0);
        kp_msg_set_purpose (msg, "JW-1.2");
        cr_assert_eq (kp_msg_set_body_json (msg, S_SIGNAL_BODY), 0, "%s",
                      kp_msg_error (msg));
        kp_receipt_t receipt;
        cr_assert_eq (kp_client_send (police, msg, &receipt), 0, "%s: %s",
                      receipt.error, receipt.reason);
        snprintf (ids [index], 33, "%s", receipt.id);
        seqs [index] = receipt.seq;
        kp_msg_destroy (&msg);
    }
    //  Delivered and acked, then the statuses acked
    kp_client_t *readers [2] = { vt, police };
    for (int reader = 0; reader < 2; reader++) {
        int handled = 0;
        int64_t deadline = kp_mono_ms () + S_WAIT;
        while (handled < count && kp_mono_ms () < deadline) {
            kp_msg_t *msg = kp_client_recv (readers [reader],
                                            (int) (deadline - kp_mono_ms ()));
            if (!msg)
                continue;
            cr_assert_eq (kp_msg_is_status (msg), reader == 1);
            cr_assert_eq (kp_client_ack (readers [reader], msg), 0);
            kp_msg_destroy (&msg);
            handled++;
        }
        cr_assert_eq (handled, count, "only %d of %d arrived", handled, count);
    }
    //  A school may not send a referral: refused (by the directory lookup the
    //  library makes first, or by the submit: a REJECTED record)
    kp_client_t *school = kp_test_client (s_region, "school-12ab00");
    kp_msg_t *msg = kp_msg_new ("referral", "municipality:GM0153");
    cr_assert_eq (kp_msg_set_body_json (msg, S_REFERRAL_BODY), 0, "%s",
                  kp_msg_error (msg));
    kp_receipt_t receipt;
    cr_assert_eq (kp_client_send (school, msg, &receipt), -1);
    cr_assert_str_eq (receipt.error, "FORBIDDEN");
    kp_msg_destroy (&msg);
    kp_client_destroy (&school);
    kp_client_destroy (&police);
    kp_client_destroy (&vt);
}

//  Send one message as client; returns its id (caller frees)
static char *
s_send (kp_client_t *client, const char *type, const char *to, const char *body,
        const char *reference)
{
    kp_msg_t *msg = kp_msg_new (type, to);
    cr_assert_not_null (msg);
    if (reference)
        cr_assert_eq (kp_msg_set_reference (msg, reference), 0);
    cr_assert_eq (kp_msg_set_body_json (msg, body), 0, "%s", kp_msg_error (msg));
    kp_receipt_t receipt;
    cr_assert_eq (kp_client_send (client, msg, &receipt), 0, "%s %s: %s: %s", type, to,
                  receipt.error, receipt.reason);
    kp_msg_destroy (&msg);
    return strdup (receipt.id);
}

//  Receive the message id (acking whatever else arrives first) and ack it
static void
s_receive (kp_client_t *client, const char *id)
{
    int64_t deadline = kp_mono_ms () + S_WAIT;
    while (kp_mono_ms () < deadline) {
        kp_msg_t *msg = kp_client_recv (client, (int) (deadline - kp_mono_ms ()));
        if (!msg)
            continue;
        bool found = !kp_msg_is_status (msg) && streq (kp_msg_id (msg), id);
        cr_assert_eq (kp_client_ack (client, msg), 0);
        kp_msg_destroy (&msg);
        if (found)
            return;
    }
    cr_assert_fail ("message %s did not arrive", id);
}

//  Tomorrow (UTC) as YYYY-MM-DD: a school day whose 07:30 due time and
//  end lie ahead whenever the test runs (the library derives the expiry
//  from it, and the broker refuses a school day that is over)
static void
s_school_day (char *text)
{
    time_t tomorrow = time (NULL) + 24 * 3600;
    struct tm parts;
    cr_assert_not_null (gmtime_r (&tomorrow, &parts));
    cr_assert_eq (strftime (text, 11, "%Y-%m-%d", &parts), 10);
}

//  Handle with Care: police -> leerplicht -> school, who acks and sends its
//  read receipt; the broker then erases the notification's body (and logs
//  BODY_DELETED)
static void
s_school_flow (void)
{
    char day [11];
    s_school_day (day);
    char *request_body = zsys_sprintf (S_REQUEST_BODY, day);
    char *notification_body = zsys_sprintf (S_NOTIFICATION_BODY, day);
    kp_client_t *police = kp_test_client (s_region, "police-oost");
    kp_client_t *leerplicht = kp_test_client (s_region, "lp-enschede");
    kp_client_t *school = kp_test_client (s_region, "school-12ab00");
    cr_assert_eq (kp_client_receive (leerplicht, 16), 0);
    cr_assert_eq (kp_client_receive (school, 16), 0);
    char *request = s_send (police, "school_notification", "municipality:GM0153",
                            request_body, NULL);
    s_receive (leerplicht, request);
    char *notification = s_send (leerplicht, "school_notification", "school:12AB00",
                                 notification_body, request);
    s_receive (school, notification);
    char *read = s_send (school, "feedback", "partner:lp-enschede",
                         "{\"status\":\"READ\"}", notification);
    s_receive (leerplicht, read);
    free (read);
    free (notification);
    free (request);
    free (notification_body);
    free (request_body);
    kp_client_destroy (&school);
    kp_client_destroy (&leerplicht);
    kp_client_destroy (&police);
}

//  --------------------------------------------------------------------------
//  Logs in memory, to damage and write back with valid frames

typedef struct {
    uint8_t *data;
    size_t size;
} s_blob_t;

typedef struct {
    s_blob_t *items;
    size_t count;
    size_t limit;
} s_blobs_t;

static void
s_blobs_add (s_blobs_t *self, const uint8_t *data, size_t size)
{
    if (self->count == self->limit) {
        self->limit = self->limit? self->limit * 2: 64;
        self->items = (s_blob_t *) realloc (self->items, self->limit * sizeof (s_blob_t));
        cr_assert_not_null (self->items);
    }
    s_blob_t *blob = &self->items [self->count++];
    blob->data = (uint8_t *) malloc (size);
    memcpy (blob->data, data, size);
    blob->size = size;
}

static int
s_blobs_visit (const uint8_t *data, size_t size, uint64_t seq, uint64_t pos, void *arg)
{
    (void) seq;
    (void) pos;
    s_blobs_add ((s_blobs_t *) arg, data, size);
    return 0;
}

//  Every record of dir/name
static s_blobs_t *
s_blobs_load (const char *dir, const char *name)
{
    s_blobs_t *self = (s_blobs_t *) zmalloc (sizeof (s_blobs_t));
    kp_log_t *log = s_log_new (dir, name);
    cr_assert_eq (kp_log_replay (log, s_blobs_visit, self), 0);
    kp_log_destroy (&log);
    return self;
}

static void
s_blobs_destroy (s_blobs_t **self_p)
{
    s_blobs_t *self = *self_p;
    if (!self)
        return;
    for (size_t index = 0; index < self->count; index++)
        free (self->items [index].data);
    free (self->items);
    free (self);
    *self_p = NULL;
}

//  Write the records as a new log dir/name (which must not exist)
static void
s_blobs_write (s_blobs_t *self, const char *dir, const char *name)
{
    char *path = zsys_sprintf ("%s/%s", dir, name);
    cr_assert_neq (access (path, F_OK), 0, "%s exists", path);
    free (path);
    kp_log_t *log = s_log_new (dir, name);
    for (size_t index = 0; index < self->count; index++) {
        uint64_t seq, pos;
        cr_assert_eq (kp_log_append (log, self->items [index].data,
                                     self->items [index].size, &seq, &pos), 0);
    }
    cr_assert_eq (kp_log_sync (log), 0);
    kp_log_destroy (&log);
}

//  Decode record index; caller frees with kp__wire__record__free_unpacked
static Kp__Wire__Record *
s_blobs_record (s_blobs_t *self, size_t index)
{
    cr_assert_lt (index, self->count);
    Kp__Wire__Record *record = kp__wire__record__unpack (NULL, self->items [index].size,
                                                         self->items [index].data);
    cr_assert_not_null (record);
    return record;
}

//  Replace record index by record, packed
static void
s_blobs_set (s_blobs_t *self, size_t index, const Kp__Wire__Record *record)
{
    size_t size = kp__wire__record__get_packed_size (record);
    s_blob_t *blob = &self->items [index];
    blob->data = (uint8_t *) realloc (blob->data, size);
    kp__wire__record__pack (record, blob->data);
    blob->size = size;
}

//  The index of the nth (from 0) record with event; asserts there is one
static size_t
s_blobs_find (s_blobs_t *self, Kp__Wire__EventKind event, size_t nth)
{
    for (size_t index = 0; index < self->count; index++) {
        Kp__Wire__Record *record = s_blobs_record (self, index);
        bool match = record->event == event;
        kp__wire__record__free_unpacked (record, NULL);
        if (match && nth-- == 0)
            return index;
    }
    cr_assert_fail ("no record with event %d", event);
    return 0;
}

//  Sign, with the region's real key, a checkpoint over the whole log of
//  data (if the latest does not cover it already, or if fresh is set: then
//  the checkpoints are replaced). Returns the note covering it all.
static char *
s_cover (const char *data, bool fresh)
{
    char *checkpoints_path = zsys_sprintf ("%s/checkpoints", data);
    if (fresh)
        kp_test_rmtree (checkpoints_path);
    free (checkpoints_path);
    s_blobs_t *records = s_blobs_load (data, "log");
    s_blobs_t *notes = s_blobs_load (data, "checkpoints");
    kp_merkle_edge_t edge;
    kp_merkle_edge_init (&edge);
    for (size_t index = 0; index < records->count; index++) {
        uint8_t leaf [KP_MERKLE_HASH];
        kp_merkle_leaf_hash (records->items [index].data, records->items [index].size,
                             leaf);
        kp_merkle_edge_push (&edge, leaf);
    }
    uint8_t root [KP_MERKLE_HASH];
    kp_merkle_edge_root (&edge, root);
    const s_blob_t *last = notes->count? &notes->items [notes->count - 1]: NULL;
    char *latest = last? strndup ((const char *) last->data, last->size): NULL;
    //  The size is the second line
    uint64_t latest_size = latest? strtoull (strchr (latest, '\n') + 1, NULL, 10): 0;
    if (!latest || latest_size < records->count) {
        uint8_t *secret = (uint8_t *) sodium_malloc (KP_CHECKPOINT_SECRET);
        cr_assert_eq (kp_checkpoint_load_secret (s_region->region, secret), 0);
        free (latest);
        latest = kp_checkpoint_sign (S_ORIGIN, records->count, root, S_ORIGIN, secret);
        sodium_free (secret);
        cr_assert_not_null (latest);
        kp_log_t *log = s_log_new (data, "checkpoints");
        uint64_t seq, pos;
        cr_assert_eq (kp_log_append (log, latest, strlen (latest), &seq, &pos), 0);
        cr_assert_eq (kp_log_sync (log), 0);
        kp_log_destroy (&log);
    }
    s_blobs_destroy (&notes);
    s_blobs_destroy (&records);
    return latest;
}

//  Run a command line; asserts it succeeds
static void
s_shell (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *command = zsys_vprintf (format, args);
    va_end (args);
    char *err = NULL;
    int rc = kp_test_run (command, S_RUN_TIMEOUT, NULL, &err);
    cr_assert_eq (rc, 0, "%s: %s", command, err);
    free (err);
    free (command);
}

//  verify --dir dir [extra]; returns the exit code, stdout and stderr
static int
s_verify_dir (const char *dir, const char *extra, char **out_p, char **err_p)
{
    char *key = zsys_sprintf ("%s/checkpoint.pub", s_region->region);
    char *args = zsys_sprintf ("verify --dir '%s' --checkpoint-key '%s' %s", dir, key,
                               extra? extra: "");
    int rc = s_audit (args, out_p, err_p);
    free (args);
    free (key);
    return rc;
}

//  After real traffic and a clean stop: a copy of the data dir in work/good
//  whose every record is covered by a checkpoint. Returns work (caller
//  frees and removes) and the covering note.
static char *
s_good_copy (char **note_p, char ids [][33], uint64_t *seqs)
{
    s_traffic (4, ids, seqs);
    s_broker_stop ();
    char *work = kp_test_tempdir ();
    s_shell ("cp -a '%s' '%s/good'", s_region->data, work);
    char *good = zsys_sprintf ("%s/good", work);
    char *note = s_cover (good, false);
    char *err = NULL;
    int rc = s_verify_dir (good, NULL, NULL, &err);
    cr_assert_eq (rc, 0, "the copy itself does not verify: %s", err);
    free (err);
    free (good);
    if (note_p)
        *note_p = note;
    else
        free (note);
    return work;
}

TestSuite (kp_audit_log, .init = s_region_start, .fini = s_region_stop, .timeout = 60.);

//  --------------------------------------------------------------------------
//  The broker's own data dir, and replay

Test (kp_audit_log, verify_passes_on_the_brokers_data_dir)
{
    char ids [4][33];
    uint64_t seqs [4];
    s_traffic (4, ids, seqs);
    s_school_flow ();
    s_broker_stop ();
    char *out = NULL, *err = NULL;
    int rc = s_verify_dir (s_region->data, NULL, &out, &err);
    cr_expect_eq (rc, 0, "stderr: %s", err);
    cr_expect (out && strstr (out, "ok: ") && strstr (out, "(7 messages)"), "%s", out);
    //  The read notification's body is gone, and the log says so
    char *args = zsys_sprintf ("replay --dir '%s' --event BODY_DELETED", s_region->data);
    char *deleted = NULL;
    cr_expect_eq (s_audit (args, &deleted, NULL), 0);
    cr_expect_eq (s_lines (deleted), 1, "%s", deleted);
    free (deleted);
    free (args);
    //  The broker signs at clean stop: nothing is left unsigned
    cr_expect (out && strstr (out, "; 0 records after it not signed yet"), "%s", out);
    free (out);
    free (err);
}

//  The JSON lines of replay with args on the broker's data dir
static char *
s_replay (const char *args, int want)
{
    char *full = zsys_sprintf ("replay --dir '%s' %s", s_region->data, args);
    char *out = NULL, *err = NULL;
    int rc = s_audit (full, &out, &err);
    cr_assert_eq (rc, want, "replay %s: exit %d: %s", args, rc, err);
    free (err);
    free (full);
    return out;
}

//  Lines of text holding every one of the (NULL-terminated) texts
static int
s_count_lines (const char *text, const char *first, ...)
{
    int count = 0;
    while (text && *text) {
        const char *end = strchr (text, '\n');
        size_t length = end? (size_t) (end - text): strlen (text);
        char *line = strndup (text, length);
        bool match = true;
        va_list args;
        va_start (args, first);
        for (const char *want = first; want; want = va_arg (args, const char *))
            if (!strstr (line, want))
                match = false;
        va_end (args);
        count += match;
        free (line);
        text += length + (end? 1: 0);
    }
    return count;
}

Test (kp_audit_log, replay_answers_where_messages_about_a_person_went)
{
    char ids [4][33];
    uint64_t seqs [4];
    s_traffic (4, ids, seqs);
    s_broker_stop ();
    //  Everything, as JSON lines with ISO times and event names
    char *all = s_replay ("", 0);
    cr_expect (s_count_lines (all, "{\"seq\":0,", NULL) == 1, "%s", all);
    cr_expect (s_count_lines (all, "\"time\":\"20", NULL) == s_lines (all), "%s", all);
    cr_expect (s_count_lines (all, "\"event\":\"PARTNER_REGISTERED\"", NULL) >= 8);
    cr_expect (!strstr (all, "_ms\""), "times must be ISO 8601: %s", all);
    free (all);

    //  Messages about the subject: the even ones, accepted, delivered to
    //  vt-twente, acknowledged; DELIVERED_TO records do not repeat the
    //  subject, replay follows them by message id
    char *about = zsys_sprintf ("--subject %s", S_SUBJECT_HEX);
    char *lines = s_replay (about, 0);
    for (int index = 0; index < 4; index++) {
        char *id = zsys_sprintf ("\"message_id\":\"%s\"", ids [index]);
        int want = index % 2? 0: 1;
        const char *to_vt = "\"recipient\":\"vt-twente\"";
        cr_expect_eq (s_count_lines (lines, id, "\"event\":\"ACCEPTED\"", to_vt, NULL),
                      want, "%s", lines);
        cr_expect_eq (s_count_lines (lines, id, "\"event\":\"DELIVERED_TO\"", to_vt,
                                     NULL) >= 1, want == 1);
        cr_expect_eq (s_count_lines (lines, id, "\"event\":\"ACKNOWLEDGED\"", NULL),
                      want);
        free (id);
    }
    cr_expect_eq (s_count_lines (lines, S_OTHER_HEX, NULL), 0);
    free (lines);
    free (about);

    //  Filters AND together
    lines = s_replay ("--event accepted --partner police-oost", 0);
    cr_expect_eq (s_lines (lines), 4, "%s", lines);
    free (lines);
    lines = s_replay ("--event ACCEPTED --partner lt-hengelo", 0);
    cr_expect_eq (s_lines (lines), 0, "%s", lines);
    free (lines);
    char *one = zsys_sprintf ("--id %s --event DELIVERED_TO", ids [1]);
    lines = s_replay (one, 0);
    cr_expect_geq (s_lines (lines), 1);
    cr_expect_eq (s_count_lines (lines, ids [1], "DELIVERED_TO", NULL), s_lines (lines));
    free (lines);
    free (one);
    lines = s_replay ("--from 2100-01-01", 0);
    cr_expect_eq (s_lines (lines), 0, "%s", lines);
    free (lines);
    lines = s_replay ("--to 2000-01-01T00:00:00.000Z --event REJECTED", 0);
    cr_expect_eq (s_lines (lines), 0, "%s", lines);
    free (lines);
    lines = s_replay ("--from 2000-01-01 --event PARTNER_REGISTERED "
                      "--partner school-12ab00", 0);
    cr_expect_eq (s_count_lines (lines, "\"sender_role\":\"SCHOOL\"", NULL), 1, "%s",
                  lines);
    free (lines);
    free (s_replay ("--event NOT_AN_EVENT", 2));
    free (s_replay ("--from yesterday", 2));
    free (s_replay ("--subject 1234", 2));
}

//  --------------------------------------------------------------------------
//  Damage: raw byte flips, caught by the frame's CRC32C

typedef struct {
    const char *part;
    int where;
} s_flip_case_t;

enum { S_PART_LENGTH, S_PART_CHECKSUM, S_PART_EVENT, S_PART_ID, S_PART_HASH };

static const s_flip_case_t s_flip_cases [] = {
    { "length", S_PART_LENGTH }, { "checksum", S_PART_CHECKSUM },
    { "event", S_PART_EVENT }, { "message id", S_PART_ID }, { "body hash", S_PART_HASH },
};

ParameterizedTestParameters (kp_audit_log, a_flipped_byte_is_found_by_its_frame)
{
    return s_indices (sizeof s_flip_cases / sizeof s_flip_cases [0]);
}

//  Byte offset of record index's frame in a one-segment log
static uint64_t
s_frame_offset (const char *segment, size_t target)
{
    FILE *file = fopen (segment, "rb");
    cr_assert_not_null (file);
    uint64_t offset = 16;
    for (size_t index = 0; index < target; index++) {
        uint8_t frame [4];
        cr_assert_eq (fseek (file, (long) offset, SEEK_SET), 0);
        cr_assert_eq (fread (frame, 1, 4, file), 4);
        offset += 8 + (uint64_t) (frame [0] | frame [1] << 8 | frame [2] << 16
                                  | (uint32_t) frame [3] << 24);
    }
    fclose (file);
    return offset;
}

static void
s_flip (const char *path, uint64_t offset, uint8_t mask)
{
    FILE *file = fopen (path, "r+b");
    cr_assert_not_null (file);
    cr_assert_eq (fseek (file, (long) offset, SEEK_SET), 0);
    int byte = fgetc (file);
    cr_assert_neq (byte, EOF);
    cr_assert_eq (fseek (file, (long) offset, SEEK_SET), 0);
    fputc (byte ^ mask, file);
    fclose (file);
}

ParameterizedTest (size_t *index, kp_audit_log, a_flipped_byte_is_found_by_its_frame)
{
    const s_flip_case_t *flip = &s_flip_cases [*index];
    char ids [4][33];
    uint64_t seqs [4];
    char *work = s_good_copy (NULL, ids, seqs);
    char *good = zsys_sprintf ("%s/good", work);
    s_blobs_t *blobs = s_blobs_load (good, "log");
    size_t target = (size_t) seqs [1];      //  an ACCEPTED record mid-log
    Kp__Wire__Record *record = s_blobs_record (blobs, target);
    const uint8_t *payload = blobs->items [target].data;
    size_t payload_size = blobs->items [target].size;
    char *segment = zsys_sprintf ("%s/log/00000000000000000000.kplog", good);
    uint64_t frame = s_frame_offset (segment, target);
    uint64_t offset = 0;
    uint8_t mask = 0x01;
    switch (flip->where) {
        case S_PART_LENGTH:
            offset = frame + 3;             //  the length's high byte
            break;
        case S_PART_CHECKSUM:
            offset = frame + 5;
            break;
        case S_PART_EVENT: {
            //  seq (field 1, varint) comes first, then event (field 2)
            cr_assert_eq (payload [0], 0x08);
            size_t cursor = 1;
            while (payload [cursor] & 0x80)
                cursor++;
            cr_assert_eq (payload [cursor + 1], 0x10);
            offset = frame + 8 + cursor + 2;
            mask = 0x04;                    //  ACCEPTED (1) -> NACKED (5)
            break;
        }
        case S_PART_ID:
        case S_PART_HASH: {
            const ProtobufCBinaryData *field = flip->where == S_PART_ID?
                &record->message_id: &record->body_hash;
            const uint8_t *found = (const uint8_t *) memmem (payload, payload_size,
                                                             field->data, field->len);
            cr_assert_not_null (found);
            offset = frame + 8 + (uint64_t) (found - payload) + 7;
            break;
        }
    }
    kp__wire__record__free_unpacked (record, NULL);
    s_flip (segment, offset, mask);
    char *err = NULL;
    int rc = s_verify_dir (good, NULL, NULL, &err);
    char *where = zsys_sprintf ("at offset %" PRIu64, frame);
    s_expect_failure (rc, 1, err, "framing", "corrupt record in", segment, where, NULL);
    free (where);
    free (err);
    free (segment);
    s_blobs_destroy (&blobs);
    free (good);
    kp_test_rmtree (work);
    free (work);
}

//  --------------------------------------------------------------------------
//  Damage with valid frames: found by the signed checkpoint

typedef struct {
    const char *change;
    int what;
    const char *expect;             //  besides "does not match"
} s_rewrite_case_t;

enum {
    S_REWRITE_EVENT, S_REWRITE_ID, S_REWRITE_HASH, S_REWRITE_RECIPIENT, S_REWRITE_TIME,
    S_REWRITE_DROP, S_REWRITE_SWAP, S_REWRITE_INSERT
};

static const s_rewrite_case_t s_rewrite_cases [] = {
    { "event", S_REWRITE_EVENT, "is not ACCEPTED" },
    { "message id", S_REWRITE_ID, "names another message" },
    { "body hash", S_REWRITE_HASH, "the log's records 0.." },
    { "recipient", S_REWRITE_RECIPIENT, "envelope does not match" },
    { "time", S_REWRITE_TIME, "the log's records 0.." },
    { "drop", S_REWRITE_DROP, "record 11: its seq field is 12" },
    { "swap", S_REWRITE_SWAP, "its seq field is" },
    { "insert", S_REWRITE_INSERT, "its seq field is" },
};

ParameterizedTestParameters (kp_audit_log, a_rewritten_record_is_found_by_the_checkpoint)
{
    return s_indices (sizeof s_rewrite_cases / sizeof s_rewrite_cases [0]);
}

ParameterizedTest (size_t *index, kp_audit_log,
                   a_rewritten_record_is_found_by_the_checkpoint)
{
    const s_rewrite_case_t *rewrite = &s_rewrite_cases [*index];
    char ids [4][33];
    uint64_t seqs [4];
    char *work = s_good_copy (NULL, ids, seqs);
    char *good = zsys_sprintf ("%s/good", work);
    char *bad = zsys_sprintf ("%s/bad", work);
    cr_assert_eq (mkdir (bad, 0700), 0);
    s_blobs_t *blobs = s_blobs_load (good, "log");
    size_t target = (size_t) seqs [1];      //  an ACCEPTED record mid-log
    Kp__Wire__Record *record = s_blobs_record (blobs, target);
    switch (rewrite->what) {
        case S_REWRITE_EVENT:
            record->event = KP__WIRE__EVENT_KIND__REJECTED;
            record->outcome = KP__WIRE__ERROR_CODE__FORBIDDEN;
            s_blobs_set (blobs, target, record);
            break;
        case S_REWRITE_ID:
            record->message_id.data [0] ^= 1;
            record->envelope->id.data [0] ^= 1;
            s_blobs_set (blobs, target, record);
            break;
        case S_REWRITE_HASH:
            record->body_hash.data [7] ^= 1;
            s_blobs_set (blobs, target, record);
            break;
        case S_REWRITE_RECIPIENT: {
            char *recipient = record->recipient;
            record->recipient = (char *) "lt-hengelo";
            s_blobs_set (blobs, target, record);
            record->recipient = recipient;  //  free_unpacked frees the original
            break;
        }
        case S_REWRITE_TIME:
            record->time_ms += 1;
            s_blobs_set (blobs, target, record);
            break;
        case S_REWRITE_DROP:
            free (blobs->items [target].data);
            memmove (&blobs->items [target], &blobs->items [target + 1],
                     (blobs->count - target - 1) * sizeof (s_blob_t));
            blobs->count--;
            break;
        case S_REWRITE_SWAP: {
            s_blob_t saved = blobs->items [target];
            blobs->items [target] = blobs->items [target + 1];
            blobs->items [target + 1] = saved;
            break;
        }
        case S_REWRITE_INSERT: {
            //  A copy of record 0 goes in before the target
            s_blobs_add (blobs, blobs->items [0].data, blobs->items [0].size);
            s_blob_t inserted = blobs->items [blobs->count - 1];
            memmove (&blobs->items [target + 1], &blobs->items [target],
                     (blobs->count - 1 - target) * sizeof (s_blob_t));
            blobs->items [target] = inserted;
            break;
        }
    }
    kp__wire__record__free_unpacked (record, NULL);
    s_blobs_write (blobs, bad, "log");
    s_shell ("cp -a '%s/checkpoints' '%s/checkpoints'", good, bad);
    char *err = NULL;
    int rc = s_verify_dir (bad, NULL, NULL, &err);
    s_expect_failure (rc, 1, err, "after it was signed", rewrite->expect, NULL);
    free (err);
    s_blobs_destroy (&blobs);
    free (bad);
    free (good);
    kp_test_rmtree (work);
    free (work);
}

Test (kp_audit_log, a_truncated_log_is_found)
{
    char ids [4][33];
    uint64_t seqs [4];
    char *work = s_good_copy (NULL, ids, seqs);
    char *good = zsys_sprintf ("%s/good", work);
    s_blobs_t *blobs = s_blobs_load (good, "log");
    size_t count = blobs->count;
    s_blobs_destroy (&blobs);
    char *segment = zsys_sprintf ("%s/log/00000000000000000000.kplog", good);
    //  Cut at a record boundary: a shorter, well-formed log
    uint64_t last = s_frame_offset (segment, count - 2);
    cr_assert_eq (truncate (segment, (off_t) last), 0);
    char *err = NULL;
    int rc = s_verify_dir (good, NULL, NULL, &err);
    char *holds = zsys_sprintf ("covers more records than the log holds (%zu)",
                                count - 2);
    s_expect_failure (rc, 1, err, holds, "removed from its end", NULL);
    free (holds);
    free (err);
    //  Cut inside a record: a torn tail, which verify never cuts
    uint64_t inside = s_frame_offset (segment, count - 3) + 10;
    cr_assert_eq (truncate (segment, (off_t) inside), 0);
    rc = s_verify_dir (good, NULL, NULL, &err);
    s_expect_failure (rc, 1, err, "framing", "torn tail", NULL);
    free (err);
    free (segment);
    free (good);
    kp_test_rmtree (work);
    free (work);
}

//  --------------------------------------------------------------------------
//  History rewritten and re-signed with the real key: only a checkpoint
//  kept from before shows it

Test (kp_audit_log, a_resigned_history_is_found_by_a_kept_checkpoint)
{
    char ids [4][33];
    uint64_t seqs [4];
    char *old_note = NULL;
    char *work = s_good_copy (&old_note, ids, seqs);
    char *good = zsys_sprintf ("%s/good", work);
    char *bad = zsys_sprintf ("%s/bad", work);
    cr_assert_eq (mkdir (bad, 0700), 0);
    char *kept = s_write_text (work, "kept.note", old_note);

    //  The purpose of one message changed, in the record and its envelope
    s_blobs_t *blobs = s_blobs_load (good, "log");
    Kp__Wire__Record *record = s_blobs_record (blobs, (size_t) seqs [2]);
    char *purpose = record->purpose;
    char *envelope_purpose = record->envelope->purpose;
    record->purpose = (char *) "JW-9.9";
    record->envelope->purpose = (char *) "JW-9.9";
    s_blobs_set (blobs, (size_t) seqs [2], record);
    record->purpose = purpose;          //  free_unpacked frees the originals
    record->envelope->purpose = envelope_purpose;
    kp__wire__record__free_unpacked (record, NULL);
    s_blobs_write (blobs, bad, "log");
    free (s_cover (bad, true));

    //  Alone, the rewritten copy is self-consistent: verify cannot tell
    char *out = NULL, *err = NULL;
    int rc = s_verify_dir (bad, NULL, &out, &err);
    cr_expect_eq (rc, 0, "a re-signed consistent history verifies on its own: %s", err);
    free (out);
    free (err);
    //  With the checkpoint the auditor kept, it fails
    char *extra = zsys_sprintf ("--trusted '%s'", kept);
    rc = s_verify_dir (bad, extra, NULL, &err);
    s_expect_failure (rc, 1, err, "does not match", kept, "re-signed", NULL);
    free (err);
    //  ... and the genuine one still passes with it
    rc = s_verify_dir (good, extra, &out, &err);
    cr_expect_eq (rc, 0, "%s", err);
    cr_expect (out && strstr (out, "1 trusted"), "%s", out);
    free (out);
    free (err);
    free (extra);
    s_blobs_destroy (&blobs);
    free (kept);
    free (old_note);
    free (bad);
    free (good);
    kp_test_rmtree (work);
    free (work);
}

//  --------------------------------------------------------------------------
//  A broker that breaks the rules and signs its log: found by the order of
//  events, with valid frames and valid checkpoints

typedef struct {
    const char *name;
    int what;
} s_misdeed_case_t;

enum { S_MISDEED_WRONG_RECIPIENT, S_MISDEED_ACK_UNDELIVERED, S_MISDEED_REVOKED_SENDER };

static const s_misdeed_case_t s_misdeed_cases [] = {
    { "delivered to the wrong partner", S_MISDEED_WRONG_RECIPIENT },
    { "acknowledged without delivery", S_MISDEED_ACK_UNDELIVERED },
    { "accepted from a revoked partner", S_MISDEED_REVOKED_SENDER },
};

ParameterizedTestParameters (kp_audit_log, a_signed_misdeed_is_found)
{
    return s_indices (sizeof s_misdeed_cases / sizeof s_misdeed_cases [0]);
}

ParameterizedTest (size_t *index, kp_audit_log, a_signed_misdeed_is_found)
{
    const s_misdeed_case_t *misdeed = &s_misdeed_cases [*index];
    char ids [4][33];
    uint64_t seqs [4];
    char *work = s_good_copy (NULL, ids, seqs);
    char *good = zsys_sprintf ("%s/good", work);
    char *bad = zsys_sprintf ("%s/bad", work);
    cr_assert_eq (mkdir (bad, 0700), 0);
    s_blobs_t *blobs = s_blobs_load (good, "log");
    char *expect = NULL;
    switch (misdeed->what) {
        case S_MISDEED_WRONG_RECIPIENT: {
            size_t at = s_blobs_find (blobs, KP__WIRE__EVENT_KIND__DELIVERED_TO, 0);
            Kp__Wire__Record *record = s_blobs_record (blobs, at);
            char *recipient = record->recipient;
            record->recipient = (char *) "lt-hengelo";
            s_blobs_set (blobs, at, record);
            record->recipient = recipient;  //  free_unpacked frees the original
            expect = zsys_sprintf ("record %zu: DELIVERED_TO for seq %" PRIu64
                                   " went to lt-hengelo, but %" PRIu64
                                   " is addressed to vt-twente", at, record->ref_seq,
                                   record->ref_seq);
            kp__wire__record__free_unpacked (record, NULL);
            break;
        }
        case S_MISDEED_ACK_UNDELIVERED: {
            //  Every delivery of the first message becomes a neutral record
            size_t first_ack = s_blobs_find (blobs, KP__WIRE__EVENT_KIND__ACKNOWLEDGED,
                                             0);
            Kp__Wire__Record *ack = s_blobs_record (blobs, first_ack);
            uint64_t ref = ack->ref_seq;
            kp__wire__record__free_unpacked (ack, NULL);
            for (size_t at = 0; at < first_ack; at++) {
                Kp__Wire__Record *record = s_blobs_record (blobs, at);
                if (record->event == KP__WIRE__EVENT_KIND__DELIVERED_TO
                &&  record->ref_seq == ref) {
                    record->event = KP__WIRE__EVENT_KIND__AUTH_FAILURE;
                    s_blobs_set (blobs, at, record);
                }
                kp__wire__record__free_unpacked (record, NULL);
            }
            expect = zsys_sprintf ("record %zu: ACKNOWLEDGED for seq %" PRIu64 ", which "
                                   "was never delivered", first_ack, ref);
            break;
        }
        case S_MISDEED_REVOKED_SENDER: {
            Kp__Wire__Record revoked = KP__WIRE__RECORD__INIT;
            revoked.seq = blobs->count;
            revoked.event = KP__WIRE__EVENT_KIND__PARTNER_REVOKED;
            revoked.time_ms = kp_now_ms ();
            revoked.sender = (char *) "police-oost";
            s_blobs_add (blobs, (const uint8_t *) "", 1);
            s_blobs_set (blobs, blobs->count - 1, &revoked);
            Kp__Wire__Record *record = s_blobs_record (blobs, (size_t) seqs [0]);
            record->seq = blobs->count;
            record->time_ms = revoked.time_ms;
            record->message_id.data [0] ^= 0xff;
            record->envelope->id.data [0] ^= 0xff;
            s_blobs_add (blobs, (const uint8_t *) "", 1);
            s_blobs_set (blobs, blobs->count - 1, record);
            kp__wire__record__free_unpacked (record, NULL);
            expect = zsys_sprintf ("record %zu: ACCEPTED message", blobs->count - 1);
            break;
        }
    }
    s_blobs_write (blobs, bad, "log");
    free (s_cover (bad, true));
    char *err = NULL;
    int rc = s_verify_dir (bad, NULL, NULL, &err);
    s_expect_failure (rc, 1, err, expect, NULL);
    if (misdeed->what == S_MISDEED_REVOKED_SENDER) {
        char *revoked = zsys_sprintf ("from police-oost, revoked at record %zu",
                                      blobs->count - 2);
        cr_expect (err && strstr (err, revoked), "want '%s' in %s", revoked, err);
        free (revoked);
    }
    cr_expect (err && !strstr (err, "does not match"), "%s: %s", misdeed->name, err);
    free (err);
    free (expect);
    s_blobs_destroy (&blobs);
    free (bad);
    free (good);
    kp_test_rmtree (work);
    free (work);
}

//  --------------------------------------------------------------------------
//  Over the wire: fetch, prove, consistency (the broker answers auditors)

//  kp-audit fetch into local as partner id, until local holds at least
//  size records (the broker signs at most once a second). Returns the
//  last run's exit code; *fetched_p the records all runs fetched.
static int
s_fetch_until (const char *local, const char *id, uint64_t size, uint64_t *fetched_p,
               char **err_p, const char *save)
{
    char *key = zsys_sprintf ("%s/checkpoint.pub", s_region->region);
    char *flags = s_client_flags (id);
    char *saving = save? zsys_sprintf ("--save-checkpoint '%s'", save): strdup ("");
    char *args = zsys_sprintf ("fetch --dir '%s' --checkpoint-key '%s' %s %s", local, key,
                               flags, saving);
    free (saving);
    int rc = -1;
    int64_t deadline = kp_mono_ms () + S_WAIT;
    if (fetched_p)
        *fetched_p = 0;
    while (true) {
        char *out = NULL, *err = NULL;
        rc = s_audit (args, &out, &err);
        unsigned long long fetched = 0, holds = 0;
        if (rc == 0)
            cr_assert (out && sscanf (out, "ok: fetched %llu records from %*s %*s holds "
                                      "%llu records", &fetched, &holds) == 2, "%s", out);
        if (fetched_p)
            *fetched_p += fetched;
        free (out);
        bool again = kp_mono_ms () < deadline
                  && ((rc == 0 && holds < size)
                      || (rc != 0 && err && strstr (err, "UNAVAILABLE")));
        if (!again) {
            if (err_p)
                *err_p = err;
            else
                free (err);
            break;
        }
        free (err);
        //  The broker signs at most once a second: yield between checks,
        //  up to the deadline
        poll (NULL, 0, 100);
    }
    free (args);
    free (flags);
    free (key);
    return rc;
}

//  Records in local/log
static uint64_t
s_local_size (const char *local, const char *name)
{
    s_blobs_t *blobs = s_blobs_load (local, name);
    uint64_t size = blobs->count;
    s_blobs_destroy (&blobs);
    return size;
}

Test (kp_audit_log, fetch_twice_is_incremental_and_verifies)
{
    char ids [6][33];
    uint64_t seqs [6];
    s_traffic (4, ids, seqs);
    char *work = kp_test_tempdir ();
    char *local = zsys_sprintf ("%s/local", work);
    char *kept = zsys_sprintf ("%s/kept.note", work);
    uint64_t fetched = 0;
    char *err = NULL;
    int rc = s_fetch_until (local, S_AUDITOR, seqs [3] + 1, &fetched, &err, kept);
    cr_assert_eq (rc, 0, "%s", err);
    free (err);
    uint64_t first_size = s_local_size (local, "log");
    cr_expect_eq (fetched, first_size);
    cr_expect_geq (first_size, seqs [3] + 1);

    //  More traffic; the second fetch brings only what is new
    s_traffic (2, ids + 4, seqs + 4);
    rc = s_fetch_until (local, S_AUDITOR, seqs [5] + 1, &fetched, &err, NULL);
    cr_assert_eq (rc, 0, "%s", err);
    free (err);
    uint64_t second_size = s_local_size (local, "log");
    cr_expect_gt (second_size, first_size);
    cr_expect_eq (fetched, second_size - first_size, "fetched %" PRIu64 " of %" PRIu64,
                  fetched, second_size);
    cr_expect_geq (s_local_size (local, "checkpoints"), 2);

    //  The copy verifies offline, like the broker's own dir, also against
    //  the checkpoint kept from the first fetch
    char *out = NULL;
    char *trusted = zsys_sprintf ("--trusted '%s'", kept);
    rc = s_verify_dir (local, trusted, &out, &err);
    cr_expect_eq (rc, 0, "%s", err);
    cr_expect (out && strstr (out, "(6 messages)") && strstr (out, "1 trusted"), "%s",
               out);
    free (out);
    free (err);
    free (trusted);
    free (kept);
    free (local);
    kp_test_rmtree (work);
    free (work);
}

Test (kp_audit_log, prove_online_and_offline)
{
    char ids [4][33];
    uint64_t seqs [4];
    s_traffic (4, ids, seqs);
    char *work = kp_test_tempdir ();
    char *local = zsys_sprintf ("%s/local", work);
    char *err = NULL;
    cr_assert_eq (s_fetch_until (local, S_AUDITOR, seqs [3] + 1, NULL, &err, NULL), 0,
                  "%s", err);
    free (err);
    char *key = zsys_sprintf ("%s/checkpoint.pub", s_region->region);
    char *flags = s_client_flags (S_AUDITOR);
    char *index = zsys_sprintf ("\"index\":%" PRIu64 ",", seqs [2]);
    for (int online = 1; online >= 0; online--) {
        char *args = zsys_sprintf ("prove --dir '%s' --id %s --checkpoint-key '%s' %s",
                                   local, ids [2], key, online? flags: "");
        char *out = NULL;
        int rc = s_audit (args, &out, &err);
        cr_expect_eq (rc, 0, "%s", err);
        cr_expect (out && strstr (out, index), "%s", out);
        const char *source = online? "\"source\":\"broker\"": "\"source\":\"local\"";
        cr_expect (out && strstr (out, source), "%s", out);
        cr_expect (out && strstr (out, "\"proof\":[\"") && strstr (out, "\n  ") == NULL
                   && strstr (out, "}\nok\n"), "%s", out);
        free (out);
        free (err);
        free (args);
    }
    //  A message the log does not hold
    char *args = zsys_sprintf ("prove --dir '%s' --id 00000000000000000000000000000000 "
                               "--checkpoint-key '%s'", local, key);
    int rc = s_audit (args, NULL, &err);
    s_expect_failure (rc, 1, err, "no ACCEPTED record for message", NULL);
    free (err);
    free (args);
    free (index);
    free (flags);
    free (key);
    free (local);
    kp_test_rmtree (work);
    free (work);
}

Test (kp_audit_log, consistency_between_two_kept_checkpoints)
{
    char ids [6][33];
    uint64_t seqs [6];
    s_traffic (2, ids, seqs);
    char *work = kp_test_tempdir ();
    char *local = zsys_sprintf ("%s/local", work);
    char *old_path = zsys_sprintf ("%s/old.note", work);
    char *new_path = zsys_sprintf ("%s/new.note", work);
    char *err = NULL;
    cr_assert_eq (s_fetch_until (local, S_AUDITOR, seqs [1] + 1, NULL, &err, old_path), 0,
                  "%s", err);
    free (err);
    s_traffic (2, ids + 2, seqs + 2);
    cr_assert_eq (s_fetch_until (local, S_AUDITOR, seqs [3] + 1, NULL, &err, new_path), 0,
                  "%s", err);
    free (err);

    char *key = zsys_sprintf ("%s/checkpoint.pub", s_region->region);
    char *flags = s_client_flags (S_AUDITOR);
    char *args = zsys_sprintf ("consistency --checkpoint-key '%s' %s '%s' '%s'", key,
                               flags, old_path, new_path);
    char *out = NULL;
    int rc = s_audit (args, &out, &err);
    cr_expect_eq (rc, 0, "%s", err);
    cr_expect (out && strncmp (out, "ok: size ", 9) == 0, "%s", out);
    free (out);
    free (err);
    free (args);
    args = zsys_sprintf ("consistency --checkpoint-key '%s' %s '%s' '%s'", key, flags,
                         new_path, old_path);
    rc = s_audit (args, NULL, &err);
    s_expect_failure (rc, 1, err, "give them in order", NULL);
    free (err);
    free (args);
    free (flags);
    free (key);
    free (new_path);
    free (old_path);
    free (local);
    kp_test_rmtree (work);
    free (work);
}

Test (kp_audit_log, fetch_refuses_a_rewritten_history_and_keeps_the_copy)
{
    char ids [4][33];
    uint64_t seqs [4];
    s_traffic (4, ids, seqs);
    //  A copy holding a history the broker never had, signed with the
    //  region's real key (as a broker that rewrote its log would have)
    s_book_t *book = s_book_new (s_region->region);
    s_partner_event (book, KP__WIRE__EVENT_KIND__PARTNER_REGISTERED, "police-oost",
                     KP__WIRE__ROLE__POLICE);
    s_partner_event (book, KP__WIRE__EVENT_KIND__PARTNER_REGISTERED, "vt-twente",
                     KP__WIRE__ROLE__VEILIG_THUIS);
    free (s_book_sign (book));
    s_book_close (book);
    uint64_t size = s_local_size (book->data, "log");
    char *err = NULL;
    int rc = s_fetch_until (book->data, S_AUDITOR, 0, NULL, &err, NULL);
    s_expect_failure (rc, 1, err, "does not verify", "history was rewritten", NULL);
    free (err);
    cr_expect_eq (s_local_size (book->data, "log"), size);
    cr_expect_eq (s_local_size (book->data, "checkpoints"), 1);
    s_book_destroy (&book);
}

Test (kp_audit_log, fetch_never_writes_into_a_brokers_data_dir)
{
    char *err = NULL;
    int rc = s_fetch_until (s_region->data, S_AUDITOR, 0, NULL, &err, NULL);
    s_expect_failure (rc, 1, err, "is a broker's data dir", NULL);
    free (err);
    char *lock = zsys_sprintf ("%s/.kp-audit.lock", s_region->data);
    cr_expect_neq (access (lock, F_OK), 0, "fetch touched the broker's data dir");
    free (lock);
}

Test (kp_audit_log, only_an_auditor_may_ask)
{
    char *work = kp_test_tempdir ();
    char *local = zsys_sprintf ("%s/local", work);
    char *err = NULL;
    int rc = s_fetch_until (local, "police-oost", 0, NULL, &err, NULL);
    s_expect_failure (rc, 1, err, "FORBIDDEN", NULL);
    free (err);
    free (local);
    kp_test_rmtree (work);
    free (work);
}

//  --------------------------------------------------------------------------
//  The command line

Test (kp_audit_rules, usage_errors_exit_2_with_one_line)
{
    const char *cases [][2] = {
        { "", "missing command" },
        { "frobnicate", "unknown command" },
        { "verify", "verify needs --dir" },
        { "verify --dir x", "verify needs --checkpoint-key" },
        { "verify --dir x --checkpoint-key k --broker tcp://127.0.0.1:1",
          "verify does not take --broker" },
        { "fetch --dir x --checkpoint-key k", "fetch needs --broker" },
        { "fetch --dir x --checkpoint-key k --broker b --broker-cert c --cert c "
          "--timeout 0", "--timeout must be" },
        { "prove --dir x --checkpoint-key k --id 12", "--id must be 32 hex digits" },
        { "prove --dir x --checkpoint-key k --id 00000000000000000000000000000000 "
          "--broker b", "go together" },
        { "consistency --checkpoint-key k --broker b --broker-cert c --cert c one",
          "two note files" },
        { "replay --dir x extra", "unexpected argument" },
        { "replay --dir x --dir y", "given twice" },
        { "replay --dir x --to 2026-13-01", "--to is not a time" },
        { "verify --dir x --checkpoint-key k --tolerance -1", "--tolerance must be" },
        { "open --id 00000000000000000000000000000000 --broker b --broker-cert c "
          "--cert c", "open needs --region-key" },
        { "open --region-key r --broker b --broker-cert c --cert c", "open needs --id" },
        { "open --id 00000000000000000000000000000000 --region-key r",
          "open needs --broker" },
        { "open --id 00000000000000000000000000000000 --region-key r --broker b "
          "--broker-cert c --cert c --checkpoint-key k", "open does not take "
          "--checkpoint-key" },
    };
    for (size_t index = 0; index < sizeof cases / sizeof cases [0]; index++) {
        char *err = NULL;
        int rc = s_audit (cases [index][0], NULL, &err);
        s_expect_failure (rc, 2, err, cases [index][1], NULL);
        free (err);
    }
    char *out = NULL;
    cr_expect_eq (s_audit ("--help", &out, NULL), 0);
    cr_expect (out && strstr (out, "kp-audit verify"), "%s", out);
    free (out);
}

//  --------------------------------------------------------------------------
//  open: an auditor reads a body, where the region lets auditors read its
//  type (audit/open-types); the sending library seals it to them as well

#define S_OPEN_MARKER "MARKER-for-the-auditor-4711"
#define S_OPEN_SIGNAL_BODY \
    "{\"kind\":\"MELDING\",\"violence_types\":[\"PARTNER_VIOLENCE\"]," \
    "\"urgency\":\"ACUTE\",\"municipality\":\"GM0153\",\"persons\":[{\"role\":" \
    "\"VICTIM\",\"name\":\"Fictief Persoon\",\"date_of_birth\":\"1990-01-01\"}]," \
    "\"children_present\":1,\"narrative\":\"" S_OPEN_MARKER "\"}"

static void
s_region_start_open (void)
{
    s_region = kp_test_region_new ();
    const char *no_addresses [] = { NULL };
    cr_assert_eq (kp_region_add (s_region->region, S_AUDITOR, KP__WIRE__ROLE__AUDITOR,
                                 "Inspectie", no_addresses, false, NULL), 0);
    cr_assert_eq (kp_test_broker_start (s_region, "audit\n    open-types = \"signal\"\n"),
                  0, "broker did not start");
}

//  A signal police-oost -> municipality:GM0153 with the marker in its
//  narrative, sent with the client library; fills id, returns its seq
static uint64_t
s_open_signal (char *id)
{
    kp_client_t *police = kp_test_client (s_region, "police-oost");
    kp_msg_t *msg = kp_msg_new ("signal", "municipality:GM0153");
    cr_assert_eq (kp_msg_set_subject (msg, S_SUBJECT_HEX), 0);
    kp_msg_set_purpose (msg, "JW-1.2");
    cr_assert_eq (kp_msg_set_body_json (msg, S_OPEN_SIGNAL_BODY), 0, "%s",
                  kp_msg_error (msg));
    kp_receipt_t receipt;
    cr_assert_eq (kp_client_send (police, msg, &receipt), 0, "%s: %s", receipt.error,
                  receipt.reason);
    snprintf (id, 33, "%s", receipt.id);
    kp_msg_destroy (&msg);
    kp_client_destroy (&police);
    return receipt.seq;
}

//  kp-audit open --id id as partner, with extra flags (may be NULL)
static int
s_open_run (const char *id, const char *partner, const char *extra, char **out_p,
            char **err_p)
{
    char *flags = s_client_flags (partner);
    char *args = zsys_sprintf ("open --id %s --region-key '%s' %s %s", id,
                               s_region->region_key, flags, extra? extra: "");
    int rc = s_audit (args, out_p, err_p);
    free (args);
    free (flags);
    return rc;
}

TestSuite (kp_audit_open, .init = s_region_start_open, .fini = s_region_stop,
           .timeout = 60.);

Test (kp_audit_open, an_auditor_reads_a_signal_but_not_a_referral)
{
    char signal [33];
    uint64_t seq = s_open_signal (signal);
    kp_client_t *vt = kp_test_client (s_region, "vt-twente");
    char *referral = s_send (vt, "referral", "municipality:GM0153", S_REFERRAL_BODY,
                             NULL);
    kp_client_destroy (&vt);

    //  The signal: one JSON line, the envelope, the record's seq, the body
    char *out = NULL, *err = NULL;
    int rc = s_open_run (signal, S_AUDITOR, NULL, &out, &err);
    cr_assert_eq (rc, 0, "%s", err);
    cr_expect_eq (s_lines (out), 1, "%s", out);
    char *want_seq = zsys_sprintf ("{\"seq\":%" PRIu64 ",", seq);
    char *want_id = zsys_sprintf ("\"id\":\"%s\"", signal);
    cr_expect (out && strncmp (out, want_seq, strlen (want_seq)) == 0, "%s", out);
    cr_expect (out && strstr (out, want_id), "%s", out);
    cr_expect (out && strstr (out, "\"sender\":\"police-oost\"")
               && strstr (out, "\"recipient_partner\":\"vt-twente\"")
               && strstr (out, "\"purpose\":\"JW-1.2\"")
               && strstr (out, "\"created_at\":\"20")
               && strstr (out, "\"subject\":\"" S_SUBJECT_HEX "\""), "%s", out);
    cr_expect (out && strstr (out, "\"body\":{") && strstr (out, S_OPEN_MARKER), "%s",
               out);
    free (out);
    free (err);
    free (want_id);
    free (want_seq);

    //  Referrals are not open to auditors in this region
    rc = s_open_run (referral, S_AUDITOR, NULL, NULL, &err);
    s_expect_failure (rc, 1, err, "FORBIDDEN", "audit/open-types", NULL);
    free (err);
    //  A message the broker never accepted
    rc = s_open_run ("000102030405060708090a0b0c0d0e0f", S_AUDITOR, NULL, NULL, &err);
    s_expect_failure (rc, 1, err, "UNKNOWN_REFERENCE", NULL);
    free (err);
    //  A partner who is not an auditor, not even the sender
    rc = s_open_run (signal, "police-oost", NULL, &out, &err);
    s_expect_failure (rc, 1, err, "FORBIDDEN", NULL);
    cr_expect (!out || !strstr (out, S_OPEN_MARKER), "%s", out);
    free (out);
    free (err);
    //  A region key that does not vouch for the auditor's own keys
    char *work = kp_test_tempdir ();
    char *wrong_key = s_write_text (work, "registration.pub",
                                    "0000000000000000000000000000000000000000000000000000"
                                    "000000000000\n");
    char *flags = s_client_flags (S_AUDITOR);
    char *args = zsys_sprintf ("open --id %s --region-key '%s' %s", signal, wrong_key,
                               flags);
    rc = s_audit (args, &out, &err);
    s_expect_failure (rc, 1, err, "region key", NULL);
    cr_expect (!out || !*out, "%s", out);
    free (out);
    free (err);
    free (args);
    free (flags);
    free (wrong_key);
    kp_test_rmtree (work);
    free (work);
    free (referral);
}

Test (kp_audit_open, with_a_copy_the_body_must_be_the_one_logged)
{
    char signal [33];
    uint64_t seq = s_open_signal (signal);
    char *work = kp_test_tempdir ();
    char *local = zsys_sprintf ("%s/local", work);
    char *err = NULL;
    cr_assert_eq (s_fetch_until (local, S_AUDITOR, seq + 1, NULL, &err, NULL), 0, "%s",
                  err);
    free (err);
    char *extra = zsys_sprintf ("--dir '%s'", local);
    char *out = NULL;
    int rc = s_open_run (signal, S_AUDITOR, extra, &out, &err);
    cr_expect_eq (rc, 0, "%s", err);
    cr_expect (out && strstr (out, S_OPEN_MARKER), "%s", out);
    free (out);
    free (err);
    free (extra);

    //  A copy whose ACCEPTED record hashed another body: the broker would
    //  be handing out a body it did not log
    s_blobs_t *blobs = s_blobs_load (local, "log");
    Kp__Wire__Record *record = s_blobs_record (blobs, seq);
    cr_assert_eq (record->event, KP__WIRE__EVENT_KIND__ACCEPTED);
    cr_assert_eq (record->body_hash.len, KP_HASH_SIZE);
    record->body_hash.data [0] ^= 1;
    s_blobs_set (blobs, seq, record);
    kp__wire__record__free_unpacked (record, NULL);
    char *changed = zsys_sprintf ("%s/changed", work);
    cr_assert_eq (mkdir (changed, 0700), 0);
    s_blobs_write (blobs, changed, "log");
    s_blobs_destroy (&blobs);
    extra = zsys_sprintf ("--dir '%s'", changed);
    rc = s_open_run (signal, S_AUDITOR, extra, &out, &err);
    s_expect_failure (rc, 1, err, "changed the body after logging it", NULL);
    cr_expect (!out || !strstr (out, S_OPEN_MARKER), "%s", out);
    free (out);
    free (err);
    free (extra);

    //  A copy in which the broker voided the message (as if a crash had
    //  lost its body): it cannot hand out that body any more
    blobs = s_blobs_load (local, "log");
    record = s_blobs_record (blobs, seq);
    record->seq = blobs->count;
    record->event = KP__WIRE__EVENT_KIND__VOIDED;
    record->ref_seq = seq;
    record->outcome = KP__WIRE__ERROR_CODE__UNAVAILABLE;
    s_blobs_add (blobs, (const uint8_t *) "", 1);
    s_blobs_set (blobs, blobs->count - 1, record);
    kp__wire__record__free_unpacked (record, NULL);
    char *voided = zsys_sprintf ("%s/voided", work);
    cr_assert_eq (mkdir (voided, 0700), 0);
    s_blobs_write (blobs, voided, "log");
    char *expect = zsys_sprintf ("was VOIDED at record %zu", blobs->count - 1);
    s_blobs_destroy (&blobs);
    extra = zsys_sprintf ("--dir '%s'", voided);
    rc = s_open_run (signal, S_AUDITOR, extra, &out, &err);
    s_expect_failure (rc, 1, err, expect, "a message it voided", NULL);
    cr_expect (!out || !strstr (out, S_OPEN_MARKER), "%s", out);
    free (out);
    free (err);
    free (extra);
    free (expect);
    free (voided);

    //  A copy that does not reach the record yet
    char *empty = zsys_sprintf ("%s/empty", work);
    cr_assert_eq (mkdir (empty, 0700), 0);
    s_blobs_t *none = (s_blobs_t *) zmalloc (sizeof (s_blobs_t));
    s_blobs_write (none, empty, "log");
    s_blobs_destroy (&none);
    extra = zsys_sprintf ("--dir '%s'", empty);
    rc = s_open_run (signal, S_AUDITOR, extra, NULL, &err);
    s_expect_failure (rc, 1, err, "fetch first", NULL);
    free (err);
    free (extra);
    free (empty);
    free (changed);
    free (local);
    kp_test_rmtree (work);
    free (work);
}

//  The kp_audit_log broker has no audit/open-types: nobody reads a body
Test (kp_audit_log, no_body_opens_where_the_region_does_not_allow_it)
{
    char signal [33];
    s_open_signal (signal);
    char *out = NULL, *err = NULL;
    int rc = s_open_run (signal, S_AUDITOR, NULL, &out, &err);
    s_expect_failure (rc, 1, err, "FORBIDDEN", "audit/open-types", NULL);
    cr_expect (!out || !*out, "%s", out);
    free (out);
    free (err);
}
