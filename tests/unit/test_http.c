/*
 * test_http.c - the HTTP front without databases: routing and captures, the contract's error
 * bodies (404, 400 malformed JSON / wrong content type, 413), request ids, inline vs worker
 * routes, a client that leaves while its handler runs, server-sent event streams, and parked
 * requests (tk_http_park/resume) that hold no worker while they wait.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tk/http.h"
#include "tk/ids.h"
#include "tk/cfg.h"
#include "tk_test.h"

static pthread_mutex_t slow_mu = PTHREAD_MUTEX_INITIALIZER;
static int slow_done;

static void echo(tk_http_req_t *req)
{
    json_t *body = tk_http_body_or_respond(req);
    if (body == NULL)
        return;
    /* Both values must stay valid together: lookups do not invalidate earlier ones. */
    const char *limit = tk_http_query(req, "limit");
    const char *other = tk_http_query(req, "other");
    tk_http_reply_json(req, 200,
                       json_pack("{s:s, s:s?, s:s?, s:s?, s:O}", "id", tk_http_param(req, "id"),
                                 "sub", tk_http_param(req, "sub"), "limit", limit, "other", other,
                                 "body", body));
}

static void by_id(tk_http_req_t *req)
{
    const char *id = tk_http_id_or_respond(req, "id");
    if (id != NULL)
        tk_http_reply_json(req, 200, json_pack("{s:s}", "id", id));
}

static void slow(tk_http_req_t *req)
{
    usleep(300 * 1000);
    pthread_mutex_lock(&slow_mu);
    slow_done++;
    pthread_mutex_unlock(&slow_mu);
    tk_http_reply_json(req, 200, json_object());
}

static void stream(tk_http_req_t *req)
{
    char channel[64];
    snprintf(channel, sizeof(channel), "test:%s", tk_http_param(req, "id"));
    tk_http_reply_sse(req, channel, "event: hello\ndata: {}\n\n");
}

/* Parks on its first run (as tk_consistency_await does); the test resumes it. */
#define PARKED_MAX 16
static pthread_mutex_t park_mu = PTHREAD_MUTEX_INITIALIZER;
static tk_http_req_t *parked[PARKED_MAX];
static int nparked;

static void park_then(tk_http_req_t *req, void *arg)
{
    (void)arg;
    pthread_mutex_lock(&park_mu);
    parked[nparked++] = req;
    pthread_mutex_unlock(&park_mu);
}

static void parking(tk_http_req_t *req)
{
    if (tk_http_resumed(req) == 0) {
        tk_http_park(req, park_then, NULL);
        return;
    }
    tk_http_add_header(req, "x-parked", "yes");
    tk_http_reply_json(req, 200, json_pack("{s:i}", "resumed", tk_http_resumed(req)));
}

/* Needs the signed-in user: the revocation check runs on this worker. */
static void mine(tk_http_req_t *req)
{
    const tk_session_user_t *u = tk_http_user_or_respond(req);
    if (u != NULL)
        tk_http_reply_json(req, 200, json_pack("{s:s}", "id", u->id));
}

static tk_http_server_t *srv_of_routes;

static void routes(tk_http_server_t *srv)
{
    srv_of_routes = srv;
    tk_http_route(srv, "POST", "/api/things/:id", echo, 0);
    tk_http_route(srv, "POST", "/api/things/:id/parts/:sub", echo, TK_ROUTE_INLINE);
    tk_http_route(srv, "GET", "/slow", slow, 0);
    tk_http_route(srv, "GET", "/by-id/:id", by_id, TK_ROUTE_INLINE);
    tk_http_route(srv, "GET", "/stream/:id", stream, 0);
    tk_http_route(srv, "GET", "/park", parking, 0);
    tk_http_route(srv, "GET", "/mine", mine, 0);
}

static int setup(void **state)
{
    (void)state;
    setenv("JWT_KEY", "unit-test-key-of-at-least-32-bytes", 1);
    /* An auth database that cannot be reached: the revocation check fails (port 1 refuses). */
    setenv("DATABASE_URL_AUTH", "postgresql://postgres@127.0.0.1:1/tk_auth?connect_timeout=1", 1);
    static void (*const registrars[])(tk_http_server_t *) = {routes, NULL};
    tk_test_server_start(registrars);
    return 0;
}

static const char *message_of(const tk_test_resp_t *r)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(r->json, "errors"), 0), "message"));
}

static void routes_and_captures(void **state)
{
    (void)state;
    tk_test_resp_t r;
    tk_test_http("POST", "/api/things/abc?limit=5%20x&other=1", "{\"a\":1}", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "id")), "abc");
    assert_string_equal(json_string_value(json_object_get(r.json, "limit")), "5 x");
    assert_string_equal(json_string_value(json_object_get(r.json, "other")), "1");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r.json, "body"), "a")), 1);
    tk_test_resp_release(&r);

    tk_test_http("POST", "/api/things/abc/parts/p1/", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "sub")), "p1");
    tk_test_resp_release(&r);

    const char *missing[] = {"/api/things", "/api/things/", "/api/things/a/b", "/nope", "/"};
    for (size_t i = 0; i < sizeof(missing) / sizeof(missing[0]); i++) {
        tk_test_http("POST", missing[i], "{}", NULL, &r);
        assert_int_equal(r.status, 404);
        assert_string_equal(message_of(&r), "Not Found");
        tk_test_resp_release(&r);
    }
    assert_true(tk_test_http_is("GET", "/by-id/0b1f6a3e-2c4d-4e5f-8a9b-0c1d2e3f4a5b", NULL, NULL,
                                200, NULL));
    tk_test_http("GET", "/by-id/5f4dcc3b5aa765d61d8327de", NULL, NULL, &r); /* an ObjectId */
    assert_int_equal(r.status, 404);
    assert_string_equal(message_of(&r), "Not Found");
    tk_test_resp_release(&r);

    tk_test_http("GET", "/api/things/abc", NULL, NULL, &r); /* wrong method */
    assert_int_equal(r.status, 404);
    tk_test_resp_release(&r);
}

static void bad_bodies(void **state)
{
    (void)state;
    tk_test_resp_t r;
    const char *bad[] = {"{", "[1]", "\"s\"", "{\"a\":1,\"a\":2}", "{\"a\":1} trailing"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tk_test_http("POST", "/api/things/x", bad[i], NULL, &r);
        assert_int_equal(r.status, 400);
        assert_non_null(message_of(&r));
        tk_test_resp_release(&r);
    }
    size_t big = 1024 * 1024 + 10;
    char *huge = malloc(big + 1);
    memset(huge, ' ', big);
    huge[0] = '{';
    huge[big - 1] = '}';
    huge[big] = '\0';
    tk_test_http("POST", "/api/things/x", huge, NULL, &r);
    assert_int_equal(r.status, 413);
    assert_non_null(message_of(&r));
    tk_test_resp_release(&r);
    free(huge);
}

static void health_and_metrics(void **state)
{
    (void)state;
    tk_test_resp_t r;
    assert_true(tk_test_http_is("GET", "/healthz", NULL, NULL, 200, NULL));
    tk_test_http("GET", "/readyz", NULL, NULL, &r); /* no probes registered: ready */
    assert_int_equal(r.status, 200);
    tk_test_resp_release(&r);
    tk_test_http("GET", "/metrics", NULL, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "tk_http_requests_total{class=\"4xx\"}"));
    tk_test_resp_release(&r);
}

static bool slow_finished(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&slow_mu);
    int n = slow_done;
    pthread_mutex_unlock(&slow_mu);
    return n == 1;
}

/* The client leaves while a worker runs its handler: the response is dropped, nothing breaks. */
static void client_leaves_mid_request(void **state)
{
    (void)state;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in addr = {.sin_family = AF_INET};
    addr.sin_port = htons((uint16_t)atoi(strrchr(tk_test_base_url(), ':') + 1));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
    const char *req = "GET /slow HTTP/1.1\r\nHost: t\r\n\r\n";
    assert_int_equal(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    usleep(50 * 1000);
    close(fd);
    assert_true(tk_test_eventually(slow_finished, NULL, 10000));
    assert_true(tk_test_http_is("GET", "/healthz", NULL, NULL, 200, NULL));
}

struct sse_reader {
    const char *path;
    tk_test_resp_t resp;
};

static void *read_stream(void *arg)
{
    struct sse_reader *rd = arg;
    tk_test_http("GET", rd->path, NULL, NULL, &rd->resp);
    return NULL;
}

static bool two_streams(void *arg)
{
    return tk_http_sse_count(arg) == 2;
}

static void sse_streams(void **state)
{
    (void)state;
    struct sse_reader a = {.path = "/stream/1"}, b = {.path = "/stream/2"};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, read_stream, &a);
    pthread_create(&tb, NULL, read_stream, &b);
    assert_true(tk_test_eventually(two_streams, srv_of_routes, 10000));
    tk_http_sse_publish(srv_of_routes, "test:1", "event: status\ndata: {\"n\":1}\n\n", false);
    tk_http_sse_publish(srv_of_routes, "test:1", "event: status\ndata: {\"n\":2}\n\n", true);
    pthread_join(ta, NULL); /* ends because the last event closed it */
    assert_int_equal(a.resp.status, 200);
    assert_string_equal(a.resp.body, "event: hello\ndata: {}\n\n"
                                     "event: status\ndata: {\"n\":1}\n\n"
                                     "event: status\ndata: {\"n\":2}\n\n");
    tk_http_sse_publish(srv_of_routes, "test:2", "data: bye\n\n", true);
    pthread_join(tb, NULL);
    assert_string_equal(b.resp.body, "event: hello\ndata: {}\n\ndata: bye\n\n");
    tk_test_resp_release(&a.resp);
    tk_test_resp_release(&b.resp);
}

static void *get_parked(void *arg)
{
    tk_test_http("GET", "/park", NULL, NULL, arg);
    return NULL;
}

static bool all_parked(void *arg)
{
    pthread_mutex_lock(&park_mu);
    int n = nparked;
    pthread_mutex_unlock(&park_mu);
    return n == *(int *)arg;
}

/* More parked requests than workers (8): other worker routes are still served at once, and
 * every parked request answers once resumed. */
static void parked_requests_hold_no_worker(void **state)
{
    (void)state;
    enum { N = 12 };
    pthread_t t[N];
    tk_test_resp_t resp[N];
    int want = N;
    for (int i = 0; i < N; i++)
        pthread_create(&t[i], NULL, get_parked, &resp[i]);
    assert_true(tk_test_eventually(all_parked, &want, 10000));
    int64_t t0 = tk_mono_ms();
    tk_test_resp_t r;
    tk_test_http("POST", "/api/things/x", "{}", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_true(tk_mono_ms() - t0 < 2000);
    tk_test_resp_release(&r);
    pthread_mutex_lock(&park_mu);
    for (int i = 0; i < nparked; i++)
        tk_http_resume(parked[i]);
    nparked = 0;
    pthread_mutex_unlock(&park_mu);
    for (int i = 0; i < N; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(resp[i].status, 200);
        assert_int_equal(json_integer_value(json_object_get(resp[i].json, "resumed")), 1);
        tk_test_resp_release(&resp[i]);
    }
}

/* The auth database is down (setup): a signed-in request whose revocation cannot be checked is
 * told to try again (503 + Retry-After), not that it is signed out (401); an anonymous one still
 * gets 401. */
static void unreachable_auth_database_is_503_not_401(void **state)
{
    (void)state;
    char id[TK_UUID_LEN + 1], jti[TK_UUID_LEN + 1], claims[256];
    tk_uuid_new(id);
    tk_uuid_new(jti);
    snprintf(claims, sizeof(claims),
             "{\"id\":\"%s\",\"email\":\"a@b.c\",\"iat\":%lld,\"jti\":\"%s\"}", id,
             (long long)(tk_now_ms() / 1000), jti);
    tk_err_t err = {0};
    assert_int_equal(tk_cfg_load(0, &err), 0); /* JWT_KEY for signing, as the server has it */
    char *cookie = tk_test_session_cookie(claims);
    tk_test_resp_t r;
    tk_test_http("GET", "/mine", NULL, cookie, &r);
    assert_int_equal(r.status, 503);
    assert_true(r.retry_after >= 1);
    assert_string_equal(message_of(&r), "Service unavailable");
    tk_test_resp_release(&r);
    assert_true(tk_test_http_is("GET", "/mine", NULL, NULL, 401, NULL));
    free(cookie);
}

TK_TEST_MAIN(setup, tk_test_server_teardown, cmocka_unit_test(routes_and_captures),
             cmocka_unit_test(bad_bodies), cmocka_unit_test(health_and_metrics),
             cmocka_unit_test(client_leaves_mid_request), cmocka_unit_test(sse_streams),
             cmocka_unit_test(parked_requests_hold_no_worker),
             cmocka_unit_test(unreachable_auth_database_is_503_not_401))
