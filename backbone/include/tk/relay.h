/*
 * relay.h - the outbox relay (DESIGN.md section 4): publishes the committed rows of one context
 * database's `outbox` to Kafka, in commit order per aggregate, and deletes them once acked.
 * One relay is active per database (an advisory lock); others wait as hot standbys.
 *
 * Fault hook (tests only, read from the environment at tk_relay_new):
 *   TK_FAULT_RELAY_EXIT_AFTER_ACK=1  the process calls _exit(137) right after a batch was acked
 *                                     and before its rows are deleted (a crash between ack and
 *                                     delete: the rows are published again after a restart).
 */
#ifndef TK_RELAY_H
#define TK_RELAY_H

#include "tk/err.h"

typedef struct tk_relay tk_relay_t;

/**
 * @brief A relay for @p context's database ("tickets", ...). Creates the producer; connects to
 *        PostgreSQL lazily (tk_relay_run reconnects whenever needed).
 * @param context borrowed (copied).
 * @return the relay; NULL with TK_EINVAL for an unknown context or TK_EINTERNAL when the producer
 *         cannot be created.
 * Ownership: owned, free with tk_relay_free. Thread: then used by one thread at a time.
 */
tk_relay_t *tk_relay_new(const char *context, tk_err_t *err);

/**
 * @brief Relay until *@p stop becomes non-zero: take the advisory lock (retry every second while
 *        another relay holds it), LISTEN outbox, drain, wait for a notification (at most 1 s),
 *        repeat. Database and broker failures are logged and retried with backoff.
 * @param stop borrowed; set it from another thread or a signal handler (checked every 100 ms).
 * @return 0 once stopped.
 * Thread: one caller at a time; blocking.
 */
int tk_relay_run(tk_relay_t *r, volatile int *stop);

/**
 * @brief One drain (tests and tools): take the lock if not held, then publish batches of
 *        committed rows until the outbox is empty or a delivery fails.
 * @param published may be NULL; receives the number of rows acked and deleted.
 * @return 0; TK_ECONFLICT when another relay holds the database's lock (nothing published);
 *         TK_EUNAVAIL when PostgreSQL or a delivery failed (the unacked rows stay).
 * Thread: one caller at a time; blocking (up to the producer's 30 s delivery timeout).
 */
int tk_relay_drain_once(tk_relay_t *r, int *published, tk_err_t *err);

/**
 * @brief Flush the producer, release the lock and the connection, free. Accepts NULL.
 * Thread: not while tk_relay_run runs (stop it first).
 */
void tk_relay_free(tk_relay_t *r);

#endif
