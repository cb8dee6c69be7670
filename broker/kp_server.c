/*  =========================================================================
    kp_server - the broker actor: ROUTER, CURVE, ZAP, dispatch loop

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    One thread does everything, so nothing is shared and nothing locks:
    it answers ZAP requests, reads commands, appends records, commits them
    as a group, sends receipts, and delivers. A loop turn is:

    1.  read every command waiting (up to a batch), appending records;
    2.  if a receipt or a reply waits for it: fdatasync the log and the
        body store, at the same time (group commit: one sync each for the
        whole batch); other records (DELIVERED_TO, acks, ...) wait for the
        next such sync, or the one at every timer tick (s_commit);
    3.  only then send the receipts of the batch, and deliver: an item is
        handed out only when the record that created it is durable, so a
        delivery tag (the record's index) can never be reused after a crash;
    4.  timers: ack timeouts, expiry, idle sessions, registry changes.
@end
*/
#include "kp_server.h"
#include "kp_accepted.h"
#include "kp_log.h"
#include "kp_notary.h"
#include "kp_peek.h"
#include "kp_policy.h"
#include "kp_queue.h"
#include "kp_registry.h"
#include "kp_sha256.h"
#include <sodium.h>

#define S_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define S_ZAP_DOMAIN "ketenpost"
#define S_ZMQ_ZAP_ENFORCE_DOMAIN 93     //  draft option missing from zmq.h
#define S_BATCH 1024                    //  commands read per loop turn
#define S_TICK 100                      //  msec between timer runs
#define S_REGISTRY_CHECK 500            //  msec between registry stat checks
#define S_AUTH_FAILURE_QUIET 60000      //  msec between records per bad key
#define S_CURVE_OVERHEAD 64             //  bytes CURVE adds to a frame
#define S_CHECKPOINT_IVL 1000           //  msec, least time between checkpoints
#define S_AUDIT_ENTRIES 1000            //  most records in one AuditReply

//  A ROUTER routing id (1 to 255 bytes): the key of a session
typedef struct {
    uint8_t size;
    uint8_t data [255];
} s_routing_t;

//  A connected client: one routing id
typedef struct {
    s_routing_t routing;            //  its ROUTER routing id, the sessions key
    char *partner;                  //  partner id, from the ZAP User-Id
    uint32_t credit;                //  deliveries allowed in flight
    uint32_t in_flight;             //  deliveries sent, not yet acked
    int64_t last_seen;              //  monotonic ms of the last command
} s_session_t;

//  A message with a due time: OVERDUE if not settled by then
typedef struct {
    uint32_t message;               //  kp_accepted index
    int64_t due_at_ms;
} s_due_t;

//  A reply waiting for the group commit
typedef struct {
    void *session;                  //  s_session_t; NULL once it closed
    zmq_msg_t message;              //  packed command
} s_reply_t;

typedef struct {
    zsock_t *pipe;                  //  actor pipe
    zsock_t *router;                //  the clients' socket
    void *router_handle;            //  its raw libzmq handle
    zsock_t *zap;                   //  ZAP handler (REP)
    zpoller_t *poller;
    const kp_config_t *config;      //  borrowed from main
    char *endpoint;                 //  bound endpoint, "" if not started
    kp_registry_t *registry;        //  live partner registry
    kp_log_t *log;                  //  the audit log: the store
    kp_log_t *bodies;               //  the body store
    kp_notary_t *notary;            //  Merkle tree and checkpoints
    kp_accepted_t *accepted;        //  every accepted message
    kp_queue_t *queue;              //  delivery state
    zhashx_t *sessions;             //  s_routing_t -> s_session_t
    s_due_t *due;                   //  messages with a due time to watch
    size_t due_size, due_limit;
    uint32_t *deletions;            //  replay: messages whose body goes
    size_t deletions_size, deletions_limit;
    uint32_t *lost;                 //  replay: messages whose body a crash lost
    size_t lost_size, lost_limit;
    uint64_t bodies_end;            //  end of the body store when opened
    zhashx_t *partners_seen;        //  id -> public key, as last logged
    zhashx_t *auth_failures;        //  hex key hash -> last record time
    s_reply_t *replies;             //  waiting for the commit, in order
    size_t replies_size, replies_limit;
    kp_arena_t arena;               //  what one command or delivery unpacks
    uint8_t *pack_buffer;           //  reused for packing records
    size_t pack_limit;
    bool fatal;                     //  the log failed: stop everything
    bool terminated;                //  $TERM received
    int send_error;                 //  errno of the last failed send
    int64_t next_tick;              //  monotonic ms of the next timer run
    int64_t next_registry_check;
    int64_t next_checkpoint;        //  monotonic ms: no checkpoint before
} self_t;

static void s_fatal (self_t *self, const char *what);

//  --------------------------------------------------------------------------
//  Small destructors for the containers

static void
s_session_destroy (void **item_p)
{
    s_session_t *session = (s_session_t *) *item_p;
    if (session) {
        free (session->partner);
        free (session);
        *item_p = NULL;
    }
}

//  Sessions are found by their routing id bytes (FNV-1a), with no
//  allocation per command
static size_t
s_routing_hash (const void *key)
{
    const s_routing_t *routing = (const s_routing_t *) key;
    uint64_t hash = 0xcbf29ce484222325ULL;
    for (size_t index = 0; index < routing->size; index++)
        hash = (hash ^ routing->data [index]) * 0x100000001b3ULL;
    return (size_t) hash;
}

static int
s_routing_compare (const void *left, const void *right)
{
    const s_routing_t *a = (const s_routing_t *) left, *b = (const s_routing_t *) right;
    if (a->size != b->size)
        return a->size < b->size? -1: 1;
    return memcmp (a->data, b->data, a->size);
}

static void
s_free_item (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

//  --------------------------------------------------------------------------
//  Append one record to the log; fills seq, time. Returns its seq and sets
//  *pos_p; on a write error the broker goes fatal and returns UINT64_MAX.

static uint64_t
s_record_append (self_t *self, Kp__Wire__Record *record, uint64_t *pos_p)
{
    if (self->fatal)
        return UINT64_MAX;
    record->seq = kp_log_size (self->log);
    if (record->time_ms == 0)
        record->time_ms = kp_now_ms ();
    size_t size = kp__wire__record__get_packed_size (record);
    if (size > self->pack_limit) {
        free (self->pack_buffer);
        self->pack_limit = size * 2;
        self->pack_buffer = (uint8_t *) malloc (self->pack_limit);
        assert (self->pack_buffer);
    }
    kp__wire__record__pack (record, self->pack_buffer);
    uint64_t seq, pos;
    if (kp_log_append (self->log, self->pack_buffer, size, &seq, &pos)) {
        s_fatal (self, "append to the log failed");
        return UINT64_MAX;
    }
    if (kp_notary_append (self->notary, self->pack_buffer, size)) {
        s_fatal (self, "append to the Merkle tree failed");
        return UINT64_MAX;
    }
    assert (seq == record->seq);
    if (pos_p)
        *pos_p = pos;
    return seq;
}

//  Read and unpack the record at pos, into the arena; the caller may give
//  it back early with s_record_free. A record the log wrote and cannot give
//  back means the disk failed: the broker goes fatal, and NULL comes back.
static Kp__Wire__Record *
s_record_read (self_t *self, uint64_t pos)
{
    size_t size;
    const uint8_t *data = kp_log_read (self->log, pos, &size);
    Kp__Wire__Record *record = data? kp__wire__record__unpack (&self->arena.allocator,
                                                               size, data): NULL;
    if (!record)
        s_fatal (self, "cannot read back a record of the log");
    return record;
}

static void
s_record_free (self_t *self, Kp__Wire__Record *record)
{
    kp__wire__record__free_unpacked (record, &self->arena.allocator);
}

//  Start a record about the message that original (its ACCEPTED record,
//  or a record about it) names, and names it the same way
static void
s_record_about (Kp__Wire__Record *record, Kp__Wire__EventKind event,
                const Kp__Wire__Record *original, uint64_t ref_seq)
{
    kp__wire__record__init (record);
    record->event = event;
    record->message_id = original->message_id;
    record->type = original->type;
    record->sender = original->sender;
    record->sender_role = original->sender_role;
    record->recipient = original->recipient;
    record->recipient_role = original->recipient_role;
    record->ref_seq = ref_seq;
}

//  --------------------------------------------------------------------------
//  The log failed: stop accepting, tell main, which exits 1. After an fsync
//  error the kernel may have dropped dirty pages: carrying on could ack data
//  that is not on disk. Recovery is a restart, which replays the log.

static void
s_fatal (self_t *self, const char *what)
{
    if (self->fatal)
        return;
    zsys_error ("kp_server: %s; stopping so that nothing unrecorded is acknowledged", what);
    self->fatal = true;
    zstr_send (self->pipe, "FATAL");
}

//  --------------------------------------------------------------------------
//  Send a packed command (which the call takes) to a session. Returns 0, or
//  -1 if the peer is gone or its pipe is full (the caller keeps the item
//  queued).
static int
s_send (self_t *self, s_session_t *session, zmq_msg_t *message)
{
    if (zmq_send (self->router_handle, session->routing.data, session->routing.size,
                  ZMQ_SNDMORE | ZMQ_DONTWAIT) == -1) {
        self->send_error = zmq_errno ();
        zmq_msg_close (message);
        return -1;
    }
    //  With ROUTER_MANDATORY the first frame fails if the peer is gone; once
    //  it went, the second frame of a multipart message is always accepted.
    int rc = zmq_msg_send (message, self->router_handle, ZMQ_DONTWAIT);
    assert (rc >= 0);
    return 0;
}

//  Pack a command into a new message, with no copy after
static void
s_pack (Kp__Wire__Command *command, zmq_msg_t *message)
{
    size_t size = kp__wire__command__get_packed_size (command);
    int rc = zmq_msg_init_size (message, size);
    assert (rc == 0);
    kp__wire__command__pack (command, (uint8_t *) zmq_msg_data (message));
}

static int
s_send_command (self_t *self, s_session_t *session, Kp__Wire__Command *command)
{
    zmq_msg_t message;
    s_pack (command, &message);
    return s_send (self, session, &message);
}

//  Grow an array of width-byte elements by one; returns the new element
static void *
s_grow (void **array, size_t *size, size_t *limit, size_t width)
{
    if (*size == *limit) {
        *limit = *limit? *limit * 2: 64;
        *array = realloc (*array, *limit * width);
        assert (*array);
    }
    return (uint8_t *) *array + (*size)++ * width;
}

//  Queue a reply to go out after the group commit
static void
s_reply_later (self_t *self, s_session_t *session, Kp__Wire__Command *command)
{
    s_reply_t *reply = (s_reply_t *) s_grow ((void **) &self->replies, &self->replies_size,
                                             &self->replies_limit, sizeof (s_reply_t));
    reply->session = session;
    s_pack (command, &reply->message);
}

//  Send an Error now: refusals promise nothing durable
static void
s_send_error (self_t *self, s_session_t *session, const ProtobufCBinaryData *id,
              Kp__Wire__ErrorCode code, const char *reason)
{
    Kp__Wire__Error error = KP__WIRE__ERROR__INIT;
    if (id)
        error.id = *id;
    error.code = code;
    error.reason = (char *) reason;
    Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
    command.kind_case = KP__WIRE__COMMAND__KIND_ERROR;
    command.error = &error;
    s_send_command (self, session, &command);
}

//  --------------------------------------------------------------------------
//  Sessions

static void
s_session_requeued (const kp_item_t *item, void *arg)
{
    (void) arg;
    s_session_t *session = (s_session_t *) item->session;
    if (session && session->in_flight > 0)
        session->in_flight--;
}

//  Forget a session; its unacked deliveries go back to the queue
static void
s_session_drop (self_t *self, s_session_t *session, const char *why)
{
    kp_debug ("kp_server: session closed partner=%s why=%s", session->partner, why);
    kp_queue_requeue_session (self->queue, session->partner, session);
    for (size_t index = 0; index < self->replies_size; index++)
        if (self->replies [index].session == session)
            self->replies [index].session = NULL;
    s_routing_t routing = session->routing;
    zhashx_delete (self->sessions, &routing);
}

//  --------------------------------------------------------------------------
//  ZAP: admit only registered keys (ZMQ RFC 27)

static void
s_zap_handle (self_t *self)
{
    zmsg_t *request = zmsg_recv (self->zap);
    if (!request)
        return;
    char *version = zmsg_popstr (request);
    char *request_id = zmsg_popstr (request);
    char *domain = zmsg_popstr (request);
    char *address = zmsg_popstr (request);
    char *identity = zmsg_popstr (request);
    char *mechanism = zmsg_popstr (request);
    zframe_t *credential = zmsg_pop (request);

    const kp_partner_t *partner = NULL;
    char key_text [KP_KEY_TEXT + 1] = "";
    if (version && streq (version, "1.0") && mechanism && streq (mechanism, "CURVE")
    &&  credential && zframe_size (credential) == 32) {
        zmq_z85_encode (key_text, zframe_data (credential), 32);
        partner = kp_registry_by_key (self->registry, key_text);
    }
    zmsg_t *reply = zmsg_new ();
    zmsg_addstr (reply, "1.0");
    zmsg_addstr (reply, request_id? request_id: "");
    zmsg_addstr (reply, partner? "200": "400");
    zmsg_addstr (reply, partner? "OK": "key not registered");
    zmsg_addstr (reply, partner? partner->id: "");
    zmsg_addmem (reply, NULL, 0);
    zmsg_send (&reply, self->zap);

    if (partner)
        kp_debug ("kp_server: admitted partner=%s key=%.8s", partner->id, key_text);
    else
    if (credential && zframe_size (credential) == 32) {
        //  Audit the failure, once a minute per key, so a client that keeps
        //  reconnecting with a revoked key cannot flood the log
        uint8_t key_hash [KP_HASH_SIZE];
        crypto_hash_sha256 (key_hash, zframe_data (credential), 32);
        char *hash_text = kp_hex_encode (key_hash, sizeof key_hash);
        int64_t now = kp_mono_ms ();
        int64_t *last = (int64_t *) zhashx_lookup (self->auth_failures, hash_text);
        if (!last || *last + S_AUTH_FAILURE_QUIET <= now) {
            zsys_warning ("kp_server: partner denied key=%.8s addr=%s",
                          key_text, address? address: "");
            Kp__Wire__Record record = KP__WIRE__RECORD__INIT;
            record.event = KP__WIRE__EVENT_KIND__AUTH_FAILURE;
            record.outcome = KP__WIRE__ERROR_CODE__NOT_REGISTERED;
            record.key_hash.data = key_hash;
            record.key_hash.len = sizeof key_hash;
            s_record_append (self, &record, NULL);
            if (!last) {
                if (zhashx_size (self->auth_failures) > 10000)
                    zhashx_purge (self->auth_failures);
                last = (int64_t *) malloc (sizeof (int64_t));
                assert (last);
                zhashx_insert (self->auth_failures, hash_text, last);
            }
            *last = now;
        }
        free (hash_text);
    }
    zframe_destroy (&credential);
    zstr_free (&mechanism);
    zstr_free (&identity);
    zstr_free (&address);
    zstr_free (&domain);
    zstr_free (&request_id);
    zstr_free (&version);
    zmsg_destroy (&request);
}

//  --------------------------------------------------------------------------
//  Registry: log who was registered or revoked, drop revoked sessions

//  How the log names a partner's keys: SHA-256 of its Z85 CURVE key, and
//  SHA-256 of its packed registration (its vouched signing and sealing
//  keys), if it has one. Returns the two as "hex" or "hex:hex" (caller
//  frees), which is what partners_seen compares.
static char *
s_keys_text (const kp_partner_t *partner, uint8_t *key_hash, uint8_t *registration_hash)
{
    crypto_hash_sha256 (key_hash, (const uint8_t *) partner->public_key,
                        strlen (partner->public_key));
    char *key_text = kp_hex_encode (key_hash, KP_HASH_SIZE);
    if (!partner->registration)
        return key_text;
    size_t size = kp__wire__registration__get_packed_size (partner->registration);
    uint8_t *packed = (uint8_t *) malloc (size? size: 1);
    assert (packed);
    kp__wire__registration__pack (partner->registration, packed);
    crypto_hash_sha256 (registration_hash, packed, size);
    free (packed);
    char *registration_text = kp_hex_encode (registration_hash, KP_HASH_SIZE);
    char *text = zsys_sprintf ("%s:%s", key_text, registration_text);
    free (registration_text);
    free (key_text);
    return text;
}

static void
s_partners_sync (self_t *self)
{
    //  Revoked: seen before (with this key), gone now
    uint8_t key_hash [KP_HASH_SIZE];
    uint8_t registration_hash [KP_HASH_SIZE];
    zlistx_t *gone = zlistx_new ();
    zlistx_set_destructor (gone, s_free_item);
    for (char *seen_hash = (char *) zhashx_first (self->partners_seen); seen_hash;
         seen_hash = (char *) zhashx_next (self->partners_seen)) {
        const char *id = (const char *) zhashx_cursor (self->partners_seen);
        const kp_partner_t *partner = kp_registry_by_id (self->registry, id);
        char *hash_text = partner? s_keys_text (partner, key_hash, registration_hash): NULL;
        if (!hash_text || strcmp (hash_text, seen_hash) != 0)
            zlistx_add_end (gone, strdup (id));
        free (hash_text);
    }
    for (char *id = (char *) zlistx_first (gone); id; id = (char *) zlistx_next (gone)) {
        Kp__Wire__Record record = KP__WIRE__RECORD__INIT;
        record.event = KP__WIRE__EVENT_KIND__PARTNER_REVOKED;
        record.sender = id;
        s_record_append (self, &record, NULL);
        zhashx_delete (self->partners_seen, id);
        zsys_notice ("kp_server: partner revoked partner=%s", id);
    }
    zlistx_destroy (&gone);
    //  Registered: in the registry, not seen before
    for (const kp_partner_t *partner = kp_registry_first (self->registry); partner;
         partner = kp_registry_next (self->registry)) {
        if (zhashx_lookup (self->partners_seen, partner->id))
            continue;
        char *hash_text = s_keys_text (partner, key_hash, registration_hash);
        Kp__Wire__Record record = KP__WIRE__RECORD__INIT;
        record.event = KP__WIRE__EVENT_KIND__PARTNER_REGISTERED;
        record.sender = (char *) partner->id;
        record.sender_role = partner->role;
        record.key_hash.data = key_hash;
        record.key_hash.len = KP_HASH_SIZE;
        if (partner->registration) {
            record.body_hash.data = registration_hash;
            record.body_hash.len = KP_HASH_SIZE;
        }
        s_record_append (self, &record, NULL);
        zhashx_insert (self->partners_seen, partner->id, hash_text);
    }
    //  A revoked partner gets nothing more: close its sessions now
    zlistx_t *revoked = zlistx_new ();
    for (s_session_t *session = (s_session_t *) zhashx_first (self->sessions); session;
         session = (s_session_t *) zhashx_next (self->sessions))
        if (!kp_registry_by_id (self->registry, session->partner))
            zlistx_add_end (revoked, session);
    for (s_session_t *session = (s_session_t *) zlistx_first (revoked); session;
         session = (s_session_t *) zlistx_next (revoked))
        s_session_drop (self, session, "revoked");
    zlistx_destroy (&revoked);
}

static void
s_registry_reload (self_t *self)
{
    bool changed = false;
    if (kp_registry_reload (self->registry, &changed) == 0 && changed) {
        zsys_notice ("kp_server: registry reloaded partners=%zu",
                     kp_registry_size (self->registry));
        s_partners_sync (self);
    }
}

//  --------------------------------------------------------------------------
//  What the broker remembers of accepted messages: kp_accepted keeps the
//  little the loop needs; the rest is read back from the ACCEPTED record

//  Watch a message's due time
static void
s_due_add (self_t *self, uint32_t message, int64_t due_at_ms)
{
    s_due_t *due = (s_due_t *) s_grow ((void **) &self->due, &self->due_size,
                                       &self->due_limit, sizeof (s_due_t));
    *due = (s_due_t) { message, due_at_ms };
}

//  The accepted message with this id: its index, and its ACCEPTED record
//  read back (caller frees); KP_ACCEPTED_NONE and NULL if there is none
static uint32_t
s_accepted_find (self_t *self, const uint8_t *id, Kp__Wire__Record **record_p)
{
    *record_p = NULL;
    size_t cursor = 0;
    uint32_t index;
    while ((index = kp_accepted_candidate (self->accepted, id, &cursor))
           != KP_ACCEPTED_NONE) {
        kp_message_t *message = kp_accepted_get (self->accepted, index);
        if (message->flags & KP_MESSAGE_VOIDED)
            continue;
        Kp__Wire__Record *record = s_record_read (self, message->pos);
        if (!record)
            return KP_ACCEPTED_NONE;
        if (record->message_id.len == KP_ID_SIZE
        &&  memcmp (record->message_id.data, id, KP_ID_SIZE) == 0) {
            *record_p = record;
            return index;
        }
        s_record_free (self, record);
    }
    return KP_ACCEPTED_NONE;
}

//  Erase a message's body from the body store and log that it is gone. A
//  school notification's body goes once it was read or expired (DOMAIN.md);
//  the log keeps its hash, so the log stays verifiable.
static void
s_body_delete (self_t *self, uint32_t index, Kp__Wire__ErrorCode why)
{
    kp_message_t *message = kp_accepted_get (self->accepted, index);
    if ((message->flags & KP_MESSAGE_BODY_DELETED) || self->fatal)
        return;
    Kp__Wire__Record *original = s_record_read (self, message->pos);
    if (!original)
        return;
    if (kp_log_erase (self->bodies, original->body_pos)) {
        s_record_free (self, original);
        s_fatal (self, "cannot erase a body from the body store");
        return;
    }
    message->flags |= KP_MESSAGE_BODY_DELETED;
    Kp__Wire__Record record;
    s_record_about (&record, KP__WIRE__EVENT_KIND__BODY_DELETED, original, message->seq);
    record.body_hash = original->body_hash;
    record.outcome = why;
    s_record_append (self, &record, NULL);
    s_record_free (self, original);
}

//  A message was settled (acked, nacked, expired): no more due warnings,
//  and a read or expired school notification loses its body. During the
//  replay deletions wait in a list until the whole log was read (a later
//  BODY_DELETED record may say it is done already).
static void
s_accepted_settled (self_t *self, uint32_t index, bool expired, bool replaying)
{
    kp_message_t *message = kp_accepted_get (self->accepted, index);
    message->state = KP_MESSAGE_SETTLED;
    if (message->type != KP__WIRE__MESSAGE_TYPE__SCHOOL_NOTIFICATION
    ||  !(expired || (message->flags & KP_MESSAGE_READ)))
        return;
    if (replaying) {
        uint32_t *deletion = (uint32_t *) s_grow ((void **) &self->deletions,
                                                  &self->deletions_size,
                                                  &self->deletions_limit, sizeof (uint32_t));
        *deletion = index;
    }
    else
        s_body_delete (self, index, expired? KP__WIRE__ERROR_CODE__EXPIRED:
                                             KP__WIRE__ERROR_CODE__OK);
}

//  Feedback from a school about a school notification it received is its
//  read receipt (a school sends no other feedback): the body may go.
//  referenced is the notification's ACCEPTED record.
static void
s_read_receipt (self_t *self, const char *sender, Kp__Wire__Role sender_role,
                uint32_t index, const Kp__Wire__Record *referenced, bool replaying)
{
    kp_message_t *message = kp_accepted_get (self->accepted, index);
    if (sender_role != KP__WIRE__ROLE__SCHOOL
    ||  message->type != KP__WIRE__MESSAGE_TYPE__SCHOOL_NOTIFICATION
    ||  !referenced->recipient || !streq (referenced->recipient, sender))
        return;
    message->flags |= KP_MESSAGE_READ;
    if (message->state == KP_MESSAGE_SETTLED)
        s_accepted_settled (self, index, false, replaying);
}

//  Route a message (or a directory question) as the policy says; resolves
//  the reference among accepted messages: if the route is open and the
//  reference known, *referenced_p is its index and *record_p its ACCEPTED
//  record (caller frees), else KP_ACCEPTED_NONE and NULL.
static void
s_route (self_t *self, const kp_partner_t *sender, Kp__Wire__MessageType type,
         const char *address, const ProtobufCBinaryData *reference, kp_route_t *route,
         uint32_t *referenced_p, Kp__Wire__Record **record_p)
{
    kp_reference_t found = { NULL, NULL };
    Kp__Wire__Record *record = NULL;
    uint32_t referenced = KP_ACCEPTED_NONE;
    if (reference && reference->len == KP_ID_SIZE) {
        referenced = s_accepted_find (self, reference->data, &record);
        if (record) {
            found.sender = record->sender;
            found.recipient = record->recipient;
        }
    }
    kp_policy_route (self->registry, self->config->school_route, sender, type,
                     address? address: "", record? &found: NULL, route);
    if (route->code != KP__WIRE__ERROR_CODE__OK && record) {
        s_record_free (self, record);
        record = NULL;
        referenced = KP_ACCEPTED_NONE;
    }
    *referenced_p = referenced;
    *record_p = record;
}

//  --------------------------------------------------------------------------
//  Directory: who would receive this, with their vouched keys. An answer is
//  not logged (it reveals only what the region registered, and sends
//  nothing); a refusal is, as a REJECTED record without a message id, since
//  a client asks the directory before it submits: the refusal a submit
//  would have met is met here.

static void
s_directory (self_t *self, s_session_t *session, const kp_partner_t *sender,
             Kp__Wire__DirectoryQuery *query)
{
    kp_route_t route;
    uint32_t referenced;
    Kp__Wire__Record *referenced_record;
    s_route (self, sender, query->type, query->address, &query->reference, &route,
             &referenced, &referenced_record);
    if (referenced_record)
        s_record_free (self, referenced_record);
    if (route.code) {
        Kp__Wire__Record record = KP__WIRE__RECORD__INIT;
        record.event = KP__WIRE__EVENT_KIND__REJECTED;
        record.sender = (char *) sender->id;
        record.sender_role = sender->role;
        record.type = query->type;
        record.outcome = route.code;
        s_record_append (self, &record, NULL);
        s_send_error (self, session, NULL, route.code, route.reason);
        return;
    }
    if (!route.recipient->registration) {
        s_send_error (self, session, NULL, KP__WIRE__ERROR_CODE__UNAVAILABLE,
                      "the recipient has no registered sealing key; the operator must "
                      "register it again with kp-keys");
        return;
    }
    Kp__Wire__DirectoryAnswer answer = KP__WIRE__DIRECTORY_ANSWER__INIT;
    answer.recipient = route.recipient->registration;
    Kp__Wire__Registration *auditors [64];
    if (kp_type_name (query->type) && self->config->audit_open [query->type])
        for (const kp_partner_t *partner = kp_registry_first (self->registry);
             partner && answer.n_auditors < 64;
             partner = kp_registry_next (self->registry))
            if (partner->role == KP__WIRE__ROLE__AUDITOR && partner->registration)
                auditors [answer.n_auditors++] = partner->registration;
    answer.auditors = auditors;
    Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
    command.kind_case = KP__WIRE__COMMAND__KIND_DIRECTORY_ANSWER;
    command.directory_answer = &answer;
    s_send_command (self, session, &command);
}

//  --------------------------------------------------------------------------
//  Submit: check, route, store, and queue the receipt for the commit

//  accepted is the message's ACCEPTED record
static void
s_receipt_reply (self_t *self, s_session_t *session, const ProtobufCBinaryData *id,
                 const Kp__Wire__Record *accepted, bool duplicate)
{
    Kp__Wire__Receipt receipt = KP__WIRE__RECEIPT__INIT;
    receipt.id = *id;
    receipt.seq = accepted->seq;
    receipt.accepted_at_ms = accepted->time_ms;
    receipt.recipient_partner = accepted->recipient;
    receipt.recipient_role = accepted->recipient_role;
    receipt.duplicate = duplicate;
    Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
    command.kind_case = KP__WIRE__COMMAND__KIND_RECEIPT;
    command.receipt = &receipt;
    s_reply_later (self, session, &command);
}

//  Refuse a submit: an audit record and an Error to the sender
static void
s_submit_refuse (self_t *self, s_session_t *session, const kp_partner_t *sender,
                 Kp__Wire__Envelope *envelope, Kp__Wire__ErrorCode code,
                 const char *reason)
{
    Kp__Wire__Record record = KP__WIRE__RECORD__INIT;
    record.event = KP__WIRE__EVENT_KIND__REJECTED;
    record.sender = (char *) sender->id;
    record.sender_role = sender->role;
    record.outcome = code;
    if (envelope) {
        record.message_id = envelope->id;
        record.type = envelope->type;
        record.acting_user = envelope->acting_user;
        record.on_behalf_of = envelope->on_behalf_of;
        record.purpose = envelope->purpose;
        record.subject = envelope->subject;
        record.body_hash = envelope->body_hash;
    }
    s_record_append (self, &record, NULL);
    kp_debug ("kp_server: refused partner=%s code=%s", sender->id, kp_error_name (code));
    s_send_error (self, session, envelope? &envelope->id: NULL, code, reason);
}

static void
s_submit (self_t *self, s_session_t *session, const kp_partner_t *sender,
          Kp__Wire__Submit *submit)
{
    const kp_config_t *config = self->config;
    Kp__Wire__Envelope *envelope = submit->envelope;
    if (!envelope || envelope->id.len != KP_ID_SIZE) {
        s_submit_refuse (self, session, sender, envelope && envelope->id.len == KP_ID_SIZE?
                         envelope: NULL, KP__WIRE__ERROR_CODE__BAD_ENVELOPE,
                         "envelope with a 16-byte id is required");
        return;
    }
    char reason [256];
    Kp__Wire__ErrorCode code = KP__WIRE__ERROR_CODE__OK;
    uint8_t body_hash [KP_HASH_SIZE];
    kp_sha256 (body_hash, submit->body.data, submit->body.len);
    const char *type_name = kp_type_name (envelope->type);
    int64_t now = kp_now_ms ();
    if (!type_name) {
        code = KP__WIRE__ERROR_CODE__BAD_ENVELOPE;
        snprintf (reason, sizeof reason, "unknown message type %d", envelope->type);
    }
    else
    if (submit->body.len == 0) {
        code = KP__WIRE__ERROR_CODE__BAD_ENVELOPE;
        snprintf (reason, sizeof reason, "the body is empty");
    }
    else
    if ((int64_t) submit->body.len > config->max_body [envelope->type]) {
        code = KP__WIRE__ERROR_CODE__TOO_LARGE;
        snprintf (reason, sizeof reason, "%s body of %zu bytes is over the limit of %lld",
                  type_name, submit->body.len, (long long) config->max_body [envelope->type]);
    }
    else
    if (envelope->body_length != submit->body.len
    ||  envelope->body_hash.len != KP_HASH_SIZE
    ||  sodium_memcmp (envelope->body_hash.data, body_hash, KP_HASH_SIZE) != 0) {
        code = KP__WIRE__ERROR_CODE__BAD_ENVELOPE;
        snprintf (reason, sizeof reason, "body_length and body_hash must match the body");
    }
    else
    if ((envelope->subject.len != 0 && envelope->subject.len != KP_HASH_SIZE)
    ||  (envelope->reference.len != 0 && envelope->reference.len != KP_ID_SIZE)) {
        code = KP__WIRE__ERROR_CODE__BAD_ENVELOPE;
        snprintf (reason, sizeof reason, "subject must be 32 bytes and reference 16 bytes");
    }
    else
    if (envelope->expires_at_ms != 0 && envelope->expires_at_ms <= now) {
        code = KP__WIRE__ERROR_CODE__EXPIRED;
        snprintf (reason, sizeof reason, "the message expired before it arrived");
    }
    if (code) {
        s_submit_refuse (self, session, sender, envelope, code, reason);
        return;
    }
    //  A resend of an accepted message gets the first receipt
    Kp__Wire__Record *earlier;
    s_accepted_find (self, envelope->id.data, &earlier);
    if (self->fatal)
        return;
    if (earlier) {
        if (earlier->sender && streq (earlier->sender, sender->id)
        &&  earlier->type == envelope->type && earlier->body_hash.len == KP_HASH_SIZE
        &&  sodium_memcmp (earlier->body_hash.data, body_hash, KP_HASH_SIZE) == 0)
            s_receipt_reply (self, session, &envelope->id, earlier, true);
        else
            //  Not logged: the id belongs to an accepted message already
            s_send_error (self, session, &envelope->id, KP__WIRE__ERROR_CODE__ID_CONFLICT,
                          "this message id was already used for another message");
        s_record_free (self, earlier);
        return;
    }
    //  Route it
    uint32_t referenced;
    Kp__Wire__Record *referenced_record;
    kp_route_t route;
    s_route (self, sender, envelope->type, envelope->recipient, &envelope->reference,
             &route, &referenced, &referenced_record);
    if (route.code) {
        s_submit_refuse (self, session, sender, envelope, route.code, route.reason);
        return;
    }
    //  Store: the body first, then the record that points at it
    uint64_t body_seq, body_pos;
    if (kp_log_append (self->bodies, submit->body.data, submit->body.len,
                       &body_seq, &body_pos)) {
        s_fatal (self, "append to the body store failed");
        if (referenced_record)
            s_record_free (self, referenced_record);
        return;
    }
    //  The broker, not the client, says who sent it and to whom it went
    const kp_partner_t *recipient = route.recipient;
    char *client_sender = envelope->sender;
    char *client_recipient = envelope->recipient_partner;
    envelope->sender = (char *) sender->id;
    envelope->sender_role = sender->role;
    envelope->recipient_partner = (char *) recipient->id;
    envelope->recipient_role = recipient->role;
    if (envelope->expires_at_ms == 0)
        envelope->expires_at_ms = now + config->default_ttl;

    Kp__Wire__Record record = KP__WIRE__RECORD__INIT;
    record.event = KP__WIRE__EVENT_KIND__ACCEPTED;
    record.time_ms = now;
    record.message_id = envelope->id;
    record.type = envelope->type;
    record.sender = (char *) sender->id;
    record.sender_role = sender->role;
    record.recipient = (char *) recipient->id;
    record.recipient_role = recipient->role;
    record.acting_user = envelope->acting_user;
    record.on_behalf_of = envelope->on_behalf_of;
    record.purpose = envelope->purpose;
    record.subject = envelope->subject;
    record.body_hash = envelope->body_hash;
    record.envelope = envelope;
    record.body_pos = body_pos;
    uint64_t pos;
    uint64_t seq = s_record_append (self, &record, &pos);
    //  Give the unpacked envelope back its own strings before it is freed
    envelope->sender = client_sender;
    envelope->recipient_partner = client_recipient;
    if (seq != UINT64_MAX) {
        uint32_t index = kp_accepted_add (self->accepted, envelope->id.data, seq, pos,
                                          (uint8_t) envelope->type);
        if (envelope->due_at_ms)
            s_due_add (self, index, envelope->due_at_ms);
        if (referenced_record)
            s_read_receipt (self, sender->id, sender->role, referenced, referenced_record,
                            false);
        kp_queue_add_message (self->queue, recipient->id, index, envelope->expires_at_ms);
        s_receipt_reply (self, session, &envelope->id, &record, false);
        kp_debug ("kp_server: accepted seq=%llu from=%s to=%s type=%s",
                  (unsigned long long) seq, sender->id, recipient->id, type_name);
    }
    if (referenced_record)
        s_record_free (self, referenced_record);
}

//  --------------------------------------------------------------------------
//  Ack / nack of a delivery: log it, and tell the message's sender

//  Append an event about the message item was created for, then (for a
//  message) queue a status to its sender
static Kp__Wire__StatusKind s_status_of (Kp__Wire__EventKind event);

//  Settle an item the queue gave up: log the event, queue the sender's
//  status, forget it. A note is what the recipient said (a nack's reason, an ack's signed
//  receipt): it goes to the body store, never into the log, which names it
//  by position and hash.
static void
s_item_settle (self_t *self, const kp_item_t *item, Kp__Wire__EventKind event,
               Kp__Wire__ErrorCode outcome, const uint8_t *note, size_t note_size)
{
    Kp__Wire__Record *original = s_record_read (self, item->pos);
    if (!original)
        return;
    Kp__Wire__Record record;
    s_record_about (&record, event, original, item->seq);
    record.subject = original->subject;
    record.purpose = original->purpose;
    record.outcome = outcome;
    if (item->kind == KP_ITEM_STATUS)
        record.status = s_status_of (original->event);
    uint8_t note_hash [KP_HASH_SIZE];
    if (note && note_size > 0) {
        uint64_t note_seq;
        if (kp_log_append (self->bodies, note, note_size, &note_seq, &record.body_pos)) {
            s_record_free (self, original);
            s_fatal (self, "append to the body store failed");
            return;
        }
        kp_sha256 (note_hash, note, note_size);
        ProtobufCBinaryData *field = event == KP__WIRE__EVENT_KIND__ACKNOWLEDGED?
                                     &record.receipt_hash: &record.body_hash;
        field->data = note_hash;
        field->len = sizeof note_hash;
    }
    uint64_t pos;
    uint64_t seq = s_record_append (self, &record, &pos);
    if (seq != UINT64_MAX && item->kind == KP_ITEM_MESSAGE)
        kp_queue_add_status (self->queue, original->sender, seq, pos);
    s_record_free (self, original);
    s_session_t *session = (s_session_t *) item->session;
    if (session && session->in_flight > 0)
        session->in_flight--;
    if (item->kind == KP_ITEM_MESSAGE)
        s_accepted_settled (self, item->message, event == KP__WIRE__EVENT_KIND__EXPIRED_EVENT,
                            false);
}

#define S_NOTE_MAX 1024                 //  bytes of a nack reason or ack receipt kept

static void
s_ack (self_t *self, s_session_t *session, uint64_t seq, bool positive,
       const uint8_t *note, size_t note_size)
{
    //  An ack for something already settled is a harmless repeat. Only what
    //  is out to this very session can be settled by it: an ack for a
    //  delivery of an earlier broker life (whose DELIVERED_TO record a crash
    //  may have lost) waits for the redelivery, which the client acks again,
    //  so the log never shows an ack without a delivery.
    kp_item_t taken;
    if (!kp_queue_take_in_flight (self->queue, session->partner, seq, session, &taken))
        return;
    const kp_item_t *item = &taken;
    if (item->kind == KP_ITEM_STATUS)
        s_item_settle (self, item, KP__WIRE__EVENT_KIND__STATUS_ACKNOWLEDGED,
                       KP__WIRE__ERROR_CODE__OK, NULL, 0);
    else {
        if (note_size > S_NOTE_MAX) {
            note_size = S_NOTE_MAX;
            //  A reason is text: never cut a UTF-8 sequence in two
            while (!positive && note_size > 0 && (note [note_size] & 0xC0) == 0x80)
                note_size--;
        }
        s_item_settle (self, item, positive? KP__WIRE__EVENT_KIND__ACKNOWLEDGED:
                                             KP__WIRE__EVENT_KIND__NACKED,
                       positive? KP__WIRE__ERROR_CODE__OK: KP__WIRE__ERROR_CODE__UNEXPECTED,
                       note, note_size);
    }
}

//  --------------------------------------------------------------------------
//  The auditor's questions: the latest checkpoint, records, proofs. Every
//  question is itself an AUDITOR_ACCESS record, and an answer goes out only
//  once that record is durable. Answers cover durable records only.

//  Fill reply with records [start, start + count), as stored, within limit
//  bytes; sets *reason on a read error. The entries are malloc'd.
static Kp__Wire__ErrorCode
s_audit_entries (self_t *self, uint64_t start, uint32_t count, size_t limit,
                 Kp__Wire__AuditReply *reply, const char **reason)
{
    uint64_t durable = kp_log_synced (self->log);
    if (start >= durable) {
        *reason = "start is past the end of the durable log";
        return KP__WIRE__ERROR_CODE__UNKNOWN_REFERENCE;
    }
    if (count > S_AUDIT_ENTRIES)
        count = S_AUDIT_ENTRIES;
    if (count > durable - start)
        count = (uint32_t) (durable - start);
    uint64_t pos;
    if (kp_log_seek (self->log, start, &pos)) {
        *reason = "the broker cannot read its log";
        return KP__WIRE__ERROR_CODE__UNAVAILABLE;
    }
    reply->start = start;
    reply->entries = (ProtobufCBinaryData *) calloc (count? count: 1,
                                                     sizeof (ProtobufCBinaryData));
    assert (reply->entries);
    size_t total = 0;
    for (uint32_t index = 0; index < count; index++) {
        size_t size;
        const uint8_t *data = kp_log_read (self->log, pos, &size);
        if (!data) {
            *reason = "the broker cannot read its log";
            return KP__WIRE__ERROR_CODE__UNAVAILABLE;
        }
        //  Always at least one record, however large; then only what fits
        if (index > 0 && total + size + 16 > limit)
            break;
        total += size + 16;
        reply->entries [index].data = (uint8_t *) malloc (size);
        assert (reply->entries [index].data);
        memcpy (reply->entries [index].data, data, size);
        reply->entries [index].len = size;
        reply->n_entries = index + 1;
        pos = kp_log_next_pos (self->log, pos, size);
    }
    return KP__WIRE__ERROR_CODE__OK;
}

//  How an AUDITOR_ACCESS record names a query
static const char *
s_audit_query_name (Kp__Wire__AuditRequest__QueryCase query)
{
    switch (query) {
        case KP__WIRE__AUDIT_REQUEST__QUERY_CHECKPOINT: return "checkpoint";
        case KP__WIRE__AUDIT_REQUEST__QUERY_ENTRIES: return "entries";
        case KP__WIRE__AUDIT_REQUEST__QUERY_INCLUSION: return "inclusion";
        case KP__WIRE__AUDIT_REQUEST__QUERY_CONSISTENCY: return "consistency";
        case KP__WIRE__AUDIT_REQUEST__QUERY_BODY: return "body";
        default: return "none";
    }
}

//  The sealed body of an accepted message, for the auditors of the types in
//  audit/open-types; the record of the question names the message
static Kp__Wire__ErrorCode
s_audit_body (self_t *self, Kp__Wire__BodyQuery *query, Kp__Wire__AuditReply *reply,
              Kp__Wire__Record *record, const char **reason)
{
    Kp__Wire__Record *original = NULL;
    uint32_t index = KP_ACCEPTED_NONE;
    if (query->id.len == KP_ID_SIZE) {
        index = s_accepted_find (self, query->id.data, &original);
        record->message_id = query->id;
    }
    kp_message_t *message = kp_accepted_get (self->accepted, index);
    Kp__Wire__ErrorCode code = KP__WIRE__ERROR_CODE__OK;
    size_t size = 0;
    const uint8_t *body = NULL;
    if (!message || message->seq >= kp_log_synced (self->log)) {
        *reason = "no accepted message has this id";
        code = KP__WIRE__ERROR_CODE__UNKNOWN_REFERENCE;
    }
    else {
        record->type = message->type;
        record->ref_seq = message->seq;
        if (!self->config->audit_open [message->type]) {
            *reason = "the region does not let auditors open bodies of this type "
                      "(audit/open-types)";
            code = KP__WIRE__ERROR_CODE__FORBIDDEN;
        }
        else
        if (message->flags & KP_MESSAGE_BODY_DELETED) {
            *reason = "the body was deleted (read or expired); the log keeps its hash";
            code = KP__WIRE__ERROR_CODE__EXPIRED;
        }
        else
        if (!original->envelope
        ||  !(body = kp_log_read (self->bodies, original->body_pos, &size))) {
            *reason = "the broker cannot read this message";
            code = KP__WIRE__ERROR_CODE__UNAVAILABLE;
        }
    }
    if (code) {
        if (original)
            s_record_free (self, original);
        return code;
    }
    reply->body.data = (uint8_t *) malloc (size);
    assert (reply->body.data);
    memcpy (reply->body.data, body, size);
    reply->body.len = size;
    //  The envelope outlives the record: repack it on its own
    size_t envelope_size = kp__wire__envelope__get_packed_size (original->envelope);
    uint8_t *packed = (uint8_t *) malloc (envelope_size? envelope_size: 1);
    assert (packed);
    kp__wire__envelope__pack (original->envelope, packed);
    reply->envelope = kp__wire__envelope__unpack (NULL, envelope_size, packed);
    assert (reply->envelope);
    free (packed);
    const kp_partner_t *sender = original->sender?
                                 kp_registry_by_id (self->registry, original->sender): NULL;
    if (sender)
        reply->sender_registration = sender->registration;
    reply->seq = message->seq;
    s_record_free (self, original);
    return KP__WIRE__ERROR_CODE__OK;
}

static void
s_audit (self_t *self, s_session_t *session, const kp_partner_t *partner,
         Kp__Wire__AuditRequest *request)
{
    Kp__Wire__AuditReply reply = KP__WIRE__AUDIT_REPLY__INIT;
    reply.tag = request->tag;
    uint8_t hashes [KP_MERKLE_MAX_PROOF * KP_MERKLE_HASH];
    ProtobufCBinaryData proof [KP_MERKLE_MAX_PROOF];
    uint8_t leaf_hash [KP_MERKLE_HASH];
    size_t proof_count = 0;
    kp_merkle_t *tree = kp_notary_tree (self->notary);
    uint64_t durable = kp_log_synced (self->log);
    uint64_t latest_size = kp_notary_latest_size (self->notary);
    const char *latest = kp_notary_latest (self->notary);
    Kp__Wire__ErrorCode code = KP__WIRE__ERROR_CODE__OK;
    const char *reason = NULL;

    Kp__Wire__Record record = KP__WIRE__RECORD__INIT;
    record.event = KP__WIRE__EVENT_KIND__AUDITOR_ACCESS;
    record.sender = (char *) partner->id;
    record.sender_role = partner->role;
    record.purpose = (char *) s_audit_query_name (request->query_case);
    if (partner->role != KP__WIRE__ROLE__AUDITOR) {
        code = KP__WIRE__ERROR_CODE__FORBIDDEN;
        reason = "only an auditor may read the log";
    }
    else
    if (!latest) {
        code = KP__WIRE__ERROR_CODE__UNAVAILABLE;
        reason = "no checkpoint signed yet; ask again in a second";
    }
    else
    switch (request->query_case) {
        case KP__WIRE__AUDIT_REQUEST__QUERY_CHECKPOINT:
            break;
        case KP__WIRE__AUDIT_REQUEST__QUERY_ENTRIES:
            record.ref_seq = request->entries->start;
            code = s_audit_entries (self, request->entries->start, request->entries->count,
                                    (size_t) self->config->max_message / 2, &reply, &reason);
            break;
        case KP__WIRE__AUDIT_REQUEST__QUERY_INCLUSION: {
            uint64_t index = request->inclusion->index;
            uint64_t size = request->inclusion->size? request->inclusion->size: latest_size;
            record.ref_seq = index;
            if (index >= size || size > durable) {
                code = KP__WIRE__ERROR_CODE__UNKNOWN_REFERENCE;
                reason = "need index < size <= the durable log's size";
            }
            else
            if (kp_merkle_inclusion (tree, index, size, hashes, &proof_count)
            ||  kp_merkle_leaf (tree, index, leaf_hash)) {
                code = KP__WIRE__ERROR_CODE__UNAVAILABLE;
                reason = "the broker cannot read its Merkle tree";
            }
            reply.index = index;
            reply.size = size;
            reply.leaf_hash.data = leaf_hash;
            reply.leaf_hash.len = sizeof leaf_hash;
            break;
        }
        case KP__WIRE__AUDIT_REQUEST__QUERY_CONSISTENCY: {
            uint64_t old_size = request->consistency->old_size;
            uint64_t new_size = request->consistency->new_size?
                                request->consistency->new_size: latest_size;
            record.ref_seq = old_size;
            if (old_size == 0 || old_size > new_size || new_size > durable) {
                code = KP__WIRE__ERROR_CODE__UNKNOWN_REFERENCE;
                reason = "need 0 < old_size <= new_size <= the durable log's size";
            }
            else
            if (kp_merkle_consistency (tree, old_size, new_size, hashes, &proof_count)) {
                code = KP__WIRE__ERROR_CODE__UNAVAILABLE;
                reason = "the broker cannot read its Merkle tree";
            }
            reply.old_size = old_size;
            reply.size = new_size;
            break;
        }
        case KP__WIRE__AUDIT_REQUEST__QUERY_BODY:
            code = s_audit_body (self, request->body, &reply, &record, &reason);
            break;
        default:
            code = KP__WIRE__ERROR_CODE__MALFORMED;
            reason = "an audit request needs a query";
            break;
    }
    record.outcome = code;
    s_record_append (self, &record, NULL);
    if (code == KP__WIRE__ERROR_CODE__OK) {
        for (size_t index = 0; index < proof_count; index++) {
            proof [index].data = hashes + index * KP_MERKLE_HASH;
            proof [index].len = KP_MERKLE_HASH;
        }
        reply.proof = proof;
        reply.n_proof = proof_count;
        reply.checkpoint = (char *) latest;
        Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
        command.kind_case = KP__WIRE__COMMAND__KIND_AUDIT_REPLY;
        command.audit_reply = &reply;
        s_reply_later (self, session, &command);
    }
    else {
        kp_debug ("kp_server: audit request refused partner=%s code=%s", partner->id,
                  kp_error_name (code));
        s_send_error (self, session, NULL, code, reason);
    }
    for (size_t index = 0; index < reply.n_entries; index++)
        free (reply.entries [index].data);
    free (reply.entries);
    if (reply.envelope)
        kp__wire__envelope__free_unpacked (reply.envelope, NULL);
    free (reply.body.data);
}

//  --------------------------------------------------------------------------
//  One command from a client

//  The window a client asked for, capped by delivery/credit
static uint32_t
s_credit_granted (self_t *self, uint32_t asked)
{
    uint32_t limit = (uint32_t) self->config->credit;
    return asked < limit? asked: limit;
}

static void
s_hello (self_t *self, const s_routing_t *routing, const kp_partner_t *partner,
         Kp__Wire__Hello *hello)
{
    s_session_t *session = (s_session_t *) zhashx_lookup (self->sessions, routing);
    if (!session) {
        if ((int) zhashx_size (self->sessions) >= self->config->max_sessions) {
            zsys_warning ("kp_server: session limit reached partner=%s", partner->id);
            return;
        }
        session = (s_session_t *) zmalloc (sizeof (s_session_t));
        assert (session);
        session->routing = *routing;
        session->partner = strdup (partner->id);
        zhashx_insert (self->sessions, &session->routing, session);
        zsys_info ("kp_server: session opened partner=%s", partner->id);
    }
    session->last_seen = kp_mono_ms ();
    if (hello->version != KP_PROTOCOL_VERSION) {
        s_send_error (self, session, NULL, KP__WIRE__ERROR_CODE__UNEXPECTED,
                      "unsupported protocol version; this broker speaks version 1");
        s_session_drop (self, session, "version");
        return;
    }
    session->credit = s_credit_granted (self, hello->credit);
    Kp__Wire__Welcome welcome = KP__WIRE__WELCOME__INIT;
    welcome.version = KP_PROTOCOL_VERSION;
    welcome.partner = (char *) partner->id;
    welcome.role = partner->role;
    welcome.broker = (char *) self->config->name;
    welcome.max_message = (uint64_t) self->config->max_message;
    welcome.heartbeat_ms = (uint32_t) self->config->heartbeat;
    Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
    command.kind_case = KP__WIRE__COMMAND__KIND_WELCOME;
    command.welcome = &welcome;
    s_send_command (self, session, &command);
}

static void
s_handle (self_t *self, const s_routing_t *routing, const uint8_t *data, size_t size,
          bool extra_frames, const char *user_id)
{
    s_session_t *session = (s_session_t *) zhashx_lookup (self->sessions, routing);
    //  Identity comes only from the key, through ZAP, checked on every
    //  message against the live registry: a revoked partner is refused
    //  from its next message on.
    const kp_partner_t *partner = user_id? kp_registry_by_id (self->registry, user_id): NULL;
    //  Replies before a hello go through a temporary session
    s_session_t scratch = { 0 };
    if (!session) {
        scratch.routing = *routing;
        scratch.partner = (char *) (partner? partner->id: "");
    }
    s_session_t *target = session? session: &scratch;
    if (!partner) {
        //  Admitted by ZAP, revoked since: tell it why, whether or not it
        //  had said hello, and forget its session
        s_send_error (self, target, NULL, KP__WIRE__ERROR_CODE__REVOKED,
                      "your key is no longer registered with this broker");
        if (session)
            s_session_drop (self, session, "revoked");
        return;
    }
    Kp__Wire__Command *command = NULL;
    if (extra_frames || size > (size_t) self->config->max_message) {
        bool too_large = size > (size_t) self->config->max_message;
        s_submit_refuse (self, target, partner, NULL,
                         too_large? KP__WIRE__ERROR_CODE__TOO_LARGE:
                                    KP__WIRE__ERROR_CODE__MALFORMED,
                         too_large? "frame is over the broker's max-message":
                                    "one command per message: extra frames");
        goto done;
    }
    command = kp_command_unpack_with (data, size, (size_t) self->config->max_message,
                                      &self->arena.allocator);
    if (!command) {
        s_submit_refuse (self, target, partner, NULL, KP__WIRE__ERROR_CODE__MALFORMED,
                         "frame is not a valid ketenpost command");
        goto done;
    }
    if (command->kind_case == KP__WIRE__COMMAND__KIND_HELLO) {
        s_hello (self, routing, partner, command->hello);
        goto done;
    }
    if (!session) {
        const ProtobufCBinaryData *id = NULL;
        if (command->kind_case == KP__WIRE__COMMAND__KIND_SUBMIT
        &&  command->submit->envelope)
            id = &command->submit->envelope->id;
        s_send_error (self, target, id, KP__WIRE__ERROR_CODE__UNEXPECTED, "hello first");
        goto done;
    }
    session->last_seen = kp_mono_ms ();
    switch (command->kind_case) {
        case KP__WIRE__COMMAND__KIND_SUBMIT:
            s_submit (self, session, partner, command->submit);
            break;
        case KP__WIRE__COMMAND__KIND_ACK:
            s_ack (self, session, command->ack->seq, true, command->ack->receipt.data,
                   command->ack->receipt.len);
            break;
        case KP__WIRE__COMMAND__KIND_NACK:
            s_ack (self, session, command->nack->seq, false,
                   (const uint8_t *) command->nack->reason, strlen (command->nack->reason));
            break;
        case KP__WIRE__COMMAND__KIND_AUDIT_REQUEST:
            s_audit (self, session, partner, command->audit_request);
            break;
        case KP__WIRE__COMMAND__KIND_DIRECTORY_QUERY:
            s_directory (self, session, partner, command->directory_query);
            break;
        case KP__WIRE__COMMAND__KIND_CREDIT:
            session->credit = s_credit_granted (self, command->credit->credit);
            break;
        case KP__WIRE__COMMAND__KIND_PING: {
            Kp__Wire__Ping pong = KP__WIRE__PING__INIT;
            pong.nonce = command->ping->nonce;
            Kp__Wire__Command reply = KP__WIRE__COMMAND__INIT;
            reply.kind_case = KP__WIRE__COMMAND__KIND_PONG;
            reply.pong = &pong;
            s_send_command (self, session, &reply);
            break;
        }
        default:
            s_send_error (self, session, NULL, KP__WIRE__ERROR_CODE__UNEXPECTED,
                          "a client may send hello, submit, ack, nack, credit, ping, "
                          "directory_query or audit_request");
            break;
    }
done:
    if (command)
        kp__wire__command__free_unpacked (command, &self->arena.allocator);
}

//  Read every waiting command, up to a batch
static void
s_router_drain (self_t *self)
{
    for (int count = 0; count < S_BATCH && !self->fatal; count++) {
        zmq_msg_t routing, payload;
        zmq_msg_init (&routing);
        if (zmq_msg_recv (&routing, self->router_handle, ZMQ_DONTWAIT) == -1) {
            zmq_msg_close (&routing);
            break;
        }
        zmq_msg_init (&payload);
        bool extra_frames = false;
        if (zmq_msg_more (&routing)) {
            int rc = zmq_msg_recv (&payload, self->router_handle, 0);
            assert (rc >= 0);
            //  Swallow any further frames: one command is one frame
            while (zmq_msg_more (&payload)) {
                zmq_msg_t extra;
                zmq_msg_init (&extra);
                rc = zmq_msg_recv (&extra, self->router_handle, 0);
                assert (rc >= 0);
                bool more = zmq_msg_more (&extra);
                zmq_msg_close (&extra);
                extra_frames = true;
                if (!more)
                    break;
            }
            const char *user_id = zmq_msg_gets (&payload, "User-Id");
            if (zmq_msg_size (&routing) > 0 && zmq_msg_size (&routing) <= 255) {
                s_routing_t key;
                key.size = (uint8_t) zmq_msg_size (&routing);
                memcpy (key.data, zmq_msg_data (&routing), key.size);
                s_handle (self, &key, (const uint8_t *) zmq_msg_data (&payload),
                          zmq_msg_size (&payload), extra_frames,
                          user_id && *user_id? user_id: NULL);
                //  Nothing unpacked for a command outlives it
                kp_arena_reset (&self->arena);
            }
        }
        zmq_msg_close (&payload);
        zmq_msg_close (&routing);
    }
}

//  --------------------------------------------------------------------------
//  Group commit, then the replies that waited for it

//  A turn syncs only if a client waits for it: a receipt or a reply (a new
//  message always has its receipt waiting). Every other record (DELIVERED_TO, the ACKNOWLEDGED
//  that releases a status to the sender, STATUS_ACKNOWLEDGED, REJECTED,
//  ...) rides with the next such sync, or with the one every tick (all =
//  true): a status may wait up to a tick (100 ms), and at low load a
//  message then costs two syncs (log and body store, at once), not four.
static void
s_commit (self_t *self, bool all)
{
    if (self->fatal)
        return;
    if (!all && self->replies_size == 0)
        return;
    //  Both at once: a crash may then keep an ACCEPTED record and lose its
    //  body, which the next start finds and voids (s_void_lost)
    if (kp_log_sync_both (self->log, self->bodies)) {
        s_fatal (self, "fdatasync of the log or the body store failed");
        return;
    }
    for (size_t index = 0; index < self->replies_size; index++) {
        s_reply_t *reply = &self->replies [index];
        if (reply->session)
            s_send (self, (s_session_t *) reply->session, &reply->message);
        else
            zmq_msg_close (&reply->message);
    }
    self->replies_size = 0;
}

//  --------------------------------------------------------------------------
//  Sign a checkpoint over every durable record, if the tree grew since the
//  last one; at most one a second (S_CHECKPOINT_IVL) from the timers, and
//  one at start and at stop.

static void
s_checkpoint (self_t *self)
{
    if (self->fatal)
        return;
    uint64_t durable = kp_log_synced (self->log);
    if (durable <= kp_notary_latest_size (self->notary) && kp_notary_latest (self->notary))
        return;
    if (kp_notary_checkpoint (self->notary, durable)) {
        s_fatal (self, "cannot persist a checkpoint");
        return;
    }
    self->next_checkpoint = kp_mono_ms () + S_CHECKPOINT_IVL;
    kp_debug ("kp_server: checkpoint size=%llu", (unsigned long long) durable);
}

//  --------------------------------------------------------------------------
//  Deliveries

static Kp__Wire__StatusKind
s_status_of (Kp__Wire__EventKind event)
{
    switch (event) {
        case KP__WIRE__EVENT_KIND__ACKNOWLEDGED: return KP__WIRE__STATUS_KIND__DELIVERED;
        case KP__WIRE__EVENT_KIND__NACKED: return KP__WIRE__STATUS_KIND__REFUSED;
        case KP__WIRE__EVENT_KIND__EXPIRED_EVENT:
            return KP__WIRE__STATUS_KIND__EXPIRED_UNDELIVERED;
        case KP__WIRE__EVENT_KIND__READ_EVENT: return KP__WIRE__STATUS_KIND__READ;
        case KP__WIRE__EVENT_KIND__OVERDUE_EVENT: return KP__WIRE__STATUS_KIND__OVERDUE;
        default: return KP__WIRE__STATUS_KIND__STATUS_UNSPECIFIED;
    }
}

//  The note (a nack's reason, an ack's receipt) a record names by position
//  and hash, or NULL if there is none or it is not the one hashed: the
//  record may have survived a crash that the note did not (s_commit)
static const uint8_t *
s_note_read (self_t *self, uint64_t pos, const ProtobufCBinaryData *hash, size_t *size_p)
{
    if (hash->len != KP_HASH_SIZE)
        return NULL;
    const uint8_t *note = kp_log_read (self->bodies, pos, size_p);
    uint8_t note_hash [KP_HASH_SIZE];
    if (note)
        kp_sha256 (note_hash, note, *size_p);
    return note && sodium_memcmp (note_hash, hash->data, KP_HASH_SIZE) == 0? note: NULL;
}

//  Build and send one item to session. Returns 0, -1 if it could not go now
//  (the peer's pipe is full), -2 if the peer is gone. A message whose body
//  cannot be read is dropped.
static int
s_deliver_item (self_t *self, s_session_t *session, const kp_item_t *item)
{
    Kp__Wire__Record *record = s_record_read (self, item->pos);
    if (!record)
        return -1;
    Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
    Kp__Wire__Deliver deliver = KP__WIRE__DELIVER__INIT;
    Kp__Wire__Status status = KP__WIRE__STATUS__INIT;
    char *reason_text = NULL;       //  a nack's reason, read from the body store
    uint8_t *receipt_copy = NULL;   //  an ack's signed receipt, from the body store
    if (item->kind == KP_ITEM_MESSAGE) {
        size_t body_size;
        const uint8_t *body = kp_log_read (self->bodies, record->body_pos, &body_size);
        if (!body) {
            zsys_error ("kp_server: body of seq=%llu unreadable; message dropped",
                        (unsigned long long) item->seq);
            s_record_free (self, record);
            kp_item_t dropped;
            kp_queue_remove (self->queue, session->partner, item->seq, &dropped);
            return 0;
        }
        deliver.seq = item->seq;
        deliver.envelope = record->envelope;
        deliver.body.data = (uint8_t *) body;
        deliver.body.len = body_size;
        deliver.attempt = kp_accepted_get (self->accepted, item->message)->attempt + 1u;
        const kp_partner_t *sender = record->sender?
                                     kp_registry_by_id (self->registry, record->sender): NULL;
        if (sender)
            deliver.sender_registration = sender->registration;
        command.kind_case = KP__WIRE__COMMAND__KIND_DELIVER;
        command.deliver = &deliver;
    }
    else {
        status.seq = item->seq;
        status.id = record->message_id;
        status.status = s_status_of (record->event);
        status.at_ms = record->time_ms;
        status.partner = record->recipient;
        status.type = record->type;
        size_t reason_size = 0;
        const uint8_t *reason = NULL;
        if (record->event == KP__WIRE__EVENT_KIND__NACKED)
            reason = s_note_read (self, record->body_pos, &record->body_hash, &reason_size);
        if (reason) {
            reason_text = strndup ((const char *) reason, reason_size);
            assert (reason_text);
            status.reason = reason_text;
        }
        if (record->event == KP__WIRE__EVENT_KIND__ACKNOWLEDGED) {
            size_t receipt_size = 0;
            const uint8_t *receipt = s_note_read (self, record->body_pos,
                                                  &record->receipt_hash, &receipt_size);
            if (receipt) {
                receipt_copy = (uint8_t *) malloc (receipt_size);
                assert (receipt_copy);
                memcpy (receipt_copy, receipt, receipt_size);
                status.receipt.data = receipt_copy;
                status.receipt.len = receipt_size;
            }
        }
        command.kind_case = KP__WIRE__COMMAND__KIND_STATUS;
        command.status = &status;
    }
    int rc = s_send_command (self, session, &command);
    free (reason_text);
    free (receipt_copy);
    if (rc == -1)
        rc = self->send_error == EHOSTUNREACH? -2: -1;
    if (rc == 0) {
        kp_queue_mark_sent (self->queue, session->partner, session, kp_mono_ms ());
        session->in_flight++;
        if (item->kind == KP_ITEM_MESSAGE) {
            Kp__Wire__Record delivered;
            s_record_about (&delivered, KP__WIRE__EVENT_KIND__DELIVERED_TO, record, item->seq);
            s_record_append (self, &delivered, NULL);
        }
    }
    s_record_free (self, record);
    return rc;
}

static void
s_dispatch (self_t *self)
{
    uint64_t durable = kp_log_synced (self->log);
    zlistx_t *gone = NULL;
    for (s_session_t *session = (s_session_t *) zhashx_first (self->sessions);
         session && !self->fatal;
         session = (s_session_t *) zhashx_next (self->sessions)) {
        kp_item_t item;
        while (session->in_flight < session->credit
           &&  kp_queue_first_ready (self->queue, session->partner, &item)
           &&  item.seq < durable) {
            int rc = s_deliver_item (self, session, &item);
            kp_arena_reset (&self->arena);
            if (rc) {
                if (rc == -2) {
                    if (!gone)
                        gone = zlistx_new ();
                    zlistx_add_end (gone, session);
                }
                break;
            }
        }
    }
    if (gone) {
        for (s_session_t *session = (s_session_t *) zlistx_first (gone); session;
             session = (s_session_t *) zlistx_next (gone))
            s_session_drop (self, session, "peer gone");
        zlistx_destroy (&gone);
    }
}

//  --------------------------------------------------------------------------
//  Timers: ack timeouts, expiry, idle sessions, registry changes

//  Messages not settled by their due time (a school notification at 07:30
//  on its school day): the sender gets an OVERDUE status, once, so that it
//  can phone. The message stays queued until it is acked or expires.
static void
s_due_check (self_t *self, int64_t now)
{
    size_t kept = 0;
    for (size_t index = 0; index < self->due_size; index++) {
        s_due_t due = self->due [index];
        kp_message_t *message = kp_accepted_get (self->accepted, due.message);
        if (message->state == KP_MESSAGE_SETTLED || (message->flags & KP_MESSAGE_OVERDUE))
            continue;
        if (due.due_at_ms > now || self->fatal) {
            self->due [kept++] = due;
            continue;
        }
        message->flags |= KP_MESSAGE_OVERDUE;
        Kp__Wire__Record *original = s_record_read (self, message->pos);
        if (!original)
            continue;
        Kp__Wire__Record record;
        s_record_about (&record, KP__WIRE__EVENT_KIND__OVERDUE_EVENT, original, message->seq);
        record.outcome = KP__WIRE__ERROR_CODE__EXPIRED;
        uint64_t pos;
        uint64_t seq = s_record_append (self, &record, &pos);
        if (seq != UINT64_MAX)
            kp_queue_add_status (self->queue, original->sender, seq, pos);
        s_record_free (self, original);
    }
    self->due_size = kept;
}

static void
s_timers (self_t *self)
{
    int64_t now_mono = kp_mono_ms ();
    if (now_mono < self->next_tick)
        return;
    self->next_tick = now_mono + S_TICK;
    s_commit (self, true);
    kp_queue_requeue_timed_out (self->queue, now_mono, self->config->ack_timeout,
                                s_session_requeued, NULL);
    int64_t now = kp_now_ms ();
    s_due_check (self, now);
    //  The queue knows the second a message expires in; its ACCEPTED record
    //  the millisecond. Those due later in this second go back after.
    uint32_t expired;
    uint32_t later [64];
    int64_t later_ms [64];
    size_t later_count = 0;
    while (!self->fatal && later_count < 64
       &&  (expired = kp_queue_next_expired (self->queue, now)) != KP_ACCEPTED_NONE) {
        kp_message_t *message = kp_accepted_get (self->accepted, expired);
        Kp__Wire__Record *original = s_record_read (self, message->pos);
        if (!original || !original->recipient || !original->envelope) {
            s_fatal (self, "cannot read back a record of the log");
            break;
        }
        kp_item_t item;
        if (original->envelope->expires_at_ms > now) {
            later [later_count] = expired;
            later_ms [later_count++] = original->envelope->expires_at_ms;
        }
        else
        //  Its recipient owns the item
        if (kp_queue_remove (self->queue, original->recipient, message->seq, &item))
            s_item_settle (self, &item, KP__WIRE__EVENT_KIND__EXPIRED_EVENT,
                           KP__WIRE__ERROR_CODE__EXPIRED, NULL, 0);
        s_record_free (self, original);
    }
    for (size_t index = 0; index < later_count; index++)
        kp_queue_expire_later (self->queue, later [index], later_ms [index]);
    //  A session we heard nothing from for three heartbeats is gone
    zlistx_t *idle = zlistx_new ();
    int64_t limit = 3 * (int64_t) self->config->heartbeat;
    for (s_session_t *session = (s_session_t *) zhashx_first (self->sessions); session;
         session = (s_session_t *) zhashx_next (self->sessions))
        if (session->last_seen + limit < now_mono)
            zlistx_add_end (idle, session);
    for (s_session_t *session = (s_session_t *) zlistx_first (idle); session;
         session = (s_session_t *) zlistx_next (idle))
        s_session_drop (self, session, "idle");
    zlistx_destroy (&idle);
    if (now_mono >= self->next_checkpoint)
        s_checkpoint (self);
    if (now_mono >= self->next_registry_check) {
        self->next_registry_check = now_mono + S_REGISTRY_CHECK;
        if (kp_registry_stale (self->registry))
            s_registry_reload (self);
    }
}

//  --------------------------------------------------------------------------
//  Start-up: rebuild the delivery state from the log

//  A partner id from a record, as a C string in buffer; NULL if absent or
//  not an id the registry could have (the broker writes only valid ones)
static const char *
s_peek_id (kp_peek_bytes_t bytes, char *buffer, size_t limit)
{
    if (bytes.size == 0 || bytes.size >= limit || memchr (bytes.data, 0, bytes.size))
        return NULL;
    memcpy (buffer, bytes.data, bytes.size);
    buffer [bytes.size] = 0;
    return buffer;
}

//  The message a record is about (its ref_seq), or NULL
static kp_message_t *
s_replay_referenced (self_t *self, const kp_peek_record_t *record)
{
    return kp_accepted_get (self->accepted,
                            kp_accepted_by_seq (self->accepted, record->ref_seq));
}

//  One record of the log at start. Only the fields the delivery state needs
//  are read, in place (kp_peek), without unpacking the record.
static int
s_replay_record (const uint8_t *data, size_t size, uint64_t seq, uint64_t pos, void *arg)
{
    self_t *self = (self_t *) arg;
    //  The tree is trusted up to the last checkpoint; the rest is hashed again
    if (seq >= kp_notary_size (self->notary) && kp_notary_append (self->notary, data, size))
        return -1;
    kp_peek_record_t record;
    if (kp_peek_record (data, size, &record) || record.seq != seq) {
        zsys_error ("kp_server: log record %llu does not decode; the log is damaged",
                    (unsigned long long) seq);
        return -1;
    }
    char sender_buffer [256], recipient_buffer [256];
    const char *sender = s_peek_id (record.sender, sender_buffer, sizeof sender_buffer);
    const char *recipient = s_peek_id (record.recipient, recipient_buffer,
                                       sizeof recipient_buffer);
    switch (record.event) {
        case KP__WIRE__EVENT_KIND__ACCEPTED: {
            if (!record.has_envelope || record.message_id.size != KP_ID_SIZE || !sender
            ||  !recipient)
                break;
            uint32_t index = kp_accepted_add (self->accepted, record.message_id.data, seq,
                                              pos, (uint8_t) record.type);
            if (record.body_pos >= self->bodies_end) {
                //  Its body did not survive a crash: voided after the replay
                uint32_t *lost = (uint32_t *) s_grow ((void **) &self->lost, &self->lost_size,
                                                      &self->lost_limit, sizeof (uint32_t));
                *lost = index;
            }
            if (record.due_at_ms)
                s_due_add (self, index, record.due_at_ms);
            kp_queue_add_message (self->queue, recipient, index, record.expires_at_ms);
            //  Only a school's feedback can be a read receipt
            if (record.reference.size == KP_ID_SIZE
            &&  record.sender_role == KP__WIRE__ROLE__SCHOOL) {
                Kp__Wire__Record *referenced_record;
                uint32_t referenced = s_accepted_find (self, record.reference.data,
                                                       &referenced_record);
                if (referenced_record) {
                    s_read_receipt (self, sender, (Kp__Wire__Role) record.sender_role,
                                    referenced, referenced_record, true);
                    s_record_free (self, referenced_record);
                }
            }
            break;
        }
        case KP__WIRE__EVENT_KIND__DELIVERED_TO: {
            //  Attempts count on across restarts
            kp_message_t *message = s_replay_referenced (self, &record);
            if (message && message->attempt < UINT8_MAX)
                message->attempt++;
            break;
        }
        case KP__WIRE__EVENT_KIND__OVERDUE_EVENT: {
            kp_message_t *message = s_replay_referenced (self, &record);
            if (message)
                message->flags |= KP_MESSAGE_OVERDUE;
            if (sender)
                kp_queue_add_status (self->queue, sender, seq, pos);
            break;
        }
        case KP__WIRE__EVENT_KIND__BODY_DELETED: {
            kp_message_t *message = s_replay_referenced (self, &record);
            if (message)
                message->flags |= KP_MESSAGE_BODY_DELETED;
            break;
        }
        case KP__WIRE__EVENT_KIND__VOIDED: {
            //  Its body was lost in a crash before the receipt: forgotten
            kp_item_t item;
            kp_message_t *message = s_replay_referenced (self, &record);
            if (message && recipient)
                kp_queue_remove (self->queue, recipient, record.ref_seq, &item);
            if (message)
                message->flags |= KP_MESSAGE_VOIDED;
            break;
        }
        case KP__WIRE__EVENT_KIND__STATUS_ACKNOWLEDGED: {
            //  The status was its sender's item
            kp_item_t item;
            if (sender)
                kp_queue_remove (self->queue, sender, record.ref_seq, &item);
            break;
        }
        case KP__WIRE__EVENT_KIND__ACKNOWLEDGED:
        case KP__WIRE__EVENT_KIND__NACKED:
        case KP__WIRE__EVENT_KIND__EXPIRED_EVENT: {
            //  The message was its recipient's item; its sender gets a status
            kp_item_t item;
            if (recipient)
                kp_queue_remove (self->queue, recipient, record.ref_seq, &item);
            uint32_t index = kp_accepted_by_seq (self->accepted, record.ref_seq);
            if (index != KP_ACCEPTED_NONE)
                s_accepted_settled (self, index,
                                    record.event == KP__WIRE__EVENT_KIND__EXPIRED_EVENT, true);
            if (sender)
                kp_queue_add_status (self->queue, sender, seq, pos);
            break;
        }
        case KP__WIRE__EVENT_KIND__PARTNER_REGISTERED:
            if (sender && record.key_hash.size == KP_HASH_SIZE) {
                char *seen = kp_hex_encode (record.key_hash.data, KP_HASH_SIZE);
                if (record.body_hash.size == KP_HASH_SIZE) {
                    char *registration = kp_hex_encode (record.body_hash.data, KP_HASH_SIZE);
                    char *both = zsys_sprintf ("%s:%s", seen, registration);
                    free (registration);
                    free (seen);
                    seen = both;
                }
                zhashx_update (self->partners_seen, sender, seen);
            }
            break;
        case KP__WIRE__EVENT_KIND__PARTNER_REVOKED:
            if (sender)
                zhashx_delete (self->partners_seen, sender);
            break;
        default:
            break;
    }
    return 0;
}

//  Messages whose ACCEPTED record survived a crash but whose body did not
//  (the two are synced at the same time): no receipt went out for them,
//  so the sender will send them again. Each gets a VOIDED record and is
//  forgotten: never delivered, and its id free for the resend.
static void
s_void_lost (self_t *self)
{
    for (size_t index = 0; index < self->lost_size && !self->fatal; index++) {
        kp_message_t *message = kp_accepted_get (self->accepted, self->lost [index]);
        if (message->flags & KP_MESSAGE_VOIDED)
            continue;               //  at an earlier start, nothing appended since
        Kp__Wire__Record *original = s_record_read (self, message->pos);
        if (!original)
            break;
        kp_item_t item;
        kp_queue_remove (self->queue, original->recipient, message->seq, &item);
        message->state = KP_MESSAGE_SETTLED;
        message->flags |= KP_MESSAGE_VOIDED;
        Kp__Wire__Record record;
        s_record_about (&record, KP__WIRE__EVENT_KIND__VOIDED, original, message->seq);
        record.body_hash = original->body_hash;
        record.outcome = KP__WIRE__ERROR_CODE__UNAVAILABLE;
        s_record_append (self, &record, NULL);
        zsys_warning ("kp_server: message seq=%llu from=%s lost its body in a crash before "
                      "its receipt; voided (the sender will send it again)",
                      (unsigned long long) message->seq, original->sender);
        s_record_free (self, original);
    }
    free (self->lost);
    self->lost = NULL;
    self->lost_size = self->lost_limit = 0;
}

//  Open a log in dir/name; NULL on failure (logged)
static kp_log_t *
s_log_open (const kp_config_t *config, const char *name)
{
    char *path = zsys_sprintf ("%s/%s", config->data_dir, name);
    kp_log_status_t status;
    kp_log_t *log = kp_log_open (path, (size_t) config->segment_size,
                                 config->load_truncated != 0, &status);
    if (log && status == KP_LOG_TRUNCATED)
        zsys_warning ("kp_server: cut a torn tail from %s", path);
    free (path);
    return log;
}

//  Load the server's secret cert into the socket and wipe it
static int
s_apply_server_cert (self_t *self)
{
    char *secret_path = zsys_sprintf ("%s_secret", self->config->server_cert);
    zcert_t *cert = zcert_load (secret_path);
    if (!cert) {
        zsys_error ("kp_server: cannot load the server's secret cert %s", secret_path);
        free (secret_path);
        return -1;
    }
    zcert_apply (cert, self->router);
    //  CZMQ does not wipe a cert's secret: do it before freeing
    sodium_memzero ((void *) zcert_secret_key (cert), 32);
    sodium_memzero ((void *) zcert_secret_txt (cert), KP_KEY_TEXT);
    zcert_destroy (&cert);
    free (secret_path);
    return 0;
}

static int
s_start (self_t *self)
{
    const kp_config_t *config = self->config;
    self->registry = kp_registry_new (config->region);
    if (!self->registry)
        return -1;
    if (zsys_dir_create ("%s", config->data_dir)) {
        zsys_error ("kp_server: cannot create data dir %s: %s", config->data_dir,
                    strerror (errno));
        return -1;
    }
    self->log = s_log_open (config, "log");
    self->bodies = self->log? s_log_open (config, "bodies"): NULL;
    if (!self->bodies)
        return -1;
    //  An ack reads its message's ACCEPTED record back about one credit
    //  window (1,000 messages, 4,000 records) after it was written: keep
    //  that much of the log in memory, and a little more
    kp_log_set_cache (self->log, 2 * 1024 * 1024);
    self->bodies_end = kp_log_end (self->bodies);
    self->notary = kp_notary_open (config->data_dir, config->region, config->name,
                                   kp_log_size (self->log));
    if (!self->notary)
        return -1;
    int64_t started = kp_mono_ms ();
    if (kp_log_replay (self->log, s_replay_record, self)) {
        zsys_error ("kp_server: replay of %s/log failed; not starting", config->data_dir);
        return -1;
    }
    s_void_lost (self);
    zsys_notice ("kp_server: replayed records=%llu queued=%zu msec=%lld",
                 (unsigned long long) kp_log_size (self->log), kp_queue_size (self->queue),
                 (long long) (kp_mono_ms () - started));

    //  ZAP first, so that no handshake can ever complete without it; and
    //  enforce the domain, so that no handler means no admission.
    self->zap = zsock_new (ZMQ_REP);
    assert (self->zap);
    if (zsock_bind (self->zap, S_ZAP_ENDPOINT) != 0) {
        zsys_error ("kp_server: cannot bind the ZAP handler: %s", zmq_strerror (zmq_errno ()));
        return -1;
    }
    self->router = zsock_new (ZMQ_ROUTER);
    assert (self->router);
    self->router_handle = zsock_resolve (self->router);
    zsock_set_curve_server (self->router, 1);
    if (s_apply_server_cert (self))
        return -1;
    zsock_set_zap_domain (self->router, S_ZAP_DOMAIN);
    int enforce = 1;
    if (zmq_setsockopt (self->router_handle, S_ZMQ_ZAP_ENFORCE_DOMAIN,
                        &enforce, sizeof enforce)) {
        zsys_error ("kp_server: libzmq refuses ZAP_ENFORCE_DOMAIN; not starting fail-open");
        return -1;
    }
    zsock_set_router_mandatory (self->router, 1);
    zsock_set_maxmsgsize (self->router, (int) (config->max_message + S_CURVE_OVERHEAD));
    zsock_set_handshake_ivl (self->router, config->handshake);
    zsock_set_heartbeat_ivl (self->router, config->heartbeat);
    zsock_set_heartbeat_timeout (self->router, 3 * config->heartbeat);
    zsock_set_sndhwm (self->router, 100000);
    zsock_set_rcvhwm (self->router, 100000);
    zsock_set_linger (self->router, 0);
    if (zsock_bind (self->router, "%s", config->endpoint) == -1) {
        zsys_error ("kp_server: cannot bind endpoint=%s: %s", config->endpoint,
                    zmq_strerror (zmq_errno ()));
        return -1;
    }
    free (self->endpoint);
    self->endpoint = zsock_last_endpoint (self->router);

    s_partners_sync (self);
    //  Bodies that were due to go when the broker stopped
    for (size_t index = 0; index < self->deletions_size; index++) {
        uint32_t message = self->deletions [index];
        bool read = kp_accepted_get (self->accepted, message)->flags & KP_MESSAGE_READ;
        s_body_delete (self, message, read? KP__WIRE__ERROR_CODE__OK:
                                            KP__WIRE__ERROR_CODE__EXPIRED);
    }
    free (self->deletions);
    self->deletions = NULL;
    self->deletions_size = self->deletions_limit = 0;
    Kp__Wire__Record record = KP__WIRE__RECORD__INIT;
    record.event = KP__WIRE__EVENT_KIND__BROKER_START;
    s_record_append (self, &record, NULL);
    s_commit (self, true);
    s_checkpoint (self);
    if (self->fatal)
        return -1;
    zpoller_add (self->poller, self->router);
    zpoller_add (self->poller, self->zap);
    zsys_notice ("kp_server: listening endpoint=%s partners=%zu",
                 self->endpoint, kp_registry_size (self->registry));
    return 0;
}

//  --------------------------------------------------------------------------
//  Constructor and destructor of the actor's state

static self_t *
s_self_new (zsock_t *pipe, const kp_config_t *config)
{
    self_t *self = (self_t *) zmalloc (sizeof (self_t));
    assert (self);
    self->pipe = pipe;
    self->config = config;
    self->endpoint = strdup ("");
    self->accepted = kp_accepted_new ();
    self->queue = kp_queue_new (self->accepted);
    self->sessions = zhashx_new ();
    zhashx_set_destructor (self->sessions, s_session_destroy);
    zhashx_set_key_hasher (self->sessions, s_routing_hash);
    zhashx_set_key_comparator (self->sessions, s_routing_compare);
    zhashx_set_key_duplicator (self->sessions, NULL);
    zhashx_set_key_destructor (self->sessions, NULL);
    self->partners_seen = zhashx_new ();
    zhashx_set_destructor (self->partners_seen, s_free_item);
    self->auth_failures = zhashx_new ();
    zhashx_set_destructor (self->auth_failures, s_free_item);
    self->pack_limit = 4096;
    self->pack_buffer = (uint8_t *) malloc (self->pack_limit);
    assert (self->pack_buffer);
    kp_arena_init (&self->arena);
    self->poller = zpoller_new (pipe, NULL);
    assert (self->poller);
    return self;
}

static void
s_self_destroy (self_t **self_p)
{
    assert (self_p);
    self_t *self = *self_p;
    if (!self)
        return;
    if (self->log && !self->fatal && *self->endpoint) {
        //  Every body durable before BROKER_STOP can be: a clean stop never
        //  leaves a body to void (kp-audit holds it to that)
        s_commit (self, true);
        Kp__Wire__Record record = KP__WIRE__RECORD__INIT;
        record.event = KP__WIRE__EVENT_KIND__BROKER_STOP;
        s_record_append (self, &record, NULL);
        s_commit (self, true);
        s_checkpoint (self);
        zsys_notice ("kp_server: stopped records=%llu",
                     (unsigned long long) kp_log_size (self->log));
    }
    zpoller_destroy (&self->poller);
    zsock_destroy (&self->router);
    zsock_destroy (&self->zap);
    for (size_t index = 0; index < self->replies_size; index++)
        zmq_msg_close (&self->replies [index].message);
    free (self->replies);
    zhashx_destroy (&self->auth_failures);
    zhashx_destroy (&self->partners_seen);
    free (self->deletions);
    free (self->lost);
    free (self->due);
    zhashx_destroy (&self->sessions);
    kp_queue_destroy (&self->queue);
    kp_accepted_destroy (&self->accepted);
    kp_notary_destroy (&self->notary);
    kp_log_destroy (&self->bodies);
    kp_log_destroy (&self->log);
    kp_registry_destroy (&self->registry);
    free (self->pack_buffer);
    kp_arena_destroy (&self->arena);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Pipe commands from main

static void
s_pipe_command (self_t *self)
{
    char *command = zstr_recv (self->pipe);
    if (!command) {
        self->terminated = true;
        return;
    }
    if (streq (command, "$TERM"))
        self->terminated = true;
    else
    if (streq (command, "ENDPOINT"))
        zstr_send (self->pipe, self->endpoint);
    else
    if (streq (command, "RELOAD")) {
        if (self->registry && !self->fatal)
            s_registry_reload (self);
        zstr_send (self->pipe, "OK");
    }
    else {
        zsys_error ("kp_server: invalid pipe command '%s'", command);
        assert (false);
    }
    free (command);
}

//  --------------------------------------------------------------------------
//  The actor

void
kp_server (zsock_t *pipe, void *args)
{
    assert (pipe);
    assert (args);
    self_t *self = s_self_new (pipe, (const kp_config_t *) args);
    bool started = s_start (self) == 0;
    kp_arena_reset (&self->arena);
    if (!started) {
        //  Say why once more in one line; the pipe still answers ENDPOINT
        zsys_error ("kp_server: start-up failed; see the lines above");
        free (self->endpoint);
        self->endpoint = strdup ("");
    }
    zsock_signal (pipe, 0);
    while (!self->terminated) {
        int timeout = started && !self->fatal? S_TICK: -1;
        void *which = zpoller_wait (self->poller, timeout);
        if (zpoller_terminated (self->poller))
            break;
        if (which == pipe)
            s_pipe_command (self);
        if (!started || self->fatal)
            continue;
        //  ZAP first: handshakes must never wait behind a batch
        while (zsock_events (self->zap) & ZMQ_POLLIN)
            s_zap_handle (self);
        s_router_drain (self);
        s_commit (self, false);
        s_dispatch (self);
        s_timers (self);
        kp_arena_reset (&self->arena);
        if (self->fatal) {
            //  Stop polling the clients; wait for main's $TERM
            zpoller_remove (self->poller, self->router);
            zpoller_remove (self->poller, self->zap);
        }
    }
    s_self_destroy (&self);
}
