/*
 * ev_order.c - codecs of order:created, order:cancelled and order:completed.
 *
 * order:created carries everything its consumers need to act without asking the orders
 * context: the tickets context reserves ticket.id, payments replicates the price, and the
 * expiration scheduler schedules expiresAt. The two later events only name the order, its new
 * version and the ticket, since consumers already hold the rest. Status names are the
 * original's strings; its "awaiting:payment", which no transition reached, is not one.
 */
#include "ev_order.h"
#include "ev_json_int.h"
#include "ev_money.h"

#include <string.h>

static const char *const status_names[] = {
    [EV_ORDER_CREATED] = "created",
    [EV_ORDER_CANCELLED] = "cancelled",
    [EV_ORDER_COMPLETE] = "complete",
};
#define STATUS_COUNT (sizeof(status_names) / sizeof(status_names[0]))

const char *ev_order_status_name(ev_order_status_t s)
{
    if ((unsigned)s >= STATUS_COUNT)
        return NULL;
    return status_names[s];
}

int ev_order_status_parse(const char *name, ev_order_status_t *out)
{
    for (size_t i = 0; name != NULL && i < STATUS_COUNT; i++) {
        if (strcmp(name, status_names[i]) == 0) {
            *out = (ev_order_status_t)i;
            return 0;
        }
    }
    return TK_EINVAL;
}

json_t *ev_order_created_to_json(const ev_order_created_t *o)
{
    if (o == NULL)
        return NULL;
    json_t *ticket = ev__object("id", ev__str(o->ticket.id), "price",
                                ev_money_to_json(o->ticket.price_cents), NULL);
    return ev__object("id", ev__str(o->id), "version", json_integer(o->version), "status",
                      ev__str(ev_order_status_name(o->status)), "userId", ev__str(o->user_id),
                      "expiresAt", ev__str(o->expires_at), "ticket", ticket, NULL);
}

/* A name longer than the buffer is not a status either: report both as one error. */
static int status_read(const json_t *data, void *at, tk_err_t *err)
{
    char status[24];
    ev_order_status_t st;
    if (ev__get_string(data, "status", "status", status, sizeof(status), 1, err) != 0 ||
        ev_order_status_parse(status, &st) != 0)
        return tk_err_set(err, TK_EINVAL, "status",
                          "status must be one of created, cancelled, complete");
    memcpy(at, &st, sizeof(st));
    return 0;
}

static const ev__field_t created_fields[] = {
    EV__F_UUID(ev_order_created_t, "id", id),
    EV__F_INT(ev_order_created_t, "version", version, 0, 0),
    EV__F_READ(ev_order_created_t, "status", status, status_read),
    EV__F_UUID(ev_order_created_t, "userId", user_id),
    EV__F_TIME(ev_order_created_t, "expiresAt", expires_at),
    EV__F_IN("ticket", "ticket.id", EV__K_UUID, ev_order_created_t, "id", ticket.id),
    EV__F_IN("ticket", "ticket.price", EV__K_PRICE, ev_order_created_t, "price",
             ticket.price_cents),
};

int ev_order_created_from_json(const json_t *data, ev_order_created_t *out, tk_err_t *err)
{
    return EV__DECODE(data, created_fields, out, err);
}

static json_t *ref_to_json(const ev_order_ref_t *o)
{
    if (o == NULL)
        return NULL;
    return ev__object("id", ev__str(o->id), "version", json_integer(o->version), "ticket",
                      ev__object("id", ev__str(o->ticket.id), NULL), NULL);
}

static const ev__field_t ref_fields[] = {
    EV__F_UUID(ev_order_ref_t, "id", id),
    EV__F_INT(ev_order_ref_t, "version", version, 1, INT64_MAX),
    EV__F_IN("ticket", "ticket.id", EV__K_UUID, ev_order_ref_t, "id", ticket.id),
};

static int ref_from_json(const json_t *data, ev_order_ref_t *out, tk_err_t *err)
{
    return EV__DECODE(data, ref_fields, out, err);
}

json_t *ev_order_cancelled_to_json(const ev_order_ref_t *o)
{
    return ref_to_json(o);
}

int ev_order_cancelled_from_json(const json_t *data, ev_order_ref_t *out, tk_err_t *err)
{
    return ref_from_json(data, out, err);
}

json_t *ev_order_completed_to_json(const ev_order_ref_t *o)
{
    return ref_to_json(o);
}

int ev_order_completed_from_json(const json_t *data, ev_order_ref_t *out, tk_err_t *err)
{
    return ref_from_json(data, out, err);
}
