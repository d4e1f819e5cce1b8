/*
 * tx.h - the transaction handle given to command bodies and projector apply functions: the
 * connection with an open transaction, the correlation id, and tk_tx_emit, which writes an event
 * into the outbox of that same transaction (DESIGN.md section 4), so the event is published if and
 * only if the transaction commits.
 */
#ifndef TK_TX_H
#define TK_TX_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdint.h>

#include "tk/err.h"

typedef struct tk_tx tk_tx_t;

/**
 * @brief The connection, inside an open transaction owned by tk_command_run or the projector.
 * Ownership: borrowed, valid during the body/apply call; never BEGIN, COMMIT or ROLLBACK on it
 *            (SAVEPOINTs of your own are fine).
 * Thread: the transaction's (the thread running the body or apply).
 */
PGconn *tk_tx_conn(tk_tx_t *tx);

/**
 * @brief Build an event envelope (ev_envelope_init: fresh id, now, this transaction's correlation
 *        id), encode it and insert it into `outbox` with topic ev_topic_of(type), key = @p subject
 *        and the headers ce_type, ce_id, ce_schemaversion.
 * @param type, subject borrowed; @p subject is the aggregate id (a UUID) and the Kafka key.
 * @param aggregateversion the aggregate's version after this event.
 * Ownership: @p data consumed, even on failure; the rest borrowed.
 * @return 0; TK_EINVAL when the envelope is invalid (err names the member); a tk_pg_exec error
 *         when the insert fails (the transaction is then aborted: return the error).
 * Thread: the transaction's.
 */
int tk_tx_emit(tk_tx_t *tx, const char *type, const char *subject, int64_t aggregateversion,
               json_t *data, tk_err_t *err);

/** @brief Number of events emitted so far in this transaction. Thread: the transaction's. */
int tk_tx_emitted(const tk_tx_t *tx);

#endif
