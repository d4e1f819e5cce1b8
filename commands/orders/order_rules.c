/*
 * order_rules.c - the orders context's pure rules: the ticketId of a new order, who may see or
 * cancel an order, which transitions the lifecycle allows (see the diagram in orders.h), the
 * expiry time and the order's JSON. No I/O: tests/unit/test_orders_rules.c covers every branch.
 */
#include "orders.h"

#include <string.h>

#include "ev_money.h"

int tk_order_ticket_id_parse(const json_t *body, const char **ticket_id, tk_err_t *err)
{
    const json_t *v = json_object_get(body, "ticketId");
    *ticket_id = NULL;
    if (!json_is_string(v) || json_string_length(v) == 0)
        return tk_err_set(err, TK_EINVAL, "ticketId", "TicketId must be provided");
    /* A malformed id names no ticket: 404, as for any malformed id (DESIGN.md section 9). */
    if (!tk_uuid_valid(json_string_value(v)) || strlen(json_string_value(v)) != TK_UUID_LEN)
        return tk_err_set(err, TK_ENOTFOUND, NULL, "Not Found");
    *ticket_id = json_string_value(v);
    return 0;
}

int tk_order_decide_access(const char *owner_id, const char *user_id, tk_err_t *err)
{
    if (user_id == NULL || strcmp(owner_id, user_id) != 0)
        return tk_err_set(err, TK_EUNAUTH, NULL, "Not authorized");
    return 0;
}

int tk_order_decide_cancel(const tk_order_t *o, const char *user_id, tk_err_t *err)
{
    int rc;
    if (user_id != NULL && (rc = tk_order_decide_access(o->user_id, user_id, err)) != 0)
        return rc;
    switch (o->status) {
    case EV_ORDER_COMPLETE:
        return tk_err_set(err, TK_EINVAL, NULL, "Cannot cancel a completed order");
    case EV_ORDER_CANCELLED:
        return 0;
    default:
        return 1;
    }
}

bool tk_order_decide_complete(const tk_order_t *o)
{
    return o->status == EV_ORDER_CREATED;
}

void tk_order_expiry(int64_t now_ms, int window_seconds, char out[TK_TIME_LEN + 1])
{
    tk_time_format(now_ms + (int64_t)window_seconds * 1000, out);
}

json_t *tk_order_to_json(const tk_order_t *o, const tk_order_ticket_t *t)
{
    json_t *ticket =
        t == NULL ? json_pack("{s:s}", "id", o->ticket_id)
                  : json_pack("{s:s, s:s, s:o, s:I}", "id", t->id, "title", t->title, "price",
                              ev_money_to_json(t->price_cents), "version", (json_int_t)t->version);
    const char *status = ev_order_status_name(o->status);
    return json_pack("{s:s, s:s, s:s, s:s, s:I, s:o}", "id", o->id, "userId", o->user_id, "status",
                     status ? status : "created", "expiresAt", o->expires_at, "version",
                     (json_int_t)o->version, "ticket", ticket);
}
