/*  =========================================================================
    test_kp_validate - the data-minimisation rules, type by type

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
    Each rule of each body type, as JSON the way a partner writes it and as
    packed bytes the way a body arrives; the school-day deadlines in winter
    and in summer time. All persons are fictitious.
*/
#include "kp_testutil.h"
#include "kp_validate.h"
#include "kp_msg_internal.h"
#include "kp_json.h"
#include "kp_body.pb-c.h"
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

TestSuite (kp_validate, .timeout = 10.);

typedef struct {
    const ProtobufCMessageDescriptor *desc;
    const char *json;
    bool valid;
    const char *why;                //  what the case shows
} s_case_t;

#define S_LONG_2001 "%2001"         //  placeholder: 2001 bytes of 'x'
#define S_LONG_1001 "%1001"

static const s_case_t s_cases [] = {
    { &kp__body__signal__descriptor,
      "{\"kind\":\"MELDING\",\"incident_time\":\"2026-11-22T23:40:00Z\","
      "\"municipality\":\"GM0153\",\"narrative\":\"x\"}", true, "a good signal" },
    { &kp__body__signal__descriptor, "{\"narrative\":\"" S_LONG_2001 "\"}", false,
      "narrative over 2000 bytes" },
    { &kp__body__signal__descriptor, "{\"municipality\":\"Enschede\"}", false,
      "municipality not GM+4" },
    { &kp__body__signal__descriptor, "{\"incident_time\":\"yesterday\"}", false,
      "incident_time not ISO 8601" },
    { &kp__body__signal__descriptor, "{\"incident_time\":\"2026-11-22T25:40:00Z\"}", false,
      "hour 25" },
    { &kp__body__signal__descriptor,
      "{\"persons\":[{\"name\":\"A\",\"date_of_birth\":\"2015-02-29\"}]}", false,
      "29 February in a common year" },
    { &kp__body__signal__descriptor,
      "{\"persons\":[{\"name\":\"A\",\"date_of_birth\":\"2016-02-29\"}]}", true,
      "29 February in a leap year" },
    { &kp__body__signal__descriptor,
      "{\"persons\":[{\"name\":\"A\",\"bsn\":\"123456789\"}]}", false,
      "a BSN failing the eleven test" },
    { &kp__body__referral__descriptor,
      "{\"case_id\":\"VT-1\",\"safety_summary\":\"" S_LONG_2001 "\"}", false,
      "safety_summary over 2000 bytes" },
    { &kp__body__referral__descriptor,
      "{\"case_id\":\"VT-1\",\"monitoring\":{\"who\":\"lt\",\"until\":\"2026-13-01\"}}",
      false, "monitoring.until month 13" },
    { &kp__body__referral__descriptor,
      "{\"case_id\":\"VT-1\",\"first_contact_deadline\":\"2026-04-31\"}", false,
      "31 April" },
    { &kp__body__referral__descriptor,
      "{\"case_id\":\"VT-1\",\"safety_conditions\":[\"" S_LONG_2001 "\"]}", false,
      "a safety condition over 2000 bytes" },
    { &kp__body__referral__descriptor,
      "{\"case_id\":\"VT-1\",\"first_contact_deadline\":\"2026-11-27\"}", true,
      "a good referral" },
    { &kp__body__school_notification_request__descriptor,
      "{\"child_name\":\"Fictief Kind\",\"date_of_birth\":\"2015-03-04\","
      "\"school_day\":\"2026-11-23\",\"lookup_hint\":\"7511 AA\"}", true,
      "the leg to leerplicht may carry a hint" },
    { &kp__body__school_notification_request__descriptor,
      "{\"date_of_birth\":\"2015-03-04\",\"school_day\":\"2026-11-23\"}", false,
      "no child name" },
    { &kp__body__school_notification_request__descriptor,
      "{\"child_name\":\"K\",\"date_of_birth\":\"2015-03-04\"}", false,
      "no school day" },
    { &kp__body__school_notification__descriptor,
      "{\"child_name\":\"Fictief Kind\",\"date_of_birth\":\"2015-03-04\","
      "\"school_day\":\"2026-11-23\",\"code_words\":\"Handle with Care\"}", true,
      "the school leg: four fields" },
    { &kp__body__school_notification__descriptor,
      "{\"child_name\":\"Fictief Kind\",\"date_of_birth\":\"2015-03-04\","
      "\"school_day\":\"2026-11-23\",\"lookup_hint\":\"7511 AA\"}", false,
      "the school schema has no hint field" },
    { &kp__body__school_notification__descriptor,
      "{\"child_name\":\"Fictief Kind\",\"date_of_birth\":\"2015-03-04\","
      "\"school_day\":\"2026-11-23\",\"code_words\":\"Partner violence\"}", false,
      "code words other than Handle with Care" },
    { &kp__body__school_notification__descriptor,
      "{\"child_name\":\"Fictief Kind\",\"school_day\":\"2026-11-23\","
      "\"code_words\":\"Handle with Care\"}", false, "no date of birth" },
    { &kp__body__feedback__descriptor, "{\"status\":\"READ\"}", true, "read receipt" },
    { &kp__body__feedback__descriptor, "{\"note\":\"x\"}", false, "no status" },
    { &kp__body__feedback__descriptor,
      "{\"status\":\"ACCEPTED\",\"decline_reason\":\"OTHER_REASON\"}", false,
      "decline reason without DECLINED" },
    { &kp__body__feedback__descriptor,
      "{\"status\":\"CLOSED\",\"note\":\"" S_LONG_1001 "\"}", false, "note over 1000" },
    { &kp__body__feedback__descriptor,
      "{\"status\":\"ACCEPTED\",\"taken_over_by\":\"Not An Id\"}", false,
      "taken_over_by not a partner id" },
};

ParameterizedTestParameters (kp_validate, rules_per_type)
{
    static size_t indexes [sizeof s_cases / sizeof s_cases [0]];
    for (size_t index = 0; index < sizeof indexes / sizeof indexes [0]; index++)
        indexes [index] = index;
    return cr_make_param_array (size_t, indexes, sizeof indexes / sizeof indexes [0]);
}

//  The case's JSON with the long-text placeholders filled in; caller frees
static char *
s_expand (const char *json)
{
    const char *mark = strchr (json, '%');
    if (!mark)
        return strdup (json);
    size_t count = (size_t) atoi (mark + 1);
    size_t digits = strspn (mark + 1, "0123456789");
    char *text = malloc (strlen (json) + count + 1);
    size_t head = (size_t) (mark - json);
    memcpy (text, json, head);
    memset (text + head, 'x', count);
    strcpy (text + head + count, mark + 1 + digits);
    return text;
}

ParameterizedTest (size_t *index, kp_validate, rules_per_type)
{
    const s_case_t *test_case = s_cases + *index;
    char *json = s_expand (test_case->json);
    char *error = NULL;
    ProtobufCMessage *body = kp_json_to_message (test_case->desc, json, &error);
    free (json);
    if (!body) {
        //  The JSON mapping refuses fields outside the schema already
        cr_expect_not (test_case->valid, "%s: does not decode: %s", test_case->why, error);
        free (error);
        return;
    }
    const char *reason = kp_validate_body (body, false);
    if (test_case->valid)
        cr_expect_null (reason, "%s: refused: %s", test_case->why, reason);
    else
        cr_expect_not_null (reason, "%s: accepted", test_case->why);
    //  The same rules hold for the packed bytes, as a body arrives
    size_t size = protobuf_c_message_get_packed_size (body);
    uint8_t *packed = malloc (size + 1);
    protobuf_c_message_pack (body, packed);
    protobuf_c_message_free_unpacked (body, NULL);
    reason = NULL;
    ProtobufCMessage *again = kp_validate_unpack (test_case->desc, packed, size, &reason);
    cr_expect_eq (again != NULL, test_case->valid, "%s (packed): %s", test_case->why,
                  reason? reason: "accepted");
    if (again)
        protobuf_c_message_free_unpacked (again, NULL);
    free (packed);
}

Test (kp_validate, a_request_packed_for_a_school_is_refused)
{
    //  The forwarded leg to a school can never carry the hint: the request
    //  with its hint, packed and offered as a school notification
    Kp__Body__SchoolNotificationRequest request =
        KP__BODY__SCHOOL_NOTIFICATION_REQUEST__INIT;
    request.child_name = (char *) "Fictief Kind";
    request.date_of_birth = (char *) "2015-03-04";
    request.school_day = (char *) "2026-11-23";
    request.lookup_hint = (char *) "Voorbeeldstraat 1";
    uint8_t packed [256];
    size_t size = kp__body__school_notification_request__pack (&request, packed);
    const char *reason = NULL;
    cr_expect_null (kp_validate_unpack (&kp__body__school_notification__descriptor,
                                        packed, size, &reason));
    cr_expect_not_null (reason);
    //  An extra field number the school schema does not have
    Kp__Body__SchoolNotification notification = KP__BODY__SCHOOL_NOTIFICATION__INIT;
    notification.child_name = (char *) "Fictief Kind";
    notification.date_of_birth = (char *) "2015-03-04";
    notification.code_words = (char *) "Handle with Care";
    notification.school_day = (char *) "2026-11-23";
    size = kp__body__school_notification__pack (&notification, packed);
    memcpy (packed + size, "\x2a\x03" "abc", 5);    //  field 5, "abc"
    cr_expect_null (kp_validate_unpack (&kp__body__school_notification__descriptor,
                                        packed, size + 5, &reason));
    cr_expect_str_eq (reason, "body does not match its schema");
    cr_expect_not_null (kp_validate_unpack (&kp__body__school_notification__descriptor,
                                            packed, size, &reason));
}

Test (kp_validate, nul_bytes_and_bad_utf8_are_refused)
{
    Kp__Body__Feedback feedback = KP__BODY__FEEDBACK__INIT;
    feedback.status = KP__BODY__FEEDBACK_STATUS__CLOSED;
    feedback.note = (char *) "abcdef";
    uint8_t packed [64];
    size_t size = kp__body__feedback__pack (&feedback, packed);
    const char *reason = NULL;
    ProtobufCMessage *body = kp_validate_unpack (&kp__body__feedback__descriptor, packed,
                                                 size, &reason);
    cr_assert_not_null (body, "%s", reason);
    protobuf_c_message_free_unpacked (body, NULL);
    uint8_t *note = memmem (packed, size, "abcdef", 6);
    cr_assert_not_null (note);
    note [2] = 0;                   //  a NUL inside the string
    cr_expect_null (kp_validate_unpack (&kp__body__feedback__descriptor, packed, size,
                                        &reason));
    note [2] = 0xC0;                //  an overlong UTF-8 start
    cr_expect_null (kp_validate_unpack (&kp__body__feedback__descriptor, packed, size,
                                        &reason));
    note [2] = 0xFF;
    cr_expect_null (kp_validate_unpack (&kp__body__feedback__descriptor, packed, size,
                                        &reason));
}

Test (kp_validate, dates_and_times)
{
    cr_expect (kp_validate_date ("2026-11-23"));
    cr_expect (kp_validate_date ("2000-02-29"));
    cr_expect_not (kp_validate_date ("1900-02-29"));
    cr_expect_not (kp_validate_date ("2026-00-10"));
    cr_expect_not (kp_validate_date ("2026-1-10"));
    cr_expect_not (kp_validate_date ("2026-11-23 "));
    cr_expect_not (kp_validate_date (""));
    cr_expect (kp_validate_time ("2026-11-22T23:40:00Z"));
    cr_expect (kp_validate_time ("2026-11-22T23:40:00.123Z"));
    cr_expect_not (kp_validate_time ("2026-11-22T23:40:00"));
    cr_expect_not (kp_validate_time ("2026-11-22T23:60:00Z"));
    cr_expect_not (kp_validate_time ("2026-11-22T23:40:00.Z"));
}

Test (kp_validate, school_day_deadlines_in_amsterdam_time)
{
    int64_t due = 0, ends = 0;
    //  Winter (CET, UTC+1): Monday 23 November 2026
    cr_assert_eq (kp_validate_school_day_times ("2026-11-23", &due, &ends), 0);
    char *text = kp_msg_iso_time (due);
    cr_expect_str_eq (text, "2026-11-23T06:30:00.000Z");
    free (text);
    text = kp_msg_iso_time (ends);
    cr_expect_str_eq (text, "2026-11-23T17:00:00.000Z");
    free (text);
    //  Summer (CEST, UTC+2): Tuesday 9 June 2026
    cr_assert_eq (kp_validate_school_day_times ("2026-06-09", &due, &ends), 0);
    text = kp_msg_iso_time (due);
    cr_expect_str_eq (text, "2026-06-09T05:30:00.000Z");
    free (text);
    text = kp_msg_iso_time (ends);
    cr_expect_str_eq (text, "2026-06-09T16:00:00.000Z");
    free (text);
    //  The switch days: Sunday 29 March 2026 is summer time by 07:30,
    //  Sunday 25 October 2026 is winter time again
    cr_assert_eq (kp_validate_school_day_times ("2026-03-29", &due, &ends), 0);
    text = kp_msg_iso_time (due);
    cr_expect_str_eq (text, "2026-03-29T05:30:00.000Z");
    free (text);
    cr_assert_eq (kp_validate_school_day_times ("2026-03-27", &due, &ends), 0);
    text = kp_msg_iso_time (due);
    cr_expect_str_eq (text, "2026-03-27T06:30:00.000Z");
    free (text);
    cr_assert_eq (kp_validate_school_day_times ("2026-10-25", &due, &ends), 0);
    text = kp_msg_iso_time (due);
    cr_expect_str_eq (text, "2026-10-25T06:30:00.000Z");
    free (text);
    cr_assert_eq (kp_validate_school_day_times ("2026-10-24", &due, &ends), 0);
    text = kp_msg_iso_time (due);
    cr_expect_str_eq (text, "2026-10-24T05:30:00.000Z");
    free (text);
    cr_expect_eq (kp_validate_school_day_times ("tomorrow", &due, &ends), -1);
}

Test (kp_validate, school_notification_gets_its_deadlines)
{
    kp_msg_t *msg = kp_msg_new ("school_notification", "school:12AB00");
    cr_assert_eq (kp_msg_set_body_json (msg, "{\"child_name\":\"Fictief Kind\","
                                        "\"date_of_birth\":\"2015-03-04\","
                                        "\"school_day\":\"2030-11-25\"}"), 0,
                  "%s", kp_msg_error (msg));
    cr_assert_eq (kp_msg_seal (msg), 0, "%s", kp_msg_error (msg));
    char *due = kp_msg_iso_time (msg->due_at_ms);
    char *ends = kp_msg_iso_time (msg->expires_at_ms);
    cr_expect_str_eq (due, "2030-11-25T06:30:00.000Z");
    cr_expect_str_eq (ends, "2030-11-25T17:00:00.000Z");
    free (due);
    free (ends);
    kp_msg_destroy (&msg);
}
