/*
 * ev_ticket.h - the tickets context's events (DESIGN.md section 3), topic "tickets":
 *   ticket:created  {id, version (0), title, price, userId} schemas/events/ticket.created.v1.json
 *   ticket:updated  {id, version (>= 1), title, price, userId[, orderId]}  ticket.updated.v1.json
 * orderId is present only while an order reserves the ticket; it is never null.
 */
#ifndef EV_TICKET_H
#define EV_TICKET_H

#include <jansson.h>
#include <stdint.h>

#include "tk/err.h"
#include "tk/ids.h"

#define EV_TITLE_MAX 256 /* bytes */

/** The data of ticket:created and ticket:updated. */
typedef struct ev_ticket {
    char id[TK_UUID_LEN + 1];
    int64_t version;                /* 0 for ticket:created, >= 1 for ticket:updated */
    char title[EV_TITLE_MAX + 1];   /* 1..256 bytes */
    int64_t price_cents;            /* > 0, at most EV_MONEY_MAX_CENTS; JSON "price" in units */
    char user_id[TK_UUID_LEN + 1];  /* JSON "userId" */
    char order_id[TK_UUID_LEN + 1]; /* JSON "orderId"; "" = absent (the ticket is free) */
} ev_ticket_t;

/**
 * @brief The data member of a ticket:created event; orderId is written when set (which
 *        ev_envelope_init then rejects: a new ticket is never reserved).
 * @param t borrowed.
 * @return Ownership: owned new reference, NULL when @p t is NULL or a string is not UTF-8.
 */
json_t *ev_ticket_created_to_json(const ev_ticket_t *t);

/**
 * @brief Strictly decode ticket:created data: version must be 0, orderId must be absent.
 * @param data borrowed. @param out zeroed, then filled; meaningful only on success.
 * @return 0, or TK_EINVAL with the member's path in err->field.
 */
int ev_ticket_created_from_json(const json_t *data, ev_ticket_t *out, tk_err_t *err);

/** @brief The data member of a ticket:updated event (orderId omitted when ""). Ownership: owned. */
json_t *ev_ticket_updated_to_json(const ev_ticket_t *t);

/** @brief Strictly decode ticket:updated data (version >= 1, optional orderId). See above. */
int ev_ticket_updated_from_json(const json_t *data, ev_ticket_t *out, tk_err_t *err);

#endif
