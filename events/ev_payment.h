/*
 * ev_payment.h - the payments context's events (DESIGN.md section 3), topic "payments":
 *   payment:created   {id, orderId, stripeId}          schemas/events/payment.created.v1.json
 *   payment:refunded  {id, orderId, stripeId, reason}  schemas/events/payment.refunded.v1.json
 *   payment:expired   {orderId}                        schemas/events/payment.expired.v1.json
 *
 * payment:created and payment:expired are the two outcomes of an order's payment window, decided
 * once per order by the payments context (DESIGN.md section 5): an order gets at most one of them.
 */
#ifndef EV_PAYMENT_H
#define EV_PAYMENT_H

#include <jansson.h>

#include "tk/err.h"
#include "tk/ids.h"

#define EV_STRIPE_ID_MAX 255 /* bytes; Stripe's ids are ~30 */
#define EV_REASON_MAX 255    /* bytes */

/** payment:created data. */
typedef struct ev_payment_created {
    char id[TK_UUID_LEN + 1];
    char order_id[TK_UUID_LEN + 1];       /* JSON "orderId" */
    char stripe_id[EV_STRIPE_ID_MAX + 1]; /* JSON "stripeId", 1..255 bytes */
} ev_payment_created_t;

/** payment:refunded data: a charge given back because its order was cancelled meanwhile. */
typedef struct ev_payment_refunded {
    char id[TK_UUID_LEN + 1];
    char order_id[TK_UUID_LEN + 1];       /* JSON "orderId" */
    char stripe_id[EV_STRIPE_ID_MAX + 1]; /* JSON "stripeId", 1..255 bytes */
    char reason[EV_REASON_MAX + 1];       /* 1..255 bytes, e.g. "order cancelled" */
} ev_payment_refunded_t;

/** payment:expired data: the order's payment window closed unpaid (its expiration came first). */
typedef struct ev_payment_expired {
    char order_id[TK_UUID_LEN + 1]; /* JSON "orderId" */
} ev_payment_expired_t;

/**
 * @brief The data member of a payment:created event.
 * @param p borrowed.
 * @return Ownership: owned new reference, NULL when @p p is NULL or a string is not UTF-8.
 */
json_t *ev_payment_created_to_json(const ev_payment_created_t *p);

/**
 * @brief Strictly decode payment:created data. Unknown members are ignored.
 * @param data borrowed. @param out zeroed, then filled; meaningful only on success.
 * @return 0, or TK_EINVAL with the member's path in err->field.
 */
int ev_payment_created_from_json(const json_t *data, ev_payment_created_t *out, tk_err_t *err);

/** @brief The data member of a payment:refunded event. Ownership: owned, NULL on bad input. */
json_t *ev_payment_refunded_to_json(const ev_payment_refunded_t *p);

/** @brief Strictly decode payment:refunded data. As ev_payment_created_from_json. */
int ev_payment_refunded_from_json(const json_t *data, ev_payment_refunded_t *out, tk_err_t *err);

/** @brief The data member of a payment:expired event. Ownership: owned, NULL on bad input. */
json_t *ev_payment_expired_to_json(const ev_payment_expired_t *p);

/** @brief Strictly decode payment:expired data. As ev_payment_created_from_json. */
int ev_payment_expired_from_json(const json_t *data, ev_payment_expired_t *out, tk_err_t *err);

#endif
