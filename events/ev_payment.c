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

int ev_payment_created_from_json(const json_t *data, ev_payment_created_t *out, tk_err_t *err)
{
    int rc = 0;
    memset(out, 0, sizeof(*out));
    if ((rc = ev__want_object(data, "data", err)) != 0)
        goto out;
    if ((rc = ev__get_uuid(data, "id", "id", out->id, err)) != 0)
        goto out;
    if ((rc = ev__get_uuid(data, "orderId", "orderId", out->order_id, err)) != 0)
        goto out;
    if ((rc = ev__get_string(data, "stripeId", "stripeId", out->stripe_id, sizeof(out->stripe_id),
                             1, err)) != 0)
        goto out;
out:
    return rc;
}

json_t *ev_payment_refunded_to_json(const ev_payment_refunded_t *p)
{
    if (p == NULL)
        return NULL;
    return ev__object("id", ev__str(p->id), "orderId", ev__str(p->order_id), "stripeId",
                      ev__str(p->stripe_id), "reason", ev__str(p->reason), NULL);
}

int ev_payment_refunded_from_json(const json_t *data, ev_payment_refunded_t *out, tk_err_t *err)
{
    int rc = 0;
    memset(out, 0, sizeof(*out));
    if ((rc = ev__want_object(data, "data", err)) != 0)
        goto out;
    if ((rc = ev__get_uuid(data, "id", "id", out->id, err)) != 0)
        goto out;
    if ((rc = ev__get_uuid(data, "orderId", "orderId", out->order_id, err)) != 0)
        goto out;
    if ((rc = ev__get_string(data, "stripeId", "stripeId", out->stripe_id, sizeof(out->stripe_id),
                             1, err)) != 0)
        goto out;
    if ((rc = ev__get_string(data, "reason", "reason", out->reason, sizeof(out->reason), 1, err)) !=
        0)
        goto out;
out:
    return rc;
}

json_t *ev_payment_expired_to_json(const ev_payment_expired_t *p)
{
    if (p == NULL)
        return NULL;
    return ev__object("orderId", ev__str(p->order_id), NULL);
}

int ev_payment_expired_from_json(const json_t *data, ev_payment_expired_t *out, tk_err_t *err)
{
    int rc = 0;
    memset(out, 0, sizeof(*out));
    if ((rc = ev__want_object(data, "data", err)) != 0)
        goto out;
    if ((rc = ev__get_uuid(data, "orderId", "orderId", out->order_id, err)) != 0)
        goto out;
out:
    return rc;
}
