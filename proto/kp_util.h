/*  =========================================================================
    kp_util - small helpers shared by broker, client library and tools

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    Framing of wire commands (pack/unpack with limits), hex, clocks, and the
    logging macro. Stateless; safe from any thread.
@end
*/
#ifndef KP_UTIL_H_INCLUDED
#define KP_UTIL_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>
#include "kp_wire.pb-c.h"

#define KP_MUST_CHECK __attribute__ ((warn_unused_result))
#define KP_PROTOCOL_VERSION 1
#define KP_ID_SIZE 16                   //  message id bytes
#define KP_HASH_SIZE 32                 //  SHA-256
#define KP_KEY_TEXT 40                  //  Z85 CURVE key

//  Verbosity guard: formats only when the level is on (Redis serverLog).
extern int kp_verbose;
#define kp_debug(...) do { if (kp_verbose) zsys_debug (__VA_ARGS__); } while (0)

//  --------------------------------------------------------------------------
//  Wall clock (UTC, ms since the epoch) and monotonic clock (ms).
int64_t
    kp_now_ms (void);
int64_t
    kp_mono_ms (void);

//  --------------------------------------------------------------------------
//  Encode bytes as lower-case hex into a new string. Caller frees.
char *
    kp_hex_encode (const uint8_t *data, size_t size);

//  Decode hex text into out (exactly size bytes). Returns 0, or -1 if the
//  text is not 2*size hex digits.
int
    kp_hex_decode (const char *text, uint8_t *out, size_t size);

//  --------------------------------------------------------------------------
//  Pack a command into a new zframe. Caller owns it.
zframe_t *
    kp_command_pack (const Kp__Wire__Command *command);

//  Unpack a frame into a command, refusing frames over max_size, undecodable
//  input, strings with NUL bytes or invalid UTF-8, and input that does not
//  re-pack to the same length. Returns NULL on refusal; caller frees the
//  result with kp__wire__command__free_unpacked (cmd, NULL).
Kp__Wire__Command *
    kp_command_unpack (const uint8_t *data, size_t size, size_t max_size);

//  The same, with memory from allocator (NULL: malloc); free the result
//  with kp__wire__command__free_unpacked (cmd, allocator).
Kp__Wire__Command *
    kp_command_unpack_with (const uint8_t *data, size_t size, size_t max_size,
                            ProtobufCAllocator *allocator);

//  --------------------------------------------------------------------------
//  An arena for protobuf-c: unpacked messages come from a few large chunks
//  instead of a malloc per field, and all go at once at kp_arena_reset.
//  Pass &arena->allocator to unpack and free_unpacked (whose free is a
//  no-op). For a loop that unpacks many short-lived messages per turn.
typedef struct _kp_arena_chunk_t kp_arena_chunk_t;
typedef struct {
    ProtobufCAllocator allocator;
    kp_arena_chunk_t *chunk;        //  the current chunk, then older ones
    size_t total;                   //  bytes of all chunks
} kp_arena_t;

//  Ready an arena (no memory yet); kp_arena_destroy frees it.
void
    kp_arena_init (kp_arena_t *self);

//  Forget everything allocated; keep one chunk as large as all were.
void
    kp_arena_reset (kp_arena_t *self);

void
    kp_arena_destroy (kp_arena_t *self);

//  Check every string field of a protobuf message (recursively) is valid
//  UTF-8. Returns true if all are.
bool
    kp_message_strings_valid (const ProtobufCMessage *message);

//  A positive decimal integer no larger than max (a command-line number),
//  or -1 if text is not one.
int64_t
    kp_parse_positive (const char *text, int64_t max);

//  Make sure dir exists and open it for fsync (O_DIRECTORY). If it is
//  missing and create is set, create it (mode 0700, parents as needed) and
//  fsync its parent, so the new entry is durable. owner names the caller in
//  the one line logged on failure. Returns the descriptor, or -1.
int
    kp_dir_open (const char *dir, bool create, const char *owner);

//  Write size bytes at offset of fd, looping over short writes and EINTR
//  (a full disk shows up first as a short write). Returns 0, or -1 with
//  errno set; *done_p (if not NULL) says how many bytes were written.
int
    kp_pwrite_full (int fd, const void *data, size_t size, uint64_t offset,
                    size_t *done_p);

//  True if text is strict UTF-8 (no overlongs, surrogates or code points
//  past U+10FFFF).
bool
    kp_utf8_valid (const char *text);

//  Names of enum values: types and roles lower-cased ("school_notification"),
//  errors, statuses and events as in the .proto ("FORBIDDEN"). NULL for
//  values outside the enum.
const char *
    kp_type_name (Kp__Wire__MessageType type);
const char *
    kp_role_name (Kp__Wire__Role role);
const char *
    kp_error_name (Kp__Wire__ErrorCode code);
const char *
    kp_status_name (Kp__Wire__StatusKind status);
const char *
    kp_event_name (Kp__Wire__EventKind event);

//  Parse a lower-case or upper-case name back; return the _UNSPECIFIED (0)
//  value if unknown.
Kp__Wire__MessageType
    kp_type_from_name (const char *name);
Kp__Wire__Role
    kp_role_from_name (const char *name);

#endif
