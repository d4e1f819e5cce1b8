/*
 * migrate.h - `ticketing migrate`: create the context databases and apply the SQL migrations
 * compiled into the binary (schemas/sql/common/NNN_name.sql to every context database, then
 * schemas/sql/<context>/NNN_name.sql), each exactly once, recorded in schema_migrations.
 */
#ifndef TK_MIGRATE_H
#define TK_MIGRATE_H

#include "tk/err.h"

/**
 * @brief Create every missing context database tk_<context> on DATABASE_URL's server (skipped for
 *        a context whose DATABASE_URL_<CONTEXT> is set: that database is the operator's), then
 *        tk_migrate_context for auth, tickets, orders, payments and expiration. Idempotent, and
 *        safe to run from several processes at once (a concurrent creator is tolerated; appliers
 *        serialise on an advisory lock).
 * @return 0; TK_EUNAVAIL when the server is unreachable; TK_EINTERNAL with the failing file's name
 *         in err->field and the server's message when a migration fails (that context's database
 *         is then left exactly as before the call).
 * Ownership: nothing to free. Thread: any; blocking.
 */
int tk_migrate_all(tk_err_t *err);

/**
 * @brief Apply, in one transaction under pg_advisory_xact_lock, the migrations of @p context
 *        ("tickets", ...) not yet listed in its database's schema_migrations: common/ first, then
 *        <context>/, each in file-name order. Files must be transactional SQL (no BEGIN/COMMIT,
 *        no CREATE INDEX CONCURRENTLY). The database must exist.
 * @param context borrowed. @param applied may be NULL; receives how many files were applied.
 * @return 0, TK_EINVAL for an unknown context, or the errors of tk_migrate_all.
 * Ownership: all borrowed. Thread: any; blocking.
 */
int tk_migrate_context(const char *context, int *applied, tk_err_t *err);

#endif
