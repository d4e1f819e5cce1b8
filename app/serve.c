/*
 * serve.c - `ticketing serve <context>|all`: one HTTP server with the routes of the chosen
 * contexts, and a readiness probe per context database. The probes are shared with `run`
 * (tk_app_readiness, from the context descriptors), which also probes the broker its relays and
 * projectors use: every process that serves HTTP answers /readyz from what it depends on.
 */
#include "app.h"
#include "tk/cfg.h"
#include "tk/kafka.h"
#include "tk/consistency.h"
#include "tk/log.h"
#include "tk/static.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KAFKA_PROBE_TIMEOUT_MS 2000

/* One producer handle for the process's probes (librdkafka handles are thread-safe); created on
 * first use, kept until exit. The broker answers a metadata request, or it is unavailable. */
static pthread_mutex_t kafka_mu = PTHREAD_MUTEX_INITIALIZER;
static rd_kafka_t *kafka_probe_rk;

static int probe_kafka(tk_http_req_t *req, void *ud, tk_err_t *err)
{
    (void)req;
    (void)ud;
    pthread_mutex_lock(&kafka_mu);
    if (kafka_probe_rk == NULL)
        kafka_probe_rk = tk_kafka_producer_new(err);
    rd_kafka_t *rk = kafka_probe_rk;
    pthread_mutex_unlock(&kafka_mu);
    if (rk == NULL)
        return err->code;
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t rc = rd_kafka_metadata(rk, 0, NULL, &md, KAFKA_PROBE_TIMEOUT_MS);
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    if (rc != RD_KAFKA_RESP_ERR_NO_ERROR)
        return tk_err_set(err, TK_EUNAVAIL, NULL, "broker unavailable: %s", rd_kafka_err2str(rc));
    return 0;
}

void tk_app_readiness_kafka(tk_http_server_t *srv)
{
    tk_http_readiness(srv, "kafka", probe_kafka, NULL);
}

void tk_app_readiness(tk_http_server_t *srv, const tk_context_t *ctx)
{
    for (size_t i = 0; ctx->probes != NULL && ctx->probes[i].name != NULL; i++)
        tk_http_readiness(srv, ctx->probes[i].name, ctx->probes[i].fn, ctx->probes[i].ud);
}

static void add_context(tk_http_server_t *srv, const tk_context_t *ctx)
{
    tk_context_add_routes(ctx, srv);
    tk_app_readiness(srv, ctx);
}

int tk_app_serve(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: ticketing serve auth|tickets|orders|payments|all\n");
        return 2;
    }
    const char *which = argv[1];
    const tk_context_t *one = NULL;
    if (strcmp(which, "all") != 0 && (one = tk_app_context_find(which)) == NULL) {
        fprintf(stderr, "ticketing serve: unknown context '%s'\n", which);
        return 2;
    }
    tk_err_t err = {0};
    tk_http_server_t *srv = tk_http_server_new(tk_cfg()->port, tk_cfg()->http_workers, &err);
    if (srv == NULL) {
        fprintf(stderr, "ticketing serve: %s\n", err.message);
        return 1;
    }
    if (one != NULL) {
        add_context(srv, one);
    } else {
        for (const tk_context_t *const *c = tk_app_contexts(); *c != NULL; c++)
            add_context(srv, *c);
    }
    /* Every server carries the storefront: the ingress sends / to any of them. */
    if (tk_static_routes(srv, getenv("STRIPE_PUBLISHABLE_KEY"), &err) != 0) {
        fprintf(stderr, "ticketing serve: %s\n", err.message);
        tk_http_server_free(srv);
        return 1;
    }
    tk_app_metrics_t *metrics = tk_app_metrics_start(srv, one);
    tk_http_server_run(srv, &tk_app_stop);
    tk_consistency_shutdown(); /* parked queries answer before the workers stop */
    tk_app_metrics_stop(metrics);
    tk_http_server_free(srv);
    tk_log(TK_LOG_INFO, "serve", "stopped", NULL);
    return 0;
}
