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

#endif
