/*
 * http_lanes.c - the worker pool: worker routes run on threads that may block on PostgreSQL,
 * grouped in lanes, each worker with its own database connections.
 *
 * Why a worker pool rather than libpq's async API on the loop: every command is a short
 * transaction of several dependent statements (load, decide, write, outbox) and the projector,
 * relay and tests share the same blocking tk_pg helpers. Running those on N workers keeps one
 * way of talking to PostgreSQL, and the loop thread still never waits on the network: it only
 * parses, routes, and copies bytes. The cost is one hand-off per request (a mutex + condvar in,
 * an h2o multithread message out), measured in bench/.
 *
 * Bounded work (DESIGN.md section 12). Worker routes are queued to a lane: one per context,
 * named by the route's "/api/<lane>/" prefix ("system" for the rest), each with its own queue and
 * workers, so scrypt in auth or Stripe in payments only ever delays its own context. A lane's
 * queue holds at most HTTP_QUEUE_MAX requests: past that the answer is 503 + Retry-After. Every
 * request handed to a worker is on srv->pending (loop thread) and gets a deadline
 * (HTTP_DEADLINE_MS). Every REAP_MS the loop (on_reap) answers 503 to the requests past their
 * deadline, and takes out of the queues the requests whose client has gone (a peek at the
 * socket sees its FIN), so a worker never runs them. A request answered early stays owned by
 * its worker until on_done, which then only frees it:
 *
 *   on_req --enqueue()--> queued --worker_main()--> running --on_done()--> finish() --> freed
 *   queued  --on_reap(): deadline or client gone, unlinked--> answer_early() --> freed
 *   running --on_reap(): deadline--> answer_early() (answered) --on_done()--> freed
 *
 * A worker handler may instead park the request (tk_http_park, e.g. a query waiting for its
 * client's consistency token): once the handler returned, the worker hands the request to the
 * park's callback and takes the next job; whoever holds it later calls tk_http_resume, which
 * queues it to its lane again, and its handler runs again from the start. A waiting request
 * therefore holds no worker thread, only its memory.
 *
 * Databases: a worker keeps one connection per context it used (tk_http_db), checked before each
 * use and replaced when broken. worker_drop is the one way they go: tk_http_db_discard (one
 * context, or all after tk_http_reply_error with TK_EUNAVAIL) and the worker's exit.
 */
#include "http_int.h"

#include "tk/ids.h"
#include "tk/log.h"
#include "tk/mem.h"
#include "tk/pg.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* ------------------------------------------------------------------ database per worker */

/*
 * A pooled connection between requests has nothing to read. Input there means the server spoke
 * on its own: almost always a FATAL before closing it (a restart, pg_terminate_backend), which
 * libpq only notices at the next query - failing that request with "connection lost". So any
 * input or hang-up on an idle connection (polled without waiting) makes it replaced.
 */
static bool idle_and_open(PGconn *c)
{
    struct pollfd p = {.fd = PQsocket(c), .events = POLLIN};
    return p.fd >= 0 && poll(&p, 1, 0) == 0;
}

PGconn *tk_http_db(tk_http_req_t *r, const char *context, tk_err_t *err)
{
    struct worker *w = r->worker;
    if (w == NULL) {
        tk_err_set(err, TK_EINTERNAL, NULL, "database used from an inline route");
        return NULL;
    }
    size_t i;
    for (i = 0; i < MAX_CONTEXT_CONNS && w->conn_names[i] != NULL; i++)
        if (strcmp(w->conn_names[i], context) == 0)
            break;
    if (i == MAX_CONTEXT_CONNS) {
        tk_err_set(err, TK_EINTERNAL, NULL, "too many databases for one worker");
        return NULL;
    }
    if (w->conns[i] != NULL && PQstatus(w->conns[i]) == CONNECTION_OK && idle_and_open(w->conns[i]))
        return w->conns[i];
    PQfinish(w->conns[i]); /* broken or dropped by the server: replaced below */
    w->conns[i] = NULL;
    /* tk_pg_connect: the connect and statement timeouts and keepalives of every connection. */
    tk_err_t cerr = {0};
    PGconn *c = tk_pg_connect(context, &cerr);
    if (c == NULL) {
        tk_log(TK_LOG_WARN, "http", "database unavailable", "\"context\":\"%s\",\"error\":\"%s\"",
               context, cerr.message);
        tk_err_set(err, cerr.code == TK_EUNAVAIL ? TK_EUNAVAIL : TK_EINTERNAL, NULL,
                   "Service unavailable");
        return NULL;
    }
    w->conn_names[i] = context;
    w->conns[i] = c;
    return c;
}

/* The one way a worker's connections go: @p context's, or all of them when NULL. */
static void worker_drop(struct worker *w, const char *context)
{
    for (size_t i = 0; w != NULL && i < MAX_CONTEXT_CONNS && w->conn_names[i] != NULL; i++) {
        if (context == NULL || strcmp(w->conn_names[i], context) == 0) {
            PQfinish(w->conns[i]);
            w->conns[i] = NULL;
        }
    }
}

void tk_http_db_discard(tk_http_req_t *r, const char *context)
{
    worker_drop(r->worker, context);
}

/* ------------------------------------------------------------------ workers */

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    tk_http_server_t *srv = w->srv;
    struct lane *lane = w->lane;
    for (;;) {
        pthread_mutex_lock(&lane->mu);
        while (h2o_linklist_is_empty(&lane->queue) && !lane->stopping)
            pthread_cond_wait(&lane->cv, &lane->mu);
        if (h2o_linklist_is_empty(&lane->queue)) {
            pthread_mutex_unlock(&lane->mu);
            break;
        }
        tk_http_req_t *r = H2O_STRUCT_FROM_MEMBER(tk_http_req_t, qlink, lane->queue.next);
        h2o_linklist_unlink(&r->qlink);
        lane->queued--;
        pthread_mutex_unlock(&lane->mu);

        r->worker = w;
        r->route->fn(r);
        r->worker = NULL;
        if (r->park_then != NULL && !r->replied) {
            /* Parked (tk_http_park): from now on the request belongs to whoever then() gives
             * it to, until tk_http_resume queues it again. Called only once the handler
             * returned, so no other thread can see the request while this one still does. */
            void (*then)(tk_http_req_t *, void *) = r->park_then;
            r->park_then = NULL;
            then(r, r->park_arg);
            continue;
        }
        r->park_then = NULL;
        h2o_multithread_send_message(&srv->done, &r->msg);
    }
    worker_drop(w, NULL);
    return NULL;
}

void tk_http__on_done(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m =
            H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&m->link);
        tk_http__finish((tk_http_req_t *)m);
    }
}

/* Loop thread: hand @p r to its lane, or answer 503 when the lane's queue is full. */
void tk_http__enqueue(tk_http_server_t *srv, tk_http_req_t *r)
{
    struct lane *lane = &srv->lanes[r->route->lane];
    pthread_mutex_lock(&lane->mu);
    bool full = lane->queued >= srv->limits.queue_max;
    if (!full) {
        h2o_linklist_insert(&lane->queue, &r->qlink);
        lane->queued++;
        h2o_linklist_insert(&srv->pending, &r->plink);
        pthread_cond_signal(&lane->cv);
    }
    pthread_mutex_unlock(&lane->mu);
    if (full) {
        tk_http__answer_early(r, 503, "Server busy, try again later", "queue_full");
        tk_http__request_free(r);
    }
}

/* The client of a queued request has gone: its FIN (or a reset) is waiting on the socket. */
static bool client_gone(int fd)
{
    if (fd < 0)
        return false;
    char c;
    ssize_t n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* Every REAP_MS: deadlines, and queued requests whose client has gone (see the top). */
void tk_http__on_reap(h2o_timeout_entry_t *entry)
{
    tk_http_server_t *srv = H2O_STRUCT_FROM_MEMBER(tk_http_server_t, reap_entry, entry);
    int64_t now = tk_mono_ms();
    h2o_linklist_t *n = srv->pending.next;
    while (n != &srv->pending) {
        tk_http_req_t *r = H2O_STRUCT_FROM_MEMBER(tk_http_req_t, plink, n);
        n = n->next;
        if (r->answered)
            continue;
        bool late = now >= r->deadline_ms;
        bool gone = !late && (r->h2o == NULL || client_gone(r->fd));
        if (!late && !gone)
            continue;
        struct lane *lane = &srv->lanes[r->route->lane];
        pthread_mutex_lock(&lane->mu);
        bool queued = h2o_linklist_is_linked(&r->qlink);
        if (queued) {
            h2o_linklist_unlink(&r->qlink);
            lane->queued--;
        }
        pthread_mutex_unlock(&lane->mu);
        if (late)
            tk_http__answer_early(r, 503, "The request took too long, try again later", "deadline");
        else if (queued)
            tk_http__answer_early(r, 503, "Client gone", "client_gone");
        if (queued) { /* no worker will see it: it is the loop's to free */
            h2o_linklist_unlink(&r->plink);
            tk_http__request_free(r);
        }
    }
    h2o_timeout_link(srv->loop, &srv->reap_timeout, &srv->reap_entry);
}

/* Any thread: a parked request goes back to its lane. It is still on the loop's pending list
 * (only finish takes it off), so the reaper keeps watching its deadline; unlike enqueue, the
 * lane's bound does not apply: the request was admitted when it arrived. */
void tk_http_resume(tk_http_req_t *r)
{
    r->resumes++;
    struct lane *lane = &r->srv->lanes[r->route->lane];
    pthread_mutex_lock(&lane->mu);
    h2o_linklist_insert(&lane->queue, &r->qlink);
    lane->queued++;
    pthread_cond_signal(&lane->cv);
    pthread_mutex_unlock(&lane->mu);
}

/* The lane of a worker route: "/api/<name>/..." -> <name>, anything else -> "system". */
int tk_http__lane_of(tk_http_server_t *srv, const char *pattern)
{
    char name[LANE_NAME_MAX] = "system";
    if (strncmp(pattern, "/api/", 5) == 0) {
        size_t len = strcspn(pattern + 5, "/:");
        if (len > 0 && len < sizeof(name))
            snprintf(name, sizeof(name), "%.*s", (int)len, pattern + 5);
    }
    for (size_t i = 0; i < srv->nlanes; i++)
        if (strcmp(srv->lanes[i].name, name) == 0)
            return (int)i;
    if (srv->nlanes == MAX_LANES)
        abort(); /* a programming error caught at start-up */
    struct lane *lane = &srv->lanes[srv->nlanes];
    snprintf(lane->name, sizeof(lane->name), "%s", name);
    pthread_mutex_init(&lane->mu, NULL);
    pthread_cond_init(&lane->cv, NULL);
    h2o_linklist_init_anchor(&lane->queue);
    lane->nworkers = strcmp(name, "system") == 0 && srv->nworkers > SYSTEM_LANE_WORKERS
                         ? SYSTEM_LANE_WORKERS
                         : srv->nworkers;
    return (int)srv->nlanes++;
}

void tk_http__lanes_start(tk_http_server_t *srv)
{
    for (size_t i = 0; i < srv->nlanes; i++) {
        struct lane *lane = &srv->lanes[i];
        if (lane->started)
            continue;
        lane->started = true;
        lane->workers = tk_mem_zalloc(sizeof(struct worker) * (size_t)lane->nworkers);
        for (int k = 0; k < lane->nworkers; k++) {
            lane->workers[k].srv = srv;
            lane->workers[k].lane = lane;
            pthread_create(&lane->workers[k].tid, NULL, worker_main, &lane->workers[k]);
        }
    }
}

/* Stop every lane's workers once their queues are empty, and wait for them. Idempotent. */
void tk_http__lanes_stop(tk_http_server_t *srv)
{
    for (size_t i = 0; i < srv->nlanes; i++) {
        struct lane *lane = &srv->lanes[i];
        pthread_mutex_lock(&lane->mu);
        lane->stopping = true;
        pthread_cond_broadcast(&lane->cv);
        pthread_mutex_unlock(&lane->mu);
    }
    for (size_t i = 0; i < srv->nlanes; i++) {
        struct lane *lane = &srv->lanes[i];
        for (int k = 0; lane->started && k < lane->nworkers; k++)
            pthread_join(lane->workers[k].tid, NULL);
        lane->started = false;
    }
}
