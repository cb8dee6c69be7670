/*  =========================================================================
    test_kp_client - kp_msg without a broker; kp_client against a real one

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
    Suite kp_msg builds messages, bodies and JSON in memory, and received
    messages from hand-made wire commands. Suite kp_client runs the real
    ketenpostd from the build tree (tests/kp_testutil.h) with the demo
    partners. All persons are fictitious; no BSN appears anywhere.
*/
#include "kp_testutil.h"
#include "kp_msg_internal.h"
#include "kp_body.pb-c.h"
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <sodium.h>
#include <signal.h>
#include <sys/stat.h>

#define S_SIGNAL_BODY \
    "{\"kind\":\"MELDING\",\"violence_types\":[\"PARTNER_VIOLENCE\"]," \
    "\"urgency\":\"ACUTE\",\"municipality\":\"GM0153\",\"persons\":[{\"role\":" \
    "\"VICTIM\",\"name\":\"Fictief Persoon\",\"date_of_birth\":\"1990-01-01\"}]," \
    "\"children_present\":1,\"narrative\":\"Fictieve testmelding.\"}"
#define S_REFERRAL_BODY \
    "{\"case_id\":\"VT-2026-0001\",\"safety_assessment\":\"SAFETY_STRUCTURAL\"," \
    "\"safety_conditions\":[\"vaste afspraken\"],\"monitoring\":{\"who\":" \
    "\"lt-enschede\",\"until\":\"2026-12-31\"},\"family_informed\":true}"
#define S_REQUEST_BODY \
    "{\"child_name\":\"Fictief Kind\",\"date_of_birth\":\"2015-03-04\"," \
    "\"school_day\":\"2030-11-25\",\"lookup_hint\":\"7511 AA\"}"
#define S_NOTIFICATION_BODY \
    "{\"child_name\":\"Fictief Kind\",\"date_of_birth\":\"2015-03-04\"," \
    "\"school_day\":\"2030-11-25\"}"
#define S_ID_HEX "0123456789abcdef0123456789abcdef"
#define S_REF_HEX "fedcba9876543210fedcba9876543210"
#define S_WAIT 5000                 //  msec to wait for something that must come

//  ==========================================================================
//  kp_msg: no broker

Test (kp_msg, new_refuses_unknown_type)
{
    cr_assert_null (kp_msg_new ("letter", "partner:vt-twente"));
    cr_assert_null (kp_msg_new ("", "partner:vt-twente"));
    kp_msg_t *msg = kp_msg_new ("school_notification", "school:12AB00");
    cr_assert_not_null (msg);
    cr_expect_str_eq (kp_msg_type (msg), "school_notification");
    cr_expect_str_eq (kp_msg_recipient (msg), "school:12AB00");
    cr_expect_str_eq (kp_msg_id (msg), "");
    cr_expect_str_eq (kp_msg_reference (msg), "");
    cr_expect_not (kp_msg_is_status (msg));
    kp_msg_destroy (&msg);
    kp_msg_destroy (&msg);
    cr_assert_null (msg);
}

Test (kp_msg, new_without_type_is_a_programming_error, .signal = SIGABRT)
{
    kp_msg_new (NULL, "partner:vt-twente");
}

Test (kp_msg, hex_setters_take_exact_lengths_only)
{
    kp_msg_t *msg = kp_msg_new ("feedback", "partner:police-oost");
    cr_assert_not_null (msg);
    cr_expect_eq (kp_msg_set_id (msg, "0123"), -1);
    cr_expect_str_not_empty (kp_msg_error (msg));
    cr_expect_eq (kp_msg_set_id (msg, "0123456789abcdef0123456789abcdeg"), -1);
    cr_expect_eq (kp_msg_set_id (msg, S_ID_HEX "00"), -1);
    cr_expect_str_eq (kp_msg_id (msg), "");
    cr_expect_eq (kp_msg_set_id (msg, "0123456789ABCDEF0123456789ABCDEF"), 0);
    cr_expect_str_eq (kp_msg_id (msg), S_ID_HEX);
    cr_expect_eq (kp_msg_set_reference (msg, "xyz"), -1);
    cr_expect_eq (kp_msg_set_reference (msg, S_REF_HEX), 0);
    cr_expect_str_eq (kp_msg_reference (msg), S_REF_HEX);
    cr_expect_eq (kp_msg_set_subject (msg, S_ID_HEX), -1);
    cr_expect_eq (kp_msg_set_subject (msg, S_ID_HEX S_REF_HEX), 0);
    kp_msg_destroy (&msg);
}

//  One body case: type, recipient, JSON, whether it must be accepted, and
//  the schema the packed body must then decode with
typedef struct {
    const char *type;
    const char *recipient;
    const char *json;
    bool valid;
    const ProtobufCMessageDescriptor *schema;
} s_body_case_t;

static const s_body_case_t s_body_cases [] = {
    { "signal", "municipality:GM0153", S_SIGNAL_BODY, true,
      &kp__body__signal__descriptor },
    { "signal", "municipality:GM0153", "{\"municipality\":\"Enschede\"}", false, NULL },
    { "signal", "municipality:GM0153", "{\"colour\":\"blue\"}", false, NULL },
    { "signal", "municipality:GM0153", "{\"persons\":[{\"date_of_birth\":\"1-1-1990\"}]}",
      false, NULL },
    { "signal", "municipality:GM0153", "not json", false, NULL },
    { "signal", "municipality:GM0153", "{}", false, NULL },
    { "referral", "municipality:GM0153", S_REFERRAL_BODY, true,
      &kp__body__referral__descriptor },
    { "feedback", "partner:police-oost", "{\"status\":\"ACCEPTED\"}", true,
      &kp__body__feedback__descriptor },
    { "feedback", "partner:police-oost", "{}", false, NULL },
    { "feedback", "partner:police-oost",
      "{\"status\":\"ACCEPTED\",\"decline_reason\":\"NOT_OUR_CLIENT\"}", false, NULL },
    { "feedback", "partner:police-oost",
      "{\"status\":\"DECLINED\",\"decline_reason\":\"NOT_OUR_CLIENT\"}", true,
      &kp__body__feedback__descriptor },
    //  Leg to leerplicht: the request schema, with its lookup hint
    { "school_notification", "municipality:GM0153", S_REQUEST_BODY, true,
      &kp__body__school_notification_request__descriptor },
    //  Leg to the school: the schema has no room for a hint
    { "school_notification", "school:12AB00", S_REQUEST_BODY, false, NULL },
    { "school_notification", "school:12AB00", S_NOTIFICATION_BODY, true,
      &kp__body__school_notification__descriptor },
    { "school_notification", "school:12AB00",
      "{\"child_name\":\"Fictief Kind\",\"date_of_birth\":\"2015-03-04\","
      "\"school_day\":\"2030-11-25\",\"code_words\":\"Domestic violence\"}",
      false, NULL },
    { "school_notification", "school:12AB00",
      "{\"child_name\":\"Fictief Kind\",\"school_day\":\"2030-11-25\"}", false, NULL },
    { "school_notification", "municipality:GM0153",
      "{\"date_of_birth\":\"2015-03-04\",\"school_day\":\"2030-11-25\"}", false, NULL },
};

ParameterizedTestParameters (kp_msg, body_json_per_type)
{
    static size_t indexes [sizeof s_body_cases / sizeof s_body_cases [0]];
    for (size_t index = 0; index < sizeof indexes / sizeof indexes [0]; index++)
        indexes [index] = index;
    return cr_make_param_array (size_t, indexes, sizeof indexes / sizeof indexes [0]);
}

ParameterizedTest (size_t *index, kp_msg, body_json_per_type)
{
    const s_body_case_t *test_case = s_body_cases + *index;
    kp_msg_t *msg = kp_msg_new (test_case->type, test_case->recipient);
    cr_assert_not_null (msg);
    int rc = kp_msg_set_body_json (msg, test_case->json);
    if (!test_case->valid) {
        cr_expect_eq (rc, -1, "case %zu accepted: %s", *index, test_case->json);
        cr_expect_str_not_empty (kp_msg_error (msg));
        cr_expect_null (strchr (kp_msg_error (msg), '\n'));
        kp_msg_destroy (&msg);
        return;
    }
    cr_assert_eq (rc, 0, "case %zu refused: %s", *index, kp_msg_error (msg));
    size_t size;
    const uint8_t *data = kp_msg_body (msg, &size);
    ProtobufCMessage *body =
        protobuf_c_message_unpack (test_case->schema, NULL, size, data);
    cr_assert_not_null (body);
    cr_expect_eq (body->n_unknown_fields, 0);
    protobuf_c_message_free_unpacked (body, NULL);
    kp_msg_destroy (&msg);
}

Test (kp_msg, school_notification_gets_the_code_words)
{
    kp_msg_t *msg = kp_msg_new ("school_notification", "school:12AB00");
    cr_assert_eq (kp_msg_set_body_json (msg, S_NOTIFICATION_BODY), 0);
    size_t size;
    const uint8_t *data = kp_msg_body (msg, &size);
    Kp__Body__SchoolNotification *body =
        kp__body__school_notification__unpack (NULL, size, data);
    cr_assert_not_null (body);
    cr_expect_str_eq (body->code_words, "Handle with Care");
    cr_expect_str_eq (body->child_name, "Fictief Kind");
    kp__body__school_notification__free_unpacked (body, NULL);
    kp_msg_destroy (&msg);
}

Test (kp_msg, seal_sets_id_and_checks_the_body)
{
    kp_msg_t *msg = kp_msg_new ("signal", "municipality:GM0153");
    cr_assert_eq (kp_msg_seal (msg), -1, "no body yet");
    cr_expect_str_eq (kp_msg_error (msg), "no body set");
    cr_assert_eq (kp_msg_set_body_json (msg, S_SIGNAL_BODY), 0);
    cr_assert_eq (kp_msg_seal (msg), 0, "%s", kp_msg_error (msg));
    cr_expect_eq (strlen (kp_msg_id (msg)), 32);
    char *first_id = strdup (kp_msg_id (msg));
    cr_assert_eq (kp_msg_seal (msg), 0);
    cr_expect_str_eq (kp_msg_id (msg), first_id, "a resend keeps its id");
    free (first_id);

    //  body_length and body_hash describe the sealed body: kp_client
    //  fills them after sealing
    Kp__Wire__Envelope envelope = KP__WIRE__ENVELOPE__INIT;
    kp_msg_fill_envelope (msg, &envelope);
    cr_expect_eq (envelope.body_length, 0);
    cr_expect_eq (envelope.body_hash.len, 0);
    cr_expect_eq (envelope.due_at_ms, 0, "only a school notification is due");
    cr_expect_eq (envelope.type, KP__WIRE__MESSAGE_TYPE__SIGNAL);
    cr_expect_str_eq (envelope.recipient, "municipality:GM0153");
    cr_expect_gt (envelope.created_at_ms, 0);
    cr_expect_eq (envelope.reference.len, 0);
    cr_expect_eq (envelope.subject.len, 0);

    kp_msg_set_purpose (msg, "two\nlines");
    cr_expect_eq (kp_msg_seal (msg), -1);
    kp_msg_destroy (&msg);
}

Test (kp_msg, seal_checks_raw_bodies_too)
{
    kp_msg_t *msg = kp_msg_new ("school_notification", "school:12AB00");
    //  A request (with hint) packed by hand and sent to a school: field 4
    //  is school_day there, field 3 code_words, so the rules refuse it
    Kp__Body__SchoolNotificationRequest request =
        KP__BODY__SCHOOL_NOTIFICATION_REQUEST__INIT;
    request.child_name = (char *) "Fictief Kind";
    request.date_of_birth = (char *) "2015-03-04";
    request.school_day = (char *) "2030-11-25";
    request.lookup_hint = (char *) "7511 AA";
    uint8_t packed [256];
    size_t size = kp__body__school_notification_request__pack (&request, packed);
    kp_msg_set_body (msg, packed, size);
    cr_expect_eq (kp_msg_seal (msg), -1);
    cr_expect_str_not_empty (kp_msg_error (msg));
    kp_msg_set_body (msg, (const uint8_t *) "\xff\xff\xff", 3);
    cr_expect_eq (kp_msg_seal (msg), -1);
    kp_msg_set_body (msg, NULL, 0);
    cr_expect_eq (kp_msg_seal (msg), -1);
    cr_expect_str_eq (kp_msg_error (msg), "body is empty");
    kp_msg_destroy (&msg);
}

Test (kp_msg, iso_time_is_utc_with_milliseconds)
{
    char *text = kp_msg_iso_time (0);
    cr_expect_str_eq (text, "1970-01-01T00:00:00.000Z");
    free (text);
    text = kp_msg_iso_time (1795000000123);
    cr_expect_str_eq (text, "2026-11-18T11:06:40.123Z");
    free (text);
    text = kp_msg_iso_time (-1);
    cr_expect_str_eq (text, "1969-12-31T23:59:59.999Z");
    free (text);
}

//  --------------------------------------------------------------------------
//  Pack a SchoolNotification body into a new buffer; *size_p its size
static uint8_t *
s_notification_body (const char *code_words, size_t *size_p)
{
    Kp__Body__SchoolNotification notification = KP__BODY__SCHOOL_NOTIFICATION__INIT;
    notification.child_name = (char *) "Fictief Kind";
    notification.date_of_birth = (char *) "2015-03-04";
    notification.code_words = (char *) code_words;
    notification.school_day = (char *) "2030-11-25";
    *size_p = kp__body__school_notification__get_packed_size (&notification);
    uint8_t *data = (uint8_t *) malloc (*size_p);
    kp__body__school_notification__pack (&notification, data);
    return data;
}

//  --------------------------------------------------------------------------
//  A received message from deliver whose body is taken as already opened
static kp_msg_t *
s_delivered (const Kp__Wire__Deliver *deliver, const char **reason_p)
{
    return kp_msg_new_delivered (deliver, deliver->body.data, deliver->body.len, reason_p);
}

//  --------------------------------------------------------------------------
//  Fill deliver with a school notification from lp-enschede to the school;
//  the caller owns deliver->body.data and hash (32 bytes)
static void
s_make_deliver (Kp__Wire__Deliver *deliver, Kp__Wire__Envelope *envelope,
                uint8_t *id, uint8_t *hash)
{
    cr_assert_eq (kp_hex_decode (S_ID_HEX, id, 16), 0);
    size_t size;
    uint8_t *body = s_notification_body ("Handle with Care", &size);
    crypto_hash_sha256 (hash, body, size);
    envelope->id.data = id;
    envelope->id.len = 16;
    envelope->type = KP__WIRE__MESSAGE_TYPE__SCHOOL_NOTIFICATION;
    envelope->recipient = (char *) "school:12AB00";
    envelope->created_at_ms = 1795000000123;
    envelope->body_length = (uint32_t) size;
    envelope->body_hash.data = hash;
    envelope->body_hash.len = 32;
    envelope->sender = (char *) "lp-enschede";
    envelope->sender_role = KP__WIRE__ROLE__LEERPLICHT;
    envelope->recipient_partner = (char *) "school-12ab00";
    envelope->recipient_role = KP__WIRE__ROLE__SCHOOL;
    deliver->seq = 7;
    deliver->envelope = envelope;
    deliver->body.data = body;
    deliver->body.len = size;
    deliver->attempt = 1;
}

Test (kp_msg, delivered_message_renders_as_one_json_line)
{
    Kp__Wire__Deliver deliver = KP__WIRE__DELIVER__INIT;
    Kp__Wire__Envelope envelope = KP__WIRE__ENVELOPE__INIT;
    uint8_t id [16], hash [32];
    s_make_deliver (&deliver, &envelope, id, hash);
    const char *reason = NULL;
    kp_msg_t *msg = s_delivered (&deliver, &reason);
    cr_assert_not_null (msg, "refused: %s", reason);
    cr_expect_str_eq (kp_msg_id (msg), S_ID_HEX);
    cr_expect_str_eq (kp_msg_type (msg), "school_notification");
    cr_expect_str_eq (kp_msg_sender (msg), "lp-enschede");
    cr_expect_str_eq (kp_msg_sender_role (msg), "leerplicht");
    cr_expect_str_eq (kp_msg_status (msg), "");
    char *json = kp_msg_json (msg);
    cr_assert_not_null (json, "%s", kp_msg_error (msg));
    cr_expect_str_eq (json,
        "{\"id\":\"" S_ID_HEX "\",\"type\":\"school_notification\","
        "\"sender\":\"lp-enschede\",\"sender_role\":\"leerplicht\","
        "\"recipient\":\"school:12AB00\",\"recipient_partner\":\"school-12ab00\","
        "\"recipient_role\":\"school\",\"created_at\":\"2026-11-18T11:06:40.123Z\","
        "\"attempt\":1,\"body\":{\"child_name\":\"Fictief Kind\","
        "\"date_of_birth\":\"2015-03-04\",\"code_words\":\"Handle with Care\","
        "\"school_day\":\"2030-11-25\"}}");
    free (json);
    kp_msg_destroy (&msg);
    free (deliver.body.data);
}

Test (kp_msg, optional_envelope_fields_appear_when_set)
{
    Kp__Wire__Deliver deliver = KP__WIRE__DELIVER__INIT;
    Kp__Wire__Envelope envelope = KP__WIRE__ENVELOPE__INIT;
    uint8_t id [16], hash [32], reference [16], subject [32];
    s_make_deliver (&deliver, &envelope, id, hash);
    cr_assert_eq (kp_hex_decode (S_REF_HEX, reference, 16), 0);
    memset (subject, 0xab, sizeof subject);
    envelope.reference.data = reference;
    envelope.reference.len = 16;
    envelope.subject.data = subject;
    envelope.subject.len = 32;
    envelope.expires_at_ms = 1795000123000;
    envelope.purpose = (char *) "HWC-1";
    envelope.acting_user = (char *) "medewerker \"7\"";
    envelope.on_behalf_of = (char *) "team noord";
    deliver.attempt = 2;
    const char *reason = NULL;
    kp_msg_t *msg = s_delivered (&deliver, &reason);
    cr_assert_not_null (msg, "refused: %s", reason);
    cr_expect_str_eq (kp_msg_reference (msg), S_REF_HEX);
    char *json = kp_msg_json (msg);
    cr_assert_not_null (json);
    cr_expect_not_null (strstr (json, "\"expires_at\":\"2026-11-18T11:08:43.000Z\""));
    cr_expect_not_null (strstr (json, "\"reference\":\"" S_REF_HEX "\""));
    cr_expect_not_null (strstr (json, "\"purpose\":\"HWC-1\""));
    cr_expect_not_null (strstr (json, "\"acting_user\":\"medewerker \\\"7\\\"\""));
    cr_expect_not_null (strstr (json, "\"on_behalf_of\":\"team noord\""));
    cr_expect_not_null (strstr (json, "\"subject\":\"abababab"));
    cr_expect_not_null (strstr (json, "\"attempt\":2,"));
    cr_expect_null (strchr (json, '\n'));
    free (json);
    kp_msg_destroy (&msg);
    free (deliver.body.data);
}

Test (kp_msg, delivery_with_wrong_hash_or_length_is_refused)
{
    Kp__Wire__Deliver deliver = KP__WIRE__DELIVER__INIT;
    Kp__Wire__Envelope envelope = KP__WIRE__ENVELOPE__INIT;
    uint8_t id [16], hash [32];
    s_make_deliver (&deliver, &envelope, id, hash);
    const char *reason = NULL;
    deliver.body.data [3] ^= 1;
    cr_expect_null (s_delivered (&deliver, &reason));
    cr_expect_str_eq (reason, "body hash mismatch");
    deliver.body.data [3] ^= 1;
    envelope.body_length++;
    reason = NULL;
    cr_expect_null (s_delivered (&deliver, &reason));
    cr_expect_str_eq (reason, "body hash mismatch");
    envelope.body_length--;
    envelope.id.len = 15;
    cr_expect_null (s_delivered (&deliver, &reason));
    envelope.id.len = 16;
    deliver.envelope = NULL;
    cr_expect_null (s_delivered (&deliver, &reason));
    free (deliver.body.data);
}

Test (kp_msg, school_body_breaking_the_rules_is_refused_on_receipt)
{
    Kp__Wire__Deliver deliver = KP__WIRE__DELIVER__INIT;
    Kp__Wire__Envelope envelope = KP__WIRE__ENVELOPE__INIT;
    uint8_t id [16], hash [32];
    s_make_deliver (&deliver, &envelope, id, hash);
    free (deliver.body.data);
    size_t size;
    deliver.body.data = s_notification_body ("Incident at home", &size);
    deliver.body.len = size;
    crypto_hash_sha256 (hash, deliver.body.data, size);
    envelope.body_length = (uint32_t) size;
    const char *reason = NULL;
    cr_expect_null (s_delivered (&deliver, &reason));
    cr_expect_not_null (reason);
    //  The same body to leerplicht decodes with the request schema
    envelope.recipient_role = KP__WIRE__ROLE__LEERPLICHT;
    envelope.recipient = (char *) "municipality:GM0153";
    kp_msg_t *msg = s_delivered (&deliver, &reason);
    cr_expect_null (msg, "request schema needs no code words, but school_day is"
                    " then the code words text, not a date");
    kp_msg_destroy (&msg);
    free (deliver.body.data);
}

Test (kp_msg, status_renders_as_json)
{
    uint8_t id [16];
    cr_assert_eq (kp_hex_decode (S_ID_HEX, id, 16), 0);
    Kp__Wire__Status status = KP__WIRE__STATUS__INIT;
    status.seq = 12;
    status.id.data = id;
    status.id.len = 16;
    status.status = KP__WIRE__STATUS_KIND__REFUSED;
    status.at_ms = 1795000000123;
    status.partner = (char *) "vt-twente";
    status.reason = (char *) "not our client";
    kp_msg_t *msg = kp_msg_new_status (&status);
    cr_assert_not_null (msg);
    cr_expect (kp_msg_is_status (msg));
    cr_expect_str_eq (kp_msg_status (msg), "REFUSED");
    cr_expect_str_eq (kp_msg_id (msg), S_ID_HEX);
    cr_expect_str_eq (kp_msg_sender (msg), "vt-twente");
    cr_expect_str_eq (kp_msg_type (msg), "");
    cr_expect_str_eq (msg->key, S_ID_HEX " REFUSED");
    char *json = kp_msg_json (msg);
    cr_expect_str_eq (json, "{\"status\":\"REFUSED\",\"id\":\"" S_ID_HEX "\","
                      "\"partner\":\"vt-twente\",\"at\":\"2026-11-18T11:06:40.123Z\","
                      "\"reason\":\"not our client\"}");
    free (json);
    kp_msg_destroy (&msg);

    status.status = KP__WIRE__STATUS_KIND__DELIVERED;
    status.reason = (char *) "";
    msg = kp_msg_new_status (&status);
    json = kp_msg_json (msg);
    cr_expect_str_eq (json, "{\"status\":\"DELIVERED\",\"id\":\"" S_ID_HEX "\","
                      "\"partner\":\"vt-twente\",\"at\":\"2026-11-18T11:06:40.123Z\"}");
    free (json);
    kp_msg_destroy (&msg);

    status.status = KP__WIRE__STATUS_KIND__STATUS_UNSPECIFIED;
    cr_expect_null (kp_msg_new_status (&status));
    status.status = KP__WIRE__STATUS_KIND__DELIVERED;
    status.id.len = 3;
    cr_expect_null (kp_msg_new_status (&status));
}

Test (kp_msg, receipt_renders_as_json)
{
    kp_receipt_t receipt = { 0 };
    strcpy (receipt.id, S_ID_HEX);
    receipt.seq = 42;
    receipt.accepted_at_ms = 1795000000123;
    strcpy (receipt.recipient_partner, "vt-twente");
    strcpy (receipt.recipient_role, "veilig_thuis");
    char *json = kp_receipt_json (&receipt);
    cr_expect_str_eq (json, "{\"id\":\"" S_ID_HEX "\",\"seq\":42,"
                      "\"accepted_at\":\"2026-11-18T11:06:40.123Z\","
                      "\"recipient_partner\":\"vt-twente\","
                      "\"recipient_role\":\"veilig_thuis\",\"duplicate\":false}");
    free (json);
}

Test (kp_msg, outgoing_message_renders_as_json)
{
    kp_msg_t *msg = kp_msg_new ("feedback", "partner:police-oost");
    cr_assert_eq (kp_msg_set_id (msg, S_ID_HEX), 0);
    cr_assert_eq (kp_msg_set_reference (msg, S_REF_HEX), 0);
    cr_assert_eq (kp_msg_set_body_json (msg, "{\"status\":\"RECEIVED\"}"), 0);
    char *json = kp_msg_json (msg);
    cr_assert_not_null (json);
    cr_expect_not_null (strstr (json, "{\"id\":\"" S_ID_HEX "\",\"type\":\"feedback\","));
    cr_expect_not_null (strstr (json, "\"recipient\":\"partner:police-oost\""));
    cr_expect_not_null (strstr (json, "\"reference\":\"" S_REF_HEX "\""));
    cr_expect_not_null (strstr (json, "\"body\":{\"status\":\"RECEIVED\"}}"));
    cr_expect_null (strstr (json, "expires_at"));
    cr_expect_null (strstr (json, "purpose"));
    free (json);
    kp_msg_destroy (&msg);
}

//  ==========================================================================
//  kp_client: against a real broker

static kp_test_region_t *s_region;

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
    kp_test_region_destroy (&s_region);
}

TestSuite (kp_client, .init = s_region_start, .fini = s_region_stop, .timeout = 30.);

//  --------------------------------------------------------------------------
//  Restart the broker after a crash, on the same port
static void
s_broker_crash_and_restart (void)
{
    kp_test_broker_stop (s_region, SIGKILL);
    cr_assert_eq (kp_test_broker_start (s_region, NULL), 0, "broker did not restart");
}

//  --------------------------------------------------------------------------
//  Send a message and assert it is accepted; returns its id (caller frees)
static char *
s_send (kp_client_t *client, const char *type, const char *to, const char *json,
        kp_receipt_t *receipt)
{
    kp_msg_t *msg = kp_msg_new (type, to);
    cr_assert_not_null (msg);
    cr_assert_eq (kp_msg_set_body_json (msg, json), 0, "%s", kp_msg_error (msg));
    kp_receipt_t local;
    if (!receipt)
        receipt = &local;
    int rc = kp_client_send (client, msg, receipt);
    cr_assert_eq (rc, 0, "%s refused: %s: %s", type, receipt->error, receipt->reason);
    cr_expect_str_eq (receipt->id, kp_msg_id (msg));
    char *id = strdup (kp_msg_id (msg));
    kp_msg_destroy (&msg);
    return id;
}

//  --------------------------------------------------------------------------
//  Receive until an item with this id (and status, or a message if status
//  is NULL) arrives; ack and drop others. Returns it unacked, or NULL.
static kp_msg_t *
s_expect (kp_client_t *client, const char *id, const char *status)
{
    int64_t deadline = kp_mono_ms () + S_WAIT;
    while (kp_mono_ms () < deadline) {
        kp_msg_t *msg = kp_client_recv (client, (int) (deadline - kp_mono_ms ()));
        if (!msg)
            continue;
        bool match = strcmp (kp_msg_id (msg), id) == 0
            && (status? strcmp (kp_msg_status (msg), status) == 0
                      : !kp_msg_is_status (msg));
        if (match)
            return msg;
        cr_assert_eq (kp_client_ack (client, msg), 0);
        kp_msg_destroy (&msg);
    }
    return NULL;
}

Test (kp_client, welcome_names_partner_and_role)
{
    kp_client_t *client = kp_test_client (s_region, "police-oost");
    cr_expect_str_eq (kp_client_partner (client), "police-oost");
    cr_expect_str_eq (kp_client_role (client), "police");
    kp_client_destroy (&client);
    kp_client_destroy (&client);
    cr_assert_null (client);
    client = kp_test_client (s_region, "school-12ab00");
    cr_expect_str_eq (kp_client_role (client), "school");
    kp_client_destroy (&client);
}

Test (kp_client, signal_is_routed_to_veilig_thuis)
{
    kp_client_t *police = kp_test_client (s_region, "police-oost");
    kp_receipt_t receipt;
    int64_t before = kp_now_ms ();
    char *id = s_send (police, "signal", "municipality:GM0153", S_SIGNAL_BODY, &receipt);
    cr_expect_str_eq (receipt.error, "");
    cr_expect_str_eq (receipt.recipient_partner, "vt-twente");
    cr_expect_str_eq (receipt.recipient_role, "veilig_thuis");
    cr_expect_not (receipt.duplicate);
    cr_expect_geq (receipt.accepted_at_ms, before - 1000);
    cr_expect_leq (receipt.accepted_at_ms, kp_now_ms () + 1000);
    free (id);
    kp_client_destroy (&police);
}

Test (kp_client, resend_with_same_id_gets_the_first_receipt)
{
    kp_client_t *police = kp_test_client (s_region, "police-oost");
    kp_msg_t *msg = kp_msg_new ("signal", "municipality:GM0153");
    cr_assert_eq (kp_msg_set_body_json (msg, S_SIGNAL_BODY), 0);
    kp_receipt_t first, second;
    cr_assert_eq (kp_client_send (police, msg, &first), 0, "%s", first.reason);
    cr_assert_eq (kp_client_send (police, msg, &second), 0, "%s", second.reason);
    cr_expect_not (first.duplicate);
    cr_expect (second.duplicate);
    cr_expect_str_eq (first.id, second.id);
    cr_expect_eq (first.seq, second.seq);
    kp_msg_destroy (&msg);
    kp_client_destroy (&police);
}

//  One refusal case: who sends what where, and the expected code
typedef struct {
    const char *sender;
    const char *type;
    const char *to;
    const char *json;
    const char *error;
} s_refusal_case_t;

static const s_refusal_case_t s_refusal_cases [] = {
    { "school-12ab00", "referral", "municipality:GM0153", S_REFERRAL_BODY, "FORBIDDEN" },
    { "lp-enschede", "school_notification", "school:34CD00", S_NOTIFICATION_BODY,
      "NOT_COVENANT" },
    { "police-oost", "signal", "municipality:GM9999", S_SIGNAL_BODY, "UNKNOWN_ADDRESS" },
    { "police-oost", "referral", "municipality:GM0153", S_REFERRAL_BODY, "FORBIDDEN" },
};

ParameterizedTestParameters (kp_client, refusals_name_their_code)
{
    static size_t indexes [sizeof s_refusal_cases / sizeof s_refusal_cases [0]];
    for (size_t index = 0; index < sizeof indexes / sizeof indexes [0]; index++)
        indexes [index] = index;
    return cr_make_param_array (size_t, indexes, sizeof indexes / sizeof indexes [0]);
}

ParameterizedTest (size_t *index, kp_client, refusals_name_their_code)
{
    const s_refusal_case_t *test_case = s_refusal_cases + *index;
    kp_client_t *client = kp_test_client (s_region, test_case->sender);
    kp_msg_t *msg = kp_msg_new (test_case->type, test_case->to);
    cr_assert_eq (kp_msg_set_body_json (msg, test_case->json), 0);
    kp_receipt_t receipt;
    cr_expect_eq (kp_client_send (client, msg, &receipt), -1);
    cr_expect_str_eq (receipt.error, test_case->error, "got %s: %s", receipt.error,
                      receipt.reason);
    cr_expect_str_not_empty (receipt.reason);
    cr_expect_str_eq (receipt.id, kp_msg_id (msg));
    kp_msg_destroy (&msg);
    kp_client_destroy (&client);
}

Test (kp_client, message_without_body_is_refused_locally)
{
    kp_client_t *police = kp_test_client (s_region, "police-oost");
    kp_msg_t *msg = kp_msg_new ("signal", "municipality:GM0153");
    kp_receipt_t receipt;
    cr_expect_eq (kp_client_send (police, msg, &receipt), -1);
    cr_expect_str_eq (receipt.error, "INVALID");
    cr_expect_str_eq (receipt.reason, "no body set");
    kp_msg_destroy (&msg);
    kp_client_destroy (&police);
}

Test (kp_client, oversized_message_is_refused)
{
    kp_client_t *vt = kp_test_client (s_region, "vt-twente");
    //  Sixty long conditions: within the rules (64 of 2000 bytes at
    //  most), over the broker's limit for a referral (64 KiB by default)
    char *text = NULL;
    size_t size = 0;
    FILE *stream = open_memstream (&text, &size);
    fputs ("{\"case_id\":\"VT-2026-0002\",\"safety_conditions\":[", stream);
    for (int index = 0; index < 60; index++) {
        fprintf (stream, "%s\"afspraak nummer %06d ", index? ",": "", index);
        for (int filler = 0; filler < 1900; filler++)
            fputc ('x', stream);
        fputc ('"', stream);
    }
    fputs ("]}", stream);
    fclose (stream);
    kp_msg_t *msg = kp_msg_new ("referral", "municipality:GM0153");
    cr_assert_eq (kp_msg_set_body_json (msg, text), 0, "%s", kp_msg_error (msg));
    kp_receipt_t receipt;
    cr_expect_eq (kp_client_send (vt, msg, &receipt), -1);
    cr_expect_str_eq (receipt.error, "TOO_LARGE", "%s: %s", receipt.error,
                      receipt.reason);
    free (text);
    kp_msg_destroy (&msg);
    kp_client_destroy (&vt);
}

Test (kp_client, ack_gives_the_sender_a_delivered_status)
{
    kp_client_t *police = kp_test_client (s_region, "police-oost");
    cr_assert_eq (kp_client_receive (police, 4), 0);
    kp_client_t *vt = kp_test_client (s_region, "vt-twente");
    cr_assert_eq (kp_client_receive (vt, 4), 0);
    int64_t before = kp_now_ms ();
    char *id = s_send (police, "signal", "municipality:GM0153", S_SIGNAL_BODY, NULL);

    kp_msg_t *msg = s_expect (vt, id, NULL);
    cr_assert_not_null (msg, "signal not delivered");
    cr_expect_str_eq (kp_msg_type (msg), "signal");
    cr_expect_str_eq (kp_msg_sender (msg), "police-oost");
    cr_expect_str_eq (kp_msg_sender_role (msg), "police");
    cr_expect_str_eq (kp_msg_recipient (msg), "municipality:GM0153");
    cr_expect_eq (msg->attempt, 1);
    cr_expect_geq (msg->created_at_ms, before - 1000);
    char *json = kp_msg_json (msg);
    cr_assert_not_null (json);
    cr_expect_not_null (strstr (json, "\"narrative\":\"Fictieve testmelding.\""));
    cr_expect_not_null (strstr (json, "\"recipient_partner\":\"vt-twente\""));
    free (json);
    cr_expect_eq (kp_client_ack (vt, msg), 0);
    kp_msg_destroy (&msg);

    kp_msg_t *status = s_expect (police, id, "DELIVERED");
    cr_assert_not_null (status, "no DELIVERED status");
    cr_expect_str_eq (kp_msg_sender (status), "vt-twente");
    cr_expect_eq (kp_client_nack (police, status, "no"), -1,
                  "a status cannot be refused");
    cr_expect_eq (kp_client_ack (police, status), 0);
    kp_msg_destroy (&status);
    free (id);
    kp_client_destroy (&vt);
    kp_client_destroy (&police);
}

Test (kp_client, nack_gives_the_sender_a_refused_status)
{
    kp_client_t *police = kp_test_client (s_region, "police-oost");
    cr_assert_eq (kp_client_receive (police, 4), 0);
    kp_client_t *vt = kp_test_client (s_region, "vt-twente");
    cr_assert_eq (kp_client_receive (vt, 4), 0);
    char *id = s_send (police, "signal", "municipality:GM0153", S_SIGNAL_BODY, NULL);
    kp_msg_t *msg = s_expect (vt, id, NULL);
    cr_assert_not_null (msg);
    cr_expect_eq (kp_client_nack (vt, msg, "not our region\nreally"), 0);
    kp_msg_destroy (&msg);
    kp_msg_t *status = s_expect (police, id, "REFUSED");
    cr_assert_not_null (status, "no REFUSED status");
    char *json = kp_msg_json (status);
    cr_expect_not_null (strstr (json, "{\"status\":\"REFUSED\""), "%s", json);
    cr_expect_not_null (strstr (json, "\"partner\":\"vt-twente\""), "%s", json);
    cr_expect_not_null (strstr (json, "\"type\":\"signal\""), "%s", json);
    cr_expect_not_null (strstr (json, "\"reason\":\"not our region"), "%s", json);
    free (json);
    cr_expect_eq (kp_client_ack (police, status), 0);
    kp_msg_destroy (&status);
    free (id);
    kp_client_destroy (&vt);
    kp_client_destroy (&police);
}

Test (kp_client, deliveries_during_a_send_wait_for_recv)
{
    kp_client_t *police = kp_test_client (s_region, "police-oost");
    cr_assert_eq (kp_client_receive (police, 4), 0);
    kp_client_t *vt = kp_test_client (s_region, "vt-twente");
    cr_assert_eq (kp_client_receive (vt, 8), 0);
    char *first = s_send (police, "signal", "municipality:GM0153", S_SIGNAL_BODY, NULL);
    char *second = s_send (police, "signal", "municipality:GM0153", S_SIGNAL_BODY, NULL);
    //  While vt waits for its own receipt, the two deliveries arrive
    char *json = zsys_sprintf ("{\"status\":\"RECEIVED\"}");
    kp_msg_t *feedback = kp_msg_new ("feedback", "partner:police-oost");
    cr_assert_eq (kp_msg_set_reference (feedback, first), 0);
    cr_assert_eq (kp_msg_set_body_json (feedback, json), 0);
    kp_receipt_t receipt;
    cr_assert_eq (kp_client_send (vt, feedback, &receipt), 0, "%s: %s", receipt.error,
                  receipt.reason);
    cr_expect_str_eq (receipt.recipient_partner, "police-oost");
    kp_msg_destroy (&feedback);
    free (json);

    kp_msg_t *msg = kp_client_recv (vt, S_WAIT);
    cr_assert_not_null (msg);
    cr_expect_str_eq (kp_msg_id (msg), first);
    cr_expect_eq (kp_client_ack (vt, msg), 0);
    kp_msg_destroy (&msg);
    msg = kp_client_recv (vt, S_WAIT);
    cr_assert_not_null (msg);
    cr_expect_str_eq (kp_msg_id (msg), second);
    cr_expect_eq (kp_client_ack (vt, msg), 0);
    kp_msg_destroy (&msg);

    //  Police gets the feedback (referring to the first) and two statuses
    kp_msg_t *reply = s_expect (police, receipt.id, NULL);
    cr_assert_not_null (reply, "feedback not delivered");
    cr_expect_str_eq (kp_msg_type (reply), "feedback");
    cr_expect_str_eq (kp_msg_reference (reply), first);
    cr_expect_str_eq (kp_msg_sender (reply), "vt-twente");
    kp_client_ack (police, reply);
    kp_msg_destroy (&reply);
    free (first);
    free (second);
    kp_client_destroy (&vt);
    kp_client_destroy (&police);
}

Test (kp_client, unknown_key_is_never_admitted)
{
    zcert_t *stranger = zcert_new ();
    char *path = zsys_sprintf ("%s/stranger", s_region->dir);
    cr_assert_eq (zcert_save (stranger, path), 0);
    zcert_destroy (&stranger);
    char *secret = zsys_sprintf ("%s_secret", path);
    int64_t started = kp_mono_ms ();
    kp_client_t *client = kp_client_new (s_region->endpoint, s_region->broker_cert,
                                         secret, 700);
    cr_expect_null (client);
    cr_expect_geq (kp_mono_ms () - started, 650, "gave up before the timeout");
    kp_client_destroy (&client);
    free (secret);
    free (path);
}

Test (kp_client, wrong_broker_cert_is_never_admitted)
{
    zcert_t *impostor = zcert_new ();
    char *path = zsys_sprintf ("%s/impostor", s_region->dir);
    cr_assert_eq (zcert_save_public (impostor, path), 0);
    zcert_destroy (&impostor);
    char *cert = kp_test_cert (s_region, "police-oost");
    kp_client_t *client = kp_client_new (s_region->endpoint, path, cert, 700);
    cr_expect_null (client);
    //  A public cert is no identity: it holds no secret key
    client = kp_client_new (s_region->endpoint, s_region->broker_cert,
                            s_region->broker_cert, 700);
    cr_expect_null (client);
    //  Missing files fail at once
    client = kp_client_new (s_region->endpoint, "/nonexistent/broker", cert, 700);
    cr_expect_null (client);
    free (cert);
    free (path);
}

Test (kp_client, revoked_key_is_never_admitted)
{
    //  Revoking removes the handed-out secret: keep a copy, as the partner
    //  would still have it
    char *original = kp_test_cert (s_region, "lt-hengelo");
    char *cert = zsys_sprintf ("%s/lt-hengelo-copy_secret", s_region->dir);
    zfile_t *file = zfile_new (NULL, original);
    cr_assert_not_null (file);
    cr_assert_eq (zfile_input (file), 0);
    zchunk_t *content = zfile_read (file, zfile_cursize (file), 0);
    zfile_destroy (&file);
    FILE *copy = fopen (cert, "w");
    cr_assert_not_null (copy);
    fwrite (zchunk_data (content), 1, zchunk_size (content), copy);
    fclose (copy);
    zchunk_destroy (&content);
    free (original);
    //  With its key still valid, the copy connects
    kp_client_t *client = kp_client_new (s_region->endpoint, s_region->broker_cert,
                                         cert, S_WAIT);
    cr_assert_not_null (client);
    kp_client_destroy (&client);

    kp_test_broker_stop (s_region, SIGTERM);
    cr_assert_eq (kp_region_revoke (s_region->region, "lt-hengelo"), 0);
    cr_assert_eq (kp_test_broker_start (s_region, NULL), 0);
    client = kp_client_new (s_region->endpoint, s_region->broker_cert,
                                         cert, 700);
    cr_expect_null (client);
    kp_client_destroy (&client);
    free (cert);
}

Test (kp_client, unacked_message_is_not_handed_out_twice)
{
    kp_client_t *police = kp_test_client (s_region, "police-oost");
    cr_assert_eq (kp_client_receive (police, 4), 0);
    kp_client_t *vt = kp_test_client (s_region, "vt-twente");
    kp_client_set_send_timeout (police, 3000, 5);
    cr_assert_eq (kp_client_receive (vt, 4), 0);
    char *first = s_send (police, "signal", "municipality:GM0153", S_SIGNAL_BODY, NULL);
    kp_msg_t *held = s_expect (vt, first, NULL);
    cr_assert_not_null (held);

    //  The broker crashes with the first delivery unacked: after restart it
    //  delivers it again, before the second (lower log index first)
    s_broker_crash_and_restart ();
    char *second = s_send (police, "signal", "municipality:GM0153", S_SIGNAL_BODY, NULL);
    kp_msg_t *msg = kp_client_recv (vt, 10000);
    cr_assert_not_null (msg, "nothing after the broker restart");
    cr_expect_str_eq (kp_msg_id (msg), second, "the held message came twice");
    cr_expect_eq (kp_client_ack (vt, held), 0);
    cr_expect_eq (kp_client_ack (vt, msg), 0);
    kp_msg_destroy (&msg);
    kp_msg_destroy (&held);

    kp_msg_t *status = s_expect (police, first, "DELIVERED");
    cr_expect_not_null (status, "late ack of the held message not taken");
    kp_msg_destroy (&status);
    free (first);
    free (second);
    kp_client_destroy (&vt);
    kp_client_destroy (&police);
}

Test (kp_client, journal_acks_a_redelivery_silently)
{
    char *state = zsys_sprintf ("%s/vt-state", s_region->dir);
    kp_client_t *police = kp_test_client (s_region, "police-oost");
    cr_assert_eq (kp_client_receive (police, 4), 0);
    kp_client_set_send_timeout (police, 3000, 5);
    kp_client_t *vt = kp_test_client (s_region, "vt-twente");
    cr_assert_eq (kp_client_set_state_dir (vt, state), 0);
    cr_assert_eq (kp_client_receive (vt, 4), 0);
    char *first = s_send (police, "signal", "municipality:GM0153", S_SIGNAL_BODY, NULL);
    kp_msg_t *msg = s_expect (vt, first, NULL);
    cr_assert_not_null (msg);
    kp_msg_destroy (&msg);
    kp_client_destroy (&vt);

    //  As if vt crashed after journalling the ack but before sending it
    char *journal = zsys_sprintf ("%s/journal", state);
    FILE *file = fopen (journal, "a");
    cr_assert_not_null (file);
    fprintf (file, "%s\n", first);
    fclose (file);
    s_broker_crash_and_restart ();

    vt = kp_test_client (s_region, "vt-twente");
    cr_assert_eq (kp_client_set_state_dir (vt, state), 0);
    cr_assert_eq (kp_client_receive (vt, 4), 0);
    char *second = s_send (police, "signal", "municipality:GM0153", S_SIGNAL_BODY, NULL);
    msg = kp_client_recv (vt, 10000);
    cr_assert_not_null (msg);
    cr_expect_str_eq (kp_msg_id (msg), second, "a journalled message came again");
    cr_expect_eq (kp_client_ack (vt, msg), 0);
    kp_msg_destroy (&msg);

    //  Both count as delivered: the first by the silent ack
    kp_msg_t *status = s_expect (police, first, "DELIVERED");
    cr_expect_not_null (status);
    kp_msg_destroy (&status);

    //  The journal holds both, one line each
    char text [200] = "";
    file = fopen (journal, "r");
    size_t size = fread (text, 1, sizeof text - 1, file);
    fclose (file);
    text [size] = 0;
    char *expected = zsys_sprintf ("%s\n%s\n", first, second);
    cr_expect_str_eq (text, expected);
    free (expected);
    free (journal);
    free (first);
    free (second);
    free (state);
    kp_client_destroy (&vt);
    kp_client_destroy (&police);
}

Test (kp_client, state_dir_is_locked_and_repaired)
{
    char *state = zsys_sprintf ("%s/school-state", s_region->dir);
    char *journal = zsys_sprintf ("%s/journal", state);
    cr_assert_eq (zsys_dir_create ("%s", state), 0);
    FILE *file = fopen (journal, "w");
    fprintf (file, S_ID_HEX "\n" S_REF_HEX " DELIVERED\n0123abc");
    fclose (file);

    kp_client_t *first = kp_test_client (s_region, "school-12ab00");
    cr_assert_eq (kp_client_set_state_dir (first, state), 0);
    struct stat info;
    cr_assert_eq (stat (journal, &info), 0);
    cr_expect_eq (info.st_size, 33 + 43, "torn tail not cut");
    cr_expect_eq (kp_client_set_state_dir (first, state), -1, "set twice");
    kp_client_t *second = kp_test_client (s_region, "school-12ab00");
    cr_expect_eq (kp_client_set_state_dir (second, state), -1, "not locked");
    kp_client_destroy (&first);
    cr_expect_eq (kp_client_set_state_dir (second, state), 0, "lock not released");
    kp_client_destroy (&second);

    //  A damaged line before the end is refused, not guessed at
    file = fopen (journal, "w");
    fprintf (file, S_ID_HEX "\nnot an id\n" S_REF_HEX "\n");
    fclose (file);
    first = kp_test_client (s_region, "school-12ab00");
    cr_expect_eq (kp_client_set_state_dir (first, state), -1);
    kp_client_destroy (&first);
    free (journal);
    free (state);
}

Test (kp_client, statuses_arrive_once_per_kind)
{
    kp_client_t *police = kp_test_client (s_region, "police-oost");
    cr_assert_eq (kp_client_receive (police, 4), 0);
    kp_client_t *vt = kp_test_client (s_region, "vt-twente");
    cr_assert_eq (kp_client_receive (vt, 4), 0);
    char *id = s_send (police, "signal", "municipality:GM0153", S_SIGNAL_BODY, NULL);
    kp_msg_t *msg = s_expect (vt, id, NULL);
    cr_assert_not_null (msg);
    cr_assert_eq (kp_client_ack (vt, msg), 0);
    kp_msg_destroy (&msg);
    kp_msg_t *status = s_expect (police, id, "DELIVERED");
    cr_assert_not_null (status);
    //  Not acked: after a broker crash it comes again, and is dropped
    s_broker_crash_and_restart ();
    kp_msg_t *again = kp_client_recv (police, 2500);
    cr_expect_null (again, "status handed out twice");
    kp_msg_destroy (&again);
    cr_expect_eq (kp_client_ack (police, status), 0);
    kp_msg_destroy (&status);
    free (id);
    kp_client_destroy (&vt);
    kp_client_destroy (&police);
}

Test (kp_client, key_revoked_while_connected_is_refused)
{
    kp_client_t *client = kp_test_client (s_region, "lt-hengelo");
    kp_client_set_send_timeout (client, 1000, 2);
    cr_assert_eq (kp_client_receive (client, 4), 0);
    cr_expect_str_eq (kp_client_failure (client), "");
    cr_assert_eq (kp_region_revoke (s_region->region, "lt-hengelo"), 0);
    //  The broker sees the registry change and refuses our next command
    //  (here: a keepalive Ping while we wait)
    int64_t deadline = kp_mono_ms () + S_WAIT;
    while (!*kp_client_failure (client) && kp_mono_ms () < deadline) {
        kp_msg_t *msg = kp_client_recv (client, 200);
        kp_msg_destroy (&msg);
    }
    cr_expect_eq (strncmp (kp_client_failure (client), "REVOKED: ", 9), 0,
                  "failure: '%s'", kp_client_failure (client));
    int64_t started = kp_mono_ms ();
    cr_expect_null (kp_client_recv (client, 2000));
    cr_expect_lt (kp_mono_ms () - started, 500, "recv waited after the refusal");
    kp_msg_t *msg = kp_msg_new ("signal", "municipality:GM0164");
    cr_assert_eq (kp_msg_set_body_json (msg, S_SIGNAL_BODY), 0);
    kp_receipt_t receipt;
    cr_expect_eq (kp_client_send (client, msg, &receipt), -1);
    cr_expect_str_eq (receipt.error, "REVOKED");
    cr_expect_str_not_empty (receipt.reason);
    kp_msg_destroy (&msg);
    kp_client_destroy (&client);
}
