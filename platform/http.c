/*
 * http.c - h2o evloop front with a worker pool for blocking database work.
 *
 * Why a worker pool rather than libpq's async API on the loop: every command is a short
 * transaction of several dependent statements (load, decide, write, outbox) and the projector,
 * relay and tests share the same blocking tk_pg helpers. Running those on N workers keeps one
 * way of talking to PostgreSQL, and the loop thread still never waits on the network: it only
 * parses, routes, and copies bytes. The cost is one hand-off per request (a mutex + condvar in,
 * an h2o multithread message out), measured in bench/.
 *
 * Request life cycle (loop = L, worker = W):
 *
 *   L on_req -> request_new (copy method, path, query, headers, body)
 *            -> route match -> INLINE ? run handler on L : enqueue (job list, cond signal)
 *   W worker_main -> handler fills the response -> h2o_multithread_send_message
 *   L on_done -> finish: send the response if the client is still there, access log, free
 *
 * A worker handler may instead park the request (tk_http_park, e.g. a query waiting for its
 * client's consistency token): once the handler returned, the worker hands the request to the
 * park's callback and takes the next job; whoever holds it later calls tk_http_resume, which
 * queues it to its lane again, and its handler runs again from the start. A waiting request
 * therefore holds no worker thread, only its memory.
 *
 * The client may disconnect while a worker runs: h2o then disposes the request's memory pool.
 * A small shared object in that pool (req_ref) links the two: its dispose callback clears r->h2o
 * and r->ref, and request_free clears ref->r, so whichever goes first never touches the other's
 * memory. Both run on the loop thread, so no lock is needed for that hand-shake. Only HTTP/1.1
 * is served: h2c upgrades and the HTTP/2 preface are refused (upgrade_to_http2 = 0), since
 * nothing here is tested over HTTP/2.
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
 * Connections are bounded too (HTTP_MAX_CONNECTIONS, below the fd limit): at the bound, or when
 * accept fails for want of descriptors, the listener stops reading (on_accept) and is looked at
 * again every ACCEPT_RETRY_MS, instead of spinning on a listener that stays readable. A declared
 * Content-Length over TK_HTTP_MAX_BODY is refused by h2o before the body is read; a filter turns
 * the error pages h2o sends itself (h2o_send_error: 413, 400 for a broken body) into the
 * contract's error body. A request line h2o cannot parse at all still gets h2o's fixed
 * text/plain 400, written before any configuration applies.
 */
#include "tk/http.h"
#include "tk/cfg.h"
#include "tk/ids.h"
#include "tk/log.h"
#include "tk/mem.h"
#include "tk/pg.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <h2o.h>
#include <h2o/http1.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_ROUTES 64
#define MAX_PARAMS 4
#define MAX_PROBES 8
#define MAX_COOKIES 4
#define MAX_CONTEXT_CONNS 5
#define MAX_BACKGROUND 4
#define MAX_LANES 8
#define LANE_NAME_MAX 24
#define SYSTEM_LANE_WORKERS 2
#define REAP_MS 100
#define ACCEPT_RETRY_MS 100
#define RETRY_AFTER_S 1
#define MAX_QUERY_VALUES 8
#define SSE_CHANNEL_MAX 80
#define SSE_PING_MS 15000
#define MAX_EXTRA_HEADERS 8

struct route {
    const char *method;
    const char *pattern;
    tk_http_handler_fn fn;
    unsigned flags;
    int lane; /* worker routes: index in srv->lanes */
};

struct probe {
    const char *name;
    int (*fn)(tk_http_req_t *req, tk_err_t *err);
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
    tk_http_server_t *srv;
    pthread_t tid;
};

/* Bounds from the environment (read once by tk_http_server_new; README lists them). */
struct tk_http_limits {
    int queue_max;       /* HTTP_QUEUE_MAX: queued requests per lane */
    int deadline_ms;     /* HTTP_DEADLINE_MS: from arrival to the answer of a worker route */
    int max_conns;       /* HTTP_MAX_CONNECTIONS: open connections */
    int sse_total;       /* SSE_MAX_STREAMS: event streams of the server */
    int sse_per_user;    /* SSE_MAX_STREAMS_PER_USER */
    int sse_per_channel; /* SSE_MAX_STREAMS_PER_ORDER: per channel, one channel per order */
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
    /* Context metrics appended to /metrics (tk_http_metrics); they must not block. */
    size_t (*metric_fn[MAX_BACKGROUND])(void *arg, char *buf, size_t cap);
    void *metric_arg[MAX_BACKGROUND];
    size_t nmetrics;
    atomic_int bg_stop;
    tk_http_metrics_fn *metrics_extra; /* tk_http_metrics_source: the application's, or NULL */
    void *metrics_ud;

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

    char *method, *path, *query, *cookie, *authorization, *content_type;
    char *forwarded_for, *real_ip; /* X-Forwarded-For, X-Real-IP (NULL when absent) */
    char peer[INET6_ADDRSTRLEN];   /* the connection's peer address, "" when unknown */
    int retry_after;               /* > 0: a Retry-After header in seconds */
    char *signature;               /* Stripe-Signature, for webhook routes (tk_http_signature) */
    char *body;
    size_t body_len;
    const char *param_names[MAX_PARAMS];
    char *param_values[MAX_PARAMS];
    size_t nparams;
    char request_id[65];

    json_t *json;
    bool user_checked, authenticated;
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
    char *kept[1]; /* request headers of kept_headers[] (readable on workers), or NULL */
    void (*park_then)(tk_http_req_t *r, void *arg); /* tk_http_park: run once the handler left */
    void *park_arg;
    int resumes; /* tk_http_resume calls so far */
};

/* Request headers that handlers may read (tk_http_header), copied when the request arrives. */
static const char *const kept_headers[] = {"x-consistency-token"};

/* ------------------------------------------------------------------ statuses and errors */

int tk_http_status_of(int code)
{
    switch (code) {
    case TK_OK:
        return 200;
    case TK_EINVAL:
        return 400;
    case TK_ENOTFOUND:
        return 404;
    case TK_ECONFLICT:
        return 409;
    case TK_EUNAUTH:
        return 401;
    case TK_EUNAVAIL:
        return 503;
    case TK_ETOOLARGE:
        return 413;
    case TK_EBADGATEWAY:
        return 502;
    case TK_ELIMIT:
        return 429;
    default:
        return 500;
    }
}

static const char *reason_of(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    default:
        return status < 500 ? "Client Error" : "Internal Server Error";
    }
}

void tk_http_errors_add(json_t *errors, const char *field, const char *message)
{
    json_t *e = json_pack("{s:s}", "message", message);
    if (field != NULL && *field != '\0')
        json_object_set_new(e, "field", json_string(field));
    json_array_append_new(errors, e);
}

/* ------------------------------------------------------------------ responses */

static void set_body(tk_http_req_t *r, int status, const char *ctype, char *body, size_t len)
{
    if (r->replied) {
        free(body);
        tk_log(TK_LOG_ERROR, "http", "handler replied twice", "\"request_id\":\"%s\"",
               r->request_id);
        return;
    }
    r->replied = true;
    r->status = status;
    r->resp_ctype = ctype;
    r->resp_body = body;
    r->resp_len = len;
}

void tk_http_reply_json(tk_http_req_t *r, int status, json_t *body)
{
    if (body == NULL) {
        set_body(r, status, NULL, NULL, 0);
        return;
    }
    char *text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(body);
    set_body(r, status, "application/json; charset=utf-8", text, text ? strlen(text) : 0);
}

void tk_http_reply_errors(tk_http_req_t *r, int status, json_t *errors)
{
    tk_http_reply_json(r, status, json_pack("{s:o}", "errors", errors));
}

void tk_http_reply_error(tk_http_req_t *r, const tk_err_t *err)
{
    int status = tk_http_status_of(err->code);
    if (err->code == TK_EUNAVAIL && r->worker != NULL) {
        /* A dependency is down: drop this worker's connections, the next request reconnects. */
        for (size_t i = 0; i < MAX_CONTEXT_CONNS && r->worker->conn_names[i] != NULL; i++) {
            PQfinish(r->worker->conns[i]);
            r->worker->conns[i] = NULL;
        }
    }
    const char *message = err->message;
    if (status == 500) {
        tk_log(TK_LOG_ERROR, "http", "internal error",
               "\"request_id\":\"%s\",\"code\":\"%s\",\"path\":\"%s\"", r->request_id,
               tk_err_name(err->code), r->path);
        message = "Something went wrong";
    } else if (status == 503 && message[0] == '\0') {
        message = "Service unavailable";
    } else if (status == 401 && message[0] == '\0') {
        message = "Not authorized";
    } else if (status == 404 && message[0] == '\0') {
        message = "Not Found";
    }
    json_t *errors = json_array();
    tk_http_errors_add(errors, err->field, message);
    tk_http_reply_errors(r, status, errors);
}

void tk_http_reply_raw(tk_http_req_t *r, int status, const char *ctype, const char *body,
                       size_t len)
{
    char *copy = tk_mem_alloc(len + 1);
    memcpy(copy, body, len);
    copy[len] = '\0';
    set_body(r, status, ctype, copy, len);
}

void tk_http_set_retry_after(tk_http_req_t *r, int seconds)
{
    r->retry_after = seconds > 0 ? seconds : 1;
}

const char *tk_http_peer_addr(const tk_http_req_t *r)
{
    return r->peer;
}

const char *tk_http_forwarded_for(const tk_http_req_t *r)
{
    return r->forwarded_for;
}

const char *tk_http_real_ip(const tk_http_req_t *r)
{
    return r->real_ip;
}

void tk_http_set_cookie(tk_http_req_t *r, const char *cookie)
{
    if (r->ncookies < MAX_COOKIES)
        r->cookies[r->ncookies++] = tk_mem_strdup(cookie);
}

static void reply_message(tk_http_req_t *r, int status, const char *field, const char *message)
{
    json_t *errors = json_array();
    tk_http_errors_add(errors, field, message);
    tk_http_reply_errors(r, status, errors);
}

/* ------------------------------------------------------------------ request accessors */

const char *tk_http_method(const tk_http_req_t *r)
{
    return r->method;
}

const char *tk_http_path(const tk_http_req_t *r)
{
    return r->path;
}

const char *tk_http_request_id(const tk_http_req_t *r)
{
    return r->request_id;
}

void tk_http_park(tk_http_req_t *r, void (*then)(tk_http_req_t *r, void *arg), void *arg)
{
    r->park_then = then;
    r->park_arg = arg;
}

int tk_http_resumed(const tk_http_req_t *r)
{
    return r->resumes;
}

/* Pattern captures are literals like "/api/orders/:id"; compare names up to '/'. */
static bool param_name_eq(const char *pattern_name, const char *name)
{
    size_t len = strcspn(pattern_name, "/");
    return strlen(name) == len && strncmp(pattern_name, name, len) == 0;
}

const char *tk_http_param(const tk_http_req_t *r, const char *name)
{
    for (size_t i = 0; i < r->nparams; i++)
        if (param_name_eq(r->param_names[i], name))
            return r->param_values[i];
    return NULL;
}

const char *tk_http_id_or_respond(tk_http_req_t *r, const char *name)
{
    const char *id = tk_http_param(r, name);
    if (tk_uuid_valid(id))
        return id;
    reply_message(r, 404, NULL, "Not Found");
    return NULL;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Decodes %XX and '+' in place. */
static void url_decode(char *s)
{
    char *o = s;
    for (; *s; s++) {
        if (*s == '+') {
            *o++ = ' ';
        } else if (*s == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
            *o++ = (char)(hexval(s[1]) * 16 + hexval(s[2]));
            s += 2;
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
}

const char *tk_http_query(const tk_http_req_t *rc, const char *name)
{
    tk_http_req_t *r = (tk_http_req_t *)rc;
    if (r->query == NULL)
        return NULL;
    size_t nlen = strlen(name);
    for (const char *p = r->query; *p;) {
        const char *end = strchr(p, '&');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len >= nlen && strncmp(p, name, nlen) == 0 && (len == nlen || p[nlen] == '=')) {
            if (r->nquery_values == MAX_QUERY_VALUES)
                return NULL;
            char *v =
                tk_mem_strndup(len == nlen ? "" : p + nlen + 1, len == nlen ? 0 : len - nlen - 1);
            url_decode(v);
            r->query_values[r->nquery_values++] = v;
            return v;
        }
        if (end == NULL)
            break;
        p = end + 1;
    }
    return NULL;
}

json_t *tk_http_body_or_respond(tk_http_req_t *r)
{
    if (r->json != NULL)
        return r->json;
    if (r->body_len == 0) {
        r->json = json_object();
        return r->json;
    }
    if (r->content_type == NULL || strncasecmp(r->content_type, "application/json", 16) != 0) {
        reply_message(r, 400, NULL, "Content-Type must be application/json");
        return NULL;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        char msg[200];
        snprintf(msg, sizeof(msg), "Malformed JSON body: %s", jerr.text);
        reply_message(r, 400, NULL, msg);
        return NULL;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        reply_message(r, 400, NULL, "The body must be a JSON object");
        return NULL;
    }
    r->json = doc;
    return doc;
}

/* Sign-out revokes a session in the auth database (DESIGN.md section 9): a token with a jti is
 * checked there, from a worker; where that cannot be done (the loop thread, the database
 * unreachable) the request is anonymous - fail closed. Tokens without a jti cannot be revoked. */
static bool session_revoked(tk_http_req_t *r)
{
    if (r->user.jti[0] == '\0')
        return false;
    tk_err_t err = {0};
    PGconn *auth = r->worker != NULL ? tk_http_db(r, "auth", &err) : NULL;
    int rc = auth == NULL ? TK_EUNAVAIL : tk_session_is_revoked(auth, r->user.jti, &err);
    if (rc < 0) {
        tk_log(TK_LOG_WARN, "http", "session revocation check failed",
               "\"request_id\":\"%s\",\"error\":\"%.200s\"", r->request_id, err.message);
        if (auth != NULL)
            tk_http_db_discard(r, "auth");
    }
    return rc != 0;
}

const char *tk_http_body_raw(const tk_http_req_t *r, size_t *len)
{
    *len = r->body != NULL ? r->body_len : 0; /* every byte, NULs included: signatures cover them */
    return r->body != NULL ? r->body : "";
}

const char *tk_http_signature(const tk_http_req_t *r)
{
    return r->signature;
}

const tk_session_user_t *tk_http_user(const tk_http_req_t *rc)
{
    tk_http_req_t *r = (tk_http_req_t *)rc;
    if (!r->user_checked) {
        r->user_checked = true;
        r->authenticated = tk_session_authenticate(r->cookie, r->authorization, &r->user) == 0 &&
                           !session_revoked(r);
    }
    return r->authenticated ? &r->user : NULL;
}

const tk_session_user_t *tk_http_user_or_respond(tk_http_req_t *r)
{
    const tk_session_user_t *u = tk_http_user(r);
    if (u == NULL)
        reply_message(r, 401, NULL, "Not authorized");
    return u;
}

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
    PQfinish(w->conns[i]);
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

void tk_http_db_discard(tk_http_req_t *r, const char *context)
{
    struct worker *w = r->worker;
    for (size_t i = 0; w != NULL && i < MAX_CONTEXT_CONNS && w->conn_names[i] != NULL; i++) {
        if (strcmp(w->conn_names[i], context) == 0) {
            PQfinish(w->conns[i]);
            w->conns[i] = NULL;
        }
    }
}

/* ------------------------------------------------------------------ request objects */

static char *iov_dup(h2o_iovec_t v)
{
    return v.base ? tk_mem_strndup(v.base, v.len) : NULL;
}

static char *header_dup(h2o_req_t *req, const h2o_token_t *token)
{
    ssize_t i = h2o_find_header(&req->headers, token, -1);
    return i < 0 ? NULL : iov_dup(req->headers.entries[i].value);
}

void tk_http_add_header(tk_http_req_t *r, const char *name, const char *value)
{
    if (r->nextra < MAX_EXTRA_HEADERS) {
        r->extra[r->nextra][0] = tk_mem_strdup(name);
        r->extra[r->nextra++][1] = tk_mem_strdup(value);
    }
}

/* Any request header, on the loop thread (TK_ROUTE_INLINE routes): workers must not touch h2o's
 * request, so there only the kept ones are readable. */
static const char *loop_header(const tk_http_req_t *rc, const char *name)
{
    tk_http_req_t *r = (tk_http_req_t *)rc;
    ssize_t i = r->h2o == NULL || r->worker != NULL || r->nheader_values == MAX_EXTRA_HEADERS
                    ? -1
                    : h2o_find_header_by_str(&r->h2o->headers, name, strlen(name), -1);
    if (i < 0)
        return NULL;
    return r->header_values[r->nheader_values++] = iov_dup(r->h2o->headers.entries[i].value);
}

const char *tk_http_header(const tk_http_req_t *r, const char *name)
{
    if (strcasecmp(name, "cookie") == 0)
        return r->cookie;
    if (strcasecmp(name, "authorization") == 0)
        return r->authorization;
    for (size_t i = 0; i < sizeof(kept_headers) / sizeof(kept_headers[0]); i++)
        if (strcasecmp(name, kept_headers[i]) == 0)
            return r->kept[i];
    return loop_header(r, name);
}

static bool request_id_acceptable(h2o_iovec_t v)
{
    if (v.len == 0 || v.len > 64)
        return false;
    for (size_t i = 0; i < v.len; i++)
        if (!isalnum((unsigned char)v.base[i]) && v.base[i] != '-' && v.base[i] != '_')
            return false;
    return true;
}

/* h2o frees the request's pool (client gone, stream reset, response done): unlink both ways,
 * so that neither side writes into the other's memory afterwards. */
static void on_req_dispose(void *p)
{
    struct req_ref *ref = p;
    if (ref->r != NULL) {
        ref->r->h2o = NULL;
        ref->r->ref = NULL;
        ref->r = NULL;
    }
}

static int socket_fd_of(h2o_req_t *req)
{
    if (req->conn == NULL || req->conn->callbacks->get_socket == NULL)
        return -1;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    return sock != NULL ? h2o_socket_get_fd(sock) : -1;
}

static tk_http_req_t *request_new(tk_http_server_t *srv, h2o_req_t *req)
{
    tk_http_req_t *r = tk_mem_zalloc(sizeof(*r));
    r->srv = srv;
    r->h2o = req;
    r->started_ms = tk_mono_ms();
    r->deadline_ms = r->started_ms + srv->limits.deadline_ms;
    r->fd = socket_fd_of(req);
    r->sse_slot = -1;
    r->ref = h2o_mem_alloc_shared(&req->pool, sizeof(*r->ref), on_req_dispose);
    r->ref->r = r;
    r->method = iov_dup(req->method);
    size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    r->path = tk_mem_strndup(req->path.base, path_len);
    if (req->query_at != SIZE_MAX)
        r->query =
            tk_mem_strndup(req->path.base + req->query_at + 1, req->path.len - req->query_at - 1);
    r->cookie = header_dup(req, H2O_TOKEN_COOKIE);
    r->authorization = header_dup(req, H2O_TOKEN_AUTHORIZATION);
    r->content_type = header_dup(req, H2O_TOKEN_CONTENT_TYPE);
    r->forwarded_for = header_dup(req, H2O_TOKEN_X_FORWARDED_FOR);
    ssize_t xri = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-real-ip"), -1);
    r->real_ip = xri < 0 ? NULL : iov_dup(req->headers.entries[xri].value);
    struct sockaddr_storage sa;
    socklen_t salen = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&sa);
    if (salen > 0 && sa.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, r->peer, sizeof(r->peer));
    else if (salen > 0 && sa.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, r->peer, sizeof(r->peer));
    ssize_t si = h2o_find_header_by_str(&req->headers, H2O_STRLIT("stripe-signature"), -1);
    if (si >= 0)
        r->signature = iov_dup(req->headers.entries[si].value);
    for (size_t k = 0; k < sizeof(kept_headers) / sizeof(kept_headers[0]); k++) {
        ssize_t at =
            h2o_find_header_by_str(&req->headers, kept_headers[k], strlen(kept_headers[k]), -1);
        r->kept[k] = at < 0 ? NULL : iov_dup(req->headers.entries[at].value);
    }
    if (req->entity.base != NULL && req->entity.len <= TK_HTTP_MAX_BODY) {
        /* All of it, NUL bytes included: the parser is given body_len bytes (strndup would stop
         * at the first NUL and leave the parser reading past the copy). */
        r->body = tk_mem_alloc(req->entity.len + 1);
        memcpy(r->body, req->entity.base, req->entity.len);
        r->body[req->entity.len] = '\0';
        r->body_len = req->entity.len;
    }
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1);
    if (i >= 0 && request_id_acceptable(req->headers.entries[i].value))
        memcpy(r->request_id, req->headers.entries[i].value.base,
               req->headers.entries[i].value.len);
    else
        tk_uuid_new(r->request_id);
    return r;
}

static void sse_release(tk_http_server_t *srv, int slot);

static void request_free(tk_http_req_t *r)
{
    if (r->ref != NULL)
        r->ref->r = NULL;
    if (r->sse_slot >= 0)
        sse_release(r->srv, r->sse_slot);
    free(r->method);
    free(r->path);
    free(r->query);
    free(r->cookie);
    free(r->authorization);
    free(r->content_type);
    free(r->forwarded_for);
    free(r->real_ip);
    free(r->signature);
    free(r->body);
    for (size_t i = 0; i < r->nparams; i++)
        free(r->param_values[i]);
    json_decref(r->json);
    free(r->resp_body);
    for (size_t i = 0; i < r->ncookies; i++)
        free(r->cookies[i]);
    for (size_t i = 0; i < r->nquery_values; i++)
        free(r->query_values[i]);
    free(r->sse_channel);
    free(r->sse_first);
    for (size_t i = 0; i < r->nextra; i++) {
        free(r->extra[i][0]);
        free(r->extra[i][1]);
    }
    for (size_t i = 0; i < r->nheader_values; i++)
        free(r->header_values[i]);
    for (size_t i = 0; i < sizeof(kept_headers) / sizeof(kept_headers[0]); i++)
        free(r->kept[i]);
    free(r);
}

/* ------------------------------------------------------------------ server-sent events */

/*
 * A stream lives in its request's memory pool (freed by h2o when the connection ends) and on
 * srv->streams. h2o allows one h2o_send in flight: events published meanwhile queue as chunks
 * and go out together when h2o calls proceed. States: open -> ending (last event queued) ->
 * ended (FINAL sent, or the client stopped); dispose unlinks it.
 */
struct chunk {
    struct chunk *next;
    size_t len;
    char data[];
};

struct sse_stream {
    h2o_generator_t super;
    h2o_req_t *req; /* NULL once h2o stopped the stream */
    tk_http_server_t *srv;
    int slot; /* its reservation, released on dispose */
    h2o_linklist_t link;
    char channel[SSE_CHANNEL_MAX];
    char *inflight;
    struct chunk *head, *tail;
    bool sending, ending, ended;
};

struct sse_msg {
    h2o_multithread_message_t super;
    char channel[SSE_CHANNEL_MAX];
    bool last;
    char event[];
};

/*
 * Stream limits: a slot is reserved when the handler asks for a stream (any thread), counted
 * per signed-in user, per channel and in total, and released when the stream is disposed or
 * never starts. Past a bound the handler's reply becomes 429 (this user or this order has enough
 * streams) or 503 (the server has), with Retry-After. A linear scan is enough: the table is
 * bounded by SSE_MAX_STREAMS and one is opened per client action.
 */
static int sse_reserve(tk_http_req_t *r, const char *channel, const char **why)
{
    tk_http_server_t *srv = r->srv;
    const tk_session_user_t *u = tk_http_user(r);
    const char *user = u != NULL ? u->id : "";
    int per_user = 0, per_channel = 0, total = 0, free_slot = -1;
    pthread_mutex_lock(&srv->sse_mu);
    for (int i = 0; i < srv->limits.sse_total; i++) {
        struct sse_slot *sl = &srv->sse_slots[i];
        if (!sl->used) {
            if (free_slot < 0)
                free_slot = i;
            continue;
        }
        total++;
        per_user += *user != '\0' && strcmp(sl->user, user) == 0;
        per_channel += strncmp(sl->channel, channel, SSE_CHANNEL_MAX - 1) == 0;
    }
    int rc = 0;
    if (per_channel >= srv->limits.sse_per_channel) {
        *why = "Too many event streams for this order";
        rc = 429;
    } else if (per_user >= srv->limits.sse_per_user) {
        *why = "Too many event streams for this user";
        rc = 429;
    } else if (free_slot < 0) {
        *why = "Too many event streams, try again later";
        rc = 503;
    } else {
        struct sse_slot *sl = &srv->sse_slots[free_slot];
        sl->used = true;
        snprintf(sl->user, sizeof(sl->user), "%s", user);
        snprintf(sl->channel, sizeof(sl->channel), "%s", channel);
        r->sse_slot = free_slot;
    }
    pthread_mutex_unlock(&srv->sse_mu);
    (void)total;
    return rc;
}

static void sse_release(tk_http_server_t *srv, int slot)
{
    pthread_mutex_lock(&srv->sse_mu);
    srv->sse_slots[slot].used = false;
    pthread_mutex_unlock(&srv->sse_mu);
}

long tk_http_sse_channel_count(tk_http_server_t *srv, const char *channel)
{
    long n = 0;
    pthread_mutex_lock(&srv->sse_mu);
    for (int i = 0; i < srv->limits.sse_total; i++)
        n += srv->sse_slots[i].used &&
             strncmp(srv->sse_slots[i].channel, channel, SSE_CHANNEL_MAX - 1) == 0;
    pthread_mutex_unlock(&srv->sse_mu);
    return n;
}

void tk_http_reply_sse(tk_http_req_t *r, const char *channel, const char *first_event)
{
    const char *why = NULL;
    int status = r->sse_slot >= 0 ? 0 : sse_reserve(r, channel, &why);
    if (status != 0) {
        atomic_fetch_add(&r->srv->rejected_total, 1);
        tk_http_set_retry_after(r, RETRY_AFTER_S);
        reply_message(r, status, NULL, why);
        return;
    }
    set_body(r, 200, "text/event-stream", NULL, 0);
    r->sse_channel = tk_mem_strndup(channel, SSE_CHANNEL_MAX - 1);
    r->sse_first = tk_mem_strdup(first_event);
}

static void sse_enqueue(struct sse_stream *st, const char *text)
{
    size_t len = strlen(text);
    struct chunk *c = tk_mem_alloc(sizeof(*c) + len);
    c->next = NULL;
    c->len = len;
    memcpy(c->data, text, len);
    if (st->tail != NULL)
        st->tail->next = c;
    else
        st->head = c;
    st->tail = c;
}

static void sse_flush(struct sse_stream *st)
{
    if (st->sending || st->req == NULL || st->ended || (st->head == NULL && !st->ending))
        return;
    size_t len = 0;
    for (struct chunk *c = st->head; c; c = c->next)
        len += c->len;
    st->inflight = tk_mem_alloc(len + 1);
    len = 0;
    while (st->head != NULL) {
        struct chunk *c = st->head;
        memcpy(st->inflight + len, c->data, c->len);
        len += c->len;
        st->head = c->next;
        free(c);
    }
    st->tail = NULL;
    h2o_iovec_t buf = h2o_iovec_init(st->inflight, len);
    st->sending = true;
    if (st->ending)
        st->ended = true;
    h2o_send(st->req, &buf, 1, st->ending ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void sse_proceed(h2o_generator_t *self, h2o_req_t *req)
{
    struct sse_stream *st = (struct sse_stream *)self;
    st->sending = false;
    free(st->inflight);
    st->inflight = NULL;
    sse_flush(st);
}

static void sse_stop(h2o_generator_t *self, h2o_req_t *req)
{
    struct sse_stream *st = (struct sse_stream *)self;
    st->req = NULL;
    st->ended = true;
}

static void sse_dispose(void *p)
{
    struct sse_stream *st = p;
    if (h2o_linklist_is_linked(&st->link))
        h2o_linklist_unlink(&st->link);
    free(st->inflight);
    while (st->head != NULL) {
        struct chunk *c = st->head;
        st->head = c->next;
        free(c);
    }
    if (st->slot >= 0)
        sse_release(st->srv, st->slot);
    atomic_fetch_sub(&st->srv->sse_open, 1);
}

static void sse_start(tk_http_req_t *r, h2o_req_t *req)
{
    struct sse_stream *st = h2o_mem_alloc_shared(&req->pool, sizeof(*st), sse_dispose);
    memset(st, 0, sizeof(*st));
    st->super.proceed = sse_proceed;
    st->super.stop = sse_stop;
    st->req = req;
    st->srv = r->srv;
    st->slot = r->sse_slot; /* the stream owns the reservation from here */
    r->sse_slot = -1;
    snprintf(st->channel, sizeof(st->channel), "%s", r->sse_channel);
    h2o_linklist_insert(&r->srv->streams, &st->link);
    atomic_fetch_add(&r->srv->sse_open, 1);

    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/event-stream"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-cache"));
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-accel-buffering"), 0, NULL,
                          H2O_STRLIT("no"));
    h2o_iovec_t rid = h2o_strdup(&req->pool, r->request_id, SIZE_MAX);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL,
                          rid.base, rid.len);
    h2o_start_response(req, &st->super);
    sse_enqueue(st, r->sse_first);
    sse_flush(st);
}

/* Loop thread: deliver published events to the streams of their channel. */
static void on_sse_msg(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    tk_http_server_t *srv = H2O_STRUCT_FROM_MEMBER(tk_http_server_t, sse_receiver, receiver);
    while (!h2o_linklist_is_empty(messages)) {
        struct sse_msg *m = (struct sse_msg *)H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t,
                                                                     link, messages->next);
        h2o_linklist_unlink(&m->super.link);
        for (h2o_linklist_t *n = srv->streams.next; n != &srv->streams; n = n->next) {
            struct sse_stream *st = H2O_STRUCT_FROM_MEMBER(struct sse_stream, link, n);
            if (st->ended || strcmp(st->channel, m->channel) != 0)
                continue;
            sse_enqueue(st, m->event);
            st->ending = st->ending || m->last;
            sse_flush(st);
        }
        free(m);
    }
}

void tk_http_sse_publish(tk_http_server_t *srv, const char *channel, const char *event, bool last)
{
    size_t len = strlen(event);
    struct sse_msg *m = tk_mem_zalloc(sizeof(*m) + len + 1);
    snprintf(m->channel, sizeof(m->channel), "%s", channel);
    memcpy(m->event, event, len + 1);
    m->last = last;
    h2o_multithread_send_message(&srv->sse_receiver, &m->super);
}

long tk_http_sse_count(tk_http_server_t *srv)
{
    return atomic_load(&srv->sse_open);
}

/* Every SSE_PING_MS: a comment line keeps idle streams open through proxies. */
static void on_ping(h2o_timeout_entry_t *entry)
{
    tk_http_server_t *srv = H2O_STRUCT_FROM_MEMBER(tk_http_server_t, ping_entry, entry);
    for (h2o_linklist_t *n = srv->streams.next; n != &srv->streams; n = n->next) {
        struct sse_stream *st = H2O_STRUCT_FROM_MEMBER(struct sse_stream, link, n);
        if (!st->ended) {
            sse_enqueue(st, ": ping\n\n");
            sse_flush(st);
        }
    }
    h2o_timeout_link(srv->loop, &srv->ping_timeout, &srv->ping_entry);
}

/* Ends every open stream (server shutdown). */
static void sse_end_all(tk_http_server_t *srv)
{
    for (h2o_linklist_t *n = srv->streams.next; n != &srv->streams; n = n->next) {
        struct sse_stream *st = H2O_STRUCT_FROM_MEMBER(struct sse_stream, link, n);
        st->ending = true;
        sse_flush(st);
    }
}

void tk_http_background(tk_http_server_t *srv,
                        void (*fn)(tk_http_server_t *srv, void *arg, atomic_int *stop), void *arg)
{
    if (srv->nbg == MAX_BACKGROUND)
        abort(); /* a programming error caught at start-up */
    srv->bg[srv->nbg++] = (struct background){.fn = fn, .arg = arg, .srv = srv};
}

void tk_http_metrics(tk_http_server_t *srv, size_t (*fn)(void *arg, char *buf, size_t cap),
                     void *arg)
{
    if (srv->nmetrics == MAX_BACKGROUND)
        abort(); /* a programming error caught at start-up */
    srv->metric_fn[srv->nmetrics] = fn;
    srv->metric_arg[srv->nmetrics++] = arg;
}

static void *background_main(void *p)
{
    struct background *b = p;
    b->fn(b->srv, b->arg, &b->srv->bg_stop);
    return NULL;
}

static void add_common_headers(tk_http_req_t *r, h2o_req_t *req, int retry_after)
{
    h2o_iovec_t rid = h2o_strdup(&req->pool, r->request_id, SIZE_MAX);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL,
                          rid.base, rid.len);
    if (retry_after > 0) {
        char *v = h2o_mem_alloc_pool(&req->pool, 16);
        int n = snprintf(v, 16, "%d", retry_after);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, v, (size_t)n);
    }
}

/* Loop thread: count and log a response (once per request). */
static void account(tk_http_req_t *r, int status, size_t bytes, const char *outcome)
{
    tk_http_server_t *srv = r->srv;
    int64_t ms = tk_mono_ms() - r->started_ms;
    int cls = status / 100;
    if (cls >= 1 && cls <= 5)
        atomic_fetch_add(&srv->requests_total[cls], 1);
    atomic_fetch_add(&srv->duration_ms_sum, (long)ms);
    atomic_fetch_sub(&srv->in_flight, 1);
    tk_log(TK_LOG_INFO, "http", "access",
           "\"request_id\":\"%s\",\"method\":\"%.16s\",\"path\":\"%.200s\",\"status\":%d,"
           "\"ms\":%lld,\"bytes\":%zu,\"outcome\":\"%s\"",
           r->request_id, r->method, r->path, status, (long long)ms, bytes, outcome);
}

/* Loop thread: send what the handler produced, log, free. */
static void finish(tk_http_req_t *r)
{
    if (h2o_linklist_is_linked(&r->plink))
        h2o_linklist_unlink(&r->plink);
    if (r->answered) { /* the loop answered at the deadline: the handler's work is dropped */
        request_free(r);
        return;
    }
    if (!r->replied)
        reply_message(r, 500, NULL, "Something went wrong");
    h2o_req_t *req = r->h2o;
    if (req != NULL && r->sse_channel != NULL) {
        sse_start(r, req);
    } else if (req != NULL) {
        req->res.status = r->status;
        req->res.reason = reason_of(r->status);
        if (r->resp_ctype != NULL)
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                           r->resp_ctype, strlen(r->resp_ctype));
        add_common_headers(r, req, r->retry_after);
        for (size_t i = 0; i < r->ncookies; i++) {
            h2o_iovec_t c = h2o_strdup(&req->pool, r->cookies[i], SIZE_MAX);
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_SET_COOKIE, NULL, c.base,
                           c.len);
        }
        for (size_t i = 0; i < r->nextra; i++) {
            h2o_iovec_t n = h2o_strdup(&req->pool, r->extra[i][0], SIZE_MAX);
            h2o_iovec_t v = h2o_strdup(&req->pool, r->extra[i][1], SIZE_MAX);
            h2o_add_header_by_str(&req->pool, &req->res.headers, n.base, n.len, 0, NULL, v.base,
                                  v.len);
        }
        req->res.content_length = r->resp_len;
        h2o_send_inline(req, r->resp_body ? r->resp_body : "", r->resp_len);
    }
    account(r, r->status, r->resp_len, req == NULL ? "client_gone" : "done");
    request_free(r);
}

/*
 * Loop thread: answer @p status now, without the handler (queue full, deadline, client gone).
 * The handler's fields are not touched: a worker may be running it.
 */
static void answer_early(tk_http_req_t *r, int status, const char *message, const char *outcome)
{
    h2o_req_t *req = r->h2o;
    json_t *errors = json_array();
    tk_http_errors_add(errors, NULL, message);
    json_t *doc = json_pack("{s:o}", "errors", errors);
    char *text = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    size_t len = text != NULL ? strlen(text) : 0;
    if (req != NULL) {
        req->res.status = status;
        req->res.reason = reason_of(status);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                       H2O_STRLIT("application/json; charset=utf-8"));
        add_common_headers(r, req, status == 503 || status == 429 ? RETRY_AFTER_S : 0);
        req->res.content_length = len;
        h2o_send_inline(req, text != NULL ? text : "", len); /* copies the body */
    }
    free(text);
    if (status == 503 || status == 429)
        atomic_fetch_add(&r->srv->rejected_total, 1);
    account(r, status, len, outcome);
    r->answered = true;
    r->h2o = NULL;
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
    for (size_t i = 0; i < MAX_CONTEXT_CONNS; i++)
        PQfinish(w->conns[i]);
    return NULL;
}

static void on_done(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
{
    while (!h2o_linklist_is_empty(messages)) {
        h2o_multithread_message_t *m =
            H2O_STRUCT_FROM_MEMBER(h2o_multithread_message_t, link, messages->next);
        h2o_linklist_unlink(&m->link);
        finish((tk_http_req_t *)m);
    }
}

/* Loop thread: hand @p r to its lane, or answer 503 when the lane's queue is full. */
static void enqueue(tk_http_server_t *srv, tk_http_req_t *r)
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
        answer_early(r, 503, "Server busy, try again later", "queue_full");
        request_free(r);
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
static void on_reap(h2o_timeout_entry_t *entry)
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
            answer_early(r, 503, "The request took too long, try again later", "deadline");
        else if (queued)
            answer_early(r, 503, "Client gone", "client_gone");
        if (queued) { /* no worker will see it: it is the loop's to free */
            h2o_linklist_unlink(&r->plink);
            request_free(r);
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

/* ------------------------------------------------------------------ routing */

/* Matches @p path against @p pattern, capturing ":name" segments into @p r. */
static bool route_match(const struct route *rt, const char *path, tk_http_req_t *r)
{
    const char *p = rt->pattern, *s = path;
    size_t n = 0;
    const char *names[MAX_PARAMS];
    const char *vals[MAX_PARAMS];
    size_t lens[MAX_PARAMS];
    while (*p && *s) {
        if (*p != '/' || *s != '/')
            return false;
        p++;
        s++;
        const char *pe = strchrnul(p, '/');
        const char *se = strchrnul(s, '/');
        if (*p == ':') {
            if (se == s || n == MAX_PARAMS)
                return false;
            names[n] = p + 1;
            vals[n] = s;
            lens[n] = (size_t)(se - s);
            n++;
        } else if (pe - p != se - s || strncmp(p, s, (size_t)(pe - p)) != 0) {
            return false;
        }
        p = pe;
        s = se;
    }
    if (strcmp(s, "/") == 0 && *p == '\0')
        s++; /* tolerate one trailing slash */
    if (*p != '\0' || *s != '\0')
        return false;
    for (size_t i = 0; i < n; i++) {
        /* Names point into the pattern literal and end at its next '/' (param_name_eq). */
        r->param_names[i] = names[i];
        r->param_values[i] = tk_mem_strndup(vals[i], lens[i]);
    }
    r->nparams = n;
    return true;
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    tk_http_server_t *srv = ((struct tk_handler *)self)->srv;
    tk_http_req_t *r = request_new(srv, req);
    atomic_fetch_add(&srv->in_flight, 1);

    if (req->entity.base != NULL && req->entity.len > TK_HTTP_MAX_BODY) {
        reply_message(r, 413, NULL, "Request body is larger than 1 MiB");
        finish(r);
        return 0;
    }
    for (size_t i = 0; i < srv->nroutes; i++) {
        const struct route *rt = &srv->routes[i];
        if (strcmp(rt->method, r->method) != 0 &&
            !(strcmp(rt->method, "GET") == 0 && strcmp(r->method, "HEAD") == 0))
            continue;
        if (!route_match(rt, r->path, r))
            continue;
        r->route = rt;
        break;
    }
    if (r->route == NULL) {
        reply_message(r, 404, NULL, "Not Found");
        finish(r);
        return 0;
    }
    if (r->route->flags & TK_ROUTE_INLINE) {
        r->route->fn(r);
        finish(r);
    } else {
        enqueue(srv, r);
    }
    return 0;
}

/* ------------------------------------------------------------------ built-in routes */

static void healthz(tk_http_req_t *r)
{
    tk_http_reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

static void readyz(tk_http_req_t *r)
{
    json_t *checks = json_object();
    bool ready = true;
    for (size_t i = 0; i < r->srv->nprobes; i++) {
        tk_err_t err = {0};
        int rc = r->srv->probes[i].fn(r, &err);
        json_object_set_new(checks, r->srv->probes[i].name,
                            json_string(rc == 0 ? "ok" : err.message));
        ready = ready && rc == 0;
    }
    tk_http_reply_json(
        r, ready ? 200 : 503,
        json_pack("{s:s, s:o}", "status", ready ? "ready" : "unavailable", "checks", checks));
}

static void metrics(tk_http_req_t *r)
{
    tk_http_server_t *srv = r->srv;
    char buf[4096];
    int n = snprintf(buf, sizeof(buf),
                     "# HELP tk_http_requests_total HTTP responses by status class.\n"
                     "# TYPE tk_http_requests_total counter\n");
    for (int c = 1; c <= 5; c++)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n,
                      "tk_http_requests_total{class=\"%dxx\"} %ld\n", c,
                      atomic_load(&srv->requests_total[c]));
    n += snprintf(buf + n, sizeof(buf) - (size_t)n,
                  "# HELP tk_http_request_duration_ms_sum Total time spent on requests.\n"
                  "# TYPE tk_http_request_duration_ms_sum counter\n"
                  "tk_http_request_duration_ms_sum %ld\n"
                  "# HELP tk_http_in_flight Requests being served.\n"
                  "# TYPE tk_http_in_flight gauge\n"
                  "tk_http_in_flight %ld\n"
                  "# HELP tk_http_event_streams Open server-sent event streams.\n"
                  "# TYPE tk_http_event_streams gauge\n"
                  "tk_http_event_streams %ld\n"
                  "# HELP tk_http_connections Open client connections.\n"
                  "# TYPE tk_http_connections gauge\n"
                  "tk_http_connections %ld\n"
                  "# HELP tk_http_rejected_total Requests refused at a bound (429/503).\n"
                  "# TYPE tk_http_rejected_total counter\n"
                  "tk_http_rejected_total %ld\n",
                  atomic_load(&srv->duration_ms_sum), atomic_load(&srv->in_flight),
                  atomic_load(&srv->sse_open), atomic_load(&srv->conns_open),
                  atomic_load(&srv->rejected_total));
    for (size_t i = 0; i < srv->nmetrics && (size_t)n < sizeof(buf); i++)
        n += (int)srv->metric_fn[i](srv->metric_arg[i], buf + n, sizeof(buf) - (size_t)n);
    if ((size_t)n >= sizeof(buf)) /* a context's metrics were cut at the buffer's end */
        n = (int)sizeof(buf) - 1;
    char *extra = srv->metrics_extra ? srv->metrics_extra(srv->metrics_ud) : NULL;
    if (extra == NULL) {
        tk_http_reply_raw(r, 200, "text/plain; version=0.0.4", buf, (size_t)n);
        return;
    }
    size_t elen = strlen(extra);
    char *all = malloc((size_t)n + elen + 1);
    if (all != NULL) {
        memcpy(all, buf, (size_t)n);
        memcpy(all + n, extra, elen + 1);
    }
    tk_http_reply_raw(r, 200, "text/plain; version=0.0.4", all ? all : buf,
                      all ? (size_t)n + elen : (size_t)n);
    free(all);
    free(extra);
}

void tk_http_metrics_source(tk_http_server_t *srv, tk_http_metrics_fn *fn, void *ud)
{
    srv->metrics_extra = fn;
    srv->metrics_ud = ud;
}

/* ------------------------------------------------------------------ server */

static void on_accept(h2o_socket_t *listener, const char *err);

/* Stop reading the listener: until a connection closes (at the bound) or for a while (no fd). */
static void accept_pause(tk_http_server_t *srv, bool timed)
{
    if (srv->listener == NULL)
        return;
    if (!srv->accept_paused) {
        h2o_socket_read_stop(srv->listener);
        srv->accept_paused = true;
    }
    if (timed && !h2o_timeout_is_linked(&srv->accept_entry))
        h2o_timeout_link(srv->loop, &srv->accept_timeout, &srv->accept_entry);
}

/* Open connections: h2o keeps every HTTP/1 connection on its context's list (HTTP/2 is off).
 * Counting the list costs O(n) per accept, n bounded by HTTP_MAX_CONNECTIONS: no hook into
 * h2o's socket close is needed. */
static long conns_count(tk_http_server_t *srv)
{
    long n = 0;
    for (h2o_linklist_t *l = srv->ctx.http1._conns.next; l != &srv->ctx.http1._conns; l = l->next)
        n++;
    srv->conns = n;
    atomic_store(&srv->conns_open, n);
    return n;
}

static void on_accept_retry(h2o_timeout_entry_t *entry)
{
    tk_http_server_t *srv = H2O_STRUCT_FROM_MEMBER(tk_http_server_t, accept_entry, entry);
    if (srv->listener == NULL || !srv->accept_paused)
        return;
    if (conns_count(srv) >= srv->limits.max_conns) {
        h2o_timeout_link(srv->loop, &srv->accept_timeout, &srv->accept_entry);
        return;
    }
    srv->accept_paused = false;
    h2o_socket_read_start(srv->listener, on_accept);
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err != NULL)
        return;
    tk_http_server_t *srv = listener->data;
    if (conns_count(srv) >= srv->limits.max_conns) {
        accept_pause(srv, true); /* the kernel's backlog holds the rest meanwhile */
        return;
    }
    h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
    if (sock == NULL) {
        /* Out of descriptors (or memory): the listener stays readable, so reading it again at
         * once would spin. Try again a little later. */
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
            if (!srv->accept_warned) /* once per shortage, not every ACCEPT_RETRY_MS */
                tk_log(TK_LOG_WARN, "http", "accept failed, pausing",
                       "\"error\":\"%s\",\"connections\":%ld", strerror(errno), srv->conns);
            srv->accept_warned = true;
            accept_pause(srv, true);
        }
        return;
    }
    srv->accept_warned = false;
    h2o_accept(&srv->accept_ctx, sock);
}

static int listen_on(int port, int *bound, tk_err_t *err)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return tk_err_set(err, TK_EINTERNAL, NULL, "socket: %s", strerror(errno));
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, SOMAXCONN) != 0) {
        int e = errno;
        close(fd);
        return tk_err_set(err, TK_EUNAVAIL, "PORT", "cannot listen on port %d: %s", port,
                          strerror(e));
    }
    socklen_t len = sizeof(addr);
    getsockname(fd, (struct sockaddr *)&addr, &len);
    *bound = ntohs(addr.sin_port);
    return fd;
}

/* ---- h2o's own error pages (413 before the body is read, 400 malformed) in our format ---- */

struct contract_error_ostream {
    h2o_ostream_t super;
    h2o_iovec_t body;
    bool sent;
};

static void contract_error_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs,
                                size_t bufcnt, h2o_send_state_t state)
{
    struct contract_error_ostream *os = (struct contract_error_ostream *)self;
    (void)bufs;
    (void)bufcnt;
    if (os->sent) {
        h2o_ostream_send_next(self, req, NULL, 0, state);
        return;
    }
    os->sent = true;
    h2o_ostream_send_next(self, req, &os->body, 1, state);
}

/* Registered on the host's fallback path, where h2o binds the errors it sends by itself. */
static void contract_error_setup(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    (void)self;
    if (req->res.status >= 400) {
        const char *message = req->res.status == 413   ? "Request body is larger than 1 MiB"
                              : req->res.status == 400 ? "Bad Request"
                                                       : req->res.reason;
        json_t *doc = json_pack("{s:[{s:s}]}", "errors", "message", message);
        char *text = json_dumps(doc, JSON_COMPACT);
        json_decref(doc);
        struct contract_error_ostream *os =
            (struct contract_error_ostream *)h2o_add_ostream(req, sizeof(*os), slot);
        os->super.do_send = contract_error_send;
        os->body = h2o_strdup(&req->pool, text, SIZE_MAX);
        os->sent = false;
        free(text);
        ssize_t i = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
        h2o_iovec_t ctype = h2o_iovec_init(H2O_STRLIT("application/json; charset=utf-8"));
        if (i >= 0)
            req->res.headers.entries[i].value = ctype;
        else
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ctype.base,
                           ctype.len);
        req->res.content_length = os->body.len;
        slot = &os->super.next;
    }
    h2o_setup_next_ostream(req, slot);
}

/* ---- limits from the environment ---- */

static int env_limit(const char *name, int dflt, int lo, int hi, int *out, tk_err_t *err)
{
    const char *v = getenv(name);
    *out = dflt;
    if (v == NULL || *v == '\0')
        return 0;
    char *end = NULL;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || n < lo || n > hi)
        return tk_err_set(err, TK_EINVAL, name, "%s must be an integer in [%d, %d], got '%s'", name,
                          lo, hi, v);
    *out = (int)n;
    return 0;
}

static int limits_load(struct tk_http_limits *l, tk_err_t *err)
{
    /* Connections stay below the descriptor limit, leaving room for databases, Kafka, files. */
    struct rlimit rl;
    long fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                   ? (long)rl.rlim_cur
                   : 4096;
    int conns_default = (int)(fds - 128 < 16 ? 16 : fds - 128 > 4096 ? 4096 : fds - 128);
    int rc;
    if ((rc = env_limit("HTTP_QUEUE_MAX", 128, 1, 100000, &l->queue_max, err)) ||
        (rc = env_limit("HTTP_DEADLINE_MS", 20000, 100, 3600000, &l->deadline_ms, err)) ||
        (rc = env_limit("HTTP_MAX_CONNECTIONS", conns_default, 1, 1000000, &l->max_conns, err)) ||
        (rc = env_limit("SSE_MAX_STREAMS", l->max_conns / 2 > 0 ? l->max_conns / 2 : 1, 1, 1000000,
                        &l->sse_total, err)) ||
        (rc = env_limit("SSE_MAX_STREAMS_PER_USER", 8, 1, 100000, &l->sse_per_user, err)) ||
        (rc = env_limit("SSE_MAX_STREAMS_PER_ORDER", 4, 1, 100000, &l->sse_per_channel, err)))
        return rc;
    return 0;
}

/* The lane of a worker route: "/api/<name>/..." -> <name>, anything else -> "system". */
static int lane_of(tk_http_server_t *srv, const char *pattern)
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

static void lanes_start(tk_http_server_t *srv)
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

tk_http_server_t *tk_http_server_new(int port, int workers, tk_err_t *err)
{
    struct tk_http_limits limits;
    if (limits_load(&limits, err) != 0)
        return NULL;
    int bound = 0;
    int fd = listen_on(port, &bound, err);
    if (fd < 0)
        return NULL;
    tk_http_server_t *srv = tk_mem_zalloc(sizeof(*srv));
    srv->port = bound;
    srv->limits = limits;
    h2o_config_init(&srv->config);
    srv->config.server_name = h2o_iovec_init(H2O_STRLIT("ticketing"));
    /* h2o refuses a larger declared Content-Length before reading the body (413). */
    srv->config.max_request_entity_size = TK_HTTP_MAX_BODY;
    /* HTTP/1.1 only: no h2c upgrade, no HTTP/2 prior-knowledge preface (see the top). */
    srv->config.http1.upgrade_to_http2 = 0;
    h2o_hostconf_t *host =
        h2o_config_register_host(&srv->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    struct tk_handler *h = (struct tk_handler *)h2o_create_handler(path, sizeof(*h));
    h->super.on_req = on_req;
    h->srv = srv;
    h2o_filter_t *f = h2o_create_filter(&host->fallback_path, sizeof(*f));
    f->on_setup_ostream = contract_error_setup;

    srv->loop = h2o_evloop_create();
    h2o_context_init(&srv->ctx, srv->loop, &srv->config);
    srv->accept_ctx.ctx = &srv->ctx;
    srv->accept_ctx.hosts = srv->config.hosts;
    srv->listener = h2o_evloop_socket_create(srv->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    srv->listener->data = srv;
    h2o_socket_read_start(srv->listener, on_accept);

    srv->queue = h2o_multithread_create_queue(srv->loop);
    h2o_multithread_register_receiver(srv->queue, &srv->done, on_done);
    h2o_multithread_register_receiver(srv->queue, &srv->sse_receiver, on_sse_msg);
    h2o_linklist_init_anchor(&srv->streams);
    h2o_linklist_init_anchor(&srv->pending);
    h2o_timeout_init(srv->loop, &srv->ping_timeout, SSE_PING_MS);
    srv->ping_entry.cb = on_ping;
    h2o_timeout_link(srv->loop, &srv->ping_timeout, &srv->ping_entry);
    h2o_timeout_init(srv->loop, &srv->reap_timeout, REAP_MS);
    srv->reap_entry.cb = on_reap;
    h2o_timeout_link(srv->loop, &srv->reap_timeout, &srv->reap_entry);
    h2o_timeout_init(srv->loop, &srv->accept_timeout, ACCEPT_RETRY_MS);
    srv->accept_entry.cb = on_accept_retry;

    pthread_mutex_init(&srv->sse_mu, NULL);
    srv->sse_slots = tk_mem_zalloc(sizeof(struct sse_slot) * (size_t)srv->limits.sse_total);
    srv->nworkers = workers > 0 ? workers : 1;

    tk_http_route(srv, "GET", "/healthz", healthz, TK_ROUTE_INLINE);
    tk_http_route(srv, "GET", "/readyz", readyz, 0);
    tk_http_route(srv, "GET", "/metrics", metrics, TK_ROUTE_INLINE);
    return srv;
}

void tk_http_route(tk_http_server_t *srv, const char *method, const char *pattern,
                   tk_http_handler_fn handler, unsigned flags)
{
    if (srv->nroutes == MAX_ROUTES)
        abort(); /* a programming error caught at start-up */
    int lane = (flags & TK_ROUTE_INLINE) ? -1 : lane_of(srv, pattern);
    srv->routes[srv->nroutes++] = (struct route){method, pattern, handler, flags, lane};
}

void tk_http_readiness(tk_http_server_t *srv, const char *name,
                       int (*probe)(tk_http_req_t *req, tk_err_t *err))
{
    if (srv->nprobes < MAX_PROBES)
        srv->probes[srv->nprobes++] = (struct probe){name, probe};
}

int tk_http_server_port(const tk_http_server_t *srv)
{
    return srv->port;
}

/* Stop every lane's workers once their queues are empty, and wait for them. Idempotent. */
static void lanes_stop(tk_http_server_t *srv)
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

static int shut_conn(h2o_req_t *req, void *cbdata)
{
    (void)cbdata;
    int fd = socket_fd_of(req);
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
    return 0;
}

/* Entries still linked to h2o's context timeouts (a closing connection's, for up to 1 s). */
static bool ctx_timeouts_linked(tk_http_server_t *srv)
{
    h2o_timeout_t *t[] = {&srv->ctx.zero_timeout, &srv->ctx.one_sec_timeout,
                          &srv->ctx.hundred_ms_timeout, &srv->ctx.handshake_timeout,
                          &srv->ctx.http1.req_timeout};
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        if (!h2o_linklist_is_empty(&t[i]->_entries))
            return true;
    return false;
}

/* At stop, connections still open (idle keep-alive ones, or a request past the drain): h2o's
 * context cannot be disposed while one of them, or a timeout entry of one being closed, is
 * linked (h2o_timeout_dispose asserts: SIGTERM with a keep-alive client aborted the process).
 * Shutting their sockets down makes h2o see the end of each and close it itself; the loop runs
 * until nothing is left (bounded: h2o's longest context timer here is 1 s). */
static void close_conns(tk_http_server_t *srv)
{
    h2o_context_request_shutdown(&srv->ctx);
    if (H2O_HTTP1_CALLBACKS.foreach_request != NULL)
        H2O_HTTP1_CALLBACKS.foreach_request(&srv->ctx, shut_conn, NULL);
    int64_t deadline = tk_mono_ms() + 3000;
    while ((conns_count(srv) > 0 || ctx_timeouts_linked(srv)) && tk_mono_ms() < deadline)
        h2o_evloop_run(srv->loop, 10);
}

int tk_http_server_run(tk_http_server_t *srv, volatile int *stop)
{
    lanes_start(srv);
    tk_log(TK_LOG_INFO, "http", "listening",
           "\"port\":%d,\"workers_per_lane\":%d,\"lanes\":%zu,\"queue_max\":%d,"
           "\"deadline_ms\":%d,\"max_connections\":%d,\"max_streams\":%d",
           srv->port, srv->nworkers, srv->nlanes, srv->limits.queue_max, srv->limits.deadline_ms,
           srv->limits.max_conns, srv->limits.sse_total);
    atomic_store(&srv->bg_stop, 0);
    for (size_t i = 0; i < srv->nbg; i++)
        pthread_create(&srv->bg[i].tid, NULL, background_main, &srv->bg[i]);
    while (!*stop)
        h2o_evloop_run(srv->loop, 100);
    sse_end_all(srv);
    /* Stop accepting, then let requests already handed to workers complete (bounded). */
    if (srv->listener != NULL) {
        if (!srv->accept_paused)
            h2o_socket_read_stop(srv->listener);
        h2o_socket_close(srv->listener);
        srv->listener = NULL;
    }
    int64_t deadline = tk_mono_ms() + 5000;
    while ((atomic_load(&srv->in_flight) > 0 || atomic_load(&srv->sse_open) > 0) &&
           tk_mono_ms() < deadline)
        h2o_evloop_run(srv->loop, 50);
    close_conns(srv);
    atomic_store(&srv->bg_stop, 1);
    for (size_t i = 0; i < srv->nbg; i++)
        pthread_join(srv->bg[i].tid, NULL);
    /* Workers finish, and their last completions are delivered, on this thread: h2o's sockets
     * hold pointers into the thread-local state of the thread that ran the loop, so the loop
     * must never run on another thread once this one has returned. */
    lanes_stop(srv);
    for (int i = 0; i < 10; i++)
        h2o_evloop_run(srv->loop, 10);
    srv->ran = true;
    return 0;
}

void tk_http_server_free(tk_http_server_t *srv)
{
    if (srv == NULL)
        return;
    lanes_stop(srv);
    if (!srv->ran) /* never served: nothing thread-local to fear (see tk_http_server_run) */
        h2o_evloop_run(srv->loop, 0);
    if (srv->listener != NULL)
        h2o_socket_close(srv->listener);
    if (h2o_timeout_is_linked(&srv->ping_entry))
        h2o_timeout_unlink(&srv->ping_entry);
    if (h2o_timeout_is_linked(&srv->reap_entry))
        h2o_timeout_unlink(&srv->reap_entry);
    if (h2o_timeout_is_linked(&srv->accept_entry))
        h2o_timeout_unlink(&srv->accept_entry);
    h2o_timeout_dispose(srv->loop, &srv->ping_timeout);
    h2o_timeout_dispose(srv->loop, &srv->reap_timeout);
    h2o_timeout_dispose(srv->loop, &srv->accept_timeout);
    h2o_multithread_unregister_receiver(srv->queue, &srv->sse_receiver);
    h2o_multithread_unregister_receiver(srv->queue, &srv->done);
    h2o_multithread_destroy_queue(srv->queue);
    h2o_context_dispose(&srv->ctx);
    h2o_config_dispose(&srv->config);
    for (size_t i = 0; i < srv->nlanes; i++) {
        free(srv->lanes[i].workers);
        pthread_mutex_destroy(&srv->lanes[i].mu);
        pthread_cond_destroy(&srv->lanes[i].cv);
    }
    pthread_mutex_destroy(&srv->sse_mu);
    free(srv->sse_slots);
    free(srv);
}
