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
#define TICKET_FIELDS(min_version, max_version)                                                    \
    {                                                                                              \
        EV__F_UUID(ev_ticket_t, "id", id),                                                         \
            EV__F_INT(ev_ticket_t, "version", version, min_version, max_version),                  \
            EV__F_STRING(ev_ticket_t, "title", title, 1),                                          \
            EV__F_PRICE(ev_ticket_t, "price", price_cents),                                        \
            EV__F_UUID(ev_ticket_t, "userId", user_id),                                            \
    }
static const ev__field_t created_fields[] = TICKET_FIELDS(0, 0);
static const ev__field_t updated_fields[] = TICKET_FIELDS(1, INT64_MAX);

json_t *ev_ticket_created_to_json(const ev_ticket_t *t)
{
    return ticket_to_json(t);
}

int ev_ticket_created_from_json(const json_t *data, ev_ticket_t *out, tk_err_t *err)
{
    int rc = EV__DECODE(data, created_fields, out, err);
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
    int rc = EV__DECODE(data, updated_fields, out, err);
    if (rc == 0 && ev__has(data, "orderId"))
        rc = ev__get_uuid(data, "orderId", "orderId", out->order_id, err);
    return rc;
}
