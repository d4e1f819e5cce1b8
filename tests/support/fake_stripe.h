/*
 * fake_stripe.h - a small fault-injecting Stripe for tests: an HTTP/1.1 server on 127.0.0.1 and
 * an ephemeral port, in a thread of the test process, that speaks the three endpoints the adapter
 * uses (POST /v1/payment_methods, /v1/payment_intents, /v1/refunds), records every request, and
 * behaves like Stripe where it matters for "at most one charge":
 *
 *   - Idempotency: the first execution of an Idempotency-Key stores its status and body; a later
 *     request with that key gets the stored answer (header Idempotent-Replayed: true) without
 *     creating anything; the same key with another path or other parameters gets 400
 *     idempotency_error. Injected 5xx/429 answers happen before execution and are not stored.
 *   - Declines: a payment method or token whose name contains "chargeDeclined", or a programmed
 *     decline, gives 402 card_error card_declined "Your card was declined." (stored, as Stripe
 * does).
 *
 * Programmable faults, each for the next @p n requests matching @p path (NULL: any path):
 *   delay  executed and stored at once, but answered only after delay_ms (a lost response when
 *          delay_ms exceeds the client's timeout);
 *   fail   answered with @p status and a Stripe error body, not executed, not stored;
 *   hold   payment intents are executed and stored, then wait until tk_fake_stripe_hold(false);
 *   charge, then time out (tk_fake_stripe_charge_timeout): every payment intent request is
 *          executed and stored as usual, and its answer (a replay's too) comes delay_ms late,
 *          past the client's timeout: the client never learns that the charge happened.
 *
 * Lookups: GET /v1/payment_intents/search?query=metadata['attempt_id']:'<id>' answers the intents
 * created with that metadata, immediately (no index lag).
 *
 * Run as a process (tk_fake_stripe, fake_stripe_main.c), it is driven over HTTP instead:
 *   POST /__fake/charge_timeout  form ms=N      tk_fake_stripe_charge_timeout(N)
 *   POST /__fake/reset                          tk_fake_stripe_reset
 *   GET  /__fake/state   {"requests": [...as tk_fake_stripe_requests], "created": {path: n},
 *                         "intents": {pi id: {"refunded": bool, "object": PaymentIntent}}}
 *
 * Thread: the control functions may be called from any thread while the server runs.
 */
#ifndef TK_FAKE_STRIPE_H
#define TK_FAKE_STRIPE_H

#include <jansson.h>
#include <stdbool.h>

#include "tk/stripe.h"

typedef struct tk_fake_stripe tk_fake_stripe_t;

/** @brief Start the server. @return owned (tk_fake_stripe_stop); exits the test run on failure. */
tk_fake_stripe_t *tk_fake_stripe_start(void);

/** @brief Stop, waiting for connections in flight (holds are released). Accepts NULL. */
void tk_fake_stripe_stop(tk_fake_stripe_t *fs);

/** @brief "http://127.0.0.1:<port>", for STRIPE_API_BASE. Borrowed, lives as long as @p fs. */
const char *tk_fake_stripe_url(const tk_fake_stripe_t *fs);

/**
 * @brief Stripe client options aimed at @p fs, for tests: the key "sk_test_fake_key", 1 s to
 *        connect and for an answer, 3 attempts with a backoff from 20 ms up to 100 ms. A test
 *        changes the fields it needs. Strings borrowed from @p fs (until tk_fake_stripe_stop).
 */
tk_stripe_options_t tk_fake_stripe_options(const tk_fake_stripe_t *fs);

/** @brief The form field @p name of a recorded request @p rec (see tk_fake_stripe_last), or
 *         NULL. Borrowed from @p rec. */
const char *tk_fake_stripe_form(json_t *rec, const char *name);

/** @brief Forget recorded requests, stored keys, objects and pending faults; release a hold. */
void tk_fake_stripe_reset(tk_fake_stripe_t *fs);

/** @brief A cmocka per-test setup: tk_fake_stripe_reset of the fake this process started last
 *         (and has not stopped), so that every test begins with a fake of no faults and no
 *         records. @return 0. */
int tk_fake_stripe_reset_each(void **state);

/** @brief The next @p n requests to @p path (NULL: any) are answered @p delay_ms late. */
void tk_fake_stripe_delay(tk_fake_stripe_t *fs, const char *path, int n, int delay_ms);

/** @brief The next @p n requests to @p path (NULL: any) get @p status (500, 429, ...). */
void tk_fake_stripe_fail(tk_fake_stripe_t *fs, const char *path, int n, int status);

/** @brief The next @p n payment intents are declined (402) with @p message (copied). */
void tk_fake_stripe_decline(tk_fake_stripe_t *fs, int n, const char *message);

/** @brief While on, payment intent answers wait (after execution) until it is turned off. */
void tk_fake_stripe_hold(tk_fake_stripe_t *fs, bool on);

/** @brief Requests received for @p path (NULL: any) with @p key (NULL: any key). */
int tk_fake_stripe_count(tk_fake_stripe_t *fs, const char *path, const char *key);

/** @brief Objects actually created at @p path: executions that succeeded, replays excluded. */
int tk_fake_stripe_created(tk_fake_stripe_t *fs, const char *path);

/** @brief Wait up to @p timeout_ms until tk_fake_stripe_count(@p path, NULL) >= @p n. */
bool tk_fake_stripe_wait_count(tk_fake_stripe_t *fs, const char *path, int n, int timeout_ms);

/**
 * @brief Every recorded request, oldest first, as an array of {"path", "idempotency_key",
 *        "authorization", "replayed" (bool), "status" (int), "form": {name: value}}.
 * @return owned (json_decref).
 */
json_t *tk_fake_stripe_requests(tk_fake_stripe_t *fs);

/** @brief The last request to @p path as in tk_fake_stripe_requests, or NULL. Owned. */
json_t *tk_fake_stripe_last(tk_fake_stripe_t *fs, const char *path);

/** @brief "Charge, then time out": while @p delay_ms > 0 every payment intent answer is that late
 *         (after execution). 0 turns it off. */
void tk_fake_stripe_charge_timeout(tk_fake_stripe_t *fs, int delay_ms);

/** @brief The PaymentIntent object @p id as created, or NULL. Owned (json_decref). */
json_t *tk_fake_stripe_intent(tk_fake_stripe_t *fs, const char *id);

/** @brief 1 when PaymentIntent @p id was refunded, else 0. */
int tk_fake_stripe_refunded(tk_fake_stripe_t *fs, const char *id);

#endif
