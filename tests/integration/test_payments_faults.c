/*
 * test_payments_faults.c - POST /api/payments against the real broker and PostgreSQL with Stripe
 * replaced by the fault-injecting fake (tests/support/fake_stripe.c): what the charge request
 * carries, a lost response then a retry (one charge), 5xx and 429 until the retries run out
 * (502/503, nothing stored), declines (400 with Stripe's message; a new card may pay), 20
 * concurrent payments for one order (one charge, one payment, one event), an order cancelled
 * while the charge was in flight (refunded, payment:refunded, 400), a refund Stripe refuses twice
 * then accepts (retried with backoff and one key: refunded exactly once), and a cancellation
 * after the payment refunded exactly once by the refund worker.
 */
#include "test_payments_common.c"

#include <curl/curl.h>

#include "fake_stripe.h"
#include "tk/stripe.h"

#define WHSEC "whsec_integration_test"

#define PI "/v1/payment_intents"
#define RE "/v1/refunds"

static tk_fake_stripe_t *fake;
static tk_stripe_options_t fake_opts; /* strings: the fake's URL and a literal */

static int setup(void **state)
{
    (void)state;
    setenv("STRIPE_WEBHOOK_SECRET", WHSEC, 1);
    fake = tk_fake_stripe_start();
    fake_opts = tk_fake_stripe_options(fake);
    tk_stripe_options_override(&fake_opts);
    return payments_start();
}

static int teardown(void **state)
{
    (void)state;
    payments_stop();
    tk_stripe_options_override(NULL);
    tk_fake_stripe_stop(fake);
    return 0;
}

/* A fake with no faults and no records, and a fresh order (ORDER_TEST_SETUP). */
static int fake_and_order(void **state)
{
    tk_fake_stripe_reset(fake);
    return order_setup(state);
}

/* P4 with the request checked: amount = price x 100, usd, confirmed, the order in metadata. */
static void charge_carries_amount_currency_and_order(void **state)
{
    struct fixture *f = *state;
    char payment_id[TK_UUID_LEN + 1];
    pay_created(f, "tok_visa", payment_id);

    json_t *rec = tk_fake_stripe_last(fake, PI);
    assert_non_null(rec);
    assert_string_equal(tk_fake_stripe_form(rec, "amount"), "1999");
    assert_string_equal(tk_fake_stripe_form(rec, "currency"), "usd");
    assert_string_equal(tk_fake_stripe_form(rec, "confirm"), "true");
    assert_string_equal(tk_fake_stripe_form(rec, "metadata[order_id]"), f->order);
    assert_string_equal(json_string_value(json_object_get(rec, "authorization")),
                        "Bearer sk_test_fake_key");
    char prefix[128];
    snprintf(prefix, sizeof(prefix), "order-%s-charge-", f->order);
    const char *key = json_string_value(json_object_get(rec, "idempotency_key"));
    assert_true(strncmp(key, prefix, strlen(prefix)) == 0);
    json_decref(rec);
    assert_int_equal(tk_fake_stripe_created(fake, PI), 1);

    assert_string_equal(query1("SELECT stripe_id FROM payments WHERE order_id = $1", f->order),
                        "pi_fake_2"); /* pm_fake_1 was the token's payment method */
    json_t *env = tk_test_watch_expect(f->w, "payment:created", payment_id, 20000);
    assert_non_null(env);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(env, "data"), "stripeId")), "pi_fake_2");
    json_decref(env);
}

/* The first answer is lost (later than the 1 s timeout): the retry with the same key is
 * answered from Stripe's record, so one PaymentIntent exists and it is the one stored. */
static void timeout_then_success_is_one_charge(void **state)
{
    struct fixture *f = *state;
    tk_fake_stripe_delay(fake, PI, 1, 2500);
    pay_expect(f, "pm_card_visa", 201, NULL);
    json_t *rec = tk_fake_stripe_last(fake, PI);
    const char *key = json_string_value(json_object_get(rec, "idempotency_key"));
    assert_int_equal(tk_fake_stripe_count(fake, PI, key), 2);
    assert_true(json_is_true(json_object_get(rec, "replayed")));
    json_decref(rec);
    assert_int_equal(tk_fake_stripe_created(fake, PI), 1);
    assert_int_equal(payments_of(f->order), 1);
    assert_string_equal(query1("SELECT stripe_id FROM payments WHERE order_id = $1", f->order),
                        "pi_fake_1");
}

/* 500 on every attempt: 502, nothing stored, nothing charged; once Stripe is back, it pays. */
static void server_errors_until_retries_run_out(void **state)
{
    struct fixture *f = *state;
    tk_fake_stripe_fail(fake, PI, 100, 500);
    pay_expect(f, "pm_card_visa", 502, NULL);
    assert_int_equal(tk_fake_stripe_count(fake, PI, NULL), 3);
    assert_int_equal(tk_fake_stripe_created(fake, PI), 0);
    assert_int_equal(payments_of(f->order), 0);

    tk_fake_stripe_reset(fake);
    tk_fake_stripe_fail(fake, NULL, 100, 429);
    pay_expect(f, "pm_card_visa", 503, NULL);
    assert_int_equal(payments_of(f->order), 0);

    tk_fake_stripe_reset(fake);
    pay_expect(f, "pm_card_visa", 201, NULL);
    assert_int_equal(tk_fake_stripe_created(fake, PI), 1);
    assert_int_equal(payments_of(f->order), 1);
}

/* A decline is 400 with Stripe's message; the same card declines again (Stripe replays it),
 * another card pays. */
static void decline_is_400_and_another_card_may_pay(void **state)
{
    struct fixture *f = *state;
    tk_fake_stripe_decline(fake, 1, "Your card has insufficient funds.");
    pay_expect(f, "pm_card_visa", 400, "Your card has insufficient funds.");
    assert_int_equal(payments_of(f->order), 0);
    pay_expect(f, "pm_card_visa", 400, "Your card has insufficient funds.");
    pay_expect(f, "tok_chargeDeclined", 400, "Your card was declined.");
    assert_int_equal(tk_fake_stripe_created(fake, PI), 0);

    pay_expect(f, "pm_card_mastercard", 201, NULL);
    assert_int_equal(tk_fake_stripe_created(fake, PI), 1);
    assert_int_equal(payments_of(f->order), 1);
}

#define RACERS 20

struct racer {
    const struct fixture *f;
    long status;
    char id[TK_UUID_LEN + 1];
    char message[128];
};

static void *race(void *arg)
{
    struct racer *rc = arg;
    tk_test_resp_t r;
    rc->status = pay(rc->f->cookie, "tok_visa", rc->f->order, &r);
    const char *id = json_string_value(json_object_get(r.json, "id"));
    snprintf(rc->id, sizeof(rc->id), "%s", id ? id : "");
    const char *m = r.status == 400 ? tk_test_first_message(&r) : NULL;
    snprintf(rc->message, sizeof(rc->message), "%s", m ? m : "");
    tk_test_resp_release(&r);
    return NULL;
}

/* 20 concurrent payments for one order: one charge, one payment, one payment:created. */
static void concurrent_payments_charge_once(void **state)
{
    struct fixture *f = *state;
    struct racer racers[RACERS];
    for (int i = 0; i < RACERS; i++)
        racers[i] = (struct racer){.f = f};
    tk_test_run_threads(race, racers, sizeof(racers[0]), RACERS);
    int created = 0, paid = 0;
    const char *payment_id = NULL;
    for (int i = 0; i < RACERS; i++) {
        if (racers[i].status == 201) {
            created++;
            payment_id = racers[i].id;
        } else if (racers[i].status == 400 &&
                   strcmp(racers[i].message, "Order already paid") == 0) {
            paid++;
        }
    }
    assert_int_equal(created, 1);
    assert_int_equal(paid, RACERS - 1);
    assert_int_equal(tk_fake_stripe_created(fake, PI), 1);
    assert_int_equal(payments_of(f->order), 1);
    assert_true(tk_test_watch_saw(f->w, "payment:created", payment_id, 20000));
    assert_int_equal(tk_test_watch_count(f->w, "payment:created", NULL, 1500), 0);
}

struct pay_async {
    const struct fixture *f;
    tk_test_resp_t resp;
};

static void *pay_in_thread(void *arg)
{
    struct pay_async *a = arg;
    pay(a->f->cookie, "pm_card_visa", a->f->order, &a->resp);
    return NULL;
}

/* The payment:refunded of @p f's refund (the refunds row's id is its subject), within 20 s: its
 * envelope (owned). */
static json_t *refund_event(const struct fixture *f)
{
    char refund_payment[TK_UUID_LEN + 1];
    strcpy(refund_payment, query1("SELECT id FROM refunds WHERE order_id = $1", f->order));
    json_t *env = tk_test_watch_expect(f->w, "payment:refunded", refund_payment, 20000);
    assert_non_null(env);
    return env;
}

/* Pay for @p f in a thread while Stripe holds its answer (charged, not yet answered), cancel the
 * order meanwhile and wait for the replica to see it, then let Stripe answer: the client gets
 * 400 'Cannot pay for an cancelled order'. */
static void cancel_while_charging(const struct fixture *f)
{
    tk_stripe_options_t o = fake_opts;
    o.timeout_ms = 30000; /* the held answer must not time out */
    tk_stripe_options_override(&o);
    tk_fake_stripe_hold(fake, true);
    struct pay_async a = {.f = f};
    pthread_t t;
    pthread_create(&t, NULL, pay_in_thread, &a);
    assert_true(tk_fake_stripe_wait_count(fake, PI, 1, 20000)); /* charged, answer held */
    order_changed("order:cancelled", f->order, f->ticket, 1);
    assert_true(wait_replica(f->order, "cancelled/1"));
    tk_fake_stripe_hold(fake, false);
    pthread_join(t, NULL);
    tk_stripe_options_override(&fake_opts);

    assert_int_equal(a.resp.status, 400);
    assert_string_equal(tk_test_first_message(&a.resp), "Cannot pay for an cancelled order");
    tk_test_resp_release(&a.resp);
}

/* The order is cancelled while the charge is in flight: the charge is refunded, recorded and
 * published as payment:refunded, and the client gets 'Cannot pay for an cancelled order'. */
static void cancelled_while_charging_is_refunded(void **state)
{
    struct fixture *f = *state;
    cancel_while_charging(f);
    assert_int_equal(payments_of(f->order), 0);
    assert_int_equal(tk_fake_stripe_created(fake, RE), 1);
    json_t *rec = tk_fake_stripe_last(fake, RE);
    assert_string_equal(tk_fake_stripe_form(rec, "payment_intent"), "pi_fake_1");
    json_decref(rec);
    assert_string_equal(query1("SELECT status || ' ' || reason || ' ' || stripe_id FROM refunds "
                               "WHERE order_id = $1",
                               f->order),
                        "succeeded order cancelled pi_fake_1");
    json_t *env = refund_event(f);
    assert_string_equal(json_string_value(json_object_get(json_object_get(env, "data"), "orderId")),
                        f->order);
    json_decref(env);
    assert_int_equal(tk_test_watch_count(f->w, "payment:created", NULL, 1000), 0);
}

struct metric_wait {
    const char *line; /* "tk_payments_refunds_failed 1" */
};

static bool metrics_show(void *arg)
{
    const struct metric_wait *m = arg;
    tk_test_resp_t r;
    tk_test_http("GET", "/metrics", NULL, NULL, &r);
    bool found = r.status == 200 && r.body != NULL && strstr(r.body, m->line) != NULL;
    tk_test_resp_release(&r);
    return found;
}

static bool refund_succeeded(void *arg)
{
    return strcmp(query1("SELECT status FROM refunds WHERE order_id = $1", arg), "succeeded") == 0;
}

/* The same race with Stripe refusing the refund twice: the client still gets 400 at once; the
 * intent stays pending (the gauges show it pending and failed), is retried with backoff and the
 * same Idempotency-Key, and once Stripe accepts it the charge is refunded exactly once and
 * payment:refunded published once. */
static void refund_refused_twice_then_accepted_once(void **state)
{
    struct fixture *f = *state;
    tk_fake_stripe_fail(fake, RE, 2, 400); /* two refusals, each final for its call */
    cancel_while_charging(f);
    /* Refused once by now (the request's own attempt): pending, and counted as failed. */
    assert_string_equal(query1("SELECT status FROM refunds WHERE order_id = $1", f->order),
                        "pending");
    struct metric_wait failed = {"tk_payments_refunds_failed 1\n"};
    assert_true(tk_test_eventually(metrics_show, &failed, 5000));

    assert_true(tk_test_eventually(refund_succeeded, f->order, 20000));
    char key[TK_STRIPE_KEY_MAX + 1];
    tk_payment_refund_key(f->order, "pi_fake_1", key);
    assert_int_equal(tk_fake_stripe_count(fake, RE, key), 3); /* refused, refused, accepted */
    assert_int_equal(tk_fake_stripe_count(fake, RE, NULL), 3);
    assert_int_equal(tk_fake_stripe_created(fake, RE), 1);
    assert_string_equal(query1("SELECT attempts || ' ' || (last_error IS NULL) FROM refunds "
                               "WHERE order_id = $1",
                               f->order),
                        "3 true");
    json_decref(refund_event(f));
    assert_int_equal(tk_test_watch_count(f->w, "payment:refunded", NULL, 2000), 0);
    struct metric_wait none = {"tk_payments_refunds_pending 0\n"};
    assert_true(tk_test_eventually(metrics_show, &none, 5000));
}

/* A cancellation after the payment was stored refunds once, even if the event is delivered
 * twice (another event id for the same version is skipped by the version gate): the replica
 * writes one intent, and the worker carries it out. */
static void cancellation_after_payment_refunds_once(void **state)
{
    struct fixture *f = *state;
    char payment_id[TK_UUID_LEN + 1];
    pay_created(f, "pm_card_visa", payment_id);
    order_changed("order:cancelled", f->order, f->ticket, 1);
    order_changed("order:cancelled", f->order, f->ticket, 1);
    assert_true(wait_processed(last_event));
    assert_true(tk_test_eventually(refund_succeeded, f->order, 20000));
    json_t *env = tk_test_watch_expect(f->w, "payment:refunded", payment_id, 20000);
    assert_non_null(env);
    assert_int_equal(json_integer_value(json_object_get(env, "aggregateversion")), 1);
    json_decref(env);
    assert_int_equal(tk_test_watch_count(f->w, "payment:refunded", NULL, 1500), 0);
    assert_int_equal(tk_fake_stripe_created(fake, RE), 1);
    assert_int_equal(tk_fake_stripe_count(fake, RE, NULL), 1);
    assert_int_equal(count_rows("SELECT count(*) FROM refunds WHERE order_id = $1 AND "
                                "status = 'succeeded'",
                                f->order),
                     1);
}

/* ------------------------------------------------------------------ issue 11: retries */

#define RETRIED_ORDERS 100

/* "Charge, then time out", 100 times: each charge is made at Stripe but its answer never comes
 * back in time (503); the client retries with a NEW card token (a new Idempotency-Key). The
 * retry must find the first charge (recorded attempt, PaymentIntent search) and keep it: 201,
 * and no second PaymentIntent, ever. */
static void charge_then_timeout_retries_never_charge_twice(void **state)
{
    (void)state;
    /* Payment methods (pm_...) go straight to the PaymentIntent, the one call the fake delays
     * (1.5 s) past the client's timeout (0.4 s): every first attempt charges, then times out. */
    tk_stripe_options_t o = fake_opts;
    o.timeout_ms = 400;
    o.max_attempts = 1;
    tk_stripe_options_override(&o);
    tk_fake_stripe_charge_timeout(fake, 1500);
    static struct fixture f[RETRIED_ORDERS];
    for (int i = 0; i < RETRIED_ORDERS; i++) {
        tk_uuid_new(f[i].user);
        f[i].cookie = session_of(f[i].user);
        order_created(f[i].user, 1000 + i, f[i].order, f[i].ticket);
    }
    for (int i = 0; i < RETRIED_ORDERS; i++)
        assert_true(wait_replica(f[i].order, "created/0"));
    int retried_201 = 0;
    for (int i = 0; i < RETRIED_ORDERS; i++) {
        char first[64], second[64];
        snprintf(first, sizeof(first), "pm_card_first_%d", i);
        snprintf(second, sizeof(second), "pm_card_retry_%d", i);
        tk_test_resp_t r;
        assert_int_equal(pay(f[i].cookie, first, f[i].order, &r), 503);
        tk_test_resp_release(&r);
        long st = pay(f[i].cookie, second, f[i].order, &r);
        retried_201 += st == 201;
        tk_test_resp_release(&r);
    }
    tk_fake_stripe_charge_timeout(fake, 0);
    tk_stripe_options_override(&fake_opts);

    /* One PaymentIntent per order, each the order's stored payment; nothing to refund. */
    assert_int_equal(tk_fake_stripe_created(fake, PI), RETRIED_ORDERS);
    assert_int_equal(retried_201, RETRIED_ORDERS);
    json_t *reqs = tk_fake_stripe_requests(fake);
    for (int i = 0; i < RETRIED_ORDERS; i++) {
        assert_int_equal(payments_of(f[i].order), 1);
        /* The first card's charge is the one kept; the retry's card was never charged. */
        size_t k;
        json_t *rec;
        int charged_first = 0, charged_retry = 0;
        json_array_foreach(reqs, k, rec)
        {
            if (strcmp(json_string_value(json_object_get(rec, "path")), PI) != 0 ||
                json_is_true(json_object_get(rec, "replayed")) ||
                strcmp(tk_fake_stripe_form(rec, "metadata[order_id]"), f[i].order) != 0)
                continue;
            charged_first +=
                strncmp(tk_fake_stripe_form(rec, "payment_method"), "pm_card_first_", 14) == 0;
            charged_retry +=
                strncmp(tk_fake_stripe_form(rec, "payment_method"), "pm_card_retry_", 14) == 0;
        }
        assert_int_equal(charged_first, 1);
        assert_int_equal(charged_retry, 0);
        assert_int_equal(count_rows("SELECT count(*) FROM payment_attempts WHERE order_id = $1 "
                                    "AND status = 'succeeded'",
                                    f[i].order),
                         1);
        fixture_free(&f[i]);
    }
    json_decref(reqs);
    assert_int_equal(tk_fake_stripe_count(fake, RE, NULL), 0);
}

/* ------------------------------------------------------------------ issue 11: the webhook */

struct webhook_resp {
    long status;
    char body[512];
};

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
    struct webhook_resp *r = ud;
    size_t have = strlen(r->body), add = size * n;
    if (have + add < sizeof(r->body))
        memcpy(r->body + have, p, add), r->body[have + add] = '\0';
    return size * n;
}

/* POST /api/payments/webhook with @p body and header Stripe-Signature: @p signature (NULL: none).
 */
static long post_webhook(const char *body, const char *signature, struct webhook_resp *out)
{
    char url[256], header[TK_STRIPE_SIGNATURE_MAX + 32];
    memset(out, 0, sizeof(*out));
    snprintf(url, sizeof(url), "%s/api/payments/webhook", tk_test_base_url());
    CURL *c = curl_easy_init();
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    if (signature != NULL) {
        snprintf(header, sizeof(header), "Stripe-Signature: %s", signature);
        h = curl_slist_append(h, header);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return out->status;
}

/* A charge whose answer was lost (attempt pending); returns the PaymentIntent Stripe made. */
static json_t *lost_charge(const struct fixture *f)
{
    tk_stripe_options_t o = fake_opts;
    o.timeout_ms = 150;
    o.max_attempts = 1;
    tk_stripe_options_override(&o);
    tk_fake_stripe_charge_timeout(fake, 600);
    tk_test_resp_t r;
    assert_int_equal(pay(f->cookie, "tok_visa", f->order, &r), 503);
    tk_test_resp_release(&r);
    tk_fake_stripe_charge_timeout(fake, 0);
    tk_stripe_options_override(&fake_opts);
    assert_string_equal(query1("SELECT status FROM payment_attempts WHERE order_id = $1", f->order),
                        "pending");
    json_t *pi = tk_fake_stripe_intent(fake, "pi_fake_2"); /* pm_fake_1 was the token's */
    assert_non_null(pi);
    return pi;
}

/* The event Stripe sends for @p pi. Owned text. */
static char *event_text(const char *type, json_t *pi)
{
    char id[TK_UUID_LEN + 1];
    tk_uuid_new(id);
    json_t *ev = json_pack("{s:s, s:s, s:s, s:{s:O}}", "id", id, "object", "event", "type", type,
                           "data", "object", pi);
    char *text = json_dumps(ev, JSON_COMPACT);
    json_decref(ev);
    return text;
}

/* A delivery of the event @p type for @p pi (event_text), signed with the endpoint's secret at
 * @p t (seconds). body is owned (free). */
struct delivery {
    char *body;
    char sig[TK_STRIPE_SIGNATURE_MAX + 1];
};

static void delivery_sign(struct delivery *d, const char *type, json_t *pi, int64_t t)
{
    d->body = event_text(type, pi);
    tk_stripe_webhook_sign(d->body, strlen(d->body), WHSEC, t, d->sig);
}

static const char *webhook_message(const struct webhook_resp *r)
{
    static char msg[256];
    json_t *js = json_loads(r->body, 0, NULL);
    const char *m = json_string_value(
        json_object_get(json_array_get(json_object_get(js, "errors"), 0), "message"));
    snprintf(msg, sizeof(msg), "%s", m ? m : "");
    json_decref(js);
    return msg;
}

/* A payment_intent.succeeded signed with the endpoint's secret settles the lost charge: it
 * becomes the order's payment (payment:created), and a retry answers 'Order already paid'. */
static void signed_webhook_settles_a_lost_charge(void **state)
{
    struct fixture *f = *state;
    json_t *pi = lost_charge(f);
    struct delivery d;
    delivery_sign(&d, "payment_intent.succeeded", pi, tk_now_ms() / 1000);
    struct webhook_resp r;
    assert_int_equal(post_webhook(d.body, d.sig, &r), 200);
    assert_int_equal(payments_of(f->order), 1);
    assert_string_equal(query1("SELECT stripe_id FROM payments WHERE order_id = $1", f->order),
                        "pi_fake_2");
    assert_string_equal(query1("SELECT status FROM payment_attempts WHERE order_id = $1", f->order),
                        "succeeded");
    char payment_id[TK_UUID_LEN + 1];
    strcpy(payment_id, query1("SELECT id FROM payments WHERE order_id = $1", f->order));
    assert_true(tk_test_watch_saw(f->w, "payment:created", payment_id, 20000));
    /* Delivered again (Stripe retries deliveries): nothing changes. */
    assert_int_equal(post_webhook(d.body, d.sig, &r), 200);
    assert_int_equal(payments_of(f->order), 1);
    tk_test_resp_t pr;
    assert_int_equal(pay(f->cookie, "tok_visa_other", f->order, &pr), 400);
    assert_string_equal(tk_test_first_message(&pr), "Order already paid");
    tk_test_resp_release(&pr);
    assert_int_equal(tk_fake_stripe_created(fake, PI), 1);
    free(d.body);
    json_decref(pi);
}

/* A wrong HMAC, a missing header, or a valid HMAC with a stale timestamp (a replayed old
 * delivery) is refused with 400 and changes nothing. */
static void unsigned_or_stale_webhooks_are_refused(void **state)
{
    struct fixture *f = *state;
    json_t *pi = lost_charge(f);
    char *body = event_text("payment_intent.succeeded", pi);
    char sig[TK_STRIPE_SIGNATURE_MAX + 1];
    struct webhook_resp r;
    int64_t now = tk_now_ms() / 1000;

    tk_stripe_webhook_sign(body, strlen(body), "whsec_not_ours", now, sig);
    assert_int_equal(post_webhook(body, sig, &r), 400);
    assert_string_equal(webhook_message(&r), "Invalid signature");
    assert_int_equal(post_webhook(body, NULL, &r), 400);
    assert_string_equal(webhook_message(&r), "Invalid signature");
    tk_stripe_webhook_sign(body, strlen(body), WHSEC, now - 301, sig); /* tolerance: 300 s */
    assert_int_equal(post_webhook(body, sig, &r), 400);
    assert_string_equal(webhook_message(&r), "Signature timestamp too old");
    /* Signed for another body: the HMAC covers the exact bytes. */
    tk_stripe_webhook_sign(body, strlen(body), WHSEC, now, sig);
    char *other = event_text("payment_intent.succeeded", pi);
    assert_int_equal(post_webhook(other, sig, &r), 400);
    assert_int_equal(payments_of(f->order), 0);
    assert_string_equal(query1("SELECT status FROM payment_attempts WHERE order_id = $1", f->order),
                        "pending");
    /* A signed payment_failed for it settles the attempt as failed: nothing is stored. */
    struct delivery failed;
    delivery_sign(&failed, "payment_intent.payment_failed", pi, now);
    assert_int_equal(post_webhook(failed.body, failed.sig, &r), 200);
    assert_string_equal(query1("SELECT status FROM payment_attempts WHERE order_id = $1", f->order),
                        "failed");
    assert_int_equal(payments_of(f->order), 0);
    free(failed.body);
    free(other);
    free(body);
    json_decref(pi);
}

/* The lost charge's order was cancelled meanwhile (the owner's DELETE reached payments): when
 * the webhook reports the charge, it is not kept but refunded, once, with payment:refunded. */
static void lost_charge_of_a_cancelled_order_is_refunded(void **state)
{
    struct fixture *f = *state;
    json_t *pi = lost_charge(f);
    order_changed("order:cancelled", f->order, f->ticket, 1);
    assert_true(wait_replica(f->order, "cancelled/1"));
    struct delivery d;
    delivery_sign(&d, "payment_intent.succeeded", pi, tk_now_ms() / 1000);
    struct webhook_resp r;
    assert_int_equal(post_webhook(d.body, d.sig, &r), 200);
    assert_int_equal(payments_of(f->order), 0);
    assert_true(tk_test_eventually(refund_succeeded, f->order, 20000));
    assert_string_equal(
        query1("SELECT reason || ' ' || stripe_id FROM refunds WHERE order_id = $1", f->order),
        "order cancelled pi_fake_2");
    assert_int_equal(tk_fake_stripe_refunded(fake, "pi_fake_2"), 1);
    assert_int_equal(tk_fake_stripe_created(fake, RE), 1);
    assert_true(tk_test_watch_saw(f->w, "payment:refunded", NULL, 20000));
    assert_int_equal(post_webhook(d.body, d.sig, &r), 200); /* redelivered: nothing more */
    assert_int_equal(tk_test_watch_count(f->w, "payment:refunded", NULL, 1500), 0);
    assert_int_equal(tk_fake_stripe_created(fake, RE), 1);
    free(d.body);
    json_decref(pi);
}

TK_TEST_MAIN(setup, teardown,
             ORDER_TEST_SETUP(charge_carries_amount_currency_and_order, fake_and_order, 1999),
             ORDER_TEST_SETUP(timeout_then_success_is_one_charge, fake_and_order, 2500),
             ORDER_TEST_SETUP(server_errors_until_retries_run_out, fake_and_order, 2000),
             ORDER_TEST_SETUP(decline_is_400_and_another_card_may_pay, fake_and_order, 2000),
             ORDER_TEST_SETUP(concurrent_payments_charge_once, fake_and_order, 5000),
             ORDER_TEST_SETUP(cancelled_while_charging_is_refunded, fake_and_order, 2000),
             ORDER_TEST_SETUP(refund_refused_twice_then_accepted_once, fake_and_order, 2000),
             ORDER_TEST_SETUP(cancellation_after_payment_refunds_once, fake_and_order, 2000),
             cmocka_unit_test_setup(charge_then_timeout_retries_never_charge_twice,
                                    tk_fake_stripe_reset_each),
             ORDER_TEST_SETUP(signed_webhook_settles_a_lost_charge, fake_and_order, 3000),
             ORDER_TEST_SETUP(unsigned_or_stale_webhooks_are_refused, fake_and_order, 3000),
             ORDER_TEST_SETUP(lost_charge_of_a_cancelled_order_is_refunded, fake_and_order, 3000))
