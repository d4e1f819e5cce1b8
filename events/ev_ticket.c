/*
 * ev_ticket.c - codecs of ticket:created and ticket:updated, which share one shape.
 *
 * Versions: a ticket is created at version 0 and every change bumps it by one (DESIGN.md
 * section 5), so ticket:created carries exactly 0 and ticket:updated at least 1; replicas rely
 * on that to detect duplicates and gaps. A reserved ticket carries orderId; a free one omits it
 * (the original wrote `orderId: undefined`), so null is not a way to say "free".
 */
#include "ev_ticket.h"
#include "ev_json_int.h"
#include "ev_money.h"

#include <string.h>

static json_t *ticket_to_json(const ev_ticket_t *t)
{
    if (t == NULL)
        return NULL;
    json_t *obj = ev__object("id", ev__str(t->id), "version", json_integer(t->version), "title",
                             ev__str(t->title), "price", ev_money_to_json(t->price_cents), "userId",
                             ev__str(t->user_id), NULL);
    if (obj != NULL && t->order_id[0] != '\0' &&
        json_object_set_new(obj, "orderId", ev__str(t->order_id)) != 0) {
        json_decref(obj);
        obj = NULL;
    }
    return obj;
}

/* The members both events share; version bounds differ. */
static int ticket_from_json(const json_t *data, int64_t min_version, int64_t max_version,
                            ev_ticket_t *out, tk_err_t *err)
{
    int rc = 0;
    memset(out, 0, sizeof(*out));
    if ((rc = ev__want_object(data, "data", err)) != 0)
        goto out;
    if ((rc = ev__get_uuid(data, "id", "id", out->id, err)) != 0)
        goto out;
    if ((rc = ev__get_int(data, "version", "version", min_version, max_version, &out->version,
                          err)) != 0)
        goto out;
    if ((rc = ev__get_string(data, "title", "title", out->title, sizeof(out->title), 1, err)) != 0)
        goto out;
    if ((rc = ev__get_price(data, "price", "price", &out->price_cents, err)) != 0)
        goto out;
    if ((rc = ev__get_uuid(data, "userId", "userId", out->user_id, err)) != 0)
        goto out;
out:
    return rc;
}

json_t *ev_ticket_created_to_json(const ev_ticket_t *t)
{
    return ticket_to_json(t);
}

int ev_ticket_created_from_json(const json_t *data, ev_ticket_t *out, tk_err_t *err)
{
    int rc = ticket_from_json(data, 0, 0, out, err);
    if (rc == 0 && ev__has(data, "orderId"))
        rc = tk_err_set(err, TK_EINVAL, "orderId", "orderId must be absent: a new ticket is free");
    return rc;
}

json_t *ev_ticket_updated_to_json(const ev_ticket_t *t)
{
    return ticket_to_json(t);
}

int ev_ticket_updated_from_json(const json_t *data, ev_ticket_t *out, tk_err_t *err)
{
    int rc = ticket_from_json(data, 1, INT64_MAX, out, err);
    if (rc == 0 && ev__has(data, "orderId"))
        rc = ev__get_uuid(data, "orderId", "orderId", out->order_id, err);
    return rc;
}
