/*
 * test_http_body.c - the request copy keeps the whole body (issue 11 item 7): a body with a NUL
 * byte used to be copied with strndup, which stops at the NUL, while the JSON parser was given
 * the full length and read past the copy. request_new is reached through the module's source,
 * with a hand-made h2o request (no socket, no server).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"

#include "../../platform/http.c"

static socklen_t no_peer(h2o_conn_t *conn, struct sockaddr *sa)
{
    (void)conn;
    (void)sa;
    return 0;
}

static const h2o_conn_callbacks_t conn_callbacks = {.get_peername = no_peer};
static h2o_conn_t conn = {.callbacks = &conn_callbacks};

static tk_http_req_t *request_with_body(tk_http_server_t *srv, h2o_req_t *req, const char *body,
                                        size_t len)
{
    memset(req, 0, sizeof(*req));
    h2o_mem_init_pool(&req->pool);
    req->method = h2o_iovec_init(H2O_STRLIT("POST"));
    req->path = h2o_iovec_init(H2O_STRLIT("/api/x"));
    req->query_at = SIZE_MAX;
    req->conn = &conn;
    req->entity = h2o_iovec_init(body, len);
    h2o_add_header(&req->pool, &req->headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("application/json"));
    return request_new(srv, req);
}

static void body_is_copied_whole(void **state)
{
    (void)state;
    tk_http_server_t srv = {0};
    srv.limits.deadline_ms = 1000;
    static const char body[] = "{\"a\":\"x\0y\",\"pad\":\"0123456789abcdef\"}";
    h2o_req_t req;
    tk_http_req_t *r = request_with_body(&srv, &req, body, sizeof(body) - 1);
    assert_int_equal(r->body_len, sizeof(body) - 1);
    assert_memory_equal(r->body, body, sizeof(body) - 1);
    assert_int_equal(r->body[r->body_len], '\0');
    /* The parser sees the NUL inside the string and refuses the body: 400, no over-read. */
    assert_null(tk_http_body_or_respond(r));
    assert_int_equal(r->status, 400);
    request_free(r);
    h2o_mem_clear_pool(&req.pool);
}

TK_TEST_MAIN(NULL, NULL, cmocka_unit_test(body_is_copied_whole))
