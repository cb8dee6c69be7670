/*  =========================================================================
    kp_json - one generic JSON <-> protobuf mapping over protobuf-c descriptors

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    Maps any protobuf-c message to JSON and back, driven only by its
    ProtobufCMessageDescriptor: no code per type. Field names are the
    .proto's (snake_case). Mapping: string -> JSON string (UTF-8, escaped);
    bytes -> lower-case hex string; bool -> true/false; 32-bit ints and
    uint32 -> number; 64-bit ints -> number (accepted also as a string of
    digits); enum -> the value's name as in the .proto ("MELDING"), accepted
    case-insensitively, numbers refused; repeated -> array; message ->
    object; oneof -> the chosen member only. Output omits fields at their
    default (proto3), in field-number order, one line, no spaces. Input
    refuses unknown fields, duplicate keys, wrong JSON types, numbers out of
    range, strings with NUL or invalid UTF-8, nesting deeper than 32, and
    trailing garbage. Stateless.
@end
*/
#ifndef KP_JSON_H_INCLUDED
#define KP_JSON_H_INCLUDED

#include <protobuf-c/protobuf-c.h>

//  Render message as one line of JSON. Caller frees the string.
char *
    kp_json_from_message (const ProtobufCMessage *message);

//  Parse json into a new message of type desc. Returns NULL on error and
//  sets *error_p (if not NULL) to a new one-line reason naming the field
//  path ("persons[1].date_of_birth: expected a string"); caller frees it.
//  Free the result with protobuf_c_message_free_unpacked (msg, NULL).
ProtobufCMessage *
    kp_json_to_message (const ProtobufCMessageDescriptor *desc,
                        const char *json, char **error_p);

#endif
