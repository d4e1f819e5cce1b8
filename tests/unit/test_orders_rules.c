/*
 * test_orders_rules.c - the orders context's pure rules: the ticketId of a new order, access,
 * the lifecycle decisions behind DELETE, expiration:complete and payment:created, the expiry
 * time and the order's JSON.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_json.h"
#include "tk_test_main.h"
#include <stdlib.h>
#include <string.h>

#include "orders.h"

#define OWNER "11111111-1111-4111-8111-111111111111"
#define OTHER "22222222-2222-4222-8222-222222222222"
#define TICKET "33333333-3333-4333-8333-333333333333"

static int parse(const char *body_text, const char **id, tk_err_t *err)
{
    json_t *body = tk_test_json(body_text);
    int rc = tk_order_ticket_id_parse(body, id, err);
    json_decref(body); /* *id is borrowed from body: only compare before this in callers */
    return rc;
}

static void ticket_id_rules(void **state)
{
    (void)state;
    tk_err_t err = {0};
    const char *id = NULL;
    const char *missing[] = {"{}", "{\"ticketId\":\"\"}", "{\"ticketId\":5}", "{\"ticketId\":null}",
                             "{\"ticketId\":[\"" TICKET "\"]}"};
    for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
        assert_int_equal(parse(missing[i], &id, &err), TK_EINVAL);
        assert_string_equal(err.message, "TicketId must be provided");
        assert_string_equal(err.field, "ticketId");
        assert_null(id);
    }
    assert_int_equal(parse("{\"ticketId\":\"5f1a2b3c4d5e6f7a8b9c0d1e\"}", &id, &err), TK_ENOTFOUND);
    json_t *body = json_pack("{s:s}", "ticketId", TICKET);
    assert_int_equal(tk_order_ticket_id_parse(body, &id, &err), 0);
    assert_string_equal(id, TICKET);
    json_decref(body);
}

static tk_order_t order(ev_order_status_t status)
{
    tk_order_t o = {.status = status, .version = 1};
    strcpy(o.id, "44444444-4444-4444-8444-444444444444");
    strcpy(o.user_id, OWNER);
    strcpy(o.ticket_id, TICKET);
    strcpy(o.expires_at, "2030-01-01T00:15:00.000Z");
    return o;
}

static void access_rule(void **state)
{
    (void)state;
    tk_err_t err = {0};
    assert_int_equal(tk_order_decide_access(OWNER, OWNER, &err), 0);
    assert_int_equal(tk_order_decide_access(OWNER, OTHER, &err), TK_EUNAUTH);
    assert_int_equal(tk_order_decide_access(OWNER, NULL, &err), TK_EUNAUTH);
}

/* O8, FIX: a complete order is not cancelled, a cancelled one is a no-op. */
static void cancel_rule(void **state)
{
    (void)state;
    tk_err_t err = {0};
    tk_order_t created = order(EV_ORDER_CREATED), complete = order(EV_ORDER_COMPLETE),
               cancelled = order(EV_ORDER_CANCELLED);
    assert_int_equal(tk_order_decide_cancel(&created, OWNER, &err), 1);
    assert_int_equal(tk_order_decide_cancel(&created, NULL, &err), 1); /* the system */
    assert_int_equal(tk_order_decide_cancel(&cancelled, OWNER, &err), 0);
    assert_int_equal(tk_order_decide_cancel(&complete, OWNER, &err), TK_EINVAL);
    assert_string_equal(err.message, "Cannot cancel a completed order");
    assert_int_equal(tk_order_decide_cancel(&complete, NULL, &err), TK_EINVAL);
    /* Ownership is checked first: another user learns nothing about the status. */
    assert_int_equal(tk_order_decide_cancel(&complete, OTHER, &err), TK_EUNAUTH);
    assert_int_equal(tk_order_decide_cancel(&created, OTHER, &err), TK_EUNAUTH);
}

static void complete_rule(void **state)
{
    (void)state;
    tk_order_t created = order(EV_ORDER_CREATED), complete = order(EV_ORDER_COMPLETE),
               cancelled = order(EV_ORDER_CANCELLED);
    assert_true(tk_order_decide_complete(&created));
    assert_false(tk_order_decide_complete(&complete));
    assert_false(tk_order_decide_complete(&cancelled));
}

static void expiry(void **state)
{
    (void)state;
    char out[TK_TIME_LEN + 1];
    int64_t now = 0;
    assert_int_equal(tk_time_parse("2030-01-01T00:00:00.250Z", &now), 0);
    tk_order_expiry(now, 900, out);
    assert_string_equal(out, "2030-01-01T00:15:00.250Z");
    tk_order_expiry(now, 0, out);
    assert_string_equal(out, "2030-01-01T00:00:00.250Z");
}

static void order_json(void **state)
{
    (void)state;
    tk_order_t o = order(EV_ORDER_COMPLETE);
    tk_order_ticket_t t = {.price_cents = 1999, .version = 2};
    strcpy(t.id, TICKET);
    strcpy(t.title, "concert");
    json_t *j = tk_order_to_json(&o, &t);
    char *text = json_dumps(j, JSON_COMPACT | JSON_REAL_PRECISION(15));
    assert_string_equal(text, "{\"id\":\"44444444-4444-4444-8444-444444444444\",\"userId\":\"" OWNER
                              "\",\"status\":\"complete\",\"expiresAt\":"
                              "\"2030-01-01T00:15:00.000Z\",\"version\":1,\"ticket\":{\"id\":"
                              "\"" TICKET "\",\"title\":\"concert\",\"price\":19.99,"
                              "\"version\":2}}");
    free(text);
    json_decref(j);
    j = tk_order_to_json(&o, NULL);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "ticket"), "id")),
                        TICKET);
    assert_int_equal(json_object_size(json_object_get(j, "ticket")), 1);
    json_decref(j);
}

TK_TEST_MAIN(NULL, NULL, cmocka_unit_test(ticket_id_rules), cmocka_unit_test(access_rule),
             cmocka_unit_test(cancel_rule), cmocka_unit_test(complete_rule),
             cmocka_unit_test(expiry), cmocka_unit_test(order_json))
