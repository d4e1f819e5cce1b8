/*
 * test_payments.c - the payments context against the real broker, PostgreSQL and stripe-mock
 * (STRIPE_API_BASE, started by scripts/stack.sh): every payments case of ORIGINAL-TESTS.md
 * (P1-P8) in black-box form, plus validation, the replica's version gating and the
 * order:cancelled refund reaction. The fault cases are in test_payments_faults.c.
 */
#include "test_payments_common.c"

static int setup(void **state)
{
    (void)state;
    if (getenv("STRIPE_API_BASE") == NULL) {
        fprintf(stdout, "setup: STRIPE_API_BASE is not set (source scripts/env.sh)\n");
        return -1;
    }
    return payments_start();
}

static int teardown(void **state)
{
    (void)state;
    payments_stop();
    return 0;
}

/* P1: an order nobody knows, a malformed id too. */
static void unknown_order_is_404(void **state)
{
    (void)state;
    char user[TK_UUID_LEN + 1], order[TK_UUID_LEN + 1];
    tk_uuid_new(user);
    tk_uuid_new(order);
    char *cookie = session_of(user);
    tk_test_resp_t r;
    assert_int_equal(pay(cookie, "asldkfj", order, &r), 404);
    tk_test_resp_release(&r);
    assert_int_equal(pay(cookie, "asldkfj", "not-a-uuid", &r), 404);
    tk_test_resp_release(&r);
    free(cookie);
}

static void anonymous_and_invalid_bodies(void **state)
{
    (void)state;
    char order[TK_UUID_LEN + 1], user[TK_UUID_LEN + 1];
    tk_uuid_new(order);
    tk_uuid_new(user);
    tk_test_resp_t r;
    assert_int_equal(pay(NULL, "tok_visa", order, &r), 401);
    assert_string_equal(tk_test_first_message(&r), "Not authorized");
    tk_test_resp_release(&r);

    char *cookie = session_of(user);
    tk_test_http("POST", "/api/payments", "{}", cookie, &r);
    assert_int_equal(r.status, 400);
    json_t *errors = json_object_get(r.json, "errors");
    assert_int_equal(json_array_size(errors), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 0), "field")),
                        "token");
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 1), "field")),
                        "orderId");
    tk_test_resp_release(&r);
    assert_true(tk_test_http_is("POST", "/api/payments", "{\"token\":\"\",\"orderId\":\"x\"}",
                                cookie, 400, NULL));
    free(cookie);
}

/* P2: the order belongs to someone else. */
static void someone_elses_order_is_401(void **state)
{
    (void)state;
    struct fixture owner;
    fixture_new(&owner, 2000);
    char other[TK_UUID_LEN + 1];
    tk_uuid_new(other);
    char *cookie = session_of(other);
    tk_test_resp_t r;
    assert_int_equal(pay(cookie, "tok_visa", owner.order, &r), 401);
    tk_test_resp_release(&r);
    assert_int_equal(payments_of(owner.order), 0);
    free(cookie);
    fixture_free(&owner);
}

/* P3, P7, P8: order:cancelled v1 is replicated (and acknowledged once), then paying is 400. */
static void cancelled_order_is_400(void **state)
{
    struct fixture *f = *state;
    order_changed("order:cancelled", f->order, f->ticket, 1);
    assert_true(wait_replica(f->order, "cancelled/1"));
    assert_true(wait_processed(last_event)); /* P8: consumed, offset stored */
    pay_expect(f, "tok_visa", 400, "Cannot pay for an cancelled order");
    assert_int_equal(payments_of(f->order), 0);
}

/* P4, P5, P6: 201 {id}, a stored payment, a payment:created event; then 'Order already paid'. */
static void valid_payment_is_201_with_payment_and_event(void **state)
{
    struct fixture *f = *state;
    assert_string_equal(query1("SELECT price_cents FROM orders_replica WHERE id = $1", f->order),
                        "1000");
    char payment_id[TK_UUID_LEN + 1];
    pay_created(f, "tok_visa", payment_id);

    assert_int_equal(payments_of(f->order), 1);
    assert_string_equal(query1("SELECT id FROM payments WHERE order_id = $1", f->order),
                        payment_id);
    char stripe_id[256];
    snprintf(stripe_id, sizeof(stripe_id), "%s",
             query1("SELECT stripe_id FROM payments WHERE order_id = $1", f->order));
    assert_true(strncmp(stripe_id, "pi_", 3) == 0);

    json_t *env = tk_test_watch_expect(f->w, "payment:created", payment_id, 20000);
    assert_non_null(env);
    json_t *data = json_object_get(env, "data");
    assert_string_equal(json_string_value(json_object_get(data, "id")), payment_id);
    assert_string_equal(json_string_value(json_object_get(data, "orderId")), f->order);
    assert_string_equal(json_string_value(json_object_get(data, "stripeId")), stripe_id);
    assert_int_equal(json_integer_value(json_object_get(env, "aggregateversion")), 0);
    json_decref(env);

    pay_expect(f, "tok_visa", 400, "Order already paid");
    assert_int_equal(payments_of(f->order), 1);
}

/* A PaymentMethod id works as the token too. */
static void payment_method_id_is_accepted(void **state)
{
    struct fixture *f = *state;
    pay_expect(f, "pm_card_visa", 201, NULL);
    assert_int_equal(payments_of(f->order), 1);
}

/* order:completed makes the order paid; duplicates and stale events change nothing. */
static void replica_follows_versions(void **state)
{
    struct fixture *f = *state;
    /* A duplicate order:created (another event id, same order) is skipped. */
    ev_order_created_t again = {0};
    strcpy(again.id, f->order);
    strcpy(again.user_id, f->user);
    strcpy(again.ticket.id, f->ticket);
    tk_time_format(tk_now_ms(), again.expires_at);
    again.ticket.price_cents = 999;
    publish("order:created", f->order, 0, ev_order_created_to_json(&again));
    order_changed("order:completed", f->order, f->ticket, 1);
    assert_true(wait_replica(f->order, "complete/1"));
    /* A stale cancellation (version 1 again) is consumed and skipped: still complete. */
    order_changed("order:cancelled", f->order, f->ticket, 1);
    char stale[TK_UUID_LEN + 1];
    strcpy(stale, last_event);
    assert_true(wait_processed(stale));
    assert_true(wait_replica(f->order, "complete/1"));
    assert_string_equal(query1("SELECT price_cents FROM orders_replica WHERE id = $1", f->order),
                        "2000");
    pay_expect(f, "tok_visa", 400, "Order already paid");
}

struct refunded_wait {
    const char *order_id;
};

static bool refund_recorded(void *arg)
{
    struct refunded_wait *w = arg;
    return count_rows("SELECT count(*) FROM refunds WHERE order_id = $1 AND status = 'succeeded'",
                      w->order_id) == 1;
}

/* An order cancelled after its payment was stored (orders had not seen payment:created yet):
 * the replica's reaction refunds it and publishes payment:refunded. */
static void cancellation_after_payment_refunds(void **state)
{
    struct fixture *f = *state;
    char payment_id[TK_UUID_LEN + 1];
    pay_created(f, "tok_visa", payment_id);

    order_changed("order:cancelled", f->order, f->ticket, 1);
    struct refunded_wait rw = {f->order};
    assert_true(tk_test_eventually(refund_recorded, &rw, 20000));
    json_t *env = tk_test_watch_expect(f->w, "payment:refunded", payment_id, 20000);
    assert_non_null(env);
    json_t *data = json_object_get(env, "data");
    assert_string_equal(json_string_value(json_object_get(data, "orderId")), f->order);
    assert_string_equal(json_string_value(json_object_get(data, "reason")), "order cancelled");
    assert_string_equal(json_string_value(json_object_get(data, "stripeId")),
                        query1("SELECT stripe_id FROM payments WHERE order_id = $1", f->order));
    assert_int_equal(json_integer_value(json_object_get(env, "aggregateversion")), 1);
    json_decref(env);
    assert_int_equal(tk_test_watch_count(f->w, "payment:refunded", payment_id, 1000), 0);
}

TK_TEST_MAIN(setup, teardown, cmocka_unit_test(unknown_order_is_404),
             cmocka_unit_test(anonymous_and_invalid_bodies),
             cmocka_unit_test(someone_elses_order_is_401), ORDER_TEST(cancelled_order_is_400, 2000),
             ORDER_TEST(valid_payment_is_201_with_payment_and_event, 1000),
             ORDER_TEST(payment_method_id_is_accepted, 4550),
             ORDER_TEST(replica_follows_versions, 2000),
             ORDER_TEST(cancellation_after_payment_refunds, 3000))
