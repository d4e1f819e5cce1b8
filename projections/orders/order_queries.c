/*
 * order_queries.c - the orders context's queries (DESIGN.md sections 6 and 9): GET /api/orders
 * (the caller's orders in creation order, a bare array bounded like every list: tk/page.h's
 * ?limit, default 100, and ?cursor=<order id>) and GET /api/orders/:id (404 unknown, 401 another
 * user's). They read only the read model: order_view for the order, joined at query time with
 * tickets_replica for the embedded ticket's title and version (the latest orders knows), while
 * its price is the one the order was created with (order_view.price_cents, from order:created):
 * what the buyer is charged. A GET right after POST or DELETE sees it once order_view.c applied
 * the event.
 */
#include "orders_read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "orders.h"
#include "tk/consistency.h"
#include "tk/page.h"
#include "tk/pg.h"
#include "tk/rows.h"

/* What a client's consistency token asks of these queries: order versions in order_view. */
static const tk_consistency_model_t view_model = {
    .kind = TK_CONSISTENCY_ORDER,
    .context = "orders",
    .table = "order_view",
    .projection = "order_view",
};

/* Columns 0..5 the order, 6..8 the replicated ticket (NULL when unknown). The price is the
 * order's own (order:created's, DESIGN.md section 5), not the replica's, which may have moved;
 * the replica's only for orders projected before order_view kept a price. */
#define ORDER_SELECT                                                                               \
    "SELECT o.id, o.user_id, o.ticket_id, o.status, " TK_PG_UTC_TEXT(                              \
        "o.expires_at") ", o.version, "                                                            \
                        "t.title, coalesce(o.price_cents, t.price_cents), t.version FROM "         \
                        "order_view o "                                                            \
                        "LEFT JOIN tickets_replica t ON t.id = o.ticket_id "

static json_t *row_to_json(const PGresult *res, int i)
{
    tk_order_t o = {0};
    tk_order_ticket_t t = {0};
    snprintf(o.id, sizeof(o.id), "%s", PQgetvalue(res, i, 0));
    snprintf(o.user_id, sizeof(o.user_id), "%s", PQgetvalue(res, i, 1));
    snprintf(o.ticket_id, sizeof(o.ticket_id), "%s", PQgetvalue(res, i, 2));
    if (ev_order_status_parse(PQgetvalue(res, i, 3), &o.status) != 0)
        o.status = EV_ORDER_CREATED;
    snprintf(o.expires_at, sizeof(o.expires_at), "%s", PQgetvalue(res, i, 4));
    o.version = strtoll(PQgetvalue(res, i, 5), NULL, 10);
    if (PQgetisnull(res, i, 6))
        return tk_order_to_json(&o, NULL);
    memcpy(t.id, o.ticket_id, sizeof(t.id));
    snprintf(t.title, sizeof(t.title), "%s", PQgetvalue(res, i, 6));
    t.price_cents = strtoll(PQgetvalue(res, i, 7), NULL, 10);
    t.version = strtoll(PQgetvalue(res, i, 8), NULL, 10);
    return tk_order_to_json(&o, &t);
}

static void list_orders(tk_http_req_t *req)
{
    const tk_session_user_t *user = tk_http_user_or_respond(req);
    if (user == NULL || !tk_consistency_await(req, &view_model, NULL))
        return;
    if (!tk_uuid_valid(user->id)) { /* such a session can own nothing */
        tk_http_reply_json(req, 200, json_array());
        return;
    }
    tk_page_t page;
    if (!tk_page_or_respond(req, &page))
        return;
    const char *params[] = {user->id, page.limit, page.cursor[0] ? page.cursor : NULL};
    /* A cursor must be one of the caller's orders. */
    if (params[2] != NULL &&
        !tk_rows_cursor_or_respond(req, "SELECT 1 FROM order_view WHERE id = $1 AND user_id = $2",
                                   2, (const char *[]){params[2], user->id}))
        return;
    tk_rows_list_or_respond(req,
                            ORDER_SELECT "WHERE o.user_id = $1 AND ($3::uuid IS NULL OR "
                                         "(o.created_at, o.id) > (SELECT created_at, id "
                                         "FROM order_view WHERE id = $3::uuid)) "
                                         "ORDER BY o.created_at, o.id LIMIT $2::bigint",
                            3, params, row_to_json);
}

PGresult *tk_orders_owned_row_or_respond(tk_http_req_t *req, const char *database, const char *sql,
                                         int owner_col)
{
    const tk_session_user_t *user = tk_http_user_or_respond(req);
    if (user == NULL)
        return NULL;
    const char *id = tk_http_id_or_respond(req, "id");
    if (id == NULL)
        return NULL;
    tk_err_t err = {0};
    PGresult *res = tk_rows_on_or_respond(req, database, sql, 1, (const char *[]){id});
    if (res == NULL)
        return NULL;
    if (PQntuples(res) != 1)
        tk_err_set(&err, TK_ENOTFOUND, NULL, "Not Found");
    else
        tk_order_decide_access(PQgetvalue(res, 0, owner_col), user->id, &err);
    if (err.code != 0) {
        PQclear(res);
        tk_http_reply_error(req, &err);
        return NULL;
    }
    return res;
}

static void show_order(tk_http_req_t *req)
{
    if (!tk_consistency_await(req, &view_model, tk_http_param(req, "id")))
        return; /* parked until order_view covers the client's writes */
    PGresult *res = tk_orders_owned_row_or_respond(req, tk_http_route_ud(req),
                                                   ORDER_SELECT "WHERE o.id = $1", 1);
    if (res == NULL)
        return;
    tk_http_reply_json(req, 200, row_to_json(res, 0));
    PQclear(res);
}

void tk_orders_query_routes(tk_http_server_t *srv, const char *database)
{
    tk_http_route_with(srv, "GET", "/api/orders", list_orders, (void *)database, 0);
    tk_http_route_with(srv, "GET", "/api/orders/:id", show_order, (void *)database, 0);
}
