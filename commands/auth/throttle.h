/*
 * throttle.h - sign-in throttling (DESIGN.md section 5, issue 11 item 3): failed sign-ins are
 * counted per account (the email) and per client address, in the auth database so that the
 * limits hold across every `serve auth` process, in a table of fixed size (signin_throttle).
 *
 *   take   --before scrypt-->  both counters + 1; over a limit: TK_ELIMIT (429), no scrypt
 *   refund --after a success--> both counters - 1 (only failures and refused attempts count)
 *
 * Counting before hashing keeps the limit exact under concurrency (N parallel attempts see N
 * distinct counts) and spares the scrypt of a refused attempt.
 */
#ifndef TK_AUTH_THROTTLE_H
#define TK_AUTH_THROTTLE_H

#include <libpq-fe.h>

#include "tk/err.h"

typedef struct tk_signin_throttle {
    char account_slot[16];
    char address_slot[16];
    int retry_after; /* seconds, set with TK_ELIMIT */
} tk_signin_throttle_t;

/**
 * @brief Count one sign-in attempt of @p email from @p address against SIGNIN_ACCOUNT_LIMIT per
 *        SIGNIN_ACCOUNT_WINDOW_SECONDS and SIGNIN_ADDRESS_LIMIT per
 *        SIGNIN_ADDRESS_WINDOW_SECONDS. All parameters borrowed.
 * @return 0 (go on; refund on success), TK_ELIMIT with @p t->retry_after and a message, or a
 *         tk_pg error (TK_EUNAVAIL).
 */
int tk_signin_throttle_take(PGconn *db, const char *email, const char *address,
                            tk_signin_throttle_t *t, tk_err_t *err);

/** @brief Give back what tk_signin_throttle_take counted (the attempt succeeded). */
int tk_signin_throttle_refund(PGconn *db, const tk_signin_throttle_t *t, tk_err_t *err);

#endif
