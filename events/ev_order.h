/*
 * ev_order.h - the orders context's events (DESIGN.md section 3), topic "orders":
 *   order:created    {id, version (0), status, userId, expiresAt, ticket{id, price}}
 *   order:cancelled  {id, version (>= 1), ticket{id}}
 *   order:completed  {id, version (>= 1), ticket{id}}
 * Schemas: schemas/events/order.created.v1.json, order.cancelled.v1.json, order.completed.v1.json.
 *
 * The order lifecycle the status names (the orders context owns the transitions):
 *
 *   created --payment:created--> complete
 *      |
 *      +--DELETE or payment:expired--> cancelled
 */
#ifndef EV_ORDER_H
#define EV_ORDER_H

#include <jansson.h>
#include <stdint.h>

#include "tk/err.h"
#include "tk/ids.h"

/** Order status; JSON names "created", "cancelled", "complete". */
typedef enum ev_order_status {
    EV_ORDER_CREATED = 0,
    EV_ORDER_CANCELLED,
    EV_ORDER_COMPLETE
} ev_order_status_t;

/** @brief The JSON name of @p s ("complete"), NULL for a value outside the enum. */
const char *ev_order_status_name(ev_order_status_t s);

/** @brief Parse a status name (exact, case-sensitive). @return 0, or TK_EINVAL. */
int ev_order_status_parse(const char *name, ev_order_status_t *out);

/** order:created data. */
typedef struct ev_order_created {
    char id[TK_UUID_LEN + 1];
    int64_t version; /* always 0 */
    ev_order_status_t status;
    char user_id[TK_UUID_LEN + 1];    /* JSON "userId" */
    char expires_at[TK_TIME_LEN + 1]; /* JSON "expiresAt", as tk_time_format writes it */
    struct {
        char id[TK_UUID_LEN + 1];
        int64_t price_cents; /* > 0; JSON "price" in units */
    } ticket;
} ev_order_created_t;

/** order:cancelled and order:completed data: which order, at which version, freed which ticket. */
typedef struct ev_order_ref {
    char id[TK_UUID_LEN + 1];
    int64_t version; /* >= 1 */
    struct {
        char id[TK_UUID_LEN + 1];
    } ticket;
} ev_order_ref_t;

/**
 * @brief The data member of an order:created event.
 * @param o borrowed.
 * @return Ownership: owned new reference, NULL when @p o is NULL, its status is outside the enum
 *         or a string is not UTF-8.
 */
json_t *ev_order_created_to_json(const ev_order_created_t *o);

/**
 * @brief Strictly decode order:created data (version 0, status name, canonical expiresAt,
 *        ticket price > 0). Unknown members are ignored.
 * @param data borrowed. @param out zeroed, then filled; meaningful only on success.
 * @return 0, or TK_EINVAL with the member's path ("ticket.price") in err->field.
 */
int ev_order_created_from_json(const json_t *data, ev_order_created_t *out, tk_err_t *err);

/** @brief The data member of an order:cancelled event. Ownership: owned, NULL on bad input. */
json_t *ev_order_cancelled_to_json(const ev_order_ref_t *o);

/** @brief Strictly decode order:cancelled data. As ev_order_created_from_json. */
int ev_order_cancelled_from_json(const json_t *data, ev_order_ref_t *out, tk_err_t *err);

/** @brief The data member of an order:completed event. Ownership: owned, NULL on bad input. */
json_t *ev_order_completed_to_json(const ev_order_ref_t *o);

/** @brief Strictly decode order:completed data. As ev_order_created_from_json. */
int ev_order_completed_from_json(const json_t *data, ev_order_ref_t *out, tk_err_t *err);

#endif
