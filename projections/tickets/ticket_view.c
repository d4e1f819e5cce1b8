/*
 * ticket_view.c - the tickets read model: applies ticket:created and ticket:updated from topic
 * `tickets` to ticket_view (the latest state of each ticket) and ticket_history (every event).
 *
 * Why by version rather than by arrival: ticket events carry the ticket's whole state, so the
 * view keeps the state of the highest version seen (an upsert guarded by `version < excluded`),
 * and the history keeps one row per version (ON CONFLICT DO NOTHING). Applying an event twice,
 * or an old one after a new one, therefore changes nothing, which is what `ticketing replay`
 * needs to rebuild both tables from offset 0, and what makes a record the relay published twice
 * harmless even before the loop's event-id dedupe.
 */
#include "tickets_read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ev_catalog.h"
#include "ev_ticket.h"
#include "tk/pg.h"

static int view_apply(tk_tx_t *tx, const ev_envelope_t *env, void *ud, tk_err_t *err)
{
    (void)ud;
    ev_ticket_t t;
    int rc = 0;
    char *text = NULL;
    int64_t changed = 0, added = 0;

    if (strcmp(env->type, "ticket:created") == 0)
        rc = ev_ticket_created_from_json(env->data, &t, err);
    else if (strcmp(env->type, "ticket:updated") == 0)
        rc = ev_ticket_updated_from_json(env->data, &t, err);
    else
        return TK_APPLY_SKIP;
    if (rc != 0)
        goto out;

    char cents[24], version[24];
    snprintf(cents, sizeof(cents), "%lld", (long long)t.price_cents);
    snprintf(version, sizeof(version), "%lld", (long long)t.version);
    const char *view[] = {t.id,    t.title,  cents, t.user_id, t.order_id[0] ? t.order_id : NULL,
                          version, env->time};
    if ((rc = tk_pg_run(tk_tx_conn(tx),
                        "INSERT INTO ticket_view AS v (id, title, price_cents, user_id, order_id, "
                        "version, created_at) VALUES ($1, $2, $3::bigint, $4, $5, $6::integer, "
                        "$7::timestamptz) ON CONFLICT (id) DO UPDATE SET title = excluded.title, "
                        "price_cents = excluded.price_cents, user_id = excluded.user_id, "
                        "order_id = excluded.order_id, version = excluded.version "
                        "WHERE v.version < excluded.version",
                        7, view, &changed, err)) != 0)
        goto out;

    if ((rc = ev_envelope_encode(env, &text, NULL, err)) != 0)
        goto out;
    const char *history[] = {t.id, version, env->id, env->type, text};
    if ((rc = tk_pg_run(tk_tx_conn(tx),
                        "INSERT INTO ticket_history (ticket_id, version, event_id, type, envelope) "
                        "VALUES ($1, $2::integer, $3, $4, $5) ON CONFLICT DO NOTHING",
                        5, history, &added, err)) != 0)
        goto out;
    rc = changed + added > 0 ? TK_APPLY_OK : TK_APPLY_SKIP;
out:
    free(text);
    return rc;
}

static const char *const view_topics[] = {EV_TOPIC_TICKETS, NULL};
static const char *const view_tables[] = {"ticket_view", "ticket_history", NULL};

const tk_projector_spec_t tk_tickets_view_projector = {
    .context = "tickets",
    .name = "ticket_view",
    .topics = view_topics,
    .apply = view_apply,
    .tables = view_tables,
};
