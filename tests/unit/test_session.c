/*
 * test_session.c - the shared authentication step: valid sessions authenticate; forged,
 * alg-none, other-algorithm, wrongly typed and expired tokens are anonymous.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tk/cfg.h"
#include "tk/ids.h"
#include "tk/session.h"

static const char *ID = "0b1f6a3e-2c4d-4e5f-8a9b-0c1d2e3f4a5b";

static int setup(void **state)
{
    (void)state;
    setenv("JWT_KEY", "unit-test-key-of-at-least-32-bytes", 1);
    unsetenv("JWT_TTL_SECONDS");
    tk_err_t err = {0};
    return tk_cfg_load(TK_CFG_NEED_JWT, &err);
}

static char *b64url(const char *s)
{
    size_t len = strlen(s);
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)s, (int)len);
    char *w = out;
    for (char *p = out; *p; p++) {
        if (*p == '=')
            continue;
        *w++ = *p == '+' ? '-' : *p == '/' ? '_' : *p;
    }
    *w = '\0';
    return out;
}

static int auth_bearer(const char *token, tk_session_user_t *u)
{
    char header[4096];
    snprintf(header, sizeof(header), "Bearer %s", token);
    return tk_session_authenticate(NULL, header, u);
}

/* A token signed with @p claims (JSON text), presented as a bearer: tk_session_authenticate's
 * result, the user into @p u. */
static int auth_claims(const char *claims, tk_session_user_t *u)
{
    char *token = tk_session_sign_claims(claims, NULL);
    assert_non_null(token);
    int rc = auth_bearer(token, u);
    free(token);
    return rc;
}

/* The claims of a session of ID issued at @p iat and, unless @p exp is 0, expiring at @p exp. */
static void claims_at(long long iat, long long exp, char *out, size_t size)
{
    if (exp == 0)
        snprintf(out, size, "{\"id\":\"%s\",\"email\":\"a@b.co\",\"iat\":%lld}", ID, iat);
    else
        snprintf(out, size, "{\"id\":\"%s\",\"email\":\"a@b.co\",\"iat\":%lld,\"exp\":%lld}", ID,
                 iat, exp);
}

/* auth_claims of claims_at(@p iat, @p exp). */
static int auth_at(long long iat, long long exp, tk_session_user_t *u)
{
    char claims[256];
    claims_at(iat, exp, claims, sizeof(claims));
    return auth_claims(claims, u);
}

static long long now_s(void)
{
    return (long long)(tk_now_ms() / 1000);
}

static void issued_cookie_authenticates(void **state)
{
    (void)state;
    tk_session_user_t in = {0}, out = {0};
    snprintf(in.id, sizeof(in.id), "%s", ID);
    snprintf(in.email, sizeof(in.email), "test@test.com");
    char *token = NULL, *cookie = NULL;
    assert_int_equal(tk_session_issue(&in, &token, &cookie, NULL), 0);
    assert_non_null(strstr(cookie, "; path=/; httponly; samesite=lax")); /* Lax by default */
    assert_int_equal(strncmp(cookie, "session=", 8), 0);

    /* The cookie value is base64 of {"jwt":"<token>"}, as the original's cookie-session. */
    char value[4096];
    snprintf(value, sizeof(value), "%.*s", (int)strcspn(cookie + 8, ";"), cookie + 8);
    unsigned char raw[4096];
    int n = EVP_DecodeBlock(raw, (unsigned char *)value, (int)strlen(value));
    assert_true(n > 0);
    json_t *doc = json_loads((char *)raw, JSON_DISABLE_EOF_CHECK, NULL);
    assert_string_equal(json_string_value(json_object_get(doc, "jwt")), token);
    json_decref(doc);

    char header[4200];
    snprintf(header, sizeof(header), "other=1; session=%s; x=y", value);
    assert_int_equal(tk_session_authenticate(header, NULL, &out), 0);
    assert_string_equal(out.id, ID);
    assert_string_equal(out.email, "test@test.com");
    assert_true(out.iat > 1700000000);
    /* A default lifetime of 24 h and a session id to revoke (issue 11 item 12). */
    assert_int_equal(out.expires, out.iat + 86400);
    assert_true(tk_uuid_valid(out.jti));
    memset(&out, 0, sizeof(out));
    assert_int_equal(auth_bearer(token, &out), 0);
    assert_string_equal(out.email, "test@test.com");
    free(token);
    free(cookie);
}

static void forged_signature_is_anonymous(void **state)
{
    (void)state;
    tk_session_user_t u;
    char claims[256];
    claims_at(now_s(), 0, claims, sizeof(claims));
    char *token = tk_session_sign_claims(claims, NULL);
    assert_non_null(token);
    assert_int_equal(auth_bearer(token, &u), 0);
    token[strlen(token) - 2] = token[strlen(token) - 2] == 'A' ? 'B' : 'A';
    assert_int_equal(auth_bearer(token, &u), TK_EUNAUTH);
    free(token);

    /* Signed with another key. */
    setenv("JWT_KEY", "attacker-key-of-at-least-32-bytes-too", 1);
    tk_cfg_load(0, NULL);
    token = tk_session_sign_claims(claims, NULL);
    setenv("JWT_KEY", "unit-test-key-of-at-least-32-bytes", 1);
    tk_cfg_load(0, NULL);
    assert_int_equal(auth_bearer(token, &u), TK_EUNAUTH);
    free(token);
}

static void alg_none_and_other_algs_are_anonymous(void **state)
{
    (void)state;
    tk_session_user_t u;
    const char *payload =
        "{\"id\":\"0b1f6a3e-2c4d-4e5f-8a9b-0c1d2e3f4a5b\",\"email\":\"a@b.co\",\"iat\":1}";
    const char *headers[] = {"{\"alg\":\"none\",\"typ\":\"JWT\"}",
                             "{\"alg\":\"HS512\",\"typ\":\"JWT\"}",
                             "{\"alg\":\"RS256\",\"typ\":\"JWT\"}"};
    for (size_t i = 0; i < 3; i++) {
        char *h = b64url(headers[i]), *p = b64url(payload);
        char token[1024];
        snprintf(token, sizeof(token), "%s.%s.", h, p);
        assert_int_equal(auth_bearer(token, &u), TK_EUNAUTH);
        snprintf(token, sizeof(token), "%s.%s", h, p);
        assert_int_equal(auth_bearer(token, &u), TK_EUNAUTH);
        free(h);
        free(p);
    }
}

static void wrong_claim_types_are_anonymous(void **state)
{
    (void)state;
    tk_session_user_t u;
    const char *bad[] = {
        "{\"id\":5,\"email\":\"a@b.co\",\"iat\":1}",
        "{\"id\":\"5f4dcc3b5aa765d61d8327de\",\"email\":\"a@b.co\",\"iat\":1}", /* ObjectId */
        "{\"id\":\"0b1f6a3e-2c4d-4e5f-8a9b-0c1d2e3f4a5b\",\"email\":[\"a@b.co\"],\"iat\":1}",
        "{\"id\":\"0b1f6a3e-2c4d-4e5f-8a9b-0c1d2e3f4a5b\",\"email\":\"a@b.co\",\"iat\":\"1\"}",
        "{\"id\":\"0b1f6a3e-2c4d-4e5f-8a9b-0c1d2e3f4a5b\",\"email\":\"a@b.co\"}",
        "{\"email\":\"a@b.co\",\"iat\":1}",
        "{\"id\":\"0b1f6a3e-2c4d-4e5f-8a9b-0c1d2e3f4a5b\",\"email\":\"a@b.co\",\"iat\":1,\"exp\":"
        "\"never\"}",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(auth_claims(bad[i], &u), TK_EUNAUTH);
    }
}

static void expired_is_anonymous(void **state)
{
    (void)state;
    tk_session_user_t u;
    long long now = now_s();
    assert_int_equal(auth_at(now - 100, now - 1, &u), TK_EUNAUTH);
    assert_int_equal(auth_at(now, now + 100, &u), 0);
}

/* A token without exp (as the original issued them) still ages out: JWT_TTL_SECONDS after iat. */
static void old_tokens_age_out(void **state)
{
    (void)state;
    tk_session_user_t u;
    long long now = now_s();
    assert_int_equal(auth_at(now - 86401, 0, &u), TK_EUNAUTH);
    assert_int_equal(auth_at(now - 86000, 0, &u), 0);
    assert_string_equal(u.jti, ""); /* no jti: nothing to revoke */
    /* A jti that is not a UUID is a forged claim. */
    char claims[256];
    snprintf(claims, sizeof(claims),
             "{\"id\":\"%s\",\"email\":\"a@b.co\",\"iat\":%lld,\"jti\":\"x\"}", ID, now);
    assert_int_equal(auth_claims(claims, &u), TK_EUNAUTH);
}

/* Outside development (TK_DEV unset) a JWT_KEY under 32 bytes stops start-up. */
static void short_key_refused_outside_dev(void **state)
{
    (void)state;
    tk_err_t err = {0};
    setenv("TK_DEV", "0", 1);
    setenv("JWT_KEY", "short-key", 1);
    assert_int_equal(tk_cfg_load(TK_CFG_NEED_JWT, &err), TK_EINVAL);
    assert_non_null(strstr(err.message, "at least 32 bytes"));
    setenv("TK_DEV", "1", 1);
    assert_int_equal(tk_cfg_load(TK_CFG_NEED_JWT, NULL), 0);
    setenv("TK_DEV", "0", 1);
    setenv("JWT_KEY", "unit-test-key-of-at-least-32-bytes", 1);
    assert_int_equal(tk_cfg_load(TK_CFG_NEED_JWT, NULL), 0);
    unsetenv("TK_DEV");
}

static void garbage_cookies_are_anonymous(void **state)
{
    (void)state;
    tk_session_user_t u;
    const char *cookies[] = {"",
                             "session=",
                             "session=%%%",
                             "session=bm90IGpzb24=",      /* "not json" */
                             "session=eyJqd3QiOjF9",      /* {"jwt":1} */
                             "session=eyJqd3QiOiJ4In0=",  /* {"jwt":"x"} */
                             "sessionx=eyJqd3QiOiJ4In0=", /* another cookie's name */
                             "a=b;;;; ;"};
    for (size_t i = 0; i < sizeof(cookies) / sizeof(cookies[0]); i++)
        assert_int_equal(tk_session_authenticate(cookies[i], NULL, &u), TK_EUNAUTH);
    assert_int_equal(tk_session_authenticate(NULL, "Basic abc", &u), TK_EUNAUTH);
    assert_int_equal(tk_session_authenticate(NULL, "Bearer ", &u), TK_EUNAUTH);
    assert_int_equal(tk_session_authenticate(NULL, NULL, &u), TK_EUNAUTH);
}

/* A credential that verified is remembered (session.c), but its verdict keeps the rules: it still
 * expires, and it no longer holds under another key or a shorter lifetime setting. */
static void a_remembered_session_keeps_the_rules(void **state)
{
    (void)state;
    tk_session_user_t u;
    long long now = now_s();
    char claims[256];
    claims_at(now - 7000, now + 1, claims, sizeof(claims));
    char *token = tk_session_sign_claims(claims, NULL);
    assert_non_null(token);
    for (int i = 0; i < 3; i++) /* the second and third are remembered */
        assert_int_equal(auth_bearer(token, &u), 0);

    /* Another key: not valid, remembered or not; the same key again: valid. */
    setenv("JWT_KEY", "another-key-of-at-least-32-bytes-long", 1);
    tk_cfg_load(0, NULL);
    assert_int_equal(auth_bearer(token, &u), TK_EUNAUTH);
    setenv("JWT_KEY", "unit-test-key-of-at-least-32-bytes", 1);
    tk_cfg_load(0, NULL);
    assert_int_equal(auth_bearer(token, &u), 0);

    /* A shorter lifetime setting: iat + 3600 is past. */
    setenv("JWT_TTL_SECONDS", "3600", 1);
    tk_cfg_load(0, NULL);
    assert_int_equal(auth_bearer(token, &u), TK_EUNAUTH);
    unsetenv("JWT_TTL_SECONDS");
    tk_cfg_load(0, NULL);
    assert_int_equal(auth_bearer(token, &u), 0);

    /* Its exp passes: refused although remembered. */
    while (tk_now_ms() / 1000 <= now + 1) {
        struct timespec ts = {0, 100 * 1000000L};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(auth_bearer(token, &u), TK_EUNAUTH);
    free(token);
}

static void clear_cookie_is_the_originals(void **state)
{
    (void)state;
    assert_string_equal(tk_session_clear_cookie(),
                        "session=; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT; httponly");
}

TK_TEST_MAIN(setup, NULL, cmocka_unit_test(issued_cookie_authenticates),
             cmocka_unit_test(forged_signature_is_anonymous),
             cmocka_unit_test(alg_none_and_other_algs_are_anonymous),
             cmocka_unit_test(wrong_claim_types_are_anonymous),
             cmocka_unit_test(expired_is_anonymous), cmocka_unit_test(old_tokens_age_out),
             cmocka_unit_test(short_key_refused_outside_dev),
             cmocka_unit_test(garbage_cookies_are_anonymous),
             cmocka_unit_test(a_remembered_session_keeps_the_rules),
             cmocka_unit_test(clear_cookie_is_the_originals))
