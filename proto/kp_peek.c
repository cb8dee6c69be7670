/*  =========================================================================
    kp_peek - read the fields replay needs from a packed Record, in place

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
*/
#include "kp_peek.h"
#include <assert.h>
#include <string.h>

//  Wire types (protobuf encoding guide). Groups (3, 4) and 6, 7 are refused,
//  as protobuf-c refuses them, even for unknown fields.
#define KP_WIRE_VARINT      0
#define KP_WIRE_FIXED64     1
#define KP_WIRE_LEN         2
#define KP_WIRE_FIXED32     5

//  Field numbers from kp_wire.proto: the ones read here, and for each
//  message the highest known number and the set of length-delimited ones
//  (bytes, string, message). Every other known field is a varint (uint64,
//  int64, uint32 or enum): the schema has no fixed, sint or repeated field.
//  A known field with another wire type makes protobuf-c refuse the input,
//  and so peek refuses it too, also for fields it does not read.
#define kp_bit(number)      (UINT32_C (1) << (number))

#define KP_RECORD_SEQ            1
#define KP_RECORD_EVENT          2
#define KP_RECORD_TIME_MS        3
#define KP_RECORD_MESSAGE_ID     4
#define KP_RECORD_SENDER         5
#define KP_RECORD_SENDER_ROLE    6
#define KP_RECORD_RECIPIENT      7
#define KP_RECORD_RECIPIENT_ROLE 8
#define KP_RECORD_BODY_HASH      13
#define KP_RECORD_REF_SEQ        15
#define KP_RECORD_ENVELOPE       16
#define KP_RECORD_BODY_POS       17
#define KP_RECORD_TYPE           18
#define KP_RECORD_KEY_HASH       19
#define KP_RECORD_LAST           21
#define KP_RECORD_LEN_FIELDS                                              \
    (kp_bit (4) | kp_bit (5) | kp_bit (7) | kp_bit (9) | kp_bit (10)      \
   | kp_bit (11) | kp_bit (12) | kp_bit (13) | kp_bit (16) | kp_bit (19)  \
   | kp_bit (21))

#define KP_ENVELOPE_EXPIRES_AT_MS 5
#define KP_ENVELOPE_REFERENCE     6
#define KP_ENVELOPE_DUE_AT_MS     17
#define KP_ENVELOPE_LAST          17
#define KP_ENVELOPE_LEN_FIELDS                                            \
    (kp_bit (1) | kp_bit (3) | kp_bit (6) | kp_bit (7) | kp_bit (8)       \
   | kp_bit (9) | kp_bit (10) | kp_bit (12) | kp_bit (13) | kp_bit (15))

//  Lengths past this are refused: no message may reach 2 GiB
#define KP_LEN_MAX          INT32_MAX

//  One field as read off the wire
typedef struct {
    uint32_t number;                //  field number
    uint32_t wire_type;             //  KP_WIRE_*
    uint64_t value;                 //  VARINT: the value, mod 2^64
    kp_peek_bytes_t bytes;          //  LEN: the payload
} field_t;

//  --------------------------------------------------------------------------
//  Read the varint at cursor, of at most max_size bytes and ending before
//  limit, into *value_p (mod 2^64, as protobuf-c reads a 10th byte).
//  Returns the cursor past it, or NULL if it does not end in time.

static const uint8_t *
s_varint_long (const uint8_t *cursor, const uint8_t *limit, size_t max_size,
               uint64_t *value_p)
{
    size_t avail = (size_t) (limit - cursor);
    if (avail > max_size)
        avail = max_size;
    uint64_t value = 0;
    for (size_t index = 0; index < avail; index++) {
        uint8_t byte = cursor [index];
        value |= (uint64_t) (byte & 0x7F) << (7 * index);
        if ((byte & 0x80) == 0) {
            *value_p = value;
            return cursor + index + 1;
        }
    }
    return NULL;
}

//  The same, with the one-byte case (most tags, lengths and enums) inline
static inline const uint8_t *
s_varint (const uint8_t *cursor, const uint8_t *limit, size_t max_size,
          uint64_t *value_p)
{
    if (cursor < limit && *cursor < 0x80) {
        *value_p = *cursor;
        return cursor + 1;
    }
    return s_varint_long (cursor, limit, max_size, value_p);
}

//  --------------------------------------------------------------------------
//  Read the field at cursor (there is at least one byte before limit).
//  Returns the cursor past it, or NULL if it is malformed.
//  Tags follow protobuf-c: at most 5 bytes (field numbers up to 2^32 - 1),
//  and a one-byte tag with field number 0 is refused (a longer one is an
//  unknown field, which protobuf-c keeps and peek skips).
//  Recovery calls this for every field of every record: it is inlined, so
//  field stays in registers.

static inline __attribute__ ((always_inline)) const uint8_t *
s_field (const uint8_t *cursor, const uint8_t *limit, field_t *field)
{
    if (*cursor < 8)
        return NULL;                //  number 0 in a one-byte tag
    uint64_t tag;
    cursor = s_varint (cursor, limit, 5, &tag);
    if (!cursor)
        return NULL;
    field->number = (uint32_t) (tag >> 3);
    field->wire_type = (uint32_t) (tag & 7);
    field->value = 0;
    field->bytes.data = NULL;
    field->bytes.size = 0;
    switch (field->wire_type) {
        case KP_WIRE_VARINT:
            return s_varint (cursor, limit, 10, &field->value);
        case KP_WIRE_LEN: {
            uint64_t size;
            cursor = s_varint (cursor, limit, 5, &size);
            if (!cursor
            ||  size > KP_LEN_MAX
            ||  size > (uint64_t) (limit - cursor))
                return NULL;
            field->bytes.data = cursor;
            field->bytes.size = (size_t) size;
            return cursor + size;
        }
        case KP_WIRE_FIXED64:
            return limit - cursor < 8? NULL: cursor + 8;
        case KP_WIRE_FIXED32:
            return limit - cursor < 4? NULL: cursor + 4;
        default:
            return NULL;
    }
}

//  --------------------------------------------------------------------------
//  True if the field is one of the message's known fields (1 to last, the
//  length-delimited ones in len_fields) and has the wrong wire type for it

static inline bool
s_wrong_type (const field_t *field, uint32_t last, uint32_t len_fields)
{
    if (field->number == 0 || field->number > last)
        return false;               //  unknown: any wire type s_field takes
    uint32_t expected = (len_fields & kp_bit (field->number))? KP_WIRE_LEN
                                                               : KP_WIRE_VARINT;
    return field->wire_type != expected;
}

//  --------------------------------------------------------------------------
//  Read one occurrence of Record.envelope and merge it into out. Returns 0,
//  or -1 if it is malformed.
//  protobuf-c merges a second occurrence into the first with its own rules,
//  which differ from the protobuf spec for proto3 scalars: every int64 of
//  the later envelope replaces the earlier one, 0 included, even when the
//  later envelope lacks the field. Bytes replace only when non-empty
//  (protobuf-c stores an empty one as NULL, and NULL counts as absent).
//  Peek follows protobuf-c, so recovery reads what it read before.

static int
s_envelope_merge (kp_peek_bytes_t payload, kp_peek_record_t *out)
{
    const uint8_t *cursor = payload.data;
    const uint8_t *limit = payload.data + payload.size;
    int64_t expires_at_ms = 0;
    int64_t due_at_ms = 0;
    kp_peek_bytes_t reference = { NULL, 0 };
    while (cursor < limit) {
        field_t field;
        cursor = s_field (cursor, limit, &field);
        if (!cursor
        ||  s_wrong_type (&field, KP_ENVELOPE_LAST, KP_ENVELOPE_LEN_FIELDS))
            return -1;
        switch (field.number) {
            case KP_ENVELOPE_EXPIRES_AT_MS:
                expires_at_ms = (int64_t) field.value;
                break;
            case KP_ENVELOPE_REFERENCE:
                reference = field.bytes;
                break;
            case KP_ENVELOPE_DUE_AT_MS:
                due_at_ms = (int64_t) field.value;
                break;
            default:
                break;
        }
    }
    out->expires_at_ms = expires_at_ms;
    out->due_at_ms = due_at_ms;
    if (reference.size > 0 || !out->has_envelope)
        out->reference = reference;
    out->has_envelope = true;
    return 0;
}

//  --------------------------------------------------------------------------
//  Read a packed Record into out; see kp_peek.h

int
kp_peek_record (const uint8_t *data, size_t size, kp_peek_record_t *out)
{
    assert (data || size == 0);
    assert (out);
    memset (out, 0, sizeof (*out));
    if (size == 0)
        return 0;                   //  an empty message: all defaults

    const uint8_t *cursor = data;
    const uint8_t *limit = data + size;
    while (cursor < limit) {
        field_t field;
        cursor = s_field (cursor, limit, &field);
        if (!cursor
        ||  s_wrong_type (&field, KP_RECORD_LAST, KP_RECORD_LEN_FIELDS))
            goto refuse;
        switch (field.number) {
            case KP_RECORD_SEQ:
                out->seq = field.value;
                break;
            case KP_RECORD_EVENT:
                out->event = (uint32_t) field.value;
                break;
            case KP_RECORD_TIME_MS:
                out->time_ms = (int64_t) field.value;
                break;
            case KP_RECORD_MESSAGE_ID:
                out->message_id = field.bytes;
                break;
            case KP_RECORD_SENDER:
                out->sender = field.bytes;
                break;
            case KP_RECORD_SENDER_ROLE:
                out->sender_role = (uint32_t) field.value;
                break;
            case KP_RECORD_RECIPIENT:
                out->recipient = field.bytes;
                break;
            case KP_RECORD_RECIPIENT_ROLE:
                out->recipient_role = (uint32_t) field.value;
                break;
            case KP_RECORD_BODY_HASH:
                out->body_hash = field.bytes;
                break;
            case KP_RECORD_REF_SEQ:
                out->ref_seq = field.value;
                break;
            case KP_RECORD_ENVELOPE:
                if (s_envelope_merge (field.bytes, out))
                    goto refuse;
                break;
            case KP_RECORD_BODY_POS:
                out->body_pos = field.value;
                break;
            case KP_RECORD_TYPE:
                out->type = (uint32_t) field.value;
                break;
            case KP_RECORD_KEY_HASH:
                out->key_hash = field.bytes;
                break;
            default:
                break;              //  a field replay does not read
        }
    }
    return 0;

refuse:
    memset (out, 0, sizeof (*out));
    return -1;
}

//  --------------------------------------------------------------------------
//  True if the field holds exactly the characters of text

bool
kp_peek_equal (kp_peek_bytes_t bytes, const char *text)
{
    assert (text);
    size_t length = strlen (text);
    return bytes.size == length
        && (length == 0 || memcmp (bytes.data, text, length) == 0);
}
