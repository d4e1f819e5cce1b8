/*
 * session.h - the one authentication step shared by every context (DESIGN.md section 9).
 *
 * A session is a JWT (HS256, key JWT_KEY, claims id, email, iat, exp and jti) carried in the
 * `session` cookie as base64 of {"jwt":"<token>"} or in `Authorization: Bearer <token>`.
 * Anything else - no token, a bad signature, alg none or another algorithm, a claim of the
 * wrong type (including an id that is not a UUID), an expired token (exp passed, or iat older
 * than JWT_TTL_SECONDS, so even a token without exp ages out) - makes the request anonymous; it
 * is never an error.
 *
 * Revocation (sign-out): the token's jti goes into the auth database's revoked_sessions until
 * the token would expire anyway; every context checks it there (tk_http_user, on a worker), so
 * a signed-out token is refused everywhere at once. The table stays bounded: rows are deleted
 * once their token has expired.
 */
#ifndef TK_SESSION_H
#define TK_SESSION_H

#include <libpq-fe.h>
#include <stdint.h>

#include "tk/err.h"

#define TK_EMAIL_MAX 254

typedef struct tk_session_user {
    char id[37];
    char email[TK_EMAIL_MAX + 1];
    int64_t iat;
    int64_t expires; /* when the token stops being accepted (unix seconds): min(exp, iat+TTL) */
    char jti[37];    /* the session id, "" for a token without one (it cannot be revoked) */
} tk_session_user_t;

/**
 * @brief Authenticate from the raw Cookie and Authorization header values (either may be NULL).
 * @return 0 and fills @p out when a valid session is present; TK_EUNAUTH otherwise.
 *         Thread: any. Needs JWT_KEY loaded by tk_cfg_load.
 */
int tk_session_authenticate(const char *cookie_header, const char *authorization,
                            tk_session_user_t *out);

/**
 * @brief Sign a token for @p user (iat = now, exp = now + JWT_TTL_SECONDS, a fresh jti) and build
 *        the Set-Cookie value "session=<base64>; path=/; httponly; samesite=lax[; secure]".
 * @param[out] token owned (free()), may be NULL when not wanted.
 * @param[out] set_cookie owned (free()).
 */
int tk_session_issue(const tk_session_user_t *user, char **token, char **set_cookie, tk_err_t *err);

/**
 * @brief Revoke the session of @p user (its jti) in the auth database @p auth, until it expires;
 *        also deletes a few revocations whose tokens have expired. A token without jti: no-op.
 * @return 0, or a tk_pg error. Thread: any (the connection's).
 */
int tk_session_revoke(PGconn *auth, const tk_session_user_t *user, tk_err_t *err);

/** @brief 1 when session @p jti was revoked, 0 when not, or a negative tk_pg error. */
int tk_session_is_revoked(PGconn *auth, const char *jti, tk_err_t *err);

/** @brief The Set-Cookie value that clears the session (the original's exact string). Static. */
const char *tk_session_clear_cookie(void);

/** @brief Sign @p claims_json (a JSON object text) with JWT_KEY, for tests. Owned, free(). */
char *tk_session_sign_claims(const char *claims_json, tk_err_t *err);

#endif
