/*
 * session.h - the one authentication step shared by every context (DESIGN.md section 9).
 *
 * A session is a JWT (HS256, key JWT_KEY, claims id, email, iat and optionally exp) carried in
 * the `session` cookie as base64 of {"jwt":"<token>"} or in `Authorization: Bearer <token>`.
 * Anything else - no token, a bad signature, alg none or another algorithm, a claim of the
 * wrong type (including an id that is not a UUID), an expired token - makes the request
 * anonymous; it is never an error.
 */
#ifndef TK_SESSION_H
#define TK_SESSION_H

#include <stdint.h>

#include "tk/err.h"

#define TK_EMAIL_MAX 254

typedef struct tk_session_user {
    char id[37];
    char email[TK_EMAIL_MAX + 1];
    int64_t iat;
} tk_session_user_t;

/**
 * @brief Authenticate from the raw Cookie and Authorization header values (either may be NULL).
 * @return 0 and fills @p out when a valid session is present; TK_EUNAUTH otherwise.
 *         Thread: any. Needs JWT_KEY loaded by tk_cfg_load.
 */
int tk_session_authenticate(const char *cookie_header, const char *authorization,
                            tk_session_user_t *out);

/**
 * @brief Sign a token for @p user (iat = now, exp when JWT_TTL_SECONDS > 0) and build the
 *        Set-Cookie value "session=<base64>; path=/; httponly[; secure; samesite=lax]".
 * @param[out] token owned (free()), may be NULL when not wanted.
 * @param[out] set_cookie owned (free()).
 */
int tk_session_issue(const tk_session_user_t *user, char **token, char **set_cookie, tk_err_t *err);

/** @brief The Set-Cookie value that clears the session (the original's exact string). Static. */
const char *tk_session_clear_cookie(void);

/** @brief Sign @p claims_json (a JSON object text) with JWT_KEY, for tests. Owned, free(). */
char *tk_session_sign_claims(const char *claims_json, tk_err_t *err);

#endif
