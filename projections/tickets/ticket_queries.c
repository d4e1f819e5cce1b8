/*
 * ticket_queries.c - the tickets context's queries (DESIGN.md sections 6 and 9). They read only
 * the read model (ticket_view, ticket_history), so a GET right after a command sees its effect
 * once the relay published the event and ticket_view.c applied it (usually milliseconds).
 *
 * GET /api/tickets returns the unreserved tickets as a bare JSON array in creation order, as the
 * original did, but bounded (tk/page.h): at most LIST_DEFAULT_LIMIT (100) without `?limit=N`
 * (1..LIST_MAX_LIMIT), and `?cursor=<id>` starts after the ticket with that id, so the next
 * page's cursor is the id of the last ticket of the current one, and a page shorter than N is
 * the last. The
 * position is (created_at, id) of the cursor's ticket in ticket_view, which stays valid when that
 * ticket is reserved meanwhile (keyset pagination: no skipped or repeated tickets).
 */
#include "tickets_read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ev_money.h"
#include "tk/consistency.h"
#include "tk/ids.h"
#include "tk/page.h"
#include "tk/pg.h"
#include "tk/rows.h"

/* What a client's consistency token asks of these queries: ticket versions in ticket_view. */
static const tk_consistency_model_t view_model = {
    .kind = TK_CONSISTENCY_TICKET,
    .context = "tickets",
    .table = "ticket_view",
    .projection = "ticket_view",
};

static void reply_not_found(tk_http_req_t *req)
{
    tk_err_t err = {0};
    tk_err_set(&err, TK_ENOTFOUND, NULL, "Not Found");
    tk_http_reply_error(req, &err);
}

/* Columns: id, title, price_cents, user_id, version, order_id ("" when free). */
#define VIEW_COLUMNS                                                                               \
    "id, title, price_cents, user_id, version, coalesce(order_id::text, '') AS order_id"

static json_t *row_to_json(const PGresult *res, int i)
{
    json_t *j = json_pack(
        "{s:s, s:s, s:o, s:s, s:I}", "id", PQgetvalue(res, i, 0), "title", PQgetvalue(res, i, 1),
        "price", ev_money_to_json(strtoll(PQgetvalue(res, i, 2), NULL, 10)), "userId",
        PQgetvalue(res, i, 3), "version", (json_int_t)strtoll(PQgetvalue(res, i, 4), NULL, 10));
    if (j != NULL && PQgetvalue(res, i, 5)[0] != '\0')
        json_object_set_new(j, "orderId", json_string(PQgetvalue(res, i, 5)));
    return j;
}

static void list_tickets(tk_http_req_t *req)
{
    if (!tk_consistency_await(req, &view_model, NULL))
        return; /* parked until ticket_view covers the client's writes */
    tk_page_t page;
    if (!tk_page_or_respond(req, &page))
        return;
    const char *limit = page.limit;
    const char *cursor = page.cursor[0] ? page.cursor : NULL;
    const char *params[] = {cursor, limit};
    if (cursor != NULL &&
        !tk_rows_cursor_or_respond(req, "SELECT 1 FROM ticket_view WHERE id = $1", 1, params))
        return;
    tk_rows_list_or_respond(req,
                            "SELECT " VIEW_COLUMNS " FROM ticket_view "
                            "WHERE order_id IS NULL AND ($1::uuid IS NULL OR "
                            "(created_at, id) > (SELECT created_at, id FROM "
                            "ticket_view WHERE id = $1::uuid)) "
                            "ORDER BY created_at, id LIMIT $2::bigint",
                            2, params, row_to_json);
}

static void show_ticket(tk_http_req_t *req)
{
    const char *id = tk_http_id_or_respond(req, "id");
    if (id == NULL || !tk_consistency_await(req, &view_model, id))
        return;
    PGresult *res = tk_rows_or_respond(
        req, "SELECT " VIEW_COLUMNS " FROM ticket_view WHERE id = $1", 1, (const char *[]){id});
    if (res == NULL)
        return;
    if (PQntuples(res) == 1)
        tk_http_reply_json(req, 200, row_to_json(res, 0));
    else
        reply_not_found(req);
    PQclear(res);
}

/* The envelopes are stored encoded; the array is joined in SQL, byte for byte. */
static void ticket_history(tk_http_req_t *req)
{
    const char *id = tk_http_id_or_respond(req, "id");
    if (id == NULL || !tk_consistency_await(req, &view_model, id))
        return;
    PGresult *res =
        tk_rows_or_respond(req,
                           "SELECT EXISTS (SELECT 1 FROM ticket_view WHERE id = $1), "
                           "'[' || coalesce(string_agg(envelope, ',' ORDER BY version), '') || ']' "
                           "FROM ticket_history WHERE ticket_id = $1",
                           1, (const char *[]){id});
    if (res == NULL)
        return;
    if (strcmp(PQgetvalue(res, 0, 0), "t") == 0)
        tk_http_reply_raw(req, 200, "application/json; charset=utf-8", PQgetvalue(res, 0, 1),
                          (size_t)PQgetlength(res, 0, 1));
    else
        reply_not_found(req);
    PQclear(res);
}

void tk_tickets_query_routes(tk_http_server_t *srv, const char *database)
{
    tk_http_route_with(srv, "GET", "/api/tickets", list_tickets, (void *)database, 0);
    tk_http_route_with(srv, "GET", "/api/tickets/:id", show_ticket, (void *)database, 0);
    tk_http_route_with(srv, "GET", "/api/tickets/:id/history", ticket_history, (void *)database, 0);
}
