/*
 * test_orders_flow.c - the tickets and orders contexts together through the real broker: sell a
 * ticket, order it, cancel, edit, reorder, expire, reorder and pay, checking at each step what
 * each context shows. Both contexts run in this process as in `ticketing run`: one server with
 * both route sets, each context's relay, and all five projectors (ticket_view, tickets reactions,
 * tickets_replica, order_view, orders reactions) in threads. Only the expiration and payment
 * events are injected (their contexts are not part of this test).
 *
 * Ticket versions along the way: 0 created, 1 reserved by order 1, 2 freed (DELETE), 3 edited,
 * 4 reserved by order 2, 5 freed (expiration, as payment:expired), 6 reserved by order 3, which is
 * then paid: the ticket stays reserved at 6.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ev_catalog.h"
#include "ev_envelope.h"
#include "ev_payment.h"
#include "orders_context.h"
#include "orders_read.h"
#include "tickets_context.h"
#include "tickets_read.h"
#include "tk/ids.h"
#include "tk/kafka.h"
#include "tk/migrate.h"
#include "tk/projector.h"
#include "tk/relay.h"
#include "test_orders_util.h"
#include "tk_test.h"

#define WAIT_MS 20000

static int setup(void **state)
{
    (void)state;
    static const tk_context_t *const contexts[] = {&tk_tickets_context, &tk_orders_context, NULL};
    return tko_serve(contexts);
}

/* ------------------------------------------------------------------ helpers */

static void wait_ticket(const char *id, json_int_t version, const char *order_id)
{
    assert_true(tko_wait_ticket(id, version, order_id, WAIT_MS));
}

static void wait_order(const tko_user_t *u, const char *id, const char *status,
                       json_int_t ticket_version)
{
    assert_true(tko_wait_order(u, id, status, ticket_version, WAIT_MS));
}

/* POST /api/orders, waiting (on 404) until orders replicated the ticket; 201 expected. */
static void order_ticket(const tko_user_t *u, const char *ticket_id, char id[TK_UUID_LEN + 1],
                         json_int_t *ticket_version, json_int_t *price)
{
    tk_test_resp_t r;
    tko_order_when_known(u, ticket_id, WAIT_MS, &r);
    assert_int_equal(r.status, 201);
    snprintf(id, TK_UUID_LEN + 1, "%s", tko_str(r.json, "id"));
    *ticket_version = tko_num(json_object_get(r.json, "ticket"), "version");
    *price = tko_num(json_object_get(r.json, "ticket"), "price");
    tk_test_resp_release(&r);
}

/* ------------------------------------------------------------------ the flow */

static void sell_order_cancel_reorder_expire_pay(void **state)
{
    (void)state;
    tko_user_t seller = tko_user_new(), buyer = tko_user_new(), buyer2 = tko_user_new(),
               buyer3 = tko_user_new();
    tk_test_watch_t *tw = tk_test_watch_new(EV_TOPIC_TICKETS);
    tk_test_resp_t r;
    char path[128];
    json_int_t tv = 0, price = 0;

    /* Sell. */
    tk_test_http("POST", "/api/tickets", "{\"title\":\"flow\",\"price\":40}", seller.cookie, &r);
    assert_int_equal(r.status, 201);
    char ticket[TK_UUID_LEN + 1];
    snprintf(ticket, sizeof(ticket), "%s", tko_str(r.json, "id"));
    tk_test_resp_release(&r);
    snprintf(path, sizeof(path), "/api/tickets/%s", ticket);

    /* Order 1: orders knows the ticket from its replica; tickets reserves it. */
    char order1[TK_UUID_LEN + 1];
    order_ticket(&buyer, ticket, order1, &tv, &price);
    assert_int_equal(tv, 0);
    assert_int_equal(price, 40);
    json_t *env = tk_test_watch_expect(tw, "ticket:updated", ticket, WAIT_MS);
    assert_non_null(env);
    assert_int_equal(tko_num(env, "aggregateversion"), 1);
    assert_string_equal(tko_str(json_object_get(env, "data"), "orderId"), order1);
    json_decref(env);
    wait_ticket(ticket, 1, order1);
    assert_false(tko_ticket_listed(ticket));
    assert_true(tk_test_http_is("PUT", path, "{\"title\":\"flow\",\"price\":45}", seller.cookie,
                                400, "Cannot edit a reserved ticket"));
    wait_order(&buyer, order1, "created", 1); /* the replica followed the reservation */

    /* Cancel: the ticket is free and listed again. */
    char opath[128];
    snprintf(opath, sizeof(opath), "/api/orders/%s", order1);
    assert_true(tk_test_http_is("DELETE", opath, NULL, buyer.cookie, 204, NULL));
    wait_ticket(ticket, 2, "");
    assert_true(tk_test_eventually(tko_ticket_is_listed, ticket, WAIT_MS));
    wait_order(&buyer, order1, "cancelled", 2);

    /* Edit while free; orders' replica follows (seen in the cancelled order's embedded ticket). */
    tk_test_http("PUT", path, "{\"title\":\"flow 2\",\"price\":55}", seller.cookie, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(tko_num(r.json, "version"), 3);
    tk_test_resp_release(&r);
    wait_order(&buyer, order1, "cancelled", 3);

    /* Reorder: a new order at the new price, the ticket reserved again. */
    char order2[TK_UUID_LEN + 1];
    order_ticket(&buyer2, ticket, order2, &tv, &price);
    assert_int_equal(tv, 3);
    assert_int_equal(price, 55);
    wait_ticket(ticket, 4, order2);

    /* Expiration (decided by payments: the window closed unpaid) cancels order 2 and frees the
     * ticket. */
    ev_payment_expired_t e = {0};
    snprintf(e.order_id, sizeof(e.order_id), "%s", order2);
    tk_test_publish_event("payment:expired", order2, 0, ev_payment_expired_to_json(&e), NULL);
    wait_order(&buyer2, order2, "cancelled", 5);
    wait_ticket(ticket, 5, "");
    assert_true(tk_test_eventually(tko_ticket_is_listed, ticket, WAIT_MS));

    /* Order 3 is paid: complete, and the ticket stays reserved for good. */
    char order3[TK_UUID_LEN + 1];
    order_ticket(&buyer3, ticket, order3, &tv, &price);
    wait_ticket(ticket, 6, order3);
    tk_test_watch_free(tw);
    tw = tk_test_watch_new(EV_TOPIC_TICKETS); /* from now on: no ticket:updated at all */
    tko_publish_paid(order3);
    wait_order(&buyer3, order3, "complete", 6);
    assert_int_equal(tk_test_watch_count(tw, "ticket:updated", ticket, 2000), 0);
    wait_ticket(ticket, 6, order3);
    snprintf(opath, sizeof(opath), "/api/orders/%s", order3);
    assert_true(tk_test_http_is("DELETE", opath, NULL, buyer3.cookie, 400, NULL));
    assert_true(tk_test_http_is("POST", "/api/orders", "{}", buyer.cookie, 400, NULL));

    /* The ticket's history is the whole story, in version order. */
    snprintf(path, sizeof(path), "/api/tickets/%s/history", ticket);
    tk_test_http("GET", path, NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(r.json), 7);
    const char *holders[] = {"", order1, "", "", order2, "", order3};
    for (size_t i = 0; i < 7; i++) {
        json_t *ev = json_array_get(r.json, i);
        assert_int_equal(tko_num(ev, "aggregateversion"), (json_int_t)i);
        const char *holder = tko_str(json_object_get(ev, "data"), "orderId");
        assert_string_equal(holder ? holder : "", holders[i]);
    }
    tk_test_resp_release(&r);

    tk_test_watch_free(tw);
    free(seller.cookie);
    free(buyer.cookie);
    free(buyer2.cookie);
    free(buyer3.cookie);
}

/* Orders' list embeds the ticket as orders knows it now (a query-time join with the replica). */
static void buyer_sees_orders_in_creation_order(void **state)
{
    (void)state;
    tko_user_t seller = tko_user_new(), buyer = tko_user_new();
    char tickets[2][TK_UUID_LEN + 1], orders[2][TK_UUID_LEN + 1];
    json_int_t tv, price;
    for (int i = 0; i < 2; i++) {
        char body[128];
        snprintf(body, sizeof(body), "{\"title\":\"pair %d\",\"price\":%d}", i, 10 + i);
        tk_test_resp_t r;
        tk_test_http("POST", "/api/tickets", body, seller.cookie, &r);
        assert_int_equal(r.status, 201);
        snprintf(tickets[i], sizeof(tickets[i]), "%s", tko_str(r.json, "id"));
        tk_test_resp_release(&r);
    }
    for (int i = 0; i < 2; i++)
        order_ticket(&buyer, tickets[i], orders[i], &tv, &price);
    for (int i = 0; i < 2; i++)
        wait_order(&buyer, orders[i], "created", 1);
    tk_test_resp_t r;
    tk_test_http("GET", "/api/orders", NULL, buyer.cookie, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_array_size(r.json), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *o = json_array_get(r.json, i);
        assert_string_equal(tko_str(o, "id"), orders[i]);
        json_t *t = json_object_get(o, "ticket");
        assert_string_equal(tko_str(t, "id"), tickets[i]);
        assert_int_equal(tko_num(t, "version"), 1);
        assert_int_equal(tko_num(t, "price"), 10 + (json_int_t)i);
    }
    tk_test_resp_release(&r);
    free(seller.cookie);
    free(buyer.cookie);
}

TK_TEST_MAIN(setup, tko_teardown, cmocka_unit_test(sell_order_cancel_reorder_expire_pay),
             cmocka_unit_test(buyer_sees_orders_in_creation_order))
