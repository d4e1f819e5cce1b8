/*
 * session.c - JWT sessions with libjwt 1.10.
 *
 * Verification always passes the key to jwt_decode and then insists on HS256: Debian's libjwt
 * 1.10 accepts alg "none" when no key is given, and a token signed with another algorithm must
 * not be trusted either. Claims are read from the grants JSON with jansson so a claim of the
 * wrong type (a numeric id, a string iat, an id that is not a UUID) is rejected rather than
 * coerced.
 *
 * Lifetime: a token is accepted until min(exp, iat + JWT_TTL_SECONDS), so tokens issued without
 * exp (before it was the default) also age out. Revocation is a row per signed-out jti in the
 * auth database (schemas/sql/auth/002_sessions.sql), kept until that moment and then deleted;
 * tk_http_user asks it for every token that has a jti.
 *
 * A credential that verified is remembered (256 slots, by its whole text, key and lifetime
 * setting), so a session's later requests skip the decoding and the HMAC; see "verdicts
 * remembered" below.
 */
#include "tk/session.h"
#include "tk/cfg.h"
#include "tk/hash.h"
#include "tk/ids.h"
#include "tk/mem.h"
#include "tk/pg.h"

#include <jansson.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOKEN_MAX 4096

static const char clear_cookie[] =
    "session=; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT; httponly";

const char *tk_session_clear_cookie(void)
{
    return clear_cookie;
}

/* Returns the length of the decoded bytes or -1. @p out must hold 3/4 of @p len + 3. */
static int b64_decode(const char *in, size_t len, unsigned char *out)
{
    if (len == 0 || len % 4 != 0)
        return -1;
    int n = EVP_DecodeBlock(out, (const unsigned char *)in, (int)len);
    if (n < 0)
        return -1;
    if (in[len - 1] == '=')
        n--;
    if (in[len - 2] == '=')
        n--;
    return n;
}

static int verify_token(const char *token, tk_session_user_t *out)
{
    const char *key = tk_cfg()->jwt_key;
    jwt_t *jwt = NULL;
    char *grants = NULL;
    json_t *claims = NULL;
    int rc = TK_EUNAUTH;

    if (key == NULL || token == NULL || strlen(token) > TOKEN_MAX)
        return TK_EUNAUTH;
    if (jwt_decode(&jwt, token, (const unsigned char *)key, (int)strlen(key)) != 0)
        goto out;
    if (jwt_get_alg(jwt) != JWT_ALG_HS256)
        goto out;
    grants = jwt_get_grants_json(jwt, NULL);
    if (grants == NULL)
        goto out;
    claims = json_loads(grants, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(claims))
        goto out;
    json_t *id = json_object_get(claims, "id");
    json_t *email = json_object_get(claims, "email");
    json_t *iat = json_object_get(claims, "iat");
    json_t *exp = json_object_get(claims, "exp");
    json_t *jti = json_object_get(claims, "jti");
    if (!json_is_string(id) || !json_is_string(email) || !json_is_integer(iat))
        goto out;
    if (exp != NULL && !json_is_integer(exp))
        goto out;
    if (jti != NULL && (!json_is_string(jti) || !tk_uuid_valid(json_string_value(jti))))
        goto out;
    int64_t expires = json_integer_value(iat) + tk_cfg()->jwt_ttl_seconds;
    if (exp != NULL && json_integer_value(exp) < expires)
        expires = json_integer_value(exp);
    if (expires * 1000 <= tk_now_ms())
        goto out;
    /* Ids are UUIDs everywhere (DESIGN.md section 9): anything else cannot own a thing. */
    if (!tk_uuid_valid(json_string_value(id)) || json_string_length(email) >= sizeof(out->email))
        goto out;
    memcpy(out->id, json_string_value(id), json_string_length(id) + 1);
    memcpy(out->email, json_string_value(email), json_string_length(email) + 1);
    out->iat = json_integer_value(iat);
    out->expires = expires;
    snprintf(out->jti, sizeof(out->jti), "%s", jti != NULL ? json_string_value(jti) : "");
    rc = 0;
out:
    json_decref(claims);
    free(grants);
    jwt_free(jwt);
    return rc;
}

/* Finds the value of cookie @p name in a Cookie header; returns its length or -1. */
static long cookie_value(const char *header, const char *name, const char **value)
{
    size_t nlen = strlen(name);
    const char *p = header;
    while (p && *p) {
        while (*p == ' ' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            *value = p + nlen + 1;
            return (long)(len - nlen - 1);
        }
        p = end;
    }
    return -1;
}

/* The token inside the session cookie's value @p v (@p len bytes: base64 of {"jwt":"..."}). */
static int token_from_value(const char *v, size_t len, char *token, size_t cap)
{
    if (len == 0 || len > TOKEN_MAX * 2)
        return TK_EUNAUTH;
    unsigned char *raw = tk_mem_alloc(len);
    int rc = TK_EUNAUTH;
    json_t *doc = NULL;
    int n = b64_decode(v, len, raw);
    if (n <= 0)
        goto out;
    doc = json_loadb((const char *)raw, (size_t)n, 0, NULL);
    json_t *jwt = json_object_get(doc, "jwt");
    if (!json_is_string(jwt) || json_string_length(jwt) >= cap)
        goto out;
    memcpy(token, json_string_value(jwt), json_string_length(jwt) + 1);
    rc = 0;
out:
    json_decref(doc);
    free(raw);
    return rc;
}

/* ---- verdicts remembered -------------------------------------------------------------------
 * Verifying a credential is most of an authenticated request's CPU besides its SQL: base64 and
 * JSON three times over and an HMAC whose digest OpenSSL 3 looks up on every call. A session sends
 * the same bytes on every request, so a credential that verified is remembered: by its whole text
 * (a hash only picks the slot), the key and the lifetime setting it was verified under. A hit still
 * checks the expiry; failures are never remembered. Revocation is not decided here (tk_http_user
 * asks the auth database for every token with a jti). */

#define REMEMBERED 256     /* slots, one credential each (direct-mapped) */
#define REMEMBERED_MAX 700 /* longer credentials are verified every time */

typedef struct remembered {
    uint64_t hash, key_hash;
    int ttl;
    char credential[REMEMBERED_MAX + 1];
    tk_session_user_t user;
} remembered_t;

static remembered_t remembered[REMEMBERED];
static pthread_mutex_t remembered_lock = PTHREAD_MUTEX_INITIALIZER;

/* Whether @p cred (len bytes) verified before under the current settings; its user into @p out. */
static bool recall(const char *cred, size_t len, uint64_t h, uint64_t key_hash, int ttl,
                   tk_session_user_t *out)
{
    remembered_t *r = &remembered[h % REMEMBERED];
    pthread_mutex_lock(&remembered_lock);
    bool hit = r->hash == h && r->key_hash == key_hash && r->ttl == ttl &&
               strncmp(r->credential, cred, len) == 0 && r->credential[len] == '\0';
    if (hit)
        *out = r->user;
    pthread_mutex_unlock(&remembered_lock);
    return hit;
}

static void remember(const char *cred, size_t len, uint64_t h, uint64_t key_hash, int ttl,
                     const tk_session_user_t *user)
{
    remembered_t *r = &remembered[h % REMEMBERED];
    pthread_mutex_lock(&remembered_lock);
    r->hash = h;
    r->key_hash = key_hash;
    r->ttl = ttl;
    memcpy(r->credential, cred, len);
    r->credential[len] = '\0';
    r->user = *user;
    pthread_mutex_unlock(&remembered_lock);
}

/* Verify the credential @p cred of @p len bytes (a cookie value when @p is_cookie, else a bearer
 * token) or recall its verdict. */
static int verify_credential(const char *cred, size_t len, bool is_cookie, tk_session_user_t *out)
{
    const char *key = tk_cfg()->jwt_key;
    if (key == NULL)
        return TK_EUNAUTH;
    int ttl = tk_cfg()->jwt_ttl_seconds;
    uint64_t key_hash = tk_hash_bytes(key, strlen(key)) ^ (is_cookie ? 0x2 : 0x4);
    uint64_t h = tk_hash_bytes(cred, len) | 1; /* never 0: 0 marks an empty slot */
    bool rememberable = len <= REMEMBERED_MAX;
    if (rememberable && recall(cred, len, h, key_hash, ttl, out))
        return out->expires * 1000 > tk_now_ms() ? 0 : TK_EUNAUTH;
    int rc = TK_EUNAUTH;
    if (is_cookie) {
        char token[TOKEN_MAX + 1];
        if (token_from_value(cred, len, token, sizeof(token)) == 0)
            rc = verify_token(token, out);
    } else if (len <= TOKEN_MAX) {
        char token[TOKEN_MAX + 1];
        memcpy(token, cred, len);
        token[len] = '\0';
        rc = verify_token(token, out);
    }
    if (rc == 0 && rememberable)
        remember(cred, len, h, key_hash, ttl, out);
    return rc;
}

int tk_session_authenticate(const char *cookie_header, const char *authorization,
                            tk_session_user_t *out)
{
    const char *v = NULL;
    long len = cookie_header != NULL ? cookie_value(cookie_header, "session", &v) : -1;
    if (len > 0 && verify_credential(v, (size_t)len, true, out) == 0)
        return 0;
    if (authorization != NULL && strncmp(authorization, "Bearer ", 7) == 0)
        return verify_credential(authorization + 7, strlen(authorization + 7), false, out);
    return TK_EUNAUTH;
}

static char *sign(json_t *claims, tk_err_t *err)
{
    const char *key = tk_cfg()->jwt_key;
    jwt_t *jwt = NULL;
    char *token = NULL;
    char *text = NULL;
    if (key == NULL) {
        tk_err_set(err, TK_EINTERNAL, NULL, "JWT_KEY is not configured");
        goto out;
    }
    text = json_dumps(claims, JSON_COMPACT);
    if (text == NULL || jwt_new(&jwt) != 0 || jwt_add_grants_json(jwt, text) != 0 ||
        jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)key, (int)strlen(key)) != 0) {
        tk_err_set(err, TK_EINTERNAL, NULL, "could not build the session token");
        goto out;
    }
    token = jwt_encode_str(jwt);
    if (token == NULL)
        tk_err_set(err, TK_EINTERNAL, NULL, "could not sign the session token");
out:
    free(text);
    jwt_free(jwt);
    return token;
}

char *tk_session_sign_claims(const char *claims_json, tk_err_t *err)
{
    json_t *claims = json_loads(claims_json, 0, NULL);
    if (claims == NULL) {
        tk_err_set(err, TK_EINVAL, NULL, "claims are not JSON");
        return NULL;
    }
    char *token = sign(claims, err);
    json_decref(claims);
    return token;
}

int tk_session_issue(const tk_session_user_t *user, char **token_out, char **set_cookie,
                     tk_err_t *err)
{
    int64_t now = tk_now_ms() / 1000;
    char jti[TK_UUID_LEN + 1];
    tk_uuid_new(jti);
    json_t *claims = json_pack("{s:s, s:s, s:I, s:I, s:s}", "id", user->id, "email", user->email,
                               "iat", (json_int_t)now, "exp",
                               (json_int_t)(now + tk_cfg()->jwt_ttl_seconds), "jti", jti);
    char *token = sign(claims, err);
    json_decref(claims);
    if (token == NULL)
        return err ? err->code : TK_EINTERNAL;

    json_t *wrapper = json_pack("{s:s}", "jwt", token);
    char *inner = json_dumps(wrapper, JSON_COMPACT);
    json_decref(wrapper);
    size_t ilen = strlen(inner);
    char *b64 = tk_mem_alloc(4 * ((ilen + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)b64, (const unsigned char *)inner, (int)ilen);
    free(inner);

    /* SameSite=Lax always: a cross-site POST carries no session (CSRF); links still work. */
    const char *attrs = tk_cfg()->cookie_secure ? "; path=/; httponly; samesite=lax; secure"
                                                : "; path=/; httponly; samesite=lax";
    size_t cap = strlen(b64) + strlen(attrs) + 16;
    *set_cookie = tk_mem_alloc(cap);
    snprintf(*set_cookie, cap, "session=%s%s", b64, attrs);
    free(b64);
    if (token_out != NULL)
        *token_out = token;
    else
        free(token);
    return 0;
}

int tk_session_revoke(PGconn *auth, const tk_session_user_t *user, tk_err_t *err)
{
    if (user->jti[0] == '\0')
        return 0;
    char expires[24];
    snprintf(expires, sizeof(expires), "%lld", (long long)user->expires);
    const char *params[] = {user->jti, user->id, expires};
    int rc = tk_pg_run(auth,
                       "INSERT INTO revoked_sessions (jti, user_id, expires_at) "
                       "VALUES ($1, $2, to_timestamp($3::bigint)) ON CONFLICT (jti) DO NOTHING",
                       3, params, NULL, err);
    if (rc != 0)
        return rc;
    /* A bounded clean-up per sign-out keeps the table at about the unexpired revocations. */
    return tk_pg_run(auth,
                     "DELETE FROM revoked_sessions WHERE jti IN (SELECT jti FROM revoked_sessions "
                     "WHERE expires_at < now() ORDER BY expires_at LIMIT 100)",
                     0, NULL, NULL, err);
}

int tk_session_is_revoked(PGconn *auth, const char *jti, tk_err_t *err)
{
    const char *params[] = {jti};
    PGresult *res =
        tk_pg_exec(auth, "SELECT 1 FROM revoked_sessions WHERE jti = $1", 1, params, err);
    if (res == NULL)
        return err->code;
    int revoked = PQntuples(res) > 0;
    PQclear(res);
    return revoked;
}
