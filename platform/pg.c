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
 * - A deferred BEGIN (tk_pg_begin_deferred) rides with the transaction's first statement, and
 *   tk_pg_commit_with sends its writes, COMMIT and notifications together: both through one
 *   pipeline() (libpq pipeline mode, one Sync), which always leaves pipeline mode again or leaves
 *   a connection tk_pg_broken reports.
 * - COMMIT of an aborted transaction "succeeds" with the tag ROLLBACK; tk_pg_commit reports that
 *   as a failure, so a caller never believes an aborted transaction committed.
 */
#include "tk/pg.h"

#include <libpq-events.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tk/cfg.h"
#include "tk/hash.h"
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

/* ---- per connection: prepared statements and a deferred BEGIN ------------------------------ */

#define PREPARED_MAX 64 /* beyond this, statements run unnamed: dynamic SQL must not grow it */
#define STEPS_MAX 20    /* statements of one round trip (tk_pg_commit_with) */

typedef struct conn_state {
    int n;
    uint64_t hash[PREPARED_MAX];
    char *sql[PREPARED_MAX]; /* owned copies */
    bool begin_pending;      /* tk_pg_begin_deferred: BEGIN goes with the next statement */
} conn_state_t;

static void prepared_clear(conn_state_t *cs)
{
    for (int i = 0; i < cs->n; i++)
        free(cs->sql[i]);
    cs->n = 0;
}

static int state_events(PGEventId id, void *info, void *pass)
{
    (void)pass;
    if (id == PGEVT_CONNDESTROY) {
        PGconn *c = ((PGEventConnDestroy *)info)->conn;
        conn_state_t *cs = PQinstanceData(c, state_events);
        if (cs != NULL) {
            prepared_clear(cs);
            free(cs);
        }
    } else if (id == PGEVT_CONNRESET) {
        conn_state_t *cs = PQinstanceData(((PGEventConnReset *)info)->conn, state_events);
        if (cs != NULL) {
            prepared_clear(cs);
            cs->begin_pending = false;
        }
    }
    return 1;
}

/* The state of @p c, made on first use; NULL when libpq refuses the event procedure (then
 * statements run unprepared and BEGIN is not deferred). */
static conn_state_t *state_of(PGconn *c)
{
    conn_state_t *cs = PQinstanceData(c, state_events);
    if (cs == NULL && PQregisterEventProc(c, state_events, "tk_pg_state", NULL)) {
        cs = tk_mem_zalloc(sizeof(*cs));
        PQsetInstanceData(c, state_events, cs);
    }
    return cs;
}

/* True (and cleared) when a deferred BEGIN waits to be sent on @p c. */
static bool take_begin(PGconn *c)
{
    conn_state_t *cs = c != NULL ? PQinstanceData(c, state_events) : NULL;
    bool pending = cs != NULL && cs->begin_pending;
    if (pending)
        cs->begin_pending = false;
    return pending;
}

/* The slot of @p sql in @p cs, or -1. */
static int prepared_find(const conn_state_t *cs, const char *sql)
{
    uint64_t h = tk_hash_bytes(sql, strlen(sql));
    for (int i = 0; i < cs->n; i++)
        if (cs->hash[i] == h && strcmp(cs->sql[i], sql) == 0)
            return i;
    return -1;
}

/* Remember @p sql in a new slot (the caller prepares it as "tk_<slot>"); -1 when full. */
static int prepared_add(conn_state_t *cs, const char *sql)
{
    if (cs->n == PREPARED_MAX)
        return -1;
    cs->hash[cs->n] = tk_hash_bytes(sql, strlen(sql));
    cs->sql[cs->n] = tk_mem_strdup(sql);
    return cs->n++;
}

/* Forget the slots from @p from on (their PREPARE failed or never ran). */
static void prepared_truncate(conn_state_t *cs, int from)
{
    while (cs->n > from)
        free(cs->sql[--cs->n]);
}

/* One statement of a pipeline: through the connection's prepared statements or not; lengths and
 * formats as PQexecParams takes them (both NULL: every parameter text). */
typedef struct step {
    const char *sql;
    int nparams;
    const char *const *params;
    bool prepared;
    const int *lengths;
    const int *formats;
} step_t;

/* A deferred BEGIN, if one is pending on @p c, then @p stmts (n, prepared) into @p steps: the
 * opening of every pipeline that runs a transaction's statements. Returns how many steps. */
static int begin_then(PGconn *c, const tk_pg_stmt_t *stmts, int n, step_t *steps)
{
    int m = 0;
    if (take_begin(c))
        steps[m++] = (step_t){"BEGIN", 0, NULL, false, NULL, NULL};
    for (int i = 0; i < n; i++)
        steps[m++] = (step_t){stmts[i].sql, stmts[i].nparams, stmts[i].params, true, NULL, NULL};
    return m;
}

/* Send @p steps and a Sync in pipeline mode, read every result, and leave pipeline mode: one round
 * trip. Returns the first failure (later steps are then skipped by the server) or 0; the result of
 * each step that succeeded is handed to results[step] (an array of n, zeroed by the caller; NULL:
 * keep none), the caller's to PQclear. An explicit transaction stays open across the Sync; one
 * that failed inside stays failed until ROLLBACK, as with single statements.
 */
static int pipeline(PGconn *c, const step_t *steps, int n, PGresult **results, tk_err_t *err)
{
    conn_state_t *cs = PQinstanceData(c, state_events);
    int prepared_before = cs != NULL ? cs->n : 0;
    /* Per sent query (a step is one, or two when its statement is prepared first): */
    int prepare_step[2 * STEPS_MAX]; /* the slot it prepares, or -1 */
    int step_of[2 * STEPS_MAX];      /* the step it executes, or -1 */
    int queries = 0, rc = 0;
    char name[16];

    if (n > STEPS_MAX)
        return tk_err_set(err, TK_EINTERNAL, "", "%d statements in one round trip (max %d)", n,
                          STEPS_MAX);
    if (!PQenterPipelineMode(c))
        return result_error(c, NULL, err);
    bool sent = true;
    for (int i = 0; i < n && sent; i++) {
        int slot = -1;
        if (steps[i].prepared && cs != NULL && (slot = prepared_find(cs, steps[i].sql)) < 0 &&
            (slot = prepared_add(cs, steps[i].sql)) >= 0) {
            snprintf(name, sizeof(name), "tk_%d", slot);
            sent = PQsendPrepare(c, name, steps[i].sql, steps[i].nparams, NULL);
            prepare_step[queries] = slot;
            step_of[queries++] = -1;
        }
        if (!sent)
            break;
        if (slot >= 0) {
            snprintf(name, sizeof(name), "tk_%d", slot);
            sent = PQsendQueryPrepared(c, name, steps[i].nparams, steps[i].params, steps[i].lengths,
                                       steps[i].formats, 0);
        } else {
            sent = PQsendQueryParams(c, steps[i].sql, steps[i].nparams, NULL, steps[i].params,
                                     steps[i].lengths, steps[i].formats, 0);
        }
        prepare_step[queries] = -1;
        step_of[queries++] = i;
    }
    if (!sent || !PQpipelineSync(c)) {
        rc = result_error(c, NULL, err);
        if (PQstatus(c) == CONNECTION_OK) /* result_error said "internal"; the pipeline is stuck */
            rc = tk_err_set(err, TK_EUNAVAIL, "", "database unavailable: %s", PQerrorMessage(c));
        if (cs != NULL)
            prepared_truncate(cs, prepared_before);
        return rc; /* the link is gone or unusable: tk_pg_broken says so, the caller reconnects */
    }
    /* Each query gives one result and a NULL; the Sync gives PGRES_PIPELINE_SYNC. */
    int q = 0, nulls = 0;
    for (;;) {
        PGresult *res = PQgetResult(c);
        if (res == NULL) {
            if (++nulls > 1)
                break; /* nothing more will come: the link broke */
            continue;
        }
        nulls = 0;
        ExecStatusType st = PQresultStatus(res);
        if (st == PGRES_PIPELINE_SYNC) {
            PQclear(res);
            break;
        }
        bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
        if (!ok && rc == 0)
            rc = st == PGRES_PIPELINE_ABORTED
                     ? tk_err_set(err, TK_EINTERNAL, "", "statement skipped in an aborted pipeline")
                     : result_error(c, res, err);
        if (q < queries && prepare_step[q] >= 0 && !ok && cs != NULL &&
            prepare_step[q] < cs->n) /* this PREPARE and every later one did not happen */
            prepared_truncate(cs, prepare_step[q]);
        if (q < queries && step_of[q] >= 0 && ok && results != NULL) {
            results[step_of[q]] = res;
            res = NULL;
        }
        PQclear(res);
        q++;
    }
    if (!PQexitPipelineMode(c) && rc == 0)
        rc = tk_err_set(err, TK_EUNAVAIL, "", "database unavailable: %s", PQerrorMessage(c));
    if (rc == 0 && q < queries)
        rc = tk_err_set(err, TK_EUNAVAIL, "", "database unavailable: %d of %d results", q, queries);
    return rc;
}

/* A statement after a deferred BEGIN: both in one round trip. */
static PGresult *with_begin(PGconn *c, const step_t *statement, tk_err_t *err)
{
    const step_t steps[] = {{"BEGIN", 0, NULL, false, NULL, NULL}, *statement};
    PGresult *res[2] = {NULL, NULL};
    int rc = pipeline(c, steps, 2, res, err);
    PQclear(res[0]);
    if (rc != 0) {
        PQclear(res[1]);
        return NULL;
    }
    return res[1];
}

PGresult *tk_pg_exec(PGconn *c, const char *sql, int nparams, const char *const *params,
                     tk_err_t *err)
{
    if (c == NULL) {
        tk_err_set(err, TK_EUNAVAIL, "", "no database connection");
        return NULL;
    }
    if (take_begin(c))
        return with_begin(c, &(step_t){sql, nparams, params, false, NULL, NULL}, err);
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

int tk_pg_begin_deferred(PGconn *c, tk_err_t *err)
{
    if (c == NULL)
        return tk_err_set(err, TK_EUNAVAIL, "", "no database connection");
    conn_state_t *cs = state_of(c);
    if (cs == NULL || PQtransactionStatus(c) != PQTRANS_IDLE)
        return tk_pg_begin(c, err);
    cs->begin_pending = true;
    return 0;
}

/* tk_pg_exec_prepared, with binary parameters where @p formats says 1 (both NULL: all text). */
static PGresult *exec_prepared(PGconn *c, const char *sql, int nparams, const char *const *params,
                               const int *lengths, const int *formats, tk_err_t *err)
{
    if (c == NULL) {
        tk_err_set(err, TK_EUNAVAIL, "", "no database connection");
        return NULL;
    }
    if (take_begin(c))
        return with_begin(c, &(step_t){sql, nparams, params, true, lengths, formats}, err);
    conn_state_t *cs = state_of(c);
    int slot = cs != NULL ? prepared_find(cs, sql) : -1;
    char name[16];
    if (slot < 0) {
        if (cs == NULL || (slot = prepared_add(cs, sql)) < 0)
            return checked(c, PQexecParams(c, sql, nparams, NULL, params, lengths, formats, 0),
                           err);
        snprintf(name, sizeof(name), "tk_%d", slot);
        PGresult *res = checked(c, PQprepare(c, name, sql, nparams, NULL), err);
        if (res == NULL) {
            prepared_truncate(cs, slot);
            return NULL;
        }
        PQclear(res);
    }
    snprintf(name, sizeof(name), "tk_%d", slot);
    return checked(c, PQexecPrepared(c, name, nparams, params, lengths, formats, 0), err);
}

PGresult *tk_pg_exec_prepared(PGconn *c, const char *sql, int nparams, const char *const *params,
                              tk_err_t *err)
{
    return exec_prepared(c, sql, nparams, params, NULL, NULL, err);
}

PGresult *tk_pg_exec_prepared_binary(PGconn *c, const char *sql, int nparams,
                                     const char *const *params, const int *lengths,
                                     const int *formats, tk_err_t *err)
{
    return exec_prepared(c, sql, nparams, params, lengths, formats, err);
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
    if (take_begin(c)) { /* one simple Query carries both */
        tk_sbuf_t both = {0};
        tk_sbuf_printf(&both, "BEGIN; %s", sql);
        int rc = run_result(checked(c, PQexec(c, both.data), err), NULL, err);
        tk_sbuf_free(&both);
        return rc;
    }
    /* PQexec returns the last statement's result, or the first failure's. */
    return run_result(checked(c, PQexec(c, sql), err), NULL, err);
}

int tk_pg_begin(PGconn *c, tk_err_t *err)
{
    return tk_pg_run_script(c, "BEGIN", err); /* one simple Query: nothing to parse and bind */
}

int tk_pg_commit(PGconn *c, tk_err_t *err)
{
    return tk_pg_commit_with(c, NULL, 0, NULL, 0, err);
}

int tk_pg_commit_notify(PGconn *c, const tk_pg_notice_t *notices, int n, tk_err_t *err)
{
    return tk_pg_commit_with(c, NULL, 0, notices, n, err);
}

int tk_pg_commit_with(PGconn *c, const tk_pg_stmt_t *stmts, int nstmts,
                      const tk_pg_notice_t *notices, int nnotices, tk_err_t *err)
{
    if (c == NULL)
        return tk_err_set(err, TK_EUNAVAIL, "", "no database connection");
    if (nstmts < 0 || nnotices < 0 || nstmts + nnotices + 2 > STEPS_MAX)
        return tk_err_set(err, TK_EINTERNAL, "", "%d statements and %d notices in one commit",
                          nstmts, nnotices);
    if (nstmts == 0 && take_begin(c))
        return 0; /* nothing ran and nothing is to be written: no transaction was ever opened */
    /* [BEGIN,] the statements, COMMIT, then "SELECT pg_notify($1, $2)" per notice: the
     * notifications run in an implicit transaction of their own after the COMMIT, which writes no
     * WAL and so holds the notify lock only briefly. */
    step_t steps[STEPS_MAX];
    const char *notice_params[STEPS_MAX][2];
    int n = begin_then(c, stmts, nstmts, steps);
    int commit = n;
    steps[n++] = (step_t){"COMMIT", 0, NULL, false, NULL, NULL};
    for (int i = 0; i < nnotices; i++) {
        notice_params[i][0] = notices[i].channel;
        notice_params[i][1] = notices[i].payload ? notices[i].payload : "";
        steps[n++] = (step_t){"SELECT pg_notify($1, $2)", 2, notice_params[i], true, NULL, NULL};
    }
    PGresult *results[STEPS_MAX] = {NULL};
    int rc = pipeline(c, steps, n, results, err);
    PGresult *res = results[commit];
    for (int i = 0; i < n; i++)
        if (i != commit)
            PQclear(results[i]);
    /* The COMMIT's outcome is the answer: a notification failing after it is not the commit's
     * failure (the transaction is durable), so it is not reported. */
    if (res != NULL) {
        if (rc != 0)
            tk_err_clear(err);
        rc = strcmp(PQcmdStatus(res), "ROLLBACK") == 0
                 ? tk_err_set(err, TK_EINTERNAL, "", "transaction was aborted; COMMIT rolled back")
                 : 0;
        PQclear(res);
    }
    return rc;
}

int tk_pg_exec_all(PGconn *c, const tk_pg_stmt_t *stmts, int n, PGresult **results, tk_err_t *err)
{
    for (int i = 0; i < n; i++)
        results[i] = NULL;
    if (c == NULL)
        return tk_err_set(err, TK_EUNAVAIL, "", "no database connection");
    if (n < 1 || n + 1 > STEPS_MAX)
        return tk_err_set(err, TK_EINTERNAL, "", "%d statements in one round trip", n);
    step_t steps[STEPS_MAX];
    int m = begin_then(c, stmts, n, steps);
    int first = m - n; /* 1 after a BEGIN */
    PGresult *all[STEPS_MAX] = {NULL};
    int rc = pipeline(c, steps, m, all, err);
    for (int i = 0; i < m; i++) {
        if (rc == 0 && i >= first)
            results[i - first] = all[i];
        else
            PQclear(all[i]);
    }
    return rc;
}

int tk_pg_rollback(PGconn *c, tk_err_t *err)
{
    if (c == NULL)
        return tk_err_set(err, TK_EUNAVAIL, "", "no database connection");
    if (take_begin(c) || PQtransactionStatus(c) == PQTRANS_IDLE)
        return 0; /* a deferred BEGIN that was never sent has nothing to roll back */
    tk_err_t local;
    return tk_pg_run(c, "ROLLBACK", 0, NULL, NULL, err ? err : &local);
}

bool tk_pg_retryable(const tk_err_t *err)
{
    return err != NULL && err->code == TK_ECONFLICT && strcmp(err->field, TK_PG_RETRY_FIELD) == 0;
}

bool tk_pg_broken(const PGconn *c)
{
    return c == NULL || PQstatus(c) != CONNECTION_OK || PQpipelineStatus(c) != PQ_PIPELINE_OFF;
}
