/*  =========================================================================
    kp_util - small helpers shared by broker, client library and tools

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
*/
#include "kp_util.h"
#include <ctype.h>
#include <fcntl.h>
#include <libgen.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

int kp_verbose = 0;

//  --------------------------------------------------------------------------
//  Wall clock, UTC, ms since the epoch

int64_t
kp_now_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_REALTIME, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  --------------------------------------------------------------------------
//  Monotonic clock, ms; for timeouts only

int64_t
kp_mono_ms (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

//  --------------------------------------------------------------------------
//  Bytes to lower-case hex; caller frees

char *
kp_hex_encode (const uint8_t *data, size_t size)
{
    static const char digits [] = "0123456789abcdef";
    char *text = (char *) malloc (size * 2 + 1);
    assert (text);
    for (size_t index = 0; index < size; index++) {
        text [index * 2] = digits [data [index] >> 4];
        text [index * 2 + 1] = digits [data [index] & 15];
    }
    text [size * 2] = 0;
    return text;
}

static int
s_hex_digit (char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

//  --------------------------------------------------------------------------
//  Hex to exactly size bytes; 0 or -1

int
kp_hex_decode (const char *text, uint8_t *out, size_t size)
{
    assert (out);
    if (!text || strlen (text) != size * 2)
        return -1;
    for (size_t index = 0; index < size; index++) {
        int high = s_hex_digit (text [index * 2]);
        int low = s_hex_digit (text [index * 2 + 1]);
        if (high < 0 || low < 0)
            return -1;
        out [index] = (uint8_t) (high << 4 | low);
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Pack a command into a new frame

zframe_t *
kp_command_pack (const Kp__Wire__Command *command)
{
    assert (command);
    size_t size = kp__wire__command__get_packed_size (command);
    zframe_t *frame = zframe_new (NULL, size);
    assert (frame);
    kp__wire__command__pack (command, zframe_data (frame));
    return frame;
}

//  --------------------------------------------------------------------------
//  True if text is strict UTF-8: no overlongs, no surrogates, nothing past
//  U+10FFFF

bool
kp_utf8_valid (const char *text)
{
    const uint8_t *cursor = (const uint8_t *) text;
    while (*cursor) {
        uint8_t lead = *cursor;
        size_t extra;
        uint32_t point;
        if (lead < 0x80) {
            cursor++;
            continue;
        }
        else if ((lead & 0xE0) == 0xC0) {
            extra = 1;
            point = lead & 0x1F;
        }
        else if ((lead & 0xF0) == 0xE0) {
            extra = 2;
            point = lead & 0x0F;
        }
        else if ((lead & 0xF8) == 0xF0) {
            extra = 3;
            point = lead & 0x07;
        }
        else
            return false;
        for (size_t index = 1; index <= extra; index++) {
            if ((cursor [index] & 0xC0) != 0x80)
                return false;
            point = (point << 6) | (cursor [index] & 0x3F);
        }
        if ((extra == 1 && point < 0x80)
        ||  (extra == 2 && point < 0x800)
        ||  (extra == 3 && (point < 0x10000 || point > 0x10FFFF))
        ||  (point >= 0xD800 && point <= 0xDFFF))
            return false;
        cursor += extra + 1;
    }
    return true;
}

//  --------------------------------------------------------------------------
//  Check every string field (recursively) is valid UTF-8

bool
kp_message_strings_valid (const ProtobufCMessage *message)
{
    assert (message);
    const ProtobufCMessageDescriptor *desc = message->descriptor;
    for (unsigned index = 0; index < desc->n_fields; index++) {
        const ProtobufCFieldDescriptor *field = desc->fields + index;
        const char *base = (const char *) message;
        if (field->type != PROTOBUF_C_TYPE_STRING
        &&  field->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        //  A oneof member counts only when it is the chosen case
        if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t chosen = *(const uint32_t *) (base + field->quantifier_offset);
            if (chosen != field->id)
                continue;
        }
        size_t count = 1;
        void *const *items = (void *const *) (base + field->offset);
        if (field->label == PROTOBUF_C_LABEL_REPEATED) {
            count = *(const size_t *) (base + field->quantifier_offset);
            items = *(void *const *const *) (base + field->offset);
        }
        for (size_t item = 0; item < count; item++) {
            const void *value = items [item];
            if (!value)
                continue;
            if (field->type == PROTOBUF_C_TYPE_STRING) {
                if (!kp_utf8_valid ((const char *) value))
                    return false;
            }
            else
            if (!kp_message_strings_valid ((const ProtobufCMessage *) value))
                return false;
        }
    }
    return true;
}

//  --------------------------------------------------------------------------
//  Unpack a frame into a command, strictly

Kp__Wire__Command *
kp_command_unpack (const uint8_t *data, size_t size, size_t max_size)
{
    return kp_command_unpack_with (data, size, max_size, NULL);
}

Kp__Wire__Command *
kp_command_unpack_with (const uint8_t *data, size_t size, size_t max_size,
                        ProtobufCAllocator *allocator)
{
    if (size > max_size)
        return NULL;
    Kp__Wire__Command *command = kp__wire__command__unpack (allocator, size, data);
    if (!command)
        return NULL;
    //  A string with a NUL inside is cut silently by protobuf-c; such input
    //  re-packs shorter than it came in. Refuse it, and bad UTF-8 too.
    if (kp__wire__command__get_packed_size (command) != size
    ||  command->kind_case == KP__WIRE__COMMAND__KIND__NOT_SET
    ||  !kp_message_strings_valid (&command->base)) {
        kp__wire__command__free_unpacked (command, allocator);
        return NULL;
    }
    return command;
}

//  --------------------------------------------------------------------------
//  The arena

#define S_ARENA_CHUNK (64 * 1024)       //  bytes of the first chunk, at least
#define S_ARENA_ALIGN 16
#define S_ARENA_LARGE (1024 * 1024)     //  more than this is not kept

struct _kp_arena_chunk_t {
    kp_arena_chunk_t *older;
    size_t used, limit;             //  bytes of data
    _Alignas (S_ARENA_ALIGN) uint8_t data [];
};

static kp_arena_chunk_t *
s_arena_chunk_new (size_t limit, kp_arena_chunk_t *older)
{
    kp_arena_chunk_t *chunk = (kp_arena_chunk_t *) malloc (sizeof (kp_arena_chunk_t) + limit);
    assert (chunk);
    chunk->older = older;
    chunk->used = 0;
    chunk->limit = limit;
    return chunk;
}

static void *
s_arena_alloc (void *allocator_data, size_t size)
{
    kp_arena_t *self = (kp_arena_t *) allocator_data;
    size = (size + S_ARENA_ALIGN - 1) & ~(size_t) (S_ARENA_ALIGN - 1);
    kp_arena_chunk_t *chunk = self->chunk;
    if (!chunk || chunk->limit - chunk->used < size) {
        size_t limit = self->total > S_ARENA_CHUNK? self->total: S_ARENA_CHUNK;
        if (limit < size)
            limit = size;
        chunk = self->chunk = s_arena_chunk_new (limit, chunk);
        self->total += limit;
    }
    void *memory = chunk->data + chunk->used;
    chunk->used += size;
    return memory;
}

static void
s_arena_free (void *allocator_data, void *pointer)
{
    (void) allocator_data;
    (void) pointer;
}

void
kp_arena_init (kp_arena_t *self)
{
    assert (self);
    memset (self, 0, sizeof *self);
    self->allocator.alloc = s_arena_alloc;
    self->allocator.free = s_arena_free;
    self->allocator.allocator_data = self;
}

void
kp_arena_reset (kp_arena_t *self)
{
    assert (self);
    if (self->total > S_ARENA_LARGE) {
        //  After a burst of large messages: back to a small chunk
        kp_arena_destroy (self);
        kp_arena_init (self);
    }
    else
    if (self->chunk && self->chunk->older) {
        //  Outgrown: one chunk of the size of all, for the next round
        kp_arena_destroy (self);
        size_t total = self->total;
        kp_arena_init (self);
        self->chunk = s_arena_chunk_new (total, NULL);
        self->total = total;
    }
    else
    if (self->chunk)
        self->chunk->used = 0;
}

void
kp_arena_destroy (kp_arena_t *self)
{
    assert (self);
    kp_arena_chunk_t *chunk = self->chunk;
    while (chunk) {
        kp_arena_chunk_t *older = chunk->older;
        free (chunk);
        chunk = older;
    }
    self->chunk = NULL;
}

//  --------------------------------------------------------------------------
//  Enum names, lower-cased, from the generated descriptors

static const char *
s_enum_name (const ProtobufCEnumDescriptor *desc, int value)
{
    const ProtobufCEnumValue *entry = protobuf_c_enum_descriptor_get_value (desc, value);
    return entry? entry->name: NULL;
}

static int
s_enum_from_name (const ProtobufCEnumDescriptor *desc, const char *name)
{
    if (!name)
        return 0;
    for (unsigned index = 0; index < desc->n_values; index++)
        if (strcasecmp (desc->values [index].name, name) == 0)
            return desc->values [index].value;
    return 0;
}

//  Types and roles appear lower-case in addresses, config and the registry;
//  error, status and event names stay as the .proto spells them.
const char *
kp_type_name (Kp__Wire__MessageType type)
{
    switch (type) {
        case KP__WIRE__MESSAGE_TYPE__SIGNAL: return "signal";
        case KP__WIRE__MESSAGE_TYPE__REFERRAL: return "referral";
        case KP__WIRE__MESSAGE_TYPE__SCHOOL_NOTIFICATION: return "school_notification";
        case KP__WIRE__MESSAGE_TYPE__FEEDBACK: return "feedback";
        default: return NULL;
    }
}

const char *
kp_role_name (Kp__Wire__Role role)
{
    switch (role) {
        case KP__WIRE__ROLE__POLICE: return "police";
        case KP__WIRE__ROLE__VEILIG_THUIS: return "veilig_thuis";
        case KP__WIRE__ROLE__LOCAL_TEAM: return "local_team";
        case KP__WIRE__ROLE__LEERPLICHT: return "leerplicht";
        case KP__WIRE__ROLE__SCHOOL: return "school";
        case KP__WIRE__ROLE__AUDITOR: return "auditor";
        default: return NULL;
    }
}

const char *
kp_error_name (Kp__Wire__ErrorCode code)
{
    return s_enum_name (&kp__wire__error_code__descriptor, code);
}

const char *
kp_status_name (Kp__Wire__StatusKind status)
{
    return s_enum_name (&kp__wire__status_kind__descriptor, status);
}

const char *
kp_event_name (Kp__Wire__EventKind event)
{
    return s_enum_name (&kp__wire__event_kind__descriptor, event);
}

Kp__Wire__MessageType
kp_type_from_name (const char *name)
{
    return (Kp__Wire__MessageType) s_enum_from_name (&kp__wire__message_type__descriptor, name);
}

Kp__Wire__Role
kp_role_from_name (const char *name)
{
    return (Kp__Wire__Role) s_enum_from_name (&kp__wire__role__descriptor, name);
}

//  --------------------------------------------------------------------------
//  Parse a positive decimal integer no larger than max; see kp_util.h

int64_t
kp_parse_positive (const char *text, int64_t max)
{
    if (!text || !*text)
        return -1;
    int64_t value = 0;
    for (const char *cursor = text; *cursor; cursor++) {
        if (*cursor < '0' || *cursor > '9')
            return -1;
        int digit = *cursor - '0';
        if (value > (max - digit) / 10)
            return -1;              //  past max, checked before it can overflow
        value = value * 10 + digit;
    }
    return value > 0? value: -1;
}

//  --------------------------------------------------------------------------
//  Open a directory for fsync, creating it if asked; see kp_util.h

static int
s_fsync_path (const char *path)
{
    int fd = open (path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync (fd);
    int err = errno;
    close (fd);
    errno = err;
    return rc;
}

//  --------------------------------------------------------------------------
//  Write size bytes at offset, whatever it takes

int
kp_pwrite_full (int fd, const void *data, size_t size, uint64_t offset, size_t *done_p)
{
    const uint8_t *cursor = (const uint8_t *) data;
    size_t done = 0;
    int rc = 0;
    while (done < size) {
        ssize_t count = pwrite (fd, cursor + done, size - done, (off_t) (offset + done));
        if (count < 0 && errno == EINTR)
            continue;
        if (count <= 0) {
            if (count == 0)
                errno = EIO;        //  never for regular files; do not spin
            rc = -1;
            break;
        }
        done += (size_t) count;
    }
    if (done_p)
        *done_p = done;
    return rc;
}

int
kp_dir_open (const char *dir, bool create, const char *owner)
{
    assert (dir);
    assert (owner);
    struct stat info;
    bool created = false;
    if (stat (dir, &info) == 0) {
        if (!S_ISDIR (info.st_mode)) {
            zsys_error ("%s: %s is not a directory", owner, dir);
            return -1;
        }
    }
    else
    if (errno == ENOENT && create) {
        if (zsys_dir_create ("%s", dir) || chmod (dir, 0700)) {
            zsys_error ("%s: cannot create %s: %s", owner, dir, strerror (errno));
            return -1;
        }
        created = true;
    }
    else {
        zsys_error ("%s: cannot use %s: %s", owner, dir, strerror (errno));
        return -1;
    }
    int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        zsys_error ("%s: cannot open %s: %s", owner, dir, strerror (errno));
        return -1;
    }
    if (created) {
        char *parent = strdup (dir);
        assert (parent);
        int rc = s_fsync_path (dirname (parent));
        int err = errno;
        free (parent);
        if (rc) {
            zsys_error ("%s: cannot sync the parent of %s: %s", owner, dir, strerror (err));
            close (fd);
            return -1;
        }
    }
    return fd;
}
