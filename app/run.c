/*
 * run.c - `ticketing run`: the whole system in one process, the local default. Every context's
 * routes share one port; every relay, projector and context worker (the expiration scheduler)
 * run as threads.
 * SIGINT/SIGTERM set tk_app_stop: the server drains in-flight requests, each worker finishes
 * its current batch (a projector commits or rolls back, a relay stops after its acks), then the
 * process exits 0.
 */
#include "app.h"
#include "tk/backoff.h"
#include "tk/cfg.h"
#include "tk/consistency.h"
#include "tk/log.h"
#include "tk/static.h"

#include <pthread.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_CONTEXT_WORKERS 8

/* A context's own worker (tk_context_t.worker), restarted with a capped backoff when it fails. */
static int context_worker_life(void *arg, volatile int *stop, tk_backoff_t *delay, tk_err_t *err)
{
    (void)delay;
    const tk_context_t *ctx = arg;
    return ctx->worker(stop, err);
}

static void context_worker_failed(void *arg, const tk_err_t *err)
{
    const tk_context_t *ctx = arg;
    tk_log(TK_LOG_WARN, "run", "context worker failed, restarting",
           "\"context\":\"%s\",\"error\":\"%s\"", ctx->name, err->message);
}

static void *context_worker_main(void *arg)
{
    tk_backoff_t delay;
    tk_backoff_init(&delay, 200, 5000);
    tk_supervise(context_worker_life, context_worker_failed, arg, &delay, &tk_app_stop);
    return NULL;
}

int tk_app_run(int argc, char **argv)
{
    tk_err_t err = {0};
    tk_http_server_t *srv = tk_http_server_new(tk_cfg()->port, tk_cfg()->http_workers, &err);
    if (srv == NULL) {
        fprintf(stderr, "ticketing run: %s\n", err.message);
        return 1;
    }
    /* The same probes as `serve`, plus the broker that the relays and projectors use. */
    for (const tk_context_t *const *c = tk_app_contexts(); *c != NULL; c++) {
        tk_context_add_routes(*c, srv);
        tk_app_readiness(srv, *c);
    }
    tk_app_readiness_kafka(srv);
    if (tk_static_routes(srv, getenv("STRIPE_PUBLISHABLE_KEY"), &err) != 0) {
        fprintf(stderr, "ticketing run: %s\n", err.message);
        tk_http_server_free(srv);
        return 1;
    }
    tk_app_workers_t *workers = tk_app_workers_start(NULL, true, true, &err);
    pthread_t own[MAX_CONTEXT_WORKERS];
    size_t nown = 0;
    for (const tk_context_t *const *c = tk_app_contexts(); *c != NULL; c++)
        if ((*c)->worker != NULL && nown < MAX_CONTEXT_WORKERS)
            pthread_create(&own[nown++], NULL, context_worker_main, (void *)*c);

    printf("ticketing is up: the storefront on http://localhost:%d/ (API: curl "
           "localhost:%d/api/tickets)\n",
           tk_http_server_port(srv), tk_http_server_port(srv));
    fflush(stdout);
    tk_app_metrics_t *metrics = tk_app_metrics_start(srv, NULL);
    tk_http_server_run(srv, &tk_app_stop);
    tk_consistency_shutdown(); /* parked queries answer before the workers stop */
    tk_app_metrics_stop(metrics);

    for (size_t i = 0; i < nown; i++)
        pthread_join(own[i], NULL);
    tk_app_workers_join(workers);
    tk_http_server_free(srv);
    tk_log(TK_LOG_INFO, "run", "stopped", NULL);
    return 0;
}
