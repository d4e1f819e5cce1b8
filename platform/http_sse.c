/*
 * http_sse.c - server-sent event streams: a handler answers with tk_http_reply_sse, the loop
 * thread keeps the stream open, and any thread publishes events to a channel.
 *
 * A stream lives in its request's memory pool (freed by h2o when the connection ends) and on
 * srv->streams. h2o allows one h2o_send in flight: events published meanwhile queue as chunks
 * and go out together when h2o calls proceed. States: open -> ending (last event queued) ->
 * ended (FINAL sent, or the client stopped); dispose unlinks it. Every SSE_PING_MS a comment
 * line keeps idle streams open through proxies; shutdown ends them all.
 *
 * Stream limits: a slot is reserved when the handler asks for a stream (any thread), counted
 * per signed-in user, per channel and in total, and released when the stream is disposed or
 * never starts. Past a bound the handler's reply becomes 429 (this user or this order has enough
 * streams) or 503 (the server has), with Retry-After. A linear scan is enough: the table is
 * bounded by SSE_MAX_STREAMS and one is opened per client action.
 */
#include "http_int.h"

#include "tk/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void tk_http__sse_release(tk_http_server_t *srv, int slot)
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
        tk_http__reply_message(r, status, NULL, why);
        return;
    }
    tk_http__set_body(r, 200, "text/event-stream", NULL, 0);
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
        tk_http__sse_release(st->srv, st->slot);
    atomic_fetch_sub(&st->srv->sse_open, 1);
}

void tk_http__sse_start(tk_http_req_t *r, h2o_req_t *req)
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
void tk_http__on_sse_msg(h2o_multithread_receiver_t *receiver, h2o_linklist_t *messages)
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
void tk_http__on_ping(h2o_timeout_entry_t *entry)
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
void tk_http__sse_end_all(tk_http_server_t *srv)
{
    for (h2o_linklist_t *n = srv->streams.next; n != &srv->streams; n = n->next) {
        struct sse_stream *st = H2O_STRUCT_FROM_MEMBER(struct sse_stream, link, n);
        st->ending = true;
        sse_flush(st);
    }
}
