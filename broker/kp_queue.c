/*  =========================================================================
    kp_queue - per-recipient delivery state, rebuilt from the log

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
*/
#include "kp_queue.h"

#define S_GONE UINT64_MAX               //  a status taken out of the ready array
#define S_SHRINK_LIMIT 4096             //  arrays this long or longer shrink

//  An array of fixed-size elements with a free head: elements live in
//  [head, tail), so popping the first is O(1) and an insert near the front
//  moves only what is before it.
typedef struct {
    uint8_t *data;
    size_t head, tail, limit;       //  in elements
} s_array_t;

//  A status waiting in the ready array; pos S_GONE once removed
typedef struct {
    uint64_t seq;
    uint64_t pos;
} s_status_t;

//  An item in flight
typedef struct {
    uint64_t seq;
    uint64_t pos;
    void *session;
    int64_t sent_mono;
    uint32_t message;               //  kp_accepted index, or NONE for a status
    uint32_t kind;                  //  kp_item_kind_t
} s_flight_t;

//  One partner's items. Ready messages (kp_accepted indexes, uint32_t) and
//  ready statuses are each in delivery-tag order; the next item is the
//  lower of their heads. A message in the array whose state is no longer
//  READY was removed (expired) and is skipped. In flight is in order of
//  sending, so the oldest send is first (ack timeouts).
typedef struct {
    char *id;
    s_array_t messages;             //  of uint32_t
    s_array_t statuses;             //  of s_status_t
    s_array_t flight;               //  of s_flight_t
    size_t ready;                   //  live ready items
} s_partner_t;

struct _kp_queue_t {
    kp_accepted_t *accepted;        //  borrowed
    zhashx_t *partners;             //  id -> s_partner_t
    uint32_t *expiry_at;            //  min-heap by expiry second, two arrays
    uint32_t *expiry_message;       //  kp_accepted index; stale once settled
    size_t heap_size;
    size_t heap_limit;
    size_t messages;                //  messages queued (ready or in flight)
    size_t size;                    //  items queued (ready or in flight)
};

//  --------------------------------------------------------------------------
//  The array with a free head

static size_t
s_array_count (const s_array_t *array)
{
    return array->tail - array->head;
}

static void *
s_array_at (const s_array_t *array, size_t width, size_t index)
{
    return array->data + index * width;
}

//  Make room for one more element at the tail
static void
s_array_reserve (s_array_t *array, size_t width)
{
    if (array->tail < array->limit)
        return;
    if (array->head > 0 && array->head >= array->limit / 2) {
        memmove (array->data, array->data + array->head * width,
                 s_array_count (array) * width);
        array->tail -= array->head;
        array->head = 0;
        return;
    }
    array->limit = array->limit? array->limit * 2: 16;
    array->data = (uint8_t *) realloc (array->data, array->limit * width);
    assert (array->data);
}

//  After a removal: an empty array restarts at 0, and a large array that is
//  three quarters empty gives memory back
static void
s_array_settle (s_array_t *array, size_t width)
{
    size_t count = s_array_count (array);
    if (count == 0)
        array->head = array->tail = 0;
    if (array->limit >= S_SHRINK_LIMIT && count < array->limit / 4) {
        memmove (array->data, array->data + array->head * width, count * width);
        array->head = 0;
        array->tail = count;
        array->limit /= 2;
        array->data = (uint8_t *) realloc (array->data, array->limit * width);
        assert (array->data);
    }
}

static void
s_array_push (s_array_t *array, size_t width, const void *element)
{
    s_array_reserve (array, width);
    memcpy (s_array_at (array, width, array->tail++), element, width);
}

//  Insert element before position at (head <= at <= tail)
static void
s_array_insert (s_array_t *array, size_t width, size_t at, const void *element)
{
    assert (at >= array->head && at <= array->tail);
    if (array->head > 0 && at - array->head < array->tail - at) {
        //  Nearer the front, and room there: move the front one left
        memmove (s_array_at (array, width, array->head - 1),
                 s_array_at (array, width, array->head), (at - array->head) * width);
        array->head--;
        memcpy (s_array_at (array, width, at - 1), element, width);
        return;
    }
    //  Making room may move everything down to 0: keep at relative
    size_t offset = at - array->head;
    s_array_reserve (array, width);
    at = array->head + offset;
    memmove (s_array_at (array, width, at + 1), s_array_at (array, width, at),
             (array->tail - at) * width);
    array->tail++;
    memcpy (s_array_at (array, width, at), element, width);
}

//  Erase the element at position at
static void
s_array_erase (s_array_t *array, size_t width, size_t at)
{
    assert (at >= array->head && at < array->tail);
    if (at - array->head < array->tail - at - 1) {
        memmove (s_array_at (array, width, array->head + 1),
                 s_array_at (array, width, array->head), (at - array->head) * width);
        array->head++;
    }
    else {
        memmove (s_array_at (array, width, at), s_array_at (array, width, at + 1),
                 (array->tail - at - 1) * width);
        array->tail--;
    }
    s_array_settle (array, width);
}

//  --------------------------------------------------------------------------
//  Partners

static void
s_partner_destroy (void **item_p)
{
    s_partner_t *partner = (s_partner_t *) *item_p;
    if (partner) {
        free (partner->messages.data);
        free (partner->statuses.data);
        free (partner->flight.data);
        free (partner->id);
        free (partner);
        *item_p = NULL;
    }
}

static s_partner_t *
s_partner_require (kp_queue_t *self, const char *id)
{
    s_partner_t *partner = (s_partner_t *) zhashx_lookup (self->partners, id);
    if (!partner) {
        partner = (s_partner_t *) zmalloc (sizeof (s_partner_t));
        assert (partner);
        partner->id = strdup (id);
        assert (partner->id);
        zhashx_insert (self->partners, id, partner);
    }
    return partner;
}

//  --------------------------------------------------------------------------
//  New, empty queue set

kp_queue_t *
kp_queue_new (kp_accepted_t *accepted)
{
    assert (accepted);
    kp_queue_t *self = (kp_queue_t *) zmalloc (sizeof (kp_queue_t));
    assert (self);
    self->accepted = accepted;
    self->partners = zhashx_new ();
    assert (self->partners);
    zhashx_set_destructor (self->partners, s_partner_destroy);
    return self;
}

//  --------------------------------------------------------------------------
//  Destroy; idempotent

void
kp_queue_destroy (kp_queue_t **self_p)
{
    assert (self_p);
    kp_queue_t *self = *self_p;
    if (self) {
        free (self->expiry_at);
        free (self->expiry_message);
        zhashx_destroy (&self->partners);
        free (self);
        *self_p = NULL;
    }
}

//  --------------------------------------------------------------------------
//  The expiry heap: entries of settled messages are stale, skipped when
//  they come to the top, and dropped all at once when they are most of it

static void
s_heap_place (kp_queue_t *self, size_t index, uint32_t at, uint32_t message)
{
    self->expiry_at [index] = at;
    self->expiry_message [index] = message;
}

static void
s_heap_up (kp_queue_t *self, size_t index)
{
    uint32_t at = self->expiry_at [index];
    uint32_t message = self->expiry_message [index];
    while (index > 0) {
        size_t parent = (index - 1) / 2;
        if (self->expiry_at [parent] <= at)
            break;
        s_heap_place (self, index, self->expiry_at [parent], self->expiry_message [parent]);
        index = parent;
    }
    s_heap_place (self, index, at, message);
}

static void
s_heap_down (kp_queue_t *self, size_t index)
{
    uint32_t at = self->expiry_at [index];
    uint32_t message = self->expiry_message [index];
    while (true) {
        size_t child = index * 2 + 1;
        if (child >= self->heap_size)
            break;
        if (child + 1 < self->heap_size
        &&  self->expiry_at [child + 1] < self->expiry_at [child])
            child++;
        if (at <= self->expiry_at [child])
            break;
        s_heap_place (self, index, self->expiry_at [child], self->expiry_message [child]);
        index = child;
    }
    s_heap_place (self, index, at, message);
}

static bool
s_settled (kp_queue_t *self, uint32_t message)
{
    kp_message_t *entry = kp_accepted_get (self->accepted, message);
    return !entry || entry->state == KP_MESSAGE_SETTLED;
}

//  Drop the stale entries and heapify what is left
static void
s_heap_rebuild (kp_queue_t *self)
{
    size_t kept = 0;
    for (size_t index = 0; index < self->heap_size; index++)
        if (!s_settled (self, self->expiry_message [index]))
            s_heap_place (self, kept++, self->expiry_at [index],
                          self->expiry_message [index]);
    self->heap_size = kept;
    for (size_t index = kept / 2; index-- > 0;)
        s_heap_down (self, index);
}

//  The heap keeps whole seconds (8 bytes an entry, not 12): the second an
//  expiry falls in, up to the year 2106
static uint32_t
s_expiry_second (int64_t expires_at_ms)
{
    int64_t second = expires_at_ms / 1000;
    return second < 0? 0: second >= UINT32_MAX? UINT32_MAX: (uint32_t) second;
}

static void
s_heap_push (kp_queue_t *self, uint32_t at, uint32_t message)
{
    if (self->heap_size == self->heap_limit && self->heap_size > 2 * self->messages + 1024)
        s_heap_rebuild (self);
    if (self->heap_size == self->heap_limit) {
        self->heap_limit = self->heap_limit? self->heap_limit * 2: 1024;
        self->expiry_at = (uint32_t *) realloc (self->expiry_at,
                                                self->heap_limit * sizeof (uint32_t));
        self->expiry_message = (uint32_t *) realloc (self->expiry_message,
                                                     self->heap_limit * sizeof (uint32_t));
        assert (self->expiry_at && self->expiry_message);
    }
    s_heap_place (self, self->heap_size++, at, message);
    s_heap_up (self, self->heap_size - 1);
}

static void
s_heap_pop (kp_queue_t *self)
{
    assert (self->heap_size > 0);
    self->heap_size--;
    if (self->heap_size > 0) {
        s_heap_place (self, 0, self->expiry_at [self->heap_size],
                      self->expiry_message [self->heap_size]);
        s_heap_down (self, 0);
    }
}

//  --------------------------------------------------------------------------
//  Ready items

//  Skip removed items at the heads; true if a message comes next (lower
//  delivery tag than the first status), false if a status or nothing
static bool
s_next_is_message (kp_queue_t *self, s_partner_t *partner, uint64_t *seq_p)
{
    s_array_t *messages = &partner->messages;
    s_array_t *statuses = &partner->statuses;
    kp_message_t *first = NULL;
    while (messages->head < messages->tail) {
        uint32_t index = *(uint32_t *) s_array_at (messages, sizeof (uint32_t),
                                                   messages->head);
        first = kp_accepted_get (self->accepted, index);
        if (first && first->state == KP_MESSAGE_READY)
            break;
        first = NULL;
        messages->head++;
        s_array_settle (messages, sizeof (uint32_t));
    }
    s_status_t *status = NULL;
    while (statuses->head < statuses->tail) {
        status = (s_status_t *) s_array_at (statuses, sizeof (s_status_t), statuses->head);
        if (status->pos != S_GONE)
            break;
        status = NULL;
        statuses->head++;
        s_array_settle (statuses, sizeof (s_status_t));
    }
    if (first && (!status || first->seq < status->seq)) {
        *seq_p = first->seq;
        return true;
    }
    *seq_p = status? status->seq: S_GONE;
    return false;
}

//  Put an item back among the ready ones, in delivery-tag order
static void
s_ready_insert (kp_queue_t *self, s_partner_t *partner, const s_flight_t *flight)
{
    if (flight->kind == KP_ITEM_MESSAGE) {
        s_array_t *messages = &partner->messages;
        size_t low = messages->head, high = messages->tail;
        while (low < high) {
            size_t middle = low + (high - low) / 2;
            if (*(uint32_t *) s_array_at (messages, sizeof (uint32_t), middle)
                < flight->message)
                low = middle + 1;
            else
                high = middle;
        }
        s_array_insert (messages, sizeof (uint32_t), low, &flight->message);
        kp_accepted_get (self->accepted, flight->message)->state = KP_MESSAGE_READY;
    }
    else {
        s_array_t *statuses = &partner->statuses;
        size_t low = statuses->head, high = statuses->tail;
        while (low < high) {
            size_t middle = low + (high - low) / 2;
            if (((s_status_t *) s_array_at (statuses, sizeof (s_status_t), middle))->seq
                < flight->seq)
                low = middle + 1;
            else
                high = middle;
        }
        s_status_t status = { flight->seq, flight->pos };
        s_array_insert (statuses, sizeof (s_status_t), low, &status);
    }
    partner->ready++;
}

//  --------------------------------------------------------------------------
//  Queue a message for its recipient

void
kp_queue_add_message (kp_queue_t *self, const char *partner, uint32_t index,
                      int64_t expires_at_ms)
{
    assert (self);
    assert (partner);
    kp_message_t *message = kp_accepted_get (self->accepted, index);
    assert (message);
    message->state = KP_MESSAGE_READY;
    s_partner_t *owner = s_partner_require (self, partner);
    s_array_t *messages = &owner->messages;
    assert (messages->head == messages->tail
        ||  *(uint32_t *) s_array_at (messages, sizeof (uint32_t), messages->tail - 1)
            < index);
    s_array_push (messages, sizeof (uint32_t), &index);
    owner->ready++;
    self->messages++;
    self->size++;
    if (expires_at_ms > 0)
        s_heap_push (self, s_expiry_second (expires_at_ms), index);
}

//  --------------------------------------------------------------------------
//  Queue a status for partner

void
kp_queue_add_status (kp_queue_t *self, const char *partner, uint64_t seq, uint64_t pos)
{
    assert (self);
    assert (partner);
    assert (pos != S_GONE);
    s_partner_t *owner = s_partner_require (self, partner);
    s_array_t *statuses = &owner->statuses;
    if (statuses->head == statuses->tail
    ||  ((s_status_t *) s_array_at (statuses, sizeof (s_status_t), statuses->tail - 1))->seq
        < seq) {
        s_status_t status = { seq, pos };
        s_array_push (statuses, sizeof (s_status_t), &status);
        owner->ready++;
    }
    else {
        //  Not the newest (a test, or a status made for an older record)
        s_flight_t flight = { .seq = seq, .pos = pos, .message = KP_ACCEPTED_NONE,
                              .kind = KP_ITEM_STATUS };
        s_ready_insert (self, owner, &flight);
    }
    self->size++;
}

//  --------------------------------------------------------------------------
//  The first ready item of partner

//  The first ready item of owner (NULL: none)
static bool
s_first_ready (kp_queue_t *self, s_partner_t *owner, kp_item_t *item)
{
    if (!owner || owner->ready == 0)
        return false;
    uint64_t seq;
    if (s_next_is_message (self, owner, &seq)) {
        uint32_t index = *(uint32_t *) s_array_at (&owner->messages, sizeof (uint32_t),
                                                   owner->messages.head);
        *item = (kp_item_t) {
            .seq = seq, .pos = kp_accepted_get (self->accepted, index)->pos,
            .message = index, .kind = KP_ITEM_MESSAGE
        };
    }
    else {
        assert (seq != S_GONE);
        s_status_t *status = (s_status_t *) s_array_at (&owner->statuses,
                                                        sizeof (s_status_t),
                                                        owner->statuses.head);
        *item = (kp_item_t) {
            .seq = seq, .pos = status->pos, .message = KP_ACCEPTED_NONE,
            .kind = KP_ITEM_STATUS
        };
    }
    return true;
}

bool
kp_queue_first_ready (kp_queue_t *self, const char *partner, kp_item_t *item)
{
    assert (self);
    assert (item);
    return s_first_ready (self, (s_partner_t *) zhashx_lookup (self->partners, partner),
                          item);
}

//  --------------------------------------------------------------------------
//  Move partner's first ready item to in flight

void
kp_queue_mark_sent (kp_queue_t *self, const char *partner, void *session, int64_t now_mono)
{
    assert (self);
    s_partner_t *owner = (s_partner_t *) zhashx_lookup (self->partners, partner);
    kp_item_t item;
    bool ready = s_first_ready (self, owner, &item);
    assert (ready);
    if (item.kind == KP_ITEM_MESSAGE) {
        owner->messages.head++;
        s_array_settle (&owner->messages, sizeof (uint32_t));
        kp_message_t *message = kp_accepted_get (self->accepted, item.message);
        message->state = KP_MESSAGE_IN_FLIGHT;
        if (message->attempt < UINT8_MAX)
            message->attempt++;
    }
    else {
        owner->statuses.head++;
        s_array_settle (&owner->statuses, sizeof (s_status_t));
    }
    owner->ready--;
    s_flight_t flight = {
        .seq = item.seq, .pos = item.pos, .session = session, .sent_mono = now_mono,
        .message = item.message, .kind = item.kind
    };
    s_array_push (&owner->flight, sizeof (s_flight_t), &flight);
}

//  Take the in-flight item at position at out of the queue
static void
s_flight_take (kp_queue_t *self, s_partner_t *owner, size_t at, kp_item_t *item)
{
    s_flight_t *flight = (s_flight_t *) s_array_at (&owner->flight, sizeof (s_flight_t), at);
    *item = (kp_item_t) {
        .seq = flight->seq, .pos = flight->pos, .message = flight->message,
        .kind = (kp_item_kind_t) flight->kind, .session = flight->session
    };
    if (item->kind == KP_ITEM_MESSAGE) {
        kp_accepted_get (self->accepted, item->message)->state = KP_MESSAGE_SETTLED;
        self->messages--;
    }
    s_array_erase (&owner->flight, sizeof (s_flight_t), at);
    self->size--;
}

//  Position of the in-flight item seq of owner, or SIZE_MAX. Acks come
//  mostly in order of sending, so the search starts at the oldest.
static size_t
s_flight_find (s_partner_t *owner, uint64_t seq)
{
    for (size_t at = owner->flight.head; at < owner->flight.tail; at++)
        if (((s_flight_t *) s_array_at (&owner->flight, sizeof (s_flight_t), at))->seq == seq)
            return at;
    return SIZE_MAX;
}

//  --------------------------------------------------------------------------
//  Take an in-flight item sent to session

bool
kp_queue_take_in_flight (kp_queue_t *self, const char *partner, uint64_t seq,
                         void *session, kp_item_t *item)
{
    assert (self);
    assert (item);
    s_partner_t *owner = (s_partner_t *) zhashx_lookup (self->partners, partner);
    size_t at = owner? s_flight_find (owner, seq): SIZE_MAX;
    if (at == SIZE_MAX
    ||  ((s_flight_t *) s_array_at (&owner->flight, sizeof (s_flight_t), at))->session
        != session)
        return false;
    s_flight_take (self, owner, at, item);
    return true;
}

//  --------------------------------------------------------------------------
//  Take an item out, ready or in flight

bool
kp_queue_remove (kp_queue_t *self, const char *partner, uint64_t seq, kp_item_t *item)
{
    assert (self);
    assert (item);
    s_partner_t *owner = (s_partner_t *) zhashx_lookup (self->partners, partner);
    if (!owner)
        return false;
    size_t at = s_flight_find (owner, seq);
    if (at != SIZE_MAX) {
        s_flight_take (self, owner, at, item);
        return true;
    }
    //  A ready message: settled in the table, skipped in the array
    uint32_t index = kp_accepted_by_seq (self->accepted, seq);
    kp_message_t *message = kp_accepted_get (self->accepted, index);
    if (message) {
        if (message->state != KP_MESSAGE_READY)
            return false;
        //  Only if it is this partner's
        s_array_t *messages = &owner->messages;
        size_t low = messages->head, high = messages->tail;
        while (low < high) {
            size_t middle = low + (high - low) / 2;
            if (*(uint32_t *) s_array_at (messages, sizeof (uint32_t), middle) < index)
                low = middle + 1;
            else
                high = middle;
        }
        if (low == messages->tail
        ||  *(uint32_t *) s_array_at (messages, sizeof (uint32_t), low) != index)
            return false;
        message->state = KP_MESSAGE_SETTLED;
        *item = (kp_item_t) {
            .seq = seq, .pos = message->pos, .message = index, .kind = KP_ITEM_MESSAGE
        };
        owner->ready--;
        self->messages--;
        self->size--;
        return true;
    }
    //  A ready status: marked gone, skipped in the array
    s_array_t *statuses = &owner->statuses;
    size_t low = statuses->head, high = statuses->tail;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (((s_status_t *) s_array_at (statuses, sizeof (s_status_t), middle))->seq < seq)
            low = middle + 1;
        else
            high = middle;
    }
    s_status_t *status = low < statuses->tail?
        (s_status_t *) s_array_at (statuses, sizeof (s_status_t), low): NULL;
    if (!status || status->seq != seq || status->pos == S_GONE)
        return false;
    *item = (kp_item_t) {
        .seq = seq, .pos = status->pos, .message = KP_ACCEPTED_NONE, .kind = KP_ITEM_STATUS
    };
    status->pos = S_GONE;
    owner->ready--;
    self->size--;
    return true;
}

//  --------------------------------------------------------------------------
//  Requeue every in-flight item of partner sent to session

size_t
kp_queue_requeue_session (kp_queue_t *self, const char *partner, void *session)
{
    assert (self);
    s_partner_t *owner = (s_partner_t *) zhashx_lookup (self->partners, partner);
    if (!owner)
        return 0;
    size_t count = 0;
    size_t at = owner->flight.head;
    while (at < owner->flight.tail) {
        s_flight_t flight = *(s_flight_t *) s_array_at (&owner->flight,
                                                        sizeof (s_flight_t), at);
        if (flight.session != session) {
            at++;
            continue;
        }
        //  Erasing may move the front one right: count from the head
        size_t offset = at - owner->flight.head;
        s_array_erase (&owner->flight, sizeof (s_flight_t), at);
        s_ready_insert (self, owner, &flight);
        at = owner->flight.head + offset;
        count++;
    }
    return count;
}

//  --------------------------------------------------------------------------
//  Requeue every in-flight item sent before now_mono - timeout

size_t
kp_queue_requeue_timed_out (kp_queue_t *self, int64_t now_mono, int64_t timeout,
                            kp_queue_requeue_fn *requeued, void *arg)
{
    assert (self);
    size_t count = 0;
    for (s_partner_t *owner = (s_partner_t *) zhashx_first (self->partners); owner;
         owner = (s_partner_t *) zhashx_next (self->partners)) {
        //  In flight is in order of sending: stop at the first young one
        while (owner->flight.head < owner->flight.tail) {
            s_flight_t flight = *(s_flight_t *) s_array_at (&owner->flight,
                                                            sizeof (s_flight_t),
                                                            owner->flight.head);
            if (flight.sent_mono + timeout > now_mono)
                break;
            if (requeued) {
                kp_item_t item = {
                    .seq = flight.seq, .pos = flight.pos, .message = flight.message,
                    .kind = (kp_item_kind_t) flight.kind, .session = flight.session
                };
                requeued (&item, arg);
            }
            s_array_erase (&owner->flight, sizeof (s_flight_t), owner->flight.head);
            s_ready_insert (self, owner, &flight);
            count++;
        }
    }
    return count;
}

//  --------------------------------------------------------------------------
//  The next queued message expired at now_ms

uint32_t
kp_queue_next_expired (kp_queue_t *self, int64_t now_ms)
{
    assert (self);
    //  Called every tick: when most of the heap is stale (after a drain),
    //  drop the stale entries and give the memory back
    if (self->heap_limit > 4096 && self->heap_size > 4 * self->messages + 1024)
        s_heap_rebuild (self);
    if (self->heap_limit > 4096 && self->heap_size < self->heap_limit / 4) {
        self->heap_limit /= 2;
        self->expiry_at = (uint32_t *) realloc (self->expiry_at,
                                                self->heap_limit * sizeof (uint32_t));
        self->expiry_message = (uint32_t *) realloc (self->expiry_message,
                                                     self->heap_limit * sizeof (uint32_t));
        assert (self->expiry_at && self->expiry_message);
    }
    uint32_t now = s_expiry_second (now_ms);
    while (self->heap_size > 0 && self->expiry_at [0] <= now) {
        uint32_t message = self->expiry_message [0];
        s_heap_pop (self);
        if (!s_settled (self, message))
            return message;
    }
    return KP_ACCEPTED_NONE;
}

//  --------------------------------------------------------------------------
//  Put a message kp_queue_next_expired gave too early back in the heap

void
kp_queue_expire_later (kp_queue_t *self, uint32_t index, int64_t expires_at_ms)
{
    assert (self);
    assert (kp_accepted_get (self->accepted, index));
    s_heap_push (self, s_expiry_second (expires_at_ms), index);
}

//  --------------------------------------------------------------------------
//  Counts

size_t
kp_queue_ready (kp_queue_t *self, const char *partner)
{
    assert (self);
    s_partner_t *owner = (s_partner_t *) zhashx_lookup (self->partners, partner);
    return owner? owner->ready: 0;
}

size_t
kp_queue_in_flight (kp_queue_t *self, const char *partner)
{
    assert (self);
    s_partner_t *owner = (s_partner_t *) zhashx_lookup (self->partners, partner);
    return owner? s_array_count (&owner->flight): 0;
}

size_t
kp_queue_size (kp_queue_t *self)
{
    assert (self);
    return self->size;
}
