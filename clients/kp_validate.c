/*  =========================================================================
    kp_validate - the data-minimisation rules of each body type

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    One function per body type, over the protobuf-c structs generated from
    proto/kp_body.proto; the generic checks (unknown fields, UTF-8) walk
    the descriptors. Used by kp_msg before sealing and after opening.
    Stateless and thread-safe.
@discuss
    The school leg is minimised by its schema: SchoolNotification has four
    fields, and a body with any other field number arrives as an unknown
    field, which is refused. So a SchoolNotificationRequest (with its
    lookup hint, field 4) packed and sent to a school is refused twice:
    field 4 is school_day there and the hint is not a date, and code_words
    must be exactly "Handle with Care".
@end
*/
#include "kp_validate.h"
#include "kp_body.pb-c.h"
#include <ctype.h>

//  --------------------------------------------------------------------------
//  True if message or any message inside it holds unknown fields (input
//  packed with another schema)

static bool
s_has_unknown_fields (const ProtobufCMessage *message)
{
    if (message->n_unknown_fields > 0)
        return true;
    const ProtobufCMessageDescriptor *desc = message->descriptor;
    for (unsigned index = 0; index < desc->n_fields; index++) {
        const ProtobufCFieldDescriptor *field = desc->fields + index;
        if (field->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        const char *base = (const char *) message;
        size_t count = 1;
        void *const *items = (void *const *) (base + field->offset);
        if (field->label == PROTOBUF_C_LABEL_REPEATED) {
            count = *(const size_t *) (base + field->quantifier_offset);
            items = *(void *const *const *) (base + field->offset);
        }
        for (size_t item = 0; item < count; item++)
            if (items [item]
            &&  s_has_unknown_fields ((const ProtobufCMessage *) items [item]))
                return true;
    }
    return false;
}

//  --------------------------------------------------------------------------
//  Two digits at text as a number, or -1
static int
s_two_digits (const char *text)
{
    if (!isdigit ((unsigned char) text [0]) || !isdigit ((unsigned char) text [1]))
        return -1;
    return (text [0] - '0') * 10 + (text [1] - '0');
}

//  --------------------------------------------------------------------------
//  True if text is a calendar date YYYY-MM-DD

bool
kp_validate_date (const char *text)
{
    assert (text);
    if (strlen (text) != 10 || text [4] != '-' || text [7] != '-')
        return false;
    int century = s_two_digits (text);
    int year_low = s_two_digits (text + 2);
    int month = s_two_digits (text + 5);
    int day = s_two_digits (text + 8);
    if (century < 0 || year_low < 0 || month < 1 || month > 12 || day < 1)
        return false;
    int year = century * 100 + year_low;
    if (year < 1900)
        return false;
    static const int lengths [12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int length = lengths [month - 1];
    if (month == 2 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0))
        length = 29;
    return day <= length;
}

//  --------------------------------------------------------------------------
//  True if text is YYYY-MM-DDTHH:MM:SS[.fff]Z

bool
kp_validate_time (const char *text)
{
    assert (text);
    size_t length = strlen (text);
    if (length < 20 || length > 30 || text [10] != 'T' || text [length - 1] != 'Z')
        return false;
    char date [11];
    memcpy (date, text, 10);
    date [10] = 0;
    if (!kp_validate_date (date))
        return false;
    int hour = s_two_digits (text + 11);
    int minute = s_two_digits (text + 14);
    int second = s_two_digits (text + 17);
    if (text [13] != ':' || text [16] != ':' || hour < 0 || hour > 23
    ||  minute < 0 || minute > 59 || second < 0 || second > 60)
        return false;
    if (length == 20)
        return true;
    if (text [19] != '.' || length == 21)
        return false;
    for (size_t index = 20; index < length - 1; index++)
        if (!isdigit ((unsigned char) text [index]))
            return false;
    return true;
}

//  --------------------------------------------------------------------------
//  True if text is a municipality code: GM and four digits
static bool
s_municipality_valid (const char *text)
{
    if (strlen (text) != 6 || strncmp (text, "GM", 2) != 0)
        return false;
    for (int index = 2; index < 6; index++)
        if (!isdigit ((unsigned char) text [index]))
            return false;
    return true;
}

//  --------------------------------------------------------------------------
//  True if text is a BSN: nine digits passing the eleven test
static bool
s_bsn_valid (const char *text)
{
    if (strlen (text) != 9)
        return false;
    int sum = 0;
    for (int index = 0; index < 9; index++) {
        if (!isdigit ((unsigned char) text [index]))
            return false;
        int weight = index < 8? 9 - index: -1;
        sum += weight * (text [index] - '0');
    }
    return sum % 11 == 0 && strcmp (text, "000000000") != 0;
}

//  True if text is a partner id: [a-z0-9-]{1,64}, not starting with '-'
static bool
s_partner_id_valid (const char *text)
{
    size_t length = strlen (text);
    if (length == 0 || length > 64 || text [0] == '-')
        return false;
    for (size_t index = 0; index < length; index++)
        if (!islower ((unsigned char) text [index])
        &&  !isdigit ((unsigned char) text [index]) && text [index] != '-')
            return false;
    return true;
}

//  True if text is at most max bytes
static bool
s_short (const char *text, size_t max)
{
    return strnlen (text, max + 1) <= max;
}

//  --------------------------------------------------------------------------
//  Check the persons of a signal or referral; NULL or a reason
static const char *
s_persons_check (Kp__Body__Person **persons, size_t count)
{
    if (count > KP_VALIDATE_ITEMS_MAX)
        return "persons: at most 64";
    for (size_t index = 0; index < count; index++) {
        const Kp__Body__Person *person = persons [index];
        if (!s_short (person->name, KP_VALIDATE_SHORT_MAX))
            return "persons: name is longer than 256 bytes";
        if (*person->date_of_birth && !kp_validate_date (person->date_of_birth))
            return "persons: date_of_birth must be a date YYYY-MM-DD";
        if (*person->bsn && !s_bsn_valid (person->bsn))
            return "persons: bsn must be nine digits passing the eleven test";
    }
    return NULL;
}

//  --------------------------------------------------------------------------
//  Signal (melding)
static const char *
s_signal_check (const Kp__Body__Signal *signal)
{
    if (!s_short (signal->narrative, KP_VALIDATE_TEXT_MAX))
        return "narrative is longer than 2000 bytes";
    if (*signal->municipality && !s_municipality_valid (signal->municipality))
        return "municipality must be GM and four digits";
    if (*signal->incident_time && !kp_validate_time (signal->incident_time))
        return "incident_time must be ISO 8601 UTC, YYYY-MM-DDTHH:MM:SSZ";
    if (!s_short (signal->address, KP_VALIDATE_SHORT_MAX)
    ||  !s_short (signal->sender_reference, KP_VALIDATE_SHORT_MAX)
    ||  !s_short (signal->contact_person, KP_VALIDATE_SHORT_MAX))
        return "address, sender_reference and contact_person: at most 256 bytes";
    if (signal->n_violence_types > KP_VALIDATE_ITEMS_MAX
    ||  signal->n_group_tags > KP_VALIDATE_ITEMS_MAX)
        return "violence_types and group_tags: at most 64";
    return s_persons_check (signal->persons, signal->n_persons);
}

//  --------------------------------------------------------------------------
//  Referral (overdracht)
static const char *
s_referral_check (const Kp__Body__Referral *referral)
{
    if (!s_short (referral->safety_summary, KP_VALIDATE_TEXT_MAX))
        return "safety_summary is longer than 2000 bytes";
    if (!s_short (referral->case_id, KP_VALIDATE_SHORT_MAX)
    ||  !s_short (referral->case_direction, KP_VALIDATE_SHORT_MAX))
        return "case_id and case_direction: at most 256 bytes";
    if (referral->n_signal_ids > KP_VALIDATE_ITEMS_MAX)
        return "signal_ids: at most 64";
    for (size_t index = 0; index < referral->n_signal_ids; index++)
        if (referral->signal_ids [index].len != KP_ID_SIZE)
            return "signal_ids: each must be a 16-byte message id";
    if (referral->n_safety_conditions > KP_VALIDATE_ITEMS_MAX)
        return "safety_conditions: at most 64";
    for (size_t index = 0; index < referral->n_safety_conditions; index++)
        if (!s_short (referral->safety_conditions [index], KP_VALIDATE_TEXT_MAX))
            return "safety_conditions: each at most 2000 bytes";
    if (*referral->first_contact_deadline
    &&  !kp_validate_date (referral->first_contact_deadline))
        return "first_contact_deadline must be a date YYYY-MM-DD";
    if (referral->monitoring) {
        if (!s_short (referral->monitoring->who, KP_VALIDATE_SHORT_MAX))
            return "monitoring.who is longer than 256 bytes";
        if (*referral->monitoring->until
        &&  !kp_validate_date (referral->monitoring->until))
            return "monitoring.until must be a date YYYY-MM-DD";
    }
    return s_persons_check (referral->persons, referral->n_persons);
}

//  --------------------------------------------------------------------------
//  The leg to leerplicht or Veilig Thuis: may carry a lookup hint
static const char *
s_request_check (const Kp__Body__SchoolNotificationRequest *request)
{
    if (!*request->child_name || !s_short (request->child_name, KP_VALIDATE_SHORT_MAX))
        return "child_name is required (at most 256 bytes)";
    if (!kp_validate_date (request->date_of_birth))
        return "date_of_birth is required as a date YYYY-MM-DD";
    if (!kp_validate_date (request->school_day))
        return "school_day is required as a date YYYY-MM-DD";
    if (!s_short (request->lookup_hint, KP_VALIDATE_SHORT_MAX))
        return "lookup_hint is longer than 256 bytes";
    return NULL;
}

//  --------------------------------------------------------------------------
//  The leg to the school: name, date of birth, code words, school day
static const char *
s_notification_check (Kp__Body__SchoolNotification *notification, bool fill)
{
    if (!*notification->child_name
    ||  !s_short (notification->child_name, KP_VALIDATE_SHORT_MAX))
        return "child_name is required (at most 256 bytes)";
    if (!kp_validate_date (notification->date_of_birth))
        return "date_of_birth is required as a date YYYY-MM-DD";
    if (!kp_validate_date (notification->school_day))
        return "school_day is required as a date YYYY-MM-DD";
    if (!*notification->code_words && fill) {
        //  The message is freed with the system allocator: give it a heap
        //  copy, never the literal (the empty default is a shared literal
        //  that is never freed)
        notification->code_words = strdup (KP_VALIDATE_CODE_WORDS);
        assert (notification->code_words);
    }
    if (strcmp (notification->code_words, KP_VALIDATE_CODE_WORDS) != 0)
        return "code_words must be \"Handle with Care\"";
    return NULL;
}

//  --------------------------------------------------------------------------
//  Feedback (terugmelding) and read receipts
static const char *
s_feedback_check (const Kp__Body__Feedback *feedback)
{
    if (feedback->status == KP__BODY__FEEDBACK_STATUS__FEEDBACK_UNSPECIFIED)
        return "status is required";
    if (feedback->decline_reason != KP__BODY__DECLINE_REASON__DECLINE_UNSPECIFIED
    &&  feedback->status != KP__BODY__FEEDBACK_STATUS__DECLINED)
        return "decline_reason is only for status DECLINED";
    if (!s_short (feedback->note, KP_VALIDATE_NOTE_MAX))
        return "note is longer than 1000 bytes";
    if (*feedback->taken_over_by && !s_partner_id_valid (feedback->taken_over_by))
        return "taken_over_by must be a partner id";
    return NULL;
}

//  --------------------------------------------------------------------------
//  Check an unpacked body against its type's rules; NULL or a reason

const char *
kp_validate_body (ProtobufCMessage *body, bool fill)
{
    assert (body);
    if (!kp_message_strings_valid (body))
        return "a string is not valid UTF-8";
    const ProtobufCMessageDescriptor *desc = body->descriptor;
    if (desc == &kp__body__signal__descriptor)
        return s_signal_check ((const Kp__Body__Signal *) body);
    if (desc == &kp__body__referral__descriptor)
        return s_referral_check ((const Kp__Body__Referral *) body);
    if (desc == &kp__body__school_notification_request__descriptor)
        return s_request_check ((const Kp__Body__SchoolNotificationRequest *) body);
    if (desc == &kp__body__school_notification__descriptor)
        return s_notification_check ((Kp__Body__SchoolNotification *) body, fill);
    if (desc == &kp__body__feedback__descriptor)
        return s_feedback_check ((const Kp__Body__Feedback *) body);
    return "no schema for this type";
}

//  --------------------------------------------------------------------------
//  Unpack and check; the message or NULL and a reason

ProtobufCMessage *
kp_validate_unpack (const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                    size_t size, const char **reason_p)
{
    assert (desc);
    assert (reason_p);
    ProtobufCMessage *body = protobuf_c_message_unpack (desc, NULL, size, data);
    if (!body) {
        *reason_p = "body does not decode with its schema";
        return NULL;
    }
    //  A string with a NUL inside is cut silently and re-packs shorter;
    //  fields of another schema arrive as unknown fields.
    if (protobuf_c_message_get_packed_size (body) != size
    ||  s_has_unknown_fields (body)) {
        *reason_p = "body does not match its schema";
        protobuf_c_message_free_unpacked (body, NULL);
        return NULL;
    }
    const char *reason = kp_validate_body (body, false);
    if (reason) {
        *reason_p = reason;
        protobuf_c_message_free_unpacked (body, NULL);
        return NULL;
    }
    return body;
}

//  --------------------------------------------------------------------------
//  Days since 1970-01-01 of a civil date (proleptic Gregorian)
static int64_t
s_days_from_civil (int64_t year, int64_t month, int64_t day)
{
    year -= month <= 2;
    int64_t era = (year >= 0? year: year - 399) / 400;
    int64_t year_of_era = year - era * 400;
    int64_t day_of_year = (153 * (month + (month > 2? -3: 9)) + 2) / 5 + day - 1;
    int64_t day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100
                       + day_of_year;
    return era * 146097 + day_of_era - 719468;
}

//  Days since the epoch of the last Sunday of month in year
static int64_t
s_last_sunday (int64_t year, int64_t month)
{
    int64_t last = s_days_from_civil (year, month + 1, 1) - 1;
    int64_t weekday = (last + 4) % 7;   //  0 = Sunday; 1970-01-01 was a Thursday
    return last - weekday;
}

//  --------------------------------------------------------------------------
//  The school day's deadlines in Europe/Amsterdam: due at 07:30 local,
//  ends at 18:00 local, as UTC ms. 0, or -1 if school_day is not a date.
//
//  Dutch local time is CET (UTC+1), and CEST (UTC+2) from 01:00 UTC on the
//  last Sunday of March to 01:00 UTC on the last Sunday of October (EU
//  rule, directive 2000/84/EC). Both times we need fall well after the
//  switch at night, so the whole school day has one offset. Computed here
//  rather than with TZ and mktime: no process-wide state, no tzdata needed.

int
kp_validate_school_day_times (const char *school_day, int64_t *due_at_ms_p,
                              int64_t *ends_at_ms_p)
{
    assert (school_day);
    assert (due_at_ms_p);
    assert (ends_at_ms_p);
    if (!kp_validate_date (school_day))
        return -1;
    int64_t year = atoi (school_day);
    int64_t month = s_two_digits (school_day + 5);
    int64_t day = s_two_digits (school_day + 8);
    int64_t days = s_days_from_civil (year, month, day);
    bool summer = days >= s_last_sunday (year, 3) && days < s_last_sunday (year, 10);
    int64_t offset_ms = (summer? 2: 1) * 3600 * 1000LL;
    int64_t midnight_ms = days * 86400 * 1000LL;
    *due_at_ms_p = midnight_ms + (7 * 60 + 30) * 60 * 1000LL - offset_ms;
    *ends_at_ms_p = midnight_ms + KP_VALIDATE_SCHOOL_DAY_END * 3600 * 1000LL - offset_ms;
    return 0;
}
