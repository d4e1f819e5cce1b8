/*
 * rows.c - load-by-id and query-handler shapes shared by the stores (commands/) and the query
 * handlers (projections/); see tk/rows.h.
 */
#include "tk/rows.h"

#include <stdio.h>
#include <stdlib.h>

#include "tk/ids.h"
#include "tk/pg.h"

PGresult *tk_row_by_id(PGconn *conn, const char *sql, bool prepared, const char *id, tk_err_t *err)
{
    if (!tk_uuid_valid(id)) {
        tk_err_set(err, TK_ENOTFOUND, NULL, "Not Found");
        return NULL;
    }
    const char *params[] = {id};
    PGresult *res = prepared ? tk_pg_exec_prepared(conn, sql, 1, params, err)
                             : tk_pg_exec(conn, sql, 1, params, err);
    if (res != NULL && PQntuples(res) != 1) {
        PQclear(res);
        tk_err_set(err, TK_ENOTFOUND, NULL, "Not Found");
        return NULL;
    }
    return res;
}

void tk_row_text(const PGresult *res, int row, int col, char *dst, size_t size)
{
    snprintf(dst, size, "%s", PQgetvalue(res, row, col));
}

int64_t tk_row_int(const PGresult *res, int row, int col)
{
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

PGresult *tk_rows_or_respond(tk_http_req_t *req, const char *sql, int nparams,
                             const char *const *params)
{
    return tk_rows_on_or_respond(req, tk_http_route_ud(req), sql, nparams, params);
}

PGresult *tk_rows_on_or_respond(tk_http_req_t *req, const char *database, const char *sql,
                                int nparams, const char *const *params)
{
    tk_err_t err = {0};
    PGconn *db = tk_http_db(req, database, &err);
    PGresult *res = db == NULL ? NULL : tk_pg_exec_prepared(db, sql, nparams, params, &err);
    if (res == NULL)
        tk_http_reply_error(req, &err);
    return res;
}

bool tk_rows_cursor_or_respond(tk_http_req_t *req, const char *sql, int nparams,
                               const char *const *params)
{
    PGresult *res = tk_rows_or_respond(req, sql, nparams, params);
    if (res == NULL)
        return false;
    bool known = PQntuples(res) == 1;
    PQclear(res);
    if (!known) {
        json_t *errors = json_array();
        tk_http_errors_add(errors, "cursor", "Invalid cursor");
        tk_http_reply_errors(req, 400, errors);
    }
    return known;
}

void tk_rows_list_or_respond(tk_http_req_t *req, const char *sql, int nparams,
                             const char *const *params, json_t *(*row_json)(const PGresult *, int))
{
    PGresult *res = tk_rows_or_respond(req, sql, nparams, params);
    if (res == NULL)
        return;
    json_t *list = json_array();
    for (int i = 0; i < PQntuples(res); i++)
        json_array_append_new(list, row_json(res, i));
    PQclear(res);
    tk_http_reply_json(req, 200, list);
}
