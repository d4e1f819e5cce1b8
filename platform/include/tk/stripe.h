/*
 * stripe.h - the Stripe adapter (DESIGN.md section 8): PaymentIntents created and confirmed in
 * one call, and refunds, over libcurl with form-encoded bodies, `Authorization: Bearer
 * $STRIPE_KEY` and an `Idempotency-Key` the caller chooses.
 *
 * Every call is one logical request made of at most max_attempts HTTP attempts, all with the same
 * Idempotency-Key, so Stripe executes it at most once however many attempts reach it:
 *
 *   attempt --2xx----------------------------------------------> 0
 *      |----402 card error, 400/404 invalid request--------------> TK_EINVAL, Stripe's message
 *      |----401/403, other 4xx, malformed 2xx body----------------> TK_EBADGATEWAY (final)
 *      |----network error or timeout, 409, 429 --+
 *      |----5xx ---------------------------------+--> backoff, next attempt (Stripe-Should-Retry:
 *      |                                                false stops at once)
 *      +----attempts exhausted: the last failure decides:
 *             5xx                          -> TK_EBADGATEWAY (502: Stripe answered, badly)
 *             network, timeout, 409, 429   -> TK_EUNAVAIL    (503: Stripe unreachable or busy)
 *
 * Timeouts: each attempt is bounded by connect_timeout_ms (TCP + TLS handshake) and timeout_ms
 * (the whole attempt). Backoff before attempt n+1 is a jittered exponential: uniform in
 * [d/2, d] with d = min(backoff_max_ms, backoff_base_ms * 2^(n-1)). So one call lasts at most
 * max_attempts * timeout_ms + (max_attempts - 1) * backoff_max_ms (defaults: 3 * 10 s + 2 * 2 s).
 *
 * A timed-out attempt has an unknown outcome (Stripe may have charged): the retry with the same
 * key returns the stored result of the first execution instead of charging again.
 *
 * Nothing here logs or prints; the secret key and card tokens never appear in err messages.
 * Thread: any; calls are independent (one curl handle per call).
 */
#ifndef TK_STRIPE_H
#define TK_STRIPE_H

#include <stdint.h>

#include "tk/err.h"

#define TK_STRIPE_ID_MAX 255  /* bytes of an object id we accept ("pi_...", ~30 in practice) */
#define TK_STRIPE_KEY_MAX 255 /* bytes of an Idempotency-Key (Stripe's limit) */

/* Transport settings of the adapter. */
typedef struct tk_stripe_options {
    const char *api_base;   /* borrowed: "https://api.stripe.com" (STRIPE_API_BASE), no "/v1" */
    const char *api_key;    /* borrowed: the secret key (STRIPE_KEY), never logged */
    int connect_timeout_ms; /* STRIPE_CONNECT_TIMEOUT_MS, default 2000 */
    int timeout_ms;         /* STRIPE_TIMEOUT_MS, one whole attempt, default 10000 */
    int max_attempts;       /* STRIPE_MAX_ATTEMPTS, 1..10, default 3 */
    int backoff_base_ms;    /* STRIPE_BACKOFF_MS, default 250 */
    int backoff_max_ms;     /* STRIPE_BACKOFF_MAX_MS, default 2000 */
} tk_stripe_options_t;

/**
 * @brief The options calls with opts == NULL use: the override set by
 *        tk_stripe_options_override when there is one, else tk_cfg()'s stripe_api_base,
 *        stripe_key and STRIPE_* timeouts (read once by tk_cfg_load, which refuses malformed or
 *        out-of-range values).
 * @param out filled; its strings are borrowed from tk_cfg(), the environment or the override and
 *        stay valid until the next tk_stripe_options_override.
 */
void tk_stripe_options_default(tk_stripe_options_t *out);

/**
 * @brief Tests: make @p o (copied, strings included) the options of every call with opts ==
 *        NULL; NULL removes the override. Call while no Stripe call is in flight.
 */
void tk_stripe_options_override(const tk_stripe_options_t *o);

/** A payment to take now: a PaymentIntent created with confirm=true. */
typedef struct tk_stripe_charge_req {
    int64_t amount;              /* in the currency's smallest unit (cents), > 0 */
    const char *currency;        /* borrowed, ISO code in lower case: "usd" */
    const char *payment;         /* borrowed: a card token "tok_..." or a PaymentMethod "pm_..." */
    const char *order_id;        /* borrowed, sent as metadata[order_id]; may be NULL */
    const char *attempt_id;      /* borrowed, sent as metadata[attempt_id]; may be NULL */
    const char *idempotency_key; /* borrowed, required, 1..TK_STRIPE_KEY_MAX bytes */
} tk_stripe_charge_req_t;

typedef struct tk_stripe_charge {
    char id[TK_STRIPE_ID_MAX + 1]; /* the PaymentIntent's id */
    char status[32];               /* Stripe's status: "succeeded", "processing", ... */
    int64_t amount;                /* as Stripe recorded it */
    char currency[8];
    int attempts; /* HTTP attempts made over every step; set on failure too */
} tk_stripe_charge_t;

/**
 * @brief Charge @p req->amount: POST /v1/payment_intents with amount, currency, confirm=true,
 *        payment_method_types[0]=card, payment_method and metadata[order_id].
 *
 * A card token (tok_...) cannot be a PaymentIntent's payment_method. It is first turned into a
 * PaymentMethod with POST /v1/payment_methods (type=card, card[token]) under the key
 * "<idempotency_key>-pm", the way Stripe documents for legacy tokens (and the way stripe-mock
 * accepts); any other value is passed as payment_method as is.
 *
 * A PaymentIntent left in requires_action/requires_confirmation (the card wants 3-D Secure,
 * which a server-side charge cannot complete) or canceled is a decline: TK_EINVAL.
 *
 * @param opts borrowed, NULL for tk_stripe_options_default.
 * @param out zeroed, then filled on success; out->attempts is set in every case.
 * @return 0; TK_EINVAL for a bad request (err->field names it) or a decline (err->field "token",
 *         err->message Stripe's message for the customer, e.g. "Your card was declined.");
 *         TK_EBADGATEWAY or TK_EUNAVAIL as the diagram at the top says.
 * Thread: any; blocks up to the bound given at the top.
 */
int tk_stripe_charge(const tk_stripe_options_t *opts, const tk_stripe_charge_req_t *req,
                     tk_stripe_charge_t *out, tk_err_t *err);

/** Give back the whole amount of a PaymentIntent. */
typedef struct tk_stripe_refund_req {
    const char *payment_intent;  /* borrowed, "pi_..." */
    const char *order_id;        /* borrowed, sent as metadata[order_id]; may be NULL */
    const char *reason;          /* borrowed, sent as metadata[reason]; may be NULL */
    const char *idempotency_key; /* borrowed, required */
} tk_stripe_refund_req_t;

typedef struct tk_stripe_refund {
    char id[TK_STRIPE_ID_MAX + 1]; /* the Refund's id, "re_..." */
    char status[32];               /* "succeeded", "pending", ... */
    int attempts;                  /* set on failure too */
} tk_stripe_refund_t;

/**
 * @brief POST /v1/refunds with payment_intent, reason=requested_by_customer and the metadata.
 * @param opts borrowed, NULL for tk_stripe_options_default.
 * @return as tk_stripe_charge (a refund Stripe refuses, e.g. already refunded, is TK_EINVAL).
 */
int tk_stripe_refund(const tk_stripe_options_t *opts, const tk_stripe_refund_req_t *req,
                     tk_stripe_refund_t *out, tk_err_t *err);

/**
 * @brief Find the PaymentIntent created for our attempt @p attempt_id (its metadata[attempt_id]):
 *        GET /v1/payment_intents/search, retried like a charge. Used to learn the outcome of a
 *        charge whose answer was lost. Stripe's search index may lag a new intent by up to a
 *        minute: "not found" for a young attempt does not prove there was no charge.
 * @param out filled when found (id, status, amount, currency); out->attempts always.
 * @return 1 found, 0 not found, TK_EINVAL (not a UUID), TK_EBADGATEWAY or TK_EUNAVAIL.
 * Thread: any; blocks.
 */
int tk_stripe_find_intent(const tk_stripe_options_t *opts, const char *attempt_id,
                          tk_stripe_charge_t *out, tk_err_t *err);

#define TK_STRIPE_SIGNATURE_MAX 512 /* bytes of a Stripe-Signature header we accept */

/**
 * @brief Verify a webhook delivery: @p header is its Stripe-Signature ("t=<unix s>,v1=<hex>[,
 *        v1=...]"), @p payload the raw body of @p len bytes, @p secret the endpoint's signing
 *        secret. Valid when some v1 equals HMAC-SHA256(secret, "<t>.<payload>") (compared in
 *        constant time) and |@p now_s - t| <= @p tolerance_s (a replayed old delivery is refused).
 * @return 0; TK_EINVAL 'Invalid signature' / 'Signature timestamp too old' (field
 *         Stripe-Signature); TK_EUNAVAIL when @p secret is empty (no webhook configured).
 * Thread: any; pure.
 */
int tk_stripe_webhook_verify(const char *payload, size_t len, const char *header,
                             const char *secret, int tolerance_s, int64_t now_s, tk_err_t *err);

/**
 * @brief The Stripe-Signature header Stripe would send for @p payload at time @p t (tests and
 *        tools): "t=<t>,v1=<hex>". @param out caller's buffer.
 */
void tk_stripe_webhook_sign(const char *payload, size_t len, const char *secret, int64_t t,
                            char out[TK_STRIPE_SIGNATURE_MAX + 1]);

/**
 * @brief The backoff before attempt @p failed + 1, after @p failed failed attempts (>= 1), for a
 *        random value @p rnd: in [d/2, d], d = min(backoff_max_ms, backoff_base_ms * 2^(failed-1)).
 *        Pure; exposed for tests.
 */
int tk_stripe_backoff_ms(const tk_stripe_options_t *o, int failed, uint32_t rnd);

#endif
