/*
 * app.h - the subcommands of the `ticketing` binary (DESIGN.md section 2) and the table of
 * bounded contexts they start. Private to app/.
 */
#ifndef TK_APP_H
#define TK_APP_H

#include <stdbool.h>

#include "tk/context.h"
#include "tk/http.h"
#include "tk/projector.h"

/** @brief The context called @p name, or NULL. */
const tk_context_t *tk_app_context_find(const char *name);
/** @brief Contexts in start order; NULL-terminated. */
const tk_context_t *const *tk_app_contexts(void);

/** @brief Set by SIGINT/SIGTERM; every long-running subcommand polls it. */
extern volatile int tk_app_stop;
void tk_app_install_signals(void);

int tk_app_serve(int argc, char **argv);
/** @brief Register /readyz probes for what @p ctx's routes depend on (its database). */
void tk_app_readiness(tk_http_server_t *srv, const tk_context_t *ctx);
/** @brief Register a /readyz probe of the broker (KAFKA_BROKERS answers a metadata request). */
void tk_app_readiness_kafka(tk_http_server_t *srv);
int tk_app_migrate(int argc, char **argv);
int tk_app_topics(int argc, char **argv);
int tk_app_project(int argc, char **argv);
int tk_app_relay(int argc, char **argv);
int tk_app_run(int argc, char **argv);
int tk_app_expire(int argc, char **argv);
/* The tools of DESIGN.md section 2: replay.c, tail.c, status.c. */
int tk_app_replay(int argc, char **argv);
int tk_app_events(int argc, char **argv);
int tk_app_status(int argc, char **argv);
/* dead_letters.c: list, show, retry, drop the parked records of the projectors. */
int tk_app_dead_letters(int argc, char **argv);

/* metrics.c: dead-letter depth and consumer lag on GET /metrics, sampled by a thread. */
typedef struct tk_app_metrics tk_app_metrics_t;
/** @brief Sample the contexts (or only @p only) every 5 s into @p srv's /metrics; NULL when no
 *         broker handle could be made. Stops with tk_app_stop; free with tk_app_metrics_stop
 *         after the server stopped. */
tk_app_metrics_t *tk_app_metrics_start(tk_http_server_t *srv, const tk_context_t *only);
void tk_app_metrics_stop(tk_app_metrics_t *m);

/* A set of background threads (relays, projectors, the scheduler) sharing tk_app_stop. */
typedef struct tk_app_workers tk_app_workers_t;

/** @brief Start the relays (@p relays) and/or projectors (@p projectors) of @p ctx, or of every
 *         context when @p ctx is NULL. Owned, stop and free with tk_app_workers_join. */
tk_app_workers_t *tk_app_workers_start(const tk_context_t *ctx, bool relays, bool projectors,
                                       tk_err_t *err);
/** @brief Wait for every thread (they stop when tk_app_stop is set) and free. Accepts NULL. */
void tk_app_workers_join(tk_app_workers_t *w);

#endif
