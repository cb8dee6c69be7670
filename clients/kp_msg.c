/*  =========================================================================
    kp_msg - one ketenpost message or status report, with its body schemas

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    A kp_msg_t is either an outgoing message (kp_msg_new, the setters,
    then kp_client_send), a received message (kp_client_recv; envelope
    fields filled by the broker) or a received status report about a
    message we sent. It owns its body as packed protobuf of the type's
    schema (proto/kp_body.proto) and renders itself as one line of JSON.
    The body is checked against the schema and the data-minimisation rules
    before it is sent and after it is received. Not thread-safe; belongs to
    the thread that made it.
@end
*/
#include "kp_msg_internal.h"
#include "kp_json.h"
#include "kp_validate.h"
#include "kp_body.pb-c.h"
#include <sodium.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <time.h>

#define S_RECIPIENT_MAX 256         //  longest address we send
#define S_SHORT_TEXT_MAX 256        //  names, ids, codes in a body

//  --------------------------------------------------------------------------
//  Set the last error, one line

static void
s_set_error (kp_msg_t *self, const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *text = zsys_vprintf (format, args);
    va_end (args);
    zstr_free (&self->error);
    self->error = text;
}

//  --------------------------------------------------------------------------
//  Zero-allocate a message with every string set to ""

static kp_msg_t *
s_msg_alloc (void)
{
    kp_msg_t *self = (kp_msg_t *) zmalloc (sizeof (kp_msg_t));
    assert (self);
    self->recipient = strdup ("");
    self->purpose = strdup ("");
    self->acting_user = strdup ("");
    self->on_behalf_of = strdup ("");
    self->sender = strdup ("");
    self->recipient_partner = strdup ("");
    self->status_partner = strdup ("");
    self->status_reason = strdup ("");
    self->key = strdup ("");
    assert (self->recipient && self->purpose && self->acting_user
            && self->on_behalf_of && self->sender && self->recipient_partner
            && self->status_partner && self->status_reason && self->key);
    return self;
}

//  --------------------------------------------------------------------------
//  Replace a string field with a copy of value
static void
s_set_string (char **field_p, const char *value)
{
    char *copy = strdup (value? value: "");
    assert (copy);
    free (*field_p);
    *field_p = copy;
}

//  --------------------------------------------------------------------------
//  New outgoing message of type to recipient; NULL if type is unknown

kp_msg_t *
kp_msg_new (const char *type, const char *recipient)
{
    assert (type);
    assert (recipient);
    Kp__Wire__MessageType type_value = kp_type_from_name (type);
    if (!kp_type_name (type_value))
        return NULL;
    kp_msg_t *self = s_msg_alloc ();
    self->type = type_value;
    s_set_string (&self->recipient, recipient);
    //  Fixed at creation, so that every resend of this message (same id)
    //  carries the same envelope.
    self->created_at_ms = kp_now_ms ();
    return self;
}

//  --------------------------------------------------------------------------
//  Destroy; idempotent

void
kp_msg_destroy (kp_msg_t **self_p)
{
    assert (self_p);
    kp_msg_t *self = *self_p;
    if (!self)
        return;
    zstr_free (&self->error);
    free (self->receipt);
    zstr_free (&self->key);
    zstr_free (&self->status_reason);
    zstr_free (&self->status_partner);
    zstr_free (&self->recipient_partner);
    zstr_free (&self->sender);
    if (self->body)
        sodium_memzero (self->body, self->body_size);
    free (self->body);
    zstr_free (&self->on_behalf_of);
    zstr_free (&self->acting_user);
    zstr_free (&self->purpose);
    zstr_free (&self->recipient);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  The body descriptor: by type, and for a school notification by who
//  receives it (the school-bound schema cannot carry a lookup hint)

const ProtobufCMessageDescriptor *
kp_msg_body_descriptor (kp_msg_t *self)
{
    assert (self);
    switch (self->type) {
        case KP__WIRE__MESSAGE_TYPE__SIGNAL:
            return &kp__body__signal__descriptor;
        case KP__WIRE__MESSAGE_TYPE__REFERRAL:
            return &kp__body__referral__descriptor;
        case KP__WIRE__MESSAGE_TYPE__FEEDBACK:
            return &kp__body__feedback__descriptor;
        case KP__WIRE__MESSAGE_TYPE__SCHOOL_NOTIFICATION: {
            bool to_school = self->received
                ? self->recipient_role == KP__WIRE__ROLE__SCHOOL
                : strncmp (self->recipient, "school:", 7) == 0;
            return to_school? &kp__body__school_notification__descriptor
                            : &kp__body__school_notification_request__descriptor;
        }
        default:
            return NULL;
    }
}

//  --------------------------------------------------------------------------
//  Store packed bytes of body as the message body
static void
s_body_store (kp_msg_t *self, const ProtobufCMessage *body)
{
    size_t size = protobuf_c_message_get_packed_size (body);
    uint8_t *data = (uint8_t *) malloc (size? size: 1);
    assert (data);
    protobuf_c_message_pack (body, data);
    if (self->body)
        sodium_memzero (self->body, self->body_size);
    free (self->body);
    self->body = data;
    self->body_size = size;
    self->has_body = true;
}

//  --------------------------------------------------------------------------
//  Set the body from JSON in the type's schema; 0 or -1 with kp_msg_error

int
kp_msg_set_body_json (kp_msg_t *self, const char *json)
{
    assert (self);
    assert (json);
    const ProtobufCMessageDescriptor *desc = kp_msg_body_descriptor (self);
    if (!desc) {
        s_set_error (self, "no body schema for this message");
        return -1;
    }
    char *error = NULL;
    ProtobufCMessage *body = kp_json_to_message (desc, json, &error);
    if (!body) {
        s_set_error (self, "body (%s): %s", desc->short_name,
                     error? error: "not valid JSON");
        zstr_free (&error);
        return -1;
    }
    const char *reason = kp_validate_body (body, true);
    if (!reason && protobuf_c_message_get_packed_size (body) == 0)
        reason = "body is empty";   //  the broker refuses an empty body
    if (reason) {
        s_set_error (self, "body (%s): %s", desc->short_name, reason);
        protobuf_c_message_free_unpacked (body, NULL);
        return -1;
    }
    s_body_store (self, body);
    protobuf_c_message_free_unpacked (body, NULL);
    return 0;
}

//  --------------------------------------------------------------------------
//  Set the body as packed protobuf bytes (checked when sent)

void
kp_msg_set_body (kp_msg_t *self, const uint8_t *data, size_t size)
{
    assert (self);
    assert (data || size == 0);
    uint8_t *copy = (uint8_t *) malloc (size? size: 1);
    assert (copy);
    if (size)
        memcpy (copy, data, size);
    if (self->body)
        sodium_memzero (self->body, self->body_size);
    free (self->body);
    self->body = copy;
    self->body_size = size;
    self->has_body = true;
}

//  --------------------------------------------------------------------------
//  Decode hex into out, keeping out unchanged on error
static int
s_hex_field (kp_msg_t *self, const char *what, const char *text,
             uint8_t *out, size_t size)
{
    uint8_t decoded [KP_HASH_SIZE];
    assert (size <= sizeof decoded);
    if (!text || kp_hex_decode (text, decoded, size) != 0) {
        s_set_error (self, "%s must be %zu hex digits", what, size * 2);
        return -1;
    }
    memcpy (out, decoded, size);
    return 0;
}

//  --------------------------------------------------------------------------
//  Set the message id (32 hex digits); 0 or -1

int
kp_msg_set_id (kp_msg_t *self, const char *id_hex)
{
    assert (self);
    if (s_hex_field (self, "id", id_hex, self->id, KP_ID_SIZE))
        return -1;
    self->has_id = true;
    char *hex = kp_hex_encode (self->id, KP_ID_SIZE);
    memcpy (self->id_hex, hex, sizeof self->id_hex);
    free (hex);
    if (!self->is_status)
        s_set_string (&self->key, self->id_hex);
    return 0;
}

//  --------------------------------------------------------------------------
//  Set the reference to an earlier message (32 hex digits); 0 or -1

int
kp_msg_set_reference (kp_msg_t *self, const char *id_hex)
{
    assert (self);
    if (s_hex_field (self, "reference", id_hex, self->reference, KP_ID_SIZE))
        return -1;
    self->has_reference = true;
    char *hex = kp_hex_encode (self->reference, KP_ID_SIZE);
    memcpy (self->reference_hex, hex, sizeof self->reference_hex);
    free (hex);
    return 0;
}

//  --------------------------------------------------------------------------
//  Set the subject pseudonym (64 hex digits); 0 or -1

int
kp_msg_set_subject (kp_msg_t *self, const char *subject_hex)
{
    assert (self);
    if (s_hex_field (self, "subject", subject_hex, self->subject, KP_HASH_SIZE))
        return -1;
    self->has_subject = true;
    return 0;
}

//  --------------------------------------------------------------------------
//  Envelope string setters; NULL clears

void
kp_msg_set_purpose (kp_msg_t *self, const char *purpose)
{
    assert (self);
    s_set_string (&self->purpose, purpose);
}

void
kp_msg_set_acting_user (kp_msg_t *self, const char *user)
{
    assert (self);
    s_set_string (&self->acting_user, user);
}

void
kp_msg_set_on_behalf_of (kp_msg_t *self, const char *on_behalf_of)
{
    assert (self);
    s_set_string (&self->on_behalf_of, on_behalf_of);
}

//  --------------------------------------------------------------------------
//  Set expires-at, UTC ms since the epoch; 0 = none

void
kp_msg_set_expires_at (kp_msg_t *self, int64_t expires_at_ms)
{
    assert (self);
    self->expires_at_ms = expires_at_ms;
}

//  --------------------------------------------------------------------------
//  The last setter error, or ""

const char *
kp_msg_error (kp_msg_t *self)
{
    assert (self);
    return self->error? self->error: "";
}

//  --------------------------------------------------------------------------
//  True if every byte of text is printable (no control characters)
static bool
s_printable (const char *text)
{
    for (const unsigned char *cursor = (const unsigned char *) text; *cursor; cursor++)
        if (*cursor < 0x20 || *cursor == 0x7F)
            return false;
    return true;
}

//  --------------------------------------------------------------------------
//  Prepare for Submit: id, envelope checks, body checks, body hash

int
kp_msg_seal (kp_msg_t *self)
{
    assert (self);
    assert (!self->is_status);
    if (sodium_init () < 0) {
        s_set_error (self, "libsodium cannot start");
        return -1;
    }
    if (!*self->recipient || strlen (self->recipient) > S_RECIPIENT_MAX
    ||  !s_printable (self->recipient)) {
        s_set_error (self, "recipient must be an address like municipality:GM0153");
        return -1;
    }
    if (!s_printable (self->purpose) || !s_printable (self->acting_user)
    ||  !s_printable (self->on_behalf_of)) {
        s_set_error (self, "purpose, user and on-behalf-of must be one line");
        return -1;
    }
    if (!self->has_body) {
        s_set_error (self, "no body set");
        return -1;
    }
    if (self->body_size == 0) {
        s_set_error (self, "body is empty");
        return -1;
    }
    if (self->body_size > UINT32_MAX) {
        s_set_error (self, "body is too large");
        return -1;
    }
    const ProtobufCMessageDescriptor *desc = kp_msg_body_descriptor (self);
    assert (desc);              //  kp_msg_new accepts known types only
    const char *reason = NULL;
    ProtobufCMessage *body = kp_validate_unpack (desc, self->body, self->body_size,
                                                 &reason);
    if (!body) {
        s_set_error (self, "body (%s): %s", desc->short_name, reason);
        return -1;
    }
    //  A school notification is for one school day: overdue at 07:30 and
    //  over at its end, Amsterdam time (the broker warns, expires, deletes)
    if (self->type == KP__WIRE__MESSAGE_TYPE__SCHOOL_NOTIFICATION) {
        const ProtobufCFieldDescriptor *field =
            protobuf_c_message_descriptor_get_field_by_name (desc, "school_day");
        assert (field && field->type == PROTOBUF_C_TYPE_STRING);
        const char *school_day = *(char *const *) ((const char *) body + field->offset);
        int64_t due_at_ms = 0, ends_at_ms = 0;
        int rc = kp_validate_school_day_times (school_day, &due_at_ms, &ends_at_ms);
        assert (rc == 0);           //  the rules checked the date
        self->due_at_ms = due_at_ms;
        if (self->expires_at_ms == 0 || self->expires_at_ms > ends_at_ms)
            self->expires_at_ms = ends_at_ms;
    }
    protobuf_c_message_free_unpacked (body, NULL);

    Kp__Wire__Envelope envelope = KP__WIRE__ENVELOPE__INIT;
    kp_msg_fill_envelope (self, &envelope);
    if (!kp_message_strings_valid (&envelope.base)) {
        s_set_error (self, "envelope strings must be valid UTF-8");
        return -1;
    }
    if (!self->has_id) {
        uint8_t id [KP_ID_SIZE];
        randombytes_buf (id, sizeof id);
        char *hex = kp_hex_encode (id, sizeof id);
        int rc = kp_msg_set_id (self, hex);
        assert (rc == 0);
        free (hex);
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Fill a Submit envelope with pointers into self

void
kp_msg_fill_envelope (kp_msg_t *self, Kp__Wire__Envelope *envelope)
{
    assert (self);
    assert (envelope);
    envelope->id.data = self->id;
    envelope->id.len = self->has_id? KP_ID_SIZE: 0;
    envelope->type = self->type;
    envelope->recipient = self->recipient;
    envelope->created_at_ms = self->created_at_ms;
    envelope->expires_at_ms = self->expires_at_ms;
    envelope->reference.data = self->reference;
    envelope->reference.len = self->has_reference? KP_ID_SIZE: 0;
    envelope->purpose = self->purpose;
    envelope->acting_user = self->acting_user;
    envelope->on_behalf_of = self->on_behalf_of;
    envelope->subject.data = self->subject;
    envelope->subject.len = self->has_subject? KP_HASH_SIZE: 0;
    envelope->due_at_ms = self->due_at_ms;
}

//  --------------------------------------------------------------------------
//  Make a received message from a Deliver; NULL and a reason if refused

const char *
kp_msg_deliver_check (const Kp__Wire__Deliver *deliver)
{
    assert (deliver);
    const Kp__Wire__Envelope *envelope = deliver->envelope;
    if (!envelope || envelope->id.len != KP_ID_SIZE)
        return "envelope has no valid message id";
    if (!kp_type_name (envelope->type))
        return "unknown message type";
    if ((envelope->reference.len != 0 && envelope->reference.len != KP_ID_SIZE)
    ||  (envelope->subject.len != 0 && envelope->subject.len != KP_HASH_SIZE))
        return "envelope has a bad reference or subject";
    //  The broker never reads the body; check it is what the sender hashed
    if (sodium_init () < 0)
        return "libsodium cannot start";
    uint8_t hash [KP_HASH_SIZE];
    crypto_hash_sha256 (hash, deliver->body.data, deliver->body.len);
    if (envelope->body_length != deliver->body.len
    ||  envelope->body_hash.len != KP_HASH_SIZE
    ||  sodium_memcmp (hash, envelope->body_hash.data, KP_HASH_SIZE) != 0)
        return "body hash mismatch";
    return NULL;
}

kp_msg_t *
kp_msg_new_delivered (const Kp__Wire__Deliver *deliver, const uint8_t *body,
                      size_t body_size, const char **reason_p)
{
    assert (deliver);
    assert (body || body_size == 0);
    assert (reason_p);
    const char *fault = kp_msg_deliver_check (deliver);
    if (fault) {
        *reason_p = fault;
        return NULL;
    }
    const Kp__Wire__Envelope *envelope = deliver->envelope;
    uint8_t hash [KP_HASH_SIZE];
    crypto_hash_sha256 (hash, deliver->body.data, deliver->body.len);
    kp_msg_t *self = s_msg_alloc ();
    self->received = true;
    self->seq = deliver->seq;
    self->attempt = deliver->attempt;
    self->type = envelope->type;
    char *id_hex = kp_hex_encode (envelope->id.data, KP_ID_SIZE);
    int rc = kp_msg_set_id (self, id_hex);
    assert (rc == 0);
    free (id_hex);
    if (envelope->reference.len) {
        char *hex = kp_hex_encode (envelope->reference.data, KP_ID_SIZE);
        rc = kp_msg_set_reference (self, hex);
        assert (rc == 0);
        free (hex);
    }
    if (envelope->subject.len) {
        memcpy (self->subject, envelope->subject.data, KP_HASH_SIZE);
        self->has_subject = true;
    }
    s_set_string (&self->recipient, envelope->recipient);
    self->created_at_ms = envelope->created_at_ms;
    self->expires_at_ms = envelope->expires_at_ms;
    s_set_string (&self->purpose, envelope->purpose);
    s_set_string (&self->acting_user, envelope->acting_user);
    s_set_string (&self->on_behalf_of, envelope->on_behalf_of);
    s_set_string (&self->sender, envelope->sender);
    self->sender_role = envelope->sender_role;
    s_set_string (&self->recipient_partner, envelope->recipient_partner);
    self->recipient_role = envelope->recipient_role;
    self->due_at_ms = envelope->due_at_ms;
    memcpy (self->body_hash, hash, KP_HASH_SIZE);
    kp_msg_set_body (self, body, body_size);

    //  Check after opening, as before sending: a body the schema or the
    //  data-minimisation rules refuse is never handed to the application
    const char *reason = NULL;
    ProtobufCMessage *opened = kp_validate_unpack (kp_msg_body_descriptor (self),
                                                   self->body, self->body_size, &reason);
    if (!opened) {
        *reason_p = reason;
        kp_msg_destroy (&self);
        return NULL;
    }
    protobuf_c_message_free_unpacked (opened, NULL);
    return self;
}

//  --------------------------------------------------------------------------
//  Make a received status report; NULL if it is not valid

kp_msg_t *
kp_msg_new_status (const Kp__Wire__Status *status)
{
    assert (status);
    const char *name = kp_status_name (status->status);
    if (status->id.len != KP_ID_SIZE || !name
    ||  status->status == KP__WIRE__STATUS_KIND__STATUS_UNSPECIFIED)
        return NULL;
    kp_msg_t *self = s_msg_alloc ();
    self->is_status = true;
    self->received = true;
    self->seq = status->seq;
    self->attempt = 1;
    self->status = status->status;
    self->status_at_ms = status->at_ms;
    self->type = status->type;
    s_set_string (&self->status_partner, status->partner);
    s_set_string (&self->status_reason, status->reason);
    if (status->receipt.len > 0) {
        self->receipt = (uint8_t *) malloc (status->receipt.len);
        assert (self->receipt);
        memcpy (self->receipt, status->receipt.data, status->receipt.len);
        self->receipt_size = status->receipt.len;
    }
    char *id_hex = kp_hex_encode (status->id.data, KP_ID_SIZE);
    int rc = kp_msg_set_id (self, id_hex);
    assert (rc == 0);
    free (id_hex);
    char *key = zsys_sprintf ("%s %s", self->id_hex, name);
    assert (key);
    zstr_free (&self->key);
    self->key = key;
    return self;
}

//  --------------------------------------------------------------------------
//  Getters

bool
kp_msg_is_status (kp_msg_t *self)
{
    assert (self);
    return self->is_status;
}

const char *
kp_msg_id (kp_msg_t *self)
{
    assert (self);
    return self->id_hex;
}

const char *
kp_msg_type (kp_msg_t *self)
{
    assert (self);
    const char *name = kp_type_name (self->type);
    return name? name: "";
}

const char *
kp_msg_sender (kp_msg_t *self)
{
    assert (self);
    return self->is_status? self->status_partner: self->sender;
}

const char *
kp_msg_sender_role (kp_msg_t *self)
{
    assert (self);
    const char *name = kp_role_name (self->sender_role);
    return name? name: "";
}

const char *
kp_msg_recipient (kp_msg_t *self)
{
    assert (self);
    return self->recipient;
}

const char *
kp_msg_reference (kp_msg_t *self)
{
    assert (self);
    return self->reference_hex;
}

const char *
kp_msg_status (kp_msg_t *self)
{
    assert (self);
    const char *name = self->is_status? kp_status_name (self->status): NULL;
    return name? name: "";
}

const uint8_t *
kp_msg_receipt (kp_msg_t *self, size_t *size_p)
{
    assert (self);
    assert (size_p);
    *size_p = self->receipt_size;
    return self->receipt;
}

bool
kp_msg_receipt_verified (kp_msg_t *self)
{
    assert (self);
    return self->receipt_verified;
}

const uint8_t *
kp_msg_body (kp_msg_t *self, size_t *size_p)
{
    assert (self);
    assert (size_p);
    *size_p = self->body_size;
    return self->body;
}

//  --------------------------------------------------------------------------
//  ISO 8601 UTC with milliseconds; caller frees

char *
kp_msg_iso_time (int64_t ms)
{
    int64_t seconds = ms / 1000;
    int64_t millis = ms % 1000;
    if (millis < 0) {
        millis += 1000;
        seconds -= 1;
    }
    time_t when = (time_t) seconds;
    struct tm parts;
    char text [64];
    if (!gmtime_r (&when, &parts)
    ||  strftime (text, sizeof text, "%Y-%m-%dT%H:%M:%S", &parts) == 0)
        return strdup ("1970-01-01T00:00:00.000Z");
    return zsys_sprintf ("%s.%03dZ", text, (int) millis);
}

//  --------------------------------------------------------------------------
//  A tiny JSON writer for the envelope around kp_json's body output

static void
s_put_string (FILE *stream, const char *text)
{
    fputc ('"', stream);
    for (const unsigned char *cursor = (const unsigned char *) text; *cursor; cursor++) {
        if (*cursor == '"' || *cursor == '\\')
            fprintf (stream, "\\%c", *cursor);
        else if (*cursor == '\n')
            fputs ("\\n", stream);
        else if (*cursor == '\r')
            fputs ("\\r", stream);
        else if (*cursor == '\t')
            fputs ("\\t", stream);
        else if (*cursor < 0x20 || *cursor == 0x7F)
            fprintf (stream, "\\u%04x", *cursor);
        else
            fputc (*cursor, stream);
    }
    fputc ('"', stream);
}

//  --------------------------------------------------------------------------
//  Write ,"name":"value"
static void
s_put_member (FILE *stream, const char *name, const char *value)
{
    fprintf (stream, ",\"%s\":", name);
    s_put_string (stream, value);
}

//  --------------------------------------------------------------------------
//  Write ,"name":"ISO time"
static void
s_put_time (FILE *stream, const char *name, int64_t ms)
{
    char *text = kp_msg_iso_time (ms);
    s_put_member (stream, name, text);
    free (text);
}

//  --------------------------------------------------------------------------
//  The message or status as one line of JSON; caller frees. NULL if the
//  body does not decode with its schema.

char *
kp_msg_json (kp_msg_t *self)
{
    assert (self);
    char *body_json = NULL;
    if (!self->is_status && self->has_body) {
        const char *reason = NULL;
        ProtobufCMessage *body = kp_validate_unpack (kp_msg_body_descriptor (self),
                                                self->body, self->body_size, &reason);
        if (!body) {
            s_set_error (self, "body: %s", reason);
            return NULL;
        }
        body_json = kp_json_from_message (body);
        protobuf_c_message_free_unpacked (body, NULL);
        if (!body_json) {
            s_set_error (self, "body cannot be rendered as JSON");
            return NULL;
        }
    }
    char *text = NULL;
    size_t size = 0;
    FILE *stream = open_memstream (&text, &size);
    assert (stream);
    if (self->is_status) {
        fputs ("{\"status\":", stream);
        s_put_string (stream, kp_msg_status (self));
        s_put_member (stream, "id", self->id_hex);
        if (*kp_msg_type (self))
            s_put_member (stream, "type", kp_msg_type (self));
        s_put_member (stream, "partner", self->status_partner);
        s_put_time (stream, "at", self->status_at_ms);
        if (*self->status_reason)
            s_put_member (stream, "reason", self->status_reason);
        if (self->receipt) {
            size_t text_size = sodium_base64_ENCODED_LEN (self->receipt_size,
                                                          sodium_base64_VARIANT_ORIGINAL);
            char *base64 = (char *) malloc (text_size);
            assert (base64);
            sodium_bin2base64 (base64, text_size, self->receipt, self->receipt_size,
                               sodium_base64_VARIANT_ORIGINAL);
            s_put_member (stream, "receipt", base64);
            fprintf (stream, ",\"receipt_verified\":%s",
                     self->receipt_verified? "true": "false");
            free (base64);
        }
    }
    else {
        fputs ("{\"id\":", stream);
        s_put_string (stream, self->id_hex);
        s_put_member (stream, "type", kp_msg_type (self));
        s_put_member (stream, "sender", self->sender);
        s_put_member (stream, "sender_role", kp_msg_sender_role (self));
        s_put_member (stream, "recipient", self->recipient);
        s_put_member (stream, "recipient_partner", self->recipient_partner);
        const char *recipient_role = kp_role_name (self->recipient_role);
        s_put_member (stream, "recipient_role", recipient_role? recipient_role: "");
        s_put_time (stream, "created_at", self->created_at_ms);
        if (self->expires_at_ms)
            s_put_time (stream, "expires_at", self->expires_at_ms);
        if (self->has_reference)
            s_put_member (stream, "reference", self->reference_hex);
        if (*self->purpose)
            s_put_member (stream, "purpose", self->purpose);
        if (*self->acting_user)
            s_put_member (stream, "acting_user", self->acting_user);
        if (*self->on_behalf_of)
            s_put_member (stream, "on_behalf_of", self->on_behalf_of);
        if (self->has_subject) {
            char *subject = kp_hex_encode (self->subject, KP_HASH_SIZE);
            s_put_member (stream, "subject", subject);
            free (subject);
        }
        fprintf (stream, ",\"attempt\":%u", self->attempt);
        fprintf (stream, ",\"body\":%s", body_json? body_json: "null");
    }
    fputc ('}', stream);
    fclose (stream);
    if (body_json) {
        sodium_memzero (body_json, strlen (body_json));
        free (body_json);
    }
    return text;
}

//  --------------------------------------------------------------------------
//  A receipt as one line of JSON; caller frees

char *
kp_receipt_json (const kp_receipt_t *receipt)
{
    assert (receipt);
    char *text = NULL;
    size_t size = 0;
    FILE *stream = open_memstream (&text, &size);
    assert (stream);
    fputs ("{\"id\":", stream);
    s_put_string (stream, receipt->id);
    fprintf (stream, ",\"seq\":%" PRIu64, receipt->seq);
    s_put_time (stream, "accepted_at", receipt->accepted_at_ms);
    s_put_member (stream, "recipient_partner", receipt->recipient_partner);
    s_put_member (stream, "recipient_role", receipt->recipient_role);
    fprintf (stream, ",\"duplicate\":%s}", receipt->duplicate? "true": "false");
    fclose (stream);
    return text;
}
