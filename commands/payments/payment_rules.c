/*
 * payment_rules.c - the payments context's pure rules: the body of POST /api/payments, who may
 * pay which order, the amount, and the Idempotency-Keys that make a payment execute at most once
 * at Stripe. No I/O: tests/unit/test_payments_rules.c covers every branch.
 *
 * Order of the checks, as the contract lists its errors: body (400), order known (404), owner
 * (401), not cancelled (400), not paid (400), not expired (400). Cancelled is checked before paid
 * so a cancelled order never reads as paid, and paid before expired so a paid order keeps saying
 * so after its expiresAt.
 */
#include "payments.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

int tk_payment_request_parse(const json_t *body, tk_payment_request_t *out, json_t *errors,
                             tk_err_t *err)
{
    const json_t *token = json_object_get(body, "token");
    const json_t *order = json_object_get(body, "orderId");
    out->token = out->order_id = NULL;
    size_t before = json_array_size(errors);
    if (!json_is_string(token) || json_string_length(token) == 0 ||
        json_string_length(token) > TK_PAYMENT_TOKEN_MAX)
        tk_http_errors_add(errors, "token", "Token must be provided");
    if (!json_is_string(order) || json_string_length(order) == 0)
        tk_http_errors_add(errors, "orderId", "OrderId must be provided");
    if (json_array_size(errors) > before)
        return tk_err_set(err, TK_EINVAL, NULL, "invalid payment request");
    /* A malformed id names no order: 404, as for any malformed id (DESIGN.md section 9). */
    const char *id = json_string_value(order);
    if (strlen(id) != TK_UUID_LEN || !tk_uuid_valid(id))
        return tk_err_set(err, TK_ENOTFOUND, NULL, "Not Found");
    out->token = json_string_value(token);
    out->order_id = id;
    return 0;
}

int tk_payment_decide(const tk_payment_order_t *o, const char *user_id, tk_payment_window_t window,
                      int64_t now_ms, tk_err_t *err)
{
    if (user_id == NULL || strcasecmp(o->user_id, user_id) != 0)
        return tk_err_set(err, TK_EUNAUTH, NULL, "Not authorized");
    if (o->status == EV_ORDER_CANCELLED)
        return tk_err_set(err, TK_EINVAL, NULL, "Cannot pay for an cancelled order");
    if (window == TK_PAYMENT_WINDOW_PAID || o->status == EV_ORDER_COMPLETE)
        return tk_err_set(err, TK_EINVAL, NULL, "Order already paid");
    /* At expiresAt itself the order has expired: "before expiresAt" is strict. */
    if (window == TK_PAYMENT_WINDOW_EXPIRED || (o->expires_ms > 0 && now_ms >= o->expires_ms))
        return tk_err_set(err, TK_EINVAL, NULL, "Order has expired");
    return 0;
}

int64_t tk_payment_refund_backoff_ms(int attempts, int base_ms, int max_ms)
{
    int64_t d = base_ms;
    for (int i = 1; i < attempts && d < max_ms; i++)
        d *= 2;
    return d < max_ms ? d : max_ms;
}

int64_t tk_payment_amount(const tk_payment_order_t *o)
{
    /* ev_money already rounded the price to the cent when the event was decoded, so price x 100
     * is exact: no binary fraction is ever multiplied (19.99 is 1999, not 1998.9999...). */
    return o->price_cents;
}

/* Lower-cases a UUID so "ABC..." and "abc..." make one key. */
static void lower_copy(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < cap; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = '\0';
}

void tk_payment_charge_key(const char *order_id, const char *token, char out[TK_STRIPE_KEY_MAX + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char id[TK_UUID_LEN + 1], hex[17];
    EVP_Digest(token, strlen(token), md, &mdlen, EVP_sha256(), NULL);
    for (int i = 0; i < 8; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    lower_copy(id, sizeof(id), order_id);
    snprintf(out, TK_STRIPE_KEY_MAX + 1, "order-%s-charge-%s", id, hex);
}

void tk_payment_refund_key(const char *order_id, const char *stripe_id,
                           char out[TK_STRIPE_KEY_MAX + 1])
{
    char id[TK_UUID_LEN + 1];
    lower_copy(id, sizeof(id), order_id);
    snprintf(out, TK_STRIPE_KEY_MAX + 1, "order-%s-refund-%.180s", id, stripe_id);
}
