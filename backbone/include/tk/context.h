/*
 * context.h - the descriptor of one bounded context (DESIGN.md section 2): everything the
 * `ticketing` binary needs to start it, in one table. Each context defines its descriptor in
 * commands/<context>/<context>_context.c; app/contexts.c lists them, and cfg-driven tools,
 * migrate, serve, run, status, replay and dead-letters iterate that list instead of naming
 * contexts. Adding a context means one descriptor and its folders (commands/, projections/,
 * schemas/sql/).
 */
#ifndef TK_CONTEXT_H
#define TK_CONTEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "tk/err.h"
#include "tk/http.h"
#include "tk/projector.h"

/* Registers some of a context's REST routes, on @p database (its database, borrowed: static). */
typedef void tk_context_routes_fn(tk_http_server_t *srv, const char *database);

/* One /readyz check of a context. */
typedef struct tk_context_probe {
    const char *name;     /* the check's key in /readyz: "db_orders" */
    tk_http_probe_fn *fn; /* 0 when ready */
    void *ud;             /* borrowed, passed to fn */
} tk_context_probe_t;

typedef struct tk_context {
    const char *name;     /* "orders": consumer groups "<name>.<projection>", logs, CLI */
    const char *database; /* its PostgreSQL database for tk_pg_connect/tk_http_db; NULL: none */
    /* Its REST routes (commands/<name>/, projections/<name>/), each registrar given its database
     * (tk_context_add_routes); NULL-terminated, NULL when none. */
    tk_context_routes_fn *const *routes;
    const tk_context_probe_t *probes; /* ended by a NULL name; NULL when none */
    /* Read models (projections/<name>/), NULL-terminated, NULL when none. */
    const tk_projector_spec_t *const *projections;
    /* Policies that write its write model (commands/<name>/), NULL-terminated, NULL when none. */
    const tk_projector_spec_t *const *reactions;
    const char *migrations; /* its folder under schemas/sql/; NULL: none */
    bool has_outbox;        /* commands append events: a relay publishes them */
    /* A long-running worker of its own kind (the expiration scheduler), run by `ticketing run`
     * until *stop; NULL when none. Returns 0 once stopped, else a TK_E* with err set. */
    int (*worker)(volatile int *stop, tk_err_t *err);
} tk_context_t;

/* The probes of a context whose one dependency is its database @p db (a string literal):
 * {"db_<db>"} answered by tk_context_probe_db. Static storage (a file-scope compound literal). */
#define TK_CONTEXT_DB_PROBES(db)                                                                   \
    ((const tk_context_probe_t[]){{"db_" db, tk_context_probe_db, db}, {NULL, NULL, NULL}})

/**
 * @brief The readiness probe of a database: `SELECT 1` on the request's worker connection to
 *        database @p ud (a const char *, e.g. "orders"); a connection that fails it is dropped.
 * @return 0, or TK_EUNAVAIL with err set. Thread: a worker's.
 */
int tk_context_probe_db(tk_http_req_t *req, void *ud, tk_err_t *err);

/** @brief Register every REST route of @p ctx on @p srv, on the context's database. */
void tk_context_add_routes(const tk_context_t *ctx, tk_http_server_t *srv);

/**
 * @brief The @p i-th projector of @p ctx, counting its projections, then its reactions; NULL
 *        past the last: `for (i = 0; (s = tk_context_projector(c, i)) != NULL; i++)`.
 * Ownership: borrowed (static).
 */
const tk_projector_spec_t *tk_context_projector(const tk_context_t *ctx, size_t i);

#endif
