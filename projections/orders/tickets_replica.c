/*
 * tickets_replica.c - orders' replica of the tickets context (DESIGN.md section 5, last bullet),
 * fed from topic `tickets`.
 *
 * The replica follows every version of every ticket, in order:
 *
 *   ticket:created (v0)   insert; a ticket already there is a duplicate   -> OK | SKIP
 *   ticket:updated (v)    stored == v - 1: apply                           -> OK
 *                         stored >= v:     a duplicate or stale            -> SKIP
 *                         stored <  v - 1, or no row yet: a gap            -> RETRY
 *
 * On RETRY the projector loop holds the record back and tries again with backoff, and after
 * tk_cfg()->gap_timeout_ms it dead-letters it with an alert: an update is never silently
 * dropped, and never applied over a state it was not computed from. Version order matters
 * because the replica is what POST /api/orders prices and embeds.
 */
#include "orders_read.h"

#include <stdio.h>
#include <string.h>

#include "ev_catalog.h"
#include "ev_ticket.h"
#include "tk/replica.h"

static int apply_created(tk_tx_t *tx, const ev_ticket_t *t, tk_err_t *err)
{
    char cents[24];
    snprintf(cents, sizeof(cents), "%lld", (long long)t->price_cents);
    const char *params[] = {t->id, t->title, cents};
    return tk_replica_insert(tx,
                             "INSERT INTO tickets_replica (id, title, price_cents, version) "
                             "VALUES ($1, $2, $3::bigint, 0) ON CONFLICT (id) DO NOTHING",
                             3, params, err);
}

static int apply_updated(tk_tx_t *tx, const ev_ticket_t *t, tk_err_t *err)
{
    char cents[24], version[24];
    snprintf(cents, sizeof(cents), "%lld", (long long)t->price_cents);
    snprintf(version, sizeof(version), "%lld", (long long)t->version);
    const char *params[] = {t->id, t->title, cents, version};
    return tk_replica_update(tx,
                             "UPDATE tickets_replica SET title = $2, price_cents = $3::bigint, "
                             "version = $4::integer WHERE id = $1 AND version = $4::integer - 1",
                             4, params, "tickets_replica", "ticket", t->version, err);
}

static int replica_apply(tk_tx_t *tx, const ev_envelope_t *env, void *ud, tk_err_t *err)
{
    (void)ud;
    ev_ticket_t t;
    int rc;
    if (strcmp(env->type, "ticket:created") == 0) {
        if ((rc = ev_ticket_created_from_json(env->data, &t, err)) != 0)
            return rc;
        return apply_created(tx, &t, err);
    }
    if (strcmp(env->type, "ticket:updated") == 0) {
        if ((rc = ev_ticket_updated_from_json(env->data, &t, err)) != 0)
            return rc;
        return apply_updated(tx, &t, err);
    }
    return TK_APPLY_SKIP;
}

static const char *const replica_topics[] = {EV_TOPIC_TICKETS, NULL};
static const char *const replica_tables[] = {"tickets_replica", NULL};

const tk_projector_spec_t tk_orders_replica_projector = {
    .context = "orders",
    .name = "tickets_replica",
    .topics = replica_topics,
    .apply = replica_apply,
    .tables = replica_tables,
};
