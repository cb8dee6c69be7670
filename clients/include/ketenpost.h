/*  =========================================================================
    ketenpost.h - the ketenpost client library (libketenpost)

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    libketenpost connects a partner's system to its region's ketenpostd over
    CurveZMQ, sends messages (signals, referrals, school notifications,
    feedback) and receives the messages and status reports addressed to it.
    A kp_client_t is synchronous and belongs to one thread.

    Sending, with the body given as JSON in the .proto's field names:

        kp_client_t *client = kp_client_new ("tcp://127.0.0.1:7700",
                                             "region/broker", "police-secret",
                                             5000);
        if (!client) ... the library printed one line on stderr
        if (kp_client_set_region_key (client, "region/registration.pub")) ...
        kp_msg_t *msg = kp_msg_new ("signal", "municipality:GM0153");
        if (kp_msg_set_body_json (msg, "{\"kind\":\"MELDING\", ...}")) ...
        kp_receipt_t receipt;
        if (kp_client_send (client, msg, &receipt) == 0)
            printf ("accepted as %s, log index %llu\n", receipt.id, ...);
        else
            printf ("refused: %s %s\n", receipt.error, receipt.reason);
        kp_msg_destroy (&msg);
        kp_client_destroy (&client);

    Receiving: the library opens each body, checks the sender's vouched
    signature and the body's rules, and refuses (nacks) what fails; it
    acknowledges a message only when you call kp_client_ack, after you
    handled it safely, and the ack carries your signed receipt. With a
    state directory set, it remembers what you acknowledged across
    restarts, so that you never see one message twice even if the broker
    redelivers it:

        kp_client_set_state_dir (client, "/var/lib/school-inbox");
        kp_client_receive (client, 16);        //  credit window
        while (running) {
            kp_msg_t *msg = kp_client_recv (client, 1000);
            if (!msg) continue;                //  timeout
            if (kp_msg_is_status (msg)) ...    //  a status of one we sent
            else ... handle kp_msg_body_json (msg) ...
            kp_client_ack (client, msg);
            kp_msg_destroy (&msg);
        }
@end
*/
#ifndef KETENPOST_H_INCLUDED
#define KETENPOST_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _kp_client_t kp_client_t;
typedef struct _kp_msg_t kp_msg_t;

//  The outcome of kp_client_send. On success error is "" and the rest is
//  the broker's receipt; on refusal error is the code name ("FORBIDDEN",
//  "UNKNOWN_ADDRESS", ...) and reason one line for humans; on a transport
//  failure error is "TRANSPORT"; if the library refuses the message before
//  sending (no body, body breaks its schema or the data-minimisation rules,
//  no region key or no sealing keys) error is "INVALID"; if the directory
//  named keys the region key does not vouch for, "UNTRUSTED". id is set
//  whenever the message got one, so that a caller can resend it with the
//  same id after a TRANSPORT failure.
typedef struct {
    char id [33];                   //  message id, hex
    uint64_t seq;                   //  log index of the accepted record
    int64_t accepted_at_ms;         //  broker clock, UTC
    char recipient_partner [65];    //  the partner the address resolved to
    char recipient_role [16];       //  its role
    bool duplicate;                 //  this id was accepted before
    char error [24];                //  "" on success
    char reason [256];              //  why, when refused
} kp_receipt_t;

//  --------------------------------------------------------------------------
//  Client

//  Connect to the broker at endpoint. broker_cert is the path of the
//  broker's public cert, cert the path of our own secret cert (the file
//  kp-keys handed out). Waits up to timeout_ms for the broker's welcome.
//  Returns NULL on failure, with one line on stderr saying why (the secret
//  key is never printed).
kp_client_t *
    kp_client_new (const char *endpoint, const char *broker_cert,
                   const char *cert, int timeout_ms);

//  Close the connection. Idempotent, nulls *self_p.
void
    kp_client_destroy (kp_client_t **self_p);

//  Our partner id and role as the broker knows them (from our key).
const char *
    kp_client_partner (kp_client_t *self);
const char *
    kp_client_role (kp_client_t *self);

//  Why the broker will no longer serve this client, as "CODE: reason" (our
//  key was revoked while we were connected), or "" while it will. Once set,
//  kp_client_recv returns NULL at once and kp_client_send fails with CODE.
const char *
    kp_client_failure (kp_client_t *self);

//  Remember acknowledged message ids in dir (created if missing), so that
//  redeliveries after a crash or reconnect are never handed out again.
//  The journal is dir/journal, one line per acknowledged item ("<hex id>"
//  or "<hex id> <STATUS>"), synced before each Ack; one process at a time
//  may use dir (it is locked). Call before kp_client_receive. Returns 0, or
//  -1 with one line on stderr.
int
    kp_client_set_state_dir (kp_client_t *self, const char *dir);

//  Trust the partner keys that the region's registration key vouches for:
//  path is the region's registration.pub (64 hex digits), which the
//  operator hands out out of band (never take it from the broker). Needed
//  to send (recipients' sealing keys are checked with it) and to receive
//  (senders' signing keys are): without it sending fails with "INVALID"
//  and every delivery is refused. Returns 0, or -1 with one line on
//  stderr (unreadable, or our cert is not of the region it vouches for).
int
    kp_client_set_region_key (kp_client_t *self, const char *path);

//  Set how long send waits for a receipt before it resends (same id), and
//  how many tries it makes. Defaults: 5000 ms, 3 tries.
void
    kp_client_set_send_timeout (kp_client_t *self, int timeout_ms, int tries);

//  Send msg and wait for its receipt or refusal. Sets the message id first
//  if it has none. Asks the broker's directory who receives it (cached 10
//  minutes), checks that recipient's keys with the region key, signs the
//  body with our key and seals it to the recipient (and to the region's
//  auditors where its config says so for this type), bound to the
//  envelope; the broker only ever sees the sealed bytes. A school
//  notification gets due_at 07:30 and expires_at 18:00 (Amsterdam time)
//  of its school day. Fills *receipt. Returns 0 if accepted, -1 otherwise.
int
    kp_client_send (kp_client_t *self, kp_msg_t *msg, kp_receipt_t *receipt);

//  Start receiving, allowing up to credit unacknowledged deliveries in
//  flight. Returns 0 or -1.
int
    kp_client_receive (kp_client_t *self, unsigned credit);

//  Wait up to timeout_ms for the next message or status report (-1 = for
//  ever). Returns NULL on timeout or interrupt. Caller owns the result.
//  Status reports of messages we sent arrive here too.
kp_msg_t *
    kp_client_recv (kp_client_t *self, int timeout_ms);

//  Acknowledge msg (one kp_client_recv returned): handled safely, never
//  hand it out again. Returns 0, or -1 if the journal cannot be written
//  (one line on stderr; the message was not acknowledged and will come
//  again in a later run).
int
    kp_client_ack (kp_client_t *self, kp_msg_t *msg);

//  Refuse msg with a one-line reason; the sender gets a REFUSED status.
//  Returns 0, or -1 for a status report (those can only be acknowledged).
int
    kp_client_nack (kp_client_t *self, kp_msg_t *msg, const char *reason);

//  --------------------------------------------------------------------------
//  Messages

//  New outgoing message of type ("signal", "referral",
//  "school_notification", "feedback") to recipient ("municipality:GM0153",
//  "school:12AB00", "partner:ID"). NULL if type is unknown.
kp_msg_t *
    kp_msg_new (const char *type, const char *recipient);

//  Destroy; idempotent, nulls *self_p.
void
    kp_msg_destroy (kp_msg_t **self_p);

//  Set the body from JSON in the type's schema (proto/kp_body.proto). For a
//  school notification to a school: SchoolNotification; to anyone else:
//  SchoolNotificationRequest. Also checks the data-minimisation rules: a
//  school notification needs child_name, date_of_birth and school_day
//  (YYYY-MM-DD); to a school, code_words is "Handle with Care" (filled in
//  if absent); feedback needs a status; free text is size-limited. The same
//  checks run on the packed body when it is sent and when it is received.
//  Returns 0, or -1 and sets kp_msg_error.
int
    kp_msg_set_body_json (kp_msg_t *self, const char *json);

//  Set the body as packed protobuf bytes of the type's schema.
void
    kp_msg_set_body (kp_msg_t *self, const uint8_t *data, size_t size);

//  Envelope setters. Hex ids: 32 hex digits; subject: 64. Return 0 or -1.
int
    kp_msg_set_id (kp_msg_t *self, const char *id_hex);
int
    kp_msg_set_reference (kp_msg_t *self, const char *id_hex);
int
    kp_msg_set_subject (kp_msg_t *self, const char *subject_hex);
void
    kp_msg_set_purpose (kp_msg_t *self, const char *purpose);
void
    kp_msg_set_acting_user (kp_msg_t *self, const char *user);
void
    kp_msg_set_on_behalf_of (kp_msg_t *self, const char *on_behalf_of);
void
    kp_msg_set_expires_at (kp_msg_t *self, int64_t expires_at_ms);

//  The last error of a kp_msg_set_* call, one line.
const char *
    kp_msg_error (kp_msg_t *self);

//  Getters. Strings are owned by msg. For a status report, id is the
//  message it is about, sender the partner the report is about (who
//  acknowledged, read or refused it), type and recipient "" (the Status
//  command does not carry them).
bool
    kp_msg_is_status (kp_msg_t *self);
const char *
    kp_msg_id (kp_msg_t *self);             //  hex
const char *
    kp_msg_type (kp_msg_t *self);
const char *
    kp_msg_sender (kp_msg_t *self);         //  partner id, from its key
const char *
    kp_msg_sender_role (kp_msg_t *self);
const char *
    kp_msg_recipient (kp_msg_t *self);      //  the address it was sent to
const char *
    kp_msg_reference (kp_msg_t *self);      //  hex or ""
const char *
    kp_msg_status (kp_msg_t *self);         //  "DELIVERED", ... or ""
const uint8_t *
    kp_msg_body (kp_msg_t *self, size_t *size_p);

//  For a DELIVERED status: the recipient's signed receipt (NULL if none
//  came), and whether its signature verified with the recipient's vouched
//  signing key, for this message (and, if this client sent it, for the
//  exact sealed body). The receipt is the proof that the recipient took
//  the message; its layout is in docs/PROTOCOL.md, "Sealed bodies".
const uint8_t *
    kp_msg_receipt (kp_msg_t *self, size_t *size_p);
bool
    kp_msg_receipt_verified (kp_msg_t *self);

//  The whole message as one line of JSON (envelope fields + "body" decoded
//  with the type's schema):
//      {"id":hex,"type":..,"sender":..,"sender_role":..,"recipient":address,
//       "recipient_partner":..,"recipient_role":..,"created_at":ISO 8601,
//       ["expires_at","reference","purpose","acting_user","on_behalf_of",
//       "subject" when set,] "attempt":n,"body":{..}}
//  or a status report: {"status":"DELIVERED","id":hex,"partner":..,
//  "at":ISO 8601[,"reason":..][,"receipt":base64,"receipt_verified":bool]}.
//  Times are UTC with milliseconds. Returns NULL if the body does not
//  decode (see kp_msg_error). Caller frees.
char *
    kp_msg_json (kp_msg_t *self);

//  A receipt as one JSON object: {"id":..,"seq":..,"accepted_at":ISO 8601,
//  "recipient_partner":..,"recipient_role":..,"duplicate":false}. Caller
//  frees.
char *
    kp_receipt_json (const kp_receipt_t *receipt);

#ifdef __cplusplus
}
#endif

#endif
