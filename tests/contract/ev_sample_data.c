/*
 * ev_sample_data.c - the sample events. Each is built from a typed struct with its ev_*_to_json,
 * so the samples also show how producers are meant to build events. Prices are chosen to catch
 * printing mistakes: 19.99 has no exact binary form, 20.5 has one decimal.
 */
#include "ev_sample_data.h"

#include <stdbool.h>
#include <string.h>

#include "ev_expiration.h"
#include "ev_order.h"
#include "ev_payment.h"
#include "ev_ticket.h"
#include "ev_user.h"

#define COPY(dst, src) memcpy((dst), (src), sizeof(src))

int ev_sample_get(const char *type, ev_sample_t *out)
{
    memset(out, 0, sizeof(*out));
    if (strcmp(type, "user:registered") == 0) {
        ev_user_registered_t u = {0};
        COPY(u.id, EV_SAMPLE_USER);
        COPY(u.email, "alice@example.com");
        *out = (ev_sample_t){"user:registered", EV_SAMPLE_USER, 0, ev_user_registered_to_json(&u)};
    } else if (strcmp(type, "ticket:created") == 0 || strcmp(type, "ticket:updated") == 0) {
        bool created = strcmp(type, "ticket:created") == 0;
        ev_ticket_t t = {0};
        COPY(t.id, EV_SAMPLE_TICKET);
        COPY(t.title, "Orchestre de Paris \xc3\xa0 la Philharmonie");
        COPY(t.user_id, EV_SAMPLE_USER);
        t.version = created ? 0 : 2;
        t.price_cents = created ? 1999 : 2050;
        if (!created)
            COPY(t.order_id, EV_SAMPLE_ORDER);
        *out = (ev_sample_t){
            created ? "ticket:created" : "ticket:updated", EV_SAMPLE_TICKET, t.version,
            created ? ev_ticket_created_to_json(&t) : ev_ticket_updated_to_json(&t)};
    } else if (strcmp(type, "order:created") == 0) {
        ev_order_created_t o = {0};
        COPY(o.id, EV_SAMPLE_ORDER);
        o.status = EV_ORDER_CREATED;
        COPY(o.user_id, EV_SAMPLE_BUYER);
        COPY(o.expires_at, "2026-11-28T06:05:00.000Z");
        COPY(o.ticket.id, EV_SAMPLE_TICKET);
        o.ticket.price_cents = 1999;
        *out = (ev_sample_t){"order:created", EV_SAMPLE_ORDER, 0, ev_order_created_to_json(&o)};
    } else if (strcmp(type, "order:cancelled") == 0 || strcmp(type, "order:completed") == 0) {
        bool cancelled = strcmp(type, "order:cancelled") == 0;
        ev_order_ref_t o = {0};
        COPY(o.id, EV_SAMPLE_ORDER);
        o.version = 1;
        COPY(o.ticket.id, EV_SAMPLE_TICKET);
        *out = (ev_sample_t){cancelled ? "order:cancelled" : "order:completed", EV_SAMPLE_ORDER, 1,
                             cancelled ? ev_order_cancelled_to_json(&o)
                                       : ev_order_completed_to_json(&o)};
    } else if (strcmp(type, "expiration:complete") == 0) {
        ev_expiration_complete_t e = {0};
        COPY(e.order_id, EV_SAMPLE_ORDER);
        *out = (ev_sample_t){"expiration:complete", EV_SAMPLE_ORDER, 0,
                             ev_expiration_complete_to_json(&e)};
    } else if (strcmp(type, "payment:created") == 0) {
        ev_payment_created_t p = {0};
        COPY(p.id, EV_SAMPLE_PAYMENT);
        COPY(p.order_id, EV_SAMPLE_ORDER);
        COPY(p.stripe_id, "pi_3OZ4ab2eZvKYlo2C0x1y2z3w");
        *out =
            (ev_sample_t){"payment:created", EV_SAMPLE_PAYMENT, 0, ev_payment_created_to_json(&p)};
    } else if (strcmp(type, "payment:refunded") == 0) {
        ev_payment_refunded_t p = {0};
        COPY(p.id, EV_SAMPLE_PAYMENT);
        COPY(p.order_id, EV_SAMPLE_ORDER);
        COPY(p.stripe_id, "pi_3OZ4ab2eZvKYlo2C0x1y2z3w");
        COPY(p.reason, "order cancelled before the payment completed");
        *out = (ev_sample_t){"payment:refunded", EV_SAMPLE_PAYMENT, 1,
                             ev_payment_refunded_to_json(&p)};
    } else if (strcmp(type, "payment:expired") == 0) {
        ev_payment_expired_t p = {0};
        COPY(p.order_id, EV_SAMPLE_ORDER);
        *out = (ev_sample_t){"payment:expired", EV_SAMPLE_ORDER, 0, ev_payment_expired_to_json(&p)};
    } else {
        return -1;
    }
    return out->data != NULL ? 0 : -1;
}
