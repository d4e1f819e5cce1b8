/*
 * ticket_store.c - the tickets write model: load a ticket, create it, and write a new version of
 * it together with its event, all inside the caller's transaction (a tk_command_run body or a
 * projector's apply).
 *
 * Invariant: the row's version is the aggregateversion of the last event emitted for the ticket,
 * and every event is written by the transaction that wrote the row. tk_tickets_write is the only
 * UPDATE of the table: its `WHERE id = $1 AND version = $2` makes two writers that loaded the same
 * version race for one row, and the loser gets a retryable conflict (tk_command_stale), so
 * tk_command_run or the projector loop runs its decision again on the fresh state. The reactions
 * use the very same functions as PUT, so an order:created reserving the ticket and an edit by its
 * owner cannot both win. The reactions decide the holder from the ticket_orders ledger (see
 * tk_tickets_track_order in tickets.h for why not from the last event).
 */
#include "tickets.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tk/command.h"
#include "tk/pg.h"
#include "tk/rows.h"

int tk_tickets_load(tk_tx_t *tx, const char *id, tk_ticket_t *out, tk_err_t *err)
{
    memset(out, 0, sizeof(*out));
    PGresult *res = tk_row_by_id(tk_tx_conn(tx),
                                 "SELECT id, title, price_cents, user_id, coalesce(order_id::text, "
                                 "''), version FROM tickets WHERE id = $1",
                                 true, id, err);
    if (res == NULL)
        return err->code;
    tk_row_text(res, 0, 0, out->id, sizeof(out->id));
    tk_row_text(res, 0, 1, out->title, sizeof(out->title));
    out->price_cents = tk_row_int(res, 0, 2);
    tk_row_text(res, 0, 3, out->user_id, sizeof(out->user_id));
    tk_row_text(res, 0, 4, out->order_id, sizeof(out->order_id));
    out->version = tk_row_int(res, 0, 5);
    PQclear(res);
    return 0;
}

/* The event data of @p t, as ev_ticket.h defines it. */
static void to_event(const tk_ticket_t *t, ev_ticket_t *ev)
{
    memset(ev, 0, sizeof(*ev));
    memcpy(ev->id, t->id, sizeof(ev->id));
    ev->version = t->version;
    memcpy(ev->title, t->title, sizeof(ev->title));
    ev->price_cents = t->price_cents;
    memcpy(ev->user_id, t->user_id, sizeof(ev->user_id));
    memcpy(ev->order_id, t->order_id, sizeof(ev->order_id));
}

int tk_tickets_create(tk_tx_t *tx, const tk_ticket_t *t, tk_err_t *err)
{
    char cents[24];
    snprintf(cents, sizeof(cents), "%lld", (long long)t->price_cents);
    const char *params[] = {t->id, t->title, cents, t->user_id};
    int rc = tk_pg_run_prepared(tk_tx_conn(tx),
                                "INSERT INTO tickets (id, title, price_cents, user_id, version) "
                                "VALUES ($1, $2, $3::bigint, $4, 0)",
                                4, params, NULL, err);
    if (rc != 0)
        return rc;
    ev_ticket_t ev;
    to_event(t, &ev);
    return tk_tx_emit(tx, "ticket:created", t->id, 0, ev_ticket_created_to_json(&ev), err);
}

int tk_tickets_write(tk_tx_t *tx, const tk_ticket_t *next, tk_err_t *err)
{
    char cents[24], expected[24];
    snprintf(cents, sizeof(cents), "%lld", (long long)next->price_cents);
    snprintf(expected, sizeof(expected), "%lld", (long long)(next->version - 1));
    const char *params[] = {next->id, expected, next->title, cents,
                            next->order_id[0] != '\0' ? next->order_id : NULL};
    int rc = tk_command_write(tx,
                              "UPDATE tickets SET title = $3, price_cents = $4::bigint, "
                              "order_id = $5, version = version + 1 "
                              "WHERE id = $1 AND version = $2::integer",
                              5, params, "ticket", err);
    if (rc != 0)
        return rc;
    ev_ticket_t ev;
    to_event(next, &ev);
    return tk_tx_emit(tx, "ticket:updated", next->id, next->version, ev_ticket_updated_to_json(&ev),
                      err);
}

int tk_tickets_update(tk_tx_t *tx, const char *id, const char *user_id, const tk_ticket_input_t *in,
                      tk_ticket_t *out, tk_err_t *err)
{
    int rc = tk_tickets_load(tx, id, out, err);
    if (rc != 0)
        return rc;
    if ((rc = tk_ticket_decide_update(out, user_id, err)) != 0)
        return rc;
    memcpy(out->title, in->title, sizeof(out->title));
    out->price_cents = in->price_cents;
    out->version++;
    return tk_tickets_write(tx, out, err);
}

int tk_tickets_track_order(tk_tx_t *tx, const char *ticket_id, const char *order_id, bool open,
                           const char *created_at, tk_err_t *err)
{
    tk_ticket_t t;
    PGresult *res = NULL;
    int rc = tk_tickets_load(tx, ticket_id, &t, err);
    if (rc != 0)
        return rc;
    const char *params[] = {t.id, order_id, created_at};
    if ((rc = tk_pg_run_prepared(
             tk_tx_conn(tx),
             open ? "INSERT INTO ticket_orders (ticket_id, order_id, open, created_at) "
                    "VALUES ($1, $2, true, $3::timestamptz) ON CONFLICT DO NOTHING"
                  : "INSERT INTO ticket_orders (ticket_id, order_id, open, created_at) "
                    "VALUES ($1, $2, false, $3::timestamptz) "
                    "ON CONFLICT (ticket_id, order_id) DO UPDATE SET open = false",
             3, params, NULL, err)) != 0)
        return rc;
    res = tk_pg_exec_prepared(tk_tx_conn(tx),
                              "SELECT order_id FROM ticket_orders WHERE ticket_id = $1 AND open "
                              "ORDER BY created_at DESC, order_id DESC LIMIT 1",
                              1, params, err);
    if (res == NULL)
        return err->code;
    char holder[TK_UUID_LEN + 1] = "";
    if (PQntuples(res) == 1)
        tk_row_text(res, 0, 0, holder, sizeof(holder));
    PQclear(res);
    if (!tk_ticket_decide_holder(&t, holder))
        return 0;
    memcpy(t.order_id, holder, sizeof(t.order_id));
    t.version++;
    rc = tk_tickets_write(tx, &t, err);
    return rc != 0 ? rc : 1;
}
