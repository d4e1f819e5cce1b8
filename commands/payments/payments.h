/*
 * payments.h - the payments context's write side (DESIGN.md sections 5, 8 and 9): the pure rules
 * of POST /api/payments, the write functions shared by the HTTP command and the order:cancelled
 * reaction (projections/payments), the Stripe steps, and the command route.
 *
 * A payment's life, with the function behind each step:
 *
 *   POST /api/payments
 *     tk_payment_request_parse -> tk_payments_order_load -> tk_payment_decide
 *     -> tk_stripe_charge (key tk_payment_charge_key)
 *     -> tk_payments_store: in one transaction, re-read the order (FOR UPDATE) and
 *          live:       insert payments + emit payment:created                 -> 201 {id}
 *          cancelled:  nothing stored; the caller refunds (tk_payments_refund) -> 400
 *          paid by the same PaymentIntent (a concurrent duplicate)             -> 400, no refund
 *          paid by another PaymentIntent: the caller refunds ours              -> 400
 *
 *   order:cancelled for an order with a stored payment (it was cancelled in orders before orders
 *   saw payment:created): the replica's reaction refunds it (tk_payments_refund).
 *
 * tk_payments_refund = tk_stripe_refund (key tk_payment_refund_key) + tk_payments_record_refund
 * (a refunds row and payment:refunded, in the caller's transaction).
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
} tk_payment_order_t;

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
 * @brief The rule of paying order @p o as @p user_id, @p paid telling whether a payment is
 *        stored for it.
 * @return 0; TK_EUNAUTH 'Not authorized' (not the owner); TK_EINVAL 'Cannot pay for an
 *         cancelled order'; TK_EINVAL 'Order already paid' (complete, or a payment stored).
 */
int tk_payment_decide(const tk_payment_order_t *o, const char *user_id, bool paid, tk_err_t *err);

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

/** What tk_payments_store decided. */
typedef struct tk_payment_stored {
    char id[TK_UUID_LEN + 1];  /* the payment id (fresh; stored only when the call returned 0) */
    const char *refund_reason; /* static, non-NULL when the charge must be given back */
} tk_payment_stored_t;

/**
 * @brief Store the charge @p stripe_id of order @p order_id: the body of the command's
 *        transaction (see the diagram at the top). @p out->id must hold a fresh UUID.
 * @return 0 (payments row + payment:created); TK_EINVAL 'Cannot pay for an cancelled order' or
 *         'Order already paid' with @p out->refund_reason set when our charge must be refunded;
 *         TK_ENOTFOUND; or a tk_pg error.
 */
int tk_payments_store(tk_tx_t *tx, const char *order_id, const char *stripe_id,
                      tk_payment_stored_t *out, tk_err_t *err);

/** A refund to record. */
typedef struct tk_payment_refund {
    const char *payment_id; /* the payment's id: the stored one, or the would-be one */
    const char *order_id;
    const char *stripe_id; /* the PaymentIntent */
    const char *refund_id; /* Stripe's refund id; NULL when the refund failed */
    const char *reason;    /* "order cancelled", ... */
    int64_t version;       /* payment:refunded's aggregateversion: 1 after a stored payment */
} tk_payment_refund_t;

/**
 * @brief Record @p r in refunds (one row per order and PaymentIntent; a failed row is upgraded
 *        when a later refund succeeds) and, when it is a success recorded for the first time,
 *        emit payment:refunded {id, orderId, stripeId, reason}.
 * @return 1 when payment:refunded was emitted, 0 when nothing new, or a negative TK_E*.
 */
int tk_payments_record_refund(tk_tx_t *tx, const tk_payment_refund_t *r, tk_err_t *err);

/**
 * @brief Give back PaymentIntent @p stripe_id of @p order_id through Stripe (key
 *        tk_payment_refund_key, so repeating it never refunds twice).
 * @param refund_id receives Stripe's refund id.
 * @return 0, or tk_stripe_refund's error.
 * Thread: any; blocks on Stripe (never call it inside a transaction that may be re-run, except a
 *         projector's apply, whose repeats the idempotency key makes harmless).
 */
int tk_payments_refund(const char *order_id, const char *stripe_id, const char *reason,
                       char refund_id[TK_STRIPE_ID_MAX + 1], tk_err_t *err);

/* ---- HTTP (commands/payments/payments_routes.c) ---- */

/** @brief Register POST /api/payments (a worker route). */
void tk_payments_command_routes(tk_http_server_t *srv);

#endif
