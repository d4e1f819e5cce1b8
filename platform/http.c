/*
 * http.c - the HTTP server: an h2o event loop on one thread for sockets, handing database work
 * to the worker pool (http_lanes.c). This file holds the server itself: the listener and its
 * connection bound, the h2o configuration, the life cycle (new, run, free), the registration
 * of routes, probes and background threads, and the built-in /healthz and /readyz. The other
 * parts: http_request.c (a request, routing, replies), http_lanes.c (workers, lanes, their
 * databases), http_sse.c (event streams), http_metrics.c (/metrics); http_int.h joins them.
 *
 * Only HTTP/1.1 is served: h2c upgrades and the HTTP/2 preface are refused
 * (upgrade_to_http2 = 0), since nothing here is tested over HTTP/2.
 *
 * Connections are bounded (HTTP_MAX_CONNECTIONS, below the fd limit): at the bound, or when
 * accept fails for want of descriptors, the listener stops reading (on_accept) and is looked at
 * again every ACCEPT_RETRY_MS, instead of spinning on a listener that stays readable. A declared
 * Content-Length over TK_HTTP_MAX_BODY is refused by h2o before the body is read; a filter turns
 * the error pages h2o sends itself (h2o_send_error: 413, 400 for a broken body) into the
 * contract's error body. A request line h2o cannot parse at all still gets h2o's fixed
 * text/plain 400, written before any configuration applies.
 *
 * Shutdown (tk_http_server_run once *stop is set): end the event streams, stop accepting, let
 * the requests in flight finish (bounded), stop the background threads, then the lanes.
 */
#include "http_int.h"

#include "tk/cfg.h"
#include "tk/ids.h"
#include "tk/log.h"
#include "tk/mem.h"

#include <arpa/inet.h>
#include <errno.h>
#include <h2o/http1.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

void tk_http_background(tk_http_server_t *srv,
                        void (*fn)(tk_http_server_t *srv, void *arg, atomic_int *stop), void *arg,
                        void (*free_arg)(void *arg))
{
    if (srv->nbg == MAX_BACKGROUND)
        abort(); /* a programming error caught at start-up */
    srv->bg[srv->nbg++] =
        (struct background){.fn = fn, .arg = arg, .free_arg = free_arg, .srv = srv};
}

static void *background_main(void *p)
{
    struct background *b = p;
    b->fn(b->srv, b->arg, &b->srv->bg_stop);
    return NULL;
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
        int rc = r->srv->probes[i].fn(r, r->srv->probes[i].ud, &err);
        json_object_set_new(checks, r->srv->probes[i].name,
                            json_string(rc == 0 ? "ok" : err.message));
        ready = ready && rc == 0;
    }
    tk_http_reply_json(
        r, ready ? 200 : 503,
        json_pack("{s:s, s:o}", "status", ready ? "ready" : "unavailable", "checks", checks));
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

tk_http_server_t *tk_http_server_new(int port, int workers, tk_err_t *err)
{
    const tk_cfg_t *cfg = tk_cfg(); /* the limits, checked by tk_cfg_load */
    struct tk_http_limits limits = {
        .queue_max = cfg->http_queue_max,
        .deadline_ms = cfg->http_deadline_ms,
        .max_conns = cfg->http_max_connections,
        .sse_total = cfg->sse_max_streams,
        .sse_per_user = cfg->sse_max_streams_per_user,
        .sse_per_channel = cfg->sse_max_streams_per_order,
    };
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
    h->super.on_req = tk_http__on_req;
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
    h2o_multithread_register_receiver(srv->queue, &srv->done, tk_http__on_done);
    h2o_multithread_register_receiver(srv->queue, &srv->sse_receiver, tk_http__on_sse_msg);
    h2o_linklist_init_anchor(&srv->streams);
    h2o_linklist_init_anchor(&srv->pending);
    h2o_timeout_init(srv->loop, &srv->ping_timeout, SSE_PING_MS);
    srv->ping_entry.cb = tk_http__on_ping;
    h2o_timeout_link(srv->loop, &srv->ping_timeout, &srv->ping_entry);
    h2o_timeout_init(srv->loop, &srv->reap_timeout, REAP_MS);
    srv->reap_entry.cb = tk_http__on_reap;
    h2o_timeout_link(srv->loop, &srv->reap_timeout, &srv->reap_entry);
    h2o_timeout_init(srv->loop, &srv->accept_timeout, ACCEPT_RETRY_MS);
    srv->accept_entry.cb = on_accept_retry;

    pthread_mutex_init(&srv->sse_mu, NULL);
    srv->sse_slots = tk_mem_zalloc(sizeof(struct sse_slot) * (size_t)srv->limits.sse_total);
    srv->nworkers = workers > 0 ? workers : 1;

    tk_http_route(srv, "GET", "/healthz", healthz, TK_ROUTE_INLINE);
    tk_http_route(srv, "GET", "/readyz", readyz, 0);
    tk_http_route(srv, "GET", "/metrics", tk_http__metrics, TK_ROUTE_INLINE);
    return srv;
}

void tk_http_route_with(tk_http_server_t *srv, const char *method, const char *pattern,
                        tk_http_handler_fn handler, void *ud, unsigned flags)
{
    if (srv->nroutes == MAX_ROUTES)
        abort(); /* a programming error caught at start-up */
    int lane = (flags & TK_ROUTE_INLINE) ? -1 : tk_http__lane_of(srv, pattern);
    srv->routes[srv->nroutes++] = (struct route){method, pattern, handler, flags, lane, ud};
}

void tk_http_route(tk_http_server_t *srv, const char *method, const char *pattern,
                   tk_http_handler_fn handler, unsigned flags)
{
    tk_http_route_with(srv, method, pattern, handler, NULL, flags);
}

void *tk_http_route_ud(const tk_http_req_t *req)
{
    return req->route != NULL ? req->route->ud : NULL;
}

void tk_http_readiness(tk_http_server_t *srv, const char *name, tk_http_probe_fn *probe, void *ud)
{
    if (srv->nprobes < MAX_PROBES)
        srv->probes[srv->nprobes++] = (struct probe){name, probe, ud};
}

int tk_http_server_port(const tk_http_server_t *srv)
{
    return srv->port;
}

static int shut_conn(h2o_req_t *req, void *cbdata)
{
    (void)cbdata;
    int fd = tk_http__socket_fd_of(req);
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
    tk_http__lanes_start(srv);
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
    tk_http__sse_end_all(srv);
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
    tk_http__lanes_stop(srv);
    for (int i = 0; i < 10; i++)
        h2o_evloop_run(srv->loop, 10);
    srv->ran = true;
    return 0;
}

void tk_http_server_free(tk_http_server_t *srv)
{
    if (srv == NULL)
        return;
    tk_http__lanes_stop(srv);
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
    for (size_t i = 0; i < srv->nbg; i++) /* no worker or listener can use an arg any more */
        if (srv->bg[i].free_arg != NULL)
            srv->bg[i].free_arg(srv->bg[i].arg);
    free(srv);
}
