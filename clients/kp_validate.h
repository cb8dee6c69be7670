/*  =========================================================================
    kp_validate - the data-minimisation rules of each body type

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    Not installed. The rules a body must meet before the library seals it
    and after it opens one (DESIGN.md, DOMAIN.md "Privacy rules"): the
    type's schema and nothing else (no unknown fields, so a body packed
    with a richer schema, e.g. a request with its lookup hint sent to a
    school, is refused), every string valid UTF-8 without NUL bytes, free
    text size-limited, dates real calendar dates, and per type the fields
    it needs. The school-bound SchoolNotification has room for name, date
    of birth, code words and school day only. Stateless.
@end
*/
#ifndef KP_VALIDATE_H_INCLUDED
#define KP_VALIDATE_H_INCLUDED

#include "kp_util.h"

#define KP_VALIDATE_TEXT_MAX 2000       //  narrative, safety_summary, conditions
#define KP_VALIDATE_NOTE_MAX 1000       //  Feedback.note
#define KP_VALIDATE_SHORT_MAX 256       //  names, ids, codes, addresses
#define KP_VALIDATE_ITEMS_MAX 64        //  persons, conditions, signal ids
#define KP_VALIDATE_CODE_WORDS "Handle with Care"
#define KP_VALIDATE_SCHOOL_DAY_END 18   //  hour, local time, a school day ends

//  Check an unpacked body of one of the kp.body types against its rules.
//  With fill, complete what the library may complete (the code words of a
//  school notification). Returns NULL if fine, else a one-line reason
//  (a static string).
const char *
    kp_validate_body (ProtobufCMessage *body, bool fill);

//  Unpack size bytes of data with desc and check them: decodes, re-packs
//  to the same length (a NUL inside a string would not), no unknown fields,
//  strings valid UTF-8, then kp_validate_body. Returns the message (free
//  with protobuf_c_message_free_unpacked), or NULL and *reason_p.
ProtobufCMessage *
    kp_validate_unpack (const ProtobufCMessageDescriptor *desc, const uint8_t *data,
                        size_t size, const char **reason_p);

//  True if text is a calendar date YYYY-MM-DD (leap years counted).
bool
    kp_validate_date (const char *text);

//  True if text is an ISO 8601 UTC time YYYY-MM-DDTHH:MM:SSZ (seconds
//  optionally with a fraction).
bool
    kp_validate_time (const char *text);

//  The deadlines of a school notification for school_day (YYYY-MM-DD), in
//  Europe/Amsterdam: due (undelivered -> OVERDUE) at 07:30 local, expires
//  at the end of the school day, 18:00 local. As UTC ms since the epoch.
//  Returns 0, or -1 if school_day is not a date.
int
    kp_validate_school_day_times (const char *school_day, int64_t *due_at_ms_p,
                                  int64_t *ends_at_ms_p);

#endif
