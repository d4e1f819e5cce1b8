/*
 * tx_int.h - the tk_tx_t struct, shared by the modules that open transactions (command.c,
 * projector.c) so they can keep one on the stack; everyone else sees the opaque type.
 */
#ifndef TK_TX_INT_H
#define TK_TX_INT_H

#include "tk/pg.h"
#include "tk/tx.h"

#include <stdbool.h>

#define TK_TX_DEFERRED_MAX 8 /* outbox rows held for the commit; more are inserted at once */

/* An outbox row waiting for tk_tx__commit_deferred. */
typedef struct tk_tx_row {
    const char *topic; /* static (the events catalog's) */
    char key[40];
    char *payload; /* owned */
    char *headers; /* owned */
} tk_tx_row_t;

struct tk_tx {
    PGconn *conn;            /* borrowed, inside an open transaction */
    char correlation_id[64]; /* stamped on emitted events */
    int emitted;             /* events emitted so far (written or held) */
    bool defer;              /* hold outbox rows for tk_tx__commit_deferred */
    int held;                /* rows in held_rows */
    tk_tx_row_t held_rows[TK_TX_DEFERRED_MAX];
};

/* Point tx at conn with correlation_id (NULL or "" allowed; truncated to 63 bytes). Outbox rows
 * are inserted as they are emitted. */
void tk_tx__init(tk_tx_t *tx, PGconn *conn, const char *correlation_id);

/* tk_tx__init for a transaction that ends with tk_tx__commit_deferred (or tk_tx__discard): its
 * outbox rows (up to TK_TX_DEFERRED_MAX) are held and written in the commit's round trip. */
void tk_tx__init_deferred(tk_tx_t *tx, PGconn *conn, const char *correlation_id);

/* Write the held rows, COMMIT, and wake the relay when anything was emitted, in one round trip
 * (tk_pg_commit_with). Frees the held rows whatever happens; on failure the caller rolls back. */
int tk_tx__commit_deferred(tk_tx_t *tx, tk_err_t *err);

/* Free the held rows of a transaction that will not commit. */
void tk_tx__discard(tk_tx_t *tx);

/* The channel the relay LISTENs on: a commit that wrote outbox rows notifies it. */
#define TK_TX_OUTBOX_CHANNEL "outbox"

/* Run @p last (borrowed, may be NULL: the statement whose outcome the transaction does not need
 * before it commits, e.g. a projector's offsets), COMMIT the transaction of conn and, in the same
 * round trip, wake whoever waits for it: the relay when @p emitted > 0 (rows in the outbox), and
 * the queries waiting for a consistency token when @p projection (borrowed, may be NULL) stored
 * offsets. Notifying after the commit, not from a trigger inside it: see tk_pg_commit_notify. A
 * projector's batch that emitted nothing commits without waiting for its WAL flush
 * (synchronous_commit off, DESIGN.md section 6). Returns the COMMIT's outcome. */
int tk_tx__commit(PGconn *conn, int emitted, const char *projection, const tk_pg_stmt_t *last,
                  tk_err_t *err);

#endif
