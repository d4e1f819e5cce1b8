/*
 * test_payments_rules.c - the payments context's pure rules (commands/payments/payment_rules.c):
 * the body of POST /api/payments, the order of the checks, the amount and the idempotency keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_json.h"
#include "tk_test_main.h"
#include <string.h>

#include "payments.h"

#define ORDER "6a1e2d8e-9b8c-4a3b-8f0e-1c2d3e4f5a6b"
#define OWNER "0b1f7c3e-2d4a-4b5c-8d6e-7f8091a2b3c4"
#define OTHER "9e8d7c6b-5a49-4382-a170-f6e5d4c3b2a1"

static int parse(const char *text, tk_payment_request_t *out, json_t **errors)
{
    json_t *body = tk_test_json(text);
    *errors = json_array();
    tk_err_t err = {0};
    int rc = tk_payment_request_parse(body, out, *errors, &err);
    /* The strings are borrowed from body: keep it alive by parking it in errors' last slot. */
    json_array_append_new(*errors, body);
    return rc;
}

static void request_parse(void **state)
{
    (void)state;
    tk_payment_request_t pr;
    json_t *errors;
    assert_int_equal(parse("{\"token\":\"tok_visa\",\"orderId\":\"" ORDER "\"}", &pr, &errors), 0);
    assert_string_equal(pr.token, "tok_visa");
    assert_string_equal(pr.order_id, ORDER);
    assert_int_equal(json_array_size(errors), 1); /* only the parked body */
    json_decref(errors);

    assert_int_equal(parse("{}", &pr, &errors), TK_EINVAL);
    assert_int_equal(json_array_size(errors), 3);
    assert_string_equal(tk_test_error_at(errors, 0, "field"), "token");
    assert_string_equal(tk_test_error_at(errors, 1, "field"), "orderId");
    assert_string_equal(json_string_value(json_object_get(json_array_get(errors, 0), "message")),
                        "Token must be provided");
    json_decref(errors);

    assert_int_equal(parse("{\"token\":\"\",\"orderId\":\"" ORDER "\"}", &pr, &errors), TK_EINVAL);
    assert_int_equal(json_array_size(errors), 2);
    assert_string_equal(tk_test_error_at(errors, 0, "field"), "token");
    json_decref(errors);

    assert_int_equal(parse("{\"token\":5,\"orderId\":7}", &pr, &errors), TK_EINVAL);
    assert_int_equal(json_array_size(errors), 3);
    json_decref(errors);

    /* A token that is no Stripe id (too long) is refused before Stripe sees it. */
    char big[400];
    memset(big, 'a', 300);
    big[300] = '\0';
    char text[600];
    snprintf(text, sizeof(text), "{\"token\":\"%s\",\"orderId\":\"%s\"}", big, ORDER);
    assert_int_equal(parse(text, &pr, &errors), TK_EINVAL);
    json_decref(errors);

    /* P1's token with a malformed order id: no such order. */
    assert_int_equal(parse("{\"token\":\"asldkfj\",\"orderId\":\"123\"}", &pr, &errors),
                     TK_ENOTFOUND);
    assert_null(pr.order_id);
    json_decref(errors);
}

static tk_payment_order_t order(ev_order_status_t status)
{
    tk_payment_order_t o = {.price_cents = 2000, .status = status, .version = 0};
    strcpy(o.id, ORDER);
    strcpy(o.user_id, OWNER);
    return o;
}

#define OPEN TK_PAYMENT_WINDOW_OPEN
#define PAID TK_PAYMENT_WINDOW_PAID
#define EXPIRED TK_PAYMENT_WINDOW_EXPIRED
#define NOW INT64_C(1764600000000)

static void decide(void **state)
{
    (void)state;
    tk_err_t err = {0};
    tk_payment_order_t o = order(EV_ORDER_CREATED);
    assert_int_equal(tk_payment_decide(&o, OWNER, OPEN, NOW, &err), 0);
    assert_int_equal(tk_payment_decide(&o, OTHER, OPEN, NOW, &err), TK_EUNAUTH);
    assert_int_equal(tk_payment_decide(&o, NULL, OPEN, NOW, &err), TK_EUNAUTH);
    assert_int_equal(tk_payment_decide(&o, OWNER, PAID, NOW, &err), TK_EINVAL);
    assert_string_equal(err.message, "Order already paid");

    o = order(EV_ORDER_CANCELLED);
    assert_int_equal(tk_payment_decide(&o, OWNER, OPEN, NOW, &err), TK_EINVAL);
    assert_string_equal(err.message, "Cannot pay for an cancelled order");
    /* Cancelled wins over paid; ownership wins over both. */
    assert_int_equal(tk_payment_decide(&o, OWNER, PAID, NOW, &err), TK_EINVAL);
    assert_string_equal(err.message, "Cannot pay for an cancelled order");
    assert_int_equal(tk_payment_decide(&o, OTHER, PAID, NOW, &err), TK_EUNAUTH);

    o = order(EV_ORDER_COMPLETE);
    assert_int_equal(tk_payment_decide(&o, OWNER, OPEN, NOW, &err), TK_EINVAL);
    assert_string_equal(err.message, "Order already paid");

    /* Owner ids compare as UUIDs: case does not matter. */
    o = order(EV_ORDER_CREATED);
    assert_int_equal(tk_payment_decide(&o, "0B1F7C3E-2D4A-4B5C-8D6E-7F8091A2B3C4", OPEN, NOW, &err),
                     0);
}

/* Expiry: at or after expiresAt, or once the window closed, nothing is charged. */
static void decide_expiry(void **state)
{
    (void)state;
    tk_err_t err = {0};
    tk_payment_order_t o = order(EV_ORDER_CREATED);
    o.expires_ms = NOW + 100;
    assert_int_equal(tk_payment_decide(&o, OWNER, OPEN, NOW, &err), 0);
    assert_int_equal(tk_payment_decide(&o, OWNER, OPEN, NOW + 99, &err), 0);
    assert_int_equal(tk_payment_decide(&o, OWNER, OPEN, NOW + 100, &err), TK_EINVAL);
    assert_string_equal(err.message, "Order has expired");
    assert_int_equal(tk_payment_decide(&o, OWNER, OPEN, NOW + 5000, &err), TK_EINVAL);
    assert_string_equal(err.message, "Order has expired");
    /* A closed window refuses even before expiresAt (the scheduler's clock ran ahead). */
    assert_int_equal(tk_payment_decide(&o, OWNER, EXPIRED, NOW, &err), TK_EINVAL);
    assert_string_equal(err.message, "Order has expired");
    /* Paid stays paid after expiresAt; the owner check comes first. */
    assert_int_equal(tk_payment_decide(&o, OWNER, PAID, NOW + 5000, &err), TK_EINVAL);
    assert_string_equal(err.message, "Order already paid");
    assert_int_equal(tk_payment_decide(&o, OTHER, EXPIRED, NOW, &err), TK_EUNAUTH);
    /* An expiresAt unknown to the replica (0) does not expire by the clock. */
    o.expires_ms = 0;
    assert_int_equal(tk_payment_decide(&o, OWNER, OPEN, NOW + 5000, &err), 0);
}

static void refund_backoff_doubles_up_to_the_cap(void **state)
{
    (void)state;
    assert_int_equal(tk_payment_refund_backoff_ms(1, 1000, 300000), 1000);
    assert_int_equal(tk_payment_refund_backoff_ms(2, 1000, 300000), 2000);
    assert_int_equal(tk_payment_refund_backoff_ms(4, 1000, 300000), 8000);
    assert_int_equal(tk_payment_refund_backoff_ms(30, 1000, 300000), 300000);
    assert_int_equal(tk_payment_refund_backoff_ms(1000, 1000, 300000), 300000);
}

static void amount_is_price_in_cents(void **state)
{
    (void)state;
    tk_payment_order_t o = order(EV_ORDER_CREATED);
    o.price_cents = 1999; /* 19.99: 1999 cents, never 1998 */
    assert_int_equal(tk_payment_amount(&o), 1999);
    o.price_cents = 9999900; /* 99999 */
    assert_int_equal(tk_payment_amount(&o), 9999900);
}

static void keys(void **state)
{
    (void)state;
    char a[TK_STRIPE_KEY_MAX + 1], b[TK_STRIPE_KEY_MAX + 1], c[TK_STRIPE_KEY_MAX + 1];
    tk_payment_charge_key(ORDER, "tok_visa", a);
    tk_payment_charge_key("6A1E2D8E-9B8C-4A3B-8F0E-1C2D3E4F5A6B", "tok_visa", b);
    tk_payment_charge_key(ORDER, "tok_mastercard", c);
    assert_string_equal(a, b); /* stable, whatever the case of the id */
    assert_true(strncmp(a, "order-" ORDER "-charge-", strlen("order-" ORDER "-charge-")) == 0);
    assert_int_equal(strlen(a), strlen("order-" ORDER "-charge-") + 16);
    assert_string_not_equal(a, c);      /* another card, another key */
    assert_null(strstr(a, "tok_visa")); /* the token itself never goes into the key */

    tk_payment_refund_key(ORDER, "pi_123", a);
    assert_string_equal(a, "order-" ORDER "-refund-pi_123");
}

TK_TEST_MAIN(NULL, NULL, cmocka_unit_test(request_parse), cmocka_unit_test(decide),
             cmocka_unit_test(decide_expiry),
             cmocka_unit_test(refund_backoff_doubles_up_to_the_cap),
             cmocka_unit_test(amount_is_price_in_cents), cmocka_unit_test(keys))
