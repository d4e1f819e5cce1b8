/*
 * static.h - the storefront (web/): files compiled into the binary at build time
 * (cmake/TkEmbedWeb.cmake) and served at / by `ticketing run` and `ticketing serve`.
 *
 * Every client-side page (/, /tickets/:id, /orders/:id, ...) answers with index.html, so a
 * reload or a shared link works; the modules, styles and images answer by their path; anything
 * else is 404 in the contract's error format. There is no file system behind it, so no path can
 * reach a file outside web/. Responses carry their content type, an ETag (the start of the
 * file's SHA-256) with `Cache-Control: no-cache` (the browser revalidates and gets 304 while the
 * file is unchanged, so a new binary's files are picked up at once without hashed names, which
 * would need a build step for ES module imports), a strict Content-Security-Policy (same origin
 * only; Stripe's origins only when a publishable key is configured), nosniff and a same-origin
 * referrer policy. GET /config.json tells the client the Stripe publishable key, or null for
 * the test-mode card picker.
 */
#ifndef TK_STATIC_H
#define TK_STATIC_H

#include <stdbool.h>

#include "tk/err.h"
#include "tk/http.h"

/**
 * @brief Register the storefront's routes on @p srv (inline: nothing blocks). Call after the
 *        API routes. @p stripe_publishable_key (STRIPE_PUBLISHABLE_KEY; NULL or "" for test
 *        mode) is copied, process-wide: every server of the process serves the same key.
 * @return 0, or TK_EINVAL naming STRIPE_PUBLISHABLE_KEY when it is not a pk_test_/pk_live_ key.
 */
int tk_static_routes(tk_http_server_t *srv, const char *stripe_publishable_key, tk_err_t *err);

/** @brief The Content-Type for a file @p path by its extension. Static string. */
const char *tk_static_mime(const char *path);

/** @brief The Content-Security-Policy: same origin only, plus Stripe.js's origins when
 *         @p stripe is true. Static string. */
const char *tk_static_csp(bool stripe);

/** @brief Whether the If-None-Match header value @p inm (may be NULL) matches @p etag. */
bool tk_static_etag_matches(const char *inm, const char *etag);

#endif
