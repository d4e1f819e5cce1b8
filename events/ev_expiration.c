/*
 * ev_expiration.c - codec of expiration:complete. The event says only which order expired: the
 * orders context decides whether that still matters (a complete order ignores it), so the
 * scheduler never needs to know an order's state (DESIGN.md section 7).
 */
#include "ev_expiration.h"
#include "ev_json_int.h"

#include <string.h>

json_t *ev_expiration_complete_to_json(const ev_expiration_complete_t *e)
{
    if (e == NULL)
        return NULL;
    return ev__object("orderId", ev__str(e->order_id), NULL);
}

static const ev__field_t complete_fields[] = {
    EV__F_UUID(ev_expiration_complete_t, "orderId", order_id),
};

int ev_expiration_complete_from_json(const json_t *data, ev_expiration_complete_t *out,
                                     tk_err_t *err)
{
    return EV__DECODE(data, complete_fields, out, err);
}
