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
 * queues it to the workers again, and its handler runs again from the start. A waiting request
 * therefore holds no worker thread, only its memory.
 *
 * The client may disconnect while a worker runs: h2o then disposes the request's memory pool.
 * A small shared object in that pool (req_ref) clears r->h2o in its dispose callback; finish
 * checks it. Both run on the loop thread, so no lock is needed for that hand-shake.
 */
#include "tk/http.h"
#include "tk/cfg.h"
#include "tk/ids.h"
#include "tk/log.h"
#include "tk/mem.h"

#include <ctype.h>
#include <errno.h>
#include <h2o.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_ROUTES 64
#define MAX_PARAMS 4
#define MAX_PROBES 8
#define MAX_COOKIES 4
#define MAX_RESP_HEADERS 4
#define MAX_CONTEXT_CONNS 5
#define H2O_ENTITY_LIMIT (16 * 1024 * 1024)
#define MAX_BACKGROUND 4
#define MAX_QUERY_VALUES 8
#define SSE_CHANNEL_MAX 80
#define SSE_PING_MS 15000

struct route {
    const char *method;
    const char *pattern;
    tk_http_handler_fn fn;
    unsigned flags;
};

struct probe {
    const char *name;
    int (*fn)(tk_http_req_t *req, tk_err_t *err);
};

struct worker {
    tk_http_server_t *srv;
    pthread_t tid;
    const char *conn_names[MAX_CONTEXT_CONNS];
    PGconn *conns[MAX_CONTEXT_CONNS];
};

struct background {
    void (*fn)(tk_http_server_t *srv, void *arg, volatile int *stop);
    void *arg;
    tk_http_server_t *srv;
    pthread_t tid;
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

    struct worker *workers;
    int nworkers;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    tk_http_req_t *job_head, *job_tail;
    bool stopping;

    /* Server-sent event streams (loop thread only) and their feeds. */
    h2o_linklist_t streams;
    h2o_multithread_receiver_t sse_receiver;
    h2o_timeout_t ping_timeout;
    h2o_timeout_entry_t ping_entry;
    atomic_long sse_open;
    struct background bg[MAX_BACKGROUND];
    size_t nbg;
    volatile int bg_stop;

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
    h2o_req_t *h2o; /* NULL once the client went away */
    struct req_ref *ref;
    const struct route *route;
    struct worker *worker;
    tk_http_req_t *next;
    int64_t started_ms;

    char *method, *path, *query, *cookie, *authorization, *content_type;
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
    char *kept[1];                           /* request headers of kept_headers[], or NULL */
    char *resp_headers[MAX_RESP_HEADERS][2]; /* tk_http_add_header: name, value */
    size_t nresp_headers;
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

void tk_http_set_cookie(tk_http_req_t *r, const char *cookie)
{
    if (r->ncookies < MAX_COOKIES)
        r->cookies[r->ncookies++] = tk_mem_strdup(cookie);
}

void tk_http_add_header(tk_http_req_t *r, const char *name, const char *value)
{
    if (r->nresp_headers == MAX_RESP_HEADERS)
        return;
    r->resp_headers[r->nresp_headers][0] = tk_mem_strdup(name);
    r->resp_headers[r->nresp_headers][1] = tk_mem_strdup(value);
    r->nresp_headers++;
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

const char *tk_http_header(const tk_http_req_t *r, const char *name)
{
    if (strcasecmp(name, "cookie") == 0)
        return r->cookie;
    if (strcasecmp(name, "authorization") == 0)
        return r->authorization;
    for (size_t i = 0; i < sizeof(kept_headers) / sizeof(kept_headers[0]); i++)
        if (strcasecmp(name, kept_headers[i]) == 0)
            return r->kept[i];
    return NULL;
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

const tk_session_user_t *tk_http_user(const tk_http_req_t *rc)
{
    tk_http_req_t *r = (tk_http_req_t *)rc;
    if (!r->user_checked) {
        r->user_checked = true;
        r->authenticated = tk_session_authenticate(r->cookie, r->authorization, &r->user) == 0;
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
    if (w->conns[i] != NULL && PQstatus(w->conns[i]) == CONNECTION_OK)
        return w->conns[i];
    PQfinish(w->conns[i]);
    w->conns[i] = NULL;
    const char *keys[3], *vals[3];
    if (tk_cfg_pg_params(context, keys, vals) != 0) {
        tk_err_set(err, TK_EINTERNAL, NULL, "unknown context %s", context);
        return NULL;
    }
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(c) != CONNECTION_OK) {
        tk_log(TK_LOG_WARN, "http", "database unavailable", "\"context\":\"%s\"", context);
        PQfinish(c);
        tk_err_set(err, TK_EUNAVAIL, NULL, "Service unavailable");
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

static bool request_id_acceptable(h2o_iovec_t v)
{
    if (v.len == 0 || v.len > 64)
        return false;
    for (size_t i = 0; i < v.len; i++)
        if (!isalnum((unsigned char)v.base[i]) && v.base[i] != '-' && v.base[i] != '_')
            return false;
    return true;
}

static void on_req_dispose(void *p)
{
    struct req_ref *ref = p;
    if (ref->r != NULL)
        ref->r->h2o = NULL;
}

static tk_http_req_t *request_new(tk_http_server_t *srv, h2o_req_t *req)
{
    tk_http_req_t *r = tk_mem_zalloc(sizeof(*r));
    r->srv = srv;
    r->h2o = req;
    r->started_ms = tk_mono_ms();
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
    for (size_t k = 0; k < sizeof(kept_headers) / sizeof(kept_headers[0]); k++) {
        ssize_t at =
            h2o_find_header_by_str(&req->headers, kept_headers[k], strlen(kept_headers[k]), -1);
        r->kept[k] = at < 0 ? NULL : iov_dup(req->headers.entries[at].value);
    }
    if (req->entity.base != NULL && req->entity.len <= TK_HTTP_MAX_BODY) {
        r->body = tk_mem_strndup(req->entity.base, req->entity.len);
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

static void request_free(tk_http_req_t *r)
{
    if (r->ref != NULL)
        r->ref->r = NULL;
    free(r->method);
    free(r->path);
    free(r->query);
    free(r->cookie);
    free(r->authorization);
    free(r->content_type);
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
    for (size_t i = 0; i < sizeof(kept_headers) / sizeof(kept_headers[0]); i++)
        free(r->kept[i]);
    for (size_t i = 0; i < r->nresp_headers; i++) {
        free(r->resp_headers[i][0]);
        free(r->resp_headers[i][1]);
    }
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

void tk_http_reply_sse(tk_http_req_t *r, const char *channel, const char *first_event)
{
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
                        void (*fn)(tk_http_server_t *srv, void *arg, volatile int *stop), void *arg)
{
    if (srv->nbg == MAX_BACKGROUND)
        abort(); /* a programming error caught at start-up */
    srv->bg[srv->nbg++] = (struct background){.fn = fn, .arg = arg, .srv = srv};
}

static void *background_main(void *p)
{
    struct background *b = p;
    b->fn(b->srv, b->arg, &b->srv->bg_stop);
    return NULL;
}

/* Loop thread: send what the handler produced, log, free. */
static void finish(tk_http_req_t *r)
{
    tk_http_server_t *srv = r->srv;
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
        h2o_iovec_t rid = h2o_strdup(&req->pool, r->request_id, SIZE_MAX);
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL,
                              rid.base, rid.len);
        for (size_t i = 0; i < r->ncookies; i++) {
            h2o_iovec_t c = h2o_strdup(&req->pool, r->cookies[i], SIZE_MAX);
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_SET_COOKIE, NULL, c.base,
                           c.len);
        }
        for (size_t i = 0; i < r->nresp_headers; i++) {
            h2o_iovec_t n = h2o_strdup(&req->pool, r->resp_headers[i][0], SIZE_MAX);
            h2o_iovec_t v = h2o_strdup(&req->pool, r->resp_headers[i][1], SIZE_MAX);
            h2o_add_header_by_str(&req->pool, &req->res.headers, n.base, n.len, 0, NULL, v.base,
                                  v.len);
        }
        req->res.content_length = r->resp_len;
        h2o_send_inline(req, r->resp_body ? r->resp_body : "", r->resp_len);
    }
    int64_t ms = tk_mono_ms() - r->started_ms;
    int cls = r->status / 100;
    if (cls >= 1 && cls <= 5)
        atomic_fetch_add(&srv->requests_total[cls], 1);
    atomic_fetch_add(&srv->duration_ms_sum, (long)ms);
    atomic_fetch_sub(&srv->in_flight, 1);
    tk_log(TK_LOG_INFO, "http", "access",
           "\"request_id\":\"%s\",\"method\":\"%.16s\",\"path\":\"%.200s\",\"status\":%d,"
           "\"ms\":%lld,\"bytes\":%zu%s",
           r->request_id, r->method, r->path, r->status, (long long)ms, r->resp_len,
           req == NULL ? ",\"client_gone\":true" : "");
    request_free(r);
}

/* ------------------------------------------------------------------ workers */

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    tk_http_server_t *srv = w->srv;
    for (;;) {
        pthread_mutex_lock(&srv->mu);
        while (srv->job_head == NULL && !srv->stopping)
            pthread_cond_wait(&srv->cv, &srv->mu);
        tk_http_req_t *r = srv->job_head;
        if (r == NULL) {
            pthread_mutex_unlock(&srv->mu);
            break;
        }
        srv->job_head = r->next;
        if (srv->job_head == NULL)
            srv->job_tail = NULL;
        pthread_mutex_unlock(&srv->mu);

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

static void enqueue(tk_http_server_t *srv, tk_http_req_t *r)
{
    pthread_mutex_lock(&srv->mu);
    r->next = NULL;
    if (srv->job_tail != NULL)
        srv->job_tail->next = r;
    else
        srv->job_head = r;
    srv->job_tail = r;
    pthread_cond_signal(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
}

void tk_http_resume(tk_http_req_t *r)
{
    r->resumes++;
    enqueue(r->srv, r);
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
    char buf[2048];
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
                  "tk_http_event_streams %ld\n",
                  atomic_load(&srv->duration_ms_sum), atomic_load(&srv->in_flight),
                  atomic_load(&srv->sse_open));
    tk_http_reply_raw(r, 200, "text/plain; version=0.0.4", buf, (size_t)n);
}

/* ------------------------------------------------------------------ server */

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err != NULL)
        return;
    tk_http_server_t *srv = listener->data;
    h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
    if (sock != NULL)
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

tk_http_server_t *tk_http_server_new(int port, int workers, tk_err_t *err)
{
    int bound = 0;
    int fd = listen_on(port, &bound, err);
    if (fd < 0)
        return NULL;
    tk_http_server_t *srv = tk_mem_zalloc(sizeof(*srv));
    srv->port = bound;
    h2o_config_init(&srv->config);
    srv->config.server_name = h2o_iovec_init(H2O_STRLIT("ticketing"));
    srv->config.max_request_entity_size = H2O_ENTITY_LIMIT;
    h2o_hostconf_t *host =
        h2o_config_register_host(&srv->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    struct tk_handler *h = (struct tk_handler *)h2o_create_handler(path, sizeof(*h));
    h->super.on_req = on_req;
    h->srv = srv;

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
    h2o_timeout_init(srv->loop, &srv->ping_timeout, SSE_PING_MS);
    srv->ping_entry.cb = on_ping;
    h2o_timeout_link(srv->loop, &srv->ping_timeout, &srv->ping_entry);

    pthread_mutex_init(&srv->mu, NULL);
    pthread_cond_init(&srv->cv, NULL);
    srv->nworkers = workers > 0 ? workers : 1;
    srv->workers = tk_mem_zalloc(sizeof(struct worker) * (size_t)srv->nworkers);
    for (int i = 0; i < srv->nworkers; i++) {
        srv->workers[i].srv = srv;
        pthread_create(&srv->workers[i].tid, NULL, worker_main, &srv->workers[i]);
    }

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
    srv->routes[srv->nroutes++] = (struct route){method, pattern, handler, flags};
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

int tk_http_server_run(tk_http_server_t *srv, volatile int *stop)
{
    tk_log(TK_LOG_INFO, "http", "listening", "\"port\":%d,\"workers\":%d", srv->port,
           srv->nworkers);
    srv->bg_stop = 0;
    for (size_t i = 0; i < srv->nbg; i++)
        pthread_create(&srv->bg[i].tid, NULL, background_main, &srv->bg[i]);
    while (!*stop)
        h2o_evloop_run(srv->loop, 100);
    sse_end_all(srv);
    /* Stop accepting, then let requests already handed to workers complete (bounded). */
    if (srv->listener != NULL) {
        h2o_socket_read_stop(srv->listener);
        h2o_socket_close(srv->listener);
        srv->listener = NULL;
    }
    int64_t deadline = tk_mono_ms() + 5000;
    while ((atomic_load(&srv->in_flight) > 0 || atomic_load(&srv->sse_open) > 0) &&
           tk_mono_ms() < deadline)
        h2o_evloop_run(srv->loop, 50);
    srv->bg_stop = 1;
    for (size_t i = 0; i < srv->nbg; i++)
        pthread_join(srv->bg[i].tid, NULL);
    return 0;
}

void tk_http_server_free(tk_http_server_t *srv)
{
    if (srv == NULL)
        return;
    pthread_mutex_lock(&srv->mu);
    srv->stopping = true;
    pthread_cond_broadcast(&srv->cv);
    pthread_mutex_unlock(&srv->mu);
    for (int i = 0; i < srv->nworkers; i++)
        pthread_join(srv->workers[i].tid, NULL);
    /* Deliver completions the workers posted while stopping, then tear down. */
    h2o_evloop_run(srv->loop, 0);
    if (srv->listener != NULL)
        h2o_socket_close(srv->listener);
    if (h2o_timeout_is_linked(&srv->ping_entry))
        h2o_timeout_unlink(&srv->ping_entry);
    h2o_timeout_dispose(srv->loop, &srv->ping_timeout);
    h2o_multithread_unregister_receiver(srv->queue, &srv->sse_receiver);
    h2o_multithread_unregister_receiver(srv->queue, &srv->done);
    h2o_multithread_destroy_queue(srv->queue);
    h2o_context_dispose(&srv->ctx);
    h2o_config_dispose(&srv->config);
    free(srv->workers);
    pthread_mutex_destroy(&srv->mu);
    pthread_cond_destroy(&srv->cv);
    free(srv);
}
