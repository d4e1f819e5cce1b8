/*
 * dead_letters.c - re-drive parked records through the projector's apply path (DESIGN.md section
 * 6, `ticketing dead-letters retry`).
 *
 * Per dead letter, in (topic, partition, offset) order:
 *
 *   BEGIN
 *     lock the row (FOR UPDATE SKIP LOCKED: gone or being retried elsewhere -> not ours)
 *     decode fails                          -> ROLLBACK, attempts + 1          (still poison)
 *     event id already in processed_events  -> DELETE the row, COMMIT         (applied before)
 *     apply: OK / SKIP                      -> DELETE the row, COMMIT
 *            RETRY or an error              -> ROLLBACK, attempts + 1, error, last_seen
 *
 * exactly as the live projector's savepoint does (backbone/projector.c): the effects, the
 * processed_events row and the removal of the dead letter commit together or not at all, so a
 * crash or a concurrent retry never applies a record twice. The live projector has moved past
 * the record's offset long ago, so nothing else applies it.
 *
 * Per-aggregate order: records of one aggregate share a Kafka key and so a partition; walking in
 * offset order and holding every later record of a key once one of its records failed means an
 * aggregate's parked events are applied in the order they were published, or not at all.
 */
#include "tk/dead_letters.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ev_envelope.h"
#include "tk/mem.h"
#include "tk/pg.h"
#include "tx_int.h"

typedef struct keys {
    char **v; /* owned */
    size_t n, cap;
} keys_t;

static bool keys_has(const keys_t *k, const char *key)
{
    for (size_t i = 0; i < k->n; i++)
        if (strcmp(k->v[i], key) == 0)
            return true;
    return false;
}

static void keys_add(keys_t *k, const char *key)
{
    if (keys_has(k, key))
        return;
    if (k->n == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 8;
        char **grown = tk_mem_zalloc(k->cap * sizeof(*grown));
        if (k->n)
            memcpy(grown, k->v, k->n * sizeof(*grown));
        free(k->v);
        k->v = grown;
    }
    k->v[k->n++] = tk_mem_strdup(key);
}

static void keys_free(keys_t *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->v[i]);
    free(k->v);
}

/* "hex digits" (from encode(x, 'hex')) -> bytes, NUL-terminated. Owned. */
static char *unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex) / 2;
    char *out = tk_mem_alloc(n + 1);
    for (size_t i = 0; i < n; i++) {
        unsigned v = 0;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (char)v;
    }
    out[n] = '\0';
    *len = n;
    return out;
}

/* After a failed try (the transaction is rolled back): count it and keep why. */
static int record_failure(PGconn *c, const char *id, const char *why, tk_err_t *err)
{
    char clean[512];
    size_t n = 0;
    for (const char *s = why; s && *s && n + 1 < sizeof(clean); s++)
        clean[n++] = (*s >= 0x20 && *s < 0x7f) ? *s : '?';
    clean[n] = '\0';
    const char *params[] = {id, clean};
    return tk_pg_run(c,
                     "UPDATE dead_letters SET attempts = attempts + 1, last_seen = now(), "
                     "error = 'retry: ' || $2 WHERE id = $1",
                     2, params, NULL, err);
}

typedef enum { TRY_APPLIED, TRY_FAILED, TRY_GONE } try_t;

/* One dead letter in its own transaction; *why gets the reason of a failure. */
static int try_one(PGconn *c, const tk_projector_spec_t *spec, PGresult *rows, int r,
                   try_t *outcome, char *why, size_t whysz, tk_err_t *err)
{
    const char *id = PQgetvalue(rows, r, 0);
    ev_envelope_t env = {0};
    tk_tx_t tx;
    tk_err_t derr = {0}, aerr = {0};
    size_t len = 0;
    char *payload = unhex(PQgetvalue(rows, r, 5), &len);
    int64_t n = 0;
    int rc = 0;

    *outcome = TRY_FAILED;
    if ((rc = tk_pg_begin(c, err)) != 0)
        goto out;
    const char *pid[] = {id};
    PGresult *lock = tk_pg_exec(
        c, "SELECT 1 FROM dead_letters WHERE id = $1 FOR UPDATE SKIP LOCKED", 1, pid, err);
    if (lock == NULL) {
        rc = err ? err->code : TK_EUNAVAIL;
        goto out;
    }
    bool mine = PQntuples(lock) == 1;
    PQclear(lock);
    if (!mine) {
        *outcome = TRY_GONE;
        goto out;
    }
    if (ev_envelope_decode(payload, len, &env, &derr) != 0) {
        snprintf(why, whysz, "undecodable: %s", derr.message);
        goto out;
    }
    const char *pe[] = {spec->name, env.id, PQgetvalue(rows, r, 1), PQgetvalue(rows, r, 2),
                        PQgetvalue(rows, r, 3)};
    if ((rc = tk_pg_run(c,
                        "INSERT INTO processed_events (projection, event_id, topic, partition, "
                        "\"offset\") VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                        5, pe, &n, err)) != 0)
        goto out;
    tk_tx__init(&tx, c, env.correlationid);
    if (n == 1) {
        int a = spec->apply(&tx, &env, spec->ud, &aerr);
        if (a == TK_APPLY_RETRY) {
            snprintf(why, whysz, "version gap: %s %s version %lld still waits", env.type,
                     env.subject, (long long)env.aggregateversion);
            goto out;
        }
        if (a != TK_APPLY_OK && a != TK_APPLY_SKIP) {
            snprintf(why, whysz, "apply failed: %s: %s", tk_err_name(a), aerr.message);
            if (tk_pg_broken(c))
                rc = tk_err_set(err, TK_EUNAVAIL, "", "database connection lost: %s", why);
            goto out;
        }
    }
    if ((rc = tk_pg_run(c, "DELETE FROM dead_letters WHERE id = $1", 1, pid, NULL, err)) != 0 ||
        (rc = tk_tx__commit(c, tk_tx_emitted(&tx), NULL, NULL, err)) != 0)
        goto out;
    *outcome = TRY_APPLIED;
out:
    if (*outcome != TRY_APPLIED)
        tk_pg_rollback(c, NULL);
    ev_envelope_release(&env);
    free(payload);
    return rc;
}

int tk_dead_letters_retry(const tk_projector_spec_t *spec, int64_t id,
                          tk_dead_letters_outcome_t *out, tk_err_t *err)
{
    tk_dead_letters_outcome_t counts = {0};
    keys_t held = {0};
    PGresult *rows = NULL;
    char idtext[24];
    int rc = 0;
    PGconn *c = tk_pg_connect(spec->context, err);
    if (c == NULL)
        return err ? err->code : TK_EUNAVAIL;

    snprintf(idtext, sizeof(idtext), "%lld", (long long)id);
    const char *params[] = {spec->name, idtext};
    rows = tk_pg_exec(c,
                      "SELECT id, topic, partition, \"offset\", encode(coalesce(key, ''), 'hex'), "
                      "encode(coalesce(payload, ''), 'hex') FROM dead_letters "
                      "WHERE projection = $1 AND ($2::bigint <= 0 OR id = $2::bigint) "
                      "ORDER BY topic, partition, \"offset\"",
                      2, params, err);
    if (rows == NULL) {
        rc = err ? err->code : TK_EUNAVAIL;
        goto out;
    }
    for (int r = 0; r < PQntuples(rows); r++) {
        const char *key = PQgetvalue(rows, r, 4);
        if (key[0] != '\0' && keys_has(&held, key)) {
            counts.held++;
            continue;
        }
        try_t outcome;
        char why[400] = "";
        if ((rc = try_one(c, spec, rows, r, &outcome, why, sizeof(why), err)) != 0)
            goto out;
        if (outcome == TRY_APPLIED) {
            counts.applied++;
        } else if (outcome == TRY_FAILED) {
            counts.failed++;
            if (key[0] != '\0')
                keys_add(&held, key);
            if ((rc = record_failure(c, PQgetvalue(rows, r, 0), why, err)) != 0)
                goto out;
        }
    }
out:
    if (out != NULL)
        *out = counts;
    PQclear(rows);
    PQfinish(c);
    keys_free(&held);
    return rc;
}
