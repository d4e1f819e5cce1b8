/*
 * command.h - the one write pipeline of every context (DESIGN.md section 4): BEGIN, the command's
 * body (load state, decide, write with an optimistic check, tk_tx_emit the events), COMMIT, with
 * bounded retries when the transaction lost a race.
 */
#ifndef TK_COMMAND_H
#define TK_COMMAND_H

#include <libpq-fe.h>

#include "tk/err.h"
#include "tk/http.h"
#include "tk/tx.h"

/* Attempts of one command before a retryable conflict is returned to the caller. */
#define TK_COMMAND_MAX_ATTEMPTS 5

/**
 * A command body: runs inside the transaction; returns 0 to commit or a negative TK_E* (with err
 * set) to roll back. It may run several times (see tk_command_run), so it must not have effects
 * outside the transaction, and must write its state before it emits.
 */
typedef int tk_command_body_t(tk_tx_t *tx, void *arg, tk_err_t *err);

/**
 * @brief Run @p body in one transaction on @p conn and commit it.
 *
 * On a retryable conflict (tk_pg_retryable: 40001, 40P01, or tk_command_stale from the body's
 * optimistic check) the transaction is rolled back and the whole body runs again, at most
 * TK_COMMAND_MAX_ATTEMPTS times with a small jittered backoff; after that TK_ECONFLICT is
 * returned. Every other error (TK_EINVAL, TK_ENOTFOUND, a unique violation the body returned as
 * is or translated, ...) rolls back and is returned at once.
 *
 * @param conn idle (no open transaction); @param correlation_id the request id stamped on
 *        emitted events (NULL: a fresh UUID); @param arg passed to body.
 * Ownership: all borrowed. A failing call with no usable connection never calls @p body.
 * @return 0 when committed: the emitted events WILL reach Kafka through the relay. TK_EUNAVAIL
 *         when the connection broke (if during COMMIT, the outcome is unknown): PQfinish it and
 *         reconnect. Otherwise the body's error, with err as the body set it.
 * Thread: the connection's.
 */
int tk_command_run(PGconn *conn, const char *correlation_id, tk_command_body_t *body, void *arg,
                   tk_err_t *err);

/**
 * @brief tk_command_run for a REST command: on the worker's connection to the database of the
 *        request's route (tk_http_route_ud, a database name), with the request id as the
 *        correlation id. Worker routes only.
 * @return 0 when committed; else the error with err set, for the caller to reply.
 */
int tk_command_run_for(tk_http_req_t *req, tk_command_body_t *body, void *arg, tk_err_t *err);

/**
 * @brief For a body whose optimistic check (`UPDATE ... WHERE id = $1 AND version = $2`)
 *        touched 0 rows: record a retryable TK_ECONFLICT so tk_command_run runs the body again.
 * @param aggregate, id borrowed, for the message ("ticket 0b1f... changed concurrently").
 * @return TK_ECONFLICT. Thread: any; pure.
 */
int tk_command_stale(tk_err_t *err, const char *aggregate, const char *id);

/**
 * @brief A body's write of its aggregate's new state with the optimistic check: @p sql is an
 *        `UPDATE ... version = version + 1 WHERE id = $1 AND version = $2`, with @p nparams
 *        @p params (params[0] the aggregate's id), as a prepared statement (a hot path). No row
 *        updated is tk_command_stale.
 * @param aggregate borrowed, for the conflict's message ("ticket", "order").
 * @return 0; TK_ECONFLICT (retryable) when another transaction moved the row first; another
 *         negative TK_E* with err set. Thread: the transaction's.
 */
int tk_command_write(tk_tx_t *tx, const char *sql, int nparams, const char *const *params,
                     const char *aggregate, tk_err_t *err);

/**
 * @brief A reaction's apply result (tk/projector.h) from the result of the command it ran:
 *        1 (the command changed its aggregate) TK_APPLY_OK; 0 (already done: a no-op) and
 *        TK_ENOTFOUND (an aggregate that is not ours) TK_APPLY_SKIP, with err cleared; any other
 *        negative code as it is (the batch fails).
 * Thread: any; pure.
 */
int tk_command_reaction_result(int rc, tk_err_t *err);

#endif
