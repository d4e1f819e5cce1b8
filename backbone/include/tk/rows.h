/*
 * rows.h - the shapes every store and query handler repeated around libpq (issue 13): load one
 * row by its uuid id, run a query on the route's database and answer its failure, check a page
 * cursor, and answer a result as a JSON array.
 */
#ifndef TK_ROWS_H
#define TK_ROWS_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tk/err.h"
#include "tk/http.h"

/**
 * @brief The one row that @p sql (one parameter, $1 = @p id) finds, for a load by id: an id that
 *        is not a uuid and a missing row are both TK_ENOTFOUND "Not Found".
 * @param prepared run through tk_pg_exec_prepared (a hot path) rather than tk_pg_exec.
 * @return owned (PQclear) with exactly one row; NULL with err set.
 * Thread: the connection's.
 */
PGresult *tk_row_by_id(PGconn *conn, const char *sql, bool prepared, const char *id, tk_err_t *err);

/**
 * @brief Copy the text of row @p row, column @p col of @p res into @p dst (@p size bytes, always
 *        terminated, cut to fit): the one way a store reads an id or a name out of a result.
 */
void tk_row_text(const PGresult *res, int row, int col, char *dst, size_t size);

/** @brief Row @p row, column @p col of @p res as a base-10 integer (0 for NULL or empty). */
int64_t tk_row_int(const PGresult *res, int row, int col);

/**
 * @brief Run @p sql with @p params on the database of the route (tk_http_route_ud, a database
 *        name); on failure reply the error. Worker routes only.
 * @return owned (PQclear), or NULL after replying.
 */
PGresult *tk_rows_or_respond(tk_http_req_t *req, const char *sql, int nparams,
                             const char *const *params);

/** @brief tk_rows_or_respond on @p database (borrowed) rather than the route's. */
PGresult *tk_rows_on_or_respond(tk_http_req_t *req, const char *database, const char *sql,
                                int nparams, const char *const *params);

/**
 * @brief A page cursor must name a row that @p sql (with @p params) finds: false after replying
 *        400 {"field":"cursor","message":"Invalid cursor"} or the query's error.
 */
bool tk_rows_cursor_or_respond(tk_http_req_t *req, const char *sql, int nparams,
                               const char *const *params);

/**
 * @brief Answer a list query: run @p sql with @p params as tk_rows_or_respond does, and reply 200
 *        with the JSON array of @p row_json for every row it finds (or the query's error).
 */
void tk_rows_list_or_respond(tk_http_req_t *req, const char *sql, int nparams,
                             const char *const *params, json_t *(*row_json)(const PGresult *, int));

#endif
