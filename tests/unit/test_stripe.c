/*
 * test_stripe.c - the Stripe adapter (platform/stripe.c) against the fault-injecting fake Stripe
 * (tests/support/fake_stripe.c) on loopback: the request it sends, each fault case with its retry
 * count, the idempotency key kept across retries and calls, the backoff bounds, and secrets kept
 * out of error messages.
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

#include "fake_stripe.h"
#include "tk_test.h"
#include "tk/cfg.h"
#include "tk/stripe.h"

#define KEY "sk_test_unit_secret"
#define PI "/v1/payment_intents"
#define PM "/v1/payment_methods"
#define RE "/v1/refunds"

static tk_fake_stripe_t *fake;
static tk_stripe_options_t opts;

static int group_setup(void **state)
{
    (void)state;
    fake = tk_fake_stripe_start();
    opts = tk_fake_stripe_options(fake);
    opts.api_key = KEY;
    opts.backoff_base_ms = 10;
    opts.backoff_max_ms = 40;
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    tk_fake_stripe_stop(fake);
    return 0;
}

#define ORDER_ID "6a1e2d8e-9b8c-4a3b-8f0e-1c2d3e4f5a6b" /* every charge_req's order */

static tk_stripe_charge_req_t charge_req(const char *payment, const char *key)
{
    return (tk_stripe_charge_req_t){.amount = 1999,
                                    .currency = "usd",
                                    .payment = payment,
                                    .order_id = ORDER_ID,
                                    .idempotency_key = key};
}

/* tk_stripe_charge of charge_req(@p payment, @p key) with the fake's options. */
static int charge(const char *payment, const char *key, tk_stripe_charge_t *out, tk_err_t *err)
{
    tk_stripe_charge_req_t req = charge_req(payment, key);
    return tk_stripe_charge(&opts, &req, out, err);
}

/* charge() that must succeed in @p attempts requests, naming its key and error when it does not. */
static void charge_ok(const char *payment, const char *key, int attempts, tk_stripe_charge_t *out)
{
    tk_err_t err = {0};
    int rc = charge(payment, key, out, &err);
    if (rc != 0)
        fail_msg("charge %s: rc %d (%s)", key, rc, err.message);
    if (out->attempts != attempts)
        fail_msg("charge %s: %d attempts, want %d", key, out->attempts, attempts);
}

static void charge_sends_a_confirmed_payment_intent(void **state)
{
    (void)state;
    tk_stripe_charge_t out;
    charge_ok("pm_card_visa", "order-1-charge", 1, &out);
    assert_true(strncmp(out.id, "pi_fake_", 8) == 0);
    assert_string_equal(out.status, "succeeded");
    assert_int_equal(out.amount, 1999);
    assert_string_equal(out.currency, "usd");

    json_t *rec = tk_fake_stripe_last(fake, PI);
    assert_non_null(rec);
    assert_string_equal(json_string_value(json_object_get(rec, "authorization")), "Bearer " KEY);
    assert_string_equal(json_string_value(json_object_get(rec, "idempotency_key")),
                        "order-1-charge");
    assert_string_equal(tk_fake_stripe_form(rec, "amount"), "1999");
    assert_string_equal(tk_fake_stripe_form(rec, "currency"), "usd");
    assert_string_equal(tk_fake_stripe_form(rec, "confirm"), "true");
    assert_string_equal(tk_fake_stripe_form(rec, "payment_method"), "pm_card_visa");
    assert_string_equal(tk_fake_stripe_form(rec, "payment_method_types[0]"), "card");
    assert_string_equal(tk_fake_stripe_form(rec, "metadata[order_id]"), ORDER_ID);
    json_decref(rec);
    assert_int_equal(tk_fake_stripe_count(fake, PM, NULL), 0);
}

/* A legacy card token becomes a PaymentMethod first (its own key), then the intent uses it. */
static void token_is_turned_into_a_payment_method(void **state)
{
    (void)state;
    tk_stripe_charge_t out;
    charge_ok("tok_visa", "order-2-charge", 2, &out);
    json_t *pm = tk_fake_stripe_last(fake, PM);
    json_t *pi = tk_fake_stripe_last(fake, PI);
    assert_string_equal(tk_fake_stripe_form(pm, "type"), "card");
    assert_string_equal(tk_fake_stripe_form(pm, "card[token]"), "tok_visa");
    assert_string_equal(json_string_value(json_object_get(pm, "idempotency_key")),
                        "order-2-charge-pm");
    assert_true(strncmp(tk_fake_stripe_form(pi, "payment_method"), "pm_fake_", 8) == 0);
    assert_string_equal(json_string_value(json_object_get(pi, "idempotency_key")),
                        "order-2-charge");
    json_decref(pm);
    json_decref(pi);
}

/* The first answer is lost (later than the timeout): the retry gets the stored result. */
static void timeout_then_success_charges_once(void **state)
{
    (void)state;
    tk_fake_stripe_delay(fake, PI, 1, 2500);
    tk_stripe_charge_t out;
    charge_ok("pm_card_visa", "order-3-charge", 2, &out);
    assert_int_equal(tk_fake_stripe_count(fake, PI, "order-3-charge"), 2);
    assert_int_equal(tk_fake_stripe_created(fake, PI), 1);
    json_t *rec = tk_fake_stripe_last(fake, PI);
    assert_true(json_is_true(json_object_get(rec, "replayed")));
    json_decref(rec);
    assert_string_equal(out.id, "pi_fake_1");
}

/* Stripe fails the next @p n requests to @p path (NULL: any path) with @p status: the client
 * retries with the same key, 3 attempts at most, and charges at most once. */
static const struct retry_case {
    const char *name;
    const char *path; /* the fault: the next n requests to path (NULL: any) answer status */
    int n, status;
    const char *key;
    int rc, attempts, sent, created; /* sent: requests with the key; created: PaymentIntents */
} retry_cases[] = {
    {"server_errors_until_retries_run_out", PI, 10, 500, "order-4-charge", TK_EBADGATEWAY, 3, 3, 0},
    {"server_errors_then_success", PI, 2, 503, "order-5-charge", 0, 3, 3, 1},
    {"rate_limited_until_retries_run_out_is_unavailable", NULL, 10, 429, "order-6-charge",
     TK_EUNAVAIL, 3, 3, 0},
};

static void retried_charge(void **state)
{
    const struct retry_case *c = *state;
    tk_fake_stripe_fail(fake, c->path, c->n, c->status);
    tk_stripe_charge_t out;
    tk_err_t err = {0};
    assert_int_equal(charge("pm_card_visa", c->key, &out, &err), c->rc);
    assert_int_equal(out.attempts, c->attempts);
    assert_int_equal(tk_fake_stripe_count(fake, PI, c->key), c->sent);
    assert_int_equal(tk_fake_stripe_created(fake, PI), c->created);
    if (c->rc != 0)
        assert_string_equal(out.id, "");
}

static void decline_is_einval_with_stripes_message_and_no_retry(void **state)
{
    (void)state;
    tk_fake_stripe_decline(fake, 1, "Your card has insufficient funds.");
    tk_stripe_charge_req_t req = charge_req("pm_card_visa", "order-7-charge");
    tk_stripe_charge_t out;
    tk_err_t err = {0};
    assert_int_equal(tk_stripe_charge(&opts, &req, &out, &err), TK_EINVAL);
    assert_string_equal(err.message, "Your card has insufficient funds.");
    assert_string_equal(err.field, "token");
    assert_int_equal(out.attempts, 1);
    assert_int_equal(tk_fake_stripe_created(fake, PI), 0);

    /* Stripe stores the decline under the key: the same key declines again, untouched. */
    assert_int_equal(tk_stripe_charge(&opts, &req, &out, &err), TK_EINVAL);
    assert_string_equal(err.message, "Your card has insufficient funds.");
}

static void declined_test_token(void **state)
{
    (void)state;
    tk_stripe_charge_t out;
    tk_err_t err = {0};
    assert_int_equal(charge("tok_chargeDeclined", "order-8-charge", &out, &err), TK_EINVAL);
    assert_string_equal(err.message, "Your card was declined.");
    assert_null(strstr(err.message, "tok_"));
}

static void unreachable_is_unavailable_after_every_attempt(void **state)
{
    (void)state;
    tk_stripe_options_t o = opts;
    o.api_base = "http://127.0.0.1:1"; /* nothing listens on port 1 */
    tk_stripe_charge_req_t req = charge_req("pm_card_visa", "order-9-charge");
    tk_stripe_charge_t out;
    tk_err_t err = {0};
    assert_int_equal(tk_stripe_charge(&o, &req, &out, &err), TK_EUNAVAIL);
    assert_int_equal(out.attempts, 3);
}

static void bad_key_is_bad_gateway_without_retry_or_leak(void **state)
{
    (void)state;
    tk_stripe_options_t o = opts;
    o.api_key = "";
    tk_stripe_charge_req_t req = charge_req("tok_visa", "order-10-charge");
    tk_stripe_charge_t out;
    tk_err_t err = {0};
    assert_int_equal(tk_stripe_charge(&o, &req, &out, &err), TK_EBADGATEWAY);
    assert_int_equal(out.attempts, 1);
    assert_null(strstr(err.message, "tok_visa"));

    /* Neither the key nor the token shows in any failure's message. */
    tk_fake_stripe_fail(fake, NULL, 10, 500);
    assert_int_equal(tk_stripe_charge(&opts, &req, &out, &err), TK_EBADGATEWAY);
    assert_null(strstr(err.message, KEY));
    assert_null(strstr(err.message, "tok_visa"));
}

static void missing_key_or_amount_is_refused_before_any_request(void **state)
{
    (void)state;
    tk_stripe_charge_req_t req = charge_req("pm_card_visa", NULL);
    tk_stripe_charge_t out;
    tk_err_t err = {0};
    assert_int_equal(tk_stripe_charge(&opts, &req, &out, &err), TK_EINVAL);
    assert_string_equal(err.field, "idempotency_key");
    req = charge_req("pm_card_visa", "k");
    req.amount = 0;
    assert_int_equal(tk_stripe_charge(&opts, &req, &out, &err), TK_EINVAL);
    assert_int_equal(tk_fake_stripe_count(fake, NULL, NULL), 0);
}

/* Two calls with one key (a client retrying after a crash) make one intent. */
static void same_key_twice_is_one_intent(void **state)
{
    (void)state;
    tk_stripe_charge_req_t req = charge_req("tok_visa", "order-11-charge");
    tk_stripe_charge_t a, b;
    tk_err_t err = {0};
    assert_int_equal(tk_stripe_charge(&opts, &req, &a, &err), 0);
    assert_int_equal(tk_stripe_charge(&opts, &req, &b, &err), 0);
    assert_string_equal(a.id, b.id);
    assert_int_equal(tk_fake_stripe_created(fake, PI), 1);
    assert_int_equal(tk_fake_stripe_created(fake, PM), 1);
}

struct racer {
    tk_stripe_charge_t out;
    int rc;
};

static void *race(void *arg)
{
    struct racer *r = arg;
    tk_stripe_charge_req_t req = charge_req("pm_card_visa", "order-12-charge");
    tk_err_t err = {0};
    r->rc = tk_stripe_charge(&opts, &req, &r->out, &err);
    return NULL;
}

static void concurrent_same_key_is_one_intent(void **state)
{
    (void)state;
    struct racer r[10];
    tk_test_run_threads(race, r, sizeof(r[0]), 10);
    for (int i = 0; i < 10; i++) {
        assert_int_equal(r[i].rc, 0);
        assert_string_equal(r[i].out.id, r[0].out.id);
    }
    assert_int_equal(tk_fake_stripe_created(fake, PI), 1);
    assert_int_equal(tk_fake_stripe_count(fake, PI, "order-12-charge"), 10);
}

/* A charge whose answer never came back is found again by the attempt id in its metadata. */
static void lost_charge_is_found_by_attempt(void **state)
{
    (void)state;
    tk_stripe_charge_req_t req = charge_req("pm_card_visa", "order-14-charge");
    req.attempt_id = "6f1c2a4e-8b3d-4c5e-9f60-718293a4b5c6";
    tk_stripe_charge_t charge, found;
    tk_err_t err = {0};
    tk_stripe_options_t quick = opts;
    quick.timeout_ms = 150;
    quick.max_attempts = 1;
    tk_fake_stripe_charge_timeout(fake, 600);
    assert_int_equal(tk_stripe_charge(&quick, &req, &charge, &err), TK_EUNAVAIL);
    tk_fake_stripe_charge_timeout(fake, 0);
    assert_int_equal(tk_fake_stripe_created(fake, PI), 1); /* charged, answer lost */
    json_t *rec = tk_fake_stripe_last(fake, PI);
    assert_string_equal(tk_fake_stripe_form(rec, "metadata[attempt_id]"), req.attempt_id);
    json_decref(rec);

    assert_int_equal(tk_stripe_find_intent(&opts, req.attempt_id, &found, &err), 1);
    assert_string_equal(found.status, "succeeded");
    assert_int_equal(found.amount, req.amount);
    assert_true(strncmp(found.id, "pi_fake_", 8) == 0);
    rec = tk_fake_stripe_last(fake, "/v1/payment_intents/search");
    assert_string_equal(json_string_value(json_object_get(rec, "method")), "GET");
    assert_string_equal(json_string_value(json_object_get(rec, "idempotency_key")), "");
    json_decref(rec);
    /* Another attempt: nothing; not a UUID: refused before any request. */
    assert_int_equal(
        tk_stripe_find_intent(&opts, "0b1f7c3e-2d4a-4b5c-8d6e-7f8091a2b3c4", &found, &err), 0);
    int before = tk_fake_stripe_count(fake, NULL, NULL);
    assert_int_equal(tk_stripe_find_intent(&opts, "x' OR '1", &found, &err), TK_EINVAL);
    assert_int_equal(tk_fake_stripe_count(fake, NULL, NULL), before);
}

static void refund_once_per_key(void **state)
{
    (void)state;
    tk_stripe_charge_t paid;
    tk_err_t err = {0};
    assert_int_equal(charge("pm_card_visa", "order-13-charge", &paid, &err), 0);

    tk_stripe_refund_req_t rr = {.payment_intent = paid.id,
                                 .order_id = ORDER_ID,
                                 .reason = "order cancelled",
                                 .idempotency_key = "order-13-refund"};
    tk_stripe_refund_t a, b;
    tk_fake_stripe_fail(fake, RE, 1, 502);
    assert_int_equal(tk_stripe_refund(&opts, &rr, &a, &err), 0);
    assert_int_equal(a.attempts, 2);
    assert_true(strncmp(a.id, "re_fake_", 8) == 0);
    assert_string_equal(a.status, "succeeded");
    json_t *rec = tk_fake_stripe_last(fake, RE);
    assert_string_equal(tk_fake_stripe_form(rec, "payment_intent"), paid.id);
    assert_string_equal(tk_fake_stripe_form(rec, "metadata[reason]"), "order cancelled");
    json_decref(rec);
    assert_int_equal(tk_stripe_refund(&opts, &rr, &b, &err), 0);
    assert_string_equal(a.id, b.id);
    assert_int_equal(tk_fake_stripe_created(fake, RE), 1);

    /* Another key for an already refunded intent: Stripe refuses, not retried. */
    rr.idempotency_key = "order-13-refund-again";
    assert_int_equal(tk_stripe_refund(&opts, &rr, &b, &err), TK_EINVAL);
    assert_int_equal(b.attempts, 1);
}

static void backoff_is_bounded_and_jittered(void **state)
{
    (void)state;
    tk_stripe_options_t o = {.backoff_base_ms = 250, .backoff_max_ms = 2000};
    for (int failed = 1; failed <= 12; failed++) {
        int d = 250;
        for (int i = 1; i < failed && d < 2000; i++)
            d *= 2;
        if (d > 2000)
            d = 2000;
        int lo = d, hi = 0;
        for (uint32_t rnd = 0; rnd < 5000; rnd += 7) {
            int ms = tk_stripe_backoff_ms(&o, failed, rnd * 2654435761u);
            assert_in_range(ms, d / 2, d);
            lo = ms < lo ? ms : lo;
            hi = ms > hi ? ms : hi;
        }
        assert_true(hi > lo); /* jittered, not a fixed sleep */
    }
    o.backoff_base_ms = 0;
    assert_int_equal(tk_stripe_backoff_ms(&o, 3, 12345), 0);
}

static void default_options_come_from_the_environment(void **state)
{
    (void)state;
    tk_err_t err = {0};
    /* Read once by tk_cfg_load, which refuses a value out of range (naming it). */
    setenv("STRIPE_MAX_ATTEMPTS", "0", 1);
    assert_int_equal(tk_cfg_load(0, &err), TK_EINVAL);
    assert_non_null(strstr(err.message, "STRIPE_MAX_ATTEMPTS"));
    unsetenv("STRIPE_MAX_ATTEMPTS");
    setenv("STRIPE_TIMEOUT_MS", "1234", 1);
    assert_int_equal(tk_cfg_load(0, &err), 0);
    unsetenv("STRIPE_TIMEOUT_MS"); /* read at load: changing it now changes nothing */
    tk_stripe_options_t o;
    tk_stripe_options_default(&o);
    assert_int_equal(o.timeout_ms, 1234);
    assert_int_equal(o.max_attempts, 3);
    assert_int_equal(o.connect_timeout_ms, 2000);
    tk_stripe_options_t forced = opts;
    forced.timeout_ms = 777;
    tk_stripe_options_override(&forced);
    tk_stripe_options_default(&o);
    assert_int_equal(o.timeout_ms, 777);
    assert_string_equal(o.api_base, tk_fake_stripe_url(fake));
    tk_stripe_options_override(NULL);
    tk_stripe_options_default(&o);
    assert_int_equal(o.timeout_ms, 1234);
    assert_int_equal(tk_cfg_load(0, &err), 0);
}

#define WHSEC "whsec_test_secret"

/* Webhook signatures as Stripe documents them: HMAC-SHA256 of "<t>.<payload>", any v1, t within
 * the tolerance. */
static void webhook_signature_is_checked(void **state)
{
    (void)state;
    const char *body = "{\"id\":\"evt_1\",\"type\":\"payment_intent.succeeded\"}";
    size_t len = strlen(body);
    int64_t now = 1764600000;
    char sig[TK_STRIPE_SIGNATURE_MAX + 1], hdr[2 * TK_STRIPE_SIGNATURE_MAX];
    tk_err_t err = {0};
    tk_stripe_webhook_sign(body, len, WHSEC, now, sig);
    assert_int_equal(strncmp(sig, "t=1764600000,v1=", 16), 0);
    assert_int_equal(strlen(sig), 16 + 64);
    assert_int_equal(tk_stripe_webhook_verify(body, len, sig, WHSEC, 300, now, &err), 0);
    assert_int_equal(tk_stripe_webhook_verify(body, len, sig, WHSEC, 300, now + 300, &err), 0);
    /* A known vector: HMAC-SHA256("whsec_test_secret", "1764600000.<body>"). */
    assert_string_equal(sig + 16,
                        "56ae372b2732badfc3691559aafb02741cce2e86702a6f10dd547351153bc54e");
    /* Another v1 first (a rolled secret) still verifies. */
    snprintf(hdr, sizeof(hdr), "t=%lld,v1=%064d,%s", (long long)now, 0, sig + 13);
    assert_int_equal(tk_stripe_webhook_verify(body, len, hdr, WHSEC, 300, now, &err), 0);
    /* Tampered body, other secret, flipped digit, missing parts: refused. */
    assert_int_equal(tk_stripe_webhook_verify("{}", 2, sig, WHSEC, 300, now, &err), TK_EINVAL);
    assert_string_equal(err.message, "Invalid signature");
    assert_int_equal(tk_stripe_webhook_verify(body, len, sig, "whsec_other", 300, now, &err),
                     TK_EINVAL);
    snprintf(hdr, sizeof(hdr), "%s", sig);
    hdr[20] = hdr[20] == 'a' ? 'b' : 'a';
    assert_int_equal(tk_stripe_webhook_verify(body, len, hdr, WHSEC, 300, now, &err), TK_EINVAL);
    assert_int_equal(tk_stripe_webhook_verify(body, len, sig + 13, WHSEC, 300, now, &err),
                     TK_EINVAL); /* no t= */
    assert_int_equal(tk_stripe_webhook_verify(body, len, "t=1764600000", WHSEC, 300, now, &err),
                     TK_EINVAL); /* no v1= */
    assert_int_equal(tk_stripe_webhook_verify(body, len, NULL, WHSEC, 300, now, &err), TK_EINVAL);
    snprintf(hdr, sizeof(hdr), "t=17646x0000,%s", sig + 13);
    assert_int_equal(tk_stripe_webhook_verify(body, len, hdr, WHSEC, 300, now, &err), TK_EINVAL);
    /* Stale or from the future beyond the tolerance: refused although the HMAC is right. */
    assert_int_equal(tk_stripe_webhook_verify(body, len, sig, WHSEC, 300, now + 301, &err),
                     TK_EINVAL);
    assert_string_equal(err.message, "Signature timestamp too old");
    assert_int_equal(tk_stripe_webhook_verify(body, len, sig, WHSEC, 300, now - 301, &err),
                     TK_EINVAL);
    /* No secret configured: the endpoint is unavailable, not open. */
    assert_int_equal(tk_stripe_webhook_verify(body, len, sig, "", 300, now, &err), TK_EUNAVAIL);
}

TK_TEST_MAIN(
    group_setup, group_teardown,
    cmocka_unit_test_setup(charge_sends_a_confirmed_payment_intent, tk_fake_stripe_reset_each),
    cmocka_unit_test_setup(token_is_turned_into_a_payment_method, tk_fake_stripe_reset_each),
    cmocka_unit_test_setup(timeout_then_success_charges_once, tk_fake_stripe_reset_each),
    TK_TEST_CASE(retry_cases[0].name, retried_charge, tk_fake_stripe_reset_each, &retry_cases[0]),
    TK_TEST_CASE(retry_cases[1].name, retried_charge, tk_fake_stripe_reset_each, &retry_cases[1]),
    TK_TEST_CASE(retry_cases[2].name, retried_charge, tk_fake_stripe_reset_each, &retry_cases[2]),
    cmocka_unit_test_setup(decline_is_einval_with_stripes_message_and_no_retry,
                           tk_fake_stripe_reset_each),
    cmocka_unit_test_setup(declined_test_token, tk_fake_stripe_reset_each),
    cmocka_unit_test_setup(unreachable_is_unavailable_after_every_attempt,
                           tk_fake_stripe_reset_each),
    cmocka_unit_test_setup(bad_key_is_bad_gateway_without_retry_or_leak, tk_fake_stripe_reset_each),
    cmocka_unit_test_setup(missing_key_or_amount_is_refused_before_any_request,
                           tk_fake_stripe_reset_each),
    cmocka_unit_test_setup(same_key_twice_is_one_intent, tk_fake_stripe_reset_each),
    cmocka_unit_test_setup(concurrent_same_key_is_one_intent, tk_fake_stripe_reset_each),
    cmocka_unit_test_setup(refund_once_per_key, tk_fake_stripe_reset_each),
    cmocka_unit_test_setup(lost_charge_is_found_by_attempt, tk_fake_stripe_reset_each),
    cmocka_unit_test_setup(backoff_is_bounded_and_jittered, tk_fake_stripe_reset_each),
    cmocka_unit_test_setup(default_options_come_from_the_environment, tk_fake_stripe_reset_each),
    cmocka_unit_test(webhook_signature_is_checked))
