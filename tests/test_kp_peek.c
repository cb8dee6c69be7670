/*  =========================================================================
    test_kp_peek - the in-place Record reader, held to protobuf-c's unpack

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
*/
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <criterion/theories.h>
#include <signal.h>
#include "kp_peek.h"
#include "kp_util.h"

TestSuite (kp_peek);

//  --------------------------------------------------------------------------
//  A deterministic generator (splitmix64), so a failure can be replayed

typedef struct {
    uint64_t state;                 //  advances by the golden ratio
} rng_t;

static uint64_t
s_rng_next (rng_t *rng)
{
    uint64_t value = (rng->state += UINT64_C (0x9E3779B97F4A7C15));
    value = (value ^ (value >> 30)) * UINT64_C (0xBF58476D1CE4E5B9);
    value = (value ^ (value >> 27)) * UINT64_C (0x94D049BB133111EB);
    return value ^ (value >> 31);
}

//  A number in [0, bound)
static uint64_t
s_rng_below (rng_t *rng, uint64_t bound)
{
    return s_rng_next (rng) % bound;
}

//  True one time in odds
static bool
s_rng_chance (rng_t *rng, uint64_t odds)
{
    return s_rng_below (rng, odds) == 0;
}

//  A uint64 value, often one at an encoding boundary
static uint64_t
s_random_uint64 (rng_t *rng)
{
    static const uint64_t edges [] = {
        0, 1, 127, 128, 16383, 16384, UINT32_MAX, UINT64_C (1) << 32,
        INT64_MAX, (uint64_t) INT64_MAX + 1, UINT64_MAX - 1, UINT64_MAX
    };
    if (s_rng_chance (rng, 2))
        return edges [s_rng_below (rng, sizeof edges / sizeof edges [0])];
    return s_rng_next (rng) >> s_rng_below (rng, 64);
}

//  An int64 value: boundaries, negatives, or a plausible clock in ms
static int64_t
s_random_int64 (rng_t *rng)
{
    static const int64_t edges [] = {
        0, 1, -1, 1767225600000, INT32_MIN, INT32_MAX, INT64_MIN, INT64_MAX
    };
    if (s_rng_chance (rng, 2))
        return edges [s_rng_below (rng, sizeof edges / sizeof edges [0])];
    return (int64_t) s_rng_next (rng) >> s_rng_below (rng, 64);
}

//  An enum value as protobuf-c holds it (open enums: any int32)
static int32_t
s_random_enum (rng_t *rng)
{
    static const int32_t edges [] = {
        0, 1, 2, 5, 16, 127, 128, -1, -128, INT32_MIN, INT32_MAX
    };
    if (s_rng_chance (rng, 3))
        return edges [s_rng_below (rng, sizeof edges / sizeof edges [0])];
    return (int32_t) s_rng_below (rng, 20);
}

//  --------------------------------------------------------------------------
//  An arena for the strings and bytes of generated records: freed at once

typedef struct {
    uint8_t *base;                  //  the block
    size_t used;                    //  bytes handed out
    size_t size;                    //  bytes in the block
} arena_t;

static void *
s_arena_take (arena_t *arena, size_t size)
{
    cr_assert_leq (size, arena->size - arena->used, "arena too small");
    void *block = arena->base + arena->used;
    arena->used += size;
    return block;
}

//  A string field's length: empty, short, at a length-prefix boundary, or long
static size_t
s_random_length (rng_t *rng, size_t longest)
{
    static const size_t lengths [] = { 0, 1, 16, 32, 127, 128, 300, 16384, 20000 };
    size_t length = s_rng_chance (rng, 2)
                  ? lengths [s_rng_below (rng, sizeof lengths / sizeof lengths [0])]
                  : s_rng_below (rng, 40);
    return length <= longest? length: longest;
}

//  A string without NUL bytes (protobuf-c cuts strings at one), sometimes
//  with bytes past ASCII, which protobuf-c does not check either
static char *
s_random_string (rng_t *rng, arena_t *arena, size_t longest)
{
    size_t length = s_random_length (rng, longest);
    char *text = (char *) s_arena_take (arena, length + 1);
    for (size_t index = 0; index < length; index++)
        text [index] = s_rng_chance (rng, 10)
                     ? (char) (0x80 + s_rng_below (rng, 0x80))
                     : (char) ('a' + s_rng_below (rng, 26));
    text [length] = 0;
    return text;
}

//  Any bytes, NUL included
static ProtobufCBinaryData
s_random_bytes (rng_t *rng, arena_t *arena, size_t longest)
{
    ProtobufCBinaryData bytes = { 0, NULL };
    bytes.len = s_random_length (rng, longest);
    if (bytes.len) {
        bytes.data = (uint8_t *) s_arena_take (arena, bytes.len);
        for (size_t index = 0; index < bytes.len; index++)
            bytes.data [index] = (uint8_t) s_rng_next (rng);
    }
    return bytes;
}

//  Fill record (and envelope, which it may point to) with random fields,
//  each present half the time; every field of both messages takes part,
//  read by peek or not. longest caps string and bytes lengths.
static void
s_random_record (rng_t *rng, arena_t *arena, size_t longest,
                 Kp__Wire__Record *record, Kp__Wire__Envelope *envelope)
{
    kp__wire__record__init (record);
    kp__wire__envelope__init (envelope);
#   define maybe_set(field, value) \
        do { if (s_rng_chance (rng, 2)) field = value; } while (0)
    maybe_set (record->seq, s_random_uint64 (rng));
    maybe_set (record->event, (Kp__Wire__EventKind) s_random_enum (rng));
    maybe_set (record->time_ms, s_random_int64 (rng));
    maybe_set (record->message_id, s_random_bytes (rng, arena, longest));
    maybe_set (record->sender, s_random_string (rng, arena, longest));
    maybe_set (record->sender_role, (Kp__Wire__Role) s_random_enum (rng));
    maybe_set (record->recipient, s_random_string (rng, arena, longest));
    maybe_set (record->recipient_role, (Kp__Wire__Role) s_random_enum (rng));
    maybe_set (record->acting_user, s_random_string (rng, arena, longest));
    maybe_set (record->on_behalf_of, s_random_string (rng, arena, longest));
    maybe_set (record->purpose, s_random_string (rng, arena, longest));
    maybe_set (record->subject, s_random_bytes (rng, arena, longest));
    maybe_set (record->body_hash, s_random_bytes (rng, arena, longest));
    maybe_set (record->outcome, (Kp__Wire__ErrorCode) s_random_enum (rng));
    maybe_set (record->ref_seq, s_random_uint64 (rng));
    maybe_set (record->body_pos, s_random_uint64 (rng));
    maybe_set (record->type, (Kp__Wire__MessageType) s_random_enum (rng));
    maybe_set (record->key_hash, s_random_bytes (rng, arena, longest));
    maybe_set (record->status, (Kp__Wire__StatusKind) s_random_enum (rng));
    maybe_set (record->receipt_hash, s_random_bytes (rng, arena, longest));
    if (s_rng_chance (rng, 2)) {
        record->envelope = envelope;
        maybe_set (envelope->id, s_random_bytes (rng, arena, longest));
        maybe_set (envelope->type, (Kp__Wire__MessageType) s_random_enum (rng));
        maybe_set (envelope->recipient, s_random_string (rng, arena, longest));
        maybe_set (envelope->created_at_ms, s_random_int64 (rng));
        maybe_set (envelope->expires_at_ms, s_random_int64 (rng));
        maybe_set (envelope->reference, s_random_bytes (rng, arena, longest));
        maybe_set (envelope->purpose, s_random_string (rng, arena, longest));
        maybe_set (envelope->acting_user, s_random_string (rng, arena, longest));
        maybe_set (envelope->on_behalf_of, s_random_string (rng, arena, longest));
        maybe_set (envelope->subject, s_random_bytes (rng, arena, longest));
        maybe_set (envelope->body_length, (uint32_t) s_random_uint64 (rng));
        maybe_set (envelope->body_hash, s_random_bytes (rng, arena, longest));
        maybe_set (envelope->sender, s_random_string (rng, arena, longest));
        maybe_set (envelope->sender_role, (Kp__Wire__Role) s_random_enum (rng));
        maybe_set (envelope->recipient_partner, s_random_string (rng, arena, longest));
        maybe_set (envelope->recipient_role, (Kp__Wire__Role) s_random_enum (rng));
        maybe_set (envelope->due_at_ms, s_random_int64 (rng));
    }
#   undef maybe_set
}

//  Pack a random record onto the end of buffer (of size capacity, used
//  bytes already); returns the new used size
static size_t
s_pack_random (rng_t *rng, size_t longest, uint8_t *buffer, size_t used,
               size_t capacity)
{
    arena_t arena = { NULL, 0, 40 * (longest + 1) };
    arena.base = (uint8_t *) malloc (arena.size);
    cr_assert_not_null (arena.base);
    Kp__Wire__Record record;
    Kp__Wire__Envelope envelope;
    s_random_record (rng, &arena, longest, &record, &envelope);
    size_t size = kp__wire__record__get_packed_size (&record);
    cr_assert_leq (size, capacity - used);
    cr_assert_eq (kp__wire__record__pack (&record, buffer + used), size);
    free (arena.base);
    return used + size;
}

//  --------------------------------------------------------------------------
//  Assert a peeked field holds what protobuf-c unpacked

static void
s_assert_same_bytes (kp_peek_bytes_t peeked, ProtobufCBinaryData unpacked,
                     const char *name)
{
    cr_assert_eq (peeked.size, unpacked.len, "%s: %zu bytes, unpack %zu",
                  name, peeked.size, unpacked.len);
    if (peeked.size)
        cr_assert_arr_eq (peeked.data, unpacked.data, peeked.size, "%s differs", name);
}

//  A string: protobuf-c cuts it at its first NUL byte, peek does not
static void
s_assert_same_string (kp_peek_bytes_t peeked, const char *unpacked, const char *name)
{
    const uint8_t *nul = peeked.size
                       ? (const uint8_t *) memchr (peeked.data, 0, peeked.size)
                       : NULL;
    size_t length = nul? (size_t) (nul - peeked.data): peeked.size;
    cr_assert_eq (strlen (unpacked), length, "%s: %zu bytes, unpack %zu",
                  name, length, strlen (unpacked));
    if (length)
        cr_assert_arr_eq (peeked.data, unpacked, length, "%s differs", name);
    if (!nul)
        cr_assert (kp_peek_equal (peeked, unpacked), "%s: kp_peek_equal", name);
}

//  Assert peek read from some bytes exactly what unpack read from them
static void
s_assert_same (const kp_peek_record_t *peeked, const Kp__Wire__Record *unpacked)
{
    cr_assert_eq (peeked->seq, unpacked->seq);
    cr_assert_eq (peeked->event, (uint32_t) unpacked->event);
    cr_assert_eq (peeked->time_ms, unpacked->time_ms);
    cr_assert_eq (peeked->ref_seq, unpacked->ref_seq);
    cr_assert_eq (peeked->body_pos, unpacked->body_pos);
    cr_assert_eq (peeked->type, (uint32_t) unpacked->type);
    cr_assert_eq (peeked->sender_role, (uint32_t) unpacked->sender_role);
    cr_assert_eq (peeked->recipient_role, (uint32_t) unpacked->recipient_role);
    s_assert_same_bytes (peeked->message_id, unpacked->message_id, "message_id");
    s_assert_same_string (peeked->sender, unpacked->sender, "sender");
    s_assert_same_string (peeked->recipient, unpacked->recipient, "recipient");
    s_assert_same_bytes (peeked->body_hash, unpacked->body_hash, "body_hash");
    s_assert_same_bytes (peeked->key_hash, unpacked->key_hash, "key_hash");
    cr_assert_eq (peeked->has_envelope, unpacked->envelope != NULL);
    if (unpacked->envelope) {
        cr_assert_eq (peeked->expires_at_ms, unpacked->envelope->expires_at_ms);
        cr_assert_eq (peeked->due_at_ms, unpacked->envelope->due_at_ms);
        s_assert_same_bytes (peeked->reference, unpacked->envelope->reference,
                             "reference");
    }
    else {
        cr_assert_eq (peeked->expires_at_ms, 0);
        cr_assert_eq (peeked->due_at_ms, 0);
        cr_assert_null (peeked->reference.data);
        cr_assert_eq (peeked->reference.size, 0);
    }
}

//  Peek and unpack a copy of exactly size bytes (so ASan sees any read
//  past the end); assert they accept the same input and read the same from
//  it. Returns peek's answer.
static int
s_check (const uint8_t *data, size_t size)
{
    uint8_t *copy = size? (uint8_t *) malloc (size): NULL;
    if (size) {
        cr_assert_not_null (copy);
        memcpy (copy, data, size);
    }
    kp_peek_record_t peeked;
    int rc = kp_peek_record (copy, size, &peeked);
    Kp__Wire__Record *unpacked = kp__wire__record__unpack (NULL, size, copy);
    if ((rc == 0) != (unpacked != NULL)) {
        char *hex = kp_hex_encode (data, size);
        cr_assert_fail ("peek says %d, unpack %s, for %s", rc,
                        unpacked? "accepts": "refuses", hex);
    }
    if (unpacked) {
        s_assert_same (&peeked, unpacked);
        kp__wire__record__free_unpacked (unpacked, NULL);
    }
    else {
        kp_peek_record_t zero;
        memset (&zero, 0, sizeof zero);
        cr_assert (memcmp (&peeked, &zero, sizeof zero) == 0,
                   "refused, but out not zero");
    }
    free (copy);
    return rc;
}

//  --------------------------------------------------------------------------
//  A typical ACCEPTED record, as kp_server writes one

static const uint8_t s_message_id [16] = {
    0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
    0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x00
};
static const uint8_t s_reference [16] = {
    0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7,
    0xf8, 0xf9, 0xfa, 0xfb, 0xfc, 0xfd, 0xfe, 0xff
};
static const uint8_t s_body_hash [32] = { 0x00, 0xff, 0x01, 0xfe, 0x02 };

//  Pack it into a new buffer; caller frees. Sets *size_p.
static uint8_t *
s_accepted_packed (size_t *size_p)
{
    Kp__Wire__Envelope envelope = KP__WIRE__ENVELOPE__INIT;
    envelope.id.data = (uint8_t *) s_message_id;
    envelope.id.len = sizeof s_message_id;
    envelope.type = KP__WIRE__MESSAGE_TYPE__REFERRAL;
    envelope.recipient = "municipality:GM0153";
    envelope.created_at_ms = 1767225600000;
    envelope.expires_at_ms = 1767830400000;
    envelope.reference.data = (uint8_t *) s_reference;
    envelope.reference.len = sizeof s_reference;
    envelope.purpose = "jw-art-7.1.1";
    envelope.body_length = 1024;
    envelope.body_hash.data = (uint8_t *) s_body_hash;
    envelope.body_hash.len = sizeof s_body_hash;
    envelope.sender = "police-nl";
    envelope.sender_role = KP__WIRE__ROLE__POLICE;
    envelope.recipient_partner = "vt-utrecht";
    envelope.recipient_role = KP__WIRE__ROLE__VEILIG_THUIS;
    envelope.due_at_ms = 1767258000000;

    Kp__Wire__Record record = KP__WIRE__RECORD__INIT;
    record.seq = 1234567;
    record.event = KP__WIRE__EVENT_KIND__ACCEPTED;
    record.time_ms = 1767225600123;
    record.message_id = envelope.id;
    record.type = envelope.type;
    record.sender = envelope.sender;
    record.sender_role = envelope.sender_role;
    record.recipient = envelope.recipient_partner;
    record.recipient_role = envelope.recipient_role;
    record.purpose = envelope.purpose;
    record.body_hash = envelope.body_hash;
    record.envelope = &envelope;
    record.body_pos = 987654321;

    *size_p = kp__wire__record__get_packed_size (&record);
    uint8_t *packed = (uint8_t *) malloc (*size_p);
    cr_assert_not_null (packed);
    kp__wire__record__pack (&record, packed);
    return packed;
}

Test (kp_peek, reads_a_typical_accepted_record)
{
    size_t size;
    uint8_t *packed = s_accepted_packed (&size);
    kp_peek_record_t record;
    cr_assert_eq (kp_peek_record (packed, size, &record), 0);
    cr_assert_eq (record.event, KP__WIRE__EVENT_KIND__ACCEPTED);
    cr_assert_eq (record.seq, 1234567);
    cr_assert_eq (record.time_ms, 1767225600123);
    cr_assert_eq (record.ref_seq, 0);
    cr_assert_eq (record.body_pos, 987654321);
    cr_assert_eq (record.type, KP__WIRE__MESSAGE_TYPE__REFERRAL);
    cr_assert_eq (record.sender_role, KP__WIRE__ROLE__POLICE);
    cr_assert_eq (record.recipient_role, KP__WIRE__ROLE__VEILIG_THUIS);
    cr_assert_eq (record.message_id.size, sizeof s_message_id);
    cr_assert_arr_eq (record.message_id.data, s_message_id, sizeof s_message_id);
    cr_assert (kp_peek_equal (record.sender, "police-nl"));
    cr_assert (kp_peek_equal (record.recipient, "vt-utrecht"));
    cr_assert_eq (record.body_hash.size, sizeof s_body_hash);
    cr_assert_arr_eq (record.body_hash.data, s_body_hash, sizeof s_body_hash);
    cr_assert_null (record.key_hash.data);
    cr_assert_eq (record.key_hash.size, 0);
    cr_assert (record.has_envelope);
    cr_assert_eq (record.expires_at_ms, 1767830400000);
    cr_assert_eq (record.due_at_ms, 1767258000000);
    cr_assert_eq (record.reference.size, sizeof s_reference);
    cr_assert_arr_eq (record.reference.data, s_reference, sizeof s_reference);
    //  Views point into the input
    cr_assert (record.sender.data > packed && record.sender.data < packed + size);
    cr_assert_eq (s_check (packed, size), 0);
    free (packed);
}

Test (kp_peek, empty_input_is_an_empty_record)
{
    kp_peek_record_t record;
    memset (&record, 0xA5, sizeof record);
    cr_assert_eq (kp_peek_record (NULL, 0, &record), 0);
    cr_assert_eq (record.seq, 0);
    cr_assert_null (record.sender.data);
    cr_assert_not (record.has_envelope);
    cr_assert_eq (s_check (NULL, 0), 0);
}

Test (kp_peek, refused_input_leaves_out_zero)
{
    const uint8_t truncated [] = { 0x08, 0x96 };   //  seq, varint cut short
    kp_peek_record_t record;
    memset (&record, 0xA5, sizeof record);
    cr_assert_eq (kp_peek_record (truncated, sizeof truncated, &record), -1);
    kp_peek_record_t zero;
    memset (&zero, 0, sizeof zero);
    cr_assert (memcmp (&record, &zero, sizeof zero) == 0);
}

Test (kp_peek, null_data_with_a_size_asserts, .signal = SIGABRT)
{
    kp_peek_record_t record;
    int rc = kp_peek_record (NULL, 1, &record);
    (void) rc;
}

Test (kp_peek, null_out_asserts, .signal = SIGABRT)
{
    const uint8_t data [] = { 0x08, 0x01 };
    int rc = kp_peek_record (data, sizeof data, NULL);
    (void) rc;
}

Test (kp_peek, equal_compares_every_byte)
{
    const uint8_t text [] = { 'o', 'r', 'g', 'A', 0, 'o', 'r', 'g', 'B' };
    kp_peek_bytes_t whole = { text, sizeof text };
    kp_peek_bytes_t first = { text, 4 };
    kp_peek_bytes_t empty = { text, 0 };
    kp_peek_bytes_t absent = { NULL, 0 };
    cr_assert (kp_peek_equal (first, "orgA"));
    cr_assert_not (kp_peek_equal (first, "org"));
    cr_assert_not (kp_peek_equal (first, "orgAB"));
    cr_assert_not (kp_peek_equal (first, "orgB"));
    cr_assert_not (kp_peek_equal (whole, "orgA"), "a NUL inside equals no text");
    cr_assert (kp_peek_equal (empty, ""));
    cr_assert (kp_peek_equal (absent, ""));
    cr_assert_not (kp_peek_equal (absent, "a"));
}

Test (kp_peek, equal_with_null_text_asserts, .signal = SIGABRT)
{
    kp_peek_bytes_t absent = { NULL, 0 };
    kp_peek_equal (absent, NULL);
}

//  --------------------------------------------------------------------------
//  Scalars at their encoding boundaries, negative enums as 10-byte varints

TheoryDataPoints (kp_peek, scalars_round_trip) = {
    DataPoints (uint64_t, 0, 1, 127, 128, UINT32_MAX, (uint64_t) INT64_MAX + 1,
                UINT64_MAX),
    DataPoints (int64_t, 0, 1, -1, INT32_MIN, INT64_MIN, INT64_MAX),
    DataPoints (int32_t, 0, 1, 16, -1, INT32_MIN, INT32_MAX),
};

Theory ((uint64_t seq, int64_t time_ms, int32_t event), kp_peek, scalars_round_trip)
{
    Kp__Wire__Envelope envelope = KP__WIRE__ENVELOPE__INIT;
    envelope.expires_at_ms = time_ms;
    envelope.due_at_ms = ~time_ms;
    Kp__Wire__Record record = KP__WIRE__RECORD__INIT;
    record.seq = seq;
    record.ref_seq = ~seq;
    record.body_pos = seq / 3;
    record.time_ms = time_ms;
    record.event = (Kp__Wire__EventKind) event;
    record.type = (Kp__Wire__MessageType) event;
    record.sender_role = (Kp__Wire__Role) ~event;
    record.recipient_role = (Kp__Wire__Role) (event / 2);
    record.envelope = &envelope;
    uint8_t packed [256];
    cr_assert_leq (kp__wire__record__get_packed_size (&record), sizeof packed);
    size_t size = kp__wire__record__pack (&record, packed);

    kp_peek_record_t peeked;
    cr_assert_eq (kp_peek_record (packed, size, &peeked), 0);
    cr_assert_eq (peeked.seq, seq);
    cr_assert_eq (peeked.ref_seq, ~seq);
    cr_assert_eq (peeked.time_ms, time_ms);
    cr_assert_eq (peeked.event, (uint32_t) event);
    cr_assert_eq (peeked.expires_at_ms, time_ms);
    cr_assert_eq (peeked.due_at_ms, ~time_ms);
    cr_assert_eq (peeked.sender_role, (uint32_t) ~event);
    cr_assert_eq (s_check (packed, size), 0);
}

//  --------------------------------------------------------------------------
//  Differential: random records, every field, against unpack

Test (kp_peek, random_records_read_as_unpack_reads_them)
{
    rng_t rng = { 1 };
    size_t capacity = 1024 * 1024;
    uint8_t *buffer = (uint8_t *) malloc (capacity);
    cr_assert_not_null (buffer);
    for (int round = 0; round < 20000; round++) {
        size_t longest = s_rng_chance (&rng, 50)? 20000: 300;
        size_t size = s_pack_random (&rng, longest, buffer, 0, capacity);
        cr_assert_eq (s_check (buffer, size), 0, "round %d", round);
    }
    free (buffer);
}

//  Packed records concatenated are one record with each field given several
//  times: the last scalar wins, envelopes merge as protobuf-c merges them
Test (kp_peek, concatenated_records_merge_as_unpack_merges_them)
{
    rng_t rng = { 2 };
    size_t capacity = 1024 * 1024;
    uint8_t *buffer = (uint8_t *) malloc (capacity);
    cr_assert_not_null (buffer);
    for (int round = 0; round < 10000; round++) {
        size_t size = 0;
        int parts = 2 + (int) s_rng_below (&rng, 3);
        for (int part = 0; part < parts; part++)
            size = s_pack_random (&rng, 300, buffer, size, capacity);
        cr_assert_eq (s_check (buffer, size), 0, "round %d", round);
    }
    free (buffer);
}

Test (kp_peek, envelope_given_twice_merges_as_protobuf_c_does)
{
    //  envelope { expires_at_ms 5, reference "ab", created_at_ms 7 },
    //  then envelope { due_at_ms 9, reference "" }
    const uint8_t twice [] = {
        0x82, 0x01, 0x08, 0x28, 0x05, 0x32, 0x02, 'a', 'b', 0x20, 0x07,
        0x82, 0x01, 0x05, 0x88, 0x01, 0x09, 0x32, 0x00
    };
    kp_peek_record_t record;
    cr_assert_eq (kp_peek_record (twice, sizeof twice, &record), 0);
    cr_assert (record.has_envelope);
    cr_assert_eq (record.expires_at_ms, 0, "protobuf-c: the later envelope's 0");
    cr_assert_eq (record.due_at_ms, 9);
    cr_assert (kp_peek_equal (record.reference, "ab"), "empty bytes do not replace");
    cr_assert_eq (s_check (twice, sizeof twice), 0);
}

//  --------------------------------------------------------------------------
//  Hand-made edge cases of the wire format; valid says what protobuf-c
//  1.4.1 does with them, and s_check that peek agrees field by field

typedef struct {
    char name [48];                 //  what the case shows
    uint8_t bytes [24];             //  the input
    size_t size;                    //  bytes used
    bool valid;                     //  a Record to protobuf-c
} wire_case_t;

ParameterizedTestParameters (kp_peek, wire_edge_cases)
{
    static wire_case_t cases [] = {
        { "seq 150", { 0x08, 0x96, 0x01 }, 3, true },
        { "seq padded to 10 bytes", { 0x08, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                      0x80, 0x80, 0x00 }, 11, true },
        { "seq max, 10th byte 0x7f", { 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                       0xff, 0xff, 0x7f }, 11, true },
        { "seq 11-byte varint", { 0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0x01 }, 12, false },
        { "event -1, 10 bytes", { 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                  0xff, 0x01 }, 11, true },
        { "time_ms INT64_MIN", { 0x18, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                 0x80, 0x01 }, 11, true },
        { "seq twice: last wins", { 0x08, 0x01, 0x08, 0x02 }, 4, true },
        { "sender twice: last wins", { 0x2a, 0x01, 'a', 0x2a, 0x01, 'b' }, 6, true },
        { "sender with NUL inside", { 0x2a, 0x03, 'a', 0x00, 'b' }, 5, true },
        { "message_id empty", { 0x22, 0x00 }, 2, true },
        { "tag 0, one byte", { 0x08, 0x05, 0x00, 0x00 }, 4, false },
        { "tag 0 in two bytes: unknown", { 0x08, 0x05, 0x80, 0x00, 0x00 }, 5, true },
        { "tag of seq in 5 bytes", { 0x88, 0x80, 0x80, 0x80, 0x00, 0x07 }, 6, true },
        { "tag of seq in 6 bytes", { 0x88, 0x80, 0x80, 0x80, 0x80, 0x00, 0x07 }, 7,
          false },
        { "tag 2^29 + 1: unknown", { 0x88, 0x80, 0x80, 0x80, 0x10, 0x07 }, 6, true },
        { "tag 2^32 - 1: unknown", { 0xf8, 0xff, 0xff, 0xff, 0x7f, 0x07 }, 6, true },
        { "tag cut short", { 0x08, 0x01, 0x88 }, 3, false },
        { "length 0 in 5 bytes", { 0x22, 0x80, 0x80, 0x80, 0x80, 0x00 }, 6, true },
        { "length 0 in 6 bytes", { 0x22, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00 }, 7, false },
        { "length 2^32 + 1", { 0x22, 0x81, 0x80, 0x80, 0x80, 0x10, 0x41 }, 7, false },
        { "length past the end", { 0x22, 0x03, 0x41, 0x42 }, 4, false },
        { "seq as fixed64", { 0x09, 1, 2, 3, 4, 5, 6, 7, 8 }, 9, false },
        { "sender as varint", { 0x28, 0x01 }, 2, false },
        { "unknown 22 fixed64", { 0xb1, 0x01, 1, 2, 3, 4, 5, 6, 7, 8 }, 10, true },
        { "unknown 22 fixed64 short", { 0xb1, 0x01, 1, 2, 3, 4, 5, 6, 7 }, 9, false },
        { "unknown 22 fixed32", { 0xb5, 0x01, 1, 2, 3, 4 }, 6, true },
        { "unknown 22 fixed32 short", { 0xb5, 0x01, 1, 2, 3 }, 5, false },
        { "unknown 22 bytes", { 0xb2, 0x01, 0x02, 0xff, 0xff }, 5, true },
        { "unknown 22 group", { 0xb3, 0x01, 0x08, 0x01, 0xb4, 0x01 }, 6, false },
        { "unknown 22 wire type 6", { 0xb6, 0x01, 0x00 }, 3, false },
        { "unknown 22 wire type 7", { 0xb7, 0x01, 0x00 }, 3, false },
        { "envelope empty", { 0x82, 0x01, 0x00 }, 3, true },
        { "envelope expires -1", { 0x82, 0x01, 0x0b, 0x28, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0xff, 0xff, 0x01 }, 14, true },
        { "envelope expires as fixed64", { 0x82, 0x01, 0x09, 0x29, 1, 2, 3, 4, 5, 6,
                                           7, 8 }, 12, false },
        { "envelope id empty", { 0x82, 0x01, 0x02, 0x0a, 0x00 }, 5, true },
        { "envelope id as varint", { 0x82, 0x01, 0x02, 0x08, 0x00 }, 5, false },
        { "envelope varint cut short", { 0x82, 0x01, 0x02, 0x28, 0x80 }, 5, false },
        { "envelope unknown 18 varint", { 0x82, 0x01, 0x03, 0x90, 0x01, 0x05 }, 6, true },
        { "envelope as varint", { 0x80, 0x01, 0x05 }, 3, false },
    };
    return cr_make_param_array (wire_case_t, cases, sizeof cases / sizeof cases [0]);
}

ParameterizedTest (wire_case_t *wire_case, kp_peek, wire_edge_cases)
{
    int rc = s_check (wire_case->bytes, wire_case->size);
    cr_assert_eq (rc == 0, wire_case->valid, "%s", wire_case->name);
}

//  --------------------------------------------------------------------------
//  Every known field with every wire type, taken from the generated
//  descriptors, so a schema change peek missed shows up here

//  Write one field with the given number and wire type; returns its size
static size_t
s_write_field (uint8_t *out, uint32_t number, uint32_t wire_type)
{
    size_t size = 0;
    uint64_t tag = (uint64_t) number << 3 | wire_type;
    do {
        out [size++] = (uint8_t) ((tag & 0x7F) | (tag > 0x7F? 0x80: 0));
        tag >>= 7;
    } while (tag);
    switch (wire_type) {
        case 0:                     //  varint 150
            out [size++] = 0x96;
            out [size++] = 0x01;
            break;
        case 1:
            memset (out + size, 0x11, 8);
            size += 8;
            break;
        case 2:                     //  also a valid Envelope: expires_at_ms 1
            out [size++] = 0x02;
            out [size++] = 0x28;
            out [size++] = 0x01;
            break;
        case 5:
            memset (out + size, 0x22, 4);
            size += 4;
            break;
        default:                    //  groups and 6, 7: any bytes
            out [size++] = 0x00;
            break;
    }
    return size;
}

//  The wire type protobuf expects for a singular field of this type
static uint32_t
s_expected_wire_type (const ProtobufCFieldDescriptor *field)
{
    cr_assert_neq (field->label, PROTOBUF_C_LABEL_REPEATED,
                   "%s: peek reads no repeated field", field->name);
    switch (field->type) {
        case PROTOBUF_C_TYPE_STRING:
        case PROTOBUF_C_TYPE_BYTES:
        case PROTOBUF_C_TYPE_MESSAGE:
            return 2;
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_ENUM:
            return 0;
        default:
            cr_assert_fail ("%s: a type peek does not expect", field->name);
    }
    return 0;
}

Test (kp_peek, every_field_takes_only_its_own_wire_type)
{
    const ProtobufCMessageDescriptor *messages [] = {
        &kp__wire__record__descriptor, &kp__wire__envelope__descriptor
    };
    for (size_t outer = 0; outer < 2; outer++) {
        const ProtobufCMessageDescriptor *desc = messages [outer];
        //  Each known field, and the numbers around them
        uint32_t last = desc->fields [desc->n_fields - 1].id;
        for (uint32_t number = 0; number <= last + 2; number++) {
            const ProtobufCFieldDescriptor *field =
                protobuf_c_message_descriptor_get_field (desc, number);
            for (uint32_t wire_type = 0; wire_type < 8; wire_type++) {
                uint8_t input [32];
                uint8_t *inner = outer? input + 3: input;
                size_t size = s_write_field (inner, number, wire_type);
                if (outer) {            //  inside Record.envelope
                    input [0] = 0x82;
                    input [1] = 0x01;
                    input [2] = (uint8_t) size;
                    size += 3;
                }
                int rc = s_check (input, size);
                bool valid = number > 0 && (wire_type == 0 || wire_type == 1
                                        ||  wire_type == 2 || wire_type == 5);
                if (field)
                    valid = wire_type == s_expected_wire_type (field);
                cr_assert_eq (rc == 0, valid, "%s field %u wire type %u",
                              desc->name, number, wire_type);
            }
        }
    }
}

//  --------------------------------------------------------------------------
//  Malformed input: truncations, byte flips

//  Every prefix of a record: refused, or read as unpack reads it
Test (kp_peek, every_truncation_is_refused_or_read_as_unpack_reads_it)
{
    size_t size;
    uint8_t *packed = s_accepted_packed (&size);
    size_t accepted = 0;
    for (size_t cut = 0; cut < size; cut++)
        accepted += s_check (packed, cut) == 0;
    //  Cuts between fields are valid records; others are not
    cr_assert_gt (accepted, 1);
    cr_assert_lt (accepted, size / 2);
    free (packed);

    rng_t rng = { 3 };
    uint8_t buffer [64 * 1024];
    for (int round = 0; round < 300; round++) {
        size = s_pack_random (&rng, 200, buffer, 0, sizeof buffer);
        for (size_t cut = 0; cut < size; cut++)
            s_check (buffer, cut);
    }
}

//  Apply one random change to input (of *size_p bytes, room for capacity)
static void
s_mutate (rng_t *rng, uint8_t *input, size_t *size_p, size_t capacity)
{
    static const uint8_t specials [] = { 0x00, 0x01, 0x7f, 0x80, 0xff, 0x82, 0x0a };
    size_t size = *size_p;
    size_t where = size? (size_t) s_rng_below (rng, size): 0;
    switch (s_rng_below (rng, 6)) {
        case 0:                     //  flip one bit
            if (size)
                input [where] ^= (uint8_t) (1 << s_rng_below (rng, 8));
            break;
        case 1:                     //  a random byte
            if (size)
                input [where] = (uint8_t) s_rng_next (rng);
            break;
        case 2:                     //  a byte that means something on the wire
            if (size)
                input [where] = specials [s_rng_below (rng, sizeof specials)];
            break;
        case 3:                     //  delete a byte
            if (size) {
                memmove (input + where, input + where + 1, size - where - 1);
                size--;
            }
            break;
        case 4:                     //  insert a byte
            if (size < capacity) {
                memmove (input + where + 1, input + where, size - where);
                input [where] = (uint8_t) s_rng_next (rng);
                size++;
            }
            break;
        default:                    //  cut the tail
            size = where;
            break;
    }
    *size_p = size;
}

Test (kp_peek, random_byte_flips_never_crash_and_agree_with_unpack)
{
    rng_t rng = { 4 };
    uint8_t original [16 * 1024];
    uint8_t input [16 * 1024 + 8];
    size_t original_size = 0;
    size_t accepted = 0;
    size_t refused = 0;
    for (int round = 0; round < 100000; round++) {
        if (round % 50 == 0)
            original_size = s_pack_random (&rng, 40, original, 0, sizeof original);
        memcpy (input, original, original_size);
        size_t size = original_size;
        int changes = 1 + (int) s_rng_below (&rng, 4);
        for (int change = 0; change < changes; change++)
            s_mutate (&rng, input, &size, sizeof input);
        if (s_check (input, size) == 0)
            accepted++;
        else
            refused++;
    }
    //  Both outcomes must be common, or the flips test little
    cr_assert_gt (accepted, 10000);
    cr_assert_gt (refused, 10000);
}
