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

/* One life of a job: make its relay or projector (the database or broker may be down) and run
 * it until tk_app_stop. Once made, the next failure waits the first delay again. */
static int job_life(void *arg, volatile int *stop, tk_backoff_t *delay, tk_err_t *err)
{
    struct job *j = arg;
    if (j->spec == NULL) {
        tk_relay_t *relay = tk_relay_new(j->ctx->database, err);
        if (relay == NULL)
            return err->code != 0 ? err->code : TK_EINTERNAL;
        tk_backoff_reset(delay);
        tk_relay_run(relay, stop);
        tk_relay_free(relay);
        return 0;
    }
    tk_projector_t *p = tk_projector_new(j->spec, err);
    if (p == NULL)
        return err->code != 0 ? err->code : TK_EINTERNAL;
    tk_backoff_reset(delay);
    tk_projector_run(p, stop);
    tk_projector_free(p);
    return 0;
}

static void job_failed(void *arg, const tk_err_t *err)
{
    struct job *j = arg;
    tk_log(TK_LOG_WARN, "workers", "cannot start, retrying",
           "\"context\":\"%s\",\"component\":\"%s\",\"error\":\"%s\"", j->ctx->name,
           j->spec ? j->spec->name : "relay", err->message);
}

static void *job_main(void *arg)
{
    tk_backoff_t delay;
    tk_backoff_init(&delay, 200, 5000);
    tk_supervise(job_life, job_failed, arg, &delay, &tk_app_stop);
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
