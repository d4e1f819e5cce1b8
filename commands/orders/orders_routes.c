/*
 * orders_routes.c - the orders context's commands over HTTP: POST /api/orders and
 * DELETE /api/orders/:id (DESIGN.md section 9).
 *
 * Each handler authenticates, validates, then runs one tk_command_run transaction over the write
 * functions of order_store.c; the 201 of POST is built from what that transaction wrote and read
 * (the order row and the replicated ticket). A user holds at most ORDERS_OPEN_MAX open orders
 * (429 + Retry-After until the earliest expires). DELETE replies 204 whether it cancelled the order
 * or found it cancelled already; the queries live in projections/orders/order_queries.c.
 */
#include "orders.h"

#include <stdio.h>
#include <string.h>

#include "tk/cfg.h"
#include "tk/command.h"
#include "tk/consistency.h"

struct place_cmd {
    tk_order_t order;
    tk_order_ticket_t ticket;
    int retry_after;
};

static int place_body(tk_tx_t *tx, void *arg, tk_err_t *err)
{
    struct place_cmd *cmd = arg;
    return tk_orders_place(tx, &cmd->order, &cmd->ticket, &cmd->retry_after, err);
}

static void place_order(tk_http_req_t *req)
{
    json_t *body = NULL;
    const tk_session_user_t *user = tk_http_user_body_or_respond(req, &body);
    if (user == NULL)
        return;
    tk_err_t err = {0};
    const char *ticket_id = NULL;
    if (tk_order_ticket_id_parse(body, &ticket_id, &err) != 0) {
        tk_http_reply_error(req, &err);
        return;
    }
    struct place_cmd cmd = {0};
    tk_uuid_new(cmd.order.id);
    snprintf(cmd.order.user_id, sizeof(cmd.order.user_id), "%s", user->id);
    snprintf(cmd.order.ticket_id, sizeof(cmd.order.ticket_id), "%s", ticket_id);
    cmd.order.status = EV_ORDER_CREATED;
    tk_order_expiry(tk_now_ms(), tk_cfg()->expiration_window_seconds, cmd.order.expires_at);
    if (tk_command_run_for(req, place_body, &cmd, &err) != 0) {
        if (err.code == TK_ELIMIT)
            tk_http_set_retry_after(req, cmd.retry_after);
        tk_http_reply_error(req, &err);
        return;
    }
    tk_consistency_note(req, TK_CONSISTENCY_ORDER, cmd.order.id, cmd.order.version);
    tk_http_reply_json(req, 201, tk_order_to_json(&cmd.order, &cmd.ticket));
}

struct cancel_cmd {
    const char *id;
    const char *user_id;
    tk_order_t after; /* the order once cancelled (now or before) */
};

static int cancel_body(tk_tx_t *tx, void *arg, tk_err_t *err)
{
    struct cancel_cmd *cmd = arg;
    int rc = tk_orders_cancel(tx, cmd->id, cmd->user_id, &cmd->after, err);
    return rc == 1 ? 0 : rc; /* 0: already cancelled, a no-op */
}

static void cancel_order(tk_http_req_t *req)
{
    const tk_session_user_t *user = tk_http_user_or_respond(req);
    if (user == NULL)
        return;
    struct cancel_cmd cmd = {.id = tk_http_id_or_respond(req, "id"), .user_id = user->id};
    if (cmd.id == NULL)
        return;
    tk_err_t err = {0};
    if (tk_command_run_for(req, cancel_body, &cmd, &err) != 0) {
        tk_http_reply_error(req, &err);
        return;
    }
    tk_consistency_note(req, TK_CONSISTENCY_ORDER, cmd.after.id, cmd.after.version);
    tk_http_reply_json(req, 204, NULL);
}

void tk_orders_command_routes(tk_http_server_t *srv, const char *database)
{
    tk_http_route_with(srv, "POST", "/api/orders", place_order, (void *)database, 0);
    tk_http_route_with(srv, "DELETE", "/api/orders/:id", cancel_order, (void *)database, 0);
}
