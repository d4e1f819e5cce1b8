/*
 * order_events.c - GET /api/orders/:id/events: Server-Sent Events of one order's status, so a
 * client can show a live countdown and learn at once that its order was paid or cancelled.
 *
 * Sources. order_view.c announces every status change it commits with pg_notify on
 * TK_ORDERS_STATUS_CHANNEL. One background thread per server (tk_http_background) LISTENs on a
 * connection of its own and publishes each change to the SSE channel "order:<id>"
 * (tk_http_sse_publish); the same thread reads order_view once a second for the watched orders,
 * which closes the gaps of LISTEN: a change committed between the handler's read and its
 * stream's subscription, and notifications lost while the listening connection was down.
 *
 * The watch list. A handler that opens a stream first adds its order to a process-wide list
 * (bounded: MAX_WATCHED, beyond which the route answers 503) with the version it sent. The thread
 * publishes a change only when its version is newer than the list's, so a notification and the
 * once-a-second read never send one change twice, and a replay re-notifying old changes sends
 * nothing. A watched order's life, with the function behind each transition:
 *
 *   (none) --watch_add(): a stream opens------------------------------> open
 *   open   --on_change(): a newer status, not terminal (status event)--> open
 *   open   --tick(): every second (countdown event)--------------------> open
 *   open   --on_change(): a newer terminal status (status event, last)-> ended
 *   open   --tick(): no stream of this order, IDLE_DROP_MS after the last opened-> (none)
 *   ended  --tick(): the terminal event again (last)-------------------> ended
 *   ended  --tick(): TERMINAL_GRACE_MS after it ended------------------> (none)
 *
 * An ended order's terminal event is published again at each tick during TERMINAL_GRACE_MS: a
 * stream subscribes on the loop thread a moment after its handler returned, and a change that
 * landed in that moment would otherwise be lost to it. A stream that already ended is not sent
 * anything again (http.c skips ended streams). The list is process-wide because handlers cannot
 * reach their server's state: one orders server per process (the binary's case).
 *
 * Events (data is one line of compact JSON):
 *   event: status     {"id","status","version","expiresAt","secondsLeft"}  first, and on change
 *   event: countdown  {"id","secondsLeft"}                                 every second while open
 * The stream ends after a terminal status (cancelled, complete); an order that is already
 * terminal gets its status event as a plain text/event-stream response that ends at once.
 */
#include "orders_read.h"

#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ev_order.h"
#include "orders.h"
#include "tk/backoff.h"
#include "tk/ids.h"
#include "tk/log.h"
#include "tk/mem.h"
#include "tk/pg.h"

#define MAX_WATCHED 1024
#define POLL_MS 1000
#define WAIT_SLICE_MS 250
#define TERMINAL_GRACE_MS 3000
#define IDLE_DROP_MS 5000
#define RECONNECT_MAX_MS 5000
#define STATUS_MAX 24

#define VIEW_COLUMNS "id, status, version, " TK_PG_UTC_TEXT("expires_at")

typedef struct watch {
    char id[TK_UUID_LEN + 1]; /* lower case, as PostgreSQL prints uuids */
    char status[STATUS_MAX];
    int64_t version;
    char expires_at[TK_TIME_LEN + 1];
    int64_t expires_ms;   /* epoch ms */
    int64_t added_ms;     /* monotonic: the last time a stream was opened for it */
    int64_t ended_ms;     /* monotonic: when it became terminal; 0 while open */
    char *terminal_event; /* owned while ended: re-sent during the grace period */
} watch_t;

/* The watch list of one server: the route's and the listener's user data, owned by the server
 * (freed by tk_http_server_free), so several servers can live in one process. */
typedef struct order_events {
    pthread_mutex_t mu;
    watch_t w[MAX_WATCHED];
    size_t n;
    const char *database; /* borrowed: the context descriptor's */
} order_events_t;

static bool status_terminal(const char *status)
{
    ev_order_status_t s;
    return ev_order_status_parse(status, &s) == 0 &&
           (s == EV_ORDER_CANCELLED || s == EV_ORDER_COMPLETE);
}

/* Whole seconds until @p expires_ms, rounded up, never negative. */
static int64_t seconds_left(int64_t expires_ms, int64_t now_ms)
{
    int64_t ms = expires_ms - now_ms;
    return ms <= 0 ? 0 : (ms + 999) / 1000;
}

static void channel_of(const char *id, char out[TK_UUID_LEN + 8])
{
    snprintf(out, TK_UUID_LEN + 8, "order:%s", id);
}

/* "event: <name>\ndata: <compact json>\n\n"; consumes @p data. Owned, free(). */
static char *sse_text(const char *name, json_t *data)
{
    char *js = json_dumps(data, JSON_COMPACT);
    json_decref(data);
    if (js == NULL)
        abort(); /* jansson's allocation failed: as tk_mem_alloc does */
    size_t len = strlen(name) + strlen(js) + 20;
    char *out = tk_mem_alloc(len);
    snprintf(out, len, "event: %s\ndata: %s\n\n", name, js);
    free(js);
    return out;
}

/* secondsLeft counts down to expiresAt while the order is open, and is 0 once it is closed. */
static char *status_event(const watch_t *w)
{
    int64_t left = status_terminal(w->status) ? 0 : seconds_left(w->expires_ms, tk_now_ms());
    return sse_text("status", json_pack("{s:s, s:s, s:I, s:s, s:I}", "id", w->id, "status",
                                        w->status, "version", (json_int_t)w->version, "expiresAt",
                                        w->expires_at, "secondsLeft", (json_int_t)left));
}

/* Fill @p w from columns id, status, version, expiresAt of @p res row @p i. */
static void watch_from_row(watch_t *w, const PGresult *res, int i)
{
    memset(w, 0, sizeof(*w));
    snprintf(w->id, sizeof(w->id), "%s", PQgetvalue(res, i, 0));
    snprintf(w->status, sizeof(w->status), "%s", PQgetvalue(res, i, 1));
    w->version = strtoll(PQgetvalue(res, i, 2), NULL, 10);
    snprintf(w->expires_at, sizeof(w->expires_at), "%s", PQgetvalue(res, i, 3));
    if (tk_time_parse(w->expires_at, &w->expires_ms) != 0)
        w->expires_ms = 0;
}

/* ---- the watch list; every function below takes reg->mu unless it says "locked" ---- */

static watch_t *find_locked(order_events_t *reg, const char *id)
{
    for (size_t i = 0; i < reg->n; i++)
        if (strcmp(reg->w[i].id, id) == 0)
            return &reg->w[i];
    return NULL;
}

static void remove_locked(order_events_t *reg, size_t i)
{
    free(reg->w[i].terminal_event);
    reg->w[i] = reg->w[--reg->n];
}

/* Watch @p w (copied). 0, or TK_EUNAVAIL when the list is full. */
static int watch_add(order_events_t *reg, const watch_t *w)
{
    int rc = 0;
    pthread_mutex_lock(&reg->mu);
    watch_t *old = find_locked(reg, w->id);
    if (old != NULL) {
        old->added_ms = tk_mono_ms();
    } else if (reg->n == MAX_WATCHED) {
        rc = TK_EUNAVAIL;
    } else {
        reg->w[reg->n] = *w;
        reg->w[reg->n].added_ms = tk_mono_ms();
        reg->w[reg->n].ended_ms = 0;
        reg->w[reg->n].terminal_event = NULL;
        reg->n++;
    }
    pthread_mutex_unlock(&reg->mu);
    return rc;
}

static void watch_clear(order_events_t *reg)
{
    pthread_mutex_lock(&reg->mu);
    while (reg->n > 0)
        remove_locked(reg, reg->n - 1);
    pthread_mutex_unlock(&reg->mu);
}

/* A change seen in order_view (notification or read): publish it when it is news. */
static void on_change(tk_http_server_t *srv, order_events_t *reg, const watch_t *now)
{
    pthread_mutex_lock(&reg->mu);
    watch_t *w = find_locked(reg, now->id);
    if (w != NULL && w->ended_ms == 0 && now->version > w->version) {
        int64_t added = w->added_ms;
        *w = *now;
        w->added_ms = added;
        char channel[TK_UUID_LEN + 8], *ev = status_event(w);
        channel_of(w->id, channel);
        bool last = status_terminal(w->status);
        tk_http_sse_publish(srv, channel, ev, last);
        if (last) {
            w->ended_ms = tk_mono_ms();
            w->terminal_event = ev;
        } else {
            free(ev);
        }
    }
    pthread_mutex_unlock(&reg->mu);
}

/* Once a second: countdowns, grace re-sends of terminal events, dropping what is done. */
static void tick(tk_http_server_t *srv, order_events_t *reg)
{
    pthread_mutex_lock(&reg->mu);
    int64_t mono = tk_mono_ms(), wall = tk_now_ms();
    for (size_t i = reg->n; i-- > 0;) {
        watch_t *w = &reg->w[i];
        char channel[TK_UUID_LEN + 8];
        channel_of(w->id, channel);
        if (w->ended_ms != 0) {
            if (mono - w->ended_ms >= TERMINAL_GRACE_MS)
                remove_locked(reg, i);
            else
                tk_http_sse_publish(srv, channel, w->terminal_event, true);
        } else if (mono - w->added_ms >= IDLE_DROP_MS &&
                   tk_http_sse_channel_count(srv, channel) == 0) {
            remove_locked(reg, i);
        } else {
            char *ev =
                sse_text("countdown", json_pack("{s:s, s:I}", "id", w->id, "secondsLeft",
                                                (json_int_t)seconds_left(w->expires_ms, wall)));
            tk_http_sse_publish(srv, channel, ev, false);
            free(ev);
        }
    }
    pthread_mutex_unlock(&reg->mu);
}

/* ---- the background thread ---- */

/* Read order_view for every open watched order. 0, or TK_EUNAVAIL to reconnect. */
static int read_views(tk_http_server_t *srv, order_events_t *reg, PGconn *c)
{
    /* A uuid[] literal "{id,id,...}" of the open orders. */
    char ids[MAX_WATCHED * (TK_UUID_LEN + 1) + 3];
    size_t len = 0;
    pthread_mutex_lock(&reg->mu);
    ids[len++] = '{';
    for (size_t i = 0; i < reg->n; i++)
        if (reg->w[i].ended_ms == 0)
            len += (size_t)snprintf(ids + len, sizeof(ids) - len, "%s%s", len > 1 ? "," : "",
                                    reg->w[i].id);
    pthread_mutex_unlock(&reg->mu);
    if (len == 1)
        return 0;
    snprintf(ids + len, sizeof(ids) - len, "}");

    tk_err_t err = {0};
    const char *params[] = {ids};
    PGresult *res = tk_pg_exec_prepared(
        c, "SELECT " VIEW_COLUMNS " FROM order_view WHERE id = ANY($1)", 1, params, &err);
    if (res == NULL) {
        tk_log(TK_LOG_WARN, "order_events", "order_view read failed", "\"error\":\"%s\"",
               err.message);
        return err.code == TK_EUNAVAIL || tk_pg_broken(c) ? TK_EUNAVAIL : 0;
    }
    for (int i = 0; i < PQntuples(res); i++) {
        watch_t w;
        watch_from_row(&w, res, i);
        on_change(srv, reg, &w);
    }
    PQclear(res);
    return 0;
}

/* Handle the notifications that arrived. false when the connection broke. */
static bool drain(tk_http_server_t *srv, order_events_t *reg, PGconn *c)
{
    if (PQconsumeInput(c) == 0)
        return false;
    PGnotify *n;
    while ((n = PQnotifies(c)) != NULL) {
        json_t *js = json_loads(n->extra, 0, NULL);
        const char *id = json_string_value(json_object_get(js, "id"));
        const char *status = json_string_value(json_object_get(js, "status"));
        const char *expires = json_string_value(json_object_get(js, "expiresAt"));
        json_t *version = json_object_get(js, "version");
        if (id != NULL && status != NULL && expires != NULL && json_is_integer(version)) {
            watch_t w = {0};
            snprintf(w.id, sizeof(w.id), "%s", id);
            snprintf(w.status, sizeof(w.status), "%s", status);
            w.version = json_integer_value(version);
            snprintf(w.expires_at, sizeof(w.expires_at), "%s", expires);
            if (tk_time_parse(w.expires_at, &w.expires_ms) != 0)
                w.expires_ms = 0;
            on_change(srv, reg, &w);
        }
        json_decref(js);
        PQfreemem(n);
    }
    return true;
}

static PGconn *listen_connect(const char *database, tk_err_t *err)
{
    PGconn *c = tk_pg_connect(database, err);
    if (c != NULL &&
        tk_pg_run(c, "LISTEN \"" TK_ORDERS_STATUS_CHANNEL "\"", 0, NULL, NULL, err) != 0) {
        PQfinish(c);
        c = NULL;
    }
    return c;
}

static void listener_main(tk_http_server_t *srv, void *arg, atomic_int *stop)
{
    order_events_t *reg = arg;
    PGconn *c = NULL;
    int64_t next_read = 0, retry_at = 0;
    tk_backoff_t backoff;
    tk_backoff_init(&backoff, 200, RECONNECT_MAX_MS);
    bool warned = false;
    while (!atomic_load(stop)) {
        if (c == NULL && tk_mono_ms() >= retry_at) {
            tk_err_t err = {0};
            if ((c = listen_connect(reg->database, &err)) == NULL) {
                if (!warned)
                    tk_log(TK_LOG_WARN, "order_events", "cannot listen, retrying",
                           "\"error\":\"%s\"", err.message);
                warned = true;
                retry_at = tk_mono_ms() + tk_backoff_next(&backoff);
            } else {
                if (warned)
                    tk_log(TK_LOG_INFO, "order_events", "listening again", NULL);
                warned = false;
                tk_backoff_reset(&backoff);
                next_read = 0; /* read now what may have changed while not listening */
            }
        }
        int64_t wait = next_read - tk_mono_ms();
        wait = wait < 0 ? 0 : wait > WAIT_SLICE_MS ? WAIT_SLICE_MS : wait;
        if (c != NULL) {
            struct pollfd p = {.fd = PQsocket(c), .events = POLLIN};
            if (poll(&p, 1, (int)wait) > 0 && !drain(srv, reg, c)) {
                tk_log(TK_LOG_WARN, "order_events", "listening connection lost", NULL);
                PQfinish(c);
                c = NULL;
            }
        } else {
            tk_nap((int)wait, NULL);
        }
        if (tk_mono_ms() >= next_read) {
            if (c != NULL && read_views(srv, reg, c) == TK_EUNAVAIL) {
                PQfinish(c);
                c = NULL;
            }
            tick(srv, reg);
            next_read = tk_mono_ms() + POLL_MS;
        }
    }
    PQfinish(c);
    watch_clear(reg);
}

/* ---- the route ---- */

static void start_stream(tk_http_req_t *req, order_events_t *reg, const watch_t *w)
{
    char *ev = status_event(w);
    tk_err_t err = {0};
    if (status_terminal(w->status)) {
        tk_http_reply_raw(req, 200, "text/event-stream", ev, strlen(ev));
    } else if (watch_add(reg, w) != 0) {
        tk_err_set(&err, TK_EUNAVAIL, NULL, "Too many order event streams, try again later");
        tk_http_reply_error(req, &err);
    } else {
        char channel[TK_UUID_LEN + 8];
        channel_of(w->id, channel);
        tk_http_reply_sse(req, channel, ev);
    }
    free(ev);
}

static void order_events(tk_http_req_t *req)
{
    order_events_t *reg = tk_http_route_ud(req);
    PGresult *res = tk_orders_owned_row_or_respond(
        req, reg->database, "SELECT " VIEW_COLUMNS ", user_id FROM order_view WHERE id = $1", 4);
    if (res == NULL)
        return;
    watch_t w;
    watch_from_row(&w, res, 0);
    start_stream(req, reg, &w);
    PQclear(res);
}

static void order_events_free(void *arg)
{
    order_events_t *reg = arg;
    watch_clear(reg);
    pthread_mutex_destroy(&reg->mu);
    free(reg);
}

void tk_orders_event_routes(tk_http_server_t *srv, const char *database)
{
    order_events_t *reg = tk_mem_zalloc(sizeof(*reg));
    pthread_mutex_init(&reg->mu, NULL);
    reg->database = database;
    tk_http_route_with(srv, "GET", "/api/orders/:id/events", order_events, reg, 0);
    tk_http_background(srv, listener_main, reg, order_events_free);
}
