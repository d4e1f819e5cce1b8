/*
 * test_http_limits.c - the HTTP front's bounds and protocol hardening (issue 11 items 1, 2, 5,
 * 6, 7, 10), each against a server of its own started with small limits from the environment,
 * driven over raw sockets so that a test controls exactly what reaches the server and when:
 *
 * - HTTP/2 is refused (prior-knowledge preface, h2c upgrade), and a stream reset of a request
 *   waiting for a worker is harmless (run under ASan by the --sanitize job);
 * - a request answered at its deadline while its worker still runs, then its pool disposed by
 *   the next request of the connection, is freed without touching that pool (the lifetime fix);
 * - per-context lanes: one context's blocked workers never delay another's routes; a full lane
 *   answers 503 + Retry-After; queued requests of clients that left are dropped unrun;
 * - a declared Content-Length over 1 MiB gets 413 before any body byte; a body with a NUL byte
 *   is parsed with its full length (400, and no over-read under ASan);
 * - event streams per user, per channel and in total; the connection bound; no busy loop when
 *   accept runs out of descriptors;
 * - /readyz turns red within the connect timeout when the database never answers.
 * The gate below holds worker handlers at will; no test depends on a sleep for correctness
 * except where the server's own timers (deadline, reaper) are what is tested.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tk/cfg.h"
#include "tk/http.h"
#include "tk/ids.h"
#include "tk_test.h"

/* ------------------------------------------------------------------ the gate and routes */

static pthread_mutex_t gate_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static bool gate_open = true;
static int runs;

static void gate_set(bool open)
{
    pthread_mutex_lock(&gate_mu);
    gate_open = open;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_mu);
}

static int runs_get(void)
{
    pthread_mutex_lock(&gate_mu);
    int n = runs;
    pthread_mutex_unlock(&gate_mu);
    return n;
}

static void slow(tk_http_req_t *req)
{
    pthread_mutex_lock(&gate_mu);
    runs++;
    while (!gate_open)
        pthread_cond_wait(&gate_cv, &gate_mu);
    pthread_mutex_unlock(&gate_mu);
    tk_http_reply_json(req, 200, json_pack("{s:s}", "n", tk_http_param(req, "n")));
}

static void fast(tk_http_req_t *req)
{
    tk_http_reply_json(req, 200, json_object());
}

static void echo(tk_http_req_t *req)
{
    json_t *body = tk_http_body_or_respond(req);
    if (body != NULL)
        tk_http_reply_json(req, 200, json_incref(body));
}

static void stream(tk_http_req_t *req)
{
    char channel[64];
    snprintf(channel, sizeof(channel), "s:%s", tk_http_param(req, "id"));
    tk_http_reply_sse(req, channel, "event: hello\ndata: {}\n\n");
}

static int probe_orders(tk_http_req_t *req, void *ud, tk_err_t *err)
{
    (void)ud;
    PGconn *c = tk_http_db(req, "orders", err);
    if (c == NULL)
        return err->code;
    return 0;
}

/* ------------------------------------------------------------------ a server per test */

static tk_http_server_t *srv;
static pthread_t srv_thread;
static volatile int srv_stop;
static int srv_port;

static void *serve(void *arg)
{
    (void)arg;
    tk_http_server_run(srv, &srv_stop);
    return NULL;
}

/* Start a server with @p workers per lane and the NULL-ended NAME=VALUE settings. */
static void start(int workers, const char *const *env)
{
    for (size_t i = 0; env != NULL && env[i] != NULL; i++)
        putenv((char *)env[i]);
    tk_err_t err = {0};
    if (tk_cfg_load(0, &err) != 0) /* the limits are configuration, loaded once */
        fail_msg("config: %s", err.message);
    srv = tk_http_server_new(0, workers, &err);
    if (srv == NULL)
        fail_msg("server: %s", err.message);
    tk_http_route(srv, "GET", "/api/slow/:n", slow, 0);
    tk_http_route(srv, "GET", "/api/fast/x", fast, 0);
    tk_http_route(srv, "POST", "/api/echo", echo, 0);
    tk_http_route(srv, "GET", "/api/streams/:id", stream, 0);
    tk_http_readiness(srv, "db_orders", probe_orders, NULL);
    srv_port = tk_http_server_port(srv);
    srv_stop = 0;
    gate_set(true);
    runs = 0;
    pthread_create(&srv_thread, NULL, serve, NULL);
}

static void stop(const char *const *env)
{
    gate_set(true);
    srv_stop = 1;
    pthread_join(srv_thread, NULL);
    tk_http_server_free(srv);
    srv = NULL;
    for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
        char name[64];
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(env[i], "="), env[i]);
        unsetenv(name);
    }
}

/* The server of one test, as cmocka fixtures: SERVER_TEST(test, workers, env) starts it with
 * start(workers, env) before the test and stops it after, failed or not. */
struct server_conf {
    int workers;
    const char *const *env;
};

static int server_up(void **state)
{
    const struct server_conf *c = *state;
    start(c->workers, c->env);
    return 0;
}

static int server_down(void **state)
{
    const struct server_conf *c = *state;
    stop(c->env);
    return 0;
}

#define SERVER_TEST(test, workers, env)                                                            \
    {                                                                                              \
#test, test, server_up, server_down, (void *)&(const struct server_conf)                   \
        {                                                                                          \
            workers, env                                                                           \
        }                                                                                          \
    }

/* ------------------------------------------------------------------ raw client */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int dial_port(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int dial(void)
{
    int fd = dial_port(srv_port);
    assert_true(fd >= 0);
    return fd;
}

static void send_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        assert_true(n > 0);
        p += n;
        len -= (size_t)n;
    }
}

static int send_get(const char *path, const char *cookie)
{
    int fd = dial();
    char req[2048];
    int n = snprintf(req, sizeof(req), "GET %s HTTP/1.1\r\nHost: t\r\n%s%s%s\r\n", path,
                     cookie ? "Cookie: " : "", cookie ? cookie : "", cookie ? "\r\n" : "");
    send_all(fd, req, (size_t)n);
    return fd;
}

/* Read what arrives within @p timeout_ms, until a complete response (by Content-Length) or
 * close. Returns the bytes read (into @p buf, NUL-terminated). */
static size_t read_response(int fd, char *buf, size_t cap, int timeout_ms)
{
    size_t len = 0;
    int64_t end = now_ms() + timeout_ms;
    while (len + 1 < cap) {
        int left = (int)(end - now_ms());
        if (left <= 0)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, left) <= 0)
            break;
        ssize_t n = recv(fd, buf + len, cap - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = '\0';
        char *hdr_end = strstr(buf, "\r\n\r\n");
        if (hdr_end != NULL) {
            const char *cl = strcasestr(buf, "content-length:");
            if (strstr(buf, "text/event-stream") != NULL && strstr(hdr_end + 4, "\n\n"))
                break; /* a stream: its first event is enough */
            if (cl != NULL && cl < hdr_end &&
                (size_t)(hdr_end + 4 - buf) + (size_t)atol(cl + 15) <= len)
                break;
        }
    }
    buf[len] = '\0';
    return len;
}

static int status_of(const char *resp)
{
    int status = 0;
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
        return 0;
    return status;
}

static int get_status(const char *path, const char *cookie, int timeout_ms, char *buf, size_t cap)
{
    int fd = send_get(path, cookie);
    read_response(fd, buf, cap, timeout_ms);
    close(fd);
    return status_of(buf);
}

static bool runs_reach(void *arg)
{
    return runs_get() >= *(int *)arg;
}

/* Close the gate and send GET @p path: a worker has taken it and waits at the gate on return.
 * The connection's descriptor. */
static int hold_a_worker(const char *path)
{
    gate_set(false);
    int fd = send_get(path, NULL);
    int one = 1;
    assert_true(tk_test_eventually(runs_reach, &one, 5000));
    return fd;
}

/* ------------------------------------------------------------------ HTTP/2 and lifetimes */

static const char *const h2_env[] = {NULL};

/* Client frames: the preface, empty SETTINGS, HEADERS of GET @p path (HPACK literals), and
 * RST_STREAM(CANCEL) of stream 1. */
static size_t h2_attack(char *out, const char *path)
{
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    size_t n = 0;
    memcpy(out, preface, sizeof(preface) - 1);
    n += sizeof(preface) - 1;
    const unsigned char settings[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
    memcpy(out + n, settings, 9);
    n += 9;
    unsigned char block[256];
    size_t b = 0, plen = strlen(path);
    block[b++] = 0x82; /* :method GET */
    block[b++] = 0x86; /* :scheme http */
    block[b++] = 0x44; /* :path, literal value */
    block[b++] = (unsigned char)plen;
    memcpy(block + b, path, plen);
    b += plen;
    block[b++] = 0x41; /* :authority, literal value */
    block[b++] = 1;
    block[b++] = 't';
    const unsigned char headers[9] = {0, 0, (unsigned char)b, 1, 0x05, 0, 0, 0, 1};
    memcpy(out + n, headers, 9);
    n += 9;
    memcpy(out + n, block, b);
    n += b;
    const unsigned char rst[13] = {0, 0, 4, 3, 0, 0, 0, 0, 1, 0, 0, 0, 8};
    memcpy(out + n, rst, 13);
    n += 13;
    return n;
}

static void http2_is_refused(void **state)
{
    (void)state;
    char buf[4096], frames[512];

    /* The preface, a request that waits for a worker, and its reset: answered as HTTP/1.1. */
    gate_set(false);
    int fd = dial();
    size_t n = h2_attack(frames, "/api/slow/1");
    send_all(fd, frames, n);
    read_response(fd, buf, sizeof(buf), 2000);
    close(fd);
    assert_int_equal(status_of(buf), 400);
    assert_int_equal(runs_get(), 0);
    gate_set(true);

    /* An h2c upgrade is not taken: a plain HTTP/1.1 answer, never 101. */
    fd = dial();
    const char *up =
        "GET /api/fast/x HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n";
    send_all(fd, up, strlen(up));
    read_response(fd, buf, sizeof(buf), 2000);
    close(fd);
    assert_int_equal(status_of(buf), 200);

    assert_int_equal(get_status("/healthz", NULL, 2000, buf, sizeof(buf)), 200);
}

static const char *const deadline_env[] = {"HTTP_DEADLINE_MS=500", NULL};

/* Answered at the deadline while the worker still runs; the connection's next request disposes
 * the first one's pool; then the worker finishes. Nothing may touch the freed pool (ASan). */
static void deadline_answers_and_lifetime(void **state)
{
    (void)state;
    char buf[4096];
    int a = hold_a_worker("/api/slow/1");
    int b = send_get("/api/slow/2", NULL); /* queued behind a */
    int64_t t0 = now_ms();
    read_response(a, buf, sizeof(buf), 5000);
    assert_int_equal(status_of(buf), 503);
    assert_non_null(strstr(buf, "too long"));
    assert_non_null(strcasestr(buf, "retry-after: "));
    assert_true(now_ms() - t0 < 3000);
    read_response(b, buf, sizeof(buf), 5000);
    assert_int_equal(status_of(buf), 503);

    /* The next request on a's connection: h2o disposes the first request's pool now. */
    const char *again = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    send_all(a, again, strlen(again));
    read_response(a, buf, sizeof(buf), 3000);
    assert_int_equal(status_of(buf), 200);
    gate_set(true); /* the worker finishes a; b was taken out of the queue and never runs */
    usleep(300 * 1000);
    assert_int_equal(runs_get(), 1);
    close(a);
    close(b);
    assert_int_equal(get_status("/healthz", NULL, 2000, buf, sizeof(buf)), 200);
}

/* ------------------------------------------------------------------ bounded work */

static const char *const lanes_env[] = {"HTTP_QUEUE_MAX=2", "HTTP_DEADLINE_MS=30000", NULL};

static void lanes_and_bounded_queue(void **state)
{
    (void)state;
    char buf[4096];
    int fds[3];
    fds[0] = hold_a_worker("/api/slow/0");
    fds[1] = send_get("/api/slow/1", NULL);
    fds[2] = send_get("/api/slow/2", NULL);
    usleep(100 * 1000);

    /* The slow lane is full: 503 with Retry-After at once. */
    int64_t t0 = now_ms();
    assert_int_equal(get_status("/api/slow/3", NULL, 3000, buf, sizeof(buf)), 503);
    assert_non_null(strcasestr(buf, "retry-after: 1"));
    assert_non_null(strstr(buf, "{\"errors\":[{\"message\":"));
    /* Another context's route does not wait behind the slow one. */
    assert_int_equal(get_status("/api/fast/x", NULL, 3000, buf, sizeof(buf)), 200);
    assert_true(now_ms() - t0 < 2000);

    gate_set(true);
    for (int i = 0; i < 3; i++) {
        read_response(fds[i], buf, sizeof(buf), 5000);
        assert_int_equal(status_of(buf), 200);
        close(fds[i]);
    }
    assert_int_equal(runs_get(), 3);
}

static const char *const gone_env[] = {"HTTP_QUEUE_MAX=64", "HTTP_DEADLINE_MS=30000", NULL};

static void queued_work_of_gone_clients_is_dropped(void **state)
{
    (void)state;
    char buf[4096];
    int a = hold_a_worker("/api/slow/0");
    for (int i = 0; i < 20; i++) {
        int fd = send_get("/api/slow/9", NULL);
        close(fd); /* the client leaves while its request waits in the queue */
    }
    usleep(600 * 1000); /* the reaper runs every 100 ms */
    gate_set(true);
    read_response(a, buf, sizeof(buf), 5000);
    assert_int_equal(status_of(buf), 200);
    close(a);
    usleep(300 * 1000);
    assert_int_equal(runs_get(), 1); /* none of the 20 ran */
}

/* ------------------------------------------------------------------ bodies */

static const char *const body_env[] = {NULL};

/* POST /api/echo with the @p len bytes of @p body (NULs too) on a connection of its own: the
 * response into @p buf, its status returned. */
static int post_echo(const char *body, size_t len, char *buf, size_t cap)
{
    char req[512];
    int n = snprintf(req, sizeof(req),
                     "POST /api/echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     len);
    int fd = dial();
    send_all(fd, req, (size_t)n);
    send_all(fd, body, len);
    read_response(fd, buf, cap, 3000);
    close(fd);
    return status_of(buf);
}

static void body_limits_and_nul_bytes(void **state)
{
    (void)state;
    char buf[4096];

    /* 413 from the declared length alone: no body byte is ever sent. */
    int fd = dial();
    const char *big = "POST /api/echo HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                      "Content-Length: 2000000\r\n\r\n";
    send_all(fd, big, strlen(big));
    int64_t t0 = now_ms();
    read_response(fd, buf, sizeof(buf), 3000);
    close(fd);
    assert_int_equal(status_of(buf), 413);
    assert_true(now_ms() - t0 < 2500);
    assert_non_null(strstr(buf, "application/json"));
    assert_non_null(strstr(buf, "{\"errors\":[{\"message\":"));

    /* A body with a NUL byte: parsed with its full length (400), never past the copy. */
    static const char nul_body[] = "{\"a\":\"x\0y\"}";
    assert_int_equal(post_echo(nul_body, sizeof(nul_body) - 1, buf, sizeof(buf)), 400);

    /* The whole body is kept: a NUL after a complete object is trailing garbage, not the end. */
    static const char trailing[] = "{\"a\":1}\0{\"b\":2}";
    assert_int_equal(post_echo(trailing, sizeof(trailing) - 1, buf, sizeof(buf)), 400);
}

/* ------------------------------------------------------------------ event streams */

static const char *const sse_env[] = {"SSE_MAX_STREAMS=4", "SSE_MAX_STREAMS_PER_USER=3",
                                      "SSE_MAX_STREAMS_PER_ORDER=2", NULL};

static int open_stream(const char *id, const char *cookie, char *buf, size_t cap)
{
    char path[64];
    snprintf(path, sizeof(path), "/api/streams/%s", id);
    int fd = send_get(path, cookie);
    read_response(fd, buf, cap, 3000);
    return fd;
}

static bool channel_drained(void *arg)
{
    const char *channel = arg;
    /* A closed client is noticed when a write fails: keep writing. */
    tk_http_sse_publish(srv, channel, ": ping\n\n", false);
    return tk_http_sse_channel_count(srv, channel) == 0;
}

static void event_streams_are_bounded(void **state)
{
    (void)state;
    char buf[4096];
    char *alice = tk_test_fake_session("0b1f6a3e-2c4d-4e5f-8a9b-0c1d2e3f4a5b", "a@x.io");
    char *bob = tk_test_fake_session("1b1f6a3e-2c4d-4e5f-8a9b-0c1d2e3f4a5b", "b@x.io");
    char *carol = tk_test_fake_session("2b1f6a3e-2c4d-4e5f-8a9b-0c1d2e3f4a5b", "c@x.io");
    int fds[5];

    fds[0] = open_stream("1", alice, buf, sizeof(buf));
    assert_int_equal(status_of(buf), 200);
    fds[1] = open_stream("1", alice, buf, sizeof(buf));
    assert_int_equal(status_of(buf), 200);
    assert_int_equal(get_status("/api/streams/1", alice, 3000, buf, sizeof(buf)), 429);
    assert_non_null(strcasestr(buf, "retry-after: "));
    assert_non_null(strstr(buf, "this order"));
    fds[2] = open_stream("2", alice, buf, sizeof(buf));
    assert_int_equal(status_of(buf), 200);
    assert_int_equal(get_status("/api/streams/3", alice, 3000, buf, sizeof(buf)), 429);
    assert_non_null(strstr(buf, "this user"));
    fds[3] = open_stream("4", bob, buf, sizeof(buf));
    assert_int_equal(status_of(buf), 200);
    assert_int_equal(get_status("/api/streams/5", carol, 3000, buf, sizeof(buf)), 503);
    assert_non_null(strcasestr(buf, "retry-after: "));
    assert_int_equal(tk_http_sse_channel_count(srv, "s:1"), 2);

    /* Closing the streams of a channel frees its slots (and the channel count drops to 0). */
    close(fds[0]);
    close(fds[1]);
    assert_true(tk_test_eventually(channel_drained, "s:1", 10000));
    fds[4] = open_stream("5", carol, buf, sizeof(buf));
    assert_int_equal(status_of(buf), 200);
    for (int i = 2; i < 5; i++)
        close(fds[i]);
    free(alice);
    free(bob);
    free(carol);
}

/* ------------------------------------------------------------------ connections */

static const char *const conns_env[] = {"HTTP_MAX_CONNECTIONS=4", NULL};

static void connections_are_bounded(void **state)
{
    (void)state;
    char buf[4096];
    int idle[4];
    for (int i = 0; i < 4; i++)
        idle[i] = dial();
    usleep(200 * 1000);
    int fd = send_get("/healthz", NULL); /* the 5th waits in the kernel's backlog */
    assert_int_equal(read_response(fd, buf, sizeof(buf), 700), 0);
    close(idle[0]);
    read_response(fd, buf, sizeof(buf), 3000);
    assert_int_equal(status_of(buf), 200);
    close(fd);
    for (int i = 1; i < 4; i++)
        close(idle[i]);
}

/* Stopping while clients keep their connections open (one idle after a response, one that never
 * sent a byte): the server closes them and frees itself. It used to abort in h2o's
 * h2o_timeout_dispose, the connections' timers still linked (SIGTERM of `serve` under load). */
static void stop_with_open_connections(void **state)
{
    (void)state;
    start(2, NULL);
    char buf[4096];
    int kept = send_get("/healthz", NULL); /* HTTP/1.1: kept alive after the response */
    read_response(kept, buf, sizeof(buf), 3000);
    assert_int_equal(status_of(buf), 200);
    int silent = dial();
    usleep(100 * 1000);
    int64_t t0 = now_ms();
    stop(NULL);
    assert_true(now_ms() - t0 < 5000);
    /* Both were closed by the server: end of stream, not a hang. */
    struct timeval tv = {2, 0};
    for (int i = 0; i < 2; i++) {
        int fd = i == 0 ? kept : silent;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        assert_true(recv(fd, buf, sizeof(buf), 0) <= 0);
        close(fd);
    }
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static bool fd_in_use(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

static const char *const emfile_env[] = {"HTTP_MAX_CONNECTIONS=1000", NULL};

/* Out of descriptors with clients waiting: the loop must not spin on the readable listener. */
static void accept_without_descriptors_does_not_spin(void **state)
{
    (void)state;
    char buf[4096];
    assert_int_equal(get_status("/healthz", NULL, 2000, buf, sizeof(buf)), 200);
    struct rlimit old, low;
    getrlimit(RLIMIT_NOFILE, &old);
    int highest = 0;
    for (int fd = 0; fd < 65536 && fd < (int)old.rlim_cur; fd++)
        if (fd_in_use(fd))
            highest = fd;
    low = old;
    low.rlim_cur = (rlim_t)highest + 64;
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
    /* Take every descriptor left, give 4 back to 4 clients: the server has none to accept. */
    static int fillers[8192];
    int nfill = 0;
    while (nfill < 8192 && (fillers[nfill] = open("/dev/null", O_RDONLY)) >= 0)
        nfill++;
    assert_true(nfill > 8);
    for (int i = 0; i < 4; i++)
        close(fillers[--nfill]);
    /* Sockets first (they take the 4 descriptors), then connect: nothing is left to accept. */
    int clients[4], nclients = 0;
    for (int i = 0; i < 4; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd >= 0)
            clients[nclients++] = fd;
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)srv_port)};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < nclients; i++)
        assert_int_equal(connect(clients[i], (struct sockaddr *)&addr, sizeof(addr)), 0);
    print_message("%d descriptors taken, %d clients\n", nfill, nclients);
    assert_true(nclients >= 2);
    usleep(300 * 1000);
    double c0 = cpu_seconds();
    usleep(1000 * 1000);
    double used = cpu_seconds() - c0;
    for (int i = 0; i < nfill; i++)
        close(fillers[i]);
    assert_int_equal(setrlimit(RLIMIT_NOFILE, &old), 0);
    print_message("cpu while out of descriptors: %.3f s over 1 s\n", used);
    assert_true(used < 0.05); /* spinning costs far more, even on a loaded machine */
    /* Descriptors back: the clients that waited are accepted and served, with no new
     * connection to wake the listener up. */
    const char *req = "GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n";
    for (int i = 0; i < nclients; i++) {
        send_all(clients[i], req, strlen(req));
        read_response(clients[i], buf, sizeof(buf), 3000);
        assert_int_equal(status_of(buf), 200);
        close(clients[i]);
    }
    /* Descriptors back: the server accepts again. */
    assert_int_equal(get_status("/healthz", NULL, 3000, buf, sizeof(buf)), 200);
}

/* ------------------------------------------------------------------ readiness */

static void readyz_turns_red_when_the_database_never_answers(void **state)
{
    (void)state;
    /* A listener that never accepts: TCP connects, PostgreSQL's handshake never comes. */
    int port = 0;
    int hole = tk_test_silent_listener(&port);
    static char url[128];
    snprintf(url, sizeof(url), "DATABASE_URL_ORDERS=postgresql://postgres@127.0.0.1:%d/x", port);
    const char *env[] = {url, "PG_CONNECT_TIMEOUT_S=1", "HTTP_DEADLINE_MS=15000", NULL};
    start(1, env);
    char buf[4096];
    int64_t t0 = now_ms();
    assert_int_equal(get_status("/readyz", NULL, 10000, buf, sizeof(buf)), 503);
    assert_true(now_ms() - t0 < 6000);
    assert_non_null(strstr(buf, "\"db_orders\""));
    stop(env);
    close(hole);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as the binary does: a client that left is not a crash */
    setenv("JWT_KEY", "unit-test-key-unit-test-key-unit-test", 1);
    tk_err_t err = {0};
    tk_cfg_load(0, &err);
    const struct CMUnitTest tests[] = {
        SERVER_TEST(http2_is_refused, 2, h2_env),
        SERVER_TEST(deadline_answers_and_lifetime, 1, deadline_env),
        SERVER_TEST(lanes_and_bounded_queue, 1, lanes_env),
        SERVER_TEST(queued_work_of_gone_clients_is_dropped, 1, gone_env),
        SERVER_TEST(body_limits_and_nul_bytes, 2, body_env),
        SERVER_TEST(event_streams_are_bounded, 2, sse_env),
        SERVER_TEST(connections_are_bounded, 2, conns_env),
        cmocka_unit_test(stop_with_open_connections),
        SERVER_TEST(accept_without_descriptors_does_not_spin, 1, emfile_env),
        cmocka_unit_test(readyz_turns_red_when_the_database_never_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
