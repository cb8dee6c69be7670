/*  =========================================================================
    test_kp_util - command framing limits, hex, UTF-8, enum names

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
*/
#include <criterion/criterion.h>
#include "kp_util.h"

TestSuite (kp_util);

Test (kp_util, hex_round_trip_and_refusals)
{
    uint8_t data [4] = { 0x00, 0xab, 0x7f, 0xff };
    char *text = kp_hex_encode (data, 4);
    cr_assert_str_eq (text, "00ab7fff");
    uint8_t back [4];
    cr_assert_eq (kp_hex_decode (text, back, 4), 0);
    cr_assert_arr_eq (back, data, 4);
    cr_assert_eq (kp_hex_decode ("00AB7FFF", back, 4), 0);
    cr_assert_eq (kp_hex_decode ("00ab7ff", back, 4), -1);
    cr_assert_eq (kp_hex_decode ("00ab7fgf", back, 4), -1);
    cr_assert_eq (kp_hex_decode (NULL, back, 4), -1);
    free (text);
}

//  Pack a Submit whose envelope recipient is the given bytes
static zframe_t *
s_submit_frame (const char *recipient)
{
    Kp__Wire__Envelope envelope = KP__WIRE__ENVELOPE__INIT;
    envelope.recipient = (char *) recipient;
    Kp__Wire__Submit submit = KP__WIRE__SUBMIT__INIT;
    submit.envelope = &envelope;
    Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
    command.kind_case = KP__WIRE__COMMAND__KIND_SUBMIT;
    command.submit = &submit;
    return kp_command_pack (&command);
}

Test (kp_util, unpack_accepts_a_good_command)
{
    zframe_t *frame = s_submit_frame ("municipality:GM0153");
    Kp__Wire__Command *command = kp_command_unpack (zframe_data (frame),
                                                    zframe_size (frame), 1024);
    cr_assert_not_null (command);
    cr_assert_str_eq (command->submit->envelope->recipient, "municipality:GM0153");
    kp__wire__command__free_unpacked (command, NULL);
    zframe_destroy (&frame);
}

Test (kp_util, unpack_refuses_oversize_garbage_nul_and_bad_utf8)
{
    zframe_t *frame = s_submit_frame ("municipality:GM0153");
    cr_assert_null (kp_command_unpack (zframe_data (frame), zframe_size (frame),
                                       zframe_size (frame) - 1));
    zframe_destroy (&frame);

    uint8_t garbage [] = { 0xff, 0xff, 0xff, 0xff, 0x0f };
    cr_assert_null (kp_command_unpack (garbage, sizeof garbage, 1024));

    //  "orgA\0orgB": protobuf-c would cut it at the NUL
    frame = s_submit_frame ("orgA");
    uint8_t *data = zframe_data (frame);
    size_t size = zframe_size (frame);
    uint8_t *with_nul = (uint8_t *) malloc (size);
    memcpy (with_nul, data, size);
    for (size_t index = 0; index + 4 <= size; index++)
        if (memcmp (with_nul + index, "orgA", 4) == 0)
            with_nul [index + 3] = 0;
    cr_assert_null (kp_command_unpack (with_nul, size, 1024));
    free (with_nul);
    zframe_destroy (&frame);

    frame = s_submit_frame ("caf\xc3\x28");
    cr_assert_null (kp_command_unpack (zframe_data (frame), zframe_size (frame), 1024));
    zframe_destroy (&frame);
    frame = s_submit_frame ("\xed\xa0\x80");       //  a UTF-16 surrogate
    cr_assert_null (kp_command_unpack (zframe_data (frame), zframe_size (frame), 1024));
    zframe_destroy (&frame);
    frame = s_submit_frame ("caf\xc3\xa9 \xf0\x9f\x98\x80");
    Kp__Wire__Command *command = kp_command_unpack (zframe_data (frame),
                                                    zframe_size (frame), 1024);
    cr_assert_not_null (command);
    kp__wire__command__free_unpacked (command, NULL);
    zframe_destroy (&frame);
}

Test (kp_util, unpack_refuses_an_empty_command)
{
    Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
    zframe_t *frame = kp_command_pack (&command);
    cr_assert_null (kp_command_unpack (zframe_data (frame), zframe_size (frame), 1024));
    zframe_destroy (&frame);
}

Test (kp_util, enum_names_round_trip)
{
    cr_assert_str_eq (kp_type_name (KP__WIRE__MESSAGE_TYPE__SCHOOL_NOTIFICATION),
                      "school_notification");
    cr_assert_eq (kp_type_from_name ("school_notification"),
                  KP__WIRE__MESSAGE_TYPE__SCHOOL_NOTIFICATION);
    cr_assert_eq (kp_role_from_name ("veilig_thuis"), KP__WIRE__ROLE__VEILIG_THUIS);
    cr_assert_eq (kp_role_from_name ("mayor"), KP__WIRE__ROLE__ROLE_UNSPECIFIED);
    cr_assert_str_eq (kp_role_name (KP__WIRE__ROLE__LEERPLICHT), "leerplicht");
    cr_assert_null (kp_type_name ((Kp__Wire__MessageType) 99));
    cr_assert_str_eq (kp_error_name (KP__WIRE__ERROR_CODE__FORBIDDEN), "FORBIDDEN");
    cr_assert_str_eq (kp_status_name (KP__WIRE__STATUS_KIND__DELIVERED), "DELIVERED");
    cr_assert_str_eq (kp_event_name (KP__WIRE__EVENT_KIND__ACCEPTED), "ACCEPTED");
}

Test (kp_util, parse_positive_takes_only_plain_positive_decimals_up_to_max)
{
    cr_assert_eq (kp_parse_positive ("1", 10), 1);
    cr_assert_eq (kp_parse_positive ("10", 10), 10);
    cr_assert_eq (kp_parse_positive ("11", 10), -1);
    cr_assert_eq (kp_parse_positive ("0", 10), -1);
    cr_assert_eq (kp_parse_positive ("", 10), -1);
    cr_assert_eq (kp_parse_positive (NULL, 10), -1);
    cr_assert_eq (kp_parse_positive ("-5", 10), -1);
    cr_assert_eq (kp_parse_positive ("5x", 10), -1);
    cr_assert_eq (kp_parse_positive (" 5", 10), -1);
    cr_assert_eq (kp_parse_positive ("99999999999999999999999", INT64_MAX), -1);
    cr_assert_eq (kp_parse_positive ("9223372036854775807", INT64_MAX), INT64_MAX);
    cr_assert_eq (kp_parse_positive ("9223372036854775808", INT64_MAX), -1);
}

Test (kp_util, arena_gives_aligned_memory_and_takes_it_all_back_at_once)
{
    kp_arena_t arena;
    kp_arena_init (&arena);
    ProtobufCAllocator *allocator = &arena.allocator;
    //  Many small pieces and one larger than a chunk: aligned, disjoint
    uint8_t *previous = NULL;
    for (size_t index = 0; index < 10000; index++) {
        size_t size = index == 5000? 200000: 1 + index % 100;
        uint8_t *piece = (uint8_t *) allocator->alloc (allocator->allocator_data, size);
        cr_assert_not_null (piece);
        cr_assert_eq ((uintptr_t) piece % 16, 0);
        memset (piece, (int) index, size);
        if (previous)
            cr_assert_neq (piece, previous);
        previous = piece;
        allocator->free (allocator->allocator_data, piece);
    }
    size_t total = arena.total;
    cr_assert_geq (total, 200000 + 10000 * 16);
    //  After a reset one chunk holds what several held
    kp_arena_reset (&arena);
    cr_assert_eq (arena.total, total);
    for (size_t index = 0; index < 1000; index++)
        allocator->alloc (allocator->allocator_data, 100);
    cr_assert_eq (arena.total, total, "the same again fits in the one chunk");
    //  A command unpacked in it, and given back
    Kp__Wire__Ping ping = KP__WIRE__PING__INIT;
    ping.nonce = 42;
    Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
    command.kind_case = KP__WIRE__COMMAND__KIND_PING;
    command.ping = &ping;
    zframe_t *frame = kp_command_pack (&command);
    Kp__Wire__Command *copy = kp_command_unpack_with (zframe_data (frame), zframe_size (frame),
                                                      1024, allocator);
    cr_assert_not_null (copy);
    cr_assert_eq (copy->ping->nonce, 42);
    kp__wire__command__free_unpacked (copy, allocator);
    cr_assert_null (kp_command_unpack_with (zframe_data (frame), zframe_size (frame), 1,
                                            allocator), "over max_size");
    zframe_destroy (&frame);
    kp_arena_reset (&arena);
    kp_arena_destroy (&arena);
}
