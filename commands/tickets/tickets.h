/*
 * tickets.h - the tickets context's write side (DESIGN.md sections 4, 5 and 9): the ticket
 * aggregate, its pure rules (validation and decide functions), the write functions shared by the
 * HTTP commands and by the reactions to order events, and the command routes.
 *
 * The aggregate lives in the `tickets` table of database tk_tickets, one row per ticket with its
 * version. Every change goes through tk_tickets_write, which updates with an optimistic check
 * (`UPDATE ... WHERE id = $1 AND version = $2`) and emits ticket:updated in the same transaction,
 * whether the change came from PUT /api/tickets/:id or from an order:created/order:cancelled
 * event applied by the reactions projector (projections/tickets/ticket_reactions.c).
 *
 * Lifecycle of the reservation (orderId), all through tk_tickets_track_order:
 *
 *    free --order:created--> reserved(orderId) --order:cancelled of that order--> free
 *    order:completed leaves a ticket reserved for good; an order:created of a newer order takes
 *    the reservation over (the older order's cancel is then on its way).
 */
#ifndef TK_TICKETS_H
#define TK_TICKETS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "ev_ticket.h"
#include "tk/err.h"
#include "tk/http.h"
#include "tk/ids.h"
#include "tk/projector.h"
#include "tk/tx.h"

/** A ticket as the write model holds it. */
typedef struct tk_ticket {
    char id[TK_UUID_LEN + 1];
    char title[EV_TITLE_MAX + 1];
    int64_t price_cents;
    char user_id[TK_UUID_LEN + 1];
    char order_id[TK_UUID_LEN + 1]; /* "" while the ticket is free */
    int64_t version;                /* 0 when created, +1 per change */
} tk_ticket_t;

/** The validated body of POST /api/tickets and PUT /api/tickets/:id. */
typedef struct tk_ticket_input {
    char title[EV_TITLE_MAX + 1];
    int64_t price_cents; /* > 0 */
} tk_ticket_input_t;

/* ---- pure rules (commands/tickets/ticket_rules.c), unit-tested ---- */

/**
 * @brief Validate a ticket body: title a non-empty string of at most EV_TITLE_MAX bytes ('Title
 *        is required'), price a number or numeric string > 0 ('Price must be greater than 0').
 * @param body borrowed, a JSON object. @param out filled when valid.
 * @param errors borrowed JSON array; one {"message","field"} is appended per problem.
 * @return 0, or TK_EINVAL when at least one error was appended.
 */
int tk_ticket_input_parse(const json_t *body, tk_ticket_input_t *out, json_t *errors);

/**
 * @brief The rule of an edit: a reserved ticket cannot be edited (TK_EINVAL 'Cannot edit a
 *        reserved ticket', checked first), only its owner may edit it (TK_EUNAUTH).
 * @param t, user_id borrowed. @return 0 when @p user_id may edit @p t now.
 */
int tk_ticket_decide_update(const tk_ticket_t *t, const char *user_id, tk_err_t *err);

/**
 * @brief The rule of the reactions: the ticket is reserved by @p holder, the open order that the
 *        ledger of the ticket's orders designates ("" when none is open; see
 *        tk_tickets_track_order).
 * @return true when the ticket must change (its orderId is not @p holder), false otherwise.
 */
bool tk_ticket_decide_holder(const tk_ticket_t *t, const char *holder);

/**
 * @brief The contract's ticket JSON {id,title,price,userId,version[,orderId]}.
 * @return Ownership: owned new reference.
 */
json_t *tk_ticket_to_json(const tk_ticket_t *t);

/* ---- the write model (commands/tickets/ticket_store.c); Thread: the transaction's ---- */

/**
 * @brief Load ticket @p id from the write model.
 * @return 0; TK_ENOTFOUND when there is no such ticket (or @p id is not a UUID); a tk_pg error.
 */
int tk_tickets_load(tk_tx_t *tx, const char *id, tk_ticket_t *out, tk_err_t *err);

/**
 * @brief Insert the new ticket @p t (version 0, free) and emit ticket:created.
 * @param t borrowed; its id must be a fresh UUID.
 */
int tk_tickets_create(tk_tx_t *tx, const tk_ticket_t *t, tk_err_t *err);

/**
 * @brief Write the next state @p next of a ticket whose stored version is next->version - 1
 *        (optimistic check) and emit ticket:updated carrying @p next.
 * @return 0; a retryable TK_ECONFLICT (tk_command_stale) when the stored version moved on; a
 *         tk_pg or tk_tx_emit error.
 */
int tk_tickets_write(tk_tx_t *tx, const tk_ticket_t *next, tk_err_t *err);

/**
 * @brief PUT's command: load, tk_ticket_decide_update, write title and price.
 * @param out receives the new state on success.
 */
int tk_tickets_update(tk_tx_t *tx, const char *id, const char *user_id, const tk_ticket_input_t *in,
                      tk_ticket_t *out, tk_err_t *err);

/**
 * @brief The reactions to order events: record in the ticket's ledger (table ticket_orders) that
 *        order @p order_id is open (order:created, order:completed: inserted if unknown, never
 *        reopened) or closed (order:cancelled), then make the ticket's orderId the ledger's
 *        holder: the open order created last, or none. A change is written with tk_tickets_write
 *        (version + 1, ticket:updated).
 *
 * Why a ledger: the events of one ticket's orders travel on different partitions, so a new
 * order's order:created may arrive before the old order's order:cancelled, or an old order's
 * whole story after the new one's created. Deciding from the set of open orders gives the same
 * final state for every arrival order, and repeating an event changes nothing.
 *
 * @param ticket_id, order_id borrowed UUIDs. @param created_at borrowed, the event time that
 *        orders this order among the ticket's orders (RFC 3339).
 * @return 1 when the ticket changed (ticket:updated emitted), 0 when it did not, TK_ENOTFOUND
 *         for a ticket this context does not know (nothing is recorded), or a negative TK_E*.
 * Thread: the transaction's.
 */
int tk_tickets_track_order(tk_tx_t *tx, const char *ticket_id, const char *order_id, bool open,
                           const char *created_at, tk_err_t *err);

/* ---- HTTP (commands/tickets/tickets_routes.c) ---- */

/** @brief Register POST /api/tickets and PUT /api/tickets/:id (worker routes). */
void tk_tickets_command_routes(tk_http_server_t *srv, const char *database);

/**
 * The tickets policy, topic orders -> the write model: order:created reserves, order:cancelled
 * releases, each emitting ticket:updated in the projector's transaction (ticket_reactions.c).
 */
extern const tk_projector_spec_t tk_tickets_reactions_projector;

#endif
