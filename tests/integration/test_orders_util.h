/*
 * test_orders_util.h - what the tickets and orders integration tests (test_tickets.c,
 * test_orders.c, test_orders_flow.c) share: running a context in-process in isolation from the
 * rest of the shared stack, and small HTTP/JSON helpers.
 *
 * Isolation: a context under test uses a private database (DATABASE_URL_<CONTEXT>, so relays of a
 * `ticketing run` or of other suites never take its outbox rows nor its relay lock), and its
 * projectors run under per-run names (so their consumer groups are this process's alone: no
 * foreign member owns a partition with other code or another gap timeout), positioned at the
 * current end of their topics (so nothing of the topics' history is replayed).
 */
#ifndef TEST_ORDERS_UTIL_H
#define TEST_ORDERS_UTIL_H

#include <jansson.h>
#include <stdbool.h>

#include "tk/ids.h"
#include "tk/context.h"
#include "tk/projector.h"
#include "tk_test.h"

/**
 * @brief Point @p context at the private database tk_<context>_itest (created when missing,
 *        migrated). Call after tk_test_require_stack, before any thread starts.
 */
void tko_private_database(const char *context);

/**
 * @brief Start @p ctx's relay and a private copy of each of its projectors (projections, then
 *        reactions): name "<name>_<run id>", offsets stored at the topics' current ends. Threads
 *        run until tko_stop_all. Fails the process on error.
 */
void tko_context_start(const tk_context_t *ctx);

/** @brief tko_context_start without the relay: the test runs (and stops) that one itself. */
void tko_projectors_start(const tk_context_t *ctx);

/** @brief Stop @p context's projector @p name ("reactions") as a crashed or stalled process
 *         would: its offsets stay in PostgreSQL. tko_projector_release starts it again from them.
 */
void tko_projector_hold(const char *context, const char *name);
void tko_projector_release(const char *context, const char *name);

/** @brief The private name given to projector @p name ("tickets_replica") in this run. Static. */
const char *tko_projection_name(const char *name);

/** @brief Stop and free every relay and projector tko_context_start started. */
void tko_stop_all(void);

/**
 * @brief The usual group setup of a context suite: the stack's environment and topics, then each
 *        of @p contexts (NULL-ended, borrowed) on its private database with its relay and
 *        projectors, then the test server with their routes. @return 0, or -1 with the reason
 *        printed.
 */
int tko_serve(const tk_context_t *const *contexts);

/** @brief The group teardown matching tko_serve (a cmocka fixture). */
int tko_teardown(void **state);

typedef struct tko_user {
    char id[TK_UUID_LEN + 1];
    char *cookie; /* owned: free() */
} tko_user_t;

/** @brief A made-up signed-in user (fresh UUID, fake session cookie). */
tko_user_t tko_user_new(void);

/**
 * @brief POST /api/orders for @p ticket_id as @p u, again while the answer is 404 (orders has not
 *        replicated the ticket yet), for up to @p timeout_ms. The last answer goes to @p out
 *        (release it); fails the test when the ticket never became known.
 */
void tko_order_when_known(const tko_user_t *u, const char *ticket_id, int timeout_ms,
                          tk_test_resp_t *out);

/** @brief Whether GET /api/tickets lists ticket @p id (a 200 with a bare array, or the test
 *         fails); tko_ticket_is_listed takes it as the @p arg of tk_test_eventually. */
bool tko_ticket_listed(const char *id);
bool tko_ticket_is_listed(void *id);

/**
 * @brief Wait up to @p timeout_ms until GET /api/orders/:id as @p u (NULL: anonymous) shows
 *        @p status and, when @p ticket_version >= 0, that version of the embedded ticket.
 * @return whether it did.
 */
bool tko_wait_order(const tko_user_t *u, const char *id, const char *status,
                    json_int_t ticket_version, int timeout_ms);

/**
 * @brief Wait up to @p timeout_ms until GET /api/tickets/:id shows @p version (when >= 0) and
 *        @p holder as its orderId ("" for a free ticket, NULL for any). @return whether it did.
 */
bool tko_wait_ticket(const char *id, json_int_t version, const char *holder, int timeout_ms);

/** @brief Publish payment:created for order @p order_id as the payments context would (a fresh
 *         payment id, Stripe id "pi_test_..."), as if its charge had just succeeded. */
void tko_publish_paid(const char *order_id);

/** @brief json_string_value of member @p key, NULL when absent. Borrowed. */
const char *tko_str(const json_t *obj, const char *key);

/** @brief json_integer_value of member @p key, 0 when absent. */
json_int_t tko_num(const json_t *obj, const char *key);

#endif
