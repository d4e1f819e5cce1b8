/*
 * order_view.c - the orders read model: applies order:created, order:cancelled and
 * order:completed from topic `orders` to order_view, which GET /api/orders[/:id] read.
 *
 * order:created inserts the order (ON CONFLICT DO NOTHING: a repeat changes nothing); the other two
 * set the status they name and the event's version, guarded by `version < event version`, so an
 * event applied twice, or an older one after a newer one, changes nothing, and `ticketing replay`
 * can rebuild the table from offset 0. An order's events share its key, hence one partition, so
 * its created always precedes its cancelled/completed; a status event for an order the view has
 * never seen is not ours (another engineer's test, a foreign producer) and is skipped.
 *
 * A status change also calls pg_notify(TK_ORDERS_STATUS_CHANNEL, {id,status,version,expiresAt})
 * in the same statement as the UPDATE, so the notification is delivered exactly when the change
 * commits, and never for a change that rolled back. GET /api/orders/:id/events (order_events.c)
 * listens on it to push the change to the order's open event streams. A replay re-applies old
 * changes and notifies again; the listener drops a notification whose version its streams
 * already have.
 */
#include "orders_read.h"

#include <stdio.h>
#include <string.h>

#include "ev_catalog.h"
#include "ev_order.h"
#include "tk/pg.h"

static int apply_created(tk_tx_t *tx, const ev_envelope_t *env, tk_err_t *err)
{
    ev_order_created_t o;
    int rc = ev_order_created_from_json(env->data, &o, err);
    if (rc != 0)
        return rc;
    /* The price the order was created with, never a later replica price (DESIGN.md 5). */
    char cents[24];
    snprintf(cents, sizeof(cents), "%lld", (long long)o.ticket.price_cents);
    const char *params[] = {o.id,         o.user_id, o.ticket.id, ev_order_status_name(o.status),
                            o.expires_at, env->time, cents};
    int64_t inserted = 0;
    if ((rc = tk_pg_run_prepared(
             tk_tx_conn(tx),
             "INSERT INTO order_view (id, user_id, ticket_id, status, expires_at, "
             "version, created_at, price_cents) VALUES ($1, $2, $3, $4, "
             "$5::timestamptz, 0, $6::timestamptz, $7::bigint) "
             "ON CONFLICT (id) DO NOTHING",
             7, params, &inserted, err)) != 0)
        return rc;
    return inserted == 1 ? TK_APPLY_OK : TK_APPLY_SKIP;
}

static int apply_status(tk_tx_t *tx, const ev_envelope_t *env, ev_order_status_t status,
                        tk_err_t *err)
{
    ev_order_ref_t o;
    int rc = status == EV_ORDER_CANCELLED ? ev_order_cancelled_from_json(env->data, &o, err)
                                          : ev_order_completed_from_json(env->data, &o, err);
    if (rc != 0)
        return rc;
    char version[24];
    snprintf(version, sizeof(version), "%lld", (long long)o.version);
    const char *params[] = {o.id, ev_order_status_name(status), version};
    /* One row when the UPDATE changed the order (and queued its notification), none otherwise. */
    PGresult *res = tk_pg_exec_prepared(
        tk_tx_conn(tx),
        "WITH u AS (UPDATE order_view SET status = $2, version = $3::integer "
        "WHERE id = $1 AND version < $3::integer RETURNING id, status, version, expires_at) "
        "SELECT pg_notify('" TK_ORDERS_STATUS_CHANNEL "', json_build_object('id', id, "
        "'status', status, 'version', version, 'expiresAt', " TK_PG_UTC_TEXT(
            "expires_at") ")::text) "
                          "FROM u",
        3, params, err);
    if (res == NULL)
        return err->code;
    int updated = PQntuples(res);
    PQclear(res);
    return updated == 1 ? TK_APPLY_OK : TK_APPLY_SKIP;
}

static int view_apply(tk_tx_t *tx, const ev_envelope_t *env, void *ud, tk_err_t *err)
{
    (void)ud;
    if (strcmp(env->type, "order:created") == 0)
        return apply_created(tx, env, err);
    if (strcmp(env->type, "order:cancelled") == 0)
        return apply_status(tx, env, EV_ORDER_CANCELLED, err);
    if (strcmp(env->type, "order:completed") == 0)
        return apply_status(tx, env, EV_ORDER_COMPLETE, err);
    return TK_APPLY_SKIP;
}

static const char *const view_topics[] = {EV_TOPIC_ORDERS, NULL};
static const char *const view_tables[] = {"order_view", NULL};

const tk_projector_spec_t tk_orders_view_projector = {
    .context = "orders",
    .name = "order_view",
    .topics = view_topics,
    .apply = view_apply,
    .tables = view_tables,
};
