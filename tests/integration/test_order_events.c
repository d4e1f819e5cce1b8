/*
 * test_order_events.c - GET /api/orders/:id/events over real HTTP, PostgreSQL and Kafka: the
 * access rules (401/404 as GET /api/orders/:id), a stream that starts with the order's status,
 * counts down every second and ends with `cancelled` after DELETE or with `complete` after
 * payment:created, a terminal order's one-event response, and a stream opened while the order
 * changes (the race between the handler's read and the stream's subscription).
 *
 * The orders context runs in this process as in test_orders.c (private database, private
 * projector names, the relay in a thread); tickets and payments events are injected as their
 * contexts would publish them. The stream is read from a raw socket with an HTTP/1.0 request, so
 * the test sees each event as it arrives, not only the whole body at the end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"
#include <arpa/inet.h>
#include <ctype.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ev_catalog.h"
#include "ev_envelope.h"
#include "ev_payment.h"
#include "ev_ticket.h"
#include "orders_context.h"
#include "orders_read.h"
#include "tk/cfg.h"
#include "tk/ids.h"
#include "tk/kafka.h"
#include "tk_test.h"
#include "test_orders_util.h"

#define WAIT_MS 20000
#define WINDOW_SECONDS 900

static int setup(void **state)
{
    (void)state;
    setenv("EXPIRATION_WINDOW_SECONDS", "900", 1); /* nothing expires during the test */
    static const tk_context_t *const contexts[] = {&tk_orders_context, NULL};
    return tko_serve(contexts);
}

/* ------------------------------------------------------------------ a raw SSE client */

typedef struct sse {
    int fd;
    char buf[64 * 1024];
    size_t len;  /* bytes received */
    size_t body; /* offset of the body, 0 until the headers are complete */
    size_t next; /* offset of the next unread event in the body */
    int status;  /* HTTP status */
    bool closed; /* the server ended the response */
} sse_t;

/* Read what arrives within @p ms. false on timeout or when the connection is closed. */
static bool sse_fill(sse_t *s, int ms)
{
    if (s->closed)
        return false;
    struct pollfd p = {.fd = s->fd, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0)
        return false;
    assert_true(s->len < sizeof(s->buf) - 1);
    ssize_t n = read(s->fd, s->buf + s->len, sizeof(s->buf) - 1 - s->len);
    if (n <= 0) {
        s->closed = true;
        return false;
    }
    s->len += (size_t)n;
    s->buf[s->len] = '\0';
    return true;
}

static void sse_open(sse_t *s, const char *order_id, const char *cookie)
{
    memset(s, 0, sizeof(*s));
    int port = atoi(strrchr(tk_test_base_url(), ':') + 1);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(s->fd >= 0);
    assert_int_equal(connect(s->fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    char req[2048];
    int n =
        snprintf(req, sizeof(req),
                 "GET /api/orders/%s/events HTTP/1.0\r\nHost: 127.0.0.1\r\n"
                 "Accept: text/event-stream\r\n%s%s%s\r\n",
                 order_id, cookie ? "Cookie: " : "", cookie ? cookie : "", cookie ? "\r\n" : "");
    assert_int_equal(write(s->fd, req, (size_t)n), n);
    int64_t deadline = tk_mono_ms() + WAIT_MS;
    char *end = NULL;
    while ((end = strstr(s->buf, "\r\n\r\n")) == NULL && tk_mono_ms() < deadline)
        sse_fill(s, 200);
    assert_non_null(end);
    s->body = s->next = (size_t)(end - s->buf) + 4;
    assert_int_equal(sscanf(s->buf, "HTTP/1.%*d %d", &s->status), 1);
}

static void sse_close(sse_t *s)
{
    close(s->fd);
}

/* The headers, lower-cased, contain @p needle (lower case). */
static bool sse_header_has(const sse_t *s, const char *needle)
{
    char head[4096];
    size_t n = s->body < sizeof(head) - 1 ? s->body : sizeof(head) - 1;
    for (size_t i = 0; i < n; i++)
        head[i] = (char)tolower((unsigned char)s->buf[i]);
    head[n] = '\0';
    return strstr(head, needle) != NULL;
}

/*
 * The data of the next event named @p name (other events and comments are skipped), waiting up
 * to @p ms; NULL on timeout or when the stream ended first. Owned JSON.
 */
static json_t *sse_next(sse_t *s, const char *name, int ms)
{
    int64_t deadline = tk_mono_ms() + ms;
    for (;;) {
        char *start = s->buf + s->next, *end = strstr(start, "\n\n");
        if (end != NULL) {
            s->next = (size_t)(end - s->buf) + 2;
            char ev[64] = "";
            const char *data = strstr(start, "data: ");
            if (strncmp(start, "event: ", 7) == 0)
                sscanf(start + 7, "%63[^\n]", ev);
            if (strcmp(ev, name) == 0 && data != NULL && data < end) {
                json_t *js = json_loadb(data + 6, (size_t)(end - data - 6), 0, NULL);
                assert_non_null(js);
                return js;
            }
            continue;
        }
        int64_t left = deadline - tk_mono_ms();
        if (left <= 0 || (!sse_fill(s, (int)(left < 200 ? left : 200)) && s->closed))
            return NULL;
    }
}

/* Wait until the server ends the response. */
static bool sse_ends(sse_t *s, int ms)
{
    int64_t deadline = tk_mono_ms() + ms;
    while (!s->closed && tk_mono_ms() < deadline)
        sse_fill(s, 200);
    return s->closed;
}

/* ------------------------------------------------------------------ helpers */

struct get_wait {
    const char *path;
    const char *cookie;
    const char *status; /* NULL: any 200 */
};

static bool get_ok(void *arg)
{
    struct get_wait *w = arg;
    tk_test_resp_t r;
    tk_test_http("GET", w->path, NULL, w->cookie, &r);
    bool ok = r.status == 200 &&
              (w->status == NULL ||
               strcmp(json_string_value(json_object_get(r.json, "status")), w->status) == 0);
    tk_test_resp_release(&r);
    return ok;
}

/* A ticket replicated into orders, then an order of @p u for it, visible in order_view. */
static void new_order(const tko_user_t *u, char order[TK_UUID_LEN + 1])
{
    ev_ticket_t t = {.version = 0, .price_cents = 1500};
    tk_uuid_new(t.id);
    tk_uuid_new(t.user_id);
    snprintf(t.title, sizeof(t.title), "stream me");
    char *text = tk_test_event_text("ticket:created", t.id, 0, ev_ticket_created_to_json(&t), NULL);
    tk_test_publish(EV_TOPIC_TICKETS, t.id, text);
    free(text);

    char body[128];
    snprintf(body, sizeof(body), "{\"ticketId\":\"%s\"}", t.id);
    tk_test_resp_t r = {0};
    int64_t deadline = tk_mono_ms() + WAIT_MS;
    do { /* 404 until the replica has the ticket */
        tk_test_resp_release(&r);
        tk_test_http("POST", "/api/orders", body, u->cookie, &r);
    } while (r.status == 404 && tk_mono_ms() < deadline);
    assert_int_equal(r.status, 201);
    snprintf(order, TK_UUID_LEN + 1, "%s", json_string_value(json_object_get(r.json, "id")));
    tk_test_resp_release(&r);

    char path[128];
    snprintf(path, sizeof(path), "/api/orders/%s", order);
    struct get_wait w = {path, u->cookie, NULL};
    assert_true(tk_test_eventually(get_ok, &w, WAIT_MS));
}

static void delete_order(const tko_user_t *u, const char *order)
{
    char path[128];
    snprintf(path, sizeof(path), "/api/orders/%s", order);
    assert_true(tk_test_http_is("DELETE", path, NULL, u->cookie, 204, NULL));
}

static const char *str(const json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static json_int_t num(const json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

/* The next "status" event of @p s, within WAIT_MS, must say @p status. Its data (owned), for
 * further checks. */
static json_t *sse_status(sse_t *s, const char *status)
{
    json_t *ev = sse_next(s, "status", WAIT_MS);
    assert_non_null(ev);
    assert_string_equal(str(ev, "status"), status);
    return ev;
}

/* A new user with a new order, and the order's stream. */
struct stream {
    tko_user_t u;
    char order[TK_UUID_LEN + 1];
    sse_t s;
};

/* Open @p st: the stream answers 200, and its first status event, 'created', is returned
 * (owned). */
static json_t *stream_start(struct stream *st)
{
    st->u = tko_user_new();
    new_order(&st->u, st->order);
    sse_open(&st->s, st->order, st->u.cookie);
    assert_int_equal(st->s.status, 200);
    return sse_status(&st->s, "created");
}

static void stream_end(struct stream *st)
{
    sse_close(&st->s);
    free(st->u.cookie);
}

/* ------------------------------------------------------------------ tests */

/* 401 anonymous and another user's, 404 malformed and unknown: as GET /api/orders/:id. */
static void events_errors(void **state)
{
    (void)state;
    tko_user_t u = tko_user_new(), other = tko_user_new();
    char order[TK_UUID_LEN + 1], unknown[TK_UUID_LEN + 1], path[128];
    new_order(&u, order);
    tk_uuid_new(unknown);

    snprintf(path, sizeof(path), "/api/orders/%s/events", order);
    assert_true(tk_test_http_is("GET", path, NULL, NULL, 401, "Not authorized"));
    assert_true(tk_test_http_is("GET", path, NULL, other.cookie, 401, NULL));
    assert_true(tk_test_http_is("GET", "/api/orders/not-a-uuid/events", NULL, u.cookie, 404, NULL));
    snprintf(path, sizeof(path), "/api/orders/%s/events", unknown);
    assert_true(tk_test_http_is("GET", path, NULL, u.cookie, 404, "Not Found"));
    free(u.cookie);
    free(other.cookie);
}

/* created, a countdown, DELETE, cancelled, and the server ends the stream. */
static void events_until_cancelled(void **state)
{
    (void)state;
    struct stream st;
    json_t *first = stream_start(&st);
    assert_true(sse_header_has(&st.s, "content-type: text/event-stream"));
    assert_string_equal(str(first, "id"), st.order);
    assert_int_equal(num(first, "version"), 0);
    assert_non_null(str(first, "expiresAt"));
    assert_true(num(first, "secondsLeft") > WINDOW_SECONDS - 60);
    assert_true(num(first, "secondsLeft") <= WINDOW_SECONDS);
    json_decref(first);

    json_t *tick = sse_next(&st.s, "countdown", WAIT_MS);
    assert_non_null(tick);
    assert_string_equal(str(tick, "id"), st.order);
    assert_true(num(tick, "secondsLeft") > WINDOW_SECONDS - 60);
    json_decref(tick);

    delete_order(&st.u, st.order);
    json_t *last = sse_status(&st.s, "cancelled");
    assert_int_equal(num(last, "version"), 1);
    assert_int_equal(num(last, "secondsLeft"), 0);
    json_decref(last);
    assert_true(sse_ends(&st.s, WAIT_MS));
    assert_null(sse_next(&st.s, "status", 0)); /* nothing after the terminal status */
    sse_close(&st.s);

    /* A terminal order: its one status event, then the response ends. */
    sse_open(&st.s, st.order, st.u.cookie);
    assert_int_equal(st.s.status, 200);
    assert_true(sse_header_has(&st.s, "content-type: text/event-stream"));
    json_t *only = sse_status(&st.s, "cancelled");
    assert_int_equal(num(only, "version"), 1);
    assert_int_equal(num(only, "secondsLeft"), 0); /* no countdown for a closed order */
    json_decref(only);
    assert_true(sse_ends(&st.s, WAIT_MS));
    stream_end(&st);
}

static volatile int other_stop;

static void *other_server_main(void *arg)
{
    tk_http_server_run(arg, &other_stop);
    return NULL;
}

/* Issue 13: each server has its own watch list. A second orders server in the process, started
 * and freed while a stream of the first is open, leaves that stream fed (a process-wide list was
 * cleared by the second server's listener when it stopped, and the stream went silent). */
static void events_survive_another_server(void **state)
{
    (void)state;
    struct stream st;
    json_decref(stream_start(&st));

    tk_err_t err = {0};
    tk_http_server_t *other = tk_http_server_new(0, 1, &err);
    assert_non_null(other);
    tk_context_add_routes(&tk_orders_context, other);
    other_stop = 0;
    pthread_t tid;
    pthread_create(&tid, NULL, other_server_main, other);
    usleep(500 * 1000); /* its listener runs */
    other_stop = 1;
    pthread_join(tid, NULL);
    tk_http_server_free(other);

    delete_order(&st.u, st.order);
    json_decref(sse_status(&st.s, "cancelled"));
    stream_end(&st);
}

/* payment:created completes the order: the stream ends with complete. */
static void events_until_complete(void **state)
{
    (void)state;
    struct stream st;
    json_decref(stream_start(&st));

    tko_publish_paid(st.order);

    json_t *last = sse_status(&st.s, "complete");
    assert_int_equal(num(last, "version"), 1);
    json_decref(last);
    assert_true(sse_ends(&st.s, WAIT_MS));
    stream_end(&st);
}

/*
 * Streams opened at the moment of the change: whether a handler read the order before or after
 * the cancel, and whether its stream subscribed before or after the notification, every stream
 * ends with the cancelled status.
 */
static void events_opened_during_change(void **state)
{
    (void)state;
    enum { STREAMS = 4 };
    tko_user_t u = tko_user_new();
    char order[TK_UUID_LEN + 1];
    new_order(&u, order);

    sse_t s[STREAMS];
    for (int i = 0; i < STREAMS / 2; i++)
        sse_open(&s[i], order, u.cookie);
    delete_order(&u, order);
    for (int i = STREAMS / 2; i < STREAMS; i++)
        sse_open(&s[i], order, u.cookie);

    for (int i = 0; i < STREAMS; i++) {
        assert_int_equal(s[i].status, 200);
        json_t *ev, *last = NULL;
        while ((ev = sse_next(&s[i], "status", WAIT_MS)) != NULL) {
            json_decref(last);
            last = ev;
        }
        assert_true(s[i].closed); /* ended by the server, not by the deadline */
        assert_non_null(last);
        assert_string_equal(str(last, "status"), "cancelled");
        json_decref(last);
        sse_close(&s[i]);
    }
    free(u.cookie);
}

TK_TEST_MAIN(setup, tko_teardown, cmocka_unit_test(events_errors),
             cmocka_unit_test(events_until_cancelled), cmocka_unit_test(events_until_complete),
             cmocka_unit_test(events_opened_during_change),
             cmocka_unit_test(events_survive_another_server))
