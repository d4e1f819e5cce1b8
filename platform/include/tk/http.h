/*
 * http.h - the REST front: an h2o event loop for sockets and a pool of worker threads for
 * everything that touches PostgreSQL.
 *
 * The loop thread accepts, parses HTTP, matches a route and copies what the handler needs
 * (method, path parameters, query, body, cookies) into a tk_http_req_t. Routes flagged
 * TK_ROUTE_INLINE run right there (health, metrics, nothing that blocks); all others are queued to
 * a worker, which may block on libpq with its own connections, and the finished response is
 * handed back to the loop through an h2o multithread queue. A slow query therefore never stalls
 * other connections: only the worker that runs it waits.
 *
 * Bounds (DESIGN.md section 12, README for the variables): worker routes run in one lane per
 * context ("/api/<context>/..."), each with HTTP_WORKERS threads and a queue of HTTP_QUEUE_MAX
 * (503 + Retry-After past it); each has a deadline (HTTP_DEADLINE_MS, then 503); a queued request
 * whose client has gone is dropped unrun; connections are capped (HTTP_MAX_CONNECTIONS); a body
 * over TK_HTTP_MAX_BODY is refused with 413 from its declared length; HTTP/1.1 only.
 *
 * Handlers fill the response through tk_http_reply_* and return; they never touch h2o.
 * Errors use the contract's body {"errors":[{"message":...,"field":...}]} (DESIGN.md section 9).
 */
#ifndef TK_HTTP_H
#define TK_HTTP_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "tk/err.h"
#include "tk/session.h"

typedef struct tk_http_server tk_http_server_t;
typedef struct tk_http_req tk_http_req_t;

typedef void (*tk_http_handler_fn)(tk_http_req_t *req);

enum {
    TK_ROUTE_INLINE = 1 << 0, /* run on the loop thread: must not block */
};

#define TK_HTTP_MAX_BODY (1024 * 1024)

/**
 * @brief Create a server listening on 0.0.0.0:@p port with @p workers worker threads per lane
 *        (a lane per context, see the top). Reads the limits from the environment.
 * @return owned, free with tk_http_server_free; NULL with err set (port in use, a malformed
 *         limit variable, ...).
 */
tk_http_server_t *tk_http_server_new(int port, int workers, tk_err_t *err);

/**
 * @brief Register @p handler for @p method ("GET", ...) and @p pattern, whose segments may be
 *        ":name" captures ("/api/tickets/:id"). Call before tk_http_server_run.
 *        @p method and @p pattern are borrowed and must outlive the server (use literals).
 */
void tk_http_route(tk_http_server_t *srv, const char *method, const char *pattern,
                   tk_http_handler_fn handler, unsigned flags);

/** @brief tk_http_route with user data @p ud (borrowed, must outlive the server), which the
 *         handler reads with tk_http_route_ud. */
void tk_http_route_with(tk_http_server_t *srv, const char *method, const char *pattern,
                        tk_http_handler_fn handler, void *ud, unsigned flags);

/** @brief The user data of the route @p req matched (tk_http_route_with), or NULL. */
void *tk_http_route_ud(const tk_http_req_t *req);

/**
 * @brief A source of GET /metrics lines. Called on the event loop: it must not block (read
 *        atomics, or return a text sampled elsewhere).
 * @return an owned Prometheus text (freed by the server with free()), or NULL for nothing.
 */
typedef char *tk_http_metrics_fn(void *ud);

/**
 * @brief Append @p fn's text to GET /metrics, after the server's own counters and the sources
 *        registered before it. Up to 4, before run. @p ud borrowed, must outlive the server.
 */
void tk_http_metrics(tk_http_server_t *srv, tk_http_metrics_fn *fn, void *ud);

/** A readiness probe: 0 when ready, else a TK_E* with err set. @p ud as registered. */
typedef int tk_http_probe_fn(tk_http_req_t *req, void *ud, tk_err_t *err);

/**
 * @brief Register a readiness probe run by GET /readyz on a worker (e.g. check a database).
 *        Up to 8 probes. @p name borrowed (literal); @p ud borrowed, must outlive the server.
 */
void tk_http_readiness(tk_http_server_t *srv, const char *name, tk_http_probe_fn *probe, void *ud);

/** @brief Serve until *@p stop becomes non-zero (checked every 100 ms). Thread: the caller's. */
int tk_http_server_run(tk_http_server_t *srv, volatile int *stop);

/** @brief Port actually bound (useful with port 0 in tests). */
int tk_http_server_port(const tk_http_server_t *srv);

/** @brief Stop workers and free. Accepts NULL. */
void tk_http_server_free(tk_http_server_t *srv);

/* ---- request accessors: all borrowed, valid until the handler returns ---- */

const char *tk_http_path(const tk_http_req_t *req);
/** @brief A ":name" capture of the route, or NULL. */
const char *tk_http_param(const tk_http_req_t *req, const char *name);
/** @brief The ":name" capture when it is a UUID (ids are UUIDs: DESIGN.md section 9), or NULL
 *         after replying 404 'Not Found' (a malformed id is an unknown one). Borrowed. */
const char *tk_http_id_or_respond(tk_http_req_t *req, const char *name);

/** @brief A decoded query-string value, or NULL when absent (or after 8 lookups).
 *         Borrowed, valid until the handler returns, however many lookups follow. */
const char *tk_http_query(const tk_http_req_t *req, const char *name);
const char *tk_http_request_id(const tk_http_req_t *req);

/** @brief The reason phrase of HTTP status @p status ("Not Found"); static, never NULL. */
const char *tk_http_reason(int status);

/** @brief A request header: "cookie", "authorization" or one of the few others the server keeps
 *         for handlers (X-Consistency-Token); NULL when absent or not kept. Case-insensitive
 *         name. Borrowed, valid until the request ends. */
const char *tk_http_header(const tk_http_req_t *req, const char *name);

/**
 * @brief The body parsed as a JSON object. An empty body counts as {}.
 * @return borrowed; NULL after replying 400 (malformed JSON, not an object, wrong content type).
 */
json_t *tk_http_body_or_respond(tk_http_req_t *req);

/** @brief The raw body as received (all of its bytes), for signed payloads; "" when none.
 *         Borrowed, valid during the handler. */
const char *tk_http_body_raw(const tk_http_req_t *req, size_t *len);

/** @brief The Stripe-Signature header, or NULL. Borrowed, valid during the handler. */
const char *tk_http_signature(const tk_http_req_t *req);

/** @brief The signed-in user, or NULL when anonymous (no, bad, expired or forged token). */
const tk_session_user_t *tk_http_user(const tk_http_req_t *req);

/** @brief The signed-in user, or NULL after replying 401 'Not authorized'. */
const tk_session_user_t *tk_http_user_or_respond(tk_http_req_t *req);

/**
 * @brief What a signed-in user's command needs first: the user (tk_http_user_or_respond), then
 *        the body (tk_http_body_or_respond); an anonymous caller's body is not parsed.
 * @param[out] body borrowed, valid during the handler; NULL when the call returns NULL.
 * @return borrowed; NULL after replying 401 (or 503) or 400.
 */
const tk_session_user_t *tk_http_user_body_or_respond(tk_http_req_t *req, json_t **body);

/**
 * @brief This worker's connection to @p context's database, connected on first use and
 *        re-established after a failure. Worker routes only.
 * @return borrowed (owned by the worker); NULL with err = TK_EUNAVAIL when the server is down.
 */
PGconn *tk_http_db(tk_http_req_t *req, const char *context, tk_err_t *err);

/**
 * @brief Drop this worker's connection to @p context (NULL: all of them), e.g. after TK_EUNAVAIL
 *        or a broken session; the next tk_http_db reconnects. tk_http_reply_error does it for all
 *        on TK_EUNAVAIL. No-op on inline routes.
 */
void tk_http_db_discard(tk_http_req_t *req, const char *context);

/* ---- responses: a handler calls exactly one tk_http_reply_* ---- */

/** @brief Reply @p status with @p body (consumed; NULL means no body, e.g. 204). */
void tk_http_reply_json(tk_http_req_t *req, int status, json_t *body);

/** @brief Reply with the contract's error body for @p err, status from err->code. On
 *         TK_EUNAVAIL the worker's database connections are dropped (reconnected on next use),
 *         so handlers need no clean-up of their own. */
void tk_http_reply_error(tk_http_req_t *req, const tk_err_t *err);

/** @brief Reply @p status with the error body made of @p errors (consumed JSON array). */
void tk_http_reply_errors(tk_http_req_t *req, int status, json_t *errors);

/** @brief Reply @p status with a raw body of @p content_type (both borrowed, copied). */
void tk_http_reply_raw(tk_http_req_t *req, int status, const char *content_type, const char *body,
                       size_t len);

/** @brief Add `Retry-After: @p seconds` (at least 1) to the response, e.g. with a 429. */
void tk_http_set_retry_after(tk_http_req_t *req, int seconds);

/** @brief The connection's peer address ("127.0.0.1", "::1"), "" when unknown. Borrowed. Who
 *         the client is behind a proxy is tk_client_addr_resolve's question (tk/client_addr.h). */
const char *tk_http_peer_addr(const tk_http_req_t *req);

/** @brief The raw X-Forwarded-For and X-Real-IP request headers, NULL when absent. Borrowed. */
const char *tk_http_forwarded_for(const tk_http_req_t *req);
const char *tk_http_real_ip(const tk_http_req_t *req);

/** @brief Add a Set-Cookie header to the response (copied). Call before replying. */
void tk_http_set_cookie(tk_http_req_t *req, const char *cookie);

/** @brief Add a response header (@p name lower-case; both copied), up to 8. Call before
 *         replying; ignored on event streams. */
void tk_http_add_header(tk_http_req_t *req, const char *name, const char *value);

/** @brief The request header @p name (lower-case), or NULL when absent, after 8 lookups, or
 *         on a worker: TK_ROUTE_INLINE routes only (the headers live on the loop thread).
 *         Borrowed, valid until the handler returns. */
const char *tk_http_header(const tk_http_req_t *req, const char *name);

/* ---- parking: a worker route that must wait for something without holding its worker ---- */

/**
 * @brief Park the request: the handler then returns without replying, and once it returned the
 *        worker calls @p then(req, arg) and moves on to other requests. The request stays open
 *        (and counted in flight) until someone calls tk_http_resume(req), exactly once per park;
 *        it must happen, also when the client left or the server stops (before
 *        tk_http_server_free). Ignored when the handler replied anyway.
 * Thread: the handler's. @p then runs on the worker, @p arg is passed through.
 */
void tk_http_park(tk_http_req_t *req, void (*then)(tk_http_req_t *req, void *arg), void *arg);

/**
 * @brief Queue a parked request to the workers again: its route's handler runs again from the
 *        start (tk_http_resumed then tells it so). Thread: any.
 */
void tk_http_resume(tk_http_req_t *req);

/** @brief How many times the request was resumed: 0 on its first run. */
int tk_http_resumed(const tk_http_req_t *req);

/* ---- server-sent events: long-lived responses fed from any thread ---- */

/**
 * @brief Turn the response into a text/event-stream subscribed to @p channel (copied, at most
 *        79 bytes, e.g. "order:<id>"), starting with @p first_event (a complete SSE event text
 *        such as "event: status\ndata: {...}\n\n", copied). The stream stays open after the
 *        handler returns until a publish marks it last, the client leaves, or the server stops.
 *        A comment line is sent every 15 s so proxies keep the connection.
 *        Streams are bounded per signed-in user (SSE_MAX_STREAMS_PER_USER), per channel
 *        (SSE_MAX_STREAMS_PER_ORDER) and in total (SSE_MAX_STREAMS): past a bound the reply is
 *        429 (user, channel) or 503 (total) with Retry-After instead of a stream.
 */
void tk_http_reply_sse(tk_http_req_t *req, const char *channel, const char *first_event);

/**
 * @brief Send @p event (an SSE event text, copied) to every stream of @p channel; @p last ends
 *        those streams after it. Thread: any (the write happens on the loop thread).
 */
void tk_http_sse_publish(tk_http_server_t *srv, const char *channel, const char *event, bool last);

/** @brief Number of open event streams (for tests and /metrics). Thread: any. */
long tk_http_sse_count(tk_http_server_t *srv);

/** @brief Number of streams of @p channel, open or being opened. Thread: any. */
long tk_http_sse_channel_count(tk_http_server_t *srv, const char *channel);

/**
 * @brief Run @p fn(srv, arg, stop) in a thread for the server's lifetime: started by
 *        tk_http_server_run, asked to stop (*stop = 1) and joined when the run ends. Used by
 *        contexts for listeners that feed event streams. Up to 4. @p arg borrowed; when
 *        @p free_arg is not NULL the server owns it and tk_http_server_free calls free_arg(arg)
 *        once no worker or background thread can use it any more.
 */
void tk_http_background(tk_http_server_t *srv,
                        void (*fn)(tk_http_server_t *srv, void *arg, atomic_int *stop), void *arg,
                        void (*free_arg)(void *arg));

/** @brief HTTP status for a TK_E* code (the one mapping table). */
int tk_http_status_of(int code);

/** @brief Append {"message":m,"field":f} to @p errors (f may be NULL). */
void tk_http_errors_add(json_t *errors, const char *field, const char *message);

#endif
