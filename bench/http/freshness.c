/*
 * freshness.c - read-model freshness under an open-loop command load (bench/run.sh).
 *
 *   bench_freshness HOST PORT COOKIE RATE SECONDS OUT.json
 *
 * POST /api/tickets at RATE per second for SECONDS, each on a schedule (open loop: a late request
 * counts from its scheduled time, so a stall is not hidden). For each 2xx, GET /api/tickets/:id is
 * sent at once with the POST's X-Consistency-Token: the server parks it until the tickets view has
 * the ticket (woken by the projector's notification) and answers then, so freshness = that 200 -
 * the POST's 2xx. An answer marked X-Consistency-Stale (not visible within the server's bound)
 * falls back to polling every 5 ms, up to 10 s. Writes the percentiles and every sample to
 * OUT.json, as bench/report.py reads them.
 *
 * Why C rather than Python: a driver must not be the slowest part of what it measures. At half
 * the command rate, 48 Python threads under one GIL on the same two cores fell seconds behind
 * their schedule. Here each thread keeps one keep-alive connection and blocks on it; a request
 * costs a few microseconds of the driver's CPU.
 *
 * Why RATE/4 threads (at least 48, at most 1024): a thread is busy for its POST and then its wait
 * for visibility, so 48 threads sustain only 48 / (POST + wait) POSTs a second. At 675/s with a
 * 65 ms wait that is below the schedule: the driver fell behind it, and the POSTs' latency, which
 * counts from the schedule, measured the driver's own queue (a p99 of 6 s). A quarter of a second
 * per cycle keeps the driver ahead of any wait the figures can pass.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define THREADS_MIN 48
#define THREADS_MAX 1024
#define RESPONSE_MAX 65536
#define NOT_VISIBLE_MS 10000.0

typedef struct conn {
    int fd;
    char buf[RESPONSE_MAX];
} conn_t;

typedef struct response {
    int status;
    char token[1024];
    bool stale;
    const char *body; /* inside conn_t.buf, NUL-terminated */
} response_t;

static const char *host, *cookie;
static int port;
static double rate;
static long total;
static atomic_long next_k;
static double t0;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static double *cmd_ms, *fresh_ms;
/* shed: POSTs the serve refused with 429/503 and Retry-After (its bounded queue was full), which
 * is its overload contract, not a failure; errors: everything else that was not a 2xx with an id.
 */
static long ncmd, nfresh, errors, shed, not_visible;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_until(double t)
{
    double d = t - now_s();
    if (d <= 0)
        return;
    struct timespec ts = {(time_t)d, (long)((d - (double)(time_t)d) * 1e9)};
    nanosleep(&ts, NULL);
}

static bool conn_open(conn_t *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        if (c->fd >= 0)
            close(c->fd);
        c->fd = -1;
        return false;
    }
    return true;
}

static bool send_all(int fd, const char *s, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, s, n, MSG_NOSIGNAL);
        if (w <= 0)
            return false;
        s += w;
        n -= (size_t)w;
    }
    return true;
}

/* The value of header @p name in the head [head, end), into out; false when absent. */
static bool header(const char *head, const char *end, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p != NULL && p < end; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1, *e = strstr(v, "\r\n");
            while (*v == ' ')
                v++;
            size_t len = (size_t)(e - v) < cap - 1 ? (size_t)(e - v) : cap - 1;
            memcpy(out, v, len);
            out[len] = '\0';
            return true;
        }
    }
    return false;
}

/* One request on the keep-alive connection; false on a transport error (the caller reconnects). */
static bool request(conn_t *c, const char *req, size_t len, response_t *r)
{
    if (!send_all(c->fd, req, len))
        return false;
    size_t have = 0;
    char *end = NULL;
    c->buf[0] = '\0';
    while ((end = strstr(c->buf, "\r\n\r\n")) == NULL) {
        ssize_t n = recv(c->fd, c->buf + have, RESPONSE_MAX - 1 - have, 0);
        if (n <= 0)
            return false;
        have += (size_t)n;
        c->buf[have] = '\0';
        if (have >= RESPONSE_MAX - 1)
            return false;
    }
    char value[32];
    size_t body_len = header(c->buf, end, "Content-Length", value, sizeof(value))
                          ? (size_t)strtoul(value, NULL, 10)
                          : 0;
    size_t head_len = (size_t)(end + 4 - c->buf);
    if (head_len + body_len >= RESPONSE_MAX)
        return false;
    while (have < head_len + body_len) {
        ssize_t n = recv(c->fd, c->buf + have, RESPONSE_MAX - 1 - have, 0);
        if (n <= 0)
            return false;
        have += (size_t)n;
    }
    c->buf[head_len + body_len] = '\0';
    r->status = atoi(c->buf + 9); /* "HTTP/1.1 201 ..." */
    r->token[0] = '\0';
    header(c->buf, end, "X-Consistency-Token", r->token, sizeof(r->token));
    r->stale = header(c->buf, end, "X-Consistency-Stale", value, sizeof(value)) &&
               strcmp(value, "true") == 0;
    r->body = c->buf + head_len;
    return true;
}

static void record(double *samples, long *n, double v)
{
    pthread_mutex_lock(&lock);
    samples[(*n)++] = v;
    pthread_mutex_unlock(&lock);
}

static void count(long *n)
{
    pthread_mutex_lock(&lock);
    (*n)++;
    pthread_mutex_unlock(&lock);
}

/* GET the ticket until it is there; returns the time it was seen, or -1 after NOT_VISIBLE_MS. */
static double wait_visible(conn_t *c, const char *id, const char *token, double done)
{
    char req[2048];
    bool with_token = token[0] != '\0';
    for (;;) {
        int len = snprintf(req, sizeof(req),
                           "GET /api/tickets/%s HTTP/1.1\r\nHost: %s\r\nCookie: %s\r\n%s%s%s\r\n",
                           id, host, cookie, with_token ? "X-Consistency-Token: " : "",
                           with_token ? token : "", with_token ? "\r\n" : "");
        response_t r;
        if (len <= 0 || (size_t)len >= sizeof(req) || !request(c, req, (size_t)len, &r))
            return -2;
        double seen = now_s();
        if (r.status == 200 && !r.stale)
            return seen;
        if ((seen - done) * 1000.0 > NOT_VISIBLE_MS)
            return -1;
        with_token = false; /* the server's wait is over: poll from here on */
        sleep_until(seen + 0.005);
    }
}

static void *worker(void *arg)
{
    (void)arg;
    conn_t *c = malloc(sizeof(*c));
    if (c == NULL || !conn_open(c)) {
        free(c);
        return NULL;
    }
    char req[2048];
    for (;;) {
        long k = atomic_fetch_add(&next_k, 1);
        if (k >= total)
            break;
        double due = t0 + (double)k / rate;
        sleep_until(due);
        char body[64];
        int blen = snprintf(body, sizeof(body), "{\"title\":\"fresh %ld\",\"price\":10}", k);
        int len = snprintf(req, sizeof(req),
                           "POST /api/tickets HTTP/1.1\r\nHost: %s\r\nCookie: %s\r\n"
                           "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                           host, cookie, blen, body);
        response_t r;
        if (!request(c, req, (size_t)len, &r)) {
            count(&errors);
            close(c->fd);
            if (!conn_open(c))
                break;
            continue;
        }
        double done = now_s();
        if (r.status / 100 != 2) {
            count(r.status == 429 || r.status == 503 ? &shed : &errors);
            continue;
        }
        json_t *j = json_loads(r.body, 0, NULL);
        const char *id = json_string_value(json_object_get(j, "id"));
        char tid[64] = "", token[1024];
        if (id != NULL)
            snprintf(tid, sizeof(tid), "%s", id);
        json_decref(j);
        snprintf(token, sizeof(token), "%s", r.token);
        if (tid[0] == '\0') {
            count(&errors);
            continue;
        }
        record(cmd_ms, &ncmd, (done - due) * 1000.0);
        double seen = wait_visible(c, tid, token, done);
        if (seen == -2) {
            count(&errors);
            close(c->fd);
            if (!conn_open(c))
                break;
        } else if (seen < 0) {
            count(&not_visible);
            record(fresh_ms, &nfresh, NOT_VISIBLE_MS);
        } else {
            record(fresh_ms, &nfresh, (seen - done) * 1000.0);
        }
    }
    if (c->fd >= 0)
        close(c->fd);
    free(c);
    return NULL;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static json_t *pct(double *xs, long n, double p)
{
    if (n == 0)
        return json_null();
    long i = (long)(p / 100.0 * (double)n);
    return json_real(xs[i < n ? i : n - 1]);
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: bench_freshness HOST PORT COOKIE RATE SECONDS OUT.json\n");
        return 2;
    }
    host = argv[1];
    port = atoi(argv[2]);
    cookie = argv[3];
    rate = atof(argv[4]);
    double secs = atof(argv[5]);
    total = (long)(rate * secs);
    if (rate <= 0 || total <= 0) {
        fprintf(stderr, "bench_freshness: RATE and SECONDS must be positive\n");
        return 2;
    }
    cmd_ms = calloc((size_t)total, sizeof(double));
    fresh_ms = calloc((size_t)total, sizeof(double));
    if (cmd_ms == NULL || fresh_ms == NULL)
        return 1;
    int threads = (int)(rate / 4);
    threads = threads < THREADS_MIN ? THREADS_MIN : threads > THREADS_MAX ? THREADS_MAX : threads;
    pthread_t *th = calloc((size_t)threads, sizeof(*th));
    if (th == NULL)
        return 1;
    t0 = now_s() + 0.5;
    for (int i = 0; i < threads; i++)
        pthread_create(&th[i], NULL, worker, NULL);
    for (int i = 0; i < threads; i++)
        pthread_join(th[i], NULL);
    free(th);

    json_t *samples = json_array();
    for (long i = 0; i < nfresh; i++)
        json_array_append_new(samples, json_real(fresh_ms[i]));
    qsort(cmd_ms, (size_t)ncmd, sizeof(double), cmp_double);
    qsort(fresh_ms, (size_t)nfresh, sizeof(double), cmp_double);
    json_t *out =
        json_pack("{s:f, s:f, s:I, s:I, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "rate",
                  rate, "seconds", secs, "sent", (json_int_t)total, "ok", (json_int_t)ncmd, "shed",
                  (json_int_t)shed, "errors", (json_int_t)errors, "not_visible_10s",
                  (json_int_t)not_visible, "cmd_p50_ms", pct(cmd_ms, ncmd, 50), "cmd_p99_ms",
                  pct(cmd_ms, ncmd, 99), "fresh_p50_ms", pct(fresh_ms, nfresh, 50), "fresh_p90_ms",
                  pct(fresh_ms, nfresh, 90), "fresh_p99_ms", pct(fresh_ms, nfresh, 99),
                  "fresh_p999_ms", pct(fresh_ms, nfresh, 99.9), "fresh_samples_ms", samples);
    int rc = out != NULL && json_dump_file(out, argv[6], JSON_COMPACT) == 0 ? 0 : 1;
    json_decref(out);
    free(cmd_ms);
    free(fresh_ms);
    return rc;
}
