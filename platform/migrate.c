/*
 * migrate.c - database creation and migrations compiled into the binary.
 *
 * Why embedded: a deployed `ticketing` must migrate without a source tree, so the build turns
 * schemas/sql/<dir>/NNN_name.sql into the table tk_migrate__files (cmake/TkEmbedSql.cmake).
 *
 * Invariants:
 * - A migration file is applied at most once per database: its name ("common/001_backbone.sql")
 *   is inserted into schema_migrations in the same transaction as its statements, so a crash
 *   leaves either both or neither.
 * - Two migrators never race: each takes pg_advisory_xact_lock(MIGRATE_LOCK) in its transaction
 *   before reading schema_migrations, so the second one waits and then finds everything applied.
 *   Database creation cannot run in a transaction; it is serialised by a session advisory lock
 *   on the server's own database, and a concurrent creator's "already exists" (42P04, or 23505
 *   on pg_database's unique index) counts as success.
 * - All files of one context are applied in one transaction: a failure leaves the database as it
 *   was, and the error names the file.
 */
#include "tk/migrate.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "migrate_int.h"
#include "tk/cfg.h"
#include "tk/log.h"
#include "tk/pg.h"

#define MIGRATE_LOCK "7605298350474201665" /* arbitrary 64-bit key, "tkmigr8" */

/* The contexts are the folders of schemas/sql/ other than common/ (a context's descriptor names
 * its folder, tk/context.h): adding a context adds its folder, no list to edit here. The i-th
 * context folder in the sorted table, or NULL past the last. */
static const char *context_dir(size_t i)
{
    const char *prev = NULL;
    for (size_t f = 0; f < tk_migrate__nfiles; f++) {
        const char *dir = tk_migrate__files[f].dir;
        if (strcmp(dir, "common") == 0 || (prev != NULL && strcmp(prev, dir) == 0))
            continue;
        if (i-- == 0)
            return dir;
        prev = dir;
    }
    return NULL;
}

static bool known_context(const char *context)
{
    for (size_t i = 0; context_dir(i) != NULL; i++)
        if (strcmp(context_dir(i), context) == 0)
            return true;
    return false;
}

/* CREATE DATABASE dbname unless it exists; a concurrent creator's success is ours too. */
static int ensure_database(PGconn *server, const char *dbname, tk_err_t *err)
{
    int rc = 0;
    char *ident = NULL;
    char sql[256];
    PGresult *res = NULL;
    const char *params[] = {dbname};

    if ((res = tk_pg_exec(server, "SELECT 1 FROM pg_database WHERE datname = $1", 1, params,
                          err)) == NULL) {
        rc = err ? err->code : TK_EINTERNAL;
        goto out;
    }
    if (PQntuples(res) == 1)
        goto out;
    PQclear(res);
    res = NULL;
    if ((ident = PQescapeIdentifier(server, dbname, strlen(dbname))) == NULL) {
        rc = tk_err_set(err, TK_EINTERNAL, "dbname", "cannot quote %s", dbname);
        goto out;
    }
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s", ident);
    res = PQexec(server, sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        if (state != NULL && (strcmp(state, "42P04") == 0 || strcmp(state, "23505") == 0))
            goto out;
        rc = tk_pg_error_map(state, NULL, PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY),
                             PQstatus(server) == CONNECTION_OK, err);
        goto out;
    }
    tk_log(TK_LOG_INFO, "migrate", "database created", "\"database\":\"%s\"", dbname);
out:
    PQclear(res);
    if (ident)
        PQfreemem(ident);
    return rc;
}

static int create_databases(tk_err_t *err)
{
    int rc = 0;
    bool locked = false;
    PGconn *server = tk_pg_connect_server(err);
    if (server == NULL)
        return err ? err->code : TK_EUNAVAIL;
    if ((rc = tk_pg_run(server, "SELECT pg_advisory_lock(" MIGRATE_LOCK ")", 0, NULL, NULL, err)))
        goto out;
    locked = true;
    for (size_t i = 0; context_dir(i) != NULL; i++) {
        const char *keys[3], *vals[3];
        if (tk_cfg_pg_params(context_dir(i), keys, vals) != 0)
            continue;
        if (keys[1] == NULL) /* DATABASE_URL_<CONTEXT>: the operator's database */
            continue;
        if ((rc = ensure_database(server, vals[1], err)) != 0)
            goto out;
    }
out:
    if (locked)
        tk_pg_run(server, "SELECT pg_advisory_unlock(" MIGRATE_LOCK ")", 0, NULL, NULL, NULL);
    PQfinish(server);
    return rc;
}

/* Apply file f unless schema_migrations lists it; *applied counts the files run. */
static int apply_file(PGconn *c, const tk_migrate__file_t *f, int *applied, tk_err_t *err)
{
    int rc = 0;
    char name[160];
    snprintf(name, sizeof(name), "%s/%s", f->dir, f->name);
    const char *params[] = {name};
    PGresult *res =
        tk_pg_exec(c, "SELECT 1 FROM schema_migrations WHERE name = $1", 1, params, err);
    if (res == NULL)
        return err ? err->code : TK_EINTERNAL;
    bool done = PQntuples(res) == 1;
    PQclear(res);
    if (done)
        return 0;
    if ((rc = tk_pg_run_script(c, f->sql, err)) != 0) {
        /* Keep the server's message, name the file. */
        if (err != NULL)
            snprintf(err->field, sizeof(err->field), "%.63s", name);
        return rc;
    }
    if ((rc = tk_pg_run(c, "INSERT INTO schema_migrations (name) VALUES ($1)", 1, params, NULL,
                        err)) != 0)
        return rc;
    (*applied)++;
    tk_log(TK_LOG_INFO, "migrate", "migration applied", "\"file\":\"%s\"", name);
    return 0;
}

int tk_migrate_context(const char *context, int *applied, tk_err_t *err)
{
    int rc = 0, n = 0;
    PGconn *c = NULL;
    if (context == NULL || !known_context(context))
        return tk_err_set(err, TK_EINVAL, "context", "unknown context '%s'",
                          context ? context : "");
    if ((c = tk_pg_connect(context, err)) == NULL)
        return err ? err->code : TK_EUNAVAIL;
    if ((rc = tk_pg_begin(c, err)) != 0 ||
        (rc = tk_pg_run(c, "SELECT pg_advisory_xact_lock(" MIGRATE_LOCK ")", 0, NULL, NULL, err)) !=
            0 ||
        (rc = tk_pg_run(c,
                        "CREATE TABLE IF NOT EXISTS schema_migrations ("
                        " name text PRIMARY KEY,"
                        " applied_at timestamptz NOT NULL DEFAULT now())",
                        0, NULL, NULL, err)) != 0)
        goto out;
    /* The table is sorted by dir then name: common/ first, then the context's own dir. */
    for (int pass = 0; pass < 2; pass++) {
        const char *dir = pass == 0 ? "common" : context;
        for (size_t i = 0; i < tk_migrate__nfiles; i++) {
            if (strcmp(tk_migrate__files[i].dir, dir) != 0)
                continue;
            if ((rc = apply_file(c, &tk_migrate__files[i], &n, err)) != 0)
                goto out;
        }
    }
    rc = tk_pg_commit(c, err);
out:
    if (rc != 0)
        tk_pg_rollback(c, NULL);
    PQfinish(c);
    if (applied != NULL)
        *applied = rc == 0 ? n : 0;
    return rc;
}

int tk_migrate_all(tk_err_t *err)
{
    int rc = create_databases(err);
    for (size_t i = 0; rc == 0 && context_dir(i) != NULL; i++)
        rc = tk_migrate_context(context_dir(i), NULL, err);
    return rc;
}
