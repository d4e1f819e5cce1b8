/*
 * err.h - the error contract shared by every module.
 *
 * Functions return an int: 0 on success or a negative TK_E* code. The detail travels in a
 * caller-owned tk_err_t (code, field, message), filled by tk_err_set, which prints nothing:
 * the boundary (HTTP handler, consumer loop) logs once and maps codes to the REST contract's
 * error JSON in one table (tk_http_status_of).
 */
#ifndef TK_ERR_H
#define TK_ERR_H

#include <stddef.h>

enum {
    TK_OK = 0,
    TK_EINVAL = -1,      /* bad input: 400 */
    TK_ENOTFOUND = -2,   /* unknown aggregate or route: 404 */
    TK_ECONFLICT = -3,   /* optimistic check or unique constraint lost: 400/409 by context */
    TK_EUNAUTH = -4,     /* not signed in or not the owner: 401 */
    TK_EUNAVAIL = -5,    /* a dependency is down: 503 */
    TK_EINTERNAL = -6,   /* a bug or an unexpected failure: 500 */
    TK_ETOOLARGE = -7,   /* body over the limit: 413 */
    TK_EBADGATEWAY = -8, /* an upstream (Stripe) failed after retries: 502 */
    TK_ELIMIT = -9       /* a client's limit reached (throttling, a cap): 429 + Retry-After */
};

typedef struct tk_err {
    int code;          /* one of TK_E*, 0 when no error was set */
    char field[64];    /* the offending input field, "" when none */
    char message[256]; /* human readable, safe to show to clients */
} tk_err_t;

/** @brief Reset @p err to "no error". Accepts NULL. */
void tk_err_clear(tk_err_t *err);

/**
 * @brief Record an error in @p err (may be NULL) and return @p code, so callers can write
 *        `return tk_err_set(err, TK_EINVAL, "price", "Price must be greater than 0");`.
 * @param field borrowed, may be NULL; @param fmt printf-style message.
 */
int tk_err_set(tk_err_t *err, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** @brief The name of a code, e.g. "TK_EINVAL". Static storage. */
const char *tk_err_name(int code);

#endif
