/*
 * ev_expiration.h - the expiration scheduler's event (DESIGN.md sections 3 and 7), topic
 * "expirations": expiration:complete {orderId}. Schema: schemas/events/expiration.complete.v1.json.
 * The envelope's subject (the Kafka key) is the order id.
 */
#ifndef EV_EXPIRATION_H
#define EV_EXPIRATION_H

#include <jansson.h>

#include "tk/err.h"
#include "tk/ids.h"

/** expiration:complete data: the order whose reservation window has passed. */
typedef struct ev_expiration_complete {
    char order_id[TK_UUID_LEN + 1]; /* JSON "orderId" */
} ev_expiration_complete_t;

/**
 * @brief The data member of an expiration:complete event.
 * @param e borrowed.
 * @return Ownership: owned new reference, NULL when @p e is NULL or its id is not UTF-8.
 */
json_t *ev_expiration_complete_to_json(const ev_expiration_complete_t *e);

/**
 * @brief Strictly decode expiration:complete data. Unknown members are ignored.
 * @param data borrowed. @param out zeroed, then filled; meaningful only on success.
 * @return 0, or TK_EINVAL with the member's path in err->field.
 */
int ev_expiration_complete_from_json(const json_t *data, ev_expiration_complete_t *out,
                                     tk_err_t *err);

#endif
