/*  =========================================================================
    test_kp_server - the broker on the wire: a real ketenpostd on 127.0.0.1

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
    These tests speak the wire protocol directly over CURVE DEALER sockets,
    without the client library, so that every refusal of DESIGN.md's
    Guarantees can be provoked exactly, including frames no honest client
    would send. Keys are made at runtime in a temporary region.
*/
#include <criterion/criterion.h>
#include <signal.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>
#include "kp_testutil.h"
#include "kp_log.h"
#include "kp_checkpoint.h"
#include "kp_merkle.h"

#define S_WAIT 5000                 //  msec to wait for an answer
#define S_SILENCE 1500              //  msec of silence that proves "nothing"

static kp_test_region_t *region;

static void
s_setup (void)
{
    region = kp_test_region_new ();
}

static void
s_teardown (void)
{
    kp_test_region_destroy (&region);
}

TestSuite (kp_server, .init = s_setup, .fini = s_teardown, .timeout = 60);

//  --------------------------------------------------------------------------
//  A raw wire client

static zsock_t *
s_connect_with (zcert_t *cert)
{
    zcert_t *broker = zcert_load (region->broker_cert);
    cr_assert_not_null (broker);
    zsock_t *dealer = zsock_new (ZMQ_DEALER);
    zcert_apply (cert, dealer);
    zsock_set_curve_serverkey (dealer, zcert_public_txt (broker));
    zsock_set_linger (dealer, 0);
    cr_assert_eq (zsock_connect (dealer, "%s", region->endpoint), 0);
    zcert_destroy (&broker);
    return dealer;
}

static zsock_t *
s_connect (const char *partner)
{
    char *path = kp_test_cert (region, partner);
    zcert_t *cert = zcert_load (path);
    cr_assert_not_null (cert, "no cert for %s", partner);
    zsock_t *dealer = s_connect_with (cert);
    zcert_destroy (&cert);
    free (path);
    return dealer;
}

static void
s_send (zsock_t *dealer, Kp__Wire__Command *command)
{
    zframe_t *frame = kp_command_pack (command);
    cr_assert_eq (zframe_send (&frame, dealer, 0), 0);
}

//  Next command within timeout msec, or NULL
static Kp__Wire__Command *
s_recv (zsock_t *dealer, int timeout)
{
    zpoller_t *poller = zpoller_new (dealer, NULL);
    Kp__Wire__Command *command = NULL;
    if (zpoller_wait (poller, timeout)) {
        zframe_t *frame = zframe_recv (dealer);
        command = kp_command_unpack (zframe_data (frame), zframe_size (frame), 1 << 26);
        cr_assert_not_null (command, "broker sent an undecodable frame");
        zframe_destroy (&frame);
    }
    zpoller_destroy (&poller);
    return command;
}

//  Next command of kind, skipping others (e.g. statuses while waiting for a
//  receipt); asserts it arrives within S_WAIT
static Kp__Wire__Command *
s_expect (zsock_t *dealer, Kp__Wire__Command__KindCase kind)
{
    int64_t deadline = kp_mono_ms () + S_WAIT;
    while (kp_mono_ms () < deadline) {
        Kp__Wire__Command *command = s_recv (dealer, (int) (deadline - kp_mono_ms ()));
        if (!command)
            break;
        if (command->kind_case == kind)
            return command;
        kp__wire__command__free_unpacked (command, NULL);
    }
    cr_assert_fail ("expected command %d within %d msec", kind, S_WAIT);
    return NULL;
}

static void
s_free (Kp__Wire__Command *command)
{
    kp__wire__command__free_unpacked (command, NULL);
}

static void
s_hello (zsock_t *dealer, uint32_t credit)
{
    Kp__Wire__Hello hello = KP__WIRE__HELLO__INIT;
    hello.version = KP_PROTOCOL_VERSION;
    hello.credit = credit;
    hello.agent = "test_kp_server";
    Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
    command.kind_case = KP__WIRE__COMMAND__KIND_HELLO;
    command.hello = &hello;
    s_send (dealer, &command);
    s_free (s_expect (dealer, KP__WIRE__COMMAND__KIND_WELCOME));
}

static zsock_t *
s_session (const char *partner, uint32_t credit)
{
    zsock_t *dealer = s_connect (partner);
    s_hello (dealer, credit);
    return dealer;
}

//  A message ready to submit; the body is caller's bytes
typedef struct {
    uint8_t id [KP_ID_SIZE];
    uint8_t hash [KP_HASH_SIZE];
    uint8_t reference [KP_ID_SIZE];
    Kp__Wire__Envelope envelope;
    Kp__Wire__Submit submit;
    Kp__Wire__Command command;
} s_message_t;

static void
s_message_init (s_message_t *message, Kp__Wire__MessageType type,
                const char *recipient, const char *body)
{
    memset (message, 0, sizeof *message);
    randombytes_buf (message->id, KP_ID_SIZE);
    kp__wire__envelope__init (&message->envelope);
    kp__wire__submit__init (&message->submit);
    kp__wire__command__init (&message->command);
    message->envelope.id.data = message->id;
    message->envelope.id.len = KP_ID_SIZE;
    message->envelope.type = type;
    message->envelope.recipient = (char *) recipient;
    message->envelope.created_at_ms = kp_now_ms ();
    message->envelope.purpose = "jw-art-7";
    message->submit.body.data = (uint8_t *) body;
    message->submit.body.len = strlen (body);
    crypto_hash_sha256 (message->hash, (const uint8_t *) body, strlen (body));
    message->envelope.body_length = (uint32_t) strlen (body);
    message->envelope.body_hash.data = message->hash;
    message->envelope.body_hash.len = KP_HASH_SIZE;
    message->submit.envelope = &message->envelope;
    message->command.kind_case = KP__WIRE__COMMAND__KIND_SUBMIT;
    message->command.submit = &message->submit;
}

static void
s_message_refer (s_message_t *message, const uint8_t *reference)
{
    memcpy (message->reference, reference, KP_ID_SIZE);
    message->envelope.reference.data = message->reference;
    message->envelope.reference.len = KP_ID_SIZE;
}

//  Submit and return the answer: a Receipt or an Error
static Kp__Wire__Command *
s_submit (zsock_t *dealer, s_message_t *message)
{
    s_send (dealer, &message->command);
    int64_t deadline = kp_mono_ms () + S_WAIT;
    while (kp_mono_ms () < deadline) {
        Kp__Wire__Command *reply = s_recv (dealer, (int) (deadline - kp_mono_ms ()));
        if (!reply)
            break;
        if (reply->kind_case == KP__WIRE__COMMAND__KIND_RECEIPT
        ||  reply->kind_case == KP__WIRE__COMMAND__KIND_ERROR)
            return reply;
        s_free (reply);
    }
    cr_assert_fail ("no answer to submit");
    return NULL;
}

//  Submit, expecting a receipt; returns its seq
static uint64_t
s_submit_ok (zsock_t *dealer, s_message_t *message)
{
    Kp__Wire__Command *reply = s_submit (dealer, message);
    cr_assert_eq (reply->kind_case, KP__WIRE__COMMAND__KIND_RECEIPT,
                  "refused: %s", reply->kind_case == KP__WIRE__COMMAND__KIND_ERROR?
                  reply->error->reason: "?");
    cr_assert_eq (reply->receipt->id.len, KP_ID_SIZE);
    cr_assert_arr_eq (reply->receipt->id.data, message->id, KP_ID_SIZE);
    uint64_t seq = reply->receipt->seq;
    s_free (reply);
    return seq;
}

//  Submit, expecting a refusal with code; returns nothing
static void
s_submit_refused (zsock_t *dealer, s_message_t *message, Kp__Wire__ErrorCode code)
{
    Kp__Wire__Command *reply = s_submit (dealer, message);
    cr_assert_eq (reply->kind_case, KP__WIRE__COMMAND__KIND_ERROR,
                  "expected %s, got a receipt", kp_error_name (code));
    cr_expect_eq (reply->error->code, code, "expected %s, got %s (%s)",
                  kp_error_name (code), kp_error_name (reply->error->code),
                  reply->error->reason);
    cr_expect_gt (strlen (reply->error->reason), 10, "reason must say why");
    s_free (reply);
}

static void
s_ack (zsock_t *dealer, uint64_t seq)
{
    Kp__Wire__Ack ack = KP__WIRE__ACK__INIT;
    ack.seq = seq;
    Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
    command.kind_case = KP__WIRE__COMMAND__KIND_ACK;
    command.ack = &ack;
    s_send (dealer, &command);
}

static void
s_start (const char *extra)
{
    cr_assert_eq (kp_test_broker_start (region, extra), 0, "broker did not start");
}

//  --------------------------------------------------------------------------

Test (kp_server, unknown_key_is_never_admitted)
{
    s_start (NULL);
    zcert_t *stranger = zcert_new ();
    zsock_t *dealer = s_connect_with (stranger);
    zcert_destroy (&stranger);
    Kp__Wire__Hello hello = KP__WIRE__HELLO__INIT;
    hello.version = KP_PROTOCOL_VERSION;
    Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
    command.kind_case = KP__WIRE__COMMAND__KIND_HELLO;
    command.hello = &hello;
    s_send (dealer, &command);
    cr_assert_null (s_recv (dealer, S_SILENCE), "an unregistered key got an answer");
    zsock_destroy (&dealer);
}

Test (kp_server, welcome_names_the_partner_from_its_key)
{
    s_start (NULL);
    zsock_t *dealer = s_connect ("lt-enschede");
    Kp__Wire__Hello hello = KP__WIRE__HELLO__INIT;
    hello.version = KP_PROTOCOL_VERSION;
    Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
    command.kind_case = KP__WIRE__COMMAND__KIND_HELLO;
    command.hello = &hello;
    s_send (dealer, &command);
    Kp__Wire__Command *welcome = s_expect (dealer, KP__WIRE__COMMAND__KIND_WELCOME);
    cr_assert_str_eq (welcome->welcome->partner, "lt-enschede");
    cr_assert_eq (welcome->welcome->role, KP__WIRE__ROLE__LOCAL_TEAM);
    cr_assert_eq (welcome->welcome->version, KP_PROTOCOL_VERSION);
    s_free (welcome);
    zsock_destroy (&dealer);
}

Test (kp_server, signal_is_delivered_and_sender_learns_it_was_delivered)
{
    s_start (NULL);
    zsock_t *police = s_session ("police-oost", 4);
    s_message_t signal;
    s_message_init (&signal, KP__WIRE__MESSAGE_TYPE__SIGNAL, "municipality:GM0153",
                    "signal body bytes");
    //  The envelope claims another sender: the broker must ignore it
    signal.envelope.sender = "vt-twente";
    Kp__Wire__Command *reply = s_submit (police, &signal);
    cr_assert_eq (reply->kind_case, KP__WIRE__COMMAND__KIND_RECEIPT);
    cr_assert_str_eq (reply->receipt->recipient_partner, "vt-twente");
    cr_assert_eq (reply->receipt->recipient_role, KP__WIRE__ROLE__VEILIG_THUIS);
    cr_assert_not (reply->receipt->duplicate);
    uint64_t seq = reply->receipt->seq;
    s_free (reply);

    zsock_t *veilig_thuis = s_session ("vt-twente", 4);
    Kp__Wire__Command *deliver = s_expect (veilig_thuis, KP__WIRE__COMMAND__KIND_DELIVER);
    cr_assert_eq (deliver->deliver->seq, seq);
    cr_assert_eq (deliver->deliver->attempt, 1);
    cr_assert_str_eq (deliver->deliver->envelope->sender, "police-oost");
    cr_assert_eq (deliver->deliver->envelope->sender_role, KP__WIRE__ROLE__POLICE);
    cr_assert_str_eq (deliver->deliver->envelope->recipient_partner, "vt-twente");
    cr_assert_arr_eq (deliver->deliver->envelope->id.data, signal.id, KP_ID_SIZE);
    cr_assert_eq (deliver->deliver->body.len, strlen ("signal body bytes"));
    cr_assert_arr_eq (deliver->deliver->body.data, "signal body bytes", deliver->deliver->body.len);
    s_ack (veilig_thuis, seq);
    s_free (deliver);

    Kp__Wire__Command *status = s_expect (police, KP__WIRE__COMMAND__KIND_STATUS);
    cr_assert_eq (status->status->status, KP__WIRE__STATUS_KIND__DELIVERED);
    cr_assert_arr_eq (status->status->id.data, signal.id, KP_ID_SIZE);
    cr_assert_str_eq (status->status->partner, "vt-twente");
    s_free (status);
    zsock_destroy (&veilig_thuis);
    zsock_destroy (&police);
}

Test (kp_server, sender_that_sends_no_credit_gets_its_status_only_after_hello_with_credit)
{
    s_start (NULL);
    zsock_t *police = s_session ("police-oost", 0);
    s_message_t signal;
    s_message_init (&signal, KP__WIRE__MESSAGE_TYPE__SIGNAL, "municipality:GM0164", "x");
    uint64_t seq = s_submit_ok (police, &signal);
    zsock_t *veilig_thuis = s_session ("vt-twente", 1);
    Kp__Wire__Command *deliver = s_expect (veilig_thuis, KP__WIRE__COMMAND__KIND_DELIVER);
    s_ack (veilig_thuis, seq);
    s_free (deliver);
    cr_assert_null (s_recv (police, 500), "credit 0 must mean no deliveries");
    s_hello (police, 1);
    Kp__Wire__Command *status = s_expect (police, KP__WIRE__COMMAND__KIND_STATUS);
    s_ack (police, status->status->seq);
    s_free (status);
    zsock_destroy (&veilig_thuis);
    zsock_destroy (&police);
}

Test (kp_server, every_refusal_has_its_code_and_reason)
{
    s_start ("limits\n    max-school-notification = 4096\n");
    zsock_t *school = s_session ("school-12ab00", 0);
    zsock_t *police = s_session ("police-oost", 0);
    zsock_t *leerplicht = s_session ("lp-enschede", 0);
    s_message_t message;

    s_message_init (&message, KP__WIRE__MESSAGE_TYPE__REFERRAL, "municipality:GM0153", "r");
    s_submit_refused (school, &message, KP__WIRE__ERROR_CODE__FORBIDDEN);
    s_message_init (&message, KP__WIRE__MESSAGE_TYPE__SIGNAL, "municipality:GM9999", "s");
    s_submit_refused (police, &message, KP__WIRE__ERROR_CODE__UNKNOWN_ADDRESS);
    s_message_init (&message, KP__WIRE__MESSAGE_TYPE__SIGNAL, "partner:nobody", "s");
    s_submit_refused (police, &message, KP__WIRE__ERROR_CODE__UNKNOWN_ADDRESS);
    s_message_init (&message, KP__WIRE__MESSAGE_TYPE__SIGNAL, "street:Kerkstraat 1", "s");
    s_submit_refused (police, &message, KP__WIRE__ERROR_CODE__BAD_ENVELOPE);
    s_message_init (&message, KP__WIRE__MESSAGE_TYPE__SCHOOL_NOTIFICATION,
                    "school:34CD00", "n");
    s_submit_refused (leerplicht, &message, KP__WIRE__ERROR_CODE__NOT_COVENANT);
    s_message_init (&message, KP__WIRE__MESSAGE_TYPE__SCHOOL_NOTIFICATION,
                    "school:12AB00", "n");
    s_submit_refused (police, &message, KP__WIRE__ERROR_CODE__FORBIDDEN);
    s_message_init (&message, KP__WIRE__MESSAGE_TYPE__SCHOOL_NOTIFICATION,
                    "municipality:GM0153", "n");
    s_submit_refused (leerplicht, &message, KP__WIRE__ERROR_CODE__FORBIDDEN);

    char *large = (char *) malloc (5000);
    memset (large, 'x', 4999);
    large [4999] = 0;
    s_message_init (&message, KP__WIRE__MESSAGE_TYPE__SCHOOL_NOTIFICATION,
                    "municipality:GM0153", large);
    s_submit_refused (police, &message, KP__WIRE__ERROR_CODE__TOO_LARGE);
    free (large);

    s_message_init (&message, KP__WIRE__MESSAGE_TYPE__SIGNAL, "municipality:GM0153", "s");
    message.hash [0] ^= 1;
    s_submit_refused (police, &message, KP__WIRE__ERROR_CODE__BAD_ENVELOPE);
    s_message_init (&message, KP__WIRE__MESSAGE_TYPE__SIGNAL, "municipality:GM0153", "s");
    message.envelope.id.len = 8;
    s_submit_refused (police, &message, KP__WIRE__ERROR_CODE__BAD_ENVELOPE);
    s_message_init (&message, (Kp__Wire__MessageType) 42, "municipality:GM0153", "s");
    s_submit_refused (police, &message, KP__WIRE__ERROR_CODE__BAD_ENVELOPE);
    s_message_init (&message, KP__WIRE__MESSAGE_TYPE__SIGNAL, "municipality:GM0153", "s");
    message.envelope.expires_at_ms = kp_now_ms () - 1000;
    s_submit_refused (police, &message, KP__WIRE__ERROR_CODE__EXPIRED);

    //  Feedback only from the recipient of the referenced message, to its sender
    uint8_t unknown [KP_ID_SIZE];
    randombytes_buf (unknown, KP_ID_SIZE);
    s_message_init (&message, KP__WIRE__MESSAGE_TYPE__FEEDBACK, "partner:police-oost", "f");
    s_message_refer (&message, unknown);
    s_submit_refused (leerplicht, &message, KP__WIRE__ERROR_CODE__UNKNOWN_REFERENCE);
    s_message_t signal;
    s_message_init (&signal, KP__WIRE__MESSAGE_TYPE__SIGNAL, "municipality:GM0153", "s");
    s_submit_ok (police, &signal);
    s_message_init (&message, KP__WIRE__MESSAGE_TYPE__FEEDBACK, "partner:police-oost", "f");
    s_message_refer (&message, signal.id);
    s_submit_refused (leerplicht, &message, KP__WIRE__ERROR_CODE__FORBIDDEN);
    zsock_t *veilig_thuis = s_session ("vt-twente", 0);
    s_message_init (&message, KP__WIRE__MESSAGE_TYPE__FEEDBACK, "partner:lp-enschede", "f");
    s_message_refer (&message, signal.id);
    s_submit_refused (veilig_thuis, &message, KP__WIRE__ERROR_CODE__FORBIDDEN);
    s_message_init (&message, KP__WIRE__MESSAGE_TYPE__FEEDBACK, "partner:police-oost", "f");
    s_message_refer (&message, signal.id);
    s_submit_ok (veilig_thuis, &message);

    //  The same id for another message
    s_message_t other;
    s_message_init (&other, KP__WIRE__MESSAGE_TYPE__SIGNAL, "municipality:GM0153", "else");
    memcpy (other.id, signal.id, KP_ID_SIZE);
    s_submit_refused (police, &other, KP__WIRE__ERROR_CODE__ID_CONFLICT);

    zsock_destroy (&veilig_thuis);
    zsock_destroy (&leerplicht);
    zsock_destroy (&police);
    zsock_destroy (&school);
}

Test (kp_server, malformed_and_multi_frame_input_is_refused_and_changes_nothing)
{
    s_start (NULL);
    zsock_t *police = s_session ("police-oost", 0);
    zstr_send (police, "this is not a protobuf command at all \xff\xff");
    Kp__Wire__Command *error = s_expect (police, KP__WIRE__COMMAND__KIND_ERROR);
    cr_assert_eq (error->error->code, KP__WIRE__ERROR_CODE__MALFORMED);
    s_free (error);
    zstr_sendm (police, "one");
    zstr_send (police, "two");
    error = s_expect (police, KP__WIRE__COMMAND__KIND_ERROR);
    cr_assert_eq (error->error->code, KP__WIRE__ERROR_CODE__MALFORMED);
    s_free (error);
    //  Still a working session afterwards
    s_message_t signal;
    s_message_init (&signal, KP__WIRE__MESSAGE_TYPE__SIGNAL, "municipality:GM0153", "s");
    s_submit_ok (police, &signal);
    zsock_destroy (&police);
}

Test (kp_server, oversized_frame_is_refused)
{
    s_start ("limits\n    max-message = 8192\n");
    zsock_t *police = s_session ("police-oost", 0);
    size_t size = 8192 + 16;
    uint8_t *big = (uint8_t *) calloc (1, size);
    zframe_t *frame = zframe_new (big, size);
    cr_assert_eq (zframe_send (&frame, police, 0), 0);
    free (big);
    //  Just over max-message, within the transport's limit: the broker
    //  reads it and answers TOO_LARGE; never a receipt
    Kp__Wire__Command *reply = s_expect (police, KP__WIRE__COMMAND__KIND_ERROR);
    cr_assert_eq (reply->error->code, KP__WIRE__ERROR_CODE__TOO_LARGE);
    s_free (reply);
    zsock_destroy (&police);
}

Test (kp_server, commands_before_hello_are_refused)
{
    s_start (NULL);
    zsock_t *police = s_connect ("police-oost");
    s_message_t signal;
    s_message_init (&signal, KP__WIRE__MESSAGE_TYPE__SIGNAL, "municipality:GM0153", "s");
    Kp__Wire__Command *reply = s_submit (police, &signal);
    cr_assert_eq (reply->kind_case, KP__WIRE__COMMAND__KIND_ERROR);
    cr_assert_eq (reply->error->code, KP__WIRE__ERROR_CODE__UNEXPECTED);
    cr_assert_arr_eq (reply->error->id.data, signal.id, KP_ID_SIZE);
    s_free (reply);
    zsock_destroy (&police);
}

Test (kp_server, duplicate_submit_gets_the_first_receipt)
{
    s_start (NULL);
    zsock_t *police = s_session ("police-oost", 0);
    s_message_t signal;
    s_message_init (&signal, KP__WIRE__MESSAGE_TYPE__SIGNAL, "municipality:GM0153", "s");
    uint64_t seq = s_submit_ok (police, &signal);
    Kp__Wire__Command *reply = s_submit (police, &signal);
    cr_assert_eq (reply->kind_case, KP__WIRE__COMMAND__KIND_RECEIPT);
    cr_assert_eq (reply->receipt->seq, seq);
    cr_assert (reply->receipt->duplicate);
    s_free (reply);
    //  Delivered once
    zsock_t *veilig_thuis = s_session ("vt-twente", 8);
    Kp__Wire__Command *deliver = s_expect (veilig_thuis, KP__WIRE__COMMAND__KIND_DELIVER);
    s_ack (veilig_thuis, deliver->deliver->seq);
    s_free (deliver);
    cr_assert_null (s_recv (veilig_thuis, 500));
    zsock_destroy (&veilig_thuis);
    zsock_destroy (&police);
}

Test (kp_server, revoked_partner_is_refused_from_its_next_message)
{
    s_start (NULL);
    zsock_t *police = s_session ("police-oost", 0);
    s_message_t signal;
    s_message_init (&signal, KP__WIRE__MESSAGE_TYPE__SIGNAL, "municipality:GM0153", "s");
    s_submit_ok (police, &signal);
    zsock_t *veilig_thuis = s_session ("vt-twente", 0);

    cr_assert_eq (kp_region_revoke (region->region, "vt-twente"), 0);
    kill (region->pid, SIGHUP);
    //  Poll: the broker refuses from the next message on
    int64_t deadline = kp_mono_ms () + S_WAIT;
    Kp__Wire__ErrorCode code = KP__WIRE__ERROR_CODE__OK;
    while (kp_mono_ms () < deadline && code != KP__WIRE__ERROR_CODE__REVOKED) {
        s_message_t message;
        s_message_init (&message, KP__WIRE__MESSAGE_TYPE__REFERRAL, "municipality:GM0153", "r");
        s_send (veilig_thuis, &message.command);
        Kp__Wire__Command *reply = s_recv (veilig_thuis, 200);
        if (reply && reply->kind_case == KP__WIRE__COMMAND__KIND_ERROR)
            code = reply->error->code;
        if (reply)
            s_free (reply);
    }
    cr_assert_eq (code, KP__WIRE__ERROR_CODE__REVOKED);
    //  It receives nothing more, not even with credit
    Kp__Wire__Hello hello = KP__WIRE__HELLO__INIT;
    hello.version = KP_PROTOCOL_VERSION;
    hello.credit = 10;
    Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
    command.kind_case = KP__WIRE__COMMAND__KIND_HELLO;
    command.hello = &hello;
    s_send (veilig_thuis, &command);
    Kp__Wire__Command *reply = s_recv (veilig_thuis, S_SILENCE);
    cr_assert (!reply || reply->kind_case == KP__WIRE__COMMAND__KIND_ERROR);
    if (reply)
        s_free (reply);
    //  And a new signal for GM0153 has nowhere to go
    s_message_init (&signal, KP__WIRE__MESSAGE_TYPE__SIGNAL, "municipality:GM0153", "s");
    s_submit_refused (police, &signal, KP__WIRE__ERROR_CODE__UNKNOWN_ADDRESS);
    zsock_destroy (&veilig_thuis);
    zsock_destroy (&police);
}

Test (kp_server, credit_window_limits_deliveries_in_flight)
{
    s_start (NULL);
    zsock_t *police = s_session ("police-oost", 0);
    for (int index = 0; index < 5; index++) {
        s_message_t signal;
        s_message_init (&signal, KP__WIRE__MESSAGE_TYPE__SIGNAL, "municipality:GM0153", "s");
        s_submit_ok (police, &signal);
    }
    zsock_t *veilig_thuis = s_session ("vt-twente", 2);
    Kp__Wire__Command *first = s_expect (veilig_thuis, KP__WIRE__COMMAND__KIND_DELIVER);
    Kp__Wire__Command *second = s_expect (veilig_thuis, KP__WIRE__COMMAND__KIND_DELIVER);
    cr_assert_lt (first->deliver->seq, second->deliver->seq);
    cr_assert_null (s_recv (veilig_thuis, 500), "a third delivery beyond credit 2");
    s_ack (veilig_thuis, first->deliver->seq);
    Kp__Wire__Command *third = s_expect (veilig_thuis, KP__WIRE__COMMAND__KIND_DELIVER);
    cr_assert_gt (third->deliver->seq, second->deliver->seq);
    s_free (first);
    s_free (second);
    s_free (third);
    zsock_destroy (&veilig_thuis);
    zsock_destroy (&police);
}

Test (kp_server, broker_caps_the_credit_a_client_asks_for)
{
    s_start ("delivery\n    credit = 1\n");
    zsock_t *police = s_session ("police-oost", 0);
    for (int index = 0; index < 3; index++) {
        s_message_t signal;
        s_message_init (&signal, KP__WIRE__MESSAGE_TYPE__SIGNAL, "municipality:GM0153", "s");
        s_submit_ok (police, &signal);
    }
    zsock_t *veilig_thuis = s_session ("vt-twente", 100);
    Kp__Wire__Command *first = s_expect (veilig_thuis, KP__WIRE__COMMAND__KIND_DELIVER);
    cr_assert_null (s_recv (veilig_thuis, 500), "a second delivery beyond delivery/credit 1");
    s_ack (veilig_thuis, first->deliver->seq);
    Kp__Wire__Command *second = s_expect (veilig_thuis, KP__WIRE__COMMAND__KIND_DELIVER);
    cr_assert_gt (second->deliver->seq, first->deliver->seq);
    s_free (first);
    s_free (second);
    zsock_destroy (&veilig_thuis);
    zsock_destroy (&police);
}

Test (kp_server, unacked_delivery_is_redelivered_after_the_ack_timeout)
{
    s_start ("delivery\n    ack-timeout = 500\n");
    zsock_t *police = s_session ("police-oost", 0);
    s_message_t signal;
    s_message_init (&signal, KP__WIRE__MESSAGE_TYPE__SIGNAL, "municipality:GM0153", "s");
    uint64_t seq = s_submit_ok (police, &signal);
    zsock_t *veilig_thuis = s_session ("vt-twente", 1);
    Kp__Wire__Command *deliver = s_expect (veilig_thuis, KP__WIRE__COMMAND__KIND_DELIVER);
    cr_assert_eq (deliver->deliver->attempt, 1);
    s_free (deliver);
    deliver = s_expect (veilig_thuis, KP__WIRE__COMMAND__KIND_DELIVER);
    cr_assert_eq (deliver->deliver->seq, seq);
    cr_assert_eq (deliver->deliver->attempt, 2);
    s_ack (veilig_thuis, seq);
    s_free (deliver);
    zsock_destroy (&veilig_thuis);
    zsock_destroy (&police);
}

Test (kp_server, unacked_delivery_is_redelivered_to_a_new_connection)
{
    //  Heartbeat 200 ms: a silent session is gone after 600 ms
    s_start ("server\n    heartbeat = 200\n");
    zsock_t *police = s_session ("police-oost", 0);
    s_message_t signal;
    s_message_init (&signal, KP__WIRE__MESSAGE_TYPE__SIGNAL, "municipality:GM0153", "s");
    uint64_t seq = s_submit_ok (police, &signal);
    zsock_t *veilig_thuis = s_session ("vt-twente", 1);
    s_free (s_expect (veilig_thuis, KP__WIRE__COMMAND__KIND_DELIVER));
    zsock_destroy (&veilig_thuis);
    veilig_thuis = s_session ("vt-twente", 1);
    //  Keep the new session alive with pings while the old one times out
    Kp__Wire__Command *deliver = NULL;
    int64_t deadline = kp_mono_ms () + S_WAIT;
    while (!deliver && kp_mono_ms () < deadline) {
        Kp__Wire__Ping ping = KP__WIRE__PING__INIT;
        Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
        command.kind_case = KP__WIRE__COMMAND__KIND_PING;
        command.ping = &ping;
        s_send (veilig_thuis, &command);
        Kp__Wire__Command *reply = s_recv (veilig_thuis, 100);
        if (reply && reply->kind_case == KP__WIRE__COMMAND__KIND_DELIVER)
            deliver = reply;
        else
        if (reply)
            s_free (reply);
    }
    cr_assert_not_null (deliver, "no redelivery to the new connection");
    cr_assert_eq (deliver->deliver->seq, seq);
    cr_assert_eq (deliver->deliver->attempt, 2);
    s_free (deliver);
    zsock_destroy (&veilig_thuis);
    zsock_destroy (&police);
}

Test (kp_server, message_expires_and_sender_is_told)
{
    s_start (NULL);
    zsock_t *police = s_session ("police-oost", 1);
    s_message_t signal;
    s_message_init (&signal, KP__WIRE__MESSAGE_TYPE__SIGNAL, "municipality:GM0153", "s");
    signal.envelope.expires_at_ms = kp_now_ms () + 300;
    s_submit_ok (police, &signal);
    Kp__Wire__Command *status = s_expect (police, KP__WIRE__COMMAND__KIND_STATUS);
    cr_assert_eq (status->status->status, KP__WIRE__STATUS_KIND__EXPIRED_UNDELIVERED);
    cr_assert_arr_eq (status->status->id.data, signal.id, KP_ID_SIZE);
    s_ack (police, status->status->seq);
    s_free (status);
    //  Nothing reaches the recipient after expiry
    zsock_t *veilig_thuis = s_session ("vt-twente", 4);
    cr_assert_null (s_recv (veilig_thuis, 500));
    zsock_destroy (&veilig_thuis);
    zsock_destroy (&police);
}

//  Submit count signals for GM0153 from the police; returns their seqs
static void
s_submit_signals (int count, uint64_t *seqs)
{
    zsock_t *police = s_session ("police-oost", 0);
    for (int index = 0; index < count; index++) {
        s_message_t signal;
        s_message_init (&signal, KP__WIRE__MESSAGE_TYPE__SIGNAL, "municipality:GM0153",
                        "queued while veilig thuis was offline");
        seqs [index] = s_submit_ok (police, &signal);
    }
    zsock_destroy (&police);
}

//  Receive count deliveries in order and ack each
static void
s_receive_all (int count, const uint64_t *seqs)
{
    zsock_t *veilig_thuis = s_session ("vt-twente", 16);
    for (int index = 0; index < count; index++) {
        Kp__Wire__Command *deliver = s_expect (veilig_thuis, KP__WIRE__COMMAND__KIND_DELIVER);
        cr_assert_eq (deliver->deliver->seq, seqs [index], "message %d out of order", index);
        s_ack (veilig_thuis, deliver->deliver->seq);
        s_free (deliver);
    }
    cr_assert_null (s_recv (veilig_thuis, 300), "more than was sent");
    zsock_destroy (&veilig_thuis);
}

Test (kp_server, queued_messages_survive_a_restart)
{
    s_start (NULL);
    uint64_t seqs [40];
    s_submit_signals (40, seqs);
    int status = kp_test_broker_stop (region, SIGTERM);
    cr_assert (WIFEXITED (status) && WEXITSTATUS (status) == 0);
    s_start (NULL);
    s_receive_all (40, seqs);
}

Test (kp_server, receipted_messages_survive_kill_9)
{
    s_start (NULL);
    uint64_t seqs [40];
    s_submit_signals (40, seqs);
    kp_test_broker_stop (region, SIGKILL);
    s_start (NULL);
    s_receive_all (40, seqs);
    //  Acks were logged: after another crash nothing comes back
    kp_test_broker_stop (region, SIGKILL);
    s_start (NULL);
    zsock_t *veilig_thuis = s_session ("vt-twente", 16);
    cr_assert_null (s_recv (veilig_thuis, 500));
    zsock_destroy (&veilig_thuis);
}

//  Every kind of item in every state across a crash: acked messages stay
//  settled, messages in flight come back first, statuses acked stay gone,
//  statuses not acked come again, and a resend still finds its receipt
Test (kp_server, a_crash_keeps_every_item_where_it_was)
{
    s_start (NULL);
    zsock_t *police = s_session ("police-oost", 16);
    s_message_t signals [8];
    uint64_t seqs [8];
    for (int index = 0; index < 8; index++) {
        s_message_init (&signals [index], KP__WIRE__MESSAGE_TYPE__SIGNAL,
                        "municipality:GM0153", "kept across a crash");
        seqs [index] = s_submit_ok (police, &signals [index]);
    }
    //  Veilig Thuis takes 5 and acks the 1st, 2nd, 3rd and 5th
    zsock_t *veilig_thuis = s_session ("vt-twente", 5);
    for (int index = 0; index < 5; index++) {
        Kp__Wire__Command *deliver = s_expect (veilig_thuis, KP__WIRE__COMMAND__KIND_DELIVER);
        cr_assert_eq (deliver->deliver->seq, seqs [index]);
        if (index != 3)
            s_ack (veilig_thuis, deliver->deliver->seq);
        s_free (deliver);
    }
    //  The police hear of all four, and ack the first two statuses only
    uint64_t status_seqs [4];
    for (int index = 0; index < 4; index++) {
        Kp__Wire__Command *status = s_expect (police, KP__WIRE__COMMAND__KIND_STATUS);
        cr_assert_eq (status->status->status, KP__WIRE__STATUS_KIND__DELIVERED);
        status_seqs [index] = status->status->seq;
        if (index < 2)
            s_ack (police, status->status->seq);
        s_free (status);
    }
    //  A receipt after the acks: they were logged before it
    s_message_t last;
    s_message_init (&last, KP__WIRE__MESSAGE_TYPE__SIGNAL, "municipality:GM0153", "last");
    uint64_t last_seq = s_submit_ok (police, &last);
    zsock_destroy (&veilig_thuis);
    zsock_destroy (&police);
    kp_test_broker_stop (region, SIGKILL);
    s_start (NULL);

    //  The resend of the first signal gets its first receipt (on a session
    //  without credit, so that no status comes between)
    zsock_t *resender = s_session ("police-oost", 0);
    Kp__Wire__Command *reply = s_submit (resender, &signals [0]);
    cr_assert_eq (reply->kind_case, KP__WIRE__COMMAND__KIND_RECEIPT);
    cr_assert_eq (reply->receipt->seq, seqs [0]);
    cr_assert (reply->receipt->duplicate);
    s_free (reply);
    zsock_destroy (&resender);
    police = s_session ("police-oost", 16);
    //  The two statuses not acked come again, in order, and nothing else
    for (int index = 2; index < 4; index++) {
        Kp__Wire__Command *status = s_expect (police, KP__WIRE__COMMAND__KIND_STATUS);
        cr_assert_eq (status->status->seq, status_seqs [index]);
        s_ack (police, status->status->seq);
        s_free (status);
    }
    //  The 4th (delivered, not acked) first, then the rest in order
    veilig_thuis = s_session ("vt-twente", 16);
    uint64_t expected [] = { seqs [3], seqs [5], seqs [6], seqs [7], last_seq };
    for (size_t index = 0; index < 5; index++) {
        Kp__Wire__Command *deliver = s_expect (veilig_thuis, KP__WIRE__COMMAND__KIND_DELIVER);
        cr_assert_eq (deliver->deliver->seq, expected [index], "delivery %zu", index);
        //  The 4th was delivered once before the crash (the others may have
        //  been, as credit came free)
        if (index == 0)
            cr_assert_eq (deliver->deliver->attempt, 2);
        s_ack (veilig_thuis, deliver->deliver->seq);
        s_free (deliver);
    }
    cr_assert_null (s_recv (veilig_thuis, 300), "more than was queued");
    //  Their five statuses, and not one of the two acked before the crash
    for (int index = 0; index < 5; index++) {
        Kp__Wire__Command *status = s_expect (police, KP__WIRE__COMMAND__KIND_STATUS);
        cr_assert_eq (status->status->status, KP__WIRE__STATUS_KIND__DELIVERED);
        cr_assert_neq (status->status->seq, status_seqs [0]);
        cr_assert_neq (status->status->seq, status_seqs [1]);
        s_ack (police, status->status->seq);
        s_free (status);
    }
    cr_assert_null (s_recv (police, 300));
    zsock_destroy (&veilig_thuis);
    zsock_destroy (&police);
}

//  The file of the only segment of store (log or bodies) in the data dir
static char *
s_segment_path (const char *store)
{
    char *segment = NULL;
    char *store_dir = zsys_sprintf ("%s/%s", region->data, store);
    DIR *dir = opendir (store_dir);
    cr_assert_not_null (dir);
    struct dirent *entry;
    while ((entry = readdir (dir)))
        if (entry->d_name [0] != '.' && !segment)
            segment = zsys_sprintf ("%s/%s", store_dir, entry->d_name);
    closedir (dir);
    free (store_dir);
    cr_assert_not_null (segment);
    return segment;
}

static off_t
s_file_size (const char *path)
{
    struct stat status;
    cr_assert_eq (stat (path, &status), 0);
    return status.st_size;
}

//  The end of the last record of a segment file: the file may go on with
//  zero space written ahead (docs/LOG_FORMAT.md)
static off_t
s_log_end (const char *path)
{
    off_t size = s_file_size (path);
    FILE *file = fopen (path, "rb");
    cr_assert_not_null (file);
    off_t offset = 16;
    while (offset + 8 <= size) {
        uint8_t frame [4];
        cr_assert_eq (fseek (file, (long) offset, SEEK_SET), 0);
        cr_assert_eq (fread (frame, 1, 4, file), 4);
        uint32_t length = (uint32_t) frame [0] | (uint32_t) frame [1] << 8
                        | (uint32_t) frame [2] << 16 | (uint32_t) frame [3] << 24;
        if (length == 0 || offset + 8 + (off_t) length > size)
            break;
        offset += 8 + (off_t) length;
    }
    fclose (file);
    return offset;
}

//  Overwrite bytes [from, to) of a file with zeros
static void
s_file_zero (const char *path, off_t from, off_t to)
{
    FILE *file = fopen (path, "r+b");
    cr_assert_not_null (file);
    cr_assert_eq (fseek (file, (long) from, SEEK_SET), 0);
    for (off_t at = from; at < to; at++)
        fputc (0, file);
    fclose (file);
}

//  How many VOIDED records the log holds (read with kp-audit)
static int
s_voided_records (void)
{
    char *program = kp_test_program ("clients/kp-audit");
    char *command = zsys_sprintf ("'%s' replay --dir '%s' --event VOIDED", program,
                                  region->data);
    char *out = NULL;
    cr_assert_eq (kp_test_run (command, 10000, &out, NULL), 0);
    int lines = 0;
    for (const char *cursor = out; *cursor; cursor++)
        lines += *cursor == '\n';
    free (out);
    free (command);
    free (program);
    return lines;
}

//  The log and the body store are synced at the same time: a crash may keep
//  an ACCEPTED record and lose its body. No receipt went out for it, so the
//  next start voids it, and the sender's resend is a new message.
Test (kp_server, a_body_lost_in_a_crash_voids_its_message_and_the_resend_goes)
{
    s_start (NULL);
    zsock_t *police = s_session ("police-oost", 0);
    s_message_t kept, lost;
    s_message_init (&kept, KP__WIRE__MESSAGE_TYPE__SIGNAL, "municipality:GM0153", "kept");
    s_message_init (&lost, KP__WIRE__MESSAGE_TYPE__SIGNAL, "municipality:GM0153",
                    "the body the crash took");
    uint64_t kept_seq = s_submit_ok (police, &kept);
    char *bodies = s_segment_path ("bodies");
    off_t before = s_log_end (bodies);
    uint64_t lost_seq = s_submit_ok (police, &lost);
    zsock_destroy (&police);
    kp_test_broker_stop (region, SIGKILL);
    //  The crash: the log kept the second ACCEPTED, the body store did not
    //  (its bytes are still the zero space written ahead)
    off_t after = s_log_end (bodies);
    cr_assert_gt (after, before);
    s_file_zero (bodies, before, after);
    s_start (NULL);
    cr_assert_eq (s_voided_records (), 1);
    //  A restart before anything new came: voided once, not again
    kp_test_broker_stop (region, SIGTERM);
    s_start (NULL);
    cr_assert_eq (s_voided_records (), 1);
    //  Only the first is delivered
    zsock_t *veilig_thuis = s_session ("vt-twente", 8);
    Kp__Wire__Command *deliver = s_expect (veilig_thuis, KP__WIRE__COMMAND__KIND_DELIVER);
    cr_assert_eq (deliver->deliver->seq, kept_seq);
    s_ack (veilig_thuis, deliver->deliver->seq);
    s_free (deliver);
    cr_assert_null (s_recv (veilig_thuis, 300), "a voided message was delivered");
    //  The resend of the lost one is new: a new seq, not a duplicate
    police = s_session ("police-oost", 0);
    Kp__Wire__Command *reply = s_submit (police, &lost);
    cr_assert_eq (reply->kind_case, KP__WIRE__COMMAND__KIND_RECEIPT);
    cr_assert_not (reply->receipt->duplicate);
    cr_assert_gt (reply->receipt->seq, lost_seq);
    uint64_t resent_seq = reply->receipt->seq;
    s_free (reply);
    deliver = s_expect (veilig_thuis, KP__WIRE__COMMAND__KIND_DELIVER);
    cr_assert_eq (deliver->deliver->seq, resent_seq);
    cr_assert_eq (deliver->deliver->body.len, strlen ("the body the crash took"));
    cr_assert_arr_eq (deliver->deliver->body.data, "the body the crash took",
                      deliver->deliver->body.len);
    s_ack (veilig_thuis, deliver->deliver->seq);
    s_free (deliver);
    zsock_destroy (&police);
    //  The ack is logged once its status reaches the police (the first
    //  message's status comes too)
    police = s_session ("police-oost", 8);
    bool resent_delivered = false;
    for (int count = 0; count < 2; count++) {
        Kp__Wire__Command *status = s_expect (police, KP__WIRE__COMMAND__KIND_STATUS);
        cr_assert_eq (status->status->status, KP__WIRE__STATUS_KIND__DELIVERED);
        if (memcmp (status->status->id.data, lost.id, KP_ID_SIZE) == 0)
            resent_delivered = true;
        s_ack (police, status->status->seq);
        s_free (status);
    }
    cr_assert (resent_delivered);
    zsock_destroy (&police);
    zsock_destroy (&veilig_thuis);
    //  And it stays voided across the next restart, when the body store has
    //  grown past its body's position again
    kp_test_broker_stop (region, SIGTERM);
    s_start (NULL);
    veilig_thuis = s_session ("vt-twente", 8);
    cr_assert_null (s_recv (veilig_thuis, 300), "a voided message came back");
    zsock_destroy (&veilig_thuis);
    cr_assert_eq (s_voided_records (), 1);
    //  The auditor's check agrees
    kp_test_broker_stop (region, SIGTERM);
    char *program = kp_test_program ("clients/kp-audit");
    char *command = zsys_sprintf ("'%s' verify --dir '%s' --checkpoint-key '%s/checkpoint.pub'",
                                  program, region->data, region->region);
    char *out = NULL, *err = NULL;
    cr_assert_eq (kp_test_run (command, 10000, &out, &err), 0, "%s%s", out, err);
    cr_assert_not_null (strstr (out, "1 voided"), "%s", out);
    free (out);
    free (err);
    free (command);
    free (program);
    free (bodies);
}

Test (kp_server, torn_tail_is_cut_and_mid_log_damage_stops_the_start)
{
    s_start (NULL);
    uint64_t seqs [3];
    s_submit_signals (3, seqs);
    kp_test_broker_stop (region, SIGKILL);
    //  A torn record at the end of the records, as a power cut could leave
    char *segment = s_segment_path ("log");
    FILE *file = fopen (segment, "r+b");
    cr_assert_eq (fseek (file, (long) s_log_end (segment), SEEK_SET), 0);
    fwrite ("\x40\x00\x00\x00\x12\x34", 1, 6, file);
    fclose (file);
    s_start (NULL);
    s_receive_all (3, seqs);
    kp_test_broker_stop (region, SIGTERM);

    //  A flipped byte in the middle: refuse to start, name file and offset
    file = fopen (segment, "r+b");
    fseek (file, 200, SEEK_SET);
    int byte = fgetc (file);
    fseek (file, 200, SEEK_SET);
    fputc (byte ^ 0x55, file);
    fclose (file);
    cr_assert_neq (kp_test_broker_start (region, NULL), 0, "started on a damaged log");
    char *log_path = zsys_sprintf ("%s/broker.log", region->dir);
    char *out = NULL;
    char *command = zsys_sprintf ("cat %s", log_path);
    kp_test_run (command, 2000, &out, NULL);
    cr_assert_not_null (strstr (out, segment), "the error must name the file");
    cr_assert_not_null (strstr (out, "offset"), "the error must name the offset");
    free (out);
    free (command);
    free (log_path);
    free (segment);
}

Test (kp_server, bad_config_stops_the_start_with_exit_1)
{
    char *path = zsys_sprintf ("%s/bad.cfg", region->dir);
    FILE *file = fopen (path, "w");
    fprintf (file, "security\n    mechanism = plain\n");
    fclose (file);
    char *program = kp_test_program ("broker/ketenpostd");
    char *command = zsys_sprintf ("%s --config %s", program, path);
    char *err = NULL;
    cr_assert_eq (kp_test_run (command, 5000, NULL, &err), 1);
    cr_assert_gt (strlen (err), 0);
    free (err);
    free (command);
    command = zsys_sprintf ("%s --no-such-flag", program);
    cr_assert_eq (kp_test_run (command, 5000, NULL, NULL), 2);
    free (command);
    free (program);
    free (path);
}

//  --------------------------------------------------------------------------
//  The auditor's questions

//  Add an auditor partner to the region (before s_start)
static void
s_add_auditor (void)
{
    cr_assert_eq (kp_region_add (region->region, "audit-twente", KP__WIRE__ROLE__AUDITOR,
                                 "Privacy officer", NULL, false, NULL), 0);
}

//  Ask, expecting an AuditReply; caller frees
static Kp__Wire__Command *
s_audit_ask (zsock_t *dealer, Kp__Wire__AuditRequest *request)
{
    Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
    command.kind_case = KP__WIRE__COMMAND__KIND_AUDIT_REQUEST;
    command.audit_request = request;
    s_send (dealer, &command);
    Kp__Wire__Command *reply = s_recv (dealer, S_WAIT);
    cr_assert_not_null (reply, "no answer to an audit request");
    return reply;
}

//  The latest checkpoint, verified with the region's key
static kp_checkpoint_t
s_audit_checkpoint (zsock_t *auditor)
{
    Kp__Wire__AuditRequest request = KP__WIRE__AUDIT_REQUEST__INIT;
    Kp__Wire__CheckpointQuery query = KP__WIRE__CHECKPOINT_QUERY__INIT;
    request.query_case = KP__WIRE__AUDIT_REQUEST__QUERY_CHECKPOINT;
    request.checkpoint = &query;
    request.tag = 7;
    Kp__Wire__Command *reply = s_audit_ask (auditor, &request);
    cr_assert_eq (reply->kind_case, KP__WIRE__COMMAND__KIND_AUDIT_REPLY);
    cr_assert_eq (reply->audit_reply->tag, 7);
    uint8_t public_key [KP_CHECKPOINT_PUBLIC];
    cr_assert_eq (kp_checkpoint_load_public (region->region, public_key), 0);
    kp_checkpoint_t checkpoint;
    const char *error = NULL;
    const char *note = reply->audit_reply->checkpoint;
    cr_assert_eq (kp_checkpoint_verify (note, strlen (note), "ketenpostd", public_key,
                                        &checkpoint, &error), 0, "%s: %s", error, note);
    s_free (reply);
    return checkpoint;
}

//  Poll until the latest checkpoint covers more than size records
static kp_checkpoint_t
s_audit_checkpoint_past (zsock_t *auditor, uint64_t size)
{
    int64_t deadline = kp_mono_ms () + S_WAIT;
    kp_checkpoint_t checkpoint = s_audit_checkpoint (auditor);
    while (checkpoint.size <= size && kp_mono_ms () < deadline) {
        zpoller_t *poller = zpoller_new (NULL);
        zpoller_wait (poller, 100);     //  checkpoints come about once a second
        zpoller_destroy (&poller);
        checkpoint = s_audit_checkpoint (auditor);
    }
    cr_assert_gt (checkpoint.size, size, "no checkpoint past %" PRIu64, size);
    return checkpoint;
}

Test (kp_server, auditor_fetches_the_log_and_its_root_matches_the_signed_checkpoint)
{
    s_add_auditor ();
    s_start (NULL);
    zsock_t *police = s_session ("police-oost", 0);
    s_message_t signal;
    s_message_init (&signal, KP__WIRE__MESSAGE_TYPE__SIGNAL, "municipality:GM0153", "s");
    uint64_t seq = s_submit_ok (police, &signal);
    zsock_t *auditor = s_session ("audit-twente", 0);
    kp_checkpoint_t checkpoint = s_audit_checkpoint_past (auditor, seq);
    cr_assert_str_eq (checkpoint.origin, "ketenpostd");

    //  Every record up to the checkpoint, in batches; the root over them
    //  is the signed one, and the message's record is among them
    kp_merkle_edge_t edge;
    kp_merkle_edge_init (&edge);
    bool found = false;
    while (edge.size < checkpoint.size) {
        Kp__Wire__AuditRequest request = KP__WIRE__AUDIT_REQUEST__INIT;
        Kp__Wire__EntriesQuery query = KP__WIRE__ENTRIES_QUERY__INIT;
        query.start = edge.size;
        query.count = 3;
        request.query_case = KP__WIRE__AUDIT_REQUEST__QUERY_ENTRIES;
        request.entries = &query;
        Kp__Wire__Command *reply = s_audit_ask (auditor, &request);
        cr_assert_eq (reply->kind_case, KP__WIRE__COMMAND__KIND_AUDIT_REPLY);
        cr_assert_eq (reply->audit_reply->start, edge.size);
        cr_assert_gt (reply->audit_reply->n_entries, 0);
        cr_assert_leq (reply->audit_reply->n_entries, 3);
        for (size_t index = 0; index < reply->audit_reply->n_entries
                            && edge.size < checkpoint.size; index++) {
            ProtobufCBinaryData *entry = &reply->audit_reply->entries [index];
            Kp__Wire__Record *record = kp__wire__record__unpack (NULL, entry->len, entry->data);
            cr_assert_not_null (record);
            cr_assert_eq (record->seq, edge.size);
            if (record->seq == seq) {
                cr_assert_eq (record->event, KP__WIRE__EVENT_KIND__ACCEPTED);
                cr_assert_arr_eq (record->message_id.data, signal.id, KP_ID_SIZE);
                found = true;
            }
            kp__wire__record__free_unpacked (record, NULL);
            uint8_t leaf [KP_MERKLE_HASH];
            kp_merkle_leaf_hash (entry->data, entry->len, leaf);
            kp_merkle_edge_push (&edge, leaf);
        }
        s_free (reply);
    }
    cr_assert (found, "the receipt's seq is not the message's record");
    uint8_t root [KP_MERKLE_HASH];
    kp_merkle_edge_root (&edge, root);
    cr_assert_arr_eq (root, checkpoint.root, KP_MERKLE_HASH);
    zsock_destroy (&auditor);
    zsock_destroy (&police);
}

Test (kp_server, auditor_proves_a_receipted_message_and_the_log_only_grows)
{
    s_add_auditor ();
    s_start (NULL);
    zsock_t *auditor = s_session ("audit-twente", 0);
    kp_checkpoint_t before = s_audit_checkpoint (auditor);
    zsock_t *police = s_session ("police-oost", 0);
    s_message_t signal;
    s_message_init (&signal, KP__WIRE__MESSAGE_TYPE__SIGNAL, "municipality:GM0153", "s");
    uint64_t seq = s_submit_ok (police, &signal);
    kp_checkpoint_t after = s_audit_checkpoint_past (auditor, seq);

    //  Inclusion of the receipt's leaf in the latest checkpoint
    Kp__Wire__AuditRequest request = KP__WIRE__AUDIT_REQUEST__INIT;
    Kp__Wire__InclusionQuery inclusion = KP__WIRE__INCLUSION_QUERY__INIT;
    inclusion.index = seq;
    inclusion.size = after.size;
    request.query_case = KP__WIRE__AUDIT_REQUEST__QUERY_INCLUSION;
    request.inclusion = &inclusion;
    Kp__Wire__Command *reply = s_audit_ask (auditor, &request);
    cr_assert_eq (reply->kind_case, KP__WIRE__COMMAND__KIND_AUDIT_REPLY);
    Kp__Wire__AuditReply *answer = reply->audit_reply;
    cr_assert_eq (answer->size, after.size);
    uint8_t proof [KP_MERKLE_MAX_PROOF * KP_MERKLE_HASH];
    for (size_t index = 0; index < answer->n_proof; index++) {
        cr_assert_eq (answer->proof [index].len, KP_MERKLE_HASH);
        memcpy (proof + index * KP_MERKLE_HASH, answer->proof [index].data, KP_MERKLE_HASH);
    }
    cr_assert (kp_merkle_verify_inclusion (answer->leaf_hash.data, seq, after.size, proof,
                                           answer->n_proof, after.root));
    proof [0] ^= 1;
    cr_assert_not (kp_merkle_verify_inclusion (answer->leaf_hash.data, seq, after.size,
                                               proof, answer->n_proof, after.root));
    s_free (reply);

    //  The earlier checkpoint is a prefix of the later one
    Kp__Wire__ConsistencyQuery consistency = KP__WIRE__CONSISTENCY_QUERY__INIT;
    consistency.old_size = before.size;
    request.query_case = KP__WIRE__AUDIT_REQUEST__QUERY_CONSISTENCY;
    request.consistency = &consistency;
    reply = s_audit_ask (auditor, &request);
    cr_assert_eq (reply->kind_case, KP__WIRE__COMMAND__KIND_AUDIT_REPLY);
    answer = reply->audit_reply;
    uint64_t new_size = answer->size;
    cr_assert_geq (new_size, after.size);
    kp_checkpoint_t latest = s_audit_checkpoint (auditor);
    cr_assert_eq (latest.size, new_size);
    for (size_t index = 0; index < answer->n_proof; index++)
        memcpy (proof + index * KP_MERKLE_HASH, answer->proof [index].data, KP_MERKLE_HASH);
    cr_assert (kp_merkle_verify_consistency (before.size, new_size, before.root, latest.root,
                                             proof, answer->n_proof));
    s_free (reply);

    //  Out of range: refused, with a reason
    inclusion.index = new_size + 100;
    inclusion.size = 0;
    request.query_case = KP__WIRE__AUDIT_REQUEST__QUERY_INCLUSION;
    request.inclusion = &inclusion;
    reply = s_audit_ask (auditor, &request);
    cr_assert_eq (reply->kind_case, KP__WIRE__COMMAND__KIND_ERROR);
    cr_assert_eq (reply->error->code, KP__WIRE__ERROR_CODE__UNKNOWN_REFERENCE);
    s_free (reply);
    zsock_destroy (&police);
    zsock_destroy (&auditor);
}

Test (kp_server, only_an_auditor_may_read_the_log_and_every_question_is_logged)
{
    s_add_auditor ();
    s_start (NULL);
    zsock_t *police = s_session ("police-oost", 0);
    Kp__Wire__AuditRequest request = KP__WIRE__AUDIT_REQUEST__INIT;
    Kp__Wire__CheckpointQuery query = KP__WIRE__CHECKPOINT_QUERY__INIT;
    request.query_case = KP__WIRE__AUDIT_REQUEST__QUERY_CHECKPOINT;
    request.checkpoint = &query;
    Kp__Wire__Command *reply = s_audit_ask (police, &request);
    cr_assert_eq (reply->kind_case, KP__WIRE__COMMAND__KIND_ERROR);
    cr_assert_eq (reply->error->code, KP__WIRE__ERROR_CODE__FORBIDDEN);
    s_free (reply);
    zsock_t *auditor = s_session ("audit-twente", 0);
    s_audit_checkpoint (auditor);
    zsock_destroy (&auditor);
    zsock_destroy (&police);
    kp_test_broker_stop (region, SIGTERM);

    //  Both questions are in the log: the refused one and the answered one
    char *path = zsys_sprintf ("%s/log", region->data);
    kp_log_status_t status;
    kp_log_t *log = kp_log_open (path, 1 << 26, false, &status);
    cr_assert_not_null (log);
    uint64_t forbidden = 0, answered = 0;
    for (uint64_t seq = 0; seq < kp_log_size (log); seq++) {
        uint64_t pos;
        cr_assert_eq (kp_log_seek (log, seq, &pos), 0);
        size_t size;
        const uint8_t *data = kp_log_read (log, pos, &size);
        Kp__Wire__Record *record = kp__wire__record__unpack (NULL, size, data);
        cr_assert_not_null (record);
        if (record->event == KP__WIRE__EVENT_KIND__AUDITOR_ACCESS) {
            cr_assert_str_eq (record->purpose, "checkpoint");
            if (record->outcome == KP__WIRE__ERROR_CODE__FORBIDDEN
            &&  streq (record->sender, "police-oost"))
                forbidden++;
            if (record->outcome == KP__WIRE__ERROR_CODE__OK
            &&  streq (record->sender, "audit-twente"))
                answered++;
        }
        kp__wire__record__free_unpacked (record, NULL);
    }
    cr_assert_eq (forbidden, 1);
    cr_assert_eq (answered, 1);
    kp_log_destroy (&log);
    free (path);
}

//  --------------------------------------------------------------------------
//  The school notification's life cycle, as the broker sees it

typedef struct {
    Kp__Wire__EventKind event;
    Kp__Wire__Record *found [16];
    size_t count;
} s_events_t;

static int
s_events_visit (const uint8_t *data, size_t size, uint64_t seq, uint64_t pos, void *arg)
{
    (void) seq;
    (void) pos;
    s_events_t *events = (s_events_t *) arg;
    Kp__Wire__Record *record = kp__wire__record__unpack (NULL, size, data);
    cr_assert_not_null (record);
    if (record->event == events->event && events->count < 16)
        events->found [events->count++] = record;
    else
        kp__wire__record__free_unpacked (record, NULL);
    return 0;
}

//  Stop the broker and collect the log's records of one event kind
static void
s_events_collect (s_events_t *events, Kp__Wire__EventKind event)
{
    kp_test_broker_stop (region, SIGTERM);
    memset (events, 0, sizeof *events);
    events->event = event;
    char *path = zsys_sprintf ("%s/log", region->data);
    kp_log_status_t status;
    kp_log_t *log = kp_log_open (path, 1 << 26, false, &status);
    cr_assert_not_null (log);
    cr_assert_eq (kp_log_replay (log, s_events_visit, events), 0);
    kp_log_destroy (&log);
    free (path);
}

static void
s_events_free (s_events_t *events)
{
    for (size_t index = 0; index < events->count; index++)
        kp__wire__record__free_unpacked (events->found [index], NULL);
    events->count = 0;
}

//  True if the bytes of marker are anywhere in the files of dir
static bool
s_dir_holds (const char *dir, const char *marker)
{
    zdir_t *tree = zdir_new (dir, NULL);
    cr_assert_not_null (tree);
    zlist_t *files = zdir_list (tree);
    bool found = false;
    for (zfile_t *file = (zfile_t *) zlist_first (files); file && !found;
         file = (zfile_t *) zlist_next (files)) {
        char *text = NULL;
        size_t size = 0;
        FILE *stream = fopen (zfile_filename (file, NULL), "rb");
        if (!stream)
            continue;
        FILE *copy = open_memstream (&text, &size);
        char buffer [4096];
        size_t count;
        while ((count = fread (buffer, 1, sizeof buffer, stream)) > 0)
            fwrite (buffer, 1, count, copy);
        fclose (copy);
        fclose (stream);
        found = memmem (text, size, marker, strlen (marker)) != NULL;
        free (text);
    }
    zlist_destroy (&files);
    zdir_destroy (&tree);
    return found;
}

Test (kp_server, school_notification_warns_when_overdue_and_its_body_goes_once_read)
{
    s_start (NULL);
    const char *marker = "MARKER-Handle-with-Care-4711";
    zsock_t *leerplicht = s_session ("lp-enschede", 4);
    s_message_t notification;
    s_message_init (&notification, KP__WIRE__MESSAGE_TYPE__SCHOOL_NOTIFICATION,
                    "school:12AB00", marker);
    notification.envelope.due_at_ms = kp_now_ms () + 300;
    uint64_t seq = s_submit_ok (leerplicht, &notification);

    //  The school is offline at the due time: the sender is warned
    Kp__Wire__Command *status = s_expect (leerplicht, KP__WIRE__COMMAND__KIND_STATUS);
    cr_assert_eq (status->status->status, KP__WIRE__STATUS_KIND__OVERDUE);
    cr_assert_eq (status->status->type, KP__WIRE__MESSAGE_TYPE__SCHOOL_NOTIFICATION);
    s_ack (leerplicht, status->status->seq);
    s_free (status);

    //  It still arrives; the school acks with its signed receipt, which
    //  reaches the sender with the DELIVERED status
    zsock_t *school = s_session ("school-12ab00", 4);
    Kp__Wire__Command *deliver = s_expect (school, KP__WIRE__COMMAND__KIND_DELIVER);
    cr_assert_eq (deliver->deliver->seq, seq);
    s_free (deliver);
    Kp__Wire__Ack ack = KP__WIRE__ACK__INIT;
    ack.seq = seq;
    ack.receipt.data = (uint8_t *) "signed receipt bytes";
    ack.receipt.len = strlen ("signed receipt bytes");
    Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
    command.kind_case = KP__WIRE__COMMAND__KIND_ACK;
    command.ack = &ack;
    s_send (school, &command);
    status = s_expect (leerplicht, KP__WIRE__COMMAND__KIND_STATUS);
    cr_assert_eq (status->status->status, KP__WIRE__STATUS_KIND__DELIVERED);
    cr_assert_eq (status->status->receipt.len, strlen ("signed receipt bytes"));
    cr_assert_arr_eq (status->status->receipt.data, "signed receipt bytes",
                      status->status->receipt.len);
    s_ack (leerplicht, status->status->seq);
    s_free (status);
    cr_assert (s_dir_holds (region->data, marker), "the body is kept until it is read");

    //  The read receipt: feedback from the school; then the body is gone
    s_message_t receipt;
    s_message_init (&receipt, KP__WIRE__MESSAGE_TYPE__FEEDBACK, "partner:lp-enschede",
                    "sealed read receipt");
    s_message_refer (&receipt, notification.id);
    s_submit_ok (school, &receipt);
    zsock_destroy (&school);
    zsock_destroy (&leerplicht);

    s_events_t events;
    s_events_collect (&events, KP__WIRE__EVENT_KIND__BODY_DELETED);
    cr_assert_eq (events.count, 1);
    cr_assert_eq (events.found [0]->ref_seq, seq);
    cr_assert_arr_eq (events.found [0]->message_id.data, notification.id, KP_ID_SIZE);
    cr_assert_eq (events.found [0]->body_hash.len, KP_HASH_SIZE);
    cr_assert_arr_eq (events.found [0]->body_hash.data, notification.hash, KP_HASH_SIZE);
    s_events_free (&events);
    cr_assert_not (s_dir_holds (region->data, marker), "the body is still on disk");
    s_events_collect (&events, KP__WIRE__EVENT_KIND__ACKNOWLEDGED);
    cr_assert_eq (events.count, 1);
    cr_assert_eq (events.found [0]->receipt_hash.len, KP_HASH_SIZE);
    s_events_free (&events);
    //  And the broker starts again on the log with the erased body
    s_start (NULL);
}

Test (kp_server, expired_school_notification_loses_its_body)
{
    s_start (NULL);
    const char *marker = "MARKER-expired-notification-0815";
    zsock_t *leerplicht = s_session ("lp-enschede", 4);
    s_message_t notification;
    s_message_init (&notification, KP__WIRE__MESSAGE_TYPE__SCHOOL_NOTIFICATION,
                    "school:12AB00", marker);
    notification.envelope.expires_at_ms = kp_now_ms () + 300;
    uint64_t seq = s_submit_ok (leerplicht, &notification);
    Kp__Wire__Command *status = s_expect (leerplicht, KP__WIRE__COMMAND__KIND_STATUS);
    cr_assert_eq (status->status->status, KP__WIRE__STATUS_KIND__EXPIRED_UNDELIVERED);
    s_free (status);
    zsock_destroy (&leerplicht);
    s_events_t events;
    s_events_collect (&events, KP__WIRE__EVENT_KIND__BODY_DELETED);
    cr_assert_eq (events.count, 1);
    cr_assert_eq (events.found [0]->ref_seq, seq);
    cr_assert_eq (events.found [0]->outcome, KP__WIRE__ERROR_CODE__EXPIRED);
    s_events_free (&events);
    cr_assert_not (s_dir_holds (region->data, marker));
}

Test (kp_server, refused_directory_question_is_an_error_and_an_audit_record)
{
    s_start (NULL);
    zsock_t *school = s_session ("school-12ab00", 0);
    Kp__Wire__DirectoryQuery query = KP__WIRE__DIRECTORY_QUERY__INIT;
    query.type = KP__WIRE__MESSAGE_TYPE__REFERRAL;
    query.address = "municipality:GM0153";
    Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
    command.kind_case = KP__WIRE__COMMAND__KIND_DIRECTORY_QUERY;
    command.directory_query = &query;
    s_send (school, &command);
    Kp__Wire__Command *reply = s_expect (school, KP__WIRE__COMMAND__KIND_ERROR);
    cr_assert_eq (reply->error->code, KP__WIRE__ERROR_CODE__FORBIDDEN);
    cr_assert_gt (strlen (reply->error->reason), 10);
    s_free (reply);
    zsock_destroy (&school);
    s_events_t events;
    s_events_collect (&events, KP__WIRE__EVENT_KIND__REJECTED);
    cr_assert_eq (events.count, 1);
    cr_assert_str_eq (events.found [0]->sender, "school-12ab00");
    cr_assert_eq (events.found [0]->type, KP__WIRE__MESSAGE_TYPE__REFERRAL);
    cr_assert_eq (events.found [0]->outcome, KP__WIRE__ERROR_CODE__FORBIDDEN);
    cr_assert_eq (events.found [0]->message_id.len, 0);
    s_events_free (&events);
}

Test (kp_server, auditor_gets_sealed_bodies_only_of_the_types_the_region_opens)
{
    s_add_auditor ();
    s_start ("audit\n    open-types = \"signal\"\n");
    zsock_t *police = s_session ("police-oost", 0);
    s_message_t signal;
    s_message_init (&signal, KP__WIRE__MESSAGE_TYPE__SIGNAL, "municipality:GM0153",
                    "sealed signal bytes");
    uint64_t seq = s_submit_ok (police, &signal);
    zsock_t *veilig_thuis = s_session ("vt-twente", 0);
    s_message_t referral;
    s_message_init (&referral, KP__WIRE__MESSAGE_TYPE__REFERRAL, "municipality:GM0153",
                    "sealed referral bytes");
    s_submit_ok (veilig_thuis, &referral);

    zsock_t *auditor = s_session ("audit-twente", 0);
    Kp__Wire__AuditRequest request = KP__WIRE__AUDIT_REQUEST__INIT;
    Kp__Wire__BodyQuery query = KP__WIRE__BODY_QUERY__INIT;
    query.id.data = signal.id;
    query.id.len = KP_ID_SIZE;
    request.query_case = KP__WIRE__AUDIT_REQUEST__QUERY_BODY;
    request.body = &query;
    Kp__Wire__Command *reply = s_audit_ask (auditor, &request);
    cr_assert_eq (reply->kind_case, KP__WIRE__COMMAND__KIND_AUDIT_REPLY,
                  "%s", reply->kind_case == KP__WIRE__COMMAND__KIND_ERROR?
                  reply->error->reason: "");
    Kp__Wire__AuditReply *answer = reply->audit_reply;
    cr_assert_eq (answer->seq, seq);
    cr_assert_eq (answer->body.len, strlen ("sealed signal bytes"));
    cr_assert_arr_eq (answer->body.data, "sealed signal bytes", answer->body.len);
    cr_assert_not_null (answer->envelope);
    cr_assert_str_eq (answer->envelope->sender, "police-oost");
    cr_assert_arr_eq (answer->envelope->id.data, signal.id, KP_ID_SIZE);
    s_free (reply);

    //  Referrals are not open to auditors in this region
    query.id.data = referral.id;
    reply = s_audit_ask (auditor, &request);
    cr_assert_eq (reply->kind_case, KP__WIRE__COMMAND__KIND_ERROR);
    cr_assert_eq (reply->error->code, KP__WIRE__ERROR_CODE__FORBIDDEN);
    s_free (reply);
    uint8_t unknown [KP_ID_SIZE] = { 1, 2, 3 };
    query.id.data = unknown;
    reply = s_audit_ask (auditor, &request);
    cr_assert_eq (reply->kind_case, KP__WIRE__COMMAND__KIND_ERROR);
    cr_assert_eq (reply->error->code, KP__WIRE__ERROR_CODE__UNKNOWN_REFERENCE);
    s_free (reply);
    zsock_destroy (&auditor);
    zsock_destroy (&veilig_thuis);
    zsock_destroy (&police);

    //  Each question is in the log, naming the message
    s_events_t events;
    s_events_collect (&events, KP__WIRE__EVENT_KIND__AUDITOR_ACCESS);
    cr_assert_eq (events.count, 3);
    cr_assert_str_eq (events.found [0]->purpose, "body");
    cr_assert_arr_eq (events.found [0]->message_id.data, signal.id, KP_ID_SIZE);
    cr_assert_eq (events.found [1]->outcome, KP__WIRE__ERROR_CODE__FORBIDDEN);
    s_events_free (&events);
}

Test (kp_server, registrations_of_partner_keys_are_in_the_log)
{
    s_start (NULL);
    kp_test_broker_stop (region, SIGTERM);
    s_events_t events;
    s_events_collect (&events, KP__WIRE__EVENT_KIND__PARTNER_REGISTERED);
    cr_assert_eq (events.count, 7, "one record per partner of the demo region");
    for (size_t index = 0; index < events.count; index++) {
        cr_assert_eq (events.found [index]->key_hash.len, KP_HASH_SIZE);
        cr_assert_eq (events.found [index]->body_hash.len, KP_HASH_SIZE,
                      "%s: no hash of its registration", events.found [index]->sender);
    }
    s_events_free (&events);
    //  A restart logs nothing new: the same keys were seen before
    s_start (NULL);
    s_events_collect (&events, KP__WIRE__EVENT_KIND__PARTNER_REGISTERED);
    cr_assert_eq (events.count, 7);
    s_events_free (&events);
}
