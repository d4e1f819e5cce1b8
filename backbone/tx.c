/*
 * tx.c - the transaction handle and the outbox writer.
 *
 * tk_tx_emit is the only way an event enters the system: it builds the envelope with the events
 * library (so nothing its consumers would reject is ever written), encodes it once, and inserts
 * the exact bytes into `outbox` in the caller's transaction. The relay later publishes those
 * bytes unchanged, with topic and headers computed here, so the relay needs no knowledge of event
 * types. The row commits or rolls back with the state change that caused it (DESIGN.md section 4:
 * no event is published that was not committed; no committed event is left unpublished).
 */
#include "tx_int.h"

#include <stdio.h>
#include <stdlib.h>

#include "ev_catalog.h"
#include "ev_envelope.h"
#include "tk/consistency.h"
#include "tk/kafka.h"
#include "tk/pg.h"

void tk_tx__init(tk_tx_t *tx, PGconn *conn, const char *correlation_id)
{
    tx->conn = conn;
    snprintf(tx->correlation_id, sizeof(tx->correlation_id), "%s",
             correlation_id ? correlation_id : "");
    tx->emitted = 0;
    tx->defer = false;
    tx->held = 0;
}

void tk_tx__init_deferred(tk_tx_t *tx, PGconn *conn, const char *correlation_id)
{
    tk_tx__init(tx, conn, correlation_id);
    tx->defer = true;
}

/* The wake-ups of a commit: the relay when events were emitted, the consistency waiters of
 * @p projection (may be NULL) when it stored offsets. Returns how many were filled in. */
static int commit_notices(int emitted, const char *projection, tk_pg_notice_t notices[2])
{
    int n = 0;
    if (emitted > 0)
        notices[n++] = (tk_pg_notice_t){TK_TX_OUTBOX_CHANNEL, NULL};
    if (projection != NULL)
        notices[n++] = (tk_pg_notice_t){TK_CONSISTENCY_CHANNEL, projection};
    return n;
}

/* A read-model batch (offsets stored, nothing emitted) need not wait for its WAL flush: if
 * PostgreSQL loses it in a crash, its effects, processed_events rows and offsets are lost
 * together, and the projector applies the same records again from Kafka: a late delivery, which
 * every projection already handles. A batch that emitted events waits: the relay could publish
 * them before the flush, and a redo would emit them again with new ids. */
static const tk_pg_stmt_t NO_FLUSH_WAIT = {"SET LOCAL synchronous_commit TO off", 0, NULL};

int tk_tx__commit(PGconn *conn, int emitted, const char *projection, const tk_pg_stmt_t *last,
                  tk_err_t *err)
{
    tk_pg_notice_t notices[2];
    int n = commit_notices(emitted, projection, notices);
    tk_pg_stmt_t stmts[2];
    int nstmts = 0;
    if (last != NULL)
        stmts[nstmts++] = *last;
    if (emitted == 0 && projection != NULL)
        stmts[nstmts++] = NO_FLUSH_WAIT;
    return tk_pg_commit_with(conn, stmts, nstmts, notices, n, err);
}

#define OUTBOX_INSERT                                                                              \
    "INSERT INTO outbox (topic, key, payload, headers) VALUES ($1, $2, $3, $4::jsonb)"

int tk_tx__commit_deferred(tk_tx_t *tx, tk_err_t *err)
{
    tk_pg_stmt_t stmts[TK_TX_DEFERRED_MAX];
    const char *params[TK_TX_DEFERRED_MAX][4];
    for (int i = 0; i < tx->held; i++) {
        tk_tx_row_t *row = &tx->held_rows[i];
        params[i][0] = row->topic;
        params[i][1] = row->key;
        params[i][2] = row->payload;
        params[i][3] = row->headers;
        stmts[i] = (tk_pg_stmt_t){OUTBOX_INSERT, 4, params[i]};
    }
    tk_pg_notice_t notices[2];
    int rc = tk_pg_commit_with(tx->conn, stmts, tx->held, notices,
                               commit_notices(tx->emitted, NULL, notices), err);
    tk_tx__discard(tx);
    return rc;
}

void tk_tx__discard(tk_tx_t *tx)
{
    for (int i = 0; i < tx->held; i++) {
        free(tx->held_rows[i].payload);
        free(tx->held_rows[i].headers);
    }
    tx->held = 0;
}

PGconn *tk_tx_conn(tk_tx_t *tx)
{
    return tx->conn;
}

int tk_tx_emitted(const tk_tx_t *tx)
{
    return tx->emitted;
}

int tk_tx_emit(tk_tx_t *tx, const char *type, const char *subject, int64_t aggregateversion,
               json_t *data, tk_err_t *err)
{
    int rc = 0;
    ev_envelope_t env = {0};
    char *payload = NULL, *headers = NULL;
    json_t *h = NULL;
    const char *topic = NULL;
    char schemaversion[16];

    /* ev_envelope_init consumes data in every case. */
    if ((rc = ev_envelope_init(&env, type, subject, aggregateversion, tx->correlation_id, data,
                               err)) != 0)
        goto out;
    if ((topic = ev_topic_of(env.type)) == NULL) {
        rc = tk_err_set(err, TK_EINVAL, "type", "event type %s has no topic", env.type);
        goto out;
    }
    if ((rc = ev_envelope_encode(&env, &payload, NULL, err)) != 0)
        goto out;
    int version = ev_envelope_schema_version(&env);
    if (version < 0) {
        rc = tk_err_set(err, TK_EINTERNAL, "dataschema", "no schema version for %s", env.type);
        goto out;
    }
    snprintf(schemaversion, sizeof(schemaversion), "%d", version);
    h = json_pack("{s:s, s:s, s:s}", TK_KAFKA_H_TYPE, env.type, TK_KAFKA_H_ID, env.id,
                  TK_KAFKA_H_SCHEMAVERSION, schemaversion);
    if (h == NULL || (headers = json_dumps(h, JSON_COMPACT)) == NULL) {
        rc = tk_err_set(err, TK_EINTERNAL, "headers", "cannot encode the headers of %s", env.type);
        goto out;
    }
    if (tx->defer && tx->held < TK_TX_DEFERRED_MAX) { /* written in the commit's round trip */
        tk_tx_row_t *row = &tx->held_rows[tx->held++];
        row->topic = topic;
        snprintf(row->key, sizeof(row->key), "%s", env.subject);
        row->payload = payload;
        row->headers = headers;
        payload = headers = NULL;
        tx->emitted++;
        goto out;
    }
    const char *params[] = {topic, env.subject, payload, headers};
    /* Prepared once per connection; the relay is woken after the commit (tk_tx__commit), so an
     * event costs this one round trip. */
    if ((rc = tk_pg_run_prepared(tx->conn, OUTBOX_INSERT, 4, params, NULL, err)) != 0)
        goto out;
    tx->emitted++;
out:
    json_decref(h);
    free(headers);
    free(payload);
    ev_envelope_release(&env);
    return rc;
}
