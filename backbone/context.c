/*
 * context.c - what every context descriptor shares (tk/context.h): its routes on its database, the
 * database readiness probe, and the walk over a context's projectors (read models, then policies).
 */
#include "tk/context.h"

#include <libpq-fe.h>

void tk_context_add_routes(const tk_context_t *ctx, tk_http_server_t *srv)
{
    for (size_t i = 0; ctx->routes != NULL && ctx->routes[i] != NULL; i++)
        ctx->routes[i](srv, ctx->database);
}

int tk_context_probe_db(tk_http_req_t *req, void *ud, tk_err_t *err)
{
    const char *database = ud;
    PGconn *c = tk_http_db(req, database, err);
    if (c == NULL)
        return err->code;
    PGresult *res = PQexec(c, "SELECT 1");
    int ok = PQresultStatus(res) == PGRES_TUPLES_OK;
    PQclear(res);
    if (!ok) {
        tk_http_db_discard(req, database);
        return tk_err_set(err, TK_EUNAVAIL, NULL, "database %s unavailable", database);
    }
    return 0;
}

const tk_projector_spec_t *tk_context_projector(const tk_context_t *ctx, size_t i)
{
    const tk_projector_spec_t *const *lists[] = {ctx->projections, ctx->reactions};
    for (size_t l = 0; l < 2; l++) {
        for (size_t j = 0; lists[l] != NULL && lists[l][j] != NULL; j++, i--)
            if (i == 0)
                return lists[l][j];
    }
    return NULL;
}
