/*
 * pg.c - blocking libpq access with SQLSTATE mapping.
 *
 * Why blocking: every caller (HTTP worker threads, projector and relay loops) owns a thread and a
 * connection, so the simplest correct client is libpq's synchronous one; nothing here touches an
 * event loop.
 *
 * Invariants:
 * - A function that fails leaves no PGresult behind and fills err through tk_pg_error_map, the
 *   one place where SQLSTATEs become TK_E* codes, so every caller sees the same mapping.
 * - Retryable conflicts (40001, 40P01, a lost optimistic check) are TK_ECONFLICT with the field
 *   TK_PG_RETRY_FIELD: the error contract has no spare code for "try again", and a marker in the
 *   field keeps TK_ECONFLICT's meaning for the HTTP boundary while letting tk_command_run retry.
 * - Server notices ("relation already exists, skipping") are swallowed: libpq's default prints
 *   them on stderr, which would break the JSON-lines log.
 * - Every connection is bounded in time (issue 11 item 10): connect_timeout (PG_CONNECT_TIMEOUT_S,
 *   default 5), statement_timeout (PG_STATEMENT_TIMEOUT_MS, default 30000, 0 = none) and TCP
 *   keepalives plus tcp_user_timeout, so a server that vanishes (no RST: a cable, a firewall, a
 *   frozen VM) turns into an error within seconds instead of a thread blocked for hours.
 * - Prepared statements (tk_pg_exec_prepared) are remembered per connection in libpq instance
 *   data, freed by libpq's CONNDESTROY event and forgotten on CONNRESET (a new session), so a
 *   reconnect can never call a statement that its session does not have.
 * - COMMIT of an aborted transaction "succeeds" with the tag ROLLBACK; tk_pg_commit reports that
 *   as a failure, so a caller never believes an aborted transaction committed.
 */
#include "tk/pg.h"

#include <libpq-events.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tk/cfg.h"
#include "tk/mem.h"
#include "tk/sbuf.h"

#define MAX_PARAMS 16

/* Appends the time bounds of every connection to @p keys/@p vals (at @p n); returns the new n.
 * @p buf holds the formatted values and must outlive the connect call. */
static int add_bounds(const char **keys, const char **vals, int n, char buf[3][48])
{
    snprintf(buf[0], sizeof(buf[0]), "%d", tk_cfg()->pg_connect_timeout_s);
    snprintf(buf[1], sizeof(buf[1]), "-c statement_timeout=%d", tk_cfg()->pg_statement_timeout_ms);
    keys[n] = "connect_timeout";
    vals[n++] = buf[0];
    keys[n] = "options";
    vals[n++] = buf[1];
    keys[n] = "keepalives";
    vals[n++] = "1";
    keys[n] = "keepalives_idle";
    vals[n++] = "30";
    keys[n] = "keepalives_interval";
    vals[n++] = "10";
    keys[n] = "keepalives_count";
    vals[n++] = "3";
    keys[n] = "tcp_user_timeout";
    vals[n++] = "60000";
    keys[n] = NULL;
    vals[n] = NULL;
    return n;
}

static void notice_discard(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

static PGconn *connect_params(const char *const *keys, const char *const *vals, const char *what,
                              tk_err_t *err)
{
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c == NULL) {
        tk_err_set(err, TK_EUNAVAIL, "", "cannot allocate a PostgreSQL connection");
        return NULL;
    }
    if (PQstatus(c) != CONNECTION_OK) {
        char msg[200];
        snprintf(msg, sizeof(msg), "%s", PQerrorMessage(c));
        msg[strcspn(msg, "\n")] = '\0';
        tk_err_set(err, TK_EUNAVAIL, "", "cannot connect to PostgreSQL (%s): %s", what, msg);
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, notice_discard, NULL);
    return c;
}

PGconn *tk_pg_connect(const char *context, tk_err_t *err)
{
    const char *ck[3], *cv[3];
    if (context == NULL || tk_cfg_pg_params(context, ck, cv) != 0) {
        tk_err_set(err, TK_EINVAL, "context", "unknown context '%s'", context ? context : "");
        return NULL;
    }
    /* Copy the context's pairs and append our defaults; PGAPPNAME still wins over the fallback. */
    const char *keys[MAX_PARAMS] = {NULL}, *vals[MAX_PARAMS] = {NULL};
    char buf[3][48];
    int n = 0;
    for (int i = 0; i < 3 && ck[i] != NULL; i++) {
        keys[n] = ck[i];
        vals[n++] = cv[i];
    }
    keys[n] = "fallback_application_name";
    vals[n++] = "ticketing";
    add_bounds(keys, vals, n, buf);
    return connect_params(keys, vals, context, err);
}

char *tk_pg_bytea_hex(const void *data, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    const unsigned char *b = data;
    char *s = tk_mem_alloc(len * 2 + 3);
    s[0] = '\\';
    s[1] = 'x';
    for (size_t i = 0; i < len; i++) {
        s[2 + 2 * i] = digits[b[i] >> 4];
        s[3 + 2 * i] = digits[b[i] & 15];
    }
    s[2 + 2 * len] = '\0';
    return s;
}

int tk_pg_ensure(PGconn **conn, const char *context, tk_err_t *err)
{
    if (!tk_pg_broken(*conn))
        return 0;
    PQfinish(*conn);
    *conn = tk_pg_connect(context, err);
    return *conn != NULL ? 0 : (err != NULL ? err->code : TK_EUNAVAIL);
}

PGconn *tk_pg_connect_server(tk_err_t *err)
{
    const char *keys[MAX_PARAMS] = {"dbname", "fallback_application_name"};
    const char *vals[MAX_PARAMS] = {tk_cfg()->database_url, "ticketing"};
    char buf[3][48];
    add_bounds(keys, vals, 2, buf);
    return connect_params(keys, vals, "server", err);
}

static bool is_unavailable(const char *s)
{
    return strncmp(s, "08", 2) == 0 || strcmp(s, "57P01") == 0 || strcmp(s, "57P02") == 0 ||
           strcmp(s, "57P03") == 0 || strcmp(s, "53300") == 0;
}

int tk_pg_error_map(const char *sqlstate, const char *constraint, const char *message,
                    bool connection_ok, tk_err_t *err)
{
    const char *msg = message != NULL && *message != '\0' ? message : "unknown database error";
    if (sqlstate == NULL || *sqlstate == '\0') {
        if (!connection_ok)
            return tk_err_set(err, TK_EUNAVAIL, "", "database connection lost: %s", msg);
        return tk_err_set(err, TK_EINTERNAL, "", "database error: %s", msg);
    }
    if (strcmp(sqlstate, "23505") == 0)
        return tk_err_set(err, TK_ECONFLICT, constraint ? constraint : "", "%s", msg);
    if (strcmp(sqlstate, "40001") == 0 || strcmp(sqlstate, "40P01") == 0)
        return tk_err_set(err, TK_ECONFLICT, TK_PG_RETRY_FIELD, "%s", msg);
    if (is_unavailable(sqlstate) || !connection_ok)
        return tk_err_set(err, TK_EUNAVAIL, "", "database unavailable (%s): %s", sqlstate, msg);
    return tk_err_set(err, TK_EINTERNAL, "", "database error %s: %s", sqlstate, msg);
}

/* Fill err from a failed result (may be NULL) on connection c. */
static int result_error(PGconn *c, const PGresult *res, tk_err_t *err)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *constraint = res ? PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char buf[200];
    if (primary == NULL) {
        snprintf(buf, sizeof(buf), "%s", c ? PQerrorMessage(c) : "no connection");
        buf[strcspn(buf, "\n")] = '\0';
        primary = buf;
    }
    return tk_pg_error_map(state, constraint, primary, c != NULL && PQstatus(c) == CONNECTION_OK,
                           err);
}

static PGresult *checked(PGconn *c, PGresult *res, tk_err_t *err)
{
    ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return res;
    result_error(c, res, err);
    PQclear(res);
    return NULL;
}

PGresult *tk_pg_exec(PGconn *c, const char *sql, int nparams, const char *const *params,
                     tk_err_t *err)
{
    if (c == NULL) {
        tk_err_set(err, TK_EUNAVAIL, "", "no database connection");
        return NULL;
    }
    return checked(c, PQexecParams(c, sql, nparams, NULL, params, NULL, NULL, 0), err);
}

/* The end of every tk_pg_run*: the code of a failed statement, or the rows it touched. */
static int run_result(PGresult *res, int64_t *affected, tk_err_t *err)
{
    if (res == NULL)
        return err ? err->code : TK_EINTERNAL;
    if (affected != NULL) {
        const char *t = PQcmdTuples(res);
        *affected = *t ? strtoll(t, NULL, 10) : 0;
    }
    PQclear(res);
    return 0;
}

int tk_pg_run(PGconn *c, const char *sql, int nparams, const char *const *params, int64_t *affected,
              tk_err_t *err)
{
    return run_result(tk_pg_exec(c, sql, nparams, params, err), affected, err);
}

/* ---- prepared statements, per connection ---------------------------------------------------- */

#define PREPARED_MAX 64 /* beyond this, statements run unnamed: dynamic SQL must not grow it */

typedef struct prepared {
    int n;
    uint64_t hash[PREPARED_MAX];
    char *sql[PREPARED_MAX]; /* owned copies */
} prepared_t;

static void prepared_clear(prepared_t *ps)
{
    for (int i = 0; i < ps->n; i++)
        free(ps->sql[i]);
    ps->n = 0;
}

static int prepared_events(PGEventId id, void *info, void *pass)
{
    (void)pass;
    if (id == PGEVT_CONNDESTROY) {
        PGconn *c = ((PGEventConnDestroy *)info)->conn;
        prepared_t *ps = PQinstanceData(c, prepared_events);
        if (ps != NULL) {
            prepared_clear(ps);
            free(ps);
        }
    } else if (id == PGEVT_CONNRESET) {
        prepared_t *ps = PQinstanceData(((PGEventConnReset *)info)->conn, prepared_events);
        if (ps != NULL)
            prepared_clear(ps);
    }
    return 1;
}

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

PGresult *tk_pg_exec_prepared(PGconn *c, const char *sql, int nparams, const char *const *params,
                              tk_err_t *err)
{
    if (c == NULL) {
        tk_err_set(err, TK_EUNAVAIL, "", "no database connection");
        return NULL;
    }
    prepared_t *ps = PQinstanceData(c, prepared_events);
    if (ps == NULL) {
        if (!PQregisterEventProc(c, prepared_events, "tk_pg_prepared", NULL))
            return tk_pg_exec(c, sql, nparams, params, err);
        ps = calloc(1, sizeof(*ps));
        if (ps == NULL)
            abort();
        PQsetInstanceData(c, prepared_events, ps);
    }
    uint64_t h = fnv1a(sql);
    int slot = -1;
    for (int i = 0; i < ps->n && slot < 0; i++)
        if (ps->hash[i] == h && strcmp(ps->sql[i], sql) == 0)
            slot = i;
    char name[16];
    if (slot < 0) {
        if (ps->n == PREPARED_MAX)
            return tk_pg_exec(c, sql, nparams, params, err);
        snprintf(name, sizeof(name), "tk_%d", ps->n);
        PGresult *res = checked(c, PQprepare(c, name, sql, nparams, NULL), err);
        if (res == NULL)
            return NULL;
        PQclear(res);
        slot = ps->n++;
        ps->hash[slot] = h;
        ps->sql[slot] = strdup(sql);
        if (ps->sql[slot] == NULL)
            abort();
    }
    snprintf(name, sizeof(name), "tk_%d", slot);
    return checked(c, PQexecPrepared(c, name, nparams, params, NULL, NULL, 0), err);
}

int tk_pg_run_prepared(PGconn *c, const char *sql, int nparams, const char *const *params,
                       int64_t *affected, tk_err_t *err)
{
    return run_result(tk_pg_exec_prepared(c, sql, nparams, params, err), affected, err);
}

int tk_pg_run_script(PGconn *c, const char *sql, tk_err_t *err)
{
    if (c == NULL)
        return tk_err_set(err, TK_EUNAVAIL, "", "no database connection");
    /* PQexec returns the last statement's result, or the first failure's. */
    return run_result(checked(c, PQexec(c, sql), err), NULL, err);
}

int tk_pg_begin(PGconn *c, tk_err_t *err)
{
    return tk_pg_run_script(c, "BEGIN", err); /* one simple Query: nothing to parse and bind */
}

int tk_pg_commit(PGconn *c, tk_err_t *err)
{
    PGresult *res = tk_pg_exec(c, "COMMIT", 0, NULL, err);
    if (res == NULL)
        return err ? err->code : TK_EINTERNAL;
    int rc = 0;
    if (strcmp(PQcmdStatus(res), "ROLLBACK") == 0)
        rc = tk_err_set(err, TK_EINTERNAL, "", "transaction was aborted; COMMIT rolled back");
    PQclear(res);
    return rc;
}

int tk_pg_commit_notify(PGconn *c, const tk_pg_notice_t *notices, int n, tk_err_t *err)
{
    if (n <= 0)
        return tk_pg_commit(c, err);
    if (c == NULL)
        return tk_err_set(err, TK_EUNAVAIL, "", "no database connection");
    /* "COMMIT; SELECT pg_notify('ch', 'payload'), ...": the statements after COMMIT form an
     * implicit transaction of their own, which writes no WAL and so holds the notify lock only
     * briefly. */
    tk_sbuf_t sql = {0};
    tk_sbuf_puts(&sql, "COMMIT; SELECT ");
    for (int i = 0; i < n; i++) {
        char *ch = PQescapeLiteral(c, notices[i].channel, strlen(notices[i].channel));
        const char *pl = notices[i].payload ? notices[i].payload : "";
        char *payload = PQescapeLiteral(c, pl, strlen(pl));
        if (ch != NULL && payload != NULL)
            tk_sbuf_printf(&sql, "%spg_notify(%s, %s)", i ? ", " : "", ch, payload);
        PQfreemem(ch);
        PQfreemem(payload);
    }
    int sent = PQsendQuery(c, sql.data);
    tk_sbuf_free(&sql);
    if (!sent)
        return tk_pg_commit(c, err); /* not even sent: COMMIT alone tells what the link is */
    /* The first result is the COMMIT's; the rest are drained (a failed notification included). */
    PGresult *commit = checked(c, PQgetResult(c), err);
    int rc = 0;
    if (commit == NULL)
        rc = err ? err->code : TK_EUNAVAIL;
    else if (strcmp(PQcmdStatus(commit), "ROLLBACK") == 0)
        rc = tk_err_set(err, TK_EINTERNAL, "", "transaction was aborted; COMMIT rolled back");
    PQclear(commit);
    for (PGresult *res; (res = PQgetResult(c)) != NULL;)
        PQclear(res);
    return rc;
}

int tk_pg_rollback(PGconn *c, tk_err_t *err)
{
    if (c == NULL)
        return tk_err_set(err, TK_EUNAVAIL, "", "no database connection");
    if (PQtransactionStatus(c) == PQTRANS_IDLE)
        return 0;
    tk_err_t local;
    return tk_pg_run(c, "ROLLBACK", 0, NULL, NULL, err ? err : &local);
}

bool tk_pg_retryable(const tk_err_t *err)
{
    return err != NULL && err->code == TK_ECONFLICT && strcmp(err->field, TK_PG_RETRY_FIELD) == 0;
}

bool tk_pg_broken(const PGconn *c)
{
    return c == NULL || PQstatus(c) != CONNECTION_OK;
}
