/*
 * orders.h - the orders context's write side (DESIGN.md sections 4, 5 and 9): the order aggregate,
 * its pure rules, the write functions shared by the HTTP commands and the reactions to
 * expiration and payment events, and the command routes.
 *
 * The order lifecycle (status names as in ev_order.h), with the function behind each transition:
 *
 *   (none) --tk_orders_place--> created --tk_orders_complete (payment:created)--> complete
 *                                  |
 *                                  +--tk_orders_cancel (DELETE, payment:expired)--> cancelled
 *
 *   complete is final: cancelling it is refused ('Cannot cancel a completed order'); cancelling a
 *   cancelled order changes nothing. An order in created or complete reserves
 *   its ticket: the partial unique index orders_ticket_reserved_key admits one such order per
 *   ticket, so concurrent POST /api/orders for one ticket have exactly one winner.
 */
#ifndef TK_ORDERS_H
#define TK_ORDERS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "ev_order.h"
#include "ev_ticket.h"
#include "tk/err.h"
#include "tk/http.h"
#include "tk/ids.h"
#include "tk/projector.h"
#include "tk/tx.h"

/** An order as the write model holds it. */
typedef struct tk_order {
    char id[TK_UUID_LEN + 1];
    char user_id[TK_UUID_LEN + 1];
    char ticket_id[TK_UUID_LEN + 1];
    ev_order_status_t status;
    char expires_at[TK_TIME_LEN + 1]; /* RFC 3339 UTC ms */
    int64_t version;
} tk_order_t;

/** A ticket as orders knows it (its replica), embedded in order responses. */
typedef struct tk_order_ticket {
    char id[TK_UUID_LEN + 1];
    char title[EV_TITLE_MAX + 1];
    int64_t price_cents;
    int64_t version;
} tk_order_ticket_t;

/* ---- pure rules (commands/orders/order_rules.c), unit-tested ---- */

/**
 * @brief The ticketId of POST /api/orders.
 * @param body borrowed JSON object. @param ticket_id set to a string borrowed from @p body.
 * @return 0; TK_EINVAL 'TicketId must be provided' (field ticketId) when it is missing, not a
 *         string or empty; TK_ENOTFOUND when it is not a UUID (no such ticket can exist).
 */
int tk_order_ticket_id_parse(const json_t *body, const char **ticket_id, tk_err_t *err);

/** @brief Only the owner may see an order: 0, or TK_EUNAUTH. @p user_id may be NULL. */
int tk_order_decide_access(const char *owner_id, const char *user_id, tk_err_t *err);

/**
 * @brief The rule of cancelling @p o, by @p user_id (NULL: the system, e.g. an expiration).
 * @return 1 when the order becomes cancelled, 0 when it already is (a no-op), TK_EUNAUTH when
 *         @p user_id is not the owner, TK_EINVAL 'Cannot cancel a completed order'.
 */
int tk_order_decide_cancel(const tk_order_t *o, const char *user_id, tk_err_t *err);

/** @brief The rule of payment:created: true when @p o becomes complete (it is live), false
 *         when it is already complete or cancelled (nothing to do). */
bool tk_order_decide_complete(const tk_order_t *o);

/** @brief expiresAt of an order placed at @p now_ms: now + @p window_seconds, RFC 3339 ms. */
void tk_order_expiry(int64_t now_ms, int window_seconds, char out[TK_TIME_LEN + 1]);

/**
 * @brief The contract's order JSON {id,userId,status,expiresAt,version,ticket:{id,title,price,
 *        version}}; with @p t NULL the ticket is {id} only. Ownership: owned new reference.
 */
json_t *tk_order_to_json(const tk_order_t *o, const tk_order_ticket_t *t);

/* ---- the write model (commands/orders/order_store.c); Thread: the transaction's ---- */

/** @brief Load order @p id. @return 0, TK_ENOTFOUND (also for a non-UUID), or a tk_pg error. */
int tk_orders_load(tk_tx_t *tx, const char *id, tk_order_t *out, tk_err_t *err);

/**
 * @brief POST's command, in one round trip before the commit: the open-orders cap (@p o's user
 *        may hold at most ORDERS_OPEN_MAX orders in status created: TK_ELIMIT 'Too many open
 *        orders...', counted under a per-user transaction lock so that one user's concurrent
 *        POSTs are counted one after the other), then the ticket must be replicated
 *        (TK_ENOTFOUND) and free (TK_EINVAL 'Ticket is already reserved'); inserts @p o as
 *        created, version 0, and emits order:created.
 * @param o borrowed: id (fresh), user_id, ticket_id and expires_at set; status and version are
 *        taken as created / 0. @param ticket receives the replicated ticket.
 * @param retry_after set with TK_ELIMIT: seconds until the user's earliest open order expires.
 * @return 0, one of the errors above, or a tk_pg error.
 */
int tk_orders_place(tk_tx_t *tx, const tk_order_t *o, tk_order_ticket_t *ticket, int *retry_after,
                    tk_err_t *err);

/**
 * @brief Cancel order @p id for @p user_id (NULL: the system): load, tk_order_decide_cancel,
 *        write, emit order:cancelled. Used by DELETE /api/orders/:id and payment:expired.
 * @param out may be NULL; receives the order's state after the call.
 * @return 1 cancelled now, 0 already cancelled, or a negative TK_E* (TK_ENOTFOUND, TK_EUNAUTH,
 *         TK_EINVAL for a complete order, a retryable TK_ECONFLICT when the version moved).
 */
int tk_orders_cancel(tk_tx_t *tx, const char *id, const char *user_id, tk_order_t *out,
                     tk_err_t *err);

/**
 * @brief payment:created's command: load, tk_order_decide_complete, write, emit
 *        order:completed. @return 1 completed now, 0 nothing to do, or a negative TK_E*.
 */
int tk_orders_complete(tk_tx_t *tx, const char *id, tk_err_t *err);

/* ---- HTTP (commands/orders/orders_routes.c) ---- */

/** @brief Register POST /api/orders and DELETE /api/orders/:id (worker routes). */
void tk_orders_command_routes(tk_http_server_t *srv, const char *database);

/**
 * The orders policy, topic payments -> the write model: payment:expired (the payments context
 * closed the order's payment window unpaid) cancels unless complete, payment:created completes,
 * each emitting its event in the projector's transaction (order_reactions.c).
 */
extern const tk_projector_spec_t tk_orders_reactions_projector;

#endif
