/*
 * test_static.c - the storefront's files served from the binary (platform/static.c): each client
 * page answers with index.html, files with their content type, an ETag and 304 on revalidation,
 * the strict CSP (Stripe's origins only with a publishable key), the contract's 404 for unknown
 * files and for paths that try to climb out, and a bad publishable key refused at start-up.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tk/static.h"
#include "tk_test.h"

struct resp {
    long status;
    char body[200000];
    size_t len;
    char headers[8192];
    size_t hlen;
};

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    struct resp *r = arg;
    size_t len = size * n;
    if (r->len + len < sizeof(r->body)) {
        memcpy(r->body + r->len, p, len);
        r->len += len;
        r->body[r->len] = '\0';
    }
    return len;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    struct resp *r = arg;
    size_t len = size * n;
    if (r->hlen + len < sizeof(r->headers)) {
        for (size_t i = 0; i < len; i++) /* lower-case for lookups */
            r->headers[r->hlen + i] = (char)((p[i] >= 'A' && p[i] <= 'Z') ? p[i] + 32 : p[i]);
        r->hlen += len;
        r->headers[r->hlen] = '\0';
    }
    return len;
}

/* GET @p path (raw, sent as is) with an optional extra request header; the answer must have
 * status @p status (a failure names the path). */
static void get(const char *path, const char *header, long status, struct resp *r)
{
    memset(r, 0, sizeof(*r));
    char url[512];
    snprintf(url, sizeof(url), "%s%s", tk_test_base_url(), path);
    CURL *c = curl_easy_init();
    struct curl_slist *hs = header ? curl_slist_append(NULL, header) : NULL;
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
    curl_slist_free_all(hs);
    curl_easy_cleanup(c);
    if (r->status != status)
        fail_msg("GET %s: status %ld, want %ld", path, r->status, status);
}

/* The value of response header @p name (lower-case), copied into @p out; "" when absent. */
static const char *header(const struct resp *r, const char *name, char *out, size_t cap)
{
    char key[64];
    snprintf(key, sizeof(key), "\n%s: ", name);
    const char *p = strstr(r->headers, key);
    out[0] = '\0';
    if (p != NULL) {
        p += strlen(key);
        size_t len = strcspn(p, "\r\n");
        snprintf(out, cap, "%.*s", (int)(len < cap ? len : cap - 1), p);
    }
    return out;
}

static void routes(tk_http_server_t *srv)
{
    tk_err_t err = {0};
    assert_int_equal(tk_static_routes(srv, NULL, &err), 0);
}

static int setup(void **state)
{
    (void)state;
    setenv("JWT_KEY", "unit", 1);
    static void (*const registrars[])(tk_http_server_t *) = {routes, NULL};
    tk_test_server_start(registrars);
    return 0;
}

static void pages_are_the_application_shell(void **state)
{
    (void)state;
    static struct resp r;
    char v[1024];
    const char *pages[] = {"/",
                           "/auth/signin",
                           "/auth/signup",
                           "/tickets/new",
                           "/tickets/0b1f6a3e-2c4d-4e5f-8a9b-0c1d2e3f4a5b",
                           "/orders",
                           "/orders/x",
                           "/mytickets",
                           "/index.html"};
    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
        get(pages[i], NULL, 200, &r);
        assert_non_null(strstr(r.body, "<script type=\"module\" src=\"/js/app.js\"></script>"));
        assert_string_equal(header(&r, "content-type", v, sizeof(v)), "text/html; charset=utf-8");
        assert_string_equal(header(&r, "content-security-policy", v, sizeof(v)),
                            tk_static_csp(false));
        assert_string_equal(header(&r, "x-content-type-options", v, sizeof(v)), "nosniff");
        assert_string_equal(header(&r, "cache-control", v, sizeof(v)), "no-cache");
    }
}

static void files_have_types_etags_and_revalidate(void **state)
{
    (void)state;
    static struct resp r;
    char v[256], etag[64], inm[128];
    const char *files[][2] = {{"/js/app.js", "text/javascript; charset=utf-8"},
                              {"/app.css", "text/css; charset=utf-8"},
                              {"/favicon.svg", "image/svg+xml"}};
    for (size_t i = 0; i < 3; i++) {
        get(files[i][0], NULL, 200, &r);
        assert_true(r.len > 0);
        assert_string_equal(header(&r, "content-type", v, sizeof(v)), files[i][1]);
        header(&r, "etag", etag, sizeof(etag));
        assert_int_equal(strlen(etag), 22); /* "\"" + 20 hex + "\"" */
        snprintf(inm, sizeof(inm), "If-None-Match: W/\"0000\", %s", etag);
        get(files[i][0], inm, 304, &r);
        assert_int_equal(r.len, 0);
        assert_string_equal(header(&r, "etag", v, sizeof(v)), etag);
        get(files[i][0], "If-None-Match: \"0000\"", 200, &r);
    }
    get("/config.json", NULL, 200, &r);
    assert_string_equal(r.body, "{\"stripePublishableKey\":null}");
}

static void unknown_and_climbing_paths_are_404(void **state)
{
    (void)state;
    static struct resp r;
    const char *paths[] = {"/nope.js",
                           "/js/nope.js",
                           "/js/../app.css",
                           "/js/..%2fapp.css",
                           "/..%2f..%2fetc%2fpasswd",
                           "/js/%2e%2e/%2e%2e/etc/passwd",
                           "/web/index.html",
                           "/js/app.js/",
                           "/static.c",
                           "/a/b/c"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        get(paths[i], NULL, 404, &r);
        assert_string_equal(r.body, "{\"errors\":[{\"message\":\"Not Found\"}]}");
    }
}

static void helpers(void **state)
{
    (void)state;
    assert_string_equal(tk_static_mime("/x/a.js"), "text/javascript; charset=utf-8");
    assert_string_equal(tk_static_mime("/a.png"), "image/png");
    assert_string_equal(tk_static_mime("/a.tar.gz"), "application/octet-stream");
    assert_string_equal(tk_static_mime("/dir.js/file"), "application/octet-stream");
    assert_string_equal(tk_static_mime("/noext"), "application/octet-stream");

    assert_true(tk_static_etag_matches("\"ab\"", "\"ab\""));
    assert_true(tk_static_etag_matches("W/\"ab\"", "\"ab\""));
    assert_true(tk_static_etag_matches("\"x\", \"ab\"", "\"ab\""));
    assert_true(tk_static_etag_matches("*", "\"ab\""));
    assert_false(tk_static_etag_matches(NULL, "\"ab\""));
    assert_false(tk_static_etag_matches("\"abc\"", "\"ab\""));
    assert_false(tk_static_etag_matches("\"a\"", "\"ab\""));

    /* Same origin only; Stripe's origins only with a key, and never a wildcard script source. */
    const char *self = tk_static_csp(false), *stripe = tk_static_csp(true);
    assert_non_null(strstr(self, "default-src 'none'"));
    assert_non_null(strstr(self, "script-src 'self';"));
    assert_null(strstr(self, "stripe"));
    assert_null(strstr(self, "unsafe"));
    assert_non_null(strstr(stripe, "script-src 'self' https://js.stripe.com;"));
    assert_non_null(strstr(stripe, "frame-src https://js.stripe.com https://hooks.stripe.com"));
    assert_null(strstr(stripe, "unsafe"));

    tk_err_t err = {0};
    assert_int_equal(tk_static_routes(NULL, "sk_test_secret", &err), TK_EINVAL);
    assert_string_equal(err.field, "STRIPE_PUBLISHABLE_KEY");
    assert_int_equal(tk_static_routes(NULL, "pk_test_\"><script>", &err), TK_EINVAL);
}

TK_TEST_MAIN(setup, tk_test_server_teardown, cmocka_unit_test(pages_are_the_application_shell),
             cmocka_unit_test(files_have_types_etags_and_revalidate),
             cmocka_unit_test(unknown_and_climbing_paths_are_404), cmocka_unit_test(helpers))
