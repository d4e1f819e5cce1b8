/*
 * http_request.c - one HTTP request: copied from h2o on arrival, routed, read and answered by
 * its handler, and sent back on the loop thread with its access-log line.
 *
 * Request life cycle (loop = L, worker = W; the worker side is http_lanes.c):
 *
 *   L tk_http__on_req -> request_new (copy method, path, query, headers, body)
 *            -> route match -> INLINE ? run handler on L : tk_http__enqueue (its lane)
 *   W worker_main -> handler fills the response -> h2o_multithread_send_message
 *   L tk_http__on_done -> tk_http__finish: send the response if the client is still there,
 *     access log, free
 *
 * Handlers never touch h2o: everything they read was copied into tk_http_req_t on the loop
 * thread (the headers of tk_http__copied_headers, one table), and their answer waits in it until
 * finish. The client may disconnect while a worker runs: h2o then disposes the request's memory
 * pool. A small shared object in that pool (req_ref) links the two: its dispose callback clears
 * r->h2o and r->ref, and request_free clears ref->r, so whichever goes first never touches the
 * other's memory. Both run on the loop thread, so no lock is needed for that hand-shake.
 *
 * Errors have one format, {"errors":[{"message":..,"field":..}]}, and one status table
 * (tk_http_status_of). tk_http_reply_error with TK_EUNAVAIL also drops the worker's database
 * connections (tk_http_db_discard(req, NULL)): the dependency is down, the next request
 * reconnects.
 */
#include "http_int.h"

#include "tk/ids.h"
#include "tk/log.h"
#include "tk/mem.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

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

const char *tk_http_reason(int status)
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
    case 402:
        return "Payment Required";
    case 404:
        return "Not Found";
    case 409:
        return "Conflict";
    case 413:
        return "Payload Too Large";
    case 429:
        return "Too Many Requests";
    case 500:
        return "Internal Server Error";
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

void tk_http__set_body(tk_http_req_t *r, int status, const char *ctype, char *body, size_t len)
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
        tk_http__set_body(r, status, NULL, NULL, 0);
        return;
    }
    char *text = json_dumps(body, JSON_COMPACT | JSON_REAL_PRECISION(15));
    json_decref(body);
    tk_http__set_body(r, status, "application/json; charset=utf-8", text, text ? strlen(text) : 0);
}

void tk_http_reply_errors(tk_http_req_t *r, int status, json_t *errors)
{
    tk_http_reply_json(r, status, json_pack("{s:o}", "errors", errors));
}

void tk_http_reply_error(tk_http_req_t *r, const tk_err_t *err)
{
    int status = tk_http_status_of(err->code);
    if (err->code == TK_EUNAVAIL) /* a dependency is down: the next request reconnects */
        tk_http_db_discard(r, NULL);
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
    tk_http__set_body(r, status, ctype, copy, len);
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
    return r->headers[TK_HTTP__FORWARDED_FOR];
}

const char *tk_http_real_ip(const tk_http_req_t *r)
{
    return r->headers[TK_HTTP__REAL_IP];
}

void tk_http_set_cookie(tk_http_req_t *r, const char *cookie)
{
    if (r->ncookies < MAX_COOKIES)
        r->cookies[r->ncookies++] = tk_mem_strdup(cookie);
}

void tk_http__reply_message(tk_http_req_t *r, int status, const char *field, const char *message)
{
    json_t *errors = json_array();
    tk_http_errors_add(errors, field, message);
    tk_http_reply_errors(r, status, errors);
}

/* ------------------------------------------------------------------ request accessors */

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
    tk_http__reply_message(r, 404, NULL, "Not Found");
    return NULL;
}

/* Decodes %XX and '+' in place. */
static void url_decode(char *s)
{
    char *o = s;
    for (; *s; s++) {
        if (*s == '+') {
            *o++ = ' ';
        } else if (*s == '%' && tk_hex_value(s[1]) >= 0 && tk_hex_value(s[2]) >= 0) {
            *o++ = (char)(tk_hex_value(s[1]) * 16 + tk_hex_value(s[2]));
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
    if (r->headers[TK_HTTP__CONTENT_TYPE] == NULL ||
        strncasecmp(r->headers[TK_HTTP__CONTENT_TYPE], "application/json", 16) != 0) {
        tk_http__reply_message(r, 400, NULL, "Content-Type must be application/json");
        return NULL;
    }
    json_error_t jerr;
    json_t *doc = json_loadb(r->body, r->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL) {
        char msg[200];
        snprintf(msg, sizeof(msg), "Malformed JSON body: %s", jerr.text);
        tk_http__reply_message(r, 400, NULL, msg);
        return NULL;
    }
    if (!json_is_object(doc)) {
        json_decref(doc);
        tk_http__reply_message(r, 400, NULL, "The body must be a JSON object");
        return NULL;
    }
    r->json = doc;
    return doc;
}

/* Sign-out revokes a session in the auth database (DESIGN.md section 9): a token with a jti is
 * checked there, from a worker; where that cannot be done (the loop thread, the database
 * unreachable) the request is anonymous - fail closed. Tokens without a jti cannot be revoked.
 * An unreachable database is remembered, so that a route that needs the user answers 503 (try
 * again) rather than 401 (which a client reads as "signed out"). */
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
        r->auth_unavailable = r->worker != NULL;
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
    return r->headers[TK_HTTP__SIGNATURE];
}

const tk_session_user_t *tk_http_user(const tk_http_req_t *rc)
{
    tk_http_req_t *r = (tk_http_req_t *)rc;
    if (!r->user_checked) {
        r->user_checked = true;
        r->authenticated =
            tk_session_authenticate(r->headers[TK_HTTP__COOKIE], r->headers[TK_HTTP__AUTHORIZATION],
                                    &r->user) == 0 &&
            !session_revoked(r);
    }
    return r->authenticated ? &r->user : NULL;
}

const tk_session_user_t *tk_http_user_or_respond(tk_http_req_t *r)
{
    const tk_session_user_t *u = tk_http_user(r);
    if (u == NULL && r->auth_unavailable) {
        tk_http_set_retry_after(r, 1);
        tk_http__reply_message(r, 503, NULL, "Service unavailable");
    } else if (u == NULL) {
        tk_http__reply_message(r, 401, NULL, "Not authorized");
    }
    return u;
}

const tk_session_user_t *tk_http_user_body_or_respond(tk_http_req_t *r, json_t **body)
{
    *body = NULL;
    const tk_session_user_t *u = tk_http_user_or_respond(r);
    if (u == NULL || (*body = tk_http_body_or_respond(r)) == NULL)
        return NULL;
    return u;
}

/* ------------------------------------------------------------------ request objects */

static char *iov_dup(h2o_iovec_t v)
{
    return v.base ? tk_mem_strndup(v.base, v.len) : NULL;
}

/* h2o keeps header names lower-case, as these are. */
const char *const tk_http__copied_headers[TK_HTTP__HEADERS] = {
    [TK_HTTP__COOKIE] = "cookie",
    [TK_HTTP__AUTHORIZATION] = "authorization",
    [TK_HTTP__CONTENT_TYPE] = "content-type",
    [TK_HTTP__FORWARDED_FOR] = "x-forwarded-for",
    [TK_HTTP__REAL_IP] = "x-real-ip",
    [TK_HTTP__SIGNATURE] = "stripe-signature",
    [TK_HTTP__CONSISTENCY_TOKEN] = "x-consistency-token",
};

static ssize_t find_header(h2o_req_t *req, const char *name)
{
    return h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
}

void tk_http_add_header(tk_http_req_t *r, const char *name, const char *value)
{
    if (r->nextra < MAX_EXTRA_HEADERS) {
        r->extra[r->nextra][0] = tk_mem_strdup(name);
        r->extra[r->nextra++][1] = tk_mem_strdup(value);
    }
}

/* A copied header from any thread; any other one only on the loop thread (TK_ROUTE_INLINE
 * routes): workers must not touch h2o's request. */
const char *tk_http_header(const tk_http_req_t *rc, const char *name)
{
    tk_http_req_t *r = (tk_http_req_t *)rc;
    for (size_t i = 0; i < TK_HTTP__HEADERS; i++)
        if (strcasecmp(name, tk_http__copied_headers[i]) == 0)
            return r->headers[i];
    if (r->h2o == NULL || r->worker != NULL || r->nheader_values == MAX_EXTRA_HEADERS)
        return NULL;
    ssize_t i = h2o_find_header_by_str(&r->h2o->headers, name, strlen(name), -1);
    if (i < 0)
        return NULL;
    return r->header_values[r->nheader_values++] = iov_dup(r->h2o->headers.entries[i].value);
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

int tk_http__socket_fd_of(h2o_req_t *req)
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
    r->fd = tk_http__socket_fd_of(req);
    r->sse_slot = -1;
    r->ref = h2o_mem_alloc_shared(&req->pool, sizeof(*r->ref), on_req_dispose);
    r->ref->r = r;
    r->method = iov_dup(req->method);
    size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    r->path = tk_mem_strndup(req->path.base, path_len);
    if (req->query_at != SIZE_MAX)
        r->query =
            tk_mem_strndup(req->path.base + req->query_at + 1, req->path.len - req->query_at - 1);
    for (size_t k = 0; k < TK_HTTP__HEADERS; k++) {
        ssize_t at = find_header(req, tk_http__copied_headers[k]);
        r->headers[k] = at < 0 ? NULL : iov_dup(req->headers.entries[at].value);
    }
    struct sockaddr_storage sa;
    socklen_t salen = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&sa);
    if (salen > 0 && sa.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, r->peer, sizeof(r->peer));
    else if (salen > 0 && sa.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&sa)->sin6_addr, r->peer, sizeof(r->peer));
    if (req->entity.base != NULL && req->entity.len <= TK_HTTP_MAX_BODY) {
        /* All of it, NUL bytes included: the parser is given body_len bytes (strndup would stop
         * at the first NUL and leave the parser reading past the copy). */
        r->body = tk_mem_alloc(req->entity.len + 1);
        memcpy(r->body, req->entity.base, req->entity.len);
        r->body[req->entity.len] = '\0';
        r->body_len = req->entity.len;
    }
    ssize_t i = find_header(req, "x-request-id");
    if (i >= 0 && request_id_acceptable(req->headers.entries[i].value))
        memcpy(r->request_id, req->headers.entries[i].value.base,
               req->headers.entries[i].value.len);
    else
        tk_uuid_new(r->request_id);
    return r;
}

void tk_http__request_free(tk_http_req_t *r)
{
    if (r->ref != NULL)
        r->ref->r = NULL;
    if (r->sse_slot >= 0)
        tk_http__sse_release(r->srv, r->sse_slot);
    free(r->method);
    free(r->path);
    free(r->query);
    for (size_t i = 0; i < TK_HTTP__HEADERS; i++)
        free(r->headers[i]);
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
    free(r);
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
void tk_http__finish(tk_http_req_t *r)
{
    if (h2o_linklist_is_linked(&r->plink))
        h2o_linklist_unlink(&r->plink);
    if (r->answered) { /* the loop answered at the deadline: the handler's work is dropped */
        tk_http__request_free(r);
        return;
    }
    if (!r->replied)
        tk_http__reply_message(r, 500, NULL, "Something went wrong");
    h2o_req_t *req = r->h2o;
    if (req != NULL && r->sse_channel != NULL) {
        tk_http__sse_start(r, req);
    } else if (req != NULL) {
        req->res.status = r->status;
        req->res.reason = tk_http_reason(r->status);
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
    tk_http__request_free(r);
}

/*
 * Loop thread: answer @p status now, without the handler (queue full, deadline, client gone).
 * The handler's fields are not touched: a worker may be running it.
 */
void tk_http__answer_early(tk_http_req_t *r, int status, const char *message, const char *outcome)
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
        req->res.reason = tk_http_reason(status);
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

int tk_http__on_req(h2o_handler_t *self, h2o_req_t *req)
{
    tk_http_server_t *srv = ((struct tk_handler *)self)->srv;
    tk_http_req_t *r = request_new(srv, req);
    atomic_fetch_add(&srv->in_flight, 1);

    if (req->entity.base != NULL && req->entity.len > TK_HTTP_MAX_BODY) {
        tk_http__reply_message(r, 413, NULL, "Request body is larger than 1 MiB");
        tk_http__finish(r);
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
        tk_http__reply_message(r, 404, NULL, "Not Found");
        tk_http__finish(r);
        return 0;
    }
    if (r->route->flags & TK_ROUTE_INLINE) {
        r->route->fn(r);
        tk_http__finish(r);
    } else {
        tk_http__enqueue(srv, r);
    }
    return 0;
}
