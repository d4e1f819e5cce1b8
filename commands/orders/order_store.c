/*
 * order_store.c - the orders write model: place, cancel and complete an order together with its
 * event, inside the caller's transaction (a tk_command_run body or a projector's apply).
 *
 * Invariants:
 * - A row's version is the aggregateversion of the order's last event, and the transaction that
 *   writes the row writes the event (tk_tx_emit), so the two never disagree.
 * - Status changes go through write_status only: `UPDATE ... WHERE id = $1 AND version = $2`.
 *   A DELETE racing an expiration or a payment loses with a retryable conflict and decides again
 *   on the winner's state (e.g. DELETE after payment:created then gets 'Cannot cancel a completed
 *   order').
 * - The reservation rule is the database's: the INSERT of place relies on the partial unique
 *   index orders_ticket_reserved_key (ON CONFLICT DO NOTHING waits for a concurrent inserter's
 *   outcome), so whatever the concurrency, one live order per ticket.
 */
#include "orders.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tk/cfg.h"
#include "tk/command.h"
#include "tk/pg.h"
#include "tk/rows.h"

/* expires_at as tk_time_format writes it. */
#define EXPIRES_AT_TEXT                                                                            \
    "to_char(expires_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

int tk_orders_load(tk_tx_t *tx, const char *id, tk_order_t *out, tk_err_t *err)
{
    memset(out, 0, sizeof(*out));
    PGresult *res = tk_row_by_id(tk_tx_conn(tx),
                                 "SELECT id, user_id, ticket_id, status, " EXPIRES_AT_TEXT
                                 ", version FROM orders WHERE id = $1",
                                 true, id, err);
    if (res == NULL)
        return err->code;
    int rc = 0;
    tk_row_text(res, 0, 0, out->id, sizeof(out->id));
    tk_row_text(res, 0, 1, out->user_id, sizeof(out->user_id));
    tk_row_text(res, 0, 2, out->ticket_id, sizeof(out->ticket_id));
    if (ev_order_status_parse(PQgetvalue(res, 0, 3), &out->status) != 0) {
        rc = tk_err_set(err, TK_EINTERNAL, "status", "order %s has status %s", out->id,
                        PQgetvalue(res, 0, 3));
        goto out;
    }
    tk_row_text(res, 0, 4, out->expires_at, sizeof(out->expires_at));
    out->version = tk_row_int(res, 0, 5);
out:
    PQclear(res);
    return rc;
}

/*
 * Placing an order, in one statement after the user's lock (one snapshot, taken after the lock):
 * the user's open orders, the replicated ticket, and the INSERT, guarded by the cap and taking the
 * price from the same replica row. One row always comes back:
 *   open, seconds until the earliest open order expires, ticket id (NULL: not replicated), title,
 *   price_cents, version, inserted (0: the ticket is reserved, or the cap stopped it).
 * ON CONFLICT DO NOTHING on orders_ticket_reserved_key waits for a concurrent inserter's outcome.
 */
#define PLACE_SQL                                                                                  \
    "WITH open AS (SELECT count(*) AS n, coalesce(ceil(extract(epoch FROM min(expires_at) - "      \
    "now())), 1)::bigint AS wait FROM orders WHERE user_id = $2::uuid AND status = 'created'), "   \
    "t AS (SELECT id, title, price_cents, version FROM tickets_replica WHERE id = $3::uuid), "     \
    "ins AS (INSERT INTO orders (id, user_id, ticket_id, status, expires_at, version, "            \
    "price_cents) SELECT $1::uuid, $2::uuid, t.id, 'created', $4::timestamptz, 0, t.price_cents "  \
    "FROM t, open "                                                                                \
    "WHERE open.n < $5::bigint ON CONFLICT DO NOTHING RETURNING 1) "                               \
    "SELECT open.n, open.wait, t.id, t.title, t.price_cents, t.version, "                          \
    "(SELECT count(*) FROM ins) FROM open LEFT JOIN t ON true"

/* The outcome of PLACE_SQL's row: 0 with @p ticket filled, or the error the POST answers. */
static int place_outcome(const PGresult *res, tk_order_ticket_t *ticket, int *retry_after,
                         tk_err_t *err)
{
    int64_t open = tk_row_int(res, 0, 0), wait = tk_row_int(res, 0, 1);
    int max = tk_cfg()->orders_open_max;
    if (open >= max) {
        *retry_after = wait < 1 ? 1 : wait > 86400 ? 86400 : (int)wait;
        return tk_err_set(err, TK_ELIMIT, NULL,
                          "Too many open orders: pay for or cancel one first (at most %d)", max);
    }
    if (PQgetisnull(res, 0, 2))
        return tk_err_set(err, TK_ENOTFOUND, NULL, "Not Found");
    tk_row_text(res, 0, 2, ticket->id, sizeof(ticket->id));
    tk_row_text(res, 0, 3, ticket->title, sizeof(ticket->title));
    ticket->price_cents = tk_row_int(res, 0, 4);
    ticket->version = tk_row_int(res, 0, 5);
    if (tk_row_int(res, 0, 6) == 0)
        return tk_err_set(err, TK_EINVAL, NULL, "Ticket is already reserved");
    return 0;
}

int tk_orders_place(tk_tx_t *tx, const tk_order_t *o, tk_order_ticket_t *ticket, int *retry_after,
                    tk_err_t *err)
{
    /* One round trip: the user's lock, which serialises one user's POSTs (other users are not
     * blocked) so that two transactions never both count under the cap and both insert; then
     * PLACE_SQL, whose snapshot is taken after the lock. The order keeps the price it was created
     * with (DESIGN.md section 5): the replica may still move if the owner edits the ticket before
     * order:created reaches tickets. */
    char max[16];
    snprintf(max, sizeof(max), "%d", tk_cfg()->orders_open_max);
    const char *user[] = {o->user_id};
    const char *place[] = {o->id, o->user_id, tk_uuid_valid(o->ticket_id) ? o->ticket_id : NULL,
                           o->expires_at, max}; /* a non-UUID is no ticket */
    const tk_pg_stmt_t stmts[] = {
        {"SELECT pg_advisory_xact_lock(hashtextextended('orders.open:' || $1, 0))", 1, user},
        {PLACE_SQL, 5, place},
    };
    PGresult *res[2];
    memset(ticket, 0, sizeof(*ticket));
    int rc = tk_pg_exec_all(tk_tx_conn(tx), stmts, 2, res, err);
    if (rc == 0)
        rc = place_outcome(res[1], ticket, retry_after, err);
    PQclear(res[0]);
    PQclear(res[1]);
    if (rc != 0)
        return rc;
    ev_order_created_t ev = {.version = 0, .status = EV_ORDER_CREATED};
    memcpy(ev.id, o->id, sizeof(ev.id));
    memcpy(ev.user_id, o->user_id, sizeof(ev.user_id));
    memcpy(ev.expires_at, o->expires_at, sizeof(ev.expires_at));
    memcpy(ev.ticket.id, o->ticket_id, sizeof(ev.ticket.id));
    ev.ticket.price_cents = ticket->price_cents;
    return tk_tx_emit(tx, "order:created", o->id, 0, ev_order_created_to_json(&ev), err);
}

/* Move @p next (its new status and version) over the stored version next->version - 1, and
 * emit @p type ("order:cancelled" or "order:completed"). */
static int write_status(tk_tx_t *tx, const tk_order_t *next, const char *type, tk_err_t *err)
{
    char expected[24];
    snprintf(expected, sizeof(expected), "%lld", (long long)(next->version - 1));
    const char *params[] = {next->id, expected, ev_order_status_name(next->status)};
    int rc = tk_command_write(tx,
                              "UPDATE orders SET status = $3, version = version + 1 "
                              "WHERE id = $1 AND version = $2::integer",
                              3, params, "order", err);
    if (rc != 0)
        return rc;
    ev_order_ref_t ev = {.version = next->version};
    memcpy(ev.id, next->id, sizeof(ev.id));
    memcpy(ev.ticket.id, next->ticket_id, sizeof(ev.ticket.id));
    json_t *data = next->status == EV_ORDER_CANCELLED ? ev_order_cancelled_to_json(&ev)
                                                      : ev_order_completed_to_json(&ev);
    return tk_tx_emit(tx, type, next->id, next->version, data, err);
}

int tk_orders_cancel(tk_tx_t *tx, const char *id, const char *user_id, tk_order_t *out,
                     tk_err_t *err)
{
    tk_order_t o;
    int rc = tk_orders_load(tx, id, &o, err);
    if (rc == 0 && (rc = tk_order_decide_cancel(&o, user_id, err)) == 1) {
        o.status = EV_ORDER_CANCELLED;
        o.version++;
        rc = write_status(tx, &o, "order:cancelled", err);
        rc = rc != 0 ? rc : 1;
    }
    if (out != NULL)
        *out = o;
    return rc;
}

int tk_orders_complete(tk_tx_t *tx, const char *id, tk_err_t *err)
{
    tk_order_t o;
    int rc = tk_orders_load(tx, id, &o, err);
    if (rc != 0)
        return rc;
    if (!tk_order_decide_complete(&o))
        return 0;
    o.status = EV_ORDER_COMPLETE;
    o.version++;
    rc = write_status(tx, &o, "order:completed", err);
    return rc != 0 ? rc : 1;
}
