/*
 * payments.h - the payments context's write side (DESIGN.md sections 5, 8 and 9): the pure rules
 * of POST /api/payments, the one arbiter of pay versus expire, the write functions shared by the
 * HTTP command and the reactions (projections/payments), the refund intents and their worker.
 *
 * An order's payment window is decided once, under the per-order payment lock (an advisory lock
 * on 'payments:' || order id), and the decision commits with the event that announces it:
 *
 *   open --POST /api/payments (before expiresAt): charge, tk_payments_store--> paid
 * (payment:created)
 *     |
 *     +--expiration:complete (tk_payments_expire, same lock)-----------------> expired
 * (payment:expired)
 *
 * A payment's life, with the function behind each step:
 *
 *   POST /api/payments
 *     tk_payment_request_parse -> lock -> tk_payments_order_load + tk_payments_window
 *     -> tk_payment_decide (401 owner, 400 cancelled, 400 paid, 400 'Order has expired')
 *     -> tk_stripe_charge (key tk_payment_charge_key)                  (no transaction open)
 *     -> tk_payments_store: in one transaction, re-read the order (FOR UPDATE) and
 *          live:       payments row + window 'paid' + payment:created                  -> 201 {id}
 *          cancelled, expired, or paid by another PaymentIntent: a refund intent      -> 400
 *          paid by the same PaymentIntent (a concurrent duplicate)                    -> 400
 *     -> unlock; a refund intent is tried at once (tk_payments_refunds_run)
 *
 *   order:cancelled for an order with a stored payment (orders cancelled it before it saw
 *   payment:created): the replica's reaction writes a refund intent (tk_payments_refund_intent).
 *
 * Refunds: an intent (refunds row 'pending') is written in the transaction that decides it; the
 * one code path that calls Stripe is tk_payments_refunds_run, outside any transaction, with the
 * intent's idempotency key (tk_payment_refund_key), retried with backoff until Stripe accepts;
 * then the row becomes 'succeeded' together with payment:refunded.
 */
#ifndef TK_PAYMENTS_H
#define TK_PAYMENTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "ev_order.h"
#include "ev_payment.h"
#include "tk/err.h"
#include "tk/http.h"
#include "tk/ids.h"
#include "tk/projector.h"
#include "tk/stripe.h"
#include "tk/tx.h"

#define TK_PAYMENT_CURRENCY "usd"
#define TK_PAYMENT_TOKEN_MAX 255 /* bytes of a card token or payment method id */

/** An order as payments knows it (orders_replica). */
typedef struct tk_payment_order {
    char id[TK_UUID_LEN + 1];
    char user_id[TK_UUID_LEN + 1];
    int64_t price_cents;
    ev_order_status_t status;
    int64_t version;
    int64_t expires_ms; /* expiresAt, epoch ms; 0 when unknown (replicated before it was kept) */
} tk_payment_order_t;

/** The state of an order's payment window (table payment_windows). */
typedef enum {
    TK_PAYMENT_WINDOW_OPEN = 0,
    TK_PAYMENT_WINDOW_PAID = 1,
    TK_PAYMENT_WINDOW_EXPIRED = 2
} tk_payment_window_t;

/** The body of POST /api/payments; strings borrowed from the request body. */
typedef struct tk_payment_request {
    const char *token;
    const char *order_id;
} tk_payment_request_t;

/* ---- pure rules (commands/payments/payment_rules.c), unit-tested ---- */

/**
 * @brief Validate the body of POST /api/payments.
 * @param body borrowed JSON object. @param out strings borrowed from @p body.
 * @param errors borrowed JSON array; receives {message, field} for each invalid member.
 * @return 0; TK_EINVAL when @p errors got entries ('Token must be provided', 'OrderId must be
 *         provided': missing, not a string, empty, or a token over TK_PAYMENT_TOKEN_MAX bytes);
 *         TK_ENOTFOUND when orderId is a string but not a UUID (no such order can exist).
 */
int tk_payment_request_parse(const json_t *body, tk_payment_request_t *out, json_t *errors,
                             tk_err_t *err);

/**
 * @brief The rule of paying order @p o as @p user_id at @p now_ms, its window in state @p window.
 * @return 0; TK_EUNAUTH 'Not authorized' (not the owner); TK_EINVAL 'Cannot pay for an
 *         cancelled order'; TK_EINVAL 'Order already paid' (complete, or the window is paid);
 *         TK_EINVAL 'Order has expired' (the window closed, or @p now_ms >= expiresAt).
 */
int tk_payment_decide(const tk_payment_order_t *o, const char *user_id, tk_payment_window_t window,
                      int64_t now_ms, tk_err_t *err);

/**
 * @brief The wait before refund attempt @p attempts + 1 after @p attempts failed ones (>= 1):
 *        min(@p max_ms, @p base_ms * 2^(attempts-1)). Pure.
 */
int64_t tk_payment_refund_backoff_ms(int attempts, int base_ms, int max_ms);

/** @brief The amount to charge, in cents: the order's price × 100 (already cents in the replica).
 */
int64_t tk_payment_amount(const tk_payment_order_t *o);

/**
 * @brief The Idempotency-Key of paying @p order_id with @p token:
 *        "order-<orderId>-charge-<16 hex digits of SHA-256(token)>". Every retry and every
 *        concurrent duplicate of one payment shares it (Stripe executes it once), and a new card
 *        after a decline gets a new key (Stripe stores declines under the key too, so a key
 *        made from the order alone would replay the old decline for a day).
 * @param out caller's buffer of TK_STRIPE_KEY_MAX + 1 bytes.
 */
void tk_payment_charge_key(const char *order_id, const char *token,
                           char out[TK_STRIPE_KEY_MAX + 1]);

/** @brief The Idempotency-Key of refunding @p stripe_id for @p order_id:
 *         "order-<orderId>-refund-<stripeId>". */
void tk_payment_refund_key(const char *order_id, const char *stripe_id,
                           char out[TK_STRIPE_KEY_MAX + 1]);

/* ---- the write model (commands/payments/payment_store.c) ---- */

/**
 * @brief Order @p id from orders_replica, FOR UPDATE when @p lock (inside a transaction: the
 *        replica's projector then waits for the caller's commit).
 * @return 0, TK_ENOTFOUND (also for a non-UUID), or a tk_pg error.
 */
int tk_payments_order_load(PGconn *conn, const char *id, bool lock, tk_payment_order_t *out,
                           tk_err_t *err);

/**
 * @brief The payment stored for @p order_id, if any.
 * @param stripe_id receives its PaymentIntent id ("" when none); may be NULL.
 * @return 1 when one is stored, 0 when none, or a negative tk_pg error.
 */
int tk_payments_find(PGconn *conn, const char *order_id, char stripe_id[TK_STRIPE_ID_MAX + 1],
                     char payment_id[TK_UUID_LEN + 1], tk_err_t *err);

/**
 * @brief The state of @p order_id's payment window.
 * @return a tk_payment_window_t (>= 0), or a negative tk_pg error.
 */
int tk_payments_window(PGconn *conn, const char *order_id, tk_err_t *err);

/** @brief Take the per-order payment lock until the end of @p tx's transaction (waits for a
 *         charge in flight, which holds the same lock at session level). */
int tk_payments_lock_xact(tk_tx_t *tx, const char *order_id, tk_err_t *err);

/** What tk_payments_store decided. */
typedef struct tk_payment_stored {
    char id[TK_UUID_LEN + 1];  /* the payment id (fresh; stored only when the call returned 0) */
    const char *refund_reason; /* static, non-NULL when a refund intent was written */
    const char *message;       /* static, the 400's message when refund_reason is set */
} tk_payment_stored_t;

/**
 * @brief Store the charge @p stripe_id of order @p order_id: the body of the command's
 *        transaction (see the diagram at the top). @p out->id must hold a fresh UUID.
 * @return 0: stored (payments row, window 'paid', payment:created) when @p out->refund_reason
 *         is NULL, else a refund intent was written and the request answers 400 @p out->message
 *         ('Cannot pay for an cancelled order', 'Order has expired', 'Order already paid');
 *         TK_EINVAL 'Order already paid' when this very PaymentIntent is stored (a duplicate);
 *         TK_ENOTFOUND; or a tk_pg error.
 */
int tk_payments_store(tk_tx_t *tx, const char *order_id, const char *stripe_id,
                      tk_payment_stored_t *out, tk_err_t *err);

/**
 * @brief expiration:complete's command (in a projector's transaction): under the order's payment
 *        lock, close a still open window ('expired') and emit payment:expired {orderId}, key the
 *        order id. An order payments never saw is closed too: it can never be paid afterwards.
 * @return 1 closed now, 0 already decided (paid or expired), or a negative TK_E*.
 */
int tk_payments_expire(tk_tx_t *tx, const char *order_id, tk_err_t *err);

/** A refund to carry out. */
typedef struct tk_payment_refund {
    const char *payment_id; /* the payment's id: the stored one, or the would-be one */
    const char *order_id;
    const char *stripe_id; /* the PaymentIntent */
    const char *reason;    /* "order cancelled", ... */
    int64_t version;       /* payment:refunded's aggregateversion: 1 after a stored payment */
} tk_payment_refund_t;

/**
 * @brief Write the durable intent of refunding @p r (refunds row 'pending', due now), in the
 *        transaction that decided it. One intent per order and PaymentIntent: a second call
 *        for the same pair writes nothing.
 * @return 1 written, 0 already there, or a negative TK_E*.
 */
int tk_payments_refund_intent(tk_tx_t *tx, const tk_payment_refund_t *r, tk_err_t *err);

/**
 * @brief Carry out due refund intents (of @p order_id only, or of any order when NULL), one at a
 *        time, at most @p max: claim the row (a lease, so another worker skips it), call Stripe
 *        with the intent's key outside any transaction, then either mark it 'succeeded' and emit
 *        payment:refunded in one transaction, or record the refusal and the next attempt's time
 *        (tk_payment_refund_backoff_ms with tk_cfg()'s REFUND_BACKOFF_MS / _MAX_MS).
 * @param db idle connection to the payments database. @param done may be NULL; receives the
 *        refunds that succeeded.
 * @return 0 (Stripe's refusals are not errors: they are retried later), or a tk_pg error.
 * Thread: the connection's; blocks on Stripe.
 */
int tk_payments_refunds_run(PGconn *db, const char *order_id, int max, int *done, tk_err_t *err);

/** Refund intents by state, for /metrics and tests. */
typedef struct tk_payment_refund_counts {
    long pending; /* not yet accepted by Stripe */
    long failed;  /* pending ones whose last attempt Stripe refused (or could not be reached) */
} tk_payment_refund_counts_t;

/** @brief Count the refund intents. @return 0, or a tk_pg error. */
int tk_payments_refund_counts(PGconn *db, tk_payment_refund_counts_t *out, tk_err_t *err);

/* ---- charge attempts (commands/payments/attempts.c) ---- */

/* How long Stripe's search may not show a new PaymentIntent: an attempt younger than this that
 * the search does not find is still unknown (Stripe documents a lag of up to a minute). */
#define TK_PAYMENT_SEARCH_SETTLE_MS 60000
/* The refund worker reconciles pending attempts older than this (a request in flight holds the
 * order's lock, which the worker only tries). */
#define TK_PAYMENT_ATTEMPT_STALE_MS 15000

/** A charge attempt whose outcome may be unknown. */
typedef struct tk_payment_attempt {
    char id[TK_UUID_LEN + 1]; /* metadata[attempt_id] at Stripe */
    char order_id[TK_UUID_LEN + 1];
    char key[TK_STRIPE_KEY_MAX + 1]; /* its Idempotency-Key */
    int64_t age_ms;
} tk_payment_attempt_t;

/**
 * @brief Commit the attempt of charging @p order_id with Idempotency-Key @p key, before Stripe
 *        is called (autocommit on @p db). A key seen before is the same attempt (pending again
 *        unless it succeeded). @param id receives the attempt id.
 */
int tk_payments_attempt_begin(PGconn *db, const char *order_id, const char *key,
                              char id[TK_UUID_LEN + 1], tk_err_t *err);

/** @brief Record an attempt's outcome (a succeeded one stays succeeded). @p stripe_id may be
 *         NULL. On @p conn as is: autocommit, or inside the caller's transaction. */
int tk_payments_attempt_finish(PGconn *conn, const char *id, bool succeeded, const char *stripe_id,
                               tk_err_t *err);

/**
 * @brief Pending attempts of @p order_id (NULL: any order) not touched (begun, or checked by the
 *        worker) for @p older_than_ms, oldest first, at most @p max into @p out.
 * @return how many, or a tk_pg error.
 */
int tk_payments_attempts_pending(PGconn *db, const char *order_id, int64_t older_than_ms,
                                 tk_payment_attempt_t *out, int max, tk_err_t *err);

/** @brief Attempt @p id: 1 found (*@p pending: not yet succeeded), 0 unknown, or a tk_pg error. */
int tk_payments_attempt_load(PGconn *db, const char *id, tk_payment_attempt_t *out, bool *pending,
                             tk_err_t *err);

/**
 * @brief Learn and apply the outcome of attempt @p a. The caller holds the order's payment lock.
 * @param known the PaymentIntent as a webhook reported it; NULL: look it up at Stripe
 *        (tk_stripe_find_intent by attempt id).
 * @param payment_id receives the payment id when the attempt's charge is the order's payment.
 * @param refund set when its charge could not be kept and a refund intent was committed.
 * @return 1 the charge is (now) the order's payment; 0 settled otherwise (failed, or refunded);
 *         TK_EUNAVAIL while the outcome stays unknown (Stripe unreachable, processing, or not
 *         yet searchable); or a tk_pg error.
 * Thread: the connection's; blocks on Stripe.
 */
int tk_payments_reconcile(PGconn *db, const tk_payment_attempt_t *a,
                          const tk_stripe_charge_t *known, char payment_id[TK_UUID_LEN + 1],
                          bool *refund, tk_err_t *err);

/* ---- HTTP (commands/payments/payments_routes.c, webhook.c) ---- */

/** @brief Register POST /api/payments (a worker route), the refund worker (a background thread
 *         running tk_payments_refunds_run) and its /metrics gauges
 *         (tk_payments_refunds_pending, tk_payments_refunds_failed). */
void tk_payments_command_routes(tk_http_server_t *srv, const char *database);

/**
 * The payments policy, topic expirations -> the payment windows: expiration:complete closes an
 * order's window unless it was paid, and emits payment:expired (payment_reactions.c).
 */
extern const tk_projector_spec_t tk_payments_reactions_projector;

/**
 * @brief The payments policy on a cancellation (payment_reactions.c), run by the orders replica
 *        in its transaction once it applied order:cancelled to @p order_id: a payment stored for
 *        that order means orders cancelled it before it saw our payment:created, so a refund
 *        intent is written (tk_payments_refund_intent); the refund worker carries it out.
 *        No Stripe call here. @p ud unused.
 * @return 0, or a negative TK_E*. Ownership: all borrowed.
 */
int tk_payments_on_order_cancelled(tk_tx_t *tx, const char *order_id, void *ud, tk_err_t *err);

/**
 * @brief Register POST /api/payments/webhook: Stripe's payment_intent.succeeded and
 *        payment_intent.payment_failed deliveries, verified with the Stripe-Signature HMAC and
 *        timestamp tolerance (STRIPE_WEBHOOK_SECRET, STRIPE_WEBHOOK_TOLERANCE_SECONDS), reconcile
 *        the attempt named in the intent's metadata (tk_payments_reconcile).
 */
void tk_payments_webhook_routes(tk_http_server_t *srv, const char *database);

/** @brief The order's payment lock at session level on @p db, polled until @p wait_ms: 0 locked,
 *         1 still busy, or a tk_pg error. Release with tk_payments_unlock. */
int tk_payments_lock(PGconn *db, const char *order_id, int wait_ms, tk_err_t *err);

/** @brief Release tk_payments_lock (nothing on a broken connection: the lock went with it). */
void tk_payments_unlock(PGconn *db, const char *order_id);

/** @brief The longest a payment may hold the order's lock (Stripe calls with every retry). */
int tk_payments_lock_wait_ms(void);

/** @brief Start the refund worker on @p srv (commands/payments/refunds.c): a background thread
 *         and the /metrics gauges. Called by tk_payments_command_routes. */
void tk_payments_refund_worker(tk_http_server_t *srv);

#endif
