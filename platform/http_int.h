/*
 * http_int.h - what the parts of the HTTP front share (platform/http*.c); not for other modules.
 *
 *   http.c          the server: listener and connection bound, h2o setup, life cycle, route and
 *                   probe registration, background threads, /healthz and /readyz
 *   http_request.c  a request: copied from h2o on arrival, routed, its accessors and replies,
 *                   and sent back (finish, answer_early) with its access-log line
 *   http_lanes.c    the worker pool: a lane per context, the reaper of deadlines and gone clients,
 *                   parking, and each worker's database connections
 *   http_sse.c      server-sent event streams and their limits
 *   http_metrics.c  GET /metrics: the server's counters and the registered sources
 *
 * Threads: fields are the loop thread's unless marked (under a lock, atomic, or per worker).
 * Names shared between the files take the tk_http__ prefix.
 */
#ifndef TK_HTTP_INT_H
#define TK_HTTP_INT_H

#include "tk/http.h"

#include <h2o.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#define MAX_ROUTES 64
#define MAX_PARAMS 4
#define MAX_PROBES 8
#define MAX_COOKIES 4
#define MAX_CONTEXT_CONNS 5
#define MAX_BACKGROUND 4
#define MAX_METRICS 4
#define MAX_LANES 8
#define LANE_NAME_MAX 24
#define SYSTEM_LANE_WORKERS 2
#define REAP_MS 100
#define ACCEPT_RETRY_MS 100
#define MAX_QUERY_VALUES 8
#define SSE_CHANNEL_MAX 80
#define SSE_PING_MS 15000
#define MAX_EXTRA_HEADERS 8
#define RETRY_AFTER_S 1

/* Request headers copied when a request arrives (h2o's request belongs to the loop thread, so a
 * worker reads these copies): tk_http__copied_headers[i] is kept in tk_http_req.headers[i]. */
enum {
    TK_HTTP__COOKIE,
    TK_HTTP__AUTHORIZATION,
    TK_HTTP__CONTENT_TYPE,
    TK_HTTP__FORWARDED_FOR,
    TK_HTTP__REAL_IP,
    TK_HTTP__SIGNATURE,
    TK_HTTP__CONSISTENCY_TOKEN,
    TK_HTTP__HEADERS
};
extern const char *const tk_http__copied_headers[TK_HTTP__HEADERS];

struct route {
    const char *method;
    const char *pattern;
    tk_http_handler_fn fn;
    unsigned flags;
    int lane; /* worker routes: index in srv->lanes */
    void *ud; /* borrowed: tk_http_route_ud */
};

struct probe {
    const char *name;
    tk_http_probe_fn *fn;
    void *ud; /* borrowed */
};

struct lane;

struct worker {
    tk_http_server_t *srv;
    struct lane *lane;
    pthread_t tid;
    const char *conn_names[MAX_CONTEXT_CONNS];
    PGconn *conns[MAX_CONTEXT_CONNS];
};

/* A context's queue and workers: its slow calls never hold another lane's requests. */
struct lane {
    char name[LANE_NAME_MAX];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    h2o_linklist_t queue; /* tk_http_req_t.qlink, under mu */
    int queued;           /* under mu */
    bool stopping;        /* under mu */
    struct worker *workers;
    int nworkers;
    bool started;
};

/* A reserved event stream: counted against the limits from tk_http_reply_sse until disposed. */
struct sse_slot {
    bool used;
    char user[40];
    char channel[SSE_CHANNEL_MAX];
};

struct background {
    void (*fn)(tk_http_server_t *srv, void *arg, atomic_int *stop);
    void *arg;
    void (*free_arg)(void *arg); /* NULL, or run by tk_http_server_free once workers stopped */
    tk_http_server_t *srv;
    pthread_t tid;
};

/* Bounds from tk_cfg (copied by tk_http_server_new; README lists the variables). */
struct tk_http_limits {
    int queue_max;       /* HTTP_QUEUE_MAX: queued requests per lane */
    int deadline_ms;     /* HTTP_DEADLINE_MS: from arrival to the answer of a worker route */
    int max_conns;       /* HTTP_MAX_CONNECTIONS: open connections */
    int sse_total;       /* SSE_MAX_STREAMS: event streams of the server */
    int sse_per_user;    /* SSE_MAX_STREAMS_PER_USER */
    int sse_per_channel; /* SSE_MAX_STREAMS_PER_ORDER: per channel, one channel per order */
};

struct metrics_source {
    tk_http_metrics_fn *fn;
    void *ud;
};

struct tk_handler {
    h2o_handler_t super;
    tk_http_server_t *srv;
};

struct tk_http_server {
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_evloop_t *loop;
    h2o_socket_t *listener;
    int port;

    struct route routes[MAX_ROUTES];
    size_t nroutes;
    struct probe probes[MAX_PROBES];
    size_t nprobes;

    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t done;

    int nworkers; /* per lane */
    struct lane lanes[MAX_LANES];
    size_t nlanes;
    struct tk_http_limits limits;

    /* Loop thread only: requests handed to workers, the reaper's timer, accepting. */
    h2o_linklist_t pending;
    h2o_timeout_t reap_timeout;
    h2o_timeout_entry_t reap_entry;
    h2o_timeout_t accept_timeout;
    h2o_timeout_entry_t accept_entry;
    long conns;
    bool accept_paused;
    bool accept_warned;
    bool ran; /* tk_http_server_run returned: the loop is done */
    atomic_long conns_open;
    atomic_long rejected_total; /* 503/429 for a bound: queue, streams, deadline */

    /* Server-sent event streams (loop thread only) and their feeds. */
    h2o_linklist_t streams;
    h2o_multithread_receiver_t sse_receiver;
    h2o_timeout_t ping_timeout;
    h2o_timeout_entry_t ping_entry;
    atomic_long sse_open;
    pthread_mutex_t sse_mu;
    struct sse_slot *sse_slots; /* limits.sse_total of them, under sse_mu */
    struct background bg[MAX_BACKGROUND];
    size_t nbg;
    atomic_int bg_stop;
    /* Sources appended to /metrics (tk_http_metrics); they run on the loop, must not block. */
    struct metrics_source metrics[MAX_METRICS];
    size_t nmetrics;

    atomic_long in_flight;
    atomic_long requests_total[6]; /* by status class: [1]=1xx ... [5]=5xx */
    atomic_long duration_ms_sum;
};

struct req_ref {
    tk_http_req_t *r;
};

struct tk_http_req {
    h2o_multithread_message_t msg; /* first: the done queue hands it back */
    tk_http_server_t *srv;
    h2o_req_t *h2o; /* NULL once the client went away or the loop answered early */
    struct req_ref *ref;
    const struct route *route;
    struct worker *worker;
    h2o_linklist_t qlink; /* in its lane's queue, under the lane's mu */
    h2o_linklist_t plink; /* on srv->pending while a worker owns it (loop thread) */
    int64_t started_ms;
    int64_t deadline_ms; /* monotonic */
    int fd;              /* the connection's socket, for the client-gone peek (loop thread) */
    bool answered;       /* the loop already answered (deadline): on_done only frees */
    int sse_slot;        /* reserved stream slot, -1 = none */

    char *method, *path, *query;
    char *headers[TK_HTTP__HEADERS]; /* copies of tk_http__copied_headers[], NULL when absent */
    char peer[INET6_ADDRSTRLEN];     /* the connection's peer address, "" when unknown */
    int retry_after;                 /* > 0: a Retry-After header in seconds */
    char *body;
    size_t body_len;
    const char *param_names[MAX_PARAMS];
    char *param_values[MAX_PARAMS];
    size_t nparams;
    char request_id[65];

    json_t *json;
    bool user_checked, authenticated;
    bool auth_unavailable; /* the revocation check could not reach the auth database */
    tk_session_user_t user;

    bool replied;
    int status;
    char *resp_body;
    size_t resp_len;
    const char *resp_ctype;
    char *cookies[MAX_COOKIES];
    size_t ncookies;
    char *query_values[MAX_QUERY_VALUES]; /* decoded values handed out, freed with the request */
    size_t nquery_values;
    char *sse_channel; /* set by tk_http_reply_sse: finish starts a stream */
    char *sse_first;
    char *extra[MAX_EXTRA_HEADERS][2];      /* tk_http_add_header: response name, value */
    char *header_values[MAX_EXTRA_HEADERS]; /* tk_http_header: request values handed out */
    size_t nextra, nheader_values;
    void (*park_then)(tk_http_req_t *r, void *arg); /* tk_http_park: run once the handler left */
    void *park_arg;
    int resumes; /* tk_http_resume calls so far */
};

/* ---- http_request.c ---- */
int tk_http__on_req(h2o_handler_t *self, h2o_req_t *req);
void tk_http__set_body(tk_http_req_t *r, int status, const char *ctype, char *body, size_t len);
void tk_http__reply_message(tk_http_req_t *r, int status, const char *field, const char *message);
/* Loop thread: send what the handler produced, log, free. */
void tk_http__finish(tk_http_req_t *r);
/* Loop thread: answer now, without the handler (which may be running on a worker). */
void tk_http__answer_early(tk_http_req_t *r, int status, const char *message, const char *outcome);
void tk_http__request_free(tk_http_req_t *r);

/* ---- http_lanes.c ---- */
int tk_http__lane_of(tk_http_server_t *srv, const char *pattern);
void tk_http__lanes_start(tk_http_server_t *srv);
void tk_http__lanes_stop(tk_http_server_t *srv);
void tk_http__enqueue(tk_http_server_t *srv, tk_http_req_t *r);
void tk_http__on_done(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);
void tk_http__on_reap(h2o_timeout_entry_t *entry);

/* ---- http_sse.c ---- */
void tk_http__sse_release(tk_http_server_t *srv, int slot);
void tk_http__sse_start(tk_http_req_t *r, h2o_req_t *req);
void tk_http__on_sse_msg(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages);
void tk_http__on_ping(h2o_timeout_entry_t *entry);
void tk_http__sse_end_all(tk_http_server_t *srv);

/* ---- http_metrics.c ---- */
void tk_http__metrics(tk_http_req_t *r);

/** @brief The socket of @p req's connection, or -1 (http_request.c). */
int tk_http__socket_fd_of(h2o_req_t *req);

#endif
