/*  =========================================================================
    kp_client - the ketenpost client: one CurveZMQ session with the broker

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
@header
    A kp_client_t owns one DEALER socket (CURVE client) to ketenpostd and
    speaks the wire protocol of docs/PROTOCOL.md over it: Hello/Welcome,
    Submit -> Receipt | Error, Deliver/Status -> Ack | Nack, Credit, and
    Ping/Pong as keepalive. It is synchronous: work happens only inside
    kp_client_new, _send, _recv, _ack, _nack, _receive and _destroy, in the
    caller's thread. No background thread, no shared state.

    Deliveries are at-least-once; this class makes them exactly-once for the
    application: every message id (status: id + status) handed out is
    remembered, and with a state directory every acknowledged one is
    journalled to disk (fdatasync) before the Ack leaves, so a redelivery
    after a reconnect, a broker restart or our own crash is acked silently.

    Bodies are end to end: before a Submit we ask the broker's directory
    who receives the message (cached), check that partner's registration
    with the region key the application gave us, and seal the body to it
    (kp_seal); a Deliver is opened and checked the same way, and refused
    with a Nack when anything fails. Acks carry our signed receipt; the
    receipt in a DELIVERED status is checked with the recipient's key.
@end
*/
#include "kp_msg_internal.h"
#include "kp_seal.h"
#include <sodium.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <sys/file.h>
#include <sys/stat.h>

#define S_MAX_FRAME (64 * 1024 * 1024)  //  largest command we unpack
#define S_PING_IVL 1000             //  msec idle before a Ping, at most
#define S_HELLO_RETRY 2000          //  msec without Welcome before resending
#define S_HELLO_POLL 100            //  msec between tries while disconnected
#define S_FLUSH_WAIT 1000           //  msec destroy waits for acks to land
#define S_DEFAULT_TIMEOUT 5000      //  msec, send timeout per try
#define S_DEFAULT_TRIES 3           //  send tries
#define S_JOURNAL_NAME "journal"    //  file in the state directory
#define S_ROUTE_TTL (10 * 60 * 1000)    //  msec a directory answer is cached
#define S_SENT_MAX 10000            //  sealed body hashes kept for receipts

//  What happened to a message we were given, by duplicate key
typedef enum {
    S_QUEUED = 1,                   //  in our inbox, not handed out yet
    S_HANDED = 2,                   //  handed to the application, unacked
    S_ACKED = 3,                    //  acknowledged (and journalled)
    S_NACKED = 4                    //  refused by the application
} s_state_t;

struct _kp_client_t {
    zsock_t *dealer;                //  DEALER, CURVE client, to the broker
    char *endpoint;                 //  broker endpoint
    char *partner;                  //  our partner id, from the Welcome
    char *role;                     //  our role name, from the Welcome
    char *broker;                   //  broker name, from the Welcome
    uint64_t max_message;           //  largest frame the broker accepts
    unsigned credit;                //  delivery window we asked for
    int send_timeout;               //  msec per try of kp_client_send
    int tries;                      //  tries of kp_client_send
    bool hello_pending;             //  a Hello is due or out, no Welcome yet
    bool hello_unsent;              //  the last Hello could not be sent
    bool hello_polled;              //  POLLOUT gave a Hello that failed too
    int64_t hello_due;              //  mono ms to (re)send the Hello
    uint64_t session;               //  counts Welcomes; changes on re-hello
    int64_t last_send;              //  mono ms of our last command
    uint64_t ping_nonce;            //  nonce of our last Ping
    int64_t ping_ivl;               //  msec idle before we send a Ping
    bool acks_unconfirmed;          //  acks sent since the last Pong
    bool interrupted;               //  a poll was interrupted by a signal
    zlistx_t *inbox;                //  kp_msg_t *, received, not handed out
    zhashx_t *seen;                 //  duplicate key -> s_state_t
    char *state_dir;                //  journal directory, or NULL
    int journal_fd;                 //  journal file, -1 without state dir
    bool journal_broken;            //  a write or sync failed: no more acks
    char *failure;                  //  "CODE: reason" once revoked, or NULL
    kp_seal_t *seal;                //  our signing and sealing keys, or NULL
    const char *seal_fault;         //  why seal is NULL (static text)
    zhashx_t *routes;               //  "type address ref" -> s_route_t
    zhashx_t *signers;              //  partner id -> kp_vouched_t (receipt keys)
    zhashx_t *sent;                 //  id hex -> SHA-256 of our sealed body
};

//  A directory answer: who gets a message of one type for one address,
//  with the keys the region vouches for
typedef struct {
    int64_t expires;                //  mono ms after which we ask again
    kp_vouched_t recipient;         //  the recipient partner
    size_t auditor_count;           //  auditors that must also read it
    kp_vouched_t auditors [KP_SEAL_READERS_MAX - 1];
} s_route_t;

//  --------------------------------------------------------------------------
//  One line on stderr for the caller's user, prefixed with the program name
//  (the header promises this for constructor and state-dir failures)

static void
s_complain (const char *format, ...)
{
    va_list args;
    va_start (args, format);
    char *text = zsys_vprintf (format, args);
    va_end (args);
    fprintf (stderr, "%s: %s\n", program_invocation_short_name, text? text: format);
    free (text);
}

//  --------------------------------------------------------------------------
//  Send one command; 0, or -1 if it could not be queued (no connection:
//  the protocol recovers by resending or by redelivery)

static int
s_send (kp_client_t *self, const Kp__Wire__Command *command)
{
    zframe_t *frame = kp_command_pack (command);
    int rc = zmq_send (zsock_resolve (self->dealer), zframe_data (frame),
                       zframe_size (frame), ZMQ_DONTWAIT);
    zframe_destroy (&frame);
    if (rc < 0) {
        kp_debug ("kp_client: cannot send command=%d error=%s",
                  (int) command->kind_case, zmq_strerror (zmq_errno ()));
        return -1;
    }
    self->last_send = kp_mono_ms ();
    return 0;
}

//  --------------------------------------------------------------------------
//  Send Hello with our credit window; from now on wait for the Welcome
static void
s_send_hello (kp_client_t *self)
{
    char *agent = zsys_sprintf ("%s libketenpost/%d", program_invocation_short_name,
                                KP_PROTOCOL_VERSION);
    Kp__Wire__Hello hello = KP__WIRE__HELLO__INIT;
    hello.version = KP_PROTOCOL_VERSION;
    hello.credit = self->credit;
    hello.agent = agent;
    Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
    command.kind_case = KP__WIRE__COMMAND__KIND_HELLO;
    command.hello = &hello;
    int rc = s_send (self, &command);
    free (agent);
    self->hello_pending = true;
    self->hello_unsent = rc != 0;
    if (rc == 0)
        self->hello_polled = false;
    self->hello_due = kp_mono_ms () + (rc? S_HELLO_POLL: S_HELLO_RETRY);
}

//  --------------------------------------------------------------------------
//  Send a Ping; the Pong tells us the broker has seen all we sent before
static void
s_send_ping (kp_client_t *self)
{
    Kp__Wire__Ping ping = KP__WIRE__PING__INIT;
    ping.nonce = ++self->ping_nonce;
    Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
    command.kind_case = KP__WIRE__COMMAND__KIND_PING;
    command.ping = &ping;
    if (s_send (self, &command))
        self->last_send = kp_mono_ms ();    //  try again a full interval on
}

//  --------------------------------------------------------------------------
//  Acknowledge a delivery tag
static void
s_send_ack (kp_client_t *self, uint64_t seq, const uint8_t *receipt, size_t receipt_size)
{
    Kp__Wire__Ack ack = KP__WIRE__ACK__INIT;
    ack.seq = seq;
    ack.receipt.data = (uint8_t *) receipt;
    ack.receipt.len = receipt_size;
    Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
    command.kind_case = KP__WIRE__COMMAND__KIND_ACK;
    command.ack = &ack;
    s_send (self, &command);
    self->acks_unconfirmed = true;
}

//  --------------------------------------------------------------------------
//  Acknowledge a received message or status: a message with our signed
//  receipt over its id and sealed body, so that its sender can prove we
//  took it

static void
s_ack_msg (kp_client_t *self, kp_msg_t *msg)
{
    if (msg->is_status || !self->seal) {
        s_send_ack (self, msg->seq, NULL, 0);
        return;
    }
    uint8_t receipt [KP_SEAL_RECEIPT_MAX];
    size_t size = kp_seal_receipt (self->seal, msg->id, msg->body_hash, kp_now_ms (),
                                   receipt);
    s_send_ack (self, msg->seq, receipt, size);
}

//  --------------------------------------------------------------------------
//  Refuse a delivery tag with a reason
static void
s_send_nack (kp_client_t *self, uint64_t seq, const char *reason)
{
    Kp__Wire__Nack nack = KP__WIRE__NACK__INIT;
    nack.seq = seq;
    nack.reason = (char *) reason;
    Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
    command.kind_case = KP__WIRE__COMMAND__KIND_NACK;
    command.nack = &nack;
    s_send (self, &command);
    self->acks_unconfirmed = true;
}

//  --------------------------------------------------------------------------
//  Offer a received message or status to the application, unless it is a
//  duplicate. Takes ownership of msg.
//
//  A redelivery of something already acknowledged (in this process, or in
//  the journal by an earlier one) is acked again silently: the broker lost
//  our Ack. A redelivery of something queued or handed out but not yet
//  acknowledged is dropped: the application will ack the first copy, with
//  the same delivery tag.

static void
s_offer (kp_client_t *self, kp_msg_t *msg)
{
    s_state_t state = (s_state_t) (uintptr_t) zhashx_lookup (self->seen, msg->key);
    if (state == S_ACKED) {
        kp_debug ("kp_client: duplicate acked again key=%s seq=%" PRIu64,
                  msg->key, msg->seq);
        s_ack_msg (self, msg);
        kp_msg_destroy (&msg);
    }
    else if (state == S_NACKED) {
        s_send_nack (self, msg->seq, "refused by the recipient");
        kp_msg_destroy (&msg);
    }
    else if (state == S_QUEUED || state == S_HANDED) {
        kp_debug ("kp_client: duplicate dropped key=%s seq=%" PRIu64, msg->key, msg->seq);
        kp_msg_destroy (&msg);
    }
    else {
        zhashx_update (self->seen, msg->key, (void *) (uintptr_t) S_QUEUED);
        zlistx_add_end (self->inbox, msg);
    }
}

//  --------------------------------------------------------------------------
//  A Deliver: verify, then offer; a delivery we cannot hand out is nacked
//
//  In this order: the envelope and the sealed body's hash; the sender's
//  registration, signed by the region key we got out of band, naming the
//  partner and role the broker says sent it; the body opens with our key
//  under this very envelope; the sender's signature over envelope and
//  body; the body's schema and data-minimisation rules. Any failure is a
//  Nack with the reason, which the sender gets as a REFUSED status.

static kp_msg_t *
s_open_delivery (kp_client_t *self, const Kp__Wire__Deliver *deliver,
                 const char **reason_p)
{
    const char *reason = kp_msg_deliver_check (deliver);
    if (reason) {
        *reason_p = reason;
        return NULL;
    }
    if (!self->seal) {
        *reason_p = "recipient has no sealing key: cannot open bodies";
        return NULL;
    }
    if (!kp_seal_has_region_key (self->seal)) {
        *reason_p = "recipient has no region key: cannot check the sender";
        return NULL;
    }
    kp_vouched_t sender;
    if (kp_seal_verify (self->seal, deliver->sender_registration, &sender, reason_p))
        return NULL;
    const Kp__Wire__Envelope *envelope = deliver->envelope;
    if (!envelope->sender || !streq (sender.partner, envelope->sender)
    ||  sender.role != envelope->sender_role) {
        *reason_p = "sender's registration names another partner or role";
        return NULL;
    }
    size_t body_size = 0;
    uint8_t *body = kp_seal_open (self->seal, envelope, deliver->body.data,
                                  deliver->body.len, sender.sign_key, &body_size,
                                  reason_p);
    if (!body)
        return NULL;
    kp_msg_t *msg = kp_msg_new_delivered (deliver, body, body_size, reason_p);
    sodium_memzero (body, body_size);
    free (body);
    return msg;
}

static void
s_on_deliver (kp_client_t *self, const Kp__Wire__Deliver *deliver)
{
    const char *reason = NULL;
    kp_msg_t *msg = s_open_delivery (self, deliver, &reason);
    if (msg)
        s_offer (self, msg);
    else {
        zsys_warning ("kp_client: delivery refused seq=%" PRIu64 " reason=%s",
                      deliver->seq, reason);
        s_send_nack (self, deliver->seq, reason);
    }
}

//  --------------------------------------------------------------------------
//  A Status about a message we sent: offer it; ack one we cannot read, so
//  that it does not come back for ever
static void
s_on_status (kp_client_t *self, const Kp__Wire__Status *status)
{
    kp_msg_t *msg = kp_msg_new_status (status);
    if (msg)
        s_offer (self, msg);
    else {
        zsys_warning ("kp_client: unreadable status dropped seq=%" PRIu64, status->seq);
        s_send_ack (self, status->seq, NULL, 0);
    }
}

//  --------------------------------------------------------------------------
//  A Welcome: the session is (re)established
static void
s_on_welcome (kp_client_t *self, const Kp__Wire__Welcome *welcome)
{
    zstr_free (&self->partner);
    zstr_free (&self->role);
    zstr_free (&self->broker);
    const char *role = kp_role_name (welcome->role);
    self->partner = strdup (welcome->partner);
    self->role = strdup (role? role: "");
    self->broker = strdup (welcome->broker);
    assert (self->partner && self->role && self->broker);
    self->max_message = welcome->max_message;
    //  Ping well within the broker's idle limit (3 heartbeats)
    self->ping_ivl = S_PING_IVL;
    if (welcome->heartbeat_ms > 0 && welcome->heartbeat_ms < S_PING_IVL)
        self->ping_ivl = welcome->heartbeat_ms;
    if (self->hello_pending) {
        self->hello_pending = false;
        self->session++;
    }
    kp_debug ("kp_client: session partner=%s role=%s broker=%s",
              self->partner, self->role, self->broker);
}

//  --------------------------------------------------------------------------
//  Handle one command from the broker. Returns the command if the caller
//  must look at it (Receipt, Error other than UNEXPECTED), else frees it and
//  returns NULL.
//
//  UNEXPECTED means the broker has no session for this connection: after a
//  ZMQ reconnect it sees a new peer, after its restart it knows nobody. We
//  say Hello again; whatever was in flight is resent by kp_client_send
//  (same id) or redelivered by the broker (and deduplicated here).

static Kp__Wire__Command *
s_dispatch (kp_client_t *self, Kp__Wire__Command *command)
{
    switch (command->kind_case) {
        case KP__WIRE__COMMAND__KIND_WELCOME:
            s_on_welcome (self, command->welcome);
            break;
        case KP__WIRE__COMMAND__KIND_DELIVER:
            s_on_deliver (self, command->deliver);
            break;
        case KP__WIRE__COMMAND__KIND_STATUS:
            s_on_status (self, command->status);
            break;
        case KP__WIRE__COMMAND__KIND_PONG:
            if (command->pong->nonce == self->ping_nonce)
                self->acks_unconfirmed = false;
            break;
        case KP__WIRE__COMMAND__KIND_PING: {
            Kp__Wire__Command pong = KP__WIRE__COMMAND__INIT;
            pong.kind_case = KP__WIRE__COMMAND__KIND_PONG;
            pong.pong = command->ping;
            s_send (self, &pong);
            break;
        }
        case KP__WIRE__COMMAND__KIND_ERROR:
            //  Our key was revoked while we were connected: nothing we
            //  send will be taken any more
            if ((command->error->code == KP__WIRE__ERROR_CODE__REVOKED
            ||   command->error->code == KP__WIRE__ERROR_CODE__NOT_REGISTERED)
            &&  !self->failure) {
                self->failure = zsys_sprintf ("%s: %s",
                                              kp_error_name (command->error->code),
                                              command->error->reason);
                assert (self->failure);
            }
            if (command->error->code != KP__WIRE__ERROR_CODE__UNEXPECTED)
                return command;
            //  Errors for commands sent before our Hello arrive before its
            //  Welcome: one Hello is enough for all of them
            if (!self->hello_pending || self->hello_unsent) {
                kp_debug ("kp_client: broker lost our session, saying hello again");
                s_send_hello (self);
            }
            break;
        case KP__WIRE__COMMAND__KIND_RECEIPT:
        case KP__WIRE__COMMAND__KIND_DIRECTORY_ANSWER:
            return command;
        default:
            zsys_warning ("kp_client: unexpected command from broker kind=%d",
                          (int) command->kind_case);
            break;
    }
    kp__wire__command__free_unpacked (command, NULL);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Wait until deadline (mono ms, -1 = none) for one command, keeping the
//  session alive meanwhile (Ping when idle, Hello again when no Welcome).
//  Returns a command for the caller (see s_dispatch) or NULL. Sets
//  self->interrupted if a signal broke the wait.

static Kp__Wire__Command *
s_step (kp_client_t *self, int64_t deadline)
{
    int64_t now = kp_mono_ms ();
    int64_t timer = self->hello_pending? self->hello_due: self->last_send + self->ping_ivl;
    if (now >= timer) {
        if (self->hello_pending)
            s_send_hello (self);
        else
            s_send_ping (self);
        timer = self->hello_pending? self->hello_due: self->last_send + self->ping_ivl;
    }
    int64_t until = (deadline >= 0 && deadline < timer)? deadline: timer;
    long wait = until > now? (long) (until - now): 0;

    void *handle = zsock_resolve (self->dealer);
    zmq_pollitem_t item = { handle, 0, ZMQ_POLLIN, 0 };
    //  Say Hello as soon as we connect; if even that fails (queue full),
    //  fall back to the timer rather than spin on POLLOUT
    if (self->hello_pending && self->hello_unsent && !self->hello_polled)
        item.events |= ZMQ_POLLOUT;
    int rc = zmq_poll (&item, 1, wait);
    if (rc < 0) {
        if (zmq_errno () == EINTR)
            self->interrupted = true;
        return NULL;
    }
    if (rc == 0)
        return NULL;
    if ((item.revents & ZMQ_POLLOUT) && self->hello_pending && self->hello_unsent) {
        self->hello_polled = true;
        s_send_hello (self);
    }
    if (!(item.revents & ZMQ_POLLIN))
        return NULL;

    zmq_msg_t frame;
    zmq_msg_init (&frame);
    if (zmq_msg_recv (&frame, handle, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close (&frame);
        return NULL;
    }
    bool more = zmq_msg_more (&frame);
    Kp__Wire__Command *command = more? NULL
        : kp_command_unpack ((const uint8_t *) zmq_msg_data (&frame),
                             zmq_msg_size (&frame), S_MAX_FRAME);
    zmq_msg_close (&frame);
    while (more) {                  //  one command per frame: drop the rest
        zmq_msg_init (&frame);
        if (zmq_msg_recv (&frame, handle, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close (&frame);
            break;
        }
        more = zmq_msg_more (&frame);
        zmq_msg_close (&frame);
    }
    if (!command) {
        zsys_warning ("kp_client: malformed command from broker dropped");
        return NULL;
    }
    return s_dispatch (self, command);
}

//  --------------------------------------------------------------------------
//  True if a command is waiting to be read right now
static bool
s_readable (kp_client_t *self)
{
    return (zsock_events (self->dealer) & ZMQ_POLLIN) != 0;
}

//  --------------------------------------------------------------------------
//  Read the broker's public key from its public cert (ZPL). We read the
//  file ourselves: zcert_load would also load a "_secret" file lying beside
//  it. Returns the Z85 text in a new string, or NULL.

static char *
s_broker_key (const char *path)
{
    zconfig_t *root = zconfig_load (path);
    if (!root) {
        s_complain ("cannot read broker cert '%s'", path);
        return NULL;
    }
    const char *text = zconfig_get (root, "curve/public-key", NULL);
    uint8_t key [32];
    char *result = NULL;
    if (text && strlen (text) == KP_KEY_TEXT && zmq_z85_decode (key, text))
        result = strdup (text);
    else
        s_complain ("broker cert '%s' holds no valid curve public-key", path);
    zconfig_destroy (&root);
    return result;
}

//  --------------------------------------------------------------------------
//  Apply our keypair from the secret cert to the socket, then wipe and drop
//  the cert at once. Returns 0 or -1.
static int
s_apply_cert (zsock_t *dealer, const char *path)
{
    zcert_t *cert = zcert_load (path);
    if (!cert) {
        s_complain ("cannot read cert '%s'", path);
        return -1;
    }
    int rc = 0;
    if (sodium_is_zero (zcert_secret_key (cert), 32)) {
        s_complain ("cert '%s' holds no secret key (use the _secret file kp-keys "
                    "handed out)", path);
        rc = -1;
    }
    else
        zcert_apply (cert, dealer);
    //  CZMQ does not wipe a cert: do it before it is freed. The getters
    //  return const views of the cert's own writable buffers.
    sodium_memzero ((void *) (uintptr_t) zcert_secret_key (cert), 32);
    const char *secret_text = zcert_secret_txt (cert);
    sodium_memzero ((void *) (uintptr_t) secret_text, strlen (secret_text));
    //  The cert's metadata holds our signing and sealing secrets too
    //  (kp_seal_load reads them from the file itself)
    const char *names [] = { "sign-secret", "seal-secret" };
    for (size_t index = 0; index < sizeof names / sizeof names [0]; index++) {
        const char *value = zcert_meta (cert, names [index]);
        if (value)
            sodium_memzero ((void *) (uintptr_t) value, strlen (value));
    }
    zcert_destroy (&cert);
    return rc;
}

//  --------------------------------------------------------------------------
//  Destructor for the items of our hash tables (plain heap blocks)
static void
s_item_free (void **item_p)
{
    free (*item_p);
    *item_p = NULL;
}

//  Copy size bytes into a new heap block
static void *
s_memdup (const void *data, size_t size)
{
    void *copy = malloc (size);
    assert (copy);
    memcpy (copy, data, size);
    return copy;
}

//  --------------------------------------------------------------------------
//  Connect to the broker and wait for its Welcome; NULL with one line on
//  stderr on failure

kp_client_t *
kp_client_new (const char *endpoint, const char *broker_cert, const char *cert,
               int timeout_ms)
{
    assert (endpoint);
    assert (broker_cert);
    assert (cert);
    if (timeout_ms <= 0)
        timeout_ms = S_DEFAULT_TIMEOUT;
    if (sodium_init () < 0) {
        s_complain ("libsodium cannot start");
        return NULL;
    }
    char *server_key = s_broker_key (broker_cert);
    if (!server_key)
        return NULL;

    kp_client_t *self = (kp_client_t *) zmalloc (sizeof (kp_client_t));
    assert (self);
    self->endpoint = strdup (endpoint);
    self->partner = strdup ("");
    self->role = strdup ("");
    self->broker = strdup ("");
    self->send_timeout = S_DEFAULT_TIMEOUT;
    self->tries = S_DEFAULT_TRIES;
    self->ping_ivl = S_PING_IVL;
    self->last_send = kp_mono_ms ();
    self->inbox = zlistx_new ();
    self->seen = zhashx_new ();
    self->journal_fd = -1;
    self->routes = zhashx_new ();
    self->signers = zhashx_new ();
    self->sent = zhashx_new ();
    assert (self->routes && self->signers && self->sent);
    zhashx_set_destructor (self->routes, s_item_free);
    zhashx_set_destructor (self->signers, s_item_free);
    zhashx_set_destructor (self->sent, s_item_free);
    self->dealer = zsock_new (ZMQ_DEALER);
    assert (self->endpoint && self->partner && self->role && self->broker
            && self->inbox && self->seen);
    if (!self->dealer) {
        s_complain ("cannot create socket: %s", zmq_strerror (zmq_errno ()));
        goto failed;
    }
    zsock_set_curve_serverkey (self->dealer, server_key);
    if (s_apply_cert (self->dealer, cert))
        goto failed;
    //  Our end-to-end keys; without them we can still connect, but every
    //  send fails and every delivery is refused (fail closed)
    self->seal = kp_seal_load (cert, &self->seal_fault);
    zsock_set_linger (self->dealer, 0);
    zsock_set_reconnect_ivl (self->dealer, 100);
    zsock_set_heartbeat_ivl (self->dealer, 1000);
    zsock_set_heartbeat_timeout (self->dealer, 3000);
    zsock_set_handshake_ivl (self->dealer, 5000);
    zsock_set_maxmsgsize (self->dealer, S_MAX_FRAME + 1024);
    //  Queue commands only on a finished (authenticated) connection: while
    //  disconnected, sends fail at once instead of piling up Pings, and a
    //  POLLOUT tells us when to say Hello
    zsock_set_immediate (self->dealer, 1);
    if (zsock_connect (self->dealer, "%s", endpoint)) {
        s_complain ("cannot connect to '%s': %s", endpoint, zmq_strerror (zmq_errno ()));
        goto failed;
    }
    s_send_hello (self);
    int64_t deadline = kp_mono_ms () + timeout_ms;
    while (self->session == 0 && kp_mono_ms () < deadline) {
        Kp__Wire__Command *command = s_step (self, deadline);
        if (command && command->kind_case == KP__WIRE__COMMAND__KIND_ERROR) {
            const char *code = kp_error_name (command->error->code);
            s_complain ("broker refused the session: %s: %s", code? code: "ERROR",
                        command->error->reason);
            kp__wire__command__free_unpacked (command, NULL);
            goto failed;
        }
        if (command)
            kp__wire__command__free_unpacked (command, NULL);
        if (self->interrupted || zsys_interrupted) {
            s_complain ("interrupted while connecting to '%s'", endpoint);
            goto failed;
        }
    }
    if (self->session == 0) {
        s_complain ("broker did not answer within %d ms (wrong broker cert, "
                    "unknown or revoked key, or broker down)", timeout_ms);
        goto failed;
    }
    free (server_key);
    return self;

failed:
    free (server_key);
    kp_client_destroy (&self);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Close the connection; idempotent
//
//  Acks are fire-and-forget. Before closing (linger 0) we make sure the
//  broker has read the last ones: a Ping is answered only after everything
//  sent before it, so its Pong proves our acks arrived. Without this, an
//  ack lost at exit means a redelivery the next run, which a client without
//  a state directory would hand out again.

void
kp_client_destroy (kp_client_t **self_p)
{
    assert (self_p);
    kp_client_t *self = *self_p;
    if (!self)
        return;
    if (self->dealer && self->session > 0 && self->acks_unconfirmed
    &&  !self->hello_pending && !self->failure) {
        s_send_ping (self);
        int64_t deadline = kp_mono_ms () + S_FLUSH_WAIT;
        while (self->acks_unconfirmed && !self->hello_pending
           &&  kp_mono_ms () < deadline) {
            self->interrupted = false;
            Kp__Wire__Command *command = s_step (self, deadline);
            if (command)
                kp__wire__command__free_unpacked (command, NULL);
        }
    }
    zsock_destroy (&self->dealer);
    if (self->journal_fd >= 0)
        close (self->journal_fd);   //  also releases the lock
    zstr_free (&self->state_dir);
    if (self->inbox) {
        kp_msg_t *msg = (kp_msg_t *) zlistx_first (self->inbox);
        while (msg) {
            kp_msg_destroy (&msg);
            msg = (kp_msg_t *) zlistx_next (self->inbox);
        }
        zlistx_destroy (&self->inbox);
    }
    zhashx_destroy (&self->seen);
    zhashx_destroy (&self->sent);
    zhashx_destroy (&self->signers);
    zhashx_destroy (&self->routes);
    kp_seal_destroy (&self->seal);
    zstr_free (&self->failure);
    zstr_free (&self->broker);
    zstr_free (&self->role);
    zstr_free (&self->partner);
    zstr_free (&self->endpoint);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Our partner id and role as the broker knows them

const char *
kp_client_partner (kp_client_t *self)
{
    assert (self);
    return self->partner;
}

const char *
kp_client_role (kp_client_t *self)
{
    assert (self);
    return self->role;
}

//  --------------------------------------------------------------------------
//  Why the broker will no longer serve us ("CODE: reason"), or ""

const char *
kp_client_failure (kp_client_t *self)
{
    assert (self);
    return self->failure? self->failure: "";
}

//  --------------------------------------------------------------------------
//  True if line (without newline) is a journal entry: 32 hex digits,
//  optionally a space and a status name
static bool
s_journal_line_valid (const char *line, size_t size)
{
    if (size < KP_ID_SIZE * 2)
        return false;
    for (size_t index = 0; index < KP_ID_SIZE * 2; index++)
        if (!isxdigit ((unsigned char) line [index])
        ||  isupper ((unsigned char) line [index]))
            return false;
    if (size == KP_ID_SIZE * 2)
        return true;
    if (line [KP_ID_SIZE * 2] != ' ')
        return false;
    const char *name = line + KP_ID_SIZE * 2 + 1;
    size_t name_size = size - KP_ID_SIZE * 2 - 1;
    for (int status = 1; kp_status_name ((Kp__Wire__StatusKind) status); status++) {
        const char *known = kp_status_name ((Kp__Wire__StatusKind) status);
        if (strlen (known) == name_size && memcmp (known, name, name_size) == 0)
            return true;
    }
    return false;
}

//  --------------------------------------------------------------------------
//  Read the whole journal; NULL on error. Caller frees; *size_p is its size.
static char *
s_journal_read (int fd, const char *path, size_t *size_p)
{
    struct stat info;
    if (fstat (fd, &info)) {
        s_complain ("cannot read journal '%s': %s", path, strerror (errno));
        return NULL;
    }
    size_t size = (size_t) info.st_size;
    char *text = (char *) malloc (size + 1);
    assert (text);
    size_t done = 0;
    while (done < size) {
        ssize_t count = pread (fd, text + done, size - done, (off_t) done);
        if (count < 0 && errno == EINTR)
            continue;
        if (count <= 0) {
            s_complain ("cannot read journal '%s': %s", path,
                        count? strerror (errno): "file shrank");
            free (text);
            return NULL;
        }
        done += (size_t) count;
    }
    text [size] = 0;
    *size_p = size;
    return text;
}

//  --------------------------------------------------------------------------
//  fsync a directory, so that a file created in it survives a crash
static int
s_sync_dir (const char *dir)
{
    int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync (fd);
    close (fd);
    return rc;
}

//  --------------------------------------------------------------------------
//  Remember acknowledged ids in dir; load what earlier runs acknowledged.
//  Returns 0, or -1 with one line on stderr.
//
//  The journal is one line per acknowledged item, appended and synced
//  before the Ack is sent. A crash can tear only the last line: it is cut
//  on load (that item was never acked, so it will come again). A bad line
//  before the end means the file was damaged: we refuse to guess.

int
kp_client_set_state_dir (kp_client_t *self, const char *dir)
{
    assert (self);
    assert (dir);
    if (self->journal_fd >= 0) {
        s_complain ("state directory is already set to '%s'", self->state_dir);
        return -1;
    }
    if (zsys_dir_create ("%s", dir)) {
        s_complain ("cannot create state directory '%s': %s", dir, strerror (errno));
        return -1;
    }
    char *path = zsys_sprintf ("%s/%s", dir, S_JOURNAL_NAME);
    assert (path);
    char *text = NULL;
    zhashx_t *loaded = NULL;
    int fd = open (path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        s_complain ("cannot open journal '%s': %s", path, strerror (errno));
        goto failed;
    }
    if (flock (fd, LOCK_EX | LOCK_NB)) {
        if (errno == EWOULDBLOCK)
            s_complain ("state directory '%s' is in use by another process", dir);
        else
            s_complain ("cannot lock journal '%s': %s", path, strerror (errno));
        goto failed;
    }
    size_t size = 0;
    text = s_journal_read (fd, path, &size);
    if (!text)
        goto failed;
    loaded = zhashx_new ();
    assert (loaded);
    size_t start = 0;
    size_t line_number = 1;
    while (start < size) {
        char *end = (char *) memchr (text + start, '\n', size - start);
        if (!end) {
            //  Torn last line: that item was never acked; cut it
            zsys_warning ("kp_client: cutting torn journal tail path=%s offset=%zu",
                          path, start);
            if (ftruncate (fd, (off_t) start) || fdatasync (fd)) {
                s_complain ("cannot repair journal '%s': %s", path, strerror (errno));
                goto failed;
            }
            break;
        }
        size_t line_size = (size_t) (end - (text + start));
        if (!s_journal_line_valid (text + start, line_size)) {
            s_complain ("journal '%s' is damaged at line %zu; restore it from backup "
                        "or remove that line", path, line_number);
            goto failed;
        }
        *end = 0;
        zhashx_update (loaded, text + start, (void *) (uintptr_t) S_ACKED);
        start += line_size + 1;
        line_number++;
    }
    if (s_sync_dir (dir)) {
        s_complain ("cannot sync state directory '%s': %s", dir, strerror (errno));
        goto failed;
    }
    //  Anything that arrived before the journal was loaded: ack what an
    //  earlier run already acknowledged, and drop it from the inbox
    zlistx_t *kept = zlistx_new ();
    assert (kept);
    kp_msg_t *msg;
    while ((msg = (kp_msg_t *) zlistx_detach (self->inbox, NULL))) {
        if (zhashx_lookup (loaded, msg->key)) {
            s_ack_msg (self, msg);
            kp_msg_destroy (&msg);
        }
        else
            zlistx_add_end (kept, msg);
    }
    zlistx_destroy (&self->inbox);
    self->inbox = kept;
    const char *key = NULL;
    for (void *item = zhashx_first (loaded); item; item = zhashx_next (loaded)) {
        key = (const char *) zhashx_cursor (loaded);
        zhashx_update (self->seen, key, (void *) (uintptr_t) S_ACKED);
    }
    zhashx_destroy (&loaded);
    free (text);
    self->journal_fd = fd;
    self->state_dir = strdup (dir);
    assert (self->state_dir);
    zstr_free (&path);
    return 0;

failed:
    zhashx_destroy (&loaded);
    free (text);
    if (fd >= 0)
        close (fd);
    zstr_free (&path);
    return -1;
}

//  --------------------------------------------------------------------------
//  Set the send timeout per try and the number of tries

void
kp_client_set_send_timeout (kp_client_t *self, int timeout_ms, int tries)
{
    assert (self);
    self->send_timeout = timeout_ms > 0? timeout_ms: 1;
    self->tries = tries > 0? tries: 1;
}

//  --------------------------------------------------------------------------
//  Fill a refusal into receipt
static void
s_refusal (kp_receipt_t *receipt, const char *error, const char *reason)
{
    snprintf (receipt->error, sizeof receipt->error, "%s", error);
    snprintf (receipt->reason, sizeof receipt->reason, "%s", reason);
}

//  --------------------------------------------------------------------------
//  True if binary is the 16-byte id of msg
static bool
s_is_our_id (kp_msg_t *msg, ProtobufCBinaryData binary)
{
    return binary.len == KP_ID_SIZE && memcmp (binary.data, msg->id, KP_ID_SIZE) == 0;
}

//  --------------------------------------------------------------------------
//  Trust partner keys vouched for by the region key in path; 0 or -1 with
//  one line on stderr

int
kp_client_set_region_key (kp_client_t *self, const char *path)
{
    assert (self);
    assert (path);
    if (!self->seal) {
        s_complain ("cannot use a region key: %s", self->seal_fault);
        return -1;
    }
    const char *reason = NULL;
    if (kp_seal_load_region_key (self->seal, path, &reason)) {
        s_complain ("region key '%s': %s", path, reason);
        return -1;
    }
    zhashx_purge (self->routes);
    zhashx_purge (self->signers);
    return 0;
}

//  --------------------------------------------------------------------------
//  True if the vouched recipient is one that address may resolve to: the
//  partner named, or one serving the municipality or school code. A broker
//  that answers with someone else's (validly registered) keys is caught.
static bool
s_route_fits (const kp_vouched_t *recipient, const char *address,
              const char *addresses_text)
{
    if (strncmp (address, "partner:", 8) == 0)
        return streq (recipient->partner, address + 8);
    const char *code = strchr (address, ':');
    if (!code)
        return false;
    code++;
    //  addresses_text: the statement's addresses, each followed by '\n'
    char *needle = zsys_sprintf ("\n%s\n", code);
    bool found = strstr (addresses_text, needle) != NULL;
    free (needle);
    return found;
}

//  The addresses of a registration's statement as "\nA\nB\n"; caller frees
static char *
s_addresses_text (const Kp__Wire__Registration *registration)
{
    Kp__Wire__RegistrationStatement *statement = registration
        ? kp__wire__registration_statement__unpack (NULL, registration->statement.len,
                                                    registration->statement.data)
        : NULL;
    char *text = NULL;
    size_t size = 0;
    FILE *stream = open_memstream (&text, &size);
    assert (stream);
    fputc ('\n', stream);
    for (size_t index = 0; statement && index < statement->n_addresses; index++)
        fprintf (stream, "%s\n", statement->addresses [index]);
    fclose (stream);
    if (statement)
        kp__wire__registration_statement__free_unpacked (statement, NULL);
    return text;
}

//  --------------------------------------------------------------------------
//  Check a DirectoryAnswer for msg and make it a route; NULL and a reason
static s_route_t *
s_route_from_answer (kp_client_t *self, kp_msg_t *msg,
                     const Kp__Wire__DirectoryAnswer *answer, const char **reason_p)
{
    s_route_t *route = (s_route_t *) zmalloc (sizeof (s_route_t));
    assert (route);
    const char *reason = NULL;
    if (kp_seal_verify (self->seal, answer->recipient, &route->recipient, &reason)) {
        *reason_p = reason;
        free (route);
        return NULL;
    }
    char *addresses = s_addresses_text (answer->recipient);
    bool fits = s_route_fits (&route->recipient, msg->recipient, addresses);
    free (addresses);
    if (!fits) {
        *reason_p = "the directory answered with a partner that does not serve "
                    "this address";
        free (route);
        return NULL;
    }
    if (answer->n_auditors > KP_SEAL_READERS_MAX - 1) {
        *reason_p = "the directory names too many auditors";
        free (route);
        return NULL;
    }
    for (size_t index = 0; index < answer->n_auditors; index++) {
        kp_vouched_t *auditor = route->auditors + index;
        if (kp_seal_verify (self->seal, answer->auditors [index], auditor, &reason)
        ||  auditor->role != KP__WIRE__ROLE__AUDITOR) {
            *reason_p = reason? reason: "an auditor key is not an auditor's";
            free (route);
            return NULL;
        }
    }
    route->auditor_count = answer->n_auditors;
    route->expires = kp_mono_ms () + S_ROUTE_TTL;
    return route;
}

//  Key of msg's route in the cache; caller frees
static char *
s_route_key (kp_msg_t *msg)
{
    return zsys_sprintf ("%d %s %s", (int) msg->type, msg->recipient, msg->reference_hex);
}

//  --------------------------------------------------------------------------
//  Who receives msg, with vouched keys: from the cache, or asked of the
//  broker (DirectoryQuery -> DirectoryAnswer | Error, resent like a Submit).
//  Returns the route (owned by the cache) or NULL with receipt filled.

static s_route_t *
s_route (kp_client_t *self, kp_msg_t *msg, kp_receipt_t *receipt)
{
    char *key = s_route_key (msg);
    s_route_t *route = (s_route_t *) zhashx_lookup (self->routes, key);
    if (route && route->expires > kp_mono_ms ()) {
        free (key);
        return route;
    }
    zhashx_delete (self->routes, key);
    route = NULL;
    Kp__Wire__DirectoryQuery query = KP__WIRE__DIRECTORY_QUERY__INIT;
    query.type = msg->type;
    query.address = msg->recipient;
    query.reference.data = msg->reference;
    query.reference.len = msg->has_reference? KP_ID_SIZE: 0;
    Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
    command.kind_case = KP__WIRE__COMMAND__KIND_DIRECTORY_QUERY;
    command.directory_query = &query;
    bool answered = false;
    self->interrupted = false;
    for (int attempt = 1; attempt <= self->tries && !answered; attempt++) {
        uint64_t sent_in = self->session;
        bool sent = false;
        if (!self->hello_pending) {
            s_send (self, &command);
            sent = true;
        }
        int64_t deadline = kp_mono_ms () + self->send_timeout;
        while (!answered && (kp_mono_ms () < deadline || s_readable (self))) {
            if (!self->hello_pending && (!sent || self->session != sent_in)) {
                sent_in = self->session;
                s_send (self, &command);
                sent = true;
            }
            Kp__Wire__Command *reply = s_step (self, deadline);
            if (self->interrupted) {
                if (reply)
                    kp__wire__command__free_unpacked (reply, NULL);
                s_refusal (receipt, "TRANSPORT", "interrupted");
                free (key);
                return NULL;
            }
            if (!reply)
                continue;
            if (reply->kind_case == KP__WIRE__COMMAND__KIND_DIRECTORY_ANSWER) {
                const char *reason = NULL;
                route = s_route_from_answer (self, msg, reply->directory_answer, &reason);
                if (!route) {
                    char *text = zsys_sprintf ("directory: %s", reason);
                    s_refusal (receipt, "UNTRUSTED", text);
                    free (text);
                }
                answered = true;
            }
            else
            if (reply->kind_case == KP__WIRE__COMMAND__KIND_ERROR
            &&  (reply->error->id.len == 0 || s_is_our_id (msg, reply->error->id))) {
                const char *code = kp_error_name (reply->error->code);
                s_refusal (receipt, code? code: "ERROR", reply->error->reason);
                answered = true;
            }
            kp__wire__command__free_unpacked (reply, NULL);
        }
    }
    if (!answered) {
        char *reason = zsys_sprintf ("no directory answer from the broker within %d ms "
                                     "(%d tries)", self->send_timeout, self->tries);
        s_refusal (receipt, "TRANSPORT", reason);
        free (reason);
    }
    if (route) {
        zhashx_update (self->routes, key, route);
        zhashx_update (self->signers, route->recipient.partner,
                       s_memdup (&route->recipient, sizeof route->recipient));
    }
    free (key);
    return route;
}

//  --------------------------------------------------------------------------
//  Send msg and wait for its receipt or refusal; 0 if accepted
//
//  The Submit is resent unchanged (same id, same envelope) after each
//  timeout and after each re-hello: the broker answers a known id with its
//  first receipt, so a resend never makes a second message. Deliveries and
//  statuses that arrive meanwhile wait in the inbox for kp_client_recv.

static int
    s_submit (kp_client_t *self, kp_msg_t *msg, Kp__Wire__Envelope *envelope,
              uint8_t *sealed, size_t sealed_size, kp_receipt_t *receipt);

int
kp_client_send (kp_client_t *self, kp_msg_t *msg, kp_receipt_t *receipt)
{
    assert (self);
    assert (msg);
    assert (receipt);
    memset (receipt, 0, sizeof *receipt);
    if (msg->is_status || msg->received) {
        s_refusal (receipt, "INVALID", "only a new message can be sent");
        return -1;
    }
    if (kp_msg_seal (msg)) {
        s_refusal (receipt, "INVALID", kp_msg_error (msg));
        return -1;
    }
    snprintf (receipt->id, sizeof receipt->id, "%s", msg->id_hex);
    if (self->failure) {
        const char *colon = strchr (self->failure, ':');
        char code [24];
        snprintf (code, sizeof code, "%.*s", (int) (colon? colon - self->failure: 0),
                  self->failure);
        s_refusal (receipt, code, colon? colon + 2: self->failure);
        return -1;
    }

    //  Fail closed: no body leaves unsealed, and only to keys the region
    //  vouches for
    if (!self->seal) {
        s_refusal (receipt, "INVALID", self->seal_fault);
        return -1;
    }
    if (!kp_seal_has_region_key (self->seal)) {
        s_refusal (receipt, "INVALID", "no region key (registration.pub): cannot check "
                   "the recipient's keys");
        return -1;
    }
    if (!streq (kp_seal_partner (self->seal), self->partner)) {
        s_refusal (receipt, "INVALID", "our cert's keys are of another partner");
        return -1;
    }
    s_route_t *route = s_route (self, msg, receipt);
    if (!route)
        return -1;

    Kp__Wire__Envelope envelope = KP__WIRE__ENVELOPE__INIT;
    kp_msg_fill_envelope (msg, &envelope);
    //  Not self->partner: a re-hello while we wait replaces that string
    envelope.sender = (char *) kp_seal_partner (self->seal);
    envelope.sender_role = kp_role_from_name (self->role);
    char recipient_partner [KP_SEAL_PARTNER_MAX + 1];
    snprintf (recipient_partner, sizeof recipient_partner, "%s",
              route->recipient.partner);
    envelope.recipient_partner = recipient_partner;
    envelope.recipient_role = route->recipient.role;
    uint8_t readers [KP_SEAL_READERS_MAX][32];
    memcpy (readers [0], route->recipient.seal_key, 32);
    for (size_t index = 0; index < route->auditor_count; index++)
        memcpy (readers [index + 1], route->auditors [index].seal_key, 32);
    size_t sealed_size = 0;
    uint8_t *sealed = kp_seal_body (self->seal, &envelope, msg->body, msg->body_size,
                                    (const uint8_t (*) [32]) readers,
                                    route->auditor_count + 1, &sealed_size);
    uint8_t sealed_hash [KP_HASH_SIZE];
    crypto_hash_sha256 (sealed_hash, sealed, sealed_size);
    envelope.body_length = (uint32_t) sealed_size;
    envelope.body_hash.data = sealed_hash;
    envelope.body_hash.len = KP_HASH_SIZE;
    char *route_key = s_route_key (msg);
    int rc = s_submit (self, msg, &envelope, sealed, sealed_size, receipt);
    if (rc == 0) {
        if (zhashx_size (self->sent) >= S_SENT_MAX)
            zhashx_purge (self->sent);
        zhashx_update (self->sent, msg->id_hex, s_memdup (sealed_hash, KP_HASH_SIZE));
        if (!streq (receipt->recipient_partner, envelope.recipient_partner))
            zsys_warning ("kp_client: broker routed id=%s to %s, sealed for %s",
                          msg->id_hex, receipt->recipient_partner,
                          envelope.recipient_partner);
    }
    else
    if (!streq (receipt->error, "TRANSPORT"))
        zhashx_delete (self->routes, route_key);     //  ask again next time
    free (route_key);
    free (sealed);
    return rc;
}

//  --------------------------------------------------------------------------
//  Submit the sealed body under envelope and wait for the receipt; 0 or -1

static int
s_submit (kp_client_t *self, kp_msg_t *msg, Kp__Wire__Envelope *envelope,
          uint8_t *sealed, size_t sealed_size, kp_receipt_t *receipt)
{
    Kp__Wire__Submit submit = KP__WIRE__SUBMIT__INIT;
    submit.envelope = envelope;
    submit.body.data = sealed;
    submit.body.len = sealed_size;
    Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
    command.kind_case = KP__WIRE__COMMAND__KIND_SUBMIT;
    command.submit = &submit;
    size_t frame_size = kp__wire__command__get_packed_size (&command);
    if ((self->max_message && frame_size > self->max_message)
    ||  frame_size > S_MAX_FRAME) {
        char *reason = zsys_sprintf ("message is %zu bytes; the broker accepts at most %"
                                     PRIu64, frame_size, self->max_message);
        s_refusal (receipt, "TOO_LARGE", reason);
        free (reason);
        return -1;
    }
    self->interrupted = false;
    for (int attempt = 1; attempt <= self->tries; attempt++) {
        //  Without a session the Submit would only earn UNEXPECTED: wait
        //  for the Welcome, then send
        uint64_t sent_in = self->session;
        bool sent = false;
        if (!self->hello_pending) {
            s_send (self, &command);
            sent = true;
        }
        int64_t deadline = kp_mono_ms () + self->send_timeout;
        while (kp_mono_ms () < deadline || s_readable (self)) {
            if (!self->hello_pending && (!sent || self->session != sent_in)) {
                kp_debug ("kp_client: resending id=%s after hello", msg->id_hex);
                sent_in = self->session;
                s_send (self, &command);
                sent = true;
            }
            Kp__Wire__Command *answer = s_step (self, deadline);
            if (self->interrupted) {
                if (answer)
                    kp__wire__command__free_unpacked (answer, NULL);
                s_refusal (receipt, "TRANSPORT", "interrupted");
                return -1;
            }
            if (!answer)
                continue;
            if (answer->kind_case == KP__WIRE__COMMAND__KIND_RECEIPT
            &&  s_is_our_id (msg, answer->receipt->id)) {
                Kp__Wire__Receipt *got = answer->receipt;
                const char *role = kp_role_name (got->recipient_role);
                receipt->seq = got->seq;
                receipt->accepted_at_ms = got->accepted_at_ms;
                snprintf (receipt->recipient_partner, sizeof receipt->recipient_partner,
                          "%s", got->recipient_partner);
                snprintf (receipt->recipient_role, sizeof receipt->recipient_role,
                          "%s", role? role: "");
                receipt->duplicate = got->duplicate;
                kp__wire__command__free_unpacked (answer, NULL);
                return 0;
            }
            if (answer->kind_case == KP__WIRE__COMMAND__KIND_ERROR) {
                Kp__Wire__Error *error = answer->error;
                //  An undecodable or oversized frame cannot name its id; a
                //  revoked key is refused whatever it sends
                bool ours = s_is_our_id (msg, error->id)
                    || (error->id.len == 0
                        && (error->code == KP__WIRE__ERROR_CODE__MALFORMED
                        ||  error->code == KP__WIRE__ERROR_CODE__TOO_LARGE
                        ||  error->code == KP__WIRE__ERROR_CODE__REVOKED
                        ||  error->code == KP__WIRE__ERROR_CODE__NOT_REGISTERED));
                if (ours) {
                    const char *code = kp_error_name (error->code);
                    s_refusal (receipt, code? code: "ERROR", error->reason);
                    kp__wire__command__free_unpacked (answer, NULL);
                    return -1;
                }
                const char *code = kp_error_name (error->code);
                zsys_warning ("kp_client: broker error code=%s reason=%s",
                              code? code: "?", error->reason);
            }
            kp__wire__command__free_unpacked (answer, NULL);
        }
        kp_debug ("kp_client: no answer for id=%s try=%d", msg->id_hex, attempt);
    }
    char *reason = zsys_sprintf ("no answer from the broker within %d ms (%d tries)",
                                 self->send_timeout, self->tries);
    s_refusal (receipt, "TRANSPORT", reason);
    free (reason);
    return -1;
}

//  --------------------------------------------------------------------------
//  Allow up to credit unacknowledged deliveries in flight; 0 or -1

int
kp_client_receive (kp_client_t *self, unsigned credit)
{
    assert (self);
    self->credit = credit;
    //  A pending Hello carries the new window; otherwise tell the broker.
    //  If this Credit is lost with a broken connection, the re-hello after
    //  the reconnect carries the window.
    if (!self->hello_pending) {
        Kp__Wire__Credit message = KP__WIRE__CREDIT__INIT;
        message.credit = credit;
        Kp__Wire__Command command = KP__WIRE__COMMAND__INIT;
        command.kind_case = KP__WIRE__COMMAND__KIND_CREDIT;
        command.credit = &message;
        s_send (self, &command);
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Verify the signed receipt of a DELIVERED status with the recipient's
//  vouched signing key: from the directory answer of our send, or, in a
//  later run, asked of the directory for (its type, partner:recipient).
//  A receipt that does not verify is still shown, marked unverified.

static void
s_receipt_check (kp_client_t *self, kp_msg_t *msg)
{
    msg->receipt_verified = false;
    if (!self->seal || !kp_seal_has_region_key (self->seal)
    ||  msg->status != KP__WIRE__STATUS_KIND__DELIVERED)
        return;
    kp_vouched_t *signer = (kp_vouched_t *) zhashx_lookup (self->signers,
                                                           msg->status_partner);
    if (!signer && kp_type_name (msg->type)
    &&  msg->type != KP__WIRE__MESSAGE_TYPE__FEEDBACK) {
        char *address = zsys_sprintf ("partner:%s", msg->status_partner);
        kp_msg_t *probe = kp_msg_new (kp_type_name (msg->type), address);
        free (address);
        kp_receipt_t refusal;
        memset (&refusal, 0, sizeof refusal);
        if (probe && s_route (self, probe, &refusal))
            signer = (kp_vouched_t *) zhashx_lookup (self->signers, msg->status_partner);
        else
            kp_debug ("kp_client: no key to check a receipt partner=%s error=%s",
                      msg->status_partner, refusal.error);
        kp_msg_destroy (&probe);
    }
    if (!signer)
        return;
    const uint8_t *body_hash = (const uint8_t *) zhashx_lookup (self->sent, msg->id_hex);
    const char *reason = NULL;
    int64_t acked_at = 0;
    msg->receipt_verified = kp_seal_receipt_verify (msg->receipt, msg->receipt_size,
                                                    signer->sign_key, msg->id,
                                                    msg->status_partner, body_hash,
                                                    &acked_at, &reason) == 0;
    if (!msg->receipt_verified)
        zsys_warning ("kp_client: receipt of id=%s does not verify: %s", msg->id_hex,
                      reason);
}

//  --------------------------------------------------------------------------
//  Next message or status, waiting up to timeout_ms (-1 = for ever); NULL
//  on timeout or interrupt. Caller owns the result.

kp_msg_t *
kp_client_recv (kp_client_t *self, int timeout_ms)
{
    assert (self);
    int64_t deadline = timeout_ms < 0? -1: kp_mono_ms () + timeout_ms;
    self->interrupted = false;
    bool polled = false;
    while (true) {
        if (self->failure)
            return NULL;            //  the broker will not take our acks
        kp_msg_t *msg = (kp_msg_t *) zlistx_detach (self->inbox, NULL);
        if (msg) {
            zhashx_update (self->seen, msg->key, (void *) (uintptr_t) S_HANDED);
            if (msg->is_status && msg->receipt)
                s_receipt_check (self, msg);
            return msg;
        }
        if (self->interrupted || zsys_interrupted)
            return NULL;
        if (polled && deadline >= 0 && kp_mono_ms () >= deadline && !s_readable (self))
            return NULL;
        Kp__Wire__Command *command = s_step (self, deadline);
        polled = true;
        if (command) {
            //  A late receipt of an earlier send, or an error about an ack;
            //  a refusal of our key is reported by kp_client_failure
            if (command->kind_case == KP__WIRE__COMMAND__KIND_ERROR && !self->failure) {
                const char *code = kp_error_name (command->error->code);
                zsys_warning ("kp_client: broker error code=%s reason=%s",
                              code? code: "?", command->error->reason);
            }
            kp__wire__command__free_unpacked (command, NULL);
        }
    }
}

//  --------------------------------------------------------------------------
//  Append one line to the journal and make it durable. 0 or -1.
static int
s_journal_append (kp_client_t *self, const char *key)
{
    char *line = zsys_sprintf ("%s\n", key);
    assert (line);
    size_t size = strlen (line);
    size_t done = 0;
    int rc = 0;
    while (done < size) {
        ssize_t count = write (self->journal_fd, line + done, size - done);
        if (count < 0 && errno == EINTR)
            continue;
        if (count <= 0) {
            rc = -1;
            break;
        }
        done += (size_t) count;
    }
    //  After a failed fdatasync the kernel may have dropped the pages: we
    //  never retry it and acknowledge nothing more (PITFALLS.md)
    if (rc == 0 && fdatasync (self->journal_fd))
        rc = -1;
    if (rc) {
        s_complain ("cannot write journal in '%s': %s; no more acknowledgements",
                    self->state_dir, strerror (errno));
        self->journal_broken = true;
    }
    free (line);
    return rc;
}

//  --------------------------------------------------------------------------
//  Acknowledge msg: handled safely, never hand it out again. 0 or -1.
//
//  With a state directory the id is on disk before the Ack leaves: a crash
//  between the two means a redelivery that we then ack silently; the other
//  order could lose the memory of an ack the broker already has, which is
//  harmless, but could also hand the message out twice, which is not.

int
kp_client_ack (kp_client_t *self, kp_msg_t *msg)
{
    assert (self);
    assert (msg);
    assert (msg->received);
    s_state_t state = (s_state_t) (uintptr_t) zhashx_lookup (self->seen, msg->key);
    if (state != S_ACKED && self->journal_fd >= 0) {
        if (self->journal_broken || s_journal_append (self, msg->key))
            return -1;
    }
    zhashx_update (self->seen, msg->key, (void *) (uintptr_t) S_ACKED);
    s_ack_msg (self, msg);
    return 0;
}

//  --------------------------------------------------------------------------
//  Refuse msg with a one-line reason; the sender gets REFUSED. 0 or -1
//  (a status report cannot be refused).

int
kp_client_nack (kp_client_t *self, kp_msg_t *msg, const char *reason)
{
    assert (self);
    assert (msg);
    assert (msg->received);
    if (msg->is_status)
        return -1;
    //  One line of at most 200 bytes, no control characters
    char line [201];
    snprintf (line, sizeof line, "%s", reason? reason: "");
    for (char *cursor = line; *cursor; cursor++)
        if ((unsigned char) *cursor < 0x20 || *cursor == 0x7F)
            *cursor = ' ';
    Kp__Wire__Nack check = KP__WIRE__NACK__INIT;
    check.reason = line;
    if (!kp_message_strings_valid (&check.base))
        snprintf (line, sizeof line, "refused by the recipient");
    zhashx_update (self->seen, msg->key, (void *) (uintptr_t) S_NACKED);
    s_send_nack (self, msg->seq, line);
    return 0;
}
