/*
 * auth_routes.c - the auth context's REST routes.
 *
 * Sign-up is a command: validate, hash (outside the transaction: scrypt is slow), then one
 * tk_command_run transaction inserts the user and the user:registered outbox row. Email
 * uniqueness is the database's job (a unique index on lower(email)): two concurrent sign-ups
 * with one email give exactly one 201 and one 400 'Email in use'.
 * Sign-in reads the write model (users) directly; a command response may (DESIGN.md section 6).
 * It is throttled (throttle.h) before any scrypt runs, and a hash made with older scrypt
 * parameters is replaced by one with today's on a successful sign-in (compare-and-set on the
 * old hash, so a concurrent password change is never overwritten).
 * Sign-out revokes the session's jti in the auth database (tk_session_revoke), and current-user
 * checks revocation like every context, so both run on a worker.
 */
#include "auth.h"
#include "ev_user.h"
#include "password.h"
#include "throttle.h"
#include "tk/cfg.h"
#include "tk/client_addr.h"
#include "tk/command.h"
#include "tk/consistency.h"
#include "tk/log.h"
#include "tk/pg.h"
#include "tk/session.h"
#include "tk/tx.h"

#include <stdlib.h>
#include <string.h>

#define PASSWORD_MAX_BYTES 256

struct credentials {
    const char *email;
    char password[PASSWORD_MAX_BYTES];
};

/* Validates the body; on failure replies 400 with every problem and returns false. */
static bool credentials_or_respond(tk_http_req_t *req, bool signup, struct credentials *c)
{
    json_t *body = tk_http_body_or_respond(req);
    if (body == NULL)
        return false;
    json_t *errors = json_array();
    json_t *email = json_object_get(body, "email");
    json_t *password = json_object_get(body, "password");
    c->email = json_is_string(email) ? json_string_value(email) : NULL;
    if (c->email == NULL || !tk_auth_email_valid(c->email))
        tk_http_errors_add(errors, "email", "Email must be valid");
    long chars = json_is_string(password) ? tk_auth_password_trim(json_string_value(password),
                                                                  c->password, sizeof(c->password))
                                          : -1;
    if (signup && (chars < 4 || chars > 20))
        tk_http_errors_add(errors, "password", "Password must be between 4 and 20 characters");
    else if (!signup && chars <= 0)
        tk_http_errors_add(errors, "password", "You must supply a password");
    if (json_array_size(errors) > 0) {
        tk_http_reply_errors(req, 400, errors);
        return false;
    }
    json_decref(errors);
    return true;
}

/* Issues the session cookie and replies @p status {id, email}. */
static void reply_signed_in(tk_http_req_t *req, int status, const char *id, const char *email)
{
    tk_session_user_t user = {0};
    tk_err_t err = {0};
    snprintf(user.id, sizeof(user.id), "%s", id);
    snprintf(user.email, sizeof(user.email), "%s", email);
    char *cookie = NULL;
    if (tk_session_issue(&user, NULL, &cookie, &err) != 0) {
        tk_http_reply_error(req, &err);
        return;
    }
    tk_http_set_cookie(req, cookie);
    free(cookie);
    /* GET /api/users/currentuser reads only this session cookie: it covers the token at once. */
    tk_consistency_note(req, TK_CONSISTENCY_USER, id, 0);
    tk_http_reply_json(req, status, json_pack("{s:s, s:s}", "id", id, "email", email));
}

struct signup_cmd {
    char id[TK_UUID_LEN + 1];
    const char *email;
    const char *hash;
};

static int signup_decide(tk_tx_t *tx, void *arg, tk_err_t *err)
{
    struct signup_cmd *cmd = arg;
    const char *params[] = {cmd->id, cmd->email, cmd->hash};
    PGresult *res =
        tk_pg_exec_prepared(tk_tx_conn(tx),
                            "INSERT INTO users (id, email, password_hash) VALUES ($1, $2, $3) "
                            "ON CONFLICT DO NOTHING",
                            3, params, err);
    if (res == NULL)
        return err->code;
    int inserted = atoi(PQcmdTuples(res));
    PQclear(res);
    if (inserted == 0)
        return tk_err_set(err, TK_EINVAL, "email", "Email in use");
    ev_user_registered_t ev = {0};
    snprintf(ev.id, sizeof(ev.id), "%s", cmd->id);
    snprintf(ev.email, sizeof(ev.email), "%s", cmd->email);
    return tk_tx_emit(tx, "user:registered", cmd->id, 0, ev_user_registered_to_json(&ev), err);
}

static void signup(tk_http_req_t *req)
{
    struct credentials c;
    if (!credentials_or_respond(req, true, &c))
        return;
    tk_err_t err = {0};
    struct signup_cmd cmd = {.email = c.email};
    char *hash = NULL;
    tk_uuid_new(cmd.id);
    if (tk_password_hash(c.password, &hash, &err) != 0) {
        tk_http_reply_error(req, &err);
        return;
    }
    cmd.hash = hash;
    if (tk_command_run_for(req, signup_decide, &cmd, &err) != 0)
        tk_http_reply_error(req, &err);
    else
        reply_signed_in(req, 201, cmd.id, cmd.email);
    free(hash);
}

/* Replace @p old_hash of user @p id by a hash of @p password with today's parameters. A failure
 * only leaves the old hash in place (it still verifies): logged, never the caller's error. */
static void upgrade_hash(tk_http_req_t *req, PGconn *db, const char *id, const char *password,
                         const char *old_hash)
{
    tk_err_t err = {0};
    char *hash = NULL;
    if (tk_password_hash(password, &hash, &err) == 0) {
        const char *params[] = {id, hash, old_hash};
        tk_pg_run_prepared(
            db, "UPDATE users SET password_hash = $2 WHERE id = $1 AND password_hash = $3", 3,
            params, NULL, &err);
    }
    if (err.code != 0)
        tk_log(TK_LOG_WARN, "auth", "password hash upgrade failed",
               "\"request_id\":\"%s\",\"error\":\"%.200s\"", tk_http_request_id(req), err.message);
    free(hash);
}

static void signin(tk_http_req_t *req)
{
    struct credentials c;
    if (!credentials_or_respond(req, false, &c))
        return;
    tk_err_t err = {0};
    PGconn *db = tk_http_db(req, tk_http_route_ud(req), &err);
    if (db == NULL) {
        tk_http_reply_error(req, &err);
        return;
    }
    char addr[TK_CLIENT_ADDR_MAX];
    tk_client_addr_resolve(tk_http_peer_addr(req), tk_http_forwarded_for(req), tk_http_real_ip(req),
                           tk_cfg()->trusted_proxies, addr);
    tk_signin_throttle_t throttle = {0};
    if (tk_signin_throttle_take(db, c.email, addr, &throttle, &err) != 0) {
        if (err.code == TK_ELIMIT)
            tk_http_set_retry_after(req, throttle.retry_after);
        tk_http_reply_error(req, &err);
        return;
    }
    const char *params[] = {c.email};
    PGresult *res = tk_pg_exec_prepared(
        db, "SELECT id, email, password_hash FROM users WHERE lower(email) = lower($1)", 1, params,
        &err);
    if (res == NULL) {
        tk_http_reply_error(req, &err);
        return;
    }
    bool found = PQntuples(res) == 1;
    /* Unknown emails still pay for one scrypt so timing does not reveal who has an account. */
    const char *stored = found ? PQgetvalue(res, 0, 2) : tk_password_dummy();
    int match = tk_password_check(c.password, stored, &err);
    if (match < 0) {
        if (err.code == TK_EUNAVAIL)
            tk_http_set_retry_after(req, 1);
        tk_http_reply_error(req, &err);
    } else if (match == 1 && found) {
        if (tk_signin_throttle_refund(db, &throttle, &err) != 0)
            tk_log(TK_LOG_WARN, "auth", "sign-in counter refund failed", "\"request_id\":\"%s\"",
                   tk_http_request_id(req));
        if (tk_password_outdated(stored))
            upgrade_hash(req, db, PQgetvalue(res, 0, 0), c.password, stored);
        reply_signed_in(req, 200, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
    } else {
        json_t *errors = json_array();
        tk_http_errors_add(errors, NULL, "Invalid credentials");
        tk_http_reply_errors(req, 400, errors);
    }
    PQclear(res);
}

static void signout(tk_http_req_t *req)
{
    const tk_session_user_t *u = tk_http_user(req);
    if (u != NULL) {
        tk_err_t err = {0};
        PGconn *db = tk_http_db(req, tk_http_route_ud(req), &err);
        if (db == NULL || tk_session_revoke(db, u, &err) != 0) {
            /* Never claim a sign-out that did not happen: the token would still work. */
            tk_http_reply_error(req, &err);
            return;
        }
    }
    tk_http_set_cookie(req, tk_session_clear_cookie());
    tk_http_reply_json(req, 200, json_object());
}

static void currentuser(tk_http_req_t *req)
{
    const tk_session_user_t *u = tk_http_user(req);
    json_t *current = u == NULL ? json_null()
                                : json_pack("{s:s, s:s, s:I}", "id", u->id, "email", u->email,
                                            "iat", (json_int_t)u->iat);
    tk_http_reply_json(req, 200, json_pack("{s:o}", "currentUser", current));
}

void tk_auth_command_routes(tk_http_server_t *srv, const char *database)
{
    tk_http_route_with(srv, "POST", "/api/users/signup", signup, (void *)database, 0);
    tk_http_route_with(srv, "POST", "/api/users/signin", signin, (void *)database, 0);
    tk_http_route_with(srv, "POST", "/api/users/signout", signout, (void *)database, 0);
    tk_http_route_with(srv, "GET", "/api/users/currentuser", currentuser, (void *)database, 0);
}
