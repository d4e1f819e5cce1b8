/*
 * replica.c - the version rules of a replica's row, written once for every replica (see
 * tk/replica.h): a creation event inserts the row at most once, a change applies only on top of
 * the version it was computed from, and a change that arrives before its predecessor is a gap the
 * projector retries, never applied over the wrong state nor dropped.
 */
#include "tk/replica.h"

#include <stdio.h>
#include <stdlib.h>

#include "tk/pg.h"
#include "tk/projector.h"

int tk_replica_insert(tk_tx_t *tx, const char *sql, int nparams, const char *const *params,
                      tk_err_t *err)
{
    int64_t inserted = 0;
    int rc = tk_pg_run_prepared(tk_tx_conn(tx), sql, nparams, params, &inserted, err);
    if (rc != 0)
        return rc;
    return inserted == 1 ? TK_APPLY_OK : TK_APPLY_SKIP;
}

int tk_replica_update(tk_tx_t *tx, const char *sql, int nparams, const char *const *params,
                      const char *table, const char *what, int64_t version, tk_err_t *err)
{
    PGconn *conn = tk_tx_conn(tx);
    int64_t updated = 0;
    int rc = tk_pg_run_prepared(conn, sql, nparams, params, &updated, err);
    if (rc != 0)
        return rc;
    if (updated == 1)
        return TK_APPLY_OK;
    /* No row moved: a redelivery (the row is at or past this version) or a gap. */
    char select[128];
    snprintf(select, sizeof(select), "SELECT version FROM %s WHERE id = $1", table);
    PGresult *res = tk_pg_exec_prepared(conn, select, 1, params, err);
    if (res == NULL)
        return err->code;
    int64_t stored = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
    PQclear(res);
    if (stored >= version)
        return TK_APPLY_SKIP;
    tk_err_set(err, TK_ECONFLICT, "version", "%s %s: replica at version %lld, event at %lld", what,
               params[0], (long long)stored, (long long)version);
    return TK_APPLY_RETRY;
}
