/*
 * tx_int.h - the tk_tx_t struct, shared by the modules that open transactions (command.c,
 * projector.c) so they can keep one on the stack; everyone else sees the opaque type.
 */
#ifndef TK_TX_INT_H
#define TK_TX_INT_H

#include "tk/tx.h"

struct tk_tx {
    PGconn *conn;            /* borrowed, inside an open transaction */
    char correlation_id[64]; /* stamped on emitted events */
    int emitted;             /* events written to the outbox so far */
};

/* Point tx at conn with correlation_id (NULL or "" allowed; truncated to 63 bytes). */
void tk_tx__init(tk_tx_t *tx, PGconn *conn, const char *correlation_id);

/* The channel the relay LISTENs on: a commit that wrote outbox rows notifies it. */
#define TK_TX_OUTBOX_CHANNEL "outbox"

/* COMMIT the transaction of conn and, in the same round trip, wake whoever waits for it: the
 * relay when @p emitted > 0 (rows in the outbox), and the queries waiting for a consistency token
 * when @p projection (borrowed, may be NULL) stored offsets. Notifying after the commit, not from
 * a trigger inside it: see tk_pg_commit_notify. Returns the COMMIT's outcome. */
int tk_tx__commit(PGconn *conn, int emitted, const char *projection, tk_err_t *err);

#endif
