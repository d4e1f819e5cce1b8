/*
 * ev_payment.c - codecs of payment:created, payment:refunded and payment:expired.
 *
 * stripeId is opaque to us (Stripe's PaymentIntent id); it is kept so support can find the charge
 * and so a refund names what it reverses. Its only rules are non-empty and the buffer's length.
 */
#include "ev_payment.h"
#include "ev_json_int.h"

#include <string.h>

json_t *ev_payment_created_to_json(const ev_payment_created_t *p)
{
    if (p == NULL)
        return NULL;
    return ev__object("id", ev__str(p->id), "orderId", ev__str(p->order_id), "stripeId",
                      ev__str(p->stripe_id), NULL);
}

static const ev__field_t created_fields[] = {
    EV__F_UUID(ev_payment_created_t, "id", id),
    EV__F_UUID(ev_payment_created_t, "orderId", order_id),
    EV__F_STRING(ev_payment_created_t, "stripeId", stripe_id, 1),
};

int ev_payment_created_from_json(const json_t *data, ev_payment_created_t *out, tk_err_t *err)
{
    return EV__DECODE(data, created_fields, out, err);
}

json_t *ev_payment_refunded_to_json(const ev_payment_refunded_t *p)
{
    if (p == NULL)
        return NULL;
    return ev__object("id", ev__str(p->id), "orderId", ev__str(p->order_id), "stripeId",
                      ev__str(p->stripe_id), "reason", ev__str(p->reason), NULL);
}

static const ev__field_t refunded_fields[] = {
    EV__F_UUID(ev_payment_refunded_t, "id", id),
    EV__F_UUID(ev_payment_refunded_t, "orderId", order_id),
    EV__F_STRING(ev_payment_refunded_t, "stripeId", stripe_id, 1),
    EV__F_STRING(ev_payment_refunded_t, "reason", reason, 1),
};

int ev_payment_refunded_from_json(const json_t *data, ev_payment_refunded_t *out, tk_err_t *err)
{
    return EV__DECODE(data, refunded_fields, out, err);
}

json_t *ev_payment_expired_to_json(const ev_payment_expired_t *p)
{
    if (p == NULL)
        return NULL;
    return ev__object("orderId", ev__str(p->order_id), NULL);
}

static const ev__field_t expired_fields[] = {
    EV__F_UUID(ev_payment_expired_t, "orderId", order_id),
};

int ev_payment_expired_from_json(const json_t *data, ev_payment_expired_t *out, tk_err_t *err)
{
    return EV__DECODE(data, expired_fields, out, err);
}
