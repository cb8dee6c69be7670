/*  =========================================================================
    kp_peek - read the fields replay needs from a packed Record, in place

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    An allocation-free reader of the protobuf wire format for one packed
    kp.wire.Record (proto/kp_wire.proto). It fills a flat struct of numbers
    and of views into the caller's buffer, for recovery, which replays the
    whole audit log at start and needs only a few fields of each record;
    kp__wire__record__unpack + free_unpacked cost a malloc and a free for
    every string, bytes and message field (about 4x the time of a peek).

    It accepts the inputs protobuf-c 1.4.1's unpack accepts (every known
    field of Record and of its Envelope with the right wire type, no
    truncation, varints of at most 10 bytes, tags and lengths of at most 5,
    no groups) and reads the same values from them; test_kp_peek holds it
    to that, field by field, against kp__wire__record__unpack. Stateless;
    safe from any thread.

    Replay reads a record like this:

        kp_peek_record_t record;
        if (kp_peek_record (data, size, &record))
            return -1;                  //  corrupt: not a Record
        if (record.event == KP__WIRE__EVENT_KIND__ACCEPTED
        &&  kp_peek_equal (record.recipient, partner_id))
            ...                         //  views stay valid while data does
@end
*/
#ifndef KP_PEEK_H_INCLUDED
#define KP_PEEK_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifndef KP_MUST_CHECK
#define KP_MUST_CHECK __attribute__ ((warn_unused_result))
#endif

//  A bytes or string field: a view into the input, not NUL-terminated.
//  data is NULL if the field is absent; size 0 means empty or absent, as
//  proto3 does not tell the two apart.
typedef struct {
    const uint8_t *data;            //  first byte in the input, or NULL
    size_t size;                    //  bytes, 0 if empty or absent
} kp_peek_bytes_t;

//  The Record fields replay reads. Absent fields are 0 or a NULL view.
//  Enums are their numbers as on the wire: a negative value (a 10-byte
//  varint) reads as its low 32 bits, as protobuf-c stores it, so
//  (uint32_t) unpacked->event == peeked.event.
typedef struct {
    uint32_t event;                 //  Record.event (EventKind)
    uint64_t seq;                   //  Record.seq: index in the log
    uint64_t ref_seq;               //  Record.ref_seq: the record it is about
    uint64_t body_pos;              //  Record.body_pos: body store position
    int64_t time_ms;                //  Record.time_ms: broker clock, UTC
    uint32_t type;                  //  Record.type (MessageType)
    uint32_t sender_role;           //  Record.sender_role (Role)
    uint32_t recipient_role;        //  Record.recipient_role (Role)
    kp_peek_bytes_t message_id;     //  Record.message_id
    kp_peek_bytes_t sender;         //  Record.sender (string)
    kp_peek_bytes_t recipient;      //  Record.recipient (string)
    kp_peek_bytes_t body_hash;      //  Record.body_hash
    kp_peek_bytes_t key_hash;       //  Record.key_hash
    bool has_envelope;              //  Record.envelope occurs
    int64_t expires_at_ms;          //  Record.envelope.expires_at_ms
    int64_t due_at_ms;              //  Record.envelope.due_at_ms
    kp_peek_bytes_t reference;      //  Record.envelope.reference
} kp_peek_record_t;

//  --------------------------------------------------------------------------
//  Read the Record packed in data [0, size) into out; never reads outside
//  that range and never allocates. Returns 0, or -1 if data is not a
//  well-formed Record (then out is all zero). data may be NULL if size is 0.
//  Unknown fields are skipped by wire type; for a field given twice the
//  last wins. If the envelope is given twice, the two merge as protobuf-c
//  merges them: expires_at_ms and due_at_ms come from the last envelope
//  (0 if that one lacks them: protobuf-c replaces proto3 scalars outright),
//  reference from the last envelope with a non-empty one.
//  String fields come as their bytes: unpack would cut one at its first
//  NUL byte; peek does not, and kp_peek_equal compares every byte.
int
    kp_peek_record (const uint8_t *data, size_t size, kp_peek_record_t *out)
    KP_MUST_CHECK;

//  True if the bytes or string field holds exactly the characters of text
//  (an absent field equals ""). A field with a NUL byte equals no text.
bool
    kp_peek_equal (kp_peek_bytes_t bytes, const char *text);

#endif
