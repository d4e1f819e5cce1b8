/*
 * static.c - serves the storefront compiled into the binary (see tk/static.h for what and why).
 *
 * Lookup is an exact match of the request path against the embedded table (cmake/TkEmbedWeb.cmake),
 * so "..", "%2e%2e" and the like simply name no file. Handlers run inline on the loop thread:
 * the bytes are in memory and a copy is all the work.
 */
#include "tk/static.h"
#include "static_int.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "tk/mem.h"

#define PK_MAX 255

static char publishable_key[PK_MAX + 1]; /* set once before serving, read-only after */

static const char CSP_SELF[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'";

/* Stripe's documented origins for Stripe.js and Elements, nothing more. */
static const char CSP_STRIPE[] =
    "default-src 'none'; script-src 'self' https://js.stripe.com; style-src 'self'; "
    "img-src 'self' data: https://*.stripe.com; connect-src 'self' https://api.stripe.com; "
    "frame-src https://js.stripe.com https://hooks.stripe.com; font-src 'self'; "
    "manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const char *tk_static_csp(bool stripe)
{
    return stripe ? CSP_STRIPE : CSP_SELF;
}

const char *tk_static_mime(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".mjs", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".json", "application/json; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".webmanifest", "application/manifest+json"},
        {".txt", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(path, '.');
    if (dot != NULL && strchr(dot, '/') == NULL)
        for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
            if (strcmp(dot, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

/* If-None-Match is "*" or a comma-separated list of (possibly weak) entity tags. */
bool tk_static_etag_matches(const char *inm, const char *etag)
{
    if (inm == NULL)
        return false;
    size_t elen = strlen(etag);
    for (const char *p = inm; *p;) {
        while (*p == ' ' || *p == ',')
            p++;
        if (*p == '*')
            return true;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        size_t len = strcspn(p, ", ");
        if (len == elen && strncmp(p, etag, elen) == 0)
            return true;
        p += len;
    }
    return false;
}

static const tk_static__file_t *find(const char *path)
{
    for (size_t i = 0; i < tk_static__nfiles; i++)
        if (strcmp(tk_static__files[i].path, path) == 0)
            return &tk_static__files[i];
    return NULL;
}

static void security_headers(tk_http_req_t *req)
{
    tk_http_add_header(req, "content-security-policy", tk_static_csp(publishable_key[0] != '\0'));
    tk_http_add_header(req, "x-content-type-options", "nosniff");
    tk_http_add_header(req, "referrer-policy", "same-origin");
}

static void reply_file(tk_http_req_t *req, const tk_static__file_t *f)
{
    if (f == NULL) {
        tk_err_t err = {0};
        tk_err_set(&err, TK_ENOTFOUND, NULL, "Not Found");
        tk_http_reply_error(req, &err);
        return;
    }
    security_headers(req);
    tk_http_add_header(req, "cache-control", "no-cache");
    tk_http_add_header(req, "etag", f->etag);
    if (tk_static_etag_matches(tk_http_header(req, "if-none-match"), f->etag))
        tk_http_reply_raw(req, 304, NULL, "", 0);
    else
        tk_http_reply_raw(req, 200, tk_static_mime(f->path), (const char *)f->data, f->len);
}

/* A client-side page: the application shell, which routes by location.pathname. */
static void page(tk_http_req_t *req)
{
    reply_file(req, find("/index.html"));
}

static void file(tk_http_req_t *req)
{
    reply_file(req, find(tk_http_path(req)));
}

static void config(tk_http_req_t *req)
{
    security_headers(req);
    tk_http_add_header(req, "cache-control", "no-cache");
    tk_http_reply_json(req, 200,
                       json_pack("{s:s?}", "stripePublishableKey",
                                 publishable_key[0] != '\0' ? publishable_key : NULL));
}

static bool key_valid(const char *k)
{
    if (strncmp(k, "pk_test_", 8) != 0 && strncmp(k, "pk_live_", 8) != 0)
        return false;
    if (strlen(k) > PK_MAX || k[8] == '\0')
        return false;
    for (const char *p = k; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return false;
    return true;
}

int tk_static_routes(tk_http_server_t *srv, const char *stripe_publishable_key, tk_err_t *err)
{
    const char *k = stripe_publishable_key != NULL ? stripe_publishable_key : "";
    if (*k != '\0' && !key_valid(k))
        return tk_err_set(err, TK_EINVAL, "STRIPE_PUBLISHABLE_KEY",
                          "STRIPE_PUBLISHABLE_KEY must be a Stripe publishable key (pk_test_... "
                          "or pk_live_...)");
    snprintf(publishable_key, sizeof(publishable_key), "%s", k);
    /* The client's pages (web/js/app.js's routes), then its files by path. */
    static const char *const pages[] = {
        "/",       "/auth/signin", "/auth/signup", "/tickets/new", "/tickets/:id",
        "/orders", "/orders/:id",  "/mytickets"};
    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
        tk_http_route(srv, "GET", pages[i], page, TK_ROUTE_INLINE);
    tk_http_route(srv, "GET", "/config.json", config, TK_ROUTE_INLINE);
    tk_http_route(srv, "GET", "/:file", file, TK_ROUTE_INLINE);
    tk_http_route(srv, "GET", "/js/:file", file, TK_ROUTE_INLINE);
    return 0;
}
