/*  =========================================================================
    test_kp_queue - delivery state: order, in flight, requeue, expiry

    Copyright (c) 2026 the ketenpost authors. Licence: MPL-2.0.
    =========================================================================
*/
#include <criterion/criterion.h>
#include "kp_queue.h"

TestSuite (kp_queue);

Test (kp_queue, items_come_out_in_delivery_tag_order_per_partner)
{
    kp_queue_t *queue = kp_queue_new ();
    kp_queue_add (queue, "school-12ab00", KP_ITEM_MESSAGE, 3, 30, 300, 0);
    kp_queue_add (queue, "vt-twente", KP_ITEM_MESSAGE, 4, 40, 400, 0);
    kp_queue_add (queue, "school-12ab00", KP_ITEM_STATUS, 7, 70, 0, 0);
    cr_assert_eq (kp_queue_ready (queue, "school-12ab00"), 2);
    cr_assert_eq (kp_queue_ready (queue, "vt-twente"), 1);
    cr_assert_eq (kp_queue_ready (queue, "nobody"), 0);
    cr_assert_eq (kp_queue_size (queue), 3);
    kp_item_t *item = kp_queue_first_ready (queue, "school-12ab00");
    cr_assert_eq (item->seq, 3);
    cr_assert_eq (item->body_pos, 300);
    cr_assert_str_eq (kp_queue_owner (item), "school-12ab00");
    kp_queue_mark_sent (queue, item, (void *) 1, 1000);
    cr_assert_eq (item->attempt, 1);
    cr_assert_eq (kp_queue_first_ready (queue, "school-12ab00")->seq, 7);
    cr_assert_eq (kp_queue_in_flight (queue, "school-12ab00"), 1);
    cr_assert_eq (kp_queue_find (queue, 3), item);
    kp_queue_remove (queue, item);
    cr_assert_null (kp_queue_find (queue, 3));
    cr_assert_eq (kp_queue_in_flight (queue, "school-12ab00"), 0);
    cr_assert_eq (kp_queue_size (queue), 2);
    kp_queue_destroy (&queue);
    kp_queue_destroy (&queue);
    cr_assert_null (queue);
}

Test (kp_queue, requeued_items_return_in_order_before_newer_ones)
{
    kp_queue_t *queue = kp_queue_new ();
    for (uint64_t seq = 1; seq <= 5; seq++)
        kp_queue_add (queue, "lt-enschede", KP_ITEM_MESSAGE, seq, seq, seq, 0);
    int session_a, session_b;
    //  1 and 3 to session a, 2 to session b, out of order on purpose
    kp_item_t *first = kp_queue_first_ready (queue, "lt-enschede");
    kp_queue_mark_sent (queue, first, &session_a, 10);
    kp_queue_mark_sent (queue, kp_queue_first_ready (queue, "lt-enschede"), &session_b, 10);
    kp_queue_mark_sent (queue, kp_queue_first_ready (queue, "lt-enschede"), &session_a, 10);
    cr_assert_eq (kp_queue_first_ready (queue, "lt-enschede")->seq, 4);
    cr_assert_eq (kp_queue_requeue_session (queue, "lt-enschede", &session_a), 2);
    uint64_t expected [] = { 1, 3, 4, 5 };
    kp_item_t *item = kp_queue_first_ready (queue, "lt-enschede");
    for (size_t index = 0; index < 4; index++, item = item->next)
        cr_assert_eq (item->seq, expected [index]);
    cr_assert_null (item);
    cr_assert_eq (kp_queue_in_flight (queue, "lt-enschede"), 1);
    kp_queue_destroy (&queue);
}

static void
s_count_requeued (kp_item_t *item, void *arg)
{
    (void) item;
    (*(int *) arg)++;
}

Test (kp_queue, ack_timeout_requeues_only_old_sends)
{
    kp_queue_t *queue = kp_queue_new ();
    kp_queue_add (queue, "vt-twente", KP_ITEM_MESSAGE, 1, 1, 1, 0);
    kp_queue_add (queue, "vt-twente", KP_ITEM_MESSAGE, 2, 2, 2, 0);
    kp_queue_mark_sent (queue, kp_queue_first_ready (queue, "vt-twente"), NULL, 100);
    kp_queue_mark_sent (queue, kp_queue_first_ready (queue, "vt-twente"), NULL, 900);
    int count = 0;
    cr_assert_eq (kp_queue_requeue_timed_out (queue, 1000, 500, s_count_requeued, &count), 1);
    cr_assert_eq (count, 1);
    cr_assert_eq (kp_queue_first_ready (queue, "vt-twente")->seq, 1);
    cr_assert_eq (kp_queue_in_flight (queue, "vt-twente"), 1);
    kp_queue_destroy (&queue);
}

Test (kp_queue, expiry_pops_in_time_order_and_skips_removed_items)
{
    kp_queue_t *queue = kp_queue_new ();
    kp_queue_add (queue, "a", KP_ITEM_MESSAGE, 1, 1, 1, 5000);
    kp_queue_add (queue, "a", KP_ITEM_MESSAGE, 2, 2, 2, 1000);
    kp_queue_add (queue, "b", KP_ITEM_MESSAGE, 3, 3, 3, 3000);
    kp_queue_add (queue, "b", KP_ITEM_MESSAGE, 4, 4, 4, 0);     //  never
    kp_queue_add (queue, "b", KP_ITEM_STATUS, 5, 5, 0, 0);
    kp_queue_remove (queue, kp_queue_find (queue, 3));
    cr_assert_null (kp_queue_next_expired (queue, 999));
    kp_item_t *item = kp_queue_next_expired (queue, 6000);
    cr_assert_eq (item->seq, 2);
    kp_queue_remove (queue, item);
    item = kp_queue_next_expired (queue, 6000);
    cr_assert_eq (item->seq, 1);
    kp_queue_remove (queue, item);
    cr_assert_null (kp_queue_next_expired (queue, INT64_MAX));
    cr_assert_eq (kp_queue_size (queue), 2);
    kp_queue_destroy (&queue);
}

Test (kp_queue, many_items_grow_the_heap)
{
    kp_queue_t *queue = kp_queue_new ();
    for (uint64_t seq = 0; seq < 5000; seq++)
        kp_queue_add (queue, "a", KP_ITEM_MESSAGE, seq, seq, seq, (int64_t) (10000 - seq));
    int64_t last = 0;
    kp_item_t *item;
    size_t count = 0;
    while ((item = kp_queue_next_expired (queue, 20000))) {
        cr_assert_geq (item->expires_at_ms, last);
        last = item->expires_at_ms;
        kp_queue_remove (queue, item);
        count++;
    }
    cr_assert_eq (count, 5000);
    kp_queue_destroy (&queue);
}
