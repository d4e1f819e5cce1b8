/*
 * tk_test.c - integration test support. The server runs the real tk_http stack in a thread of
 * the test process; the client is libcurl over loopback, so tests see exactly what a browser
 * would: status codes, headers, cookies and bodies.
 */
#include "tk_test.h"
#include "ev_catalog.h"
#include "ev_envelope.h"
#include "tk/cfg.h"
#include "tk/context.h"
#include "tk/ids.h"
#include "tk/kafka.h"
#include "tk/mem.h"
#include "tk/migrate.h"
#include "tk/pg.h"
#include "tk/session.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <librdkafka/rdkafka.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void tk_test_require_stack(void)
{
    if (getenv("KAFKA_BROKERS") == NULL || getenv("DATABASE_URL") == NULL) {
        fprintf(stderr, "integration tests need the local stack: run scripts/test.sh "
                        "(KAFKA_BROKERS and DATABASE_URL are not set)\n");
        exit(1);
    }
    if (getenv("JWT_KEY") == NULL)
        setenv("JWT_KEY", "integration-test-key-of-at-least-32-bytes", 1);
    tk_err_t err = {0};
    if (tk_cfg_load(TK_CFG_NEED_KAFKA | TK_CFG_NEED_DATABASE | TK_CFG_NEED_JWT, &err) != 0) {
        fprintf(stderr, "configuration: %s\n", err.message);
        exit(1);
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

int tk_test_stack_setup(void **state)
{
    (void)state;
    tk_test_require_stack();
    return 0;
}

static void setup_failed(const char *what, const char *detail)
{
    fprintf(stderr, "test setup: %s: %s\n", what, detail ? detail : "");
    exit(1);
}

/* Append " key='value'" to buf, escaping as libpq's conninfo syntax requires. */
static void conninfo_add(char *buf, size_t size, const char *key, const char *value)
{
    size_t len = strlen(buf);
    len += (size_t)snprintf(buf + len, len < size ? size - len : 0, "%s%s='", len ? " " : "", key);
    for (const char *c = value; *c && len + 3 < size; c++) {
        if (*c == '\'' || *c == '\\')
            buf[len++] = '\\';
        buf[len++] = *c;
    }
    if (len + 2 < size) {
        buf[len++] = '\'';
        buf[len] = '\0';
    }
}

void tk_test_private_database(const char *context, const char *dbname)
{
    static char env[8][1200]; /* putenv keeps the pointer: static storage */
    static int nenv;
    char *errmsg = NULL, var[64];
    PQconninfoOption *opts = PQconninfoParse(tk_cfg()->database_url, &errmsg);
    if (opts == NULL)
        setup_failed("DATABASE_URL", errmsg);
    char conninfo[1024] = "";
    for (PQconninfoOption *o = opts; o->keyword != NULL; o++)
        if (o->val != NULL && *o->val && strcmp(o->keyword, "dbname") != 0)
            conninfo_add(conninfo, sizeof(conninfo), o->keyword, o->val);
    conninfo_add(conninfo, sizeof(conninfo), "dbname", dbname);
    PQconninfoFree(opts);

    tk_err_t err = {0};
    PGconn *server = tk_pg_connect_server(&err);
    if (server == NULL)
        setup_failed("tk_pg_connect_server", err.message);
    char sql[160];
    snprintf(sql, sizeof(sql), "CREATE DATABASE \"%s\"", dbname);
    PGresult *res = PQexec(server, sql);
    const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    /* 42P04: exists; 23505: another suite created it at the same moment. */
    if (PQresultStatus(res) != PGRES_COMMAND_OK &&
        (state == NULL || (strcmp(state, "42P04") != 0 && strcmp(state, "23505") != 0)))
        setup_failed("CREATE DATABASE", PQerrorMessage(server));
    PQclear(res);
    PQfinish(server);

    snprintf(var, sizeof(var), "DATABASE_URL_%s", context);
    for (char *c = var; *c; c++)
        *c = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
    if (nenv == 8)
        setup_failed("tk_test_private_database", "too many private databases");
    snprintf(env[nenv], sizeof(env[nenv]), "%s=%s", var, conninfo);
    putenv(env[nenv++]);
    if (tk_migrate_context(context, NULL, &err) != 0)
        setup_failed("tk_migrate_context", err.message);
}

/* ------------------------------------------------------------------ server */

static tk_http_server_t *server;
static pthread_t server_thread;
static volatile int server_stop;
static char base_url[64];

static void *serve(void *arg)
{
    (void)arg;
    tk_http_server_run(server, &server_stop);
    return NULL;
}

/* The test server, before its routes are added: exits the process when it cannot listen. */
static void server_new(void)
{
    tk_err_t err = {0};
    server = tk_http_server_new(0, 8, &err);
    if (server == NULL) {
        fprintf(stderr, "server: %s\n", err.message);
        exit(1);
    }
}

/* Serve the routes added since server_new, in a background thread. */
static const char *server_run(void)
{
    snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%d", tk_http_server_port(server));
    server_stop = 0;
    pthread_create(&server_thread, NULL, serve, NULL);
    return base_url;
}

const char *tk_test_server_start(void (*const *registrars)(tk_http_server_t *))
{
    server_new();
    for (size_t i = 0; registrars[i] != NULL; i++)
        registrars[i](server);
    return server_run();
}

const char *tk_test_server_start_contexts(const tk_context_t *const *contexts)
{
    server_new();
    for (size_t i = 0; contexts[i] != NULL; i++)
        tk_context_add_routes(contexts[i], server);
    return server_run();
}

const char *tk_test_base_url(void)
{
    return base_url;
}

void tk_test_server_stop(void)
{
    server_stop = 1;
    pthread_join(server_thread, NULL);
    tk_http_server_free(server);
    server = NULL;
}

int tk_test_server_teardown(void **state)
{
    (void)state;
    tk_test_server_stop();
    return 0;
}

/* ------------------------------------------------------------------ client */

struct buf {
    char *data;
    size_t len;
};

static size_t on_body(char *ptr, size_t size, size_t n, void *ud)
{
    struct buf *b = ud;
    size_t add = size * n;
    b->data = realloc(b->data, b->len + add + 1);
    memcpy(b->data + b->len, ptr, add);
    b->len += add;
    b->data[b->len] = '\0';
    return add;
}

struct resp_headers {
    struct buf cookies;
    long retry_after;
};

static size_t on_header(char *ptr, size_t size, size_t n, void *ud)
{
    struct resp_headers *h = ud;
    struct buf *cookies = &h->cookies;
    size_t len = size * n;
    if (len > 13 && strncasecmp(ptr, "retry-after: ", 13) == 0)
        h->retry_after = strtol(ptr + 13, NULL, 10);
    if (len > 12 && strncasecmp(ptr, "set-cookie: ", 12) == 0) {
        size_t vlen = len - 12;
        while (vlen > 0 && (ptr[12 + vlen - 1] == '\r' || ptr[12 + vlen - 1] == '\n'))
            vlen--;
        on_body(ptr + 12, 1, vlen, cookies);
        on_body("\n", 1, 1, cookies);
    }
    return len;
}

void tk_test_http(const char *method, const char *path, const char *body, const char *cookie,
                  tk_test_resp_t *out)
{
    tk_test_http_ex(method, path, body, cookie, NULL, out);
}

const char *tk_test_first_message(const tk_test_resp_t *r)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(r->json, "errors"), 0), "message"));
}

bool tk_test_http_is(const char *method, const char *path, const char *body, const char *cookie,
                     long status, const char *message)
{
    tk_test_resp_t r;
    tk_test_http(method, path, body, cookie, &r);
    const char *got = tk_test_first_message(&r);
    bool ok = r.status == status && (message == NULL || (got != NULL && strcmp(got, message) == 0));
    if (!ok)
        fprintf(stderr, "%s %s: %ld %s, want %ld %s\n", method, path, r.status,
                r.body ? r.body : "", status, message ? message : "");
    tk_test_resp_release(&r);
    return ok;
}

void tk_test_http_ex(const char *method, const char *path, const char *body, const char *cookie,
                     const char *header, tk_test_resp_t *out)
{
    memset(out, 0, sizeof(*out));
    char url[2048];
    snprintf(url, sizeof(url), "%s%s", base_url, path);
    CURL *c = curl_easy_init();
    struct buf resp = {0};
    struct resp_headers hdrs = {{0}, -1};
    struct curl_slist *headers = NULL;
    headers = curl_slist_append(headers, "Content-Type: application/json");
    if (header != NULL)
        headers = curl_slist_append(headers, header);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &resp);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &hdrs);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
    if (body != NULL)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    if (cookie != NULL)
        curl_easy_setopt(c, CURLOPT_COOKIE, cookie);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    out->body = resp.data ? resp.data : tk_mem_strdup("");
    out->json = json_loads(out->body, 0, NULL);
    out->retry_after = hdrs.retry_after;
    if (hdrs.cookies.data != NULL) {
        out->set_cookie_all = hdrs.cookies.data;
        out->set_cookie = tk_mem_strndup(hdrs.cookies.data, strcspn(hdrs.cookies.data, "\n"));
    }
}

void tk_test_resp_release(tk_test_resp_t *r)
{
    json_decref(r->json);
    free(r->body);
    free(r->set_cookie);
    free(r->set_cookie_all);
    memset(r, 0, sizeof(*r));
}

char *tk_test_cookie_of(const tk_test_resp_t *r)
{
    if (r->set_cookie == NULL)
        return NULL;
    return tk_mem_strndup(r->set_cookie, strcspn(r->set_cookie, ";"));
}

char *tk_test_fake_session(const char *user_id, const char *email)
{
    char claims[512];
    snprintf(claims, sizeof(claims), "{\"id\":\"%s\",\"email\":\"%s\",\"iat\":%lld}", user_id,
             email, (long long)(tk_now_ms() / 1000));
    return tk_test_session_cookie(claims);
}

char *tk_test_session_cookie(const char *claims_json)
{
    char *token = tk_session_sign_claims(claims_json, NULL);
    char inner[2048];
    snprintf(inner, sizeof(inner), "{\"jwt\":\"%s\"}", token);
    free(token);
    size_t len = strlen(inner);
    char *cookie = tk_mem_alloc(4 * ((len + 2) / 3) + 16);
    strcpy(cookie, "session=");
    EVP_EncodeBlock((unsigned char *)cookie + 8, (unsigned char *)inner, (int)len);
    return cookie;
}

/* ------------------------------------------------------------------ kafka */

struct tk_test_watch {
    rd_kafka_t *rk;
};

static rd_kafka_t *client(rd_kafka_type_t type)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", tk_cfg()->kafka_brokers, errstr, sizeof(errstr));
    if (type == RD_KAFKA_CONSUMER) {
        char group[64];
        tk_uuid_new(group);
        rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr));
        rd_kafka_conf_set(conf, "enable.auto.commit", "false", errstr, sizeof(errstr));
        /* A test waits for records: the broker answers a fetch as soon as it has one. */
        rd_kafka_conf_set(conf, "fetch.wait.max.ms", "20", errstr, sizeof(errstr));
    }
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        fprintf(stderr, "kafka client: %s\n", errstr);
        exit(1);
    }
    return rk;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int partitions_of(rd_kafka_t *rk, const char *topic)
{
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    int n = -1;
    for (int attempt = 0; attempt < 50 && n <= 0; attempt++) {
        if (rd_kafka_metadata(rk, 0, t, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            if (md->topic_cnt == 1 && md->topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR)
                n = md->topics[0].partition_cnt;
            rd_kafka_metadata_destroy(md);
        }
        if (n <= 0)
            nap_ms(100);
    }
    rd_kafka_topic_destroy(t);
    if (n <= 0) {
        fprintf(stderr, "no metadata for topic %s (did `ticketing topics` run?)\n", topic);
        exit(1);
    }
    return n;
}

int64_t tk_test_end_offset(rd_kafka_t *rk, const char *topic, int32_t partition)
{
    int64_t lo = 0, hi = 0, give_up = tk_mono_ms() + 60000;
    rd_kafka_resp_err_t e;
    while ((e = rd_kafka_query_watermark_offsets(rk, topic, partition, &lo, &hi, 10000)) !=
               RD_KAFKA_RESP_ERR_NO_ERROR &&
           tk_mono_ms() < give_up)
        nap_ms(200);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "no watermarks for topic %s [%d]: %s\n", topic, (int)partition,
                rd_kafka_err2str(e));
        exit(1);
    }
    return hi;
}

void tk_test_assign(rd_kafka_t *rk, const char *topic, bool from_end)
{
    int n = partitions_of(rk, topic);
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(n);
    for (int p = 0; p < n; p++)
        rd_kafka_topic_partition_list_add(l, topic, p)->offset =
            from_end ? tk_test_end_offset(rk, topic, p) : RD_KAFKA_OFFSET_BEGINNING;
    if (rd_kafka_assign(rk, l) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "cannot assign topic %s\n", topic);
        exit(1);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

rd_kafka_t *tk_test_consumer_new(const char *topic, bool from_end)
{
    rd_kafka_t *rk = client(RD_KAFKA_CONSUMER);
    rd_kafka_poll_set_consumer(rk);
    tk_test_assign(rk, topic, from_end);
    return rk;
}

void tk_test_consumer_free(rd_kafka_t *rk)
{
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

tk_test_watch_t *tk_test_watch_new(const char *topic)
{
    tk_test_watch_t *w = tk_mem_zalloc(sizeof(*w));
    w->rk = tk_test_consumer_new(topic, true);
    return w;
}

void tk_test_watch_free(tk_test_watch_t *w)
{
    if (w == NULL)
        return;
    tk_test_consumer_free(w->rk);
    free(w);
}

static bool matches(json_t *env, const char *type, const char *subject)
{
    const char *t = json_string_value(json_object_get(env, "type"));
    const char *s = json_string_value(json_object_get(env, "subject"));
    return t && strcmp(t, type) == 0 && (subject == NULL || (s && strcmp(s, subject) == 0));
}

/* The next record of @p w that is an event of @p type/@p subject, before @p deadline (mono ms);
 * NULL when none came. Owned. */
static json_t *next_match(tk_test_watch_t *w, const char *type, const char *subject,
                          int64_t deadline)
{
    while (tk_mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(w->rk, 100);
        if (m == NULL)
            continue;
        json_t *env = m->err ? NULL : json_loadb(m->payload, m->len, 0, NULL);
        rd_kafka_message_destroy(m);
        if (env != NULL && matches(env, type, subject))
            return env;
        json_decref(env);
    }
    return NULL;
}

json_t *tk_test_watch_expect(tk_test_watch_t *w, const char *type, const char *subject,
                             int timeout_ms)
{
    return next_match(w, type, subject, tk_mono_ms() + timeout_ms);
}

bool tk_test_watch_saw(tk_test_watch_t *w, const char *type, const char *subject, int timeout_ms)
{
    json_t *env = tk_test_watch_expect(w, type, subject, timeout_ms);
    json_decref(env);
    return env != NULL;
}

int tk_test_watch_count(tk_test_watch_t *w, const char *type, const char *subject, int window_ms)
{
    int n = 0;
    int64_t deadline = tk_mono_ms() + window_ms;
    json_t *env;
    while ((env = next_match(w, type, subject, deadline)) != NULL) {
        n++;
        json_decref(env);
    }
    return n;
}

rd_kafka_t *tk_test_producer(void)
{
    tk_err_t err = {0};
    rd_kafka_t *p = tk_kafka_producer_new(&err);
    if (p == NULL) {
        fprintf(stderr, "producer: %s\n", err.message);
        exit(1);
    }
    return p;
}

void tk_test_publish(const char *topic, const char *key, const char *envelope_json)
{
    rd_kafka_t *rk = client(RD_KAFKA_PRODUCER);
    rd_kafka_resp_err_t e =
        rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                          RD_KAFKA_V_VALUE((void *)envelope_json, strlen(envelope_json)),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    /* A minute: a just-started broker on a loaded machine may take many seconds to take the
     * first record of a topic (metadata, partition leadership). */
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR ||
        rd_kafka_flush(rk, 60000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "publish to %s failed\n", topic);
        exit(1);
    }
    rd_kafka_destroy(rk);
}

bool tk_test_eventually(bool (*fn)(void *arg), void *arg, int timeout_ms)
{
    int64_t deadline = tk_mono_ms() + timeout_ms;
    do {
        if (fn(arg))
            return true;
        usleep(50 * 1000);
    } while (tk_mono_ms() < deadline);
    return fn(arg);
}

char *tk_test_event_text(const char *type, const char *subject, int64_t version, json_t *data,
                         char *id_out)
{
    ev_envelope_t env;
    tk_err_t err = {0};
    char *text = NULL;
    if (ev_envelope_init(&env, type, subject, version, "test", data, &err) != 0 ||
        ev_envelope_encode(&env, &text, NULL, &err) != 0)
        setup_failed("tk_test_event_text", err.message);
    if (id_out != NULL)
        memcpy(id_out, env.id, TK_UUID_LEN + 1);
    ev_envelope_release(&env);
    return text;
}

void tk_test_publish_event(const char *type, const char *subject, int64_t version, json_t *data,
                           char *id_out)
{
    char *text = tk_test_event_text(type, subject, version, data, id_out);
    tk_test_publish(ev_topic_of(type), subject, text);
    free(text);
}

void tk_test_run_threads(void *(*fn)(void *), void *args, size_t size, int n)
{
    pthread_t *t = tk_mem_zalloc((size_t)n * sizeof(*t));
    for (int i = 0; i < n; i++)
        if (pthread_create(&t[i], NULL, fn, (char *)args + (size_t)i * size) != 0) {
            fprintf(stderr, "tk_test_run_threads: cannot start thread %d\n", i);
            exit(1);
        }
    for (int i = 0; i < n; i++)
        pthread_join(t[i], NULL);
    free(t);
}

int tk_test_silent_listener(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof(addr);
    if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, 16) != 0 ||
        getsockname(fd, (struct sockaddr *)&addr, &alen) != 0) {
        fprintf(stderr, "tk_test_silent_listener: no socket\n");
        exit(1);
    }
    *port = ntohs(addr.sin_port);
    return fd;
}
