/*  =========================================================================
    kp_json - one generic JSON <-> protobuf mapping over protobuf-c descriptors

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    Maps any protobuf-c message to JSON and back, driven only by its
    ProtobufCMessageDescriptor (see kp_json.h for the mapping). Input is read
    in two steps: a strict recursive-descent parser turns the text into a
    small tree (syntax, UTF-8, escapes, nesting depth), then the tree is
    mapped onto a new message field by field. Messages are allocated exactly
    as protobuf-c's unpack does, so protobuf_c_message_free_unpacked frees
    them, and it also frees every half-built message on an error path.
    Beyond kp_json.h: null reads as "not set" (proto3 JSON), except as an
    array element; NaN and the infinities travel as the strings "NaN",
    "Infinity", "-Infinity"; an enum value the descriptor does not know is
    written as its number; string bytes that are not UTF-8 are written as
    U+FFFD, so the output is always valid JSON.
    Stateless; safe from any thread.
@end
*/

#include "kp_json.h"

#include <assert.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define KP_JSON_MAX_DEPTH   32      //  deepest nesting of arrays and objects
#define KP_JSON_EXCERPT     40      //  bytes of user text quoted in an error

//  --------------------------------------------------------------------------
//  A growable output buffer; on allocation failure it remembers and stops

typedef struct {
    char *data;                     //  NUL-terminated text so far
    size_t size;                    //  bytes used, without the NUL
    size_t limit;                   //  bytes allocated
    bool failed;                    //  an allocation failed
} buffer_t;

//  --------------------------------------------------------------------------
//  Append size bytes of text to the buffer

static void
s_put (buffer_t *self, const char *text, size_t size)
{
    if (self->failed)
        return;
    if (self->size + size + 1 > self->limit) {
        size_t limit = self->limit? self->limit: 64;
        while (self->size + size + 1 > limit)
            limit *= 2;
        char *data = (char *) realloc (self->data, limit);
        if (!data) {
            self->failed = true;
            return;
        }
        self->data = data;
        self->limit = limit;
    }
    memcpy (self->data + self->size, text, size);
    self->size += size;
    self->data [self->size] = 0;
}

//  --------------------------------------------------------------------------
//  Append a C string to the buffer

static void
s_puts (buffer_t *self, const char *text)
{
    s_put (self, text, strlen (text));
}

//  --------------------------------------------------------------------------
//  Append printf-formatted text to the buffer

static void
s_printf (buffer_t *self, const char *format, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
s_printf (buffer_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    va_list copy;
    va_copy (copy, args);
    int size = vsnprintf (NULL, 0, format, args);
    va_end (args);
    char *text = size >= 0? (char *) malloc ((size_t) size + 1): NULL;
    if (text) {
        vsnprintf (text, (size_t) size + 1, format, copy);
        s_put (self, text, (size_t) size);
        free (text);
    }
    else
        self->failed = true;
    va_end (copy);
}

//  --------------------------------------------------------------------------
//  Take the buffer's text; NULL if any allocation failed. Caller frees.

static char *
s_buffer_take (buffer_t *self)
{
    if (!self->failed && !self->data)
        s_put (self, "", 0);
    if (self->failed) {
        free (self->data);
        self->data = NULL;
    }
    char *text = self->data;
    self->data = NULL;
    self->size = self->limit = 0;
    return text;
}

//  --------------------------------------------------------------------------
//  Length of the valid UTF-8 sequence at text (before end), or 0 if it is
//  not one (RFC 3629: no overlong forms, no surrogates, nothing past 10FFFF)

static size_t
s_utf8_length (const uint8_t *text, const uint8_t *end)
{
    uint8_t lead = text [0];
    size_t size;
    uint8_t low = 0x80, high = 0xBF;    //  range of the second byte
    if (lead < 0x80)
        return 1;
    else if (lead < 0xC2)
        return 0;
    else if (lead < 0xE0)
        size = 2;
    else if (lead < 0xF0) {
        size = 3;
        if (lead == 0xE0)
            low = 0xA0;
        else if (lead == 0xED)
            high = 0x9F;
    }
    else if (lead < 0xF5) {
        size = 4;
        if (lead == 0xF0)
            low = 0x90;
        else if (lead == 0xF4)
            high = 0x8F;
    }
    else
        return 0;
    if ((size_t) (end - text) < size)
        return 0;
    if (text [1] < low || text [1] > high)
        return 0;
    for (size_t index = 2; index < size; index++)
        if ((text [index] & 0xC0) != 0x80)
            return 0;
    return size;
}

//  --------------------------------------------------------------------------
//  Append text for an error message: control bytes and broken UTF-8 become
//  '?', so the message stays one valid line; at most limit bytes, then "..."

static void
s_put_sanitized (buffer_t *self, const char *text, size_t limit)
{
    const uint8_t *cursor = (const uint8_t *) text;
    const uint8_t *end = cursor + strlen (text);
    size_t written = 0;
    while (cursor < end) {
        size_t size = s_utf8_length (cursor, end);
        if (written + (size? size: 1) > limit) {
            s_puts (self, "...");
            break;
        }
        if (size == 0 || *cursor < 0x20 || *cursor == 0x7F) {
            s_put (self, "?", 1);
            size = 1;
        }
        else
            s_put (self, (const char *) cursor, size);
        cursor += size;
        written += size;
    }
}

//  --------------------------------------------------------------------------
//  The JSON tree the parser builds. Containers hold their children inline.

typedef enum {
    NODE_NULL,
    NODE_FALSE,
    NODE_TRUE,
    NODE_NUMBER,
    NODE_STRING,
    NODE_ARRAY,
    NODE_OBJECT
} node_type_t;

typedef struct _node_t node_t;
struct _node_t {
    node_type_t type;               //  which JSON value this is
    char *text;                     //  string (decoded) or number token
    size_t size;                    //  bytes in text, or children held
    size_t limit;                   //  children allocated
    node_t *items;                  //  array elements or object values
    char **keys;                    //  object member names, beside items
};

//  --------------------------------------------------------------------------
//  Free what a node holds (not the node itself, which lives in its parent)

static void
s_node_clear (node_t *self)
{
    for (size_t index = 0; index < (self->items? self->size: 0); index++) {
        s_node_clear (&self->items [index]);
        if (self->keys)
            free (self->keys [index]);
    }
    free (self->items);
    free (self->keys);
    free (self->text);
    memset (self, 0, sizeof (node_t));
}

//  --------------------------------------------------------------------------
//  The state of one conversion: input, position, the field path, the error

typedef struct {
    const char *key;                //  member name, or NULL for an index
    size_t index;                   //  array index when key is NULL
} step_t;

typedef struct {
    const char *text;               //  the whole input
    const char *cursor;             //  next byte to read
    int depth;                      //  containers open at the cursor
    step_t path [KP_JSON_MAX_DEPTH + 1];    //  field path, for errors
    int path_size;                  //  steps in path
    char *error;                    //  the first error, formatted
} parser_t;

//  --------------------------------------------------------------------------
//  Enter an object member: push its name onto the error path

static void
s_push_key (parser_t *self, const char *key)
{
    assert (self->path_size <= KP_JSON_MAX_DEPTH);
    self->path [self->path_size].key = key;
    self->path [self->path_size].index = 0;
    self->path_size++;
}

//  --------------------------------------------------------------------------
//  Enter an array element: push its index onto the error path

static void
s_push_index (parser_t *self, size_t index)
{
    assert (self->path_size <= KP_JSON_MAX_DEPTH);
    self->path [self->path_size].key = NULL;
    self->path [self->path_size].index = index;
    self->path_size++;
}

//  --------------------------------------------------------------------------
//  Leave the member or element entered last

static void
s_pop (parser_t *self)
{
    assert (self->path_size > 0);
    self->path_size--;
}

//  --------------------------------------------------------------------------
//  Record an error as "path: what [at offset N]"; only the first one counts.
//  Always returns -1, so callers can write "return s_fail (...)".

static int
s_fail (parser_t *self, const char *at, const char *format, ...)
    __attribute__ ((format (printf, 3, 4)));

static int
s_fail (parser_t *self, const char *at, const char *format, ...)
{
    if (self->error)
        return -1;
    buffer_t what = { NULL, 0, 0, false };
    va_list args;
    va_start (args, format);
    int size = vsnprintf (NULL, 0, format, args);
    va_end (args);
    char *text = size >= 0? (char *) malloc ((size_t) size + 1): NULL;
    if (text) {
        va_start (args, format);
        vsnprintf (text, (size_t) size + 1, format, args);
        va_end (args);
    }
    for (int index = 0; index < self->path_size; index++) {
        const step_t *step = &self->path [index];
        if (step->key) {
            if (index > 0)
                s_put (&what, ".", 1);
            s_put_sanitized (&what, step->key, 64);
        }
        else
            s_printf (&what, "[%zu]", step->index);
    }
    if (self->path_size > 0)
        s_puts (&what, ": ");
    if (text)
        s_put_sanitized (&what, text, 512);
    else
        what.failed = true;
    if (at)
        s_printf (&what, " at offset %zu", (size_t) (at - self->text));
    free (text);
    self->error = s_buffer_take (&what);
    return -1;
}

//  --------------------------------------------------------------------------
//  A short, printable copy of user text for an error message. Caller frees.

static char *
s_excerpt (const char *text)
{
    buffer_t excerpt = { NULL, 0, 0, false };
    s_put_sanitized (&excerpt, text, KP_JSON_EXCERPT);
    char *result = s_buffer_take (&excerpt);
    return result? result: strdup ("");
}

//  ==========================================================================
//  Step 1: text -> tree (RFC 8259, strictly)
//  ==========================================================================

static int
    s_parse_value (parser_t *self, node_t *node);

//  --------------------------------------------------------------------------
//  Skip JSON white space (space, tab, CR, LF) at the cursor

static void
s_skip_space (parser_t *self)
{
    while (*self->cursor == ' ' || *self->cursor == '\t'
    ||     *self->cursor == '\n' || *self->cursor == '\r')
        self->cursor++;
}

//  --------------------------------------------------------------------------
//  Value of one hex digit, or -1

static int
s_hex_value (char digit)
{
    if (digit >= '0' && digit <= '9')
        return digit - '0';
    if (digit >= 'a' && digit <= 'f')
        return digit - 'a' + 10;
    if (digit >= 'A' && digit <= 'F')
        return digit - 'A' + 10;
    return -1;
}

//  --------------------------------------------------------------------------
//  Read the 4 hex digits of a \u escape at text. Returns the code unit or -1.

static long
s_read_u_escape (const char *text)
{
    long unit = 0;
    for (int index = 0; index < 4; index++) {
        int digit = s_hex_value (text [index]);
        if (digit < 0)
            return -1;
        unit = unit * 16 + digit;
    }
    return unit;
}

//  --------------------------------------------------------------------------
//  Parse a string at the cursor (on its opening quote) into a new decoded,
//  validated UTF-8 text. Returns 0, or -1 after recording the error.

static int
s_parse_string (parser_t *self, char **text_p, size_t *size_p)
{
    assert (*self->cursor == '"');
    const char *start = self->cursor + 1;

    //  Find the closing quote first: the decoded text is never longer
    const char *end = start;
    while (*end && *end != '"') {
        if (*end == '\\' && end [1])
            end++;
        end++;
    }
    if (*end != '"')
        return s_fail (self, self->cursor, "unterminated string");

    char *text = (char *) malloc ((size_t) (end - start) + 1);
    if (!text)
        return s_fail (self, NULL, "out of memory");
    size_t size = 0;
    const char *cursor = start;
    while (cursor < end) {
        uint8_t byte = (uint8_t) *cursor;
        if (byte < 0x20) {
            free (text);
            return s_fail (self, cursor, "control character in string (escape it)");
        }
        if (byte >= 0x80) {
            size_t length = s_utf8_length ((const uint8_t *) cursor,
                                           (const uint8_t *) end);
            if (length == 0) {
                free (text);
                return s_fail (self, cursor, "invalid UTF-8 in string");
            }
            memcpy (text + size, cursor, length);
            size += length;
            cursor += length;
            continue;
        }
        if (byte != '\\') {
            text [size++] = (char) byte;
            cursor++;
            continue;
        }
        //  An escape sequence
        const char *escape = cursor;
        char kind = cursor [1];
        cursor += 2;
        switch (kind) {
            case '"':  text [size++] = '"'; continue;
            case '\\': text [size++] = '\\'; continue;
            case '/':  text [size++] = '/'; continue;
            case 'b':  text [size++] = '\b'; continue;
            case 'f':  text [size++] = '\f'; continue;
            case 'n':  text [size++] = '\n'; continue;
            case 'r':  text [size++] = '\r'; continue;
            case 't':  text [size++] = '\t'; continue;
            case 'u':  break;
            default:
                free (text);
                return s_fail (self, escape, "invalid escape in string");
        }
        long point = s_read_u_escape (cursor);
        if (point < 0) {
            free (text);
            return s_fail (self, escape, "invalid \\u escape in string");
        }
        cursor += 4;
        if (point >= 0xD800 && point <= 0xDBFF) {
            //  A high surrogate must be followed by an escaped low one
            long low = cursor [0] == '\\' && cursor [1] == 'u'?
                       s_read_u_escape (cursor + 2): -1;
            if (low < 0xDC00 || low > 0xDFFF) {
                free (text);
                return s_fail (self, escape, "unpaired surrogate in string");
            }
            point = 0x10000 + ((point - 0xD800) << 10) + (low - 0xDC00);
            cursor += 6;
        }
        else if (point >= 0xDC00 && point <= 0xDFFF) {
            free (text);
            return s_fail (self, escape, "unpaired surrogate in string");
        }
        else if (point == 0) {
            free (text);
            return s_fail (self, escape, "NUL (\\u0000) in string");
        }
        //  Encode the code point as UTF-8
        if (point < 0x80)
            text [size++] = (char) point;
        else if (point < 0x800) {
            text [size++] = (char) (0xC0 | (point >> 6));
            text [size++] = (char) (0x80 | (point & 0x3F));
        }
        else if (point < 0x10000) {
            text [size++] = (char) (0xE0 | (point >> 12));
            text [size++] = (char) (0x80 | ((point >> 6) & 0x3F));
            text [size++] = (char) (0x80 | (point & 0x3F));
        }
        else {
            text [size++] = (char) (0xF0 | (point >> 18));
            text [size++] = (char) (0x80 | ((point >> 12) & 0x3F));
            text [size++] = (char) (0x80 | ((point >> 6) & 0x3F));
            text [size++] = (char) (0x80 | (point & 0x3F));
        }
    }
    text [size] = 0;
    self->cursor = end + 1;
    *text_p = text;
    *size_p = size;
    return 0;
}

//  --------------------------------------------------------------------------
//  Parse a number at the cursor: -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?
//  The node keeps the token text; fields convert it by their type.

static int
s_parse_number (parser_t *self, node_t *node)
{
    const char *start = self->cursor;
    const char *cursor = start;
    if (*cursor == '-')
        cursor++;
    if (*cursor == '0') {
        cursor++;
        if (*cursor >= '0' && *cursor <= '9')
            return s_fail (self, start, "number with a leading zero");
    }
    else if (*cursor >= '1' && *cursor <= '9') {
        while (*cursor >= '0' && *cursor <= '9')
            cursor++;
    }
    else
        return s_fail (self, start, "invalid number");
    if (*cursor == '.') {
        cursor++;
        if (!(*cursor >= '0' && *cursor <= '9'))
            return s_fail (self, start, "invalid number (digits must follow '.')");
        while (*cursor >= '0' && *cursor <= '9')
            cursor++;
    }
    if (*cursor == 'e' || *cursor == 'E') {
        cursor++;
        if (*cursor == '+' || *cursor == '-')
            cursor++;
        if (!(*cursor >= '0' && *cursor <= '9'))
            return s_fail (self, start, "invalid number (bad exponent)");
        while (*cursor >= '0' && *cursor <= '9')
            cursor++;
    }
    node->type = NODE_NUMBER;
    node->size = (size_t) (cursor - start);
    node->text = strndup (start, node->size);
    if (!node->text)
        return s_fail (self, NULL, "out of memory");
    self->cursor = cursor;
    return 0;
}

//  --------------------------------------------------------------------------
//  Make room for one more child in a container node

static int
s_node_grow (parser_t *self, node_t *node, bool with_keys)
{
    if (node->size < node->limit)
        return 0;
    size_t limit = node->limit? node->limit * 2: 4;
    node_t *items = (node_t *) realloc (node->items, limit * sizeof (node_t));
    if (!items)
        return s_fail (self, NULL, "out of memory");
    node->items = items;
    if (with_keys) {
        char **keys = (char **) realloc (node->keys, limit * sizeof (char *));
        if (!keys)
            return s_fail (self, NULL, "out of memory");
        node->keys = keys;
    }
    node->limit = limit;
    return 0;
}

//  --------------------------------------------------------------------------
//  Enter a container, refusing nesting deeper than KP_JSON_MAX_DEPTH

static int
s_enter (parser_t *self)
{
    if (self->depth >= KP_JSON_MAX_DEPTH)
        return s_fail (self, self->cursor, "nesting deeper than %d", KP_JSON_MAX_DEPTH);
    self->depth++;
    self->cursor++;
    return 0;
}

//  --------------------------------------------------------------------------
//  Parse an array at the cursor (on '[')

static int
s_parse_array (parser_t *self, node_t *node)
{
    node->type = NODE_ARRAY;
    if (s_enter (self))
        return -1;
    s_skip_space (self);
    if (*self->cursor == ']') {
        self->cursor++;
        self->depth--;
        return 0;
    }
    while (true) {
        if (s_node_grow (self, node, false))
            return -1;
        node_t *item = &node->items [node->size];
        memset (item, 0, sizeof (node_t));
        s_push_index (self, node->size);
        int rc = s_parse_value (self, item);
        s_pop (self);
        node->size++;               //  a failed item is cleared with the rest
        if (rc)
            return -1;
        s_skip_space (self);
        if (*self->cursor == ',')
            self->cursor++;
        else if (*self->cursor == ']') {
            self->cursor++;
            break;
        }
        else
            return s_fail (self, self->cursor, "expected ',' or ']' in array");
    }
    self->depth--;
    return 0;
}

//  --------------------------------------------------------------------------
//  Parse an object at the cursor (on '{')

static int
s_parse_object (parser_t *self, node_t *node)
{
    node->type = NODE_OBJECT;
    if (s_enter (self))
        return -1;
    s_skip_space (self);
    if (*self->cursor == '}') {
        self->cursor++;
        self->depth--;
        return 0;
    }
    while (true) {
        s_skip_space (self);
        if (*self->cursor != '"')
            return s_fail (self, self->cursor, "expected a member name in object");
        if (s_node_grow (self, node, true))
            return -1;
        node_t *item = &node->items [node->size];
        memset (item, 0, sizeof (node_t));
        char *key = NULL;
        size_t key_size;
        if (s_parse_string (self, &key, &key_size))
            return -1;
        node->keys [node->size] = key;
        node->size++;               //  so key and value are freed with the node
        s_skip_space (self);
        if (*self->cursor != ':')
            return s_fail (self, self->cursor, "expected ':' after member name");
        self->cursor++;
        s_push_key (self, key);
        int rc = s_parse_value (self, item);
        s_pop (self);
        if (rc)
            return -1;
        s_skip_space (self);
        if (*self->cursor == ',')
            self->cursor++;
        else if (*self->cursor == '}') {
            self->cursor++;
            break;
        }
        else
            return s_fail (self, self->cursor, "expected ',' or '}' in object");
    }
    self->depth--;
    return 0;
}

//  --------------------------------------------------------------------------
//  Parse any value at the cursor, after optional white space

static int
s_parse_value (parser_t *self, node_t *node)
{
    s_skip_space (self);
    const char *cursor = self->cursor;
    switch (*cursor) {
        case '{':
            return s_parse_object (self, node);
        case '[':
            return s_parse_array (self, node);
        case '"':
            node->type = NODE_STRING;
            return s_parse_string (self, &node->text, &node->size);
        case 't':
            if (strncmp (cursor, "true", 4) == 0) {
                node->type = NODE_TRUE;
                self->cursor += 4;
                return 0;
            }
            break;
        case 'f':
            if (strncmp (cursor, "false", 5) == 0) {
                node->type = NODE_FALSE;
                self->cursor += 5;
                return 0;
            }
            break;
        case 'n':
            if (strncmp (cursor, "null", 4) == 0) {
                node->type = NODE_NULL;
                self->cursor += 4;
                return 0;
            }
            break;
        case 0:
            return s_fail (self, cursor, "unexpected end of input, expected a value");
        default:
            if (*cursor == '-' || (*cursor >= '0' && *cursor <= '9'))
                return s_parse_number (self, node);
            break;
    }
    return s_fail (self, cursor, "expected a value");
}

//  --------------------------------------------------------------------------
//  Parse the whole input as one value with nothing after it

static int
s_parse_document (parser_t *self, node_t *root)
{
    if (s_parse_value (self, root))
        return -1;
    s_skip_space (self);
    if (*self->cursor)
        return s_fail (self, self->cursor, "trailing garbage after the value");
    return 0;
}

//  ==========================================================================
//  Step 2: tree -> message
//  ==========================================================================

//  --------------------------------------------------------------------------
//  The .proto name of a scalar type, for error messages

static const char *
s_type_name (ProtobufCType type)
{
    switch (type) {
        case PROTOBUF_C_TYPE_INT32:    return "int32";
        case PROTOBUF_C_TYPE_SINT32:   return "sint32";
        case PROTOBUF_C_TYPE_SFIXED32: return "sfixed32";
        case PROTOBUF_C_TYPE_INT64:    return "int64";
        case PROTOBUF_C_TYPE_SINT64:   return "sint64";
        case PROTOBUF_C_TYPE_SFIXED64: return "sfixed64";
        case PROTOBUF_C_TYPE_UINT32:   return "uint32";
        case PROTOBUF_C_TYPE_FIXED32:  return "fixed32";
        case PROTOBUF_C_TYPE_UINT64:   return "uint64";
        case PROTOBUF_C_TYPE_FIXED64:  return "fixed64";
        case PROTOBUF_C_TYPE_FLOAT:    return "float";
        case PROTOBUF_C_TYPE_DOUBLE:   return "double";
        case PROTOBUF_C_TYPE_BOOL:     return "bool";
        case PROTOBUF_C_TYPE_ENUM:     return "enum";
        case PROTOBUF_C_TYPE_STRING:   return "string";
        case PROTOBUF_C_TYPE_BYTES:    return "bytes";
        case PROTOBUF_C_TYPE_MESSAGE:  return "message";
    }
    return "unknown";
}

//  --------------------------------------------------------------------------
//  Bytes one value of this type takes in a message or a repeated array

static size_t
s_type_size (ProtobufCType type)
{
    switch (type) {
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
            return sizeof (uint32_t);
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
            return sizeof (uint64_t);
        case PROTOBUF_C_TYPE_FLOAT:
            return sizeof (float);
        case PROTOBUF_C_TYPE_DOUBLE:
            return sizeof (double);
        case PROTOBUF_C_TYPE_BOOL:
            return sizeof (protobuf_c_boolean);
        case PROTOBUF_C_TYPE_ENUM:
            return sizeof (int);
        case PROTOBUF_C_TYPE_STRING:
            return sizeof (char *);
        case PROTOBUF_C_TYPE_BYTES:
            return sizeof (ProtobufCBinaryData);
        case PROTOBUF_C_TYPE_MESSAGE:
            return sizeof (ProtobufCMessage *);
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  True if text is a JSON integer: -?(0|[1-9][0-9]*)

static bool
s_is_integer_text (const char *text)
{
    if (*text == '-')
        text++;
    if (*text == '0')
        return text [1] == 0;
    if (*text < '1' || *text > '9')
        return false;
    while (*text >= '0' && *text <= '9')
        text++;
    return *text == 0;
}

//  --------------------------------------------------------------------------
//  Read an integer field's value into member, checking the type's range.
//  64-bit types also take a string of digits (JavaScript loses precision).

static int
s_integer_from_node (parser_t *self, const ProtobufCFieldDescriptor *field,
                     const node_t *node, void *member)
{
    bool wide = s_type_size (field->type) == sizeof (uint64_t);
    const char *type_name = s_type_name (field->type);
    if (!(node->type == NODE_NUMBER || (wide && node->type == NODE_STRING)))
        return s_fail (self, NULL, wide?
                       "expected an integer (number or string of digits)":
                       "expected an integer");
    if (!s_is_integer_text (node->text))
        return s_fail (self, NULL, node->type == NODE_NUMBER?
                       "expected an integer, not a fraction or exponent":
                       "expected a string of decimal digits");
    bool is_signed = field->type == PROTOBUF_C_TYPE_INT32
                  || field->type == PROTOBUF_C_TYPE_SINT32
                  || field->type == PROTOBUF_C_TYPE_SFIXED32
                  || field->type == PROTOBUF_C_TYPE_INT64
                  || field->type == PROTOBUF_C_TYPE_SINT64
                  || field->type == PROTOBUF_C_TYPE_SFIXED64;
    errno = 0;
    if (is_signed) {
        long long value = strtoll (node->text, NULL, 10);
        if (errno == ERANGE
        ||  (!wide && (value < INT32_MIN || value > INT32_MAX)))
            return s_fail (self, NULL, "number out of range for %s", type_name);
        if (wide)
            *(int64_t *) member = (int64_t) value;
        else
            *(int32_t *) member = (int32_t) value;
    }
    else {
        //  strtoull negates a '-' silently; only "-0" is a fine unsigned
        if (node->text [0] == '-' && strcmp (node->text, "-0") != 0)
            return s_fail (self, NULL, "number out of range for %s", type_name);
        unsigned long long value = strtoull (node->text, NULL, 10);
        if (errno == ERANGE || (!wide && value > UINT32_MAX))
            return s_fail (self, NULL, "number out of range for %s", type_name);
        if (wide)
            *(uint64_t *) member = (uint64_t) value;
        else
            *(uint32_t *) member = (uint32_t) value;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Read a float or double; NaN and infinities come as strings, as in the
//  proto3 JSON mapping, since JSON numbers cannot hold them

static int
s_real_from_node (parser_t *self, const ProtobufCFieldDescriptor *field,
                  const node_t *node, void *member)
{
    double value;
    if (node->type == NODE_STRING) {
        if (strcmp (node->text, "NaN") == 0)
            value = NAN;
        else if (strcmp (node->text, "Infinity") == 0)
            value = INFINITY;
        else if (strcmp (node->text, "-Infinity") == 0)
            value = -INFINITY;
        else
            return s_fail (self, NULL, "expected a number "
                           "(or \"NaN\", \"Infinity\", \"-Infinity\")");
    }
    else if (node->type == NODE_NUMBER) {
        value = strtod (node->text, NULL);
        bool is_float = field->type == PROTOBUF_C_TYPE_FLOAT;
        if (!isfinite (value) || (is_float && fabs (value) > FLT_MAX))
            return s_fail (self, NULL, "number out of range for %s",
                           s_type_name (field->type));
    }
    else
        return s_fail (self, NULL, "expected a number");

    if (field->type == PROTOBUF_C_TYPE_FLOAT)
        *(float *) member = (float) value;
    else
        *(double *) member = value;
    return 0;
}

//  --------------------------------------------------------------------------
//  Read an enum value by its name, case-insensitively; numbers are refused
//  so that a renumbered .proto cannot silently change meaning

static int
s_enum_from_node (parser_t *self, const ProtobufCFieldDescriptor *field,
                  const node_t *node, int *member)
{
    const ProtobufCEnumDescriptor *desc =
        (const ProtobufCEnumDescriptor *) field->descriptor;
    assert (desc);
    if (node->type == NODE_NUMBER)
        return s_fail (self, NULL, "enum %s given as a number; use the value's name",
                       desc->name);
    if (node->type != NODE_STRING)
        return s_fail (self, NULL, "expected the name of a %s value", desc->name);
    for (unsigned index = 0; index < desc->n_values; index++)
        if (strcasecmp (desc->values [index].name, node->text) == 0) {
            *member = desc->values [index].value;
            return 0;
        }
    char *excerpt = s_excerpt (node->text);
    s_fail (self, NULL, "unknown enum value \"%s\" for %s", excerpt? excerpt: "",
            desc->name);
    free (excerpt);
    return -1;
}

//  --------------------------------------------------------------------------
//  Read a bytes value from a hex string into a new buffer

static int
s_bytes_from_node (parser_t *self, const node_t *node, ProtobufCBinaryData *member)
{
    if (node->type != NODE_STRING)
        return s_fail (self, NULL, "expected a string of hex digits");
    if (node->size % 2)
        return s_fail (self, NULL, "odd number of hex digits");
    for (size_t index = 0; index < node->size; index++)
        if (s_hex_value (node->text [index]) < 0)
            return s_fail (self, NULL, "bad hex digit at position %zu", index);
    uint8_t *data = NULL;
    size_t size = node->size / 2;
    if (size) {
        data = (uint8_t *) malloc (size);
        if (!data)
            return s_fail (self, NULL, "out of memory");
        for (size_t index = 0; index < size; index++)
            data [index] = (uint8_t) (s_hex_value (node->text [2 * index]) * 16
                                    + s_hex_value (node->text [2 * index + 1]));
    }
    member->data = data;
    member->len = size;
    return 0;
}

static ProtobufCMessage *
    s_message_from_node (parser_t *self, const ProtobufCMessageDescriptor *desc,
                         const node_t *node);

//  --------------------------------------------------------------------------
//  Read one value of field's type into member. On success member holds the
//  value (strings, bytes and messages newly allocated); on failure member is
//  untouched and nothing is left allocated.

static int
s_value_from_node (parser_t *self, const ProtobufCFieldDescriptor *field,
                   const node_t *node, void *member)
{
    switch (field->type) {
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
            return s_integer_from_node (self, field, node, member);
        case PROTOBUF_C_TYPE_FLOAT:
        case PROTOBUF_C_TYPE_DOUBLE:
            return s_real_from_node (self, field, node, member);
        case PROTOBUF_C_TYPE_BOOL:
            if (node->type != NODE_TRUE && node->type != NODE_FALSE)
                return s_fail (self, NULL, "expected true or false");
            *(protobuf_c_boolean *) member = node->type == NODE_TRUE;
            return 0;
        case PROTOBUF_C_TYPE_ENUM:
            return s_enum_from_node (self, field, node, (int *) member);
        case PROTOBUF_C_TYPE_STRING: {
            if (node->type != NODE_STRING)
                return s_fail (self, NULL, "expected a string");
            char *text = (char *) malloc (node->size + 1);
            if (!text)
                return s_fail (self, NULL, "out of memory");
            memcpy (text, node->text, node->size + 1);
            *(char **) member = text;
            return 0;
        }
        case PROTOBUF_C_TYPE_BYTES:
            return s_bytes_from_node (self, node, (ProtobufCBinaryData *) member);
        case PROTOBUF_C_TYPE_MESSAGE: {
            if (node->type != NODE_OBJECT)
                return s_fail (self, NULL, "expected an object");
            ProtobufCMessage *message = s_message_from_node (
                self, (const ProtobufCMessageDescriptor *) field->descriptor, node);
            if (!message)
                return -1;
            *(ProtobufCMessage **) member = message;
            return 0;
        }
    }
    return s_fail (self, NULL, "field type %d is not supported", (int) field->type);
}

//  --------------------------------------------------------------------------
//  Read a JSON array into a repeated field. The array and its count are in
//  the message at every step, so free_unpacked frees a partial one.

static int
s_repeated_from_node (parser_t *self, ProtobufCMessage *message,
                      const ProtobufCFieldDescriptor *field, const node_t *node)
{
    if (node->type != NODE_ARRAY)
        return s_fail (self, NULL, "expected an array");
    if (node->size == 0)
        return 0;
    size_t item_size = s_type_size (field->type);
    uint8_t *array = (uint8_t *) calloc (node->size, item_size);
    if (!array)
        return s_fail (self, NULL, "out of memory");
    size_t *count = (size_t *) ((uint8_t *) message + field->quantifier_offset);
    *(void **) ((uint8_t *) message + field->offset) = array;
    *count = 0;
    for (size_t index = 0; index < node->size; index++) {
        s_push_index (self, index);
        int rc = node->items [index].type == NODE_NULL
               ? s_fail (self, NULL, "null is not allowed in an array")
               : s_value_from_node (self, field, &node->items [index],
                                    array + index * item_size);
        s_pop (self);
        if (rc)
            return -1;
        *count = index + 1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Read one object member into field of message

static int
s_field_from_node (parser_t *self, ProtobufCMessage *message,
                   const ProtobufCFieldDescriptor *field, const node_t *node)
{
    const ProtobufCMessageDescriptor *desc = message->descriptor;
    uint8_t *member = (uint8_t *) message + field->offset;
    uint8_t *quantifier = (uint8_t *) message + field->quantifier_offset;

    if (node->type == NODE_NULL)
        return 0;                   //  null means "not set", as in proto3 JSON
    if (field->label == PROTOBUF_C_LABEL_REPEATED)
        return s_repeated_from_node (self, message, field, node);

    if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t *oneof_case = (uint32_t *) quantifier;
        if (*oneof_case && *oneof_case != field->id) {
            const ProtobufCFieldDescriptor *other =
                protobuf_c_message_descriptor_get_field (desc, *oneof_case);
            return s_fail (self, NULL, "cannot be set together with %s "
                           "(one of them only)", other? other->name: "another member");
        }
        //  The case first: free_unpacked frees only the chosen member,
        //  which is still NULL or zero until the value is in
        *oneof_case = field->id;
        return s_value_from_node (self, field, node, member);
    }
    if (s_value_from_node (self, field, node, member))
        return -1;
    if (field->label == PROTOBUF_C_LABEL_OPTIONAL
    &&  field->type != PROTOBUF_C_TYPE_STRING
    &&  field->type != PROTOBUF_C_TYPE_MESSAGE)
        *(protobuf_c_boolean *) quantifier = 1;
    return 0;
}

//  --------------------------------------------------------------------------
//  Build a new message of type desc from an object node. Returns NULL after
//  recording the error; the half-built message is freed by then.

static ProtobufCMessage *
s_message_from_node (parser_t *self, const ProtobufCMessageDescriptor *desc,
                     const node_t *node)
{
    assert (desc);
    assert (desc->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC);
    if (node->type != NODE_OBJECT) {
        s_fail (self, NULL, "expected an object");
        return NULL;
    }
    //  given [i]: 0 = field i not in the object, 1 = null, 2 = a value
    ProtobufCMessage *message = (ProtobufCMessage *) malloc (desc->sizeof_message);
    uint8_t *given = (uint8_t *) calloc (desc->n_fields + 1, 1);
    if (!message || !given) {
        free (message);
        free (given);
        s_fail (self, NULL, "out of memory");
        return NULL;
    }
    protobuf_c_message_init (desc, message);

    for (size_t index = 0; index < node->size; index++) {
        const node_t *value = &node->items [index];
        s_push_key (self, node->keys [index]);
        const ProtobufCFieldDescriptor *field =
            protobuf_c_message_descriptor_get_field_by_name (desc, node->keys [index]);
        int rc;
        if (!field)
            rc = s_fail (self, NULL, "unknown field for %s", desc->name);
        else if (given [field - desc->fields])
            rc = s_fail (self, NULL, "duplicate key");
        else {
            given [field - desc->fields] = value->type == NODE_NULL? 1: 2;
            rc = s_field_from_node (self, message, field, value);
        }
        s_pop (self);
        if (rc)
            goto failed;
    }
    //  proto2 required fields must be given; proto3 has none
    for (unsigned index = 0; index < desc->n_fields; index++) {
        const ProtobufCFieldDescriptor *field = &desc->fields [index];
        if (field->label == PROTOBUF_C_LABEL_REQUIRED && given [index] != 2) {
            s_push_key (self, field->name);
            s_fail (self, NULL, "required field is missing");
            s_pop (self);
            goto failed;
        }
    }
    free (given);
    return message;

failed:
    free (given);
    protobuf_c_message_free_unpacked (message, NULL);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Parse json into a new message of type desc. Returns NULL on error and
//  sets *error_p (if not NULL) to a new one-line reason naming the field
//  path. Free the result with protobuf_c_message_free_unpacked (msg, NULL).

ProtobufCMessage *
kp_json_to_message (const ProtobufCMessageDescriptor *desc,
                    const char *json, char **error_p)
{
    assert (desc);
    assert (json);
    if (error_p)
        *error_p = NULL;

    parser_t parser;
    memset (&parser, 0, sizeof parser);
    parser.text = json;
    parser.cursor = json;
    node_t root;
    memset (&root, 0, sizeof root);

    ProtobufCMessage *message = NULL;
    if (s_parse_document (&parser, &root) == 0)
        message = s_message_from_node (&parser, desc, &root);
    s_node_clear (&root);

    if (message) {
        assert (!parser.error);
        return message;
    }
    if (error_p)
        *error_p = parser.error;
    else
        free (parser.error);
    return NULL;
}

//  ==========================================================================
//  Message -> JSON
//  ==========================================================================

//  --------------------------------------------------------------------------
//  Write text as a JSON string: '"', '\\' and control characters escaped,
//  other UTF-8 passed through. Bytes that are not valid UTF-8 (possible in a
//  message that did not come through a validating unpack) become U+FFFD, so
//  the output is always valid JSON.

static void
s_write_string (buffer_t *out, const char *text)
{
    const uint8_t *cursor = (const uint8_t *) text;
    const uint8_t *end = cursor + strlen (text);
    s_put (out, "\"", 1);
    while (cursor < end) {
        //  Copy the longest run that needs no escaping in one go
        const uint8_t *run = cursor;
        while (cursor < end && *cursor >= 0x20 && *cursor < 0x7F
        &&     *cursor != '"' && *cursor != '\\')
            cursor++;
        s_put (out, (const char *) run, (size_t) (cursor - run));
        if (cursor == end)
            break;
        if (*cursor == '"' || *cursor == '\\') {
            s_put (out, "\\", 1);
            s_put (out, (const char *) cursor, 1);
            cursor++;
        }
        else if (*cursor < 0x20 || *cursor == 0x7F) {
            s_printf (out, "\\u%04x", *cursor);
            cursor++;
        }
        else {
            size_t size = s_utf8_length (cursor, end);
            if (size) {
                s_put (out, (const char *) cursor, size);
                cursor += size;
            }
            else {
                s_puts (out, "\xEF\xBF\xBD");
                cursor++;
            }
        }
    }
    s_put (out, "\"", 1);
}

//  --------------------------------------------------------------------------
//  Write a float or double so that reading it back gives the same value

static void
s_write_real (buffer_t *out, double value)
{
    if (isnan (value))
        s_puts (out, "\"NaN\"");
    else if (isinf (value))
        s_puts (out, value > 0? "\"Infinity\"": "\"-Infinity\"");
    else
        s_printf (out, "%.17g", value);
}

static void
    s_write_message (buffer_t *out, const ProtobufCMessage *message);

//  --------------------------------------------------------------------------
//  Write one value of field's type, stored at member

static void
s_write_value (buffer_t *out, const ProtobufCFieldDescriptor *field, const void *member)
{
    switch (field->type) {
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
            s_printf (out, "%" PRId32, *(const int32_t *) member);
            break;
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
            s_printf (out, "%" PRIu32, *(const uint32_t *) member);
            break;
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
            s_printf (out, "%" PRId64, *(const int64_t *) member);
            break;
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
            s_printf (out, "%" PRIu64, *(const uint64_t *) member);
            break;
        case PROTOBUF_C_TYPE_FLOAT:
            s_write_real (out, *(const float *) member);
            break;
        case PROTOBUF_C_TYPE_DOUBLE:
            s_write_real (out, *(const double *) member);
            break;
        case PROTOBUF_C_TYPE_BOOL:
            s_puts (out, *(const protobuf_c_boolean *) member? "true": "false");
            break;
        case PROTOBUF_C_TYPE_ENUM: {
            //  A value this build does not know (from a newer peer) has no
            //  name; write its number rather than lose it
            int value = *(const int *) member;
            const ProtobufCEnumValue *entry = protobuf_c_enum_descriptor_get_value (
                (const ProtobufCEnumDescriptor *) field->descriptor, value);
            if (entry)
                s_write_string (out, entry->name);
            else
                s_printf (out, "%d", value);
            break;
        }
        case PROTOBUF_C_TYPE_STRING: {
            const char *text = *(const char * const *) member;
            s_write_string (out, text? text: "");
            break;
        }
        case PROTOBUF_C_TYPE_BYTES: {
            static const char digits [] = "0123456789abcdef";
            const ProtobufCBinaryData *bytes = (const ProtobufCBinaryData *) member;
            s_put (out, "\"", 1);
            for (size_t index = 0; index < bytes->len; index++) {
                char pair [2] = {
                    digits [bytes->data [index] >> 4], digits [bytes->data [index] & 15]
                };
                s_put (out, pair, 2);
            }
            s_put (out, "\"", 1);
            break;
        }
        case PROTOBUF_C_TYPE_MESSAGE: {
            const ProtobufCMessage *message = *(const ProtobufCMessage * const *) member;
            if (message)
                s_write_message (out, message);
            else
                s_puts (out, "{}");
            break;
        }
    }
}

//  --------------------------------------------------------------------------
//  True if a singular proto3 field holds its default (0, false, "", empty
//  bytes, NULL message): such fields are omitted, as pack omits them

static bool
s_is_default (const ProtobufCFieldDescriptor *field, const void *member)
{
    switch (field->type) {
        case PROTOBUF_C_TYPE_INT32:
        case PROTOBUF_C_TYPE_SINT32:
        case PROTOBUF_C_TYPE_SFIXED32:
        case PROTOBUF_C_TYPE_UINT32:
        case PROTOBUF_C_TYPE_FIXED32:
            return *(const uint32_t *) member == 0;
        case PROTOBUF_C_TYPE_INT64:
        case PROTOBUF_C_TYPE_SINT64:
        case PROTOBUF_C_TYPE_SFIXED64:
        case PROTOBUF_C_TYPE_UINT64:
        case PROTOBUF_C_TYPE_FIXED64:
            return *(const uint64_t *) member == 0;
        case PROTOBUF_C_TYPE_FLOAT:
            return *(const float *) member == 0;
        case PROTOBUF_C_TYPE_DOUBLE:
            return *(const double *) member == 0;
        case PROTOBUF_C_TYPE_BOOL:
            return *(const protobuf_c_boolean *) member == 0;
        case PROTOBUF_C_TYPE_ENUM:
            return *(const int *) member == 0;
        case PROTOBUF_C_TYPE_STRING: {
            const char *text = *(const char * const *) member;
            return !text || !*text;
        }
        case PROTOBUF_C_TYPE_BYTES:
            return ((const ProtobufCBinaryData *) member)->len == 0;
        case PROTOBUF_C_TYPE_MESSAGE:
            return *(const void * const *) member == NULL;
    }
    return true;
}

//  --------------------------------------------------------------------------
//  True if field is present in message, by the rules protobuf-c's pack uses

static bool
s_is_present (const ProtobufCMessage *message, const ProtobufCFieldDescriptor *field)
{
    const uint8_t *member = (const uint8_t *) message + field->offset;
    const uint8_t *quantifier = (const uint8_t *) message + field->quantifier_offset;
    bool is_pointer = field->type == PROTOBUF_C_TYPE_STRING
                   || field->type == PROTOBUF_C_TYPE_MESSAGE;
    const void *pointer = is_pointer? *(const void * const *) member: NULL;

    if (field->label == PROTOBUF_C_LABEL_REPEATED)
        return *(const size_t *) quantifier > 0;
    if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        if (*(const uint32_t *) quantifier != field->id)
            return false;
        return !is_pointer || (pointer && pointer != field->default_value);
    }
    if (field->label == PROTOBUF_C_LABEL_REQUIRED)
        return true;
    if (field->label == PROTOBUF_C_LABEL_OPTIONAL) {
        if (is_pointer)
            return pointer && pointer != field->default_value;
        return *(const protobuf_c_boolean *) quantifier != 0;
    }
    return !s_is_default (field, member);
}

//  --------------------------------------------------------------------------
//  Write message as a JSON object, fields in field-number order

static void
s_write_message (buffer_t *out, const ProtobufCMessage *message)
{
    const ProtobufCMessageDescriptor *desc = message->descriptor;
    assert (desc);
    assert (desc->magic == PROTOBUF_C__MESSAGE_DESCRIPTOR_MAGIC);
    s_put (out, "{", 1);
    bool first = true;
    //  protobuf-c keeps fields sorted by number (its lookups rely on it)
    for (unsigned index = 0; index < desc->n_fields; index++) {
        const ProtobufCFieldDescriptor *field = &desc->fields [index];
        if (!s_is_present (message, field))
            continue;
        if (!first)
            s_put (out, ",", 1);
        first = false;
        s_write_string (out, field->name);
        s_put (out, ":", 1);
        const uint8_t *member = (const uint8_t *) message + field->offset;
        if (field->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t count = *(const size_t *) ((const uint8_t *) message
                                              + field->quantifier_offset);
            const uint8_t *array = *(const uint8_t * const *) member;
            size_t item_size = s_type_size (field->type);
            s_put (out, "[", 1);
            for (size_t item = 0; item < count; item++) {
                if (item)
                    s_put (out, ",", 1);
                s_write_value (out, field, array + item * item_size);
            }
            s_put (out, "]", 1);
        }
        else
            s_write_value (out, field, member);
    }
    s_put (out, "}", 1);
}

//  --------------------------------------------------------------------------
//  Render message as one line of JSON. Caller frees the string. Returns
//  NULL only if memory ran out.

char *
kp_json_from_message (const ProtobufCMessage *message)
{
    assert (message);
    buffer_t out = { NULL, 0, 0, false };
    s_write_message (&out, message);
    return s_buffer_take (&out);
}
