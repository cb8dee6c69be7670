/*  =========================================================================
    test_kp_json - the generic JSON <-> protobuf mapping

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
    Round trips (JSON -> message -> pack -> unpack -> JSON) over the real
    body and wire types and over a hand-built descriptor holding every scalar
    type, repeated, oneof and proto2 optional/required fields; a table of
    refusals with their error text; leak checks on every error path; and
    seeded random input that must never crash.
*/
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kp_json.h"
#include "kp_body.pb-c.h"
#include "kp_wire.pb-c.h"

#if defined (__SANITIZE_ADDRESS__)
#   include <sanitizer/lsan_interface.h>
#   define KP_TEST_ASAN 1
#endif

//  ==========================================================================
//  A hand-built descriptor with every field type protobuf-c knows: what
//  protoc-c would generate for a test.AllTypes, written out, since the real
//  schemas have no int32, sint*, fixed*, float, double or proto2 fields.
//  ==========================================================================

typedef struct {
    ProtobufCMessage base;          //  protobuf-c header
    int32_t int32;                  //  1..17: one singular field per type
    int32_t sint32;
    int32_t sfixed32;
    int64_t int64;
    int64_t sint64;
    int64_t sfixed64;
    uint32_t uint32;
    uint32_t fixed32;
    uint64_t uint64;
    uint64_t fixed64;
    float float_value;
    double double_value;
    protobuf_c_boolean bool_value;
    int enum_value;
    char *string;
    ProtobufCBinaryData bytes;
    ProtobufCMessage *message;
    size_t n_r_int32;               //  18..34: one repeated field per type
    int32_t *r_int32;
    size_t n_r_sint32;
    int32_t *r_sint32;
    size_t n_r_sfixed32;
    int32_t *r_sfixed32;
    size_t n_r_int64;
    int64_t *r_int64;
    size_t n_r_sint64;
    int64_t *r_sint64;
    size_t n_r_sfixed64;
    int64_t *r_sfixed64;
    size_t n_r_uint32;
    uint32_t *r_uint32;
    size_t n_r_fixed32;
    uint32_t *r_fixed32;
    size_t n_r_uint64;
    uint64_t *r_uint64;
    size_t n_r_fixed64;
    uint64_t *r_fixed64;
    size_t n_r_float;
    float *r_float;
    size_t n_r_double;
    double *r_double;
    size_t n_r_bool;
    protobuf_c_boolean *r_bool;
    size_t n_r_enum;
    int *r_enum;
    size_t n_r_string;
    char **r_string;
    size_t n_r_bytes;
    ProtobufCBinaryData *r_bytes;
    size_t n_r_message;
    ProtobufCMessage **r_message;
    uint32_t choice_case;           //  35..38: oneof choice
    union {
        int32_t c_int32;
        char *c_string;
        ProtobufCMessage *c_message;
        ProtobufCBinaryData c_bytes;
    };
    protobuf_c_boolean has_o_sint32;    //  39..41: proto2 optional
    int32_t o_sint32;
    protobuf_c_boolean has_o_bytes;
    ProtobufCBinaryData o_bytes;
    char *o_string;
} all_types_t;

static const ProtobufCMessageDescriptor all_types_descriptor;

//  --------------------------------------------------------------------------
//  Initialise a test.AllTypes as generated code would

static void
s_all_types_init (ProtobufCMessage *message)
{
    memset (message, 0, sizeof (all_types_t));
    message->descriptor = &all_types_descriptor;
    ((all_types_t *) message)->string = (char *) protobuf_c_empty_string;
}

#define PACKED PROTOBUF_C_FIELD_FLAG_PACKED
#define ONEOF PROTOBUF_C_FIELD_FLAG_ONEOF
#define SINGLE(number, name, TYPE, member, desc, fallback) \
    { name, number, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_##TYPE, 0, \
      offsetof (all_types_t, member), desc, fallback, 0, 0, NULL, NULL }
#define REPEATED(number, TYPE, member, desc, flags) \
    { #member, number, PROTOBUF_C_LABEL_REPEATED, PROTOBUF_C_TYPE_##TYPE, \
      offsetof (all_types_t, n_##member), offsetof (all_types_t, member), \
      desc, NULL, flags, 0, NULL, NULL }
#define CHOICE(number, TYPE, member, desc) \
    { #member, number, PROTOBUF_C_LABEL_NONE, PROTOBUF_C_TYPE_##TYPE, \
      offsetof (all_types_t, choice_case), offsetof (all_types_t, member), \
      desc, NULL, ONEOF, 0, NULL, NULL }

static const ProtobufCFieldDescriptor all_types_fields [] = {
    SINGLE (1, "int32", INT32, int32, NULL, NULL),
    SINGLE (2, "sint32", SINT32, sint32, NULL, NULL),
    SINGLE (3, "sfixed32", SFIXED32, sfixed32, NULL, NULL),
    SINGLE (4, "int64", INT64, int64, NULL, NULL),
    SINGLE (5, "sint64", SINT64, sint64, NULL, NULL),
    SINGLE (6, "sfixed64", SFIXED64, sfixed64, NULL, NULL),
    SINGLE (7, "uint32", UINT32, uint32, NULL, NULL),
    SINGLE (8, "fixed32", FIXED32, fixed32, NULL, NULL),
    SINGLE (9, "uint64", UINT64, uint64, NULL, NULL),
    SINGLE (10, "fixed64", FIXED64, fixed64, NULL, NULL),
    SINGLE (11, "float", FLOAT, float_value, NULL, NULL),
    SINGLE (12, "double", DOUBLE, double_value, NULL, NULL),
    SINGLE (13, "bool", BOOL, bool_value, NULL, NULL),
    SINGLE (14, "enum", ENUM, enum_value, &kp__body__urgency__descriptor, NULL),
    SINGLE (15, "string", STRING, string, NULL, &protobuf_c_empty_string),
    SINGLE (16, "bytes", BYTES, bytes, NULL, NULL),
    SINGLE (17, "message", MESSAGE, message, &kp__body__monitoring__descriptor, NULL),
    REPEATED (18, INT32, r_int32, NULL, PACKED),
    REPEATED (19, SINT32, r_sint32, NULL, PACKED),
    REPEATED (20, SFIXED32, r_sfixed32, NULL, PACKED),
    REPEATED (21, INT64, r_int64, NULL, PACKED),
    REPEATED (22, SINT64, r_sint64, NULL, PACKED),
    REPEATED (23, SFIXED64, r_sfixed64, NULL, PACKED),
    REPEATED (24, UINT32, r_uint32, NULL, PACKED),
    REPEATED (25, FIXED32, r_fixed32, NULL, PACKED),
    REPEATED (26, UINT64, r_uint64, NULL, PACKED),
    REPEATED (27, FIXED64, r_fixed64, NULL, PACKED),
    REPEATED (28, FLOAT, r_float, NULL, PACKED),
    REPEATED (29, DOUBLE, r_double, NULL, PACKED),
    REPEATED (30, BOOL, r_bool, NULL, PACKED),
    REPEATED (31, ENUM, r_enum, &kp__body__urgency__descriptor, PACKED),
    REPEATED (32, STRING, r_string, NULL, 0),
    REPEATED (33, BYTES, r_bytes, NULL, 0),
    REPEATED (34, MESSAGE, r_message, &kp__body__monitoring__descriptor, 0),
    CHOICE (35, INT32, c_int32, NULL),
    CHOICE (36, STRING, c_string, NULL),
    CHOICE (37, MESSAGE, c_message, &kp__body__monitoring__descriptor),
    CHOICE (38, BYTES, c_bytes, NULL),
    { "o_sint32", 39, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_SINT32,
      offsetof (all_types_t, has_o_sint32), offsetof (all_types_t, o_sint32),
      NULL, NULL, 0, 0, NULL, NULL },
    { "o_bytes", 40, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_BYTES,
      offsetof (all_types_t, has_o_bytes), offsetof (all_types_t, o_bytes),
      NULL, NULL, 0, 0, NULL, NULL },
    { "o_string", 41, PROTOBUF_C_LABEL_OPTIONAL, PROTOBUF_C_TYPE_STRING,
      0, offsetof (all_types_t, o_string), NULL, NULL, 0, 0, NULL, NULL },
};
#define ALL_TYPES_FIELDS (sizeof all_types_fields / sizeof all_types_fields [0])

//  protobuf-c finds fields by name with a binary search over this index;
//  s_setup sorts it once per test process
static unsigned all_types_by_name [ALL_TYPES_FIELDS];
static const ProtobufCIntRange all_types_ranges [] = {
    { 1, 0 }, { 0, ALL_TYPES_FIELDS }
};

static const ProtobufCMessageDescriptor all_types_descriptor = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC, "test.AllTypes", "AllTypes", "Test__AllTypes",
    "test", sizeof (all_types_t), ALL_TYPES_FIELDS, all_types_fields, all_types_by_name,
    1, all_types_ranges, s_all_types_init, NULL, NULL, NULL
};

//  A proto2 message with required fields
typedef struct {
    ProtobufCMessage base;          //  protobuf-c header
    char *id;                       //  required string
    int32_t count;                  //  required int32
} needs_t;

static const ProtobufCMessageDescriptor needs_descriptor;

//  --------------------------------------------------------------------------
//  Initialise a test.Needs as generated code would

static void
s_needs_init (ProtobufCMessage *message)
{
    memset (message, 0, sizeof (needs_t));
    message->descriptor = &needs_descriptor;
}

static const ProtobufCFieldDescriptor needs_fields [] = {
    { "id", 1, PROTOBUF_C_LABEL_REQUIRED, PROTOBUF_C_TYPE_STRING, 0,
      offsetof (needs_t, id), NULL, NULL, 0, 0, NULL, NULL },
    { "count", 2, PROTOBUF_C_LABEL_REQUIRED, PROTOBUF_C_TYPE_INT32, 0,
      offsetof (needs_t, count), NULL, NULL, 0, 0, NULL, NULL },
};
static const unsigned needs_by_name [] = { 1, 0 };
static const ProtobufCIntRange needs_ranges [] = { { 1, 0 }, { 0, 2 } };

static const ProtobufCMessageDescriptor needs_descriptor = {
    PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC, "test.Needs", "Needs", "Test__Needs", "test",
    sizeof (needs_t), 2, needs_fields, needs_by_name, 1, needs_ranges, s_needs_init,
    NULL, NULL, NULL
};

//  --------------------------------------------------------------------------
//  qsort order of field indices by field name

static int
s_compare_field_names (const void *left, const void *right)
{
    return strcmp (all_types_fields [*(const unsigned *) left].name,
                   all_types_fields [*(const unsigned *) right].name);
}

//  --------------------------------------------------------------------------
//  Sort the AllTypes by-name index before each test

static void
s_setup (void)
{
    for (unsigned index = 0; index < ALL_TYPES_FIELDS; index++)
        all_types_by_name [index] = index;
    qsort (all_types_by_name, ALL_TYPES_FIELDS, sizeof (unsigned), s_compare_field_names);
}

TestSuite (kp_json, .init = s_setup);

//  ==========================================================================
//  Helpers
//  ==========================================================================

//  --------------------------------------------------------------------------
//  Pack message and unpack it again as type desc; caller frees the result
static ProtobufCMessage *
s_repack (const ProtobufCMessageDescriptor *desc, const ProtobufCMessage *message)
{
    size_t size = protobuf_c_message_get_packed_size (message);
    uint8_t *packed = (uint8_t *) malloc (size + 1);
    cr_assert_not_null (packed);
    cr_assert_eq (protobuf_c_message_pack (message, packed), size);
    ProtobufCMessage *back = protobuf_c_message_unpack (desc, NULL, size, packed);
    free (packed);
    return back;
}

//  --------------------------------------------------------------------------
//  Parse json; on success render it back. Returns the rendering or NULL and
//  sets *error_p. Frees everything else.
static char *
s_normalize (const ProtobufCMessageDescriptor *desc, const char *json, char **error_p)
{
    ProtobufCMessage *message = kp_json_to_message (desc, json, error_p);
    if (!message)
        return NULL;
    char *text = kp_json_from_message (message);
    protobuf_c_message_free_unpacked (message, NULL);
    return text;
}

//  --------------------------------------------------------------------------
//  Deterministic generator for the random tests (xorshift64*)
static uint64_t
s_random (uint64_t *state)
{
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    return *state * 2685821657736338717ULL;
}

//  --------------------------------------------------------------------------
//  Criterion runs each parameterized test in a fresh process of its own, so
//  parameters must not hold pointers into this one: pass table indices
static void
s_free_indices (struct criterion_test_params *params)
{
    cr_free (params->params);
}

//  --------------------------------------------------------------------------
//  Parameters 0 .. count-1, in Criterion-shared memory

static struct criterion_test_params
s_indices (size_t count)
{
    size_t *indices = (size_t *) cr_malloc (count * sizeof (size_t));
    cr_assert_not_null (indices);
    for (size_t index = 0; index < count; index++)
        indices [index] = index;
    return cr_make_param_array (size_t, indices, count, s_free_indices);
}

//  ==========================================================================
//  Round trips
//  ==========================================================================

typedef struct {
    const ProtobufCMessageDescriptor *desc;
    const char *json;               //  input
    const char *canonical;          //  what kp_json_from_message must give
} round_trip_t;

static round_trip_t round_trips [] = {
    //  A full signal, already canonical
    { &kp__body__signal__descriptor,
      "{\"kind\":\"MELDING\",\"violence_types\":[\"CHILD_ABUSE\",\"PARTNER_VIOLENCE\"],"
      "\"group_tags\":[\"VULNERABLE_UPBRINGING\"],\"urgency\":\"ACUTE\","
      "\"incident_time\":\"2026-11-22T23:40:00Z\",\"municipality\":\"GM0153\","
      "\"address\":\"Stationsplein 1, Enschede\",\"persons\":[{\"role\":\"VICTIM\","
      "\"name\":\"Anna\",\"date_of_birth\":\"2015-03-01\"},{\"role\":\"SUSPECT\","
      "\"name\":\"Bert\"}],\"children_present\":2,\"family_informed\":true,"
      "\"sender_reference\":\"PL0600-2026-123\",\"contact_person\":\"J. de Vries\","
      "\"narrative\":\"Melding na huiselijk geweld.\"}",
      "{\"kind\":\"MELDING\",\"violence_types\":[\"CHILD_ABUSE\",\"PARTNER_VIOLENCE\"],"
      "\"group_tags\":[\"VULNERABLE_UPBRINGING\"],\"urgency\":\"ACUTE\","
      "\"incident_time\":\"2026-11-22T23:40:00Z\",\"municipality\":\"GM0153\","
      "\"address\":\"Stationsplein 1, Enschede\",\"persons\":[{\"role\":\"VICTIM\","
      "\"name\":\"Anna\",\"date_of_birth\":\"2015-03-01\"},{\"role\":\"SUSPECT\","
      "\"name\":\"Bert\"}],\"children_present\":2,\"family_informed\":true,"
      "\"sender_reference\":\"PL0600-2026-123\",\"contact_person\":\"J. de Vries\","
      "\"narrative\":\"Melding na huiselijk geweld.\"}" },
    //  Keys out of order, lower-case enum names, white space, explicit
    //  defaults and nulls: all normalised away
    { &kp__body__signal__descriptor,
      " {\n\t\"urgency\" : \"structural\" , \"kind\":\"adviesvraag\",\r\n"
      "  \"children_present\": 0, \"family_informed\": false, \"address\": \"\","
      "  \"persons\": [], \"group_tags\": null, \"narrative\": null } \n",
      "{\"kind\":\"ADVIESVRAAG\",\"urgency\":\"STRUCTURAL\"}" },
    //  The empty message
    { &kp__body__signal__descriptor, "{}", "{}" },
    { &kp__body__signal__descriptor, "{\"persons\":[{}]}", "{\"persons\":[{}]}" },
    //  Bytes (upper-case hex accepted, lower-case written), a sub-message,
    //  repeated strings
    { &kp__body__referral__descriptor,
      "{\"case_id\":\"VT-2026-0042\","
      "\"signal_ids\":[\"00112233445566778899AABBCCDDEEFF\","
      "\"\"],\"persons\":[{\"role\":\"CHILD_PRESENT\",\"name\":\"Cas\"}],"
      "\"safety_assessment\":\"SAFETY_ACUTE\",\"safety_summary\":\"Veiligheidsplan\","
      "\"safety_conditions\":[\"geen contact\",\"\",\"toezicht\"],"
      "\"monitoring\":{\"who\":\"Wijkteam\",\"until\":\"2027-01-01\"},"
      "\"case_direction\":\"local_team\",\"family_informed\":true,"
      "\"first_contact_deadline\":\"2026-12-01\"}",
      "{\"case_id\":\"VT-2026-0042\","
      "\"signal_ids\":[\"00112233445566778899aabbccddeeff\","
      "\"\"],\"persons\":[{\"role\":\"CHILD_PRESENT\",\"name\":\"Cas\"}],"
      "\"safety_assessment\":\"SAFETY_ACUTE\",\"safety_summary\":\"Veiligheidsplan\","
      "\"safety_conditions\":[\"geen contact\",\"\",\"toezicht\"],"
      "\"monitoring\":{\"who\":\"Wijkteam\",\"until\":\"2027-01-01\"},"
      "\"case_direction\":\"local_team\",\"family_informed\":true,"
      "\"first_contact_deadline\":\"2026-12-01\"}" },
    //  An empty sub-message is still there
    { &kp__body__referral__descriptor, "{\"monitoring\":{}}", "{\"monitoring\":{}}" },
    //  Escapes in, UTF-8 out; control characters as \u00XX
    { &kp__body__school_notification__descriptor,
      "{\"child_name\":\"Zo\\u00eb \\\"Z\\\" \\\\ \\/ \\ud83d\\ude00 \xe2\x98\x83\","
      "\"date_of_birth\":\"2016-05-04\","
      "\"code_words\":\"Handle with Care\\n\\t\\b\\f\\r\\u001f\","
      "\"school_day\":\"2026-11-23\"}",
      "{\"child_name\":\"Zo\xc3\xab \\\"Z\\\" \\\\ / \xf0\x9f\x98\x80 \xe2\x98\x83\","
      "\"date_of_birth\":\"2016-05-04\",\"code_words\":\"Handle with Care\\u000a\\u0009"
      "\\u0008\\u000c\\u000d\\u001f\",\"school_day\":\"2026-11-23\"}" },
    { &kp__body__school_notification_request__descriptor,
      "{\"lookup_hint\":\"7511 AB\",\"child_name\":\"Daan\","
      "\"school_day\":\"2026-11-23\"}",
      "{\"child_name\":\"Daan\",\"school_day\":\"2026-11-23\","
      "\"lookup_hint\":\"7511 AB\"}" },
    { &kp__body__feedback__descriptor,
      "{\"note\":\"Zie dossier\",\"status\":\"declined\","
      "\"decline_reason\":\"NOT_OUR_CLIENT\"}",
      "{\"status\":\"DECLINED\",\"decline_reason\":\"NOT_OUR_CLIENT\","
      "\"note\":\"Zie dossier\"}" },
    //  Commands: a oneof with a nested envelope; 64-bit numbers also as strings
    { &kp__wire__command__descriptor,
      "{\"submit\":{\"envelope\":{\"id\":\"000102030405060708090a0b0c0d0e0f\","
      "\"type\":\"SIGNAL\",\"recipient\":\"municipality:GM0153\","
      "\"created_at_ms\":\"1764000000000\",\"expires_at_ms\":-1,"
      "\"body_length\":4294967295,\"sender_role\":\"POLICE\"},\"body\":\"cafe\"}}",
      "{\"submit\":{\"envelope\":{\"id\":\"000102030405060708090a0b0c0d0e0f\","
      "\"type\":\"SIGNAL\",\"recipient\":\"municipality:GM0153\","
      "\"created_at_ms\":1764000000000,\"expires_at_ms\":-1,"
      "\"body_length\":4294967295,\"sender_role\":\"POLICE\"},\"body\":\"cafe\"}}" },
    //  The chosen member of a oneof is written even when empty
    { &kp__wire__command__descriptor, "{\"ack\":{}}", "{\"ack\":{}}" },
    { &kp__wire__command__descriptor,
      "{\"hello\":null,\"ping\":{\"nonce\":\"18446744073709551615\"}}",
      "{\"ping\":{\"nonce\":18446744073709551615}}" },
    { &kp__wire__command__descriptor, "{}", "{}" },
    { &kp__wire__envelope__descriptor,
      "{\"created_at_ms\":-9223372036854775808,\"expires_at_ms\":9223372036854775807}",
      "{\"created_at_ms\":-9223372036854775808,\"expires_at_ms\":9223372036854775807}" },
    { &kp__wire__receipt__descriptor,
      "{\"duplicate\":true,\"id\":\"ff\",\"seq\":0,\"accepted_at_ms\":\"-0\","
      "\"recipient_partner\":\"vt-twente\",\"recipient_role\":\"veilig_thuis\"}",
      "{\"id\":\"ff\",\"recipient_partner\":\"vt-twente\","
      "\"recipient_role\":\"VEILIG_THUIS\","
      "\"duplicate\":true}" },
    { &kp__wire__record__descriptor,
      "{\"seq\":7,\"event\":\"ACCEPTED\",\"time_ms\":1764000000000,"
      "\"message_id\":\"00112233445566778899aabbccddeeff\",\"sender\":\"police-oost\","
      "\"sender_role\":\"POLICE\",\"recipient\":\"vt-twente\","
      "\"recipient_role\":\"VEILIG_THUIS\","
      "\"acting_user\":\"u123\",\"on_behalf_of\":\"team-a\",\"purpose\":\"wvggz-1\","
      "\"subject\":\"0101010101010101010101010101010101010101010101010101010101010101\","
      "\"body_hash\":"
      "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\","
      "\"outcome\":\"NOT_COVENANT\",\"ref_seq\":3,\"envelope\":{\"type\":\"FEEDBACK\"},"
      "\"body_pos\":4096,\"type\":\"FEEDBACK\",\"key_hash\":\"ab\",\"status\":\"READ\"}",
      "{\"seq\":7,\"event\":\"ACCEPTED\",\"time_ms\":1764000000000,"
      "\"message_id\":\"00112233445566778899aabbccddeeff\",\"sender\":\"police-oost\","
      "\"sender_role\":\"POLICE\",\"recipient\":\"vt-twente\","
      "\"recipient_role\":\"VEILIG_THUIS\","
      "\"acting_user\":\"u123\",\"on_behalf_of\":\"team-a\",\"purpose\":\"wvggz-1\","
      "\"subject\":\"0101010101010101010101010101010101010101010101010101010101010101\","
      "\"body_hash\":"
      "\"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\","
      "\"outcome\":\"NOT_COVENANT\",\"ref_seq\":3,\"envelope\":{\"type\":\"FEEDBACK\"},"
      "\"body_pos\":4096,\"type\":\"FEEDBACK\",\"key_hash\":\"ab\","
      "\"status\":\"READ\"}" },
    //  Every scalar type at its limits
    { &all_types_descriptor,
      "{\"int32\":-2147483648,\"sint32\":-5,\"sfixed32\":2147483647,"
      "\"int64\":\"-9223372036854775808\",\"sint64\":9223372036854775807,\"sfixed64\":-1,"
      "\"uint32\":4294967295,\"fixed32\":7,\"uint64\":18446744073709551615,"
      "\"fixed64\":\"1\",\"float\":0.1,\"double\":0.1,\"bool\":true,\"enum\":\"acute\","
      "\"string\":\"s\",\"bytes\":\"00FF\",\"message\":{\"who\":\"w\"}}",
      "{\"int32\":-2147483648,\"sint32\":-5,\"sfixed32\":2147483647,"
      "\"int64\":-9223372036854775808,\"sint64\":9223372036854775807,\"sfixed64\":-1,"
      "\"uint32\":4294967295,\"fixed32\":7,\"uint64\":18446744073709551615,"
      "\"fixed64\":1,\"float\":0.10000000149011612,\"double\":0.10000000000000001,"
      "\"bool\":true,\"enum\":\"ACUTE\",\"string\":\"s\",\"bytes\":\"00ff\","
      "\"message\":{\"who\":\"w\"}}" },
    //  Every repeated type
    { &all_types_descriptor,
      "{\"r_int32\":[1,-1,0],\"r_sint32\":[-2147483648,2147483647],\"r_sfixed32\":[-3],"
      "\"r_int64\":[\"5\",-5],\"r_sint64\":[-9223372036854775808],\"r_sfixed64\":[0,1],"
      "\"r_uint32\":[4294967295,0],\"r_fixed32\":[9],\"r_uint64\":[18446744073709551615],"
      "\"r_fixed64\":[\"2\"],\"r_float\":[0.25,-1.5e3,0],\"r_double\":[1e300,-2.5e-300],"
      "\"r_bool\":[true,false],\"r_enum\":[\"ACUTE\",\"urgency_unspecified\"],"
      "\"r_string\":[\"a\",\"\",\"\xc3\xa9\"],\"r_bytes\":[\"\",\"0a\"],"
      "\"r_message\":[{},{\"who\":\"x\"}]}",
      "{\"r_int32\":[1,-1,0],\"r_sint32\":[-2147483648,2147483647],\"r_sfixed32\":[-3],"
      "\"r_int64\":[5,-5],\"r_sint64\":[-9223372036854775808],\"r_sfixed64\":[0,1],"
      "\"r_uint32\":[4294967295,0],\"r_fixed32\":[9],\"r_uint64\":[18446744073709551615],"
      "\"r_fixed64\":[2],\"r_float\":[0.25,-1500,0],"
      "\"r_double\":[1.0000000000000001e+300,-2.5e-300],"
      "\"r_bool\":[true,false],\"r_enum\":[\"ACUTE\",\"URGENCY_UNSPECIFIED\"],"
      "\"r_string\":[\"a\",\"\",\"\xc3\xa9\"],\"r_bytes\":[\"\",\"0a\"],"
      "\"r_message\":[{},{\"who\":\"x\"}]}" },
    //  oneof members and proto2 optionals are written when set, even at zero
    { &all_types_descriptor,
      "{\"c_int32\":0,\"o_sint32\":0,\"o_bytes\":\"\",\"o_string\":\"\"}",
      "{\"c_int32\":0,\"o_sint32\":0,\"o_bytes\":\"\",\"o_string\":\"\"}" },
    { &all_types_descriptor, "{\"c_string\":\"\"}", "{\"c_string\":\"\"}" },
    { &all_types_descriptor, "{\"c_message\":{\"until\":\"2027\"}}",
      "{\"c_message\":{\"until\":\"2027\"}}" },
    { &all_types_descriptor, "{\"c_bytes\":\"beef\",\"o_sint32\":-7}",
      "{\"c_bytes\":\"beef\",\"o_sint32\":-7}" },
    //  Non-finite reals travel as strings; -0 is an integer zero
    { &all_types_descriptor,
      "{\"double\":\"NaN\",\"float\":\"-Infinity\",\"r_double\":[\"Infinity\",-0.0],"
      "\"uint32\":-0,\"int32\":-0}",
      "{\"float\":\"-Infinity\",\"double\":\"NaN\",\"r_double\":[\"Infinity\",-0]}" },
    { &needs_descriptor, "{\"count\":0,\"id\":\"\"}", "{\"id\":\"\",\"count\":0}" },
};

ParameterizedTestParameters (kp_json, round_trip)
{
    return s_indices (sizeof round_trips / sizeof round_trips [0]);
}

ParameterizedTest (size_t *index, kp_json, round_trip)
{
    const round_trip_t *example = &round_trips [*index];
    char *error = NULL;
    ProtobufCMessage *message = kp_json_to_message (example->desc, example->json, &error);
    cr_assert_not_null (message, "refused %s: %s", example->json, error);
    cr_assert_null (error);

    char *direct = kp_json_from_message (message);
    cr_assert_str_eq (direct, example->canonical);

    ProtobufCMessage *back = s_repack (example->desc, message);
    cr_assert_not_null (back);
    char *repacked = kp_json_from_message (back);
    cr_assert_str_eq (repacked, example->canonical);

    //  The canonical form is a fixed point
    char *again = s_normalize (example->desc, example->canonical, &error);
    cr_assert_not_null (again, "canonical refused: %s", error);
    cr_assert_str_eq (again, example->canonical);

    free (again);
    free (repacked);
    free (direct);
    protobuf_c_message_free_unpacked (back, NULL);
    protobuf_c_message_free_unpacked (message, NULL);
}

Test (kp_json, message_fields_hold_what_the_json_said)
{
    const char *json =
        "{\"persons\":[{\"name\":\"A\"},{\"role\":\"PARENT\","
        "\"date_of_birth\":\"1980-01-02\"}],"
        "\"violence_types\":[\"ELDER_ABUSE\"],\"children_present\":3}";
    Kp__Body__Signal *signal = (Kp__Body__Signal *) kp_json_to_message (
        &kp__body__signal__descriptor, json, NULL);
    cr_assert_not_null (signal);
    cr_assert_eq (signal->n_persons, 2);
    cr_assert_str_eq (signal->persons [0]->name, "A");
    cr_assert_eq (signal->persons [1]->role, KP__BODY__PERSON_ROLE__PARENT);
    cr_assert_str_eq (signal->persons [1]->date_of_birth, "1980-01-02");
    cr_assert_str_eq (signal->persons [1]->name, "");
    cr_assert_eq (signal->n_violence_types, 1);
    cr_assert_eq (signal->violence_types [0], KP__BODY__VIOLENCE_TYPE__ELDER_ABUSE);
    cr_assert_eq (signal->children_present, 3);
    cr_assert_eq (signal->n_group_tags, 0);
    kp__body__signal__free_unpacked (signal, NULL);

    Kp__Wire__Command *command = (Kp__Wire__Command *) kp_json_to_message (
        &kp__wire__command__descriptor, "{\"nack\":{\"seq\":9,\"reason\":\"no\"}}", NULL);
    cr_assert_not_null (command);
    cr_assert_eq (command->kind_case, KP__WIRE__COMMAND__KIND_NACK);
    cr_assert_eq (command->nack->seq, 9);
    cr_assert_str_eq (command->nack->reason, "no");
    kp__wire__command__free_unpacked (command, NULL);
}

//  ==========================================================================
//  Rendering messages built in code
//  ==========================================================================

Test (kp_json, output_escapes_and_repairs_strings)
{
    Kp__Body__Feedback feedback = KP__BODY__FEEDBACK__INIT;
    feedback.note = (char *) "q\"b\\c\x01\x7f\xc3\xa9\xff!\xe2\x82";
    feedback.taken_over_by = (char *) "";
    char *json = kp_json_from_message (&feedback.base);
    //  Invalid UTF-8 becomes U+FFFD so the output stays valid JSON
    cr_assert_str_eq (json, "{\"note\":\"q\\\"b\\\\c\\u0001\\u007f\xc3\xa9\xef\xbf\xbd!"
                            "\xef\xbf\xbd\xef\xbf\xbd\"}");
    free (json);
}

Test (kp_json, output_writes_unknown_enum_values_as_numbers)
{
    Kp__Body__Feedback feedback = KP__BODY__FEEDBACK__INIT;
    feedback.status = (Kp__Body__FeedbackStatus) 99;
    char *json = kp_json_from_message (&feedback.base);
    cr_assert_str_eq (json, "{\"status\":99}");
    free (json);
}

Test (kp_json, output_omits_defaults_and_follows_field_numbers)
{
    Kp__Wire__Envelope envelope = KP__WIRE__ENVELOPE__INIT;
    envelope.recipient_role = KP__WIRE__ROLE__SCHOOL;
    envelope.body_length = 12;
    uint8_t id [2] = { 0xab, 0x01 };
    envelope.id.data = id;
    envelope.id.len = sizeof id;
    envelope.reference.data = id;       //  length 0: omitted
    char *json = kp_json_from_message (&envelope.base);
    cr_assert_str_eq (json,
                      "{\"id\":\"ab01\",\"body_length\":12,"
                      "\"recipient_role\":\"SCHOOL\"}");
    free (json);

    Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
    char *empty = kp_json_from_message (&command.base);
    cr_assert_str_eq (empty, "{}");
    free (empty);
}

//  ==========================================================================
//  Refusals
//  ==========================================================================

typedef struct {
    const ProtobufCMessageDescriptor *desc;
    const char *json;               //  bad input
    const char *error;              //  substring the error must hold
} refusal_t;

#define NESTED_32 "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
#define NESTED_33 "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"

static refusal_t refusals [] = {
    //  Mapping: unknown fields, wrong types, ranges, enums, hex
    { &kp__body__signal__descriptor, "{\"bogus\":1}",
      "bogus: unknown field for kp.body.Signal" },
    { &kp__body__signal__descriptor,
      "{\"persons\":[{\"name\":\"a\"},{\"date_of_birth\":5}]}",
      "persons[1].date_of_birth: expected a string" },
    { &kp__body__signal__descriptor, "{\"persons\":[{\"name\":\"a\",\"naam\":\"b\"}]}",
      "persons[0].naam: unknown field for kp.body.Person" },
    { &kp__body__signal__descriptor, "{\"kind\":\"MELDING\",\"kind\":\"MELDING\"}",
      "kind: duplicate key" },
    { &kp__body__signal__descriptor, "{\"kind\":null,\"kind\":\"MELDING\"}",
      "kind: duplicate key" },
    { &kp__body__signal__descriptor, "{\"children_present\":-1}",
      "children_present: number out of range for uint32" },
    { &kp__body__signal__descriptor, "{\"children_present\":4294967296}",
      "children_present: number out of range for uint32" },
    { &kp__body__signal__descriptor, "{\"children_present\":1.5}",
      "children_present: expected an integer, not a fraction" },
    { &kp__body__signal__descriptor, "{\"children_present\":1e2}",
      "children_present: expected an integer" },
    { &kp__body__signal__descriptor, "{\"children_present\":\"3\"}",
      "children_present: expected an integer" },
    { &kp__body__signal__descriptor, "{\"kind\":\"NOPE\"}",
      "kind: unknown enum value \"NOPE\" for kp.body.SignalKind" },
    { &kp__body__signal__descriptor, "{\"kind\":1}",
      "kind: enum kp.body.SignalKind given as a number" },
    { &kp__body__signal__descriptor, "{\"violence_types\":[\"CHILD_ABUSE\",2]}",
      "violence_types[1]: enum kp.body.ViolenceType given as a number" },
    { &kp__body__signal__descriptor, "{\"kind\":true}", "kind: expected the name of a" },
    { &kp__body__signal__descriptor, "{\"family_informed\":\"true\"}",
      "family_informed: expected true or false" },
    { &kp__body__signal__descriptor, "{\"family_informed\":1}",
      "family_informed: expected true or false" },
    { &kp__body__signal__descriptor, "{\"persons\":{}}", "persons: expected an array" },
    { &kp__body__signal__descriptor, "{\"persons\":[null]}",
      "persons[0]: null is not allowed in an array" },
    { &kp__body__signal__descriptor, "{\"persons\":[\"x\"]}",
      "persons[0]: expected an object" },
    { &kp__body__signal__descriptor, "{\"address\":[]}", "address: expected a string" },
    { &kp__body__signal__descriptor, "[]", "expected an object" },
    { &kp__body__signal__descriptor, "\"x\"", "expected an object" },
    { &kp__body__referral__descriptor, "{\"signal_ids\":[\"00\",\"zz\"]}",
      "signal_ids[1]: bad hex digit" },
    { &kp__body__referral__descriptor, "{\"signal_ids\":[\"abc\"]}",
      "signal_ids[0]: odd number of hex digits" },
    { &kp__body__referral__descriptor, "{\"signal_ids\":[12]}",
      "signal_ids[0]: expected a string of hex digits" },
    { &kp__body__referral__descriptor, "{\"monitoring\":{\"who\":1}}",
      "monitoring.who: expected a string" },
    { &kp__body__referral__descriptor, "{\"monitoring\":[]}",
      "monitoring: expected an object" },
    { &kp__wire__command__descriptor, "{\"hello\":{},\"welcome\":{}}",
      "welcome: cannot be set together with hello" },
    { &kp__wire__command__descriptor,
      "{\"submit\":{\"envelope\":{\"created_at_ms\":\"12x\"}}}",
      "submit.envelope.created_at_ms: expected a string of decimal digits" },
    { &kp__wire__command__descriptor,
      "{\"submit\":{\"envelope\":{\"created_at_ms\":\"012\"}}}",
      "submit.envelope.created_at_ms: expected a string of decimal digits" },
    { &kp__wire__command__descriptor, "{\"ping\":{\"nonce\":-1}}",
      "ping.nonce: number out of range for uint64" },
    { &kp__wire__command__descriptor, "{\"ping\":{\"nonce\":18446744073709551616}}",
      "ping.nonce: number out of range for uint64" },
    { &kp__wire__envelope__descriptor, "{\"created_at_ms\":9223372036854775808}",
      "created_at_ms: number out of range for int64" },
    { &kp__wire__envelope__descriptor, "{\"created_at_ms\":-9223372036854775809}",
      "created_at_ms: number out of range for int64" },
    { &all_types_descriptor, "{\"int32\":2147483648}",
      "int32: number out of range for int32" },
    { &all_types_descriptor, "{\"sint32\":-2147483649}",
      "sint32: number out of range for sint32" },
    { &all_types_descriptor, "{\"fixed32\":-1}",
      "fixed32: number out of range for fixed32" },
    { &all_types_descriptor, "{\"r_sfixed32\":[1,99999999999]}",
      "r_sfixed32[1]: number out of range for sfixed32" },
    { &all_types_descriptor, "{\"float\":1e39}", "float: number out of range for float" },
    { &all_types_descriptor, "{\"double\":1e400}",
      "double: number out of range for double" },
    { &all_types_descriptor, "{\"double\":\"1.5\"}", "double: expected a number" },
    { &all_types_descriptor, "{\"c_int32\":1,\"c_string\":\"x\"}",
      "c_string: cannot be set together with c_int32" },
    { &all_types_descriptor, "{\"r_message\":[{},{\"who\":\"x\",\"who\":\"y\"}]}",
      "r_message[1].who: duplicate key" },
    { &all_types_descriptor, "{\"o_bytes\":\"0\"}", "o_bytes: odd number of hex digits" },
    { &needs_descriptor, "{\"id\":\"a\"}", "count: required field is missing" },
    { &needs_descriptor, "{\"id\":null,\"count\":1}", "id: required field is missing" },
    //  Syntax
    { &kp__body__signal__descriptor, "", "unexpected end of input" },
    { &kp__body__signal__descriptor, "   ", "unexpected end of input" },
    { &kp__body__signal__descriptor, "{\"kind\":\"MELDING\"} x", "trailing garbage" },
    { &kp__body__signal__descriptor, "{\"kind\":\"MELDING\"}}", "trailing garbage" },
    { &kp__body__signal__descriptor, "{}{}",
      "trailing garbage after the value at offset 2" },
    { &kp__body__signal__descriptor, "{\"kind\":\"MELDING\"", "expected ',' or '}'" },
    { &kp__body__signal__descriptor, "{\"kind\":\"MELDING\",}",
      "expected a member name" },
    { &kp__body__signal__descriptor, "{'kind':1}", "expected a member name" },
    { &kp__body__signal__descriptor, "{\"kind\" \"MELDING\"}", "expected ':'" },
    { &kp__body__signal__descriptor, "{\"persons\":[{},]}",
      "persons[1]: expected a value" },
    { &kp__body__signal__descriptor, "{\"persons\":[{} {}]}", "expected ',' or ']'" },
    { &kp__body__signal__descriptor, "{\"narrative\":tru}",
      "narrative: expected a value" },
    { &kp__body__signal__descriptor, "{\"narrative\":nul}", "expected a value" },
    { &kp__body__signal__descriptor, "{\"children_present\":01}", "leading zero" },
    { &kp__body__signal__descriptor, "{\"children_present\":-01}", "leading zero" },
    { &kp__body__signal__descriptor, "{\"children_present\":+1}", "expected a value" },
    { &kp__body__signal__descriptor, "{\"children_present\":-}", "invalid number" },
    { &kp__body__signal__descriptor, "{\"children_present\":.5}", "expected a value" },
    { &kp__body__signal__descriptor, "{\"children_present\":1.}", "digits must follow" },
    { &kp__body__signal__descriptor, "{\"children_present\":1e}", "bad exponent" },
    { &kp__body__signal__descriptor, "{\"children_present\":0x10}",
      "expected ',' or '}'" },
    { &kp__body__signal__descriptor, "{\"children_present\":NaN}", "expected a value" },
    { &kp__body__signal__descriptor, NESTED_33, "nesting deeper than 32" },
    { &kp__body__signal__descriptor, "{\"persons\":" NESTED_33 "}",
      "nesting deeper than 32" },
    { &kp__body__signal__descriptor, NESTED_32, "expected an object" },
    //  Strings
    { &kp__body__signal__descriptor, "{\"address\":\"abc", "unterminated string" },
    { &kp__body__signal__descriptor, "{\"address\":\"abc\\\"}", "unterminated string" },
    { &kp__body__signal__descriptor, "{\"address\":\"abc\\", "unterminated string" },
    { &kp__body__signal__descriptor, "{\"addr", "unterminated string" },
    { &kp__body__signal__descriptor, "{\"address\":\"a\\u0000b\"}",
      "address: NUL (\\u0000) in string" },
    { &kp__body__signal__descriptor, "{\"address\":\"a\x01z\"}",
      "address: control character" },
    { &kp__body__signal__descriptor, "{\"address\":\"a\nz\"}",
      "address: control character" },
    { &kp__body__signal__descriptor, "{\"address\":\"\\q\"}", "address: invalid escape" },
    { &kp__body__signal__descriptor, "{\"address\":\"\\u12G4\"}",
      "address: invalid \\u escape" },
    { &kp__body__signal__descriptor, "{\"address\":\"\\u12\"}",
      "address: invalid \\u escape" },
    { &kp__body__signal__descriptor, "{\"address\":\"\\ud800\"}",
      "address: unpaired surrogate" },
    { &kp__body__signal__descriptor, "{\"address\":\"\\udc00\"}",
      "address: unpaired surrogate" },
    { &kp__body__signal__descriptor, "{\"address\":\"\\ud800\\u0041\"}",
      "unpaired surrogate" },
    { &kp__body__signal__descriptor, "{\"address\":\"\\ud800\\ud800\"}",
      "unpaired surrogate" },
    { &kp__body__signal__descriptor, "{\"address\":\"\\ud800x\"}", "unpaired surrogate" },
    { &kp__body__signal__descriptor, "{\"address\":\"\xff\"}", "address: invalid UTF-8" },
    { &kp__body__signal__descriptor, "{\"address\":\"\x80\"}", "invalid UTF-8" },
    { &kp__body__signal__descriptor, "{\"address\":\"\xc3\"}", "invalid UTF-8" },
    { &kp__body__signal__descriptor, "{\"address\":\"\xc0\xaf\"}", "invalid UTF-8" },
    { &kp__body__signal__descriptor, "{\"address\":\"\xe0\x80\xaf\"}", "invalid UTF-8" },
    { &kp__body__signal__descriptor, "{\"address\":\"\xed\xa0\x80\"}", "invalid UTF-8" },
    { &kp__body__signal__descriptor, "{\"address\":\"\xf4\x90\x80\x80\"}",
      "invalid UTF-8" },
    { &kp__body__signal__descriptor, "{\"address\":\"\xf0\x9f\x98\"}", "invalid UTF-8" },
    { &kp__body__signal__descriptor, "{\"a\xffz\":1}", "invalid UTF-8" },
    //  Error text stays on one printable line even for hostile keys
    { &kp__body__signal__descriptor, "{\"a\\nb\\u0007\":1}", "a?b?: unknown field" },
    { &kp__body__signal__descriptor, "{\"kind\":\"x\\ny\"}",
      "unknown enum value \"x?y\"" },
};

ParameterizedTestParameters (kp_json, refusal)
{
    return s_indices (sizeof refusals / sizeof refusals [0]);
}

ParameterizedTest (size_t *index, kp_json, refusal)
{
    const refusal_t *example = &refusals [*index];
    char *error = NULL;
    ProtobufCMessage *message = kp_json_to_message (example->desc, example->json, &error);
    cr_assert_null (message, "accepted %s", example->json);
    cr_assert_not_null (error);
    cr_assert (strstr (error, example->error), "error \"%s\" lacks \"%s\"", error,
               example->error);
    for (const char *cursor = error; *cursor; cursor++)
        cr_assert ((unsigned char) *cursor >= 0x20 && *cursor != 0x7f,
                   "error has a control character: %s", error);
    free (error);
    //  Without error_p it just returns NULL
    cr_assert_null (kp_json_to_message (example->desc, example->json, NULL));
}

//  ==========================================================================
//  Memory: every error path frees what it built
//  ==========================================================================

#if !defined (KP_TEST_ASAN)
//  Without ASan, count live heap blocks by wrapping glibc's allocator (glibc
//  supports replacing malloc; its own strdup and the protobuf-c library call
//  these too). mallinfo would not do: blocks parked in glibc's per-thread
//  cache count as in use, so the heap seems to grow and shrink at random.
extern void *__libc_malloc (size_t size);
extern void *__libc_calloc (size_t count, size_t size);
extern void *__libc_realloc (void *block, size_t size);
extern void __libc_free (void *block);

static long live_blocks;            //  test-only counter; atomics for safety

//  --------------------------------------------------------------------------
//  Counting malloc

void *
malloc (size_t size)
{
    void *block = __libc_malloc (size);
    if (block)
        __atomic_add_fetch (&live_blocks, 1, __ATOMIC_RELAXED);
    return block;
}

//  --------------------------------------------------------------------------
//  Counting calloc

void *
calloc (size_t count, size_t size)
{
    void *block = __libc_calloc (count, size);
    if (block)
        __atomic_add_fetch (&live_blocks, 1, __ATOMIC_RELAXED);
    return block;
}

//  --------------------------------------------------------------------------
//  Counting realloc: a new block from NULL, one less after realloc (p, 0)

void *
realloc (void *block, size_t size)
{
    void *moved = __libc_realloc (block, size);
    if (!block && moved)
        __atomic_add_fetch (&live_blocks, 1, __ATOMIC_RELAXED);
    else if (block && size == 0)
        __atomic_sub_fetch (&live_blocks, 1, __ATOMIC_RELAXED);
    return moved;
}

//  --------------------------------------------------------------------------
//  Counting free

void
free (void *block)
{
    if (block)
        __atomic_sub_fetch (&live_blocks, 1, __ATOMIC_RELAXED);
    __libc_free (block);
}
#endif

//  --------------------------------------------------------------------------
//  Run every refusal and round trip once
static void
s_run_all (void)
{
    for (size_t index = 0; index < sizeof refusals / sizeof refusals [0]; index++) {
        char *error = NULL;
        ProtobufCMessage *message = kp_json_to_message (refusals [index].desc,
                                                        refusals [index].json, &error);
        if (message)
            protobuf_c_message_free_unpacked (message, NULL);
        free (error);
    }
    for (size_t index = 0; index < sizeof round_trips / sizeof round_trips [0]; index++) {
        ProtobufCMessage *message = kp_json_to_message (round_trips [index].desc,
                                                        round_trips [index].json, NULL);
        if (!message)
            continue;
        ProtobufCMessage *back = s_repack (round_trips [index].desc, message);
        char *text = back? kp_json_from_message (back): NULL;
        free (text);
        protobuf_c_message_free_unpacked (back, NULL);
        protobuf_c_message_free_unpacked (message, NULL);
    }
}

Test (kp_json, errors_and_free_unpacked_leak_nothing)
{
    s_run_all ();                   //  warm up lazy allocations in libc
#if defined (KP_TEST_ASAN)
    s_run_all ();
    cr_assert_eq (__lsan_do_recoverable_leak_check (), 0, "LeakSanitizer found leaks");
#else
    long before = __atomic_load_n (&live_blocks, __ATOMIC_RELAXED);
    s_run_all ();
    long after = __atomic_load_n (&live_blocks, __ATOMIC_RELAXED);
    cr_assert_eq (after, before, "%ld heap blocks leaked", after - before);
#endif
}

//  ==========================================================================
//  Random input never crashes (fixed seeds: failures reproduce)
//  ==========================================================================

static const ProtobufCMessageDescriptor *fuzz_types [] = {
    &kp__body__signal__descriptor, &kp__body__referral__descriptor,
    &kp__wire__command__descriptor, &kp__wire__record__descriptor, &all_types_descriptor
};
#define FUZZ_TYPES (sizeof fuzz_types / sizeof fuzz_types [0])

//  --------------------------------------------------------------------------
//  Try text as each type; whatever parses must render and re-parse the same
static void
s_try_everywhere (const char *text)
{
    for (size_t type = 0; type < FUZZ_TYPES; type++) {
        char *error = NULL;
        ProtobufCMessage *message = kp_json_to_message (fuzz_types [type], text, &error);
        if (message) {
            cr_assert_null (error);
            char *json = kp_json_from_message (message);
            cr_assert_not_null (json);
            char *again = s_normalize (fuzz_types [type], json, &error);
            cr_assert_not_null (again, "own output refused: %s: %s", json, error);
            cr_assert_str_eq (again, json);
            free (again);
            free (json);
            protobuf_c_message_free_unpacked (message, NULL);
        }
        else {
            cr_assert_not_null (error);
            free (error);
        }
    }
}

Test (kp_json, random_bytes_never_crash)
{
    static const char alphabet [] = "{}[]\":,"
        "-0123456789.eE+ \\untrfalsebd\x01\x80\xc3\xff";
    uint64_t state = 0x6b6574656e706f73ULL;
    char text [97];
    for (int round = 0; round < 20000; round++) {
        size_t size = s_random (&state) % (sizeof text);
        for (size_t index = 0; index < size; index++) {
            uint64_t pick = s_random (&state);
            text [index] = pick % 4
                         ? alphabet [(pick >> 8) % (sizeof alphabet - 1)]
                         : (char) (1 + (pick >> 8) % 255);
        }
        text [size] = 0;
        s_try_everywhere (text);
    }
}

Test (kp_json, mutated_documents_never_crash)
{
    //  Start from valid documents so mutations reach deep into the mapping
    const char *seeds [] = {
        round_trips [0].json, round_trips [4].json, round_trips [6].json,
        round_trips [9].json, round_trips [16].json, round_trips [17].json,
        round_trips [18].json
    };
    uint64_t state = 0x2026112323400000ULL;
    for (int round = 0; round < 20000; round++) {
        const char *seed = seeds [s_random (&state) % (sizeof seeds / sizeof seeds [0])];
        size_t size = strlen (seed);
        char *text = (char *) malloc (size + 9);
        cr_assert_not_null (text);
        memcpy (text, seed, size + 1);
        int mutations = 1 + (int) (s_random (&state) % 4);
        for (int mutation = 0; mutation < mutations && size > 0; mutation++) {
            uint64_t pick = s_random (&state);
            size_t at = (size_t) ((pick >> 16) % size);
            switch (pick % 4) {
                case 0:             //  replace a byte
                    text [at] = (char) (1 + (pick >> 40) % 255);
                    break;
                case 1:             //  delete a byte
                    memmove (text + at, text + at + 1, size - at);
                    size--;
                    break;
                case 2:             //  truncate
                    text [at] = 0;
                    size = at;
                    break;
                default:            //  duplicate a byte
                    memmove (text + at + 1, text + at, size - at + 1);
                    size++;
                    break;
            }
        }
        s_try_everywhere (text);
        free (text);
    }
}
