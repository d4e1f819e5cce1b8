/*
 * fake_stripe.c - the fault-injecting Stripe of fake_stripe.h.
 *
 * A blocking accept loop (polled every 50 ms so stop is prompt) hands each connection to a
 * detached thread, which reads one request, answers it and closes (Connection: close). All state
 * is under one mutex; a condition variable wakes holds and lets stop wait for the connection
 * threads still running (a delayed answer, a hold).
 *
 * Per request, in this order:
 *   record -> programmed fail (not stored) -> auth -> idempotency lookup (replay / mismatch 400)
 *   -> execute (create the object or decline) -> store under the key -> hold / delay -> answer
 * Executing before delaying is what makes "timeout then success" end with one object: the
 * client's retry finds the stored answer of the first execution.
 */
#include "fake_stripe.h"
#include "tk/http.h"
#include "tk/ids.h"
#include "tk/mem.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_REQUEST (64 * 1024)

typedef struct fault {
    int kind; /* FAULT_* */
    char path[64];
    int remaining;
    int arg; /* delay ms or status */
} fault_t;

enum { FAULT_DELAY = 1, FAULT_FAIL };

typedef struct stored {
    char *key, *path, *form;
    int status;
    char *body;
} stored_t;

struct tk_fake_stripe {
    int listen_fd;
    char url[64];
    pthread_t accept_thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    int active; /* connection threads running */
    bool hold;
    fault_t faults[16];
    int nfaults;
    int declines;
    char decline_message[256];
    json_t *requests; /* array */
    stored_t *stored;
    size_t nstored, capstored;
    json_t *created;   /* {path: count} */
    json_t *intents;   /* {pi id: {"refunded": bool, "object": the PaymentIntent}} */
    int pi_delay_ms;   /* "charge, then time out": every payment intent answer this late */
    unsigned long seq; /* object ids */
};

typedef struct conn {
    tk_fake_stripe_t *fs;
    int fd;
} conn_t;

/* ------------------------------------------------------------------ small helpers */

/* Percent-decodes [s, s+n) ('+' is a space) into a new string. */
static char *form_decode(const char *s, size_t n)
{
    char *out = malloc(n + 1);
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') {
            out[j++] = ' ';
        } else if (s[i] == '%' && i + 2 < n && tk_hex_value(s[i + 1]) >= 0 &&
                   tk_hex_value(s[i + 2]) >= 0) {
            out[j++] = (char)(tk_hex_value(s[i + 1]) * 16 + tk_hex_value(s[i + 2]));
            i += 2;
        } else {
            out[j++] = s[i];
        }
    }
    out[j] = '\0';
    return out;
}

static json_t *form_parse(const char *body)
{
    json_t *form = json_object();
    const char *p = body;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (eq != NULL) {
            char *name = form_decode(p, (size_t)(eq - p));
            char *value = form_decode(eq + 1, len - (size_t)(eq - p) - 1);
            json_object_set_new(form, name, json_string(value));
            free(name);
            free(value);
        }
        p += len;
        if (*p == '&')
            p++;
    }
    return form;
}

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n <= 0)
            return; /* the client gave up (timed out): nothing to do */
        buf += n;
        len -= (size_t)n;
    }
}

static void respond(int fd, int status, const char *body, bool replayed)
{
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Request-Id: req_fake\r\n%sConnection: close\r\n\r\n",
                     status, tk_http_reason(status), strlen(body),
                     replayed ? "Idempotent-Replayed: true\r\n" : "");
    write_all(fd, head, (size_t)n);
    write_all(fd, body, strlen(body));
}

static char *error_body(const char *type, const char *code, const char *message)
{
    json_t *e = json_pack("{s:s, s:s}", "type", type, "message", message);
    if (code != NULL)
        json_object_set_new(e, "code", json_string(code));
    json_t *doc = json_pack("{s:o}", "error", e);
    char *s = json_dumps(doc, JSON_COMPACT);
    json_decref(doc);
    return s;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static void clear_locked(tk_fake_stripe_t *fs);

/* ------------------------------------------------------------------ request handling */

typedef struct request {
    bool get;
    char path[256];
    char query[512]; /* decoded, after '?' (GET) */
    char key[256];
    char auth[256];
    char *body;
} request_t;

/* Reads one request; false when it is not one we understand. */
static bool read_request(int fd, request_t *rq)
{
    char *buf = malloc(MAX_REQUEST + 1);
    size_t len = 0;
    char *end = NULL;
    bool ok = false;
    while (len < MAX_REQUEST) {
        ssize_t n = recv(fd, buf + len, MAX_REQUEST - len, 0);
        if (n <= 0)
            goto out;
        len += (size_t)n;
        buf[len] = '\0';
        if ((end = strstr(buf, "\r\n\r\n")) != NULL)
            break;
    }
    if (end == NULL)
        goto out;
    if (sscanf(buf, "POST %255s HTTP/1.", rq->path) != 1) {
        if (sscanf(buf, "GET %255s HTTP/1.", rq->path) != 1)
            goto out;
        rq->get = true;
    }
    char *qm = strchr(rq->path, '?');
    if (qm != NULL) {
        *qm = '\0';
        json_t *q = form_parse(qm + 1);
        snprintf(rq->query, sizeof(rq->query), "%s",
                 json_string_value(json_object_get(q, "query"))
                     ? json_string_value(json_object_get(q, "query"))
                     : "");
        json_decref(q);
    }
    size_t clen = 0;
    for (char *line = strstr(buf, "\r\n") + 2; line < end; line = strstr(line, "\r\n") + 2) {
        char *eol = strstr(line, "\r\n");
        char *colon = memchr(line, ':', (size_t)(eol - line));
        if (colon == NULL)
            continue;
        char *v = colon + 1;
        while (*v == ' ')
            v++;
        int vlen = (int)(eol - v);
        size_t nlen = (size_t)(colon - line);
        if (nlen == 14 && strncasecmp(line, "Content-Length", 14) == 0)
            clen = (size_t)strtoul(v, NULL, 10);
        else if (nlen == 15 && strncasecmp(line, "Idempotency-Key", 15) == 0)
            snprintf(rq->key, sizeof(rq->key), "%.*s", vlen, v);
        else if (nlen == 13 && strncasecmp(line, "Authorization", 13) == 0)
            snprintf(rq->auth, sizeof(rq->auth), "%.*s", vlen, v);
    }
    size_t have = len - (size_t)(end + 4 - buf);
    if (clen > MAX_REQUEST)
        goto out;
    rq->body = malloc(clen + 1);
    memcpy(rq->body, end + 4, have < clen ? have : clen);
    while (have < clen) {
        ssize_t n = recv(fd, rq->body + have, clen - have, 0);
        if (n <= 0)
            goto out;
        have += (size_t)n;
    }
    rq->body[clen] = '\0';
    ok = true;
out:
    free(buf);
    return ok;
}

/* Takes the first pending fault of @p kind matching @p path; its arg, or 0. Locked. */
static int take_fault(tk_fake_stripe_t *fs, int kind, const char *path)
{
    for (int i = 0; i < fs->nfaults; i++) {
        fault_t *f = &fs->faults[i];
        if (f->kind == kind && f->remaining > 0 && (f->path[0] == '\0' || !strcmp(f->path, path))) {
            f->remaining--;
            return f->arg;
        }
    }
    return 0;
}

static void count_created(tk_fake_stripe_t *fs, const char *path)
{
    json_int_t n = json_integer_value(json_object_get(fs->created, path));
    json_object_set_new(fs->created, path, json_integer(n + 1));
}

static const char *field(json_t *form, const char *name)
{
    return json_string_value(json_object_get(form, name));
}

/* Executes a request (locked): creates the object or refuses. Returns status; *body owned. */
static int execute(tk_fake_stripe_t *fs, const char *path, json_t *form, char **body)
{
    char id[64];
    json_t *obj = NULL;
    if (strcmp(path, "/v1/payment_methods") == 0) {
        const char *token = field(form, "card[token]");
        if (field(form, "type") == NULL || token == NULL) {
            *body = error_body("invalid_request_error", "parameter_missing", "Missing card");
            return 400;
        }
        snprintf(id, sizeof(id), "pm_fake_%s%lu",
                 strstr(token, "chargeDeclined") ? "declined_" : "", ++fs->seq);
        obj = json_pack("{s:s, s:s, s:s}", "id", id, "object", "payment_method", "type", "card");
    } else if (strcmp(path, "/v1/payment_intents") == 0) {
        const char *amount = field(form, "amount"), *currency = field(form, "currency");
        const char *pm = field(form, "payment_method");
        char *endp = NULL;
        long long cents = amount ? strtoll(amount, &endp, 10) : 0;
        if (amount == NULL || *endp != '\0' || cents <= 0 || currency == NULL || pm == NULL) {
            *body = error_body("invalid_request_error", "parameter_invalid", "Invalid amount");
            return 400;
        }
        if (fs->declines > 0 || strstr(pm, "declined") || strstr(pm, "chargeDeclined")) {
            bool programmed = fs->declines > 0;
            if (programmed)
                fs->declines--;
            *body = error_body("card_error", "card_declined",
                               programmed && fs->decline_message[0] ? fs->decline_message
                                                                    : "Your card was declined.");
            return 402;
        }
        snprintf(id, sizeof(id), "pi_fake_%lu", ++fs->seq);
        obj = json_pack("{s:s, s:s, s:I, s:s, s:s, s:s, s:{s:s?, s:s?}}", "id", id, "object",
                        "payment_intent", "amount", (json_int_t)cents, "currency", currency,
                        "status", "succeeded", "payment_method", pm, "metadata", "order_id",
                        field(form, "metadata[order_id]"), "attempt_id",
                        field(form, "metadata[attempt_id]"));
        json_object_set_new(fs->intents, id, json_pack("{s:b, s:O}", "refunded", 0, "object", obj));
    } else if (strcmp(path, "/v1/refunds") == 0) {
        const char *pi = field(form, "payment_intent");
        json_t *intent = pi ? json_object_get(fs->intents, pi) : NULL;
        if (intent == NULL) {
            *body =
                error_body("invalid_request_error", "resource_missing", "No such payment_intent");
            return 404;
        }
        if (json_is_true(json_object_get(intent, "refunded"))) {
            *body = error_body("invalid_request_error", "charge_already_refunded",
                               "Charge has already been refunded.");
            return 400;
        }
        json_object_set_new(intent, "refunded", json_true());
        snprintf(id, sizeof(id), "re_fake_%lu", ++fs->seq);
        obj = json_pack("{s:s, s:s, s:s, s:s}", "id", id, "object", "refund", "payment_intent", pi,
                        "status", "succeeded");
    } else {
        *body = error_body("invalid_request_error", NULL, "Unrecognized request URL");
        return 404;
    }
    count_created(fs, path);
    *body = json_dumps(obj, JSON_COMPACT);
    json_decref(obj);
    return 200;
}

/* GET /v1/payment_intents/search?query=metadata['attempt_id']:'<id>' (locked): the intents
 * whose metadata matches, at once (Stripe's own index may lag; tests want the outcome). */
static int search(tk_fake_stripe_t *fs, const char *path, const char *query, char **body)
{
    static const char prefix[] = "metadata['attempt_id']:'";
    if (strcmp(path, "/v1/payment_intents/search") != 0 ||
        strncmp(query, prefix, sizeof(prefix) - 1) != 0) {
        *body = error_body("invalid_request_error", NULL, "Unrecognized request URL");
        return 404;
    }
    char want[128];
    snprintf(want, sizeof(want), "%.100s", query + sizeof(prefix) - 1); /* a UUID fits */
    char *quote = strchr(want, '\'');
    if (quote != NULL)
        *quote = '\0';
    json_t *data = json_array();
    const char *id;
    json_t *intent;
    json_object_foreach(fs->intents, id, intent)
    {
        json_t *obj = json_object_get(intent, "object");
        const char *a =
            json_string_value(json_object_get(json_object_get(obj, "metadata"), "attempt_id"));
        if (a != NULL && strcmp(a, want) == 0)
            json_array_append(data, obj);
    }
    json_t *res =
        json_pack("{s:s, s:o, s:b}", "object", "search_result", "data", data, "has_more", 0);
    *body = json_dumps(res, JSON_COMPACT);
    json_decref(res);
    return 200;
}

/* The control endpoints of a fake run as its own process (fake_stripe_main.c), for tests that
 * drive it over HTTP (tests/security): not recorded, not Stripe's. Locked. Returns status. */
static int control(tk_fake_stripe_t *fs, const char *path, json_t *form, char **body)
{
    json_t *res = NULL;
    if (strcmp(path, "/__fake/charge_timeout") == 0) {
        const char *ms = field(form, "ms");
        fs->pi_delay_ms = ms ? atoi(ms) : 0;
        res = json_pack("{s:i}", "ms", fs->pi_delay_ms);
    } else if (strcmp(path, "/__fake/reset") == 0) {
        clear_locked(fs);
        res = json_object();
    } else if (strcmp(path, "/__fake/state") == 0) {
        res = json_pack("{s:O, s:O, s:O}", "requests", fs->requests, "created", fs->created,
                        "intents", fs->intents);
    } else {
        *body = error_body("invalid_request_error", NULL, "Unknown control path");
        return 404;
    }
    *body = json_dumps(res, JSON_COMPACT);
    json_decref(res);
    return 200;
}

static void handle(tk_fake_stripe_t *fs, int fd)
{
    request_t rq = {0};
    if (!read_request(fd, &rq)) {
        free(rq.body);
        return;
    }
    json_t *form = form_parse(rq.body);
    if (strncmp(rq.path, "/__fake/", 8) == 0) {
        char *cbody = NULL;
        pthread_mutex_lock(&fs->mu);
        int cstatus = control(fs, rq.path, form, &cbody);
        pthread_mutex_unlock(&fs->mu);
        respond(fd, cstatus, cbody, false);
        free(cbody);
        json_decref(form);
        free(rq.body);
        return;
    }
    json_t *rec = json_pack("{s:s, s:s, s:s, s:O, s:b, s:s}", "path", rq.path, "idempotency_key",
                            rq.key, "authorization", rq.auth, "form", form, "replayed", 0, "method",
                            rq.get ? "GET" : "POST");
    char *body = NULL;
    int status = 0, delay = 0;
    bool replayed = false;

    pthread_mutex_lock(&fs->mu);
    json_array_append(fs->requests, rec);
    int fail = take_fault(fs, FAULT_FAIL, rq.path);
    delay = take_fault(fs, FAULT_DELAY, rq.path);
    if (fail != 0) {
        status = fail;
        body = error_body("api_error", NULL, "Injected failure");
    } else if (strncmp(rq.auth, "Bearer ", 7) != 0 || rq.auth[7] == '\0') {
        status = 401;
        body = error_body("invalid_request_error", NULL, "You did not provide an API key.");
    } else if (rq.get) {
        status = search(fs, rq.path, rq.query, &body);
    } else {
        stored_t *hit = NULL;
        for (size_t i = 0; rq.key[0] && i < fs->nstored; i++)
            if (strcmp(fs->stored[i].key, rq.key) == 0)
                hit = &fs->stored[i];
        if (hit != NULL && (strcmp(hit->path, rq.path) != 0 || strcmp(hit->form, rq.body) != 0)) {
            status = 400;
            body = error_body("idempotency_error", NULL,
                              "Keys for idempotent requests can only be used with the same "
                              "parameters they were first used with.");
        } else if (hit != NULL) {
            status = hit->status;
            body = strdup(hit->body);
            replayed = true;
        } else {
            status = execute(fs, rq.path, form, &body);
            if (rq.key[0]) {
                fs->stored =
                    tk_mem_grow(fs->stored, &fs->capstored, fs->nstored + 1, sizeof(*fs->stored));
                fs->stored[fs->nstored++] = (stored_t){strdup(rq.key), strdup(rq.path),
                                                       strdup(rq.body), status, strdup(body)};
            }
        }
    }
    json_object_set_new(rec, "replayed", json_boolean(replayed));
    json_object_set_new(rec, "status", json_integer(status));
    if (strcmp(rq.path, "/v1/payment_intents") == 0) {
        while (fs->hold && !fs->stop)
            pthread_cond_wait(&fs->cv, &fs->mu);
        if (fs->pi_delay_ms > delay)
            delay = fs->pi_delay_ms;
    }
    pthread_mutex_unlock(&fs->mu);

    if (delay > 0)
        sleep_ms(delay);
    respond(fd, status, body, replayed);
    free(body);
    json_decref(rec);
    json_decref(form);
    free(rq.body);
}

static void *conn_main(void *arg)
{
    conn_t *c = arg;
    tk_fake_stripe_t *fs = c->fs;
    handle(fs, c->fd);
    close(c->fd);
    free(c);
    pthread_mutex_lock(&fs->mu);
    fs->active--;
    pthread_cond_broadcast(&fs->cv);
    pthread_mutex_unlock(&fs->mu);
    return NULL;
}

static void *accept_main(void *arg)
{
    tk_fake_stripe_t *fs = arg;
    for (;;) {
        pthread_mutex_lock(&fs->mu);
        int stop = fs->stop;
        pthread_mutex_unlock(&fs->mu);
        if (stop)
            break;
        struct pollfd p = {.fd = fs->listen_fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(fs->listen_fd, NULL, NULL);
        if (fd < 0)
            continue;
        conn_t *c = malloc(sizeof(*c));
        c->fs = fs;
        c->fd = fd;
        pthread_mutex_lock(&fs->mu);
        fs->active++;
        pthread_mutex_unlock(&fs->mu);
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &attr, conn_main, c) != 0) {
            close(fd);
            free(c);
            pthread_mutex_lock(&fs->mu);
            fs->active--;
            pthread_mutex_unlock(&fs->mu);
        }
        pthread_attr_destroy(&attr);
    }
    return NULL;
}

/* ------------------------------------------------------------------ control */

/* The fake tk_fake_stripe_reset_each resets: a test process runs one. */
static tk_fake_stripe_t *last_started;

tk_fake_stripe_t *tk_fake_stripe_start(void)
{
    tk_fake_stripe_t *fs = calloc(1, sizeof(*fs));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    socklen_t alen = sizeof(a);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fs->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fs->listen_fd < 0 || bind(fs->listen_fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(fs->listen_fd, 128) != 0 ||
        getsockname(fs->listen_fd, (struct sockaddr *)&a, &alen) != 0) {
        fprintf(stderr, "fake_stripe: cannot listen: %s\n", strerror(errno));
        exit(1);
    }
    snprintf(fs->url, sizeof(fs->url), "http://127.0.0.1:%d", ntohs(a.sin_port));
    pthread_mutex_init(&fs->mu, NULL);
    pthread_cond_init(&fs->cv, NULL);
    fs->requests = json_array();
    fs->created = json_object();
    fs->intents = json_object();
    pthread_create(&fs->accept_thread, NULL, accept_main, fs);
    last_started = fs;
    return fs;
}

static void clear_locked(tk_fake_stripe_t *fs)
{
    for (size_t i = 0; i < fs->nstored; i++) {
        free(fs->stored[i].key);
        free(fs->stored[i].path);
        free(fs->stored[i].form);
        free(fs->stored[i].body);
    }
    fs->nstored = 0;
    json_array_clear(fs->requests);
    json_object_clear(fs->created);
    json_object_clear(fs->intents);
    fs->nfaults = 0;
    fs->declines = 0;
    fs->decline_message[0] = '\0';
    fs->seq = 0;
    fs->hold = false;
    fs->pi_delay_ms = 0;
    pthread_cond_broadcast(&fs->cv);
}

void tk_fake_stripe_stop(tk_fake_stripe_t *fs)
{
    if (fs == NULL)
        return;
    if (last_started == fs)
        last_started = NULL;
    pthread_mutex_lock(&fs->mu);
    fs->stop = 1;
    fs->hold = false;
    pthread_cond_broadcast(&fs->cv);
    pthread_mutex_unlock(&fs->mu);
    pthread_join(fs->accept_thread, NULL);
    pthread_mutex_lock(&fs->mu);
    while (fs->active > 0)
        pthread_cond_wait(&fs->cv, &fs->mu);
    clear_locked(fs);
    pthread_mutex_unlock(&fs->mu);
    close(fs->listen_fd);
    free(fs->stored);
    json_decref(fs->requests);
    json_decref(fs->created);
    json_decref(fs->intents);
    pthread_cond_destroy(&fs->cv);
    pthread_mutex_destroy(&fs->mu);
    free(fs);
}

const char *tk_fake_stripe_url(const tk_fake_stripe_t *fs)
{
    return fs->url;
}

tk_stripe_options_t tk_fake_stripe_options(const tk_fake_stripe_t *fs)
{
    return (tk_stripe_options_t){.api_base = tk_fake_stripe_url(fs),
                                 .api_key = "sk_test_fake_key",
                                 .connect_timeout_ms = 1000,
                                 .timeout_ms = 1000,
                                 .max_attempts = 3,
                                 .backoff_base_ms = 20,
                                 .backoff_max_ms = 100};
}

const char *tk_fake_stripe_form(json_t *rec, const char *name)
{
    return json_string_value(json_object_get(json_object_get(rec, "form"), name));
}

void tk_fake_stripe_reset(tk_fake_stripe_t *fs)
{
    pthread_mutex_lock(&fs->mu);
    clear_locked(fs);
    pthread_mutex_unlock(&fs->mu);
}

int tk_fake_stripe_reset_each(void **state)
{
    (void)state;
    tk_fake_stripe_reset(last_started);
    return 0;
}

static void add_fault(tk_fake_stripe_t *fs, int kind, const char *path, int n, int arg)
{
    pthread_mutex_lock(&fs->mu);
    if (fs->nfaults < (int)(sizeof(fs->faults) / sizeof(fs->faults[0]))) {
        fault_t *f = &fs->faults[fs->nfaults++];
        f->kind = kind;
        snprintf(f->path, sizeof(f->path), "%s", path ? path : "");
        f->remaining = n;
        f->arg = arg;
    }
    pthread_mutex_unlock(&fs->mu);
}

void tk_fake_stripe_delay(tk_fake_stripe_t *fs, const char *path, int n, int delay_ms)
{
    add_fault(fs, FAULT_DELAY, path, n, delay_ms);
}

void tk_fake_stripe_fail(tk_fake_stripe_t *fs, const char *path, int n, int status)
{
    add_fault(fs, FAULT_FAIL, path, n, status);
}

void tk_fake_stripe_decline(tk_fake_stripe_t *fs, int n, const char *message)
{
    pthread_mutex_lock(&fs->mu);
    fs->declines = n;
    snprintf(fs->decline_message, sizeof(fs->decline_message), "%s", message ? message : "");
    pthread_mutex_unlock(&fs->mu);
}

void tk_fake_stripe_hold(tk_fake_stripe_t *fs, bool on)
{
    pthread_mutex_lock(&fs->mu);
    fs->hold = on;
    pthread_cond_broadcast(&fs->cv);
    pthread_mutex_unlock(&fs->mu);
}

int tk_fake_stripe_count(tk_fake_stripe_t *fs, const char *path, const char *key)
{
    int n = 0;
    size_t i;
    json_t *r;
    pthread_mutex_lock(&fs->mu);
    json_array_foreach(fs->requests, i, r)
    {
        const char *p = json_string_value(json_object_get(r, "path"));
        const char *k = json_string_value(json_object_get(r, "idempotency_key"));
        if ((path == NULL || strcmp(p, path) == 0) && (key == NULL || strcmp(k, key) == 0))
            n++;
    }
    pthread_mutex_unlock(&fs->mu);
    return n;
}

int tk_fake_stripe_created(tk_fake_stripe_t *fs, const char *path)
{
    pthread_mutex_lock(&fs->mu);
    int n = (int)json_integer_value(json_object_get(fs->created, path));
    pthread_mutex_unlock(&fs->mu);
    return n;
}

bool tk_fake_stripe_wait_count(tk_fake_stripe_t *fs, const char *path, int n, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        if (tk_fake_stripe_count(fs, path, NULL) >= n)
            return true;
        sleep_ms(10);
    }
    return false;
}

json_t *tk_fake_stripe_requests(tk_fake_stripe_t *fs)
{
    pthread_mutex_lock(&fs->mu);
    json_t *copy = json_deep_copy(fs->requests);
    pthread_mutex_unlock(&fs->mu);
    return copy;
}

json_t *tk_fake_stripe_last(tk_fake_stripe_t *fs, const char *path)
{
    json_t *found = NULL;
    pthread_mutex_lock(&fs->mu);
    for (size_t i = json_array_size(fs->requests); i-- > 0;) {
        json_t *r = json_array_get(fs->requests, i);
        if (path == NULL || strcmp(json_string_value(json_object_get(r, "path")), path) == 0) {
            found = json_deep_copy(r);
            break;
        }
    }
    pthread_mutex_unlock(&fs->mu);
    return found;
}

void tk_fake_stripe_charge_timeout(tk_fake_stripe_t *fs, int delay_ms)
{
    pthread_mutex_lock(&fs->mu);
    fs->pi_delay_ms = delay_ms;
    pthread_mutex_unlock(&fs->mu);
}

json_t *tk_fake_stripe_intent(tk_fake_stripe_t *fs, const char *id)
{
    pthread_mutex_lock(&fs->mu);
    json_t *obj = json_deep_copy(json_object_get(json_object_get(fs->intents, id), "object"));
    pthread_mutex_unlock(&fs->mu);
    return obj;
}

int tk_fake_stripe_refunded(tk_fake_stripe_t *fs, const char *id)
{
    pthread_mutex_lock(&fs->mu);
    int r = json_is_true(json_object_get(json_object_get(fs->intents, id), "refunded"));
    pthread_mutex_unlock(&fs->mu);
    return r;
}
