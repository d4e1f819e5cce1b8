/*
 * tickets_routes.c - the tickets context's commands over HTTP: POST /api/tickets and
 * PUT /api/tickets/:id (DESIGN.md section 9).
 *
 * Each handler authenticates, validates the body, then runs one tk_command_run transaction whose
 * body calls the write functions of ticket_store.c; the reply comes from the state the
 * transaction committed (a command response may come from the write model, section 6). The order
 * of the checks is the original's: 401 anonymous, 400 body, 404 unknown (or malformed) id,
 * 400 reserved, 401 not the owner.
 */
#include "tickets.h"

#include <stdio.h>
#include <string.h>

#include "tk/command.h"
#include "tk/consistency.h"

/* The validated body, or false after a 400. */
static bool input_or_respond(tk_http_req_t *req, tk_ticket_input_t *in)
{
    json_t *body = tk_http_body_or_respond(req);
    if (body == NULL)
        return false;
    json_t *errors = json_array();
    if (tk_ticket_input_parse(body, in, errors) != 0) {
        tk_http_reply_errors(req, 400, errors);
        return false;
    }
    json_decref(errors);
    return true;
}

struct create_cmd {
    tk_ticket_t ticket;
};

static int create_body(tk_tx_t *tx, void *arg, tk_err_t *err)
{
    struct create_cmd *cmd = arg;
    return tk_tickets_create(tx, &cmd->ticket, err);
}

static void create_ticket(tk_http_req_t *req)
{
    const tk_session_user_t *user = tk_http_user_or_respond(req);
    if (user == NULL)
        return;
    tk_ticket_input_t in;
    if (!input_or_respond(req, &in))
        return;
    struct create_cmd cmd = {0};
    tk_uuid_new(cmd.ticket.id);
    memcpy(cmd.ticket.title, in.title, sizeof(cmd.ticket.title));
    cmd.ticket.price_cents = in.price_cents;
    snprintf(cmd.ticket.user_id, sizeof(cmd.ticket.user_id), "%s", user->id);
    tk_err_t err = {0};
    if (tk_command_run_for(req, create_body, &cmd, &err) != 0) {
        tk_http_reply_error(req, &err);
        return;
    }
    tk_consistency_note(req, TK_CONSISTENCY_TICKET, cmd.ticket.id, cmd.ticket.version);
    tk_http_reply_json(req, 201, tk_ticket_to_json(&cmd.ticket));
}

struct update_cmd {
    const char *id;
    const char *user_id;
    tk_ticket_input_t in;
    tk_ticket_t result;
};

static int update_body(tk_tx_t *tx, void *arg, tk_err_t *err)
{
    struct update_cmd *cmd = arg;
    return tk_tickets_update(tx, cmd->id, cmd->user_id, &cmd->in, &cmd->result, err);
}

static void update_ticket(tk_http_req_t *req)
{
    const tk_session_user_t *user = tk_http_user_or_respond(req);
    if (user == NULL)
        return;
    struct update_cmd cmd = {.id = tk_http_param(req, "id"), .user_id = user->id};
    if (!input_or_respond(req, &cmd.in))
        return;
    if ((cmd.id = tk_http_id_or_respond(req, "id")) == NULL)
        return;
    tk_err_t err = {0};
    if (tk_command_run_for(req, update_body, &cmd, &err) != 0) {
        tk_http_reply_error(req, &err);
        return;
    }
    tk_consistency_note(req, TK_CONSISTENCY_TICKET, cmd.result.id, cmd.result.version);
    tk_http_reply_json(req, 200, tk_ticket_to_json(&cmd.result));
}

void tk_tickets_command_routes(tk_http_server_t *srv, const char *database)
{
    tk_http_route_with(srv, "POST", "/api/tickets", create_ticket, (void *)database, 0);
    tk_http_route_with(srv, "PUT", "/api/tickets/:id", update_ticket, (void *)database, 0);
}
