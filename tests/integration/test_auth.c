/*
 * test_auth.c - the auth context over real HTTP, PostgreSQL and Kafka: every auth case of
 * ORIGINAL-TESTS.md (A1-A12) plus concurrent sign-ups, forged sessions, the user:registered
 * event on the broker, and passwords never leaking into logs or responses. Issue 11: sign-in
 * throttling per account and per client address (429 + Retry-After, exact under concurrency,
 * bounded state), scrypt hashes upgraded on sign-in, sessions revoked by sign-out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "password.h"
#include "tk/cfg.h"
#include "tk/ids.h"
#include "tk/pg.h"
#include "tk/kafka.h"
#include "tk/migrate.h"
#include "tk/relay.h"
#include "tk/session.h"
#include "tk_test.h"

#define SECRET "s3cret-Pw"
#define ACCOUNT_LIMIT 3
#define ADDRESS_LIMIT 5

static tk_relay_t *relay;
static pthread_t relay_thread;
static volatile int relay_stop;
static char log_path[] = "/tmp/tk_test_auth_log_XXXXXX";

static void *run_relay(void *arg)
{
    (void)arg;
    tk_relay_run(relay, &relay_stop);
    return NULL;
}

static int setup(void **state)
{
    (void)state;
    /* Small limits so the throttling cases run in seconds; the address limit is raised here and
     * lowered only by the case that tests it (every other case signs in from 127.0.0.1). Loopback
     * is a trusted proxy, so X-Forwarded-For gives each case its own client addresses. */
    setenv("SIGNIN_ACCOUNT_LIMIT", "3", 1);
    setenv("SIGNIN_ADDRESS_LIMIT", "1000", 1);
    setenv("SIGNIN_THROTTLE_SLOTS", "4096", 1);
    setenv("TRUSTED_PROXIES", "127.0.0.1, ::1", 1);
    tk_test_require_stack();
    /* Capture our own log lines to prove no password is ever written. */
    int fd = mkstemp(log_path);
    if (fd < 0 || freopen(log_path, "w", stderr) == NULL)
        return -1;
    tk_err_t err = {0};
    if (tk_migrate_all(&err) != 0 || tk_kafka_topics_create(&err) != 0) {
        fprintf(stdout, "setup: %s\n", err.message);
        return -1;
    }
    relay = tk_relay_new("auth", &err);
    if (relay == NULL)
        return -1;
    pthread_create(&relay_thread, NULL, run_relay, NULL);
    static const tk_context_t *const contexts[] = {&tk_auth_context, NULL};
    tk_test_server_start_contexts(contexts);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    tk_test_server_stop();
    relay_stop = 1;
    pthread_join(relay_thread, NULL);
    tk_relay_free(relay);
    unlink(log_path);
    return 0;
}

static void unique_email(char *out, size_t cap)
{
    char id[TK_UUID_LEN + 1];
    tk_uuid_new(id);
    snprintf(out, cap, "u%.12s@test.com", id);
}

static long signup(const char *email, const char *password, tk_test_resp_t *out)
{
    char body[512];
    snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"%s\"}", email, password);
    tk_test_http("POST", "/api/users/signup", body, NULL, out);
    return out->status;
}

/* A sign-up must answer @p status and, when @p message is not NULL, that first error message. */
static bool signup_is(const char *email, const char *password, long status, const char *message)
{
    char body[512];
    snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"%s\"}", email, password);
    return tk_test_http_is("POST", "/api/users/signup", body, NULL, status, message);
}

/* A fresh account with the password "password": its e-mail into out. */
static void signed_up(char *email, size_t cap)
{
    unique_email(email, cap);
    assert_true(signup_is(email, "password", 201, NULL));
}

/* A new account (password "password", e-mail into @p email): its session cookie (owned), from a
 * SameSite=Lax Set-Cookie. */
static char *new_session(char *email, size_t cap)
{
    unique_email(email, cap);
    tk_test_resp_t r;
    assert_int_equal(signup(email, "password", &r), 201);
    assert_non_null(strstr(r.set_cookie, "samesite=lax"));
    char *cookie = tk_test_cookie_of(&r);
    tk_test_resp_release(&r);
    return cookie;
}

/* A1, A6, and the user:registered event on the broker. */
static void signup_returns_201_with_cookie_and_event(void **state)
{
    (void)state;
    tk_test_watch_t *w = tk_test_watch_new("users");
    char email[64];
    unique_email(email, sizeof(email));
    tk_test_resp_t r;
    assert_int_equal(signup(email, SECRET, &r), 201);
    const char *id = json_string_value(json_object_get(r.json, "id"));
    assert_true(tk_uuid_valid(id));
    assert_string_equal(json_string_value(json_object_get(r.json, "email")), email);
    assert_null(json_object_get(r.json, "password"));
    assert_null(strstr(r.body, SECRET));
    assert_non_null(r.set_cookie);
    assert_non_null(strstr(r.set_cookie, "; path=/; httponly"));

    /* A6: the cookie decodes to {"jwt":...}. */
    char *cookie = tk_test_cookie_of(&r);
    unsigned char raw[2048];
    int n = EVP_DecodeBlock(raw, (unsigned char *)cookie + 8, (int)strlen(cookie + 8));
    assert_true(n > 0);
    json_t *doc = json_loads((char *)raw, JSON_DISABLE_EOF_CHECK, NULL);
    assert_true(json_is_string(json_object_get(doc, "jwt")));
    json_decref(doc);
    free(cookie);

    json_t *env = tk_test_watch_expect(w, "user:registered", id, 15000);
    assert_non_null(env);
    json_t *data = json_object_get(env, "data");
    assert_string_equal(json_string_value(json_object_get(data, "id")), id);
    assert_string_equal(json_string_value(json_object_get(data, "email")), email);
    char *text = json_dumps(env, 0);
    assert_null(strstr(text, SECRET));
    free(text);
    json_decref(env);
    tk_test_resp_release(&r);
    tk_test_watch_free(w);
}

/* A2, A3, A4. */
static void signup_validation(void **state)
{
    (void)state;
    tk_test_resp_t r;
    assert_true(signup_is("alskdflaskjfd", "password", 400, "Email must be valid"));

    char email[64];
    unique_email(email, sizeof(email));
    assert_int_equal(signup(email, "p", &r), 400);
    assert_string_equal(tk_test_first_message(&r), "Password must be between 4 and 20 characters");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(r.json, "errors"), 0), "field")),
                        "password");
    tk_test_resp_release(&r);
    assert_true(signup_is(email, "   abc   ", 400, NULL)); /* trimmed to 3 */
    assert_true(signup_is(email, "123456789012345678901", 400, NULL));

    assert_true(tk_test_http_is("POST", "/api/users/signup", "{\"email\":\"test@test.com\"}", NULL,
                                400, NULL));
    assert_true(tk_test_http_is("POST", "/api/users/signup", "{\"password\":\"alskjdf\"}", NULL,
                                400, NULL));
    tk_test_http("POST", "/api/users/signup", "{\"email\":5,\"password\":[1]}", NULL, &r);
    assert_int_equal(r.status, 400);
    assert_int_equal(json_array_size(json_object_get(r.json, "errors")), 2);
    tk_test_resp_release(&r);
    assert_true(tk_test_http_is("POST", "/api/users/signup", "{\"email\":", NULL, 400, NULL));
    assert_true(tk_test_http_is("POST", "/api/users/signup", "[1,2]", NULL, 400, NULL));
}

/* A5, case-insensitively. */
static void duplicate_email_is_refused(void **state)
{
    (void)state;
    char email[64];
    signed_up(email, sizeof(email));
    assert_true(signup_is(email, "password", 400, "Email in use"));
    for (char *p = email; *p; p++)
        *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    assert_true(signup_is(email, "password", 400, NULL));
}

struct race {
    const char *email;
    long status;
};

static void *race_signup(void *arg)
{
    struct race *r = arg;
    tk_test_resp_t resp;
    r->status = signup(r->email, "password", &resp);
    tk_test_resp_release(&resp);
    return NULL;
}

/* FIX: 20 concurrent sign-ups with one email give exactly one 201. */
static void concurrent_signups_one_winner(void **state)
{
    (void)state;
    char email[64];
    unique_email(email, sizeof(email));
    enum { N = 20 };
    struct race races[N];
    for (int i = 0; i < N; i++)
        races[i] = (struct race){email, 0};
    tk_test_run_threads(race_signup, races, sizeof(races[0]), N);
    int created = 0, refused = 0;
    for (int i = 0; i < N; i++) {
        created += races[i].status == 201;
        refused += races[i].status == 400;
    }
    assert_int_equal(created, 1);
    assert_int_equal(refused, N - 1);
}

/* A7, A8, A9. */
static void signin_cases(void **state)
{
    (void)state;
    char email[64], body[256];
    unique_email(email, sizeof(email));
    tk_test_resp_t r;
    snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"password\"}", email);
    assert_true(
        tk_test_http_is("POST", "/api/users/signin", body, NULL, 400, "Invalid credentials"));

    assert_true(signup_is(email, "password", 201, NULL));
    snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"aslkdfjalskdfj\"}", email);
    tk_test_http("POST", "/api/users/signin", body, NULL, &r);
    assert_int_equal(r.status, 400);
    assert_null(r.set_cookie);
    tk_test_resp_release(&r);

    snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"  password \"}", email);
    tk_test_http("POST", "/api/users/signin", body, NULL, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(r.set_cookie);
    assert_string_equal(json_string_value(json_object_get(r.json, "email")), email);
    tk_test_resp_release(&r);

    assert_true(tk_test_http_is("POST", "/api/users/signin", "{\"email\":\"a@b.com\"}", NULL, 400,
                                "You must supply a password"));
}

/* A10: the exact clearing string. */
/* POST /api/users/signout with @p cookie (NULL: none): 200, and the session cookie cleared. */
static void signout(const char *cookie)
{
    tk_test_resp_t r;
    tk_test_http("POST", "/api/users/signout", "{}", cookie, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.set_cookie,
                        "session=; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT; httponly");
    tk_test_resp_release(&r);
}

static void signout_clears_cookie(void **state)
{
    (void)state;
    char email[64];
    signed_up(email, sizeof(email));
    signout(NULL);
}

/* GET /api/users/currentuser with @p cookie (NULL: none), which answers 200 signed in or not:
 * @return its currentUser (JSON null when anonymous; NULL when missing), owned. */
static json_t *current_user(const char *cookie)
{
    tk_test_resp_t r;
    tk_test_http("GET", "/api/users/currentuser", NULL, cookie, &r);
    assert_int_equal(r.status, 200);
    json_t *cu = json_incref(json_object_get(r.json, "currentUser"));
    tk_test_resp_release(&r);
    return cu;
}

/* A11, A12, and forged/expired sessions are anonymous over HTTP too. */
static void currentuser_cases(void **state)
{
    (void)state;
    char email[64];
    char *cookie = new_session(email, sizeof(email));
    json_t *cu = current_user(cookie);
    assert_string_equal(json_string_value(json_object_get(cu, "email")), email);
    assert_true(json_is_integer(json_object_get(cu, "iat")));
    json_decref(cu);

    cu = current_user(NULL);
    assert_true(json_is_null(cu));
    json_decref(cu);

    cookie[strlen(cookie) - 3] ^= 1; /* corrupt the signature inside the base64 */
    cu = current_user(cookie);
    assert_true(json_is_null(cu));
    json_decref(cu);
    free(cookie);
}

static PGconn *auth_db(void)
{
    tk_err_t err = {0};
    PGconn *c = tk_pg_connect("auth", &err);
    assert_non_null(c);
    return c;
}

static void signin_as(const char *email, const char *password, const char *client,
                      tk_test_resp_t *r)
{
    char body[256], header[96];
    snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"%s\"}", email, password);
    if (client != NULL)
        snprintf(header, sizeof(header), "X-Forwarded-For: %s", client);
    tk_test_http_ex("POST", "/api/users/signin", body, NULL, client ? header : NULL, r);
}

/* A random documentation-range address, so reruns never share a counter. */
static void random_client(char out[32])
{
    unsigned char b[3];
    char id[TK_UUID_LEN + 1];
    tk_uuid_new(id);
    for (int i = 0; i < 3; i++)
        b[i] = (unsigned char)strtol((char[]){id[2 * i], id[2 * i + 1], 0}, NULL, 16);
    snprintf(out, 32, "10.%u.%u.%u", b[0], b[1], b[2]);
}

static void assert_throttled(const tk_test_resp_t *r, int window)
{
    assert_int_equal(r->status, 429);
    assert_true(r->retry_after >= 1 && r->retry_after <= window);
    assert_non_null(strstr(tk_test_first_message(r), "Too many failed sign-ins"));
    assert_null(r->set_cookie);
}

/* Issue 11 item 3: after SIGNIN_ACCOUNT_LIMIT failures an account refuses sign-ins for the rest
 * of its window, from any address and even with the right password (no scrypt is run). */
static void signin_throttled_per_account(void **state)
{
    (void)state;
    char email[64], client[32];
    unique_email(email, sizeof(email));
    tk_test_resp_t r;
    assert_true(signup_is(email, "password", 201, NULL));
    for (int i = 0; i < ACCOUNT_LIMIT; i++) {
        random_client(client);
        signin_as(email, "wrong-one", client, &r);
        assert_int_equal(r.status, 400);
        tk_test_resp_release(&r);
    }
    random_client(client);
    signin_as(email, "wrong-one", client, &r);
    assert_throttled(&r, 900);
    tk_test_resp_release(&r);
    random_client(client);
    signin_as(email, "password", client, &r);
    assert_throttled(&r, 900);
    tk_test_resp_release(&r);

    /* Successes are not counted: another account signs in more often than the limit. */
    unique_email(email, sizeof(email));
    assert_true(signup_is(email, "password", 201, NULL));
    for (int i = 0; i < ACCOUNT_LIMIT + 2; i++) {
        signin_as(email, "password", NULL, &r);
        assert_int_equal(r.status, 200);
        tk_test_resp_release(&r);
    }
}

/* Issue 11 item 3: an address that failed SIGNIN_ADDRESS_LIMIT times (over any accounts) is
 * refused; another address is not. An untrusted peer's X-Forwarded-For would be ignored. */
static void signin_throttled_per_address(void **state)
{
    (void)state;
    setenv("SIGNIN_ADDRESS_LIMIT", "5", 1);
    assert_int_equal(tk_cfg_load(0, NULL), 0);
    char email[64], client[32], other[32];
    random_client(client);
    random_client(other);
    tk_test_resp_t r;
    for (int i = 0; i < ADDRESS_LIMIT; i++) {
        unique_email(email, sizeof(email));
        signin_as(email, "nobody", client, &r);
        assert_int_equal(r.status, 400);
        tk_test_resp_release(&r);
    }
    unique_email(email, sizeof(email));
    signin_as(email, "nobody", client, &r);
    assert_throttled(&r, 300);
    tk_test_resp_release(&r);
    signin_as(email, "nobody", other, &r);
    assert_int_equal(r.status, 400);
    tk_test_resp_release(&r);
    setenv("SIGNIN_ADDRESS_LIMIT", "1000", 1);
    assert_int_equal(tk_cfg_load(0, NULL), 0);
}

struct signin_race {
    const char *email;
    char client[32];
    long status;
};

static void *race_signin(void *arg)
{
    struct signin_race *a = arg;
    tk_test_resp_t r;
    signin_as(a->email, "wrong-one", a->client, &r);
    a->status = r.status;
    tk_test_resp_release(&r);
    return NULL;
}

/* The check and the count are one statement in the shared database: 12 concurrent failures for
 * one account (as from several `serve auth` processes) let exactly ACCOUNT_LIMIT through. */
static void signin_throttle_exact_under_concurrency(void **state)
{
    (void)state;
    enum { N = 12 };
    char email[64];
    unique_email(email, sizeof(email));
    struct signin_race a[N];
    for (int i = 0; i < N; i++) {
        a[i].email = email;
        random_client(a[i].client);
    }
    tk_test_run_threads(race_signin, a, sizeof(a[0]), N);
    int refused = 0, tried = 0;
    for (int i = 0; i < N; i++) {
        refused += a[i].status == 429;
        tried += a[i].status == 400;
    }
    assert_int_equal(tried, ACCOUNT_LIMIT);
    assert_int_equal(refused, N - ACCOUNT_LIMIT);
}

/* The counters live in a fixed number of slots: however many emails are tried, the table holds
 * at most 2 * SIGNIN_THROTTLE_SLOTS rows (slots for accounts, then for addresses). */
static void signin_throttle_state_is_bounded(void **state)
{
    (void)state;
    PGconn *db = auth_db();
    tk_err_t err = {0};
    PGresult *res = tk_pg_exec(db, "SELECT count(*), coalesce(max(slot), 0) FROM signin_throttle",
                               0, NULL, &err);
    assert_non_null(res);
    assert_true(strtol(PQgetvalue(res, 0, 0), NULL, 10) > 0);
    assert_true(strtol(PQgetvalue(res, 0, 1), NULL, 10) < 2 * 4096);
    PQclear(res);
    /* No email is stored: keys are keyed hashes (16 bytes of HMAC-SHA256). */
    res = tk_pg_exec(db, "SELECT count(*) FROM signin_throttle WHERE length(key) <> 16", 0, NULL,
                     &err);
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), "0");
    PQclear(res);
    PQfinish(db);
}

/* Issue 11 item 3: a hash made with the original's cost (N = 2^14) still signs in, and is
 * replaced by one with today's parameters (N = 2^17) on that sign-in. */
static void old_hash_upgraded_on_signin(void **state)
{
    (void)state;
    char email[64], id[TK_UUID_LEN + 1];
    unique_email(email, sizeof(email));
    tk_uuid_new(id);
    char *env = getenv("SCRYPT_LOG2_N") ? strdup(getenv("SCRYPT_LOG2_N")) : NULL;
    setenv("SCRYPT_LOG2_N", "14", 1);
    assert_int_equal(tk_cfg_load(0, NULL), 0);
    char *old = NULL;
    assert_int_equal(tk_password_hash("password", &old, NULL), 0);
    setenv("SCRYPT_LOG2_N", "17", 1);
    assert_int_equal(tk_cfg_load(0, NULL), 0);
    PGconn *db = auth_db();
    tk_err_t err = {0};
    const char *params[] = {id, email, old};
    assert_int_equal(tk_pg_run(db,
                               "INSERT INTO users (id, email, password_hash) "
                               "VALUES ($1, $2, $3)",
                               3, params, NULL, &err),
                     0);
    tk_test_resp_t r;
    signin_as(email, "password", NULL, &r);
    assert_int_equal(r.status, 200);
    tk_test_resp_release(&r);
    PGresult *res =
        tk_pg_exec(db, "SELECT password_hash FROM users WHERE id = $1", 1, params, &err);
    assert_non_null(res);
    assert_int_equal(strncmp(PQgetvalue(res, 0, 0), "scrypt$131072$8$1$", 18), 0);
    PQclear(res);
    signin_as(email, "password", NULL, &r); /* the new hash verifies */
    assert_int_equal(r.status, 200);
    tk_test_resp_release(&r);
    signin_as(email, "passwore", NULL, &r);
    assert_int_equal(r.status, 400);
    tk_test_resp_release(&r);
    PQfinish(db);
    free(old);
    setenv("SCRYPT_LOG2_N", env ? env : "17", 1); /* back to the suite's cost */
    assert_int_equal(tk_cfg_load(0, NULL), 0);
    free(env);
}

/* Issue 11 item 12: sign-out revokes the session itself, not only the cookie: the same token
 * is anonymous afterwards, by cookie and as a bearer token. */
static void signout_revokes_session(void **state)
{
    (void)state;
    char email[64];
    char *cookie = new_session(email, sizeof(email));
    json_t *cu = current_user(cookie);
    assert_false(json_is_null(cu));
    json_decref(cu);

    signout(cookie);
    cu = current_user(cookie);
    assert_true(json_is_null(cu));
    json_decref(cu);

    /* The session's row: revoked until the token would expire (24 h by default). */
    PGconn *db = auth_db();
    tk_err_t err = {0};
    PGresult *res = tk_pg_exec(db,
                               "SELECT count(*) FROM revoked_sessions WHERE expires_at > "
                               "now() + interval '23 hours' AND user_id = "
                               "(SELECT id FROM users WHERE email = $1)",
                               1, (const char *[]){email}, &err);
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), "1");
    PQclear(res);
    PQfinish(db);
    free(cookie);
}

static void passwords_never_logged(void **state)
{
    (void)state;
    fflush(stderr);
    FILE *f = fopen(log_path, "r");
    assert_non_null(f);
    char line[8192];
    size_t lines = 0;
    while (fgets(line, sizeof(line), f) != NULL) {
        lines++;
        assert_null(strstr(line, SECRET));
        assert_null(strstr(line, "aslkdfjalskdfj"));
    }
    fclose(f);
    assert_true(lines > 0); /* the access log did run */
}

TK_TEST_MAIN(setup, teardown, cmocka_unit_test(signup_returns_201_with_cookie_and_event),
             cmocka_unit_test(signup_validation), cmocka_unit_test(duplicate_email_is_refused),
             cmocka_unit_test(concurrent_signups_one_winner), cmocka_unit_test(signin_cases),
             cmocka_unit_test(signout_clears_cookie), cmocka_unit_test(currentuser_cases),
             cmocka_unit_test(signin_throttled_per_account),
             cmocka_unit_test(signin_throttled_per_address),
             cmocka_unit_test(signin_throttle_exact_under_concurrency),
             cmocka_unit_test(signin_throttle_state_is_bounded),
             cmocka_unit_test(old_hash_upgraded_on_signin),
             cmocka_unit_test(signout_revokes_session), cmocka_unit_test(passwords_never_logged))
