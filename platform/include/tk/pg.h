/*
 * pg.h - blocking PostgreSQL access with the error contract (DESIGN.md sections 4 and 6).
 *
 * A connection belongs to one thread at a time: HTTP handlers run on worker threads with their own
 * connection, projectors and relays own theirs. Every failure is returned as a negative TK_E* code
 * with the server's detail in the caller's tk_err_t; nothing here prints. SQLSTATEs map as follows:
 *
 *   23505 unique_violation                 TK_ECONFLICT, err->field = the constraint's name
 *   40001 serialization_failure,
 *   40P01 deadlock_detected                TK_ECONFLICT, retryable (tk_pg_retryable() is true)
 *   class 08, 57P01..57P03, 53300, or
 *   the connection is gone                 TK_EUNAVAIL (drop the connection and reconnect)
 *   anything else                          TK_EINTERNAL with the server's message
 */
#ifndef TK_PG_H
#define TK_PG_H

#include <stdbool.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "tk/err.h"

/* SQL text of the timestamptz expression @p col (a string literal) in the contract's UTC format,
 * "YYYY-MM-DDTHH:MM:SS.mmmZ" (the one ev_json.c reads and tk_time_format writes). */
#define TK_PG_UTC_TEXT(col)                                                                        \
    "to_char(" col " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

/*
 * The err->field marker of a retryable conflict. A conflict is retryable when running the same
 * transaction again may succeed: a serialization failure, a deadlock, or an optimistic version
 * check that lost a race (see tk_command_stale in backbone's tk/command.h).
 */
#define TK_PG_RETRY_FIELD "$retry"

/**
 * @brief Connect to @p context's database ("auth", "tickets", "orders", "payments",
 *        "expiration"), located by tk_cfg_pg_params (DATABASE_URL_<CONTEXT> or DATABASE_URL with
 *        the database tk_<context>). Server notices are discarded, not printed.
 * @return the connection; NULL with TK_EUNAVAIL when the server is unreachable or refuses the
 *         connection, TK_EINVAL for an unknown context.
 * Ownership: owned, close with PQfinish. @p context borrowed.
 * Thread: any; the connection then belongs to one thread at a time.
 */
PGconn *tk_pg_connect(const char *context, tk_err_t *err);

/**
 * @brief Connect to the database named by DATABASE_URL itself (the server's own database), used
 *        to create the context databases.
 * Ownership: owned, close with PQfinish. Thread: any. Errors as tk_pg_connect.
 */
PGconn *tk_pg_connect_server(tk_err_t *err);

/**
 * @brief Run one statement with text parameters ($1..$n), extended protocol.
 * @param params borrowed, @p nparams strings (an element may be NULL for SQL NULL).
 * @return the result for PGRES_COMMAND_OK and PGRES_TUPLES_OK; NULL on failure with err set as
 *         described at the top of this file.
 * Ownership: the result is owned, free with PQclear; @p c, @p sql, @p params borrowed.
 * Thread: the connection's.
 */
PGresult *tk_pg_exec(PGconn *c, const char *sql, int nparams, const char *const *params,
                     tk_err_t *err);

/**
 * @brief tk_pg_exec for statements whose rows are not needed.
 * @param affected may be NULL; receives the number of rows the statement touched (PQcmdTuples).
 * @return 0 or the negative code of tk_pg_exec.
 * Ownership: all borrowed. Thread: the connection's.
 */
int tk_pg_run(PGconn *c, const char *sql, int nparams, const char *const *params, int64_t *affected,
              tk_err_t *err);

/**
 * @brief tk_pg_exec through a statement prepared on this connection the first time @p sql is seen
 *        (parse and plan once per connection, not per call). For fixed SQL texts only: at most 64
 *        texts per connection are kept, beyond that they run unprepared. Same errors.
 * Ownership: all borrowed; the result is owned (PQclear). Thread: the connection's.
 */
PGresult *tk_pg_exec_prepared(PGconn *c, const char *sql, int nparams, const char *const *params,
                              tk_err_t *err);

/**
 * @brief tk_pg_exec_prepared with some parameters in binary format (PQexecPrepared's
 *        @p lengths and @p formats: formats[i] 1 = binary, of lengths[i] bytes; 0 = text). The
 *        statement's SQL must fix each parameter's type (a cast: `$1::uuid[]`). Same errors.
 * Ownership: all borrowed; the result is owned (PQclear). Thread: the connection's.
 */
PGresult *tk_pg_exec_prepared_binary(PGconn *c, const char *sql, int nparams,
                                     const char *const *params, const int *lengths,
                                     const int *formats, tk_err_t *err);

/** @brief tk_pg_run through tk_pg_exec_prepared. Thread: the connection's. */
int tk_pg_run_prepared(PGconn *c, const char *sql, int nparams, const char *const *params,
                       int64_t *affected, tk_err_t *err);

/**
 * @brief Run a script of several statements separated by ';' (simple protocol, no parameters),
 *        e.g. a migration file. Same errors as tk_pg_exec.
 * Ownership: borrowed. Thread: the connection's.
 */
int tk_pg_run_script(PGconn *c, const char *sql, tk_err_t *err);

/**
 * @brief BEGIN. @return 0 or a negative TK_E* (TK_EUNAVAIL when the connection is lost).
 * Thread: the connection's (as tk_pg_commit and tk_pg_rollback).
 */
int tk_pg_begin(PGconn *c, tk_err_t *err);

/**
 * @brief BEGIN, sent with the next statement on @p c (tk_pg_exec*, tk_pg_run*, or the commit of
 *        tk_pg_commit_with) in one round trip instead of one of its own. A transaction in which
 *        nothing runs costs no round trip at all: its commit and rollback are no-ops.
 * Why: a command is BEGIN, a few statements and COMMIT; on a loaded machine each round trip is two
 *        context switches, so the commands' own round trips bound their rate.
 * Every statement of the transaction must go through this module (a raw PQexec would run outside
 *        it). Falls back to tk_pg_begin where the connection cannot keep the state.
 * @return 0, or as tk_pg_begin. Thread: the connection's.
 */
int tk_pg_begin_deferred(PGconn *c, tk_err_t *err);

/**
 * @brief COMMIT. A commit the server refuses (a deferred constraint, a serialization failure)
 *        returns its mapped error; the transaction is then rolled back. TK_EUNAVAIL means the
 *        connection broke during COMMIT: the outcome is unknown.
 */
int tk_pg_commit(PGconn *c, tk_err_t *err);

/** One NOTIFY for tk_pg_commit_notify: a channel and its payload (both borrowed). */
typedef struct tk_pg_notice {
    const char *channel;
    const char *payload; /* NULL: "" */
} tk_pg_notice_t;

/**
 * @brief COMMIT, then NOTIFY each of @p notices (n of them; 0: none), in one round trip: the
 *        notifications run in their own implicit transaction right after the commit.
 * Why not NOTIFY inside the transaction (a trigger): PostgreSQL makes a transaction that notifies
 *        hold a cluster-wide lock from pre-commit to its end, WAL flush included, so notifying
 *        commits run one at a time and group commit is lost (pgbench in the same run: about half
 *        the commits per second). A notification is a wake-up hint whose listeners also look on
 *        their own, so it may come after the commit is visible.
 * @return as tk_pg_commit: the COMMIT's outcome. A notification that fails afterwards is not the
 *         commit's failure (the transaction is durable) and is not reported.
 */
int tk_pg_commit_notify(PGconn *c, const tk_pg_notice_t *notices, int n, tk_err_t *err);

/** One statement for tk_pg_commit_with (all borrowed; prepared on the connection). */
typedef struct tk_pg_stmt {
    const char *sql;
    int nparams;
    const char *const *params;
} tk_pg_stmt_t;

/**
 * @brief Run @p stmts (n of them; 0: none), COMMIT, then NOTIFY each of @p notices, in one round
 *        trip (libpq's pipeline mode), preceded by a deferred BEGIN if one is pending. For writes
 *        whose outcome the transaction does not need before it commits (the outbox rows).
 * @return as tk_pg_commit: a statement's failure (then nothing is committed and the transaction
 *         waits for tk_pg_rollback) or the COMMIT's outcome. At most 18 statements and notices.
 * Ownership: all borrowed. Thread: the connection's.
 */
int tk_pg_commit_with(PGconn *c, const tk_pg_stmt_t *stmts, int nstmts,
                      const tk_pg_notice_t *notices, int nnotices, tk_err_t *err);

/**
 * @brief Run @p stmts (n of them, 1 to 19; prepared on the connection) in one round trip (libpq's
 *        pipeline mode), preceded by a deferred BEGIN if one is pending. The server runs them in
 *        order, each with its own snapshot as if sent one by one: a lock taken by one holds for the
 *        reads after it. For reads (and writes) a transaction needs together before it decides.
 * @param results n entries: on success results[i] is statement i's result (owned by the caller,
 *        PQclear each); on failure all are NULL.
 * @return 0, or the first failing statement's error as tk_pg_exec maps it (the transaction is
 *         then failed and waits for tk_pg_rollback). Thread: the connection's.
 */
int tk_pg_exec_all(PGconn *c, const tk_pg_stmt_t *stmts, int n, PGresult **results, tk_err_t *err);

/**
 * @brief ROLLBACK; a no-op when no transaction is open.
 * @param err may be NULL: rollback is usually called on a path that already carries an error.
 */
int tk_pg_rollback(PGconn *c, tk_err_t *err);

/** @brief True when @p err is a conflict worth retrying the whole transaction for. Pure. */
bool tk_pg_retryable(const tk_err_t *err);

/**
 * @brief True when @p c is NULL or broken: the caller should PQfinish it and reconnect.
 * Thread: the connection's.
 */
bool tk_pg_broken(const PGconn *c);

/**
 * @brief @p len bytes of @p data as a bytea literal in hex format ("\\x0a1b..."), for a text
 *        parameter of a bytea column. Ownership: owned, free with free(); @p data borrowed.
 */
char *tk_pg_bytea_hex(const void *data, size_t len);

/**
 * @brief Keep *@p conn usable: when it is NULL or broken (tk_pg_broken), close it and connect
 *        to @p context's database again (tk_pg_connect).
 * @return 0 with *@p conn connected; else the code of the failed connect, *@p conn NULL.
 * Ownership: *@p conn stays the caller's (close with PQfinish). Thread: the connection's.
 */
int tk_pg_ensure(PGconn **conn, const char *context, tk_err_t *err);

/**
 * @brief Map a SQLSTATE to a TK_E* code and fill @p err; the pure core of the error mapping,
 *        exposed for callers holding a PGresult from elsewhere and for unit tests.
 * @param sqlstate borrowed, may be NULL (no server error: a client-side or connection failure).
 * @param constraint borrowed, may be NULL; @param message borrowed, the server's primary message.
 * @param connection_ok false when the connection is known to be broken.
 * @return the code stored in @p err (which may be NULL).
 * Thread: any; pure.
 */
int tk_pg_error_map(const char *sqlstate, const char *constraint, const char *message,
                    bool connection_ok, tk_err_t *err);

#endif
