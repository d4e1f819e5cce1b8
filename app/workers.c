/*
 * workers.c - background threads of a process: one outbox relay per context database and one
 * thread per projector. Each loops until tk_app_stop; a thread whose component cannot start
 * (database or broker down) retries with a capped backoff instead of exiting, so a process
 * started before its dependencies comes up by itself.
 */
#include "app.h"
#include "tk/backoff.h"
#include "tk/log.h"
#include "tk/mem.h"
#include "tk/relay.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_THREADS 32

struct job {
    const tk_context_t *ctx;
    const tk_projector_spec_t *spec; /* NULL: the context's relay */
    pthread_t tid;
};

struct tk_app_workers {
    struct job jobs[MAX_THREADS];
    size_t n;
};

static void *job_main(void *arg)
{
    struct job *j = arg;
    tk_backoff_t delay;
    tk_backoff_init(&delay, 200, 5000);
    while (!tk_app_stop) {
        tk_err_t err = {0};
        if (j->spec == NULL) {
            tk_relay_t *relay = tk_relay_new(j->ctx->database, &err);
            if (relay != NULL) {
                tk_backoff_reset(&delay);
                tk_relay_run(relay, &tk_app_stop);
                tk_relay_free(relay);
                continue;
            }
        } else {
            tk_projector_t *p = tk_projector_new(j->spec, &err);
            if (p != NULL) {
                tk_backoff_reset(&delay);
                tk_projector_run(p, &tk_app_stop);
                tk_projector_free(p);
                continue;
            }
        }
        tk_log(TK_LOG_WARN, "workers", "cannot start, retrying",
               "\"context\":\"%s\",\"component\":\"%s\",\"error\":\"%s\"", j->ctx->name,
               j->spec ? j->spec->name : "relay", err.message);
        tk_nap(tk_backoff_next(&delay), &tk_app_stop);
    }
    return NULL;
}

static void add(tk_app_workers_t *w, const tk_context_t *ctx, bool relays, bool projectors)
{
    if (relays && ctx->has_outbox && w->n < MAX_THREADS)
        w->jobs[w->n++] = (struct job){.ctx = ctx};
    const tk_projector_spec_t *s;
    for (size_t i = 0; projectors && (s = tk_context_projector(ctx, i)) != NULL; i++)
        if (w->n < MAX_THREADS)
            w->jobs[w->n++] = (struct job){.ctx = ctx, .spec = s};
}

tk_app_workers_t *tk_app_workers_start(const tk_context_t *ctx, bool relays, bool projectors,
                                       tk_err_t *err)
{
    tk_app_workers_t *w = tk_mem_zalloc(sizeof(*w));
    if (ctx != NULL) {
        add(w, ctx, relays, projectors);
    } else {
        for (const tk_context_t *const *c = tk_app_contexts(); *c != NULL; c++)
            add(w, *c, relays, projectors);
    }
    for (size_t i = 0; i < w->n; i++)
        pthread_create(&w->jobs[i].tid, NULL, job_main, &w->jobs[i]);
    return w;
}

void tk_app_workers_join(tk_app_workers_t *w)
{
    if (w == NULL)
        return;
    for (size_t i = 0; i < w->n; i++)
        pthread_join(w->jobs[i].tid, NULL);
    free(w);
}
