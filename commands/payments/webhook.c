/*
 * webhook.c - POST /api/payments/webhook: Stripe's asynchronous word on our charge attempts.
 *
 *   Stripe-Signature missing, malformed, wrong HMAC, or t outside the tolerance -> 400
 *   no STRIPE_WEBHOOK_SECRET configured: the endpoint does not exist            -> 404
 *   body not a JSON event                                                      -> 400
 *   payment_intent.succeeded / payment_intent.payment_failed whose
 *   metadata.attempt_id names one of our attempts, not yet succeeded:
 *     under the order's payment lock, tk_payments_reconcile with the intent as reported
 *     (succeeded: kept as the order's payment, or refunded; failed: the attempt fails) -> 200
 *     the lock busy beyond its bound, or the database down                           -> 503
 *   any other event, or an attempt we do not know, or one already settled              -> 200
 *
 * Why verify before parsing: the body is attacker-controlled until the HMAC over its exact bytes
 * (and the timestamp, against replays of an old delivery) says it is Stripe's. Why answer 503 on
 * a busy lock: Stripe retries a failed delivery with backoff for days, and the charge in flight
 * decides meanwhile; a repeated delivery is harmless (a settled attempt is skipped).
 */
#include "payments.h"

#include <stdio.h>
#include <string.h>

#include "tk/cfg.h"
#include "tk/log.h"
#include "tk/pg.h"

#define WEBHOOK_LOCK_WAIT_MS 5000

/* The attempt and intent of a payment_intent.* event: 1 found, 0 not for us. */
static int intent_of(json_t *event, char attempt_id[TK_UUID_LEN + 1], tk_stripe_charge_t *pi)
{
    const char *type = json_string_value(json_object_get(event, "type"));
    if (type == NULL || (strcmp(type, "payment_intent.succeeded") != 0 &&
                         strcmp(type, "payment_intent.payment_failed") != 0))
        return 0;
    json_t *obj = json_object_get(json_object_get(event, "data"), "object");
    const char *id = json_string_value(json_object_get(obj, "id"));
    const char *status = json_string_value(json_object_get(obj, "status"));
    const char *attempt =
        json_string_value(json_object_get(json_object_get(obj, "metadata"), "attempt_id"));
    if (id == NULL || *id == '\0' || strlen(id) > TK_STRIPE_ID_MAX || attempt == NULL ||
        strlen(attempt) != TK_UUID_LEN || !tk_uuid_valid(attempt))
        return 0;
    memset(pi, 0, sizeof(*pi));
    snprintf(pi->id, sizeof(pi->id), "%s", id);
    /* The event's type is the outcome; the object's status agrees with it in Stripe's docs. */
    snprintf(pi->status, sizeof(pi->status), "%s",
             strcmp(type, "payment_intent.succeeded") == 0        ? "succeeded"
             : status != NULL && strcmp(status, "succeeded") != 0 ? status
                                                                  : "requires_payment_method");
    snprintf(attempt_id, TK_UUID_LEN + 1, "%s", attempt);
    return 1;
}

static void webhook(tk_http_req_t *req)
{
    tk_err_t err = {0};
    size_t len = 0;
    const char *body = tk_http_body_raw(req, &len);
    const tk_cfg_t *cfg = tk_cfg();
    if (cfg->stripe_webhook_secret == NULL || *cfg->stripe_webhook_secret == '\0') {
        tk_err_set(&err, TK_ENOTFOUND, NULL, "Not Found");
        tk_http_reply_error(req, &err);
        return;
    }
    if (tk_stripe_webhook_verify(body, len, tk_http_signature(req), cfg->stripe_webhook_secret,
                                 cfg->stripe_webhook_tolerance_s, tk_now_ms() / 1000, &err) != 0) {
        tk_http_reply_error(req, &err);
        return;
    }
    json_t *event = json_loadb(body, len, 0, NULL);
    if (!json_is_object(event)) {
        json_decref(event);
        tk_err_set(&err, TK_EINVAL, NULL, "The body must be a Stripe event");
        tk_http_reply_error(req, &err);
        return;
    }
    char attempt_id[TK_UUID_LEN + 1];
    tk_stripe_charge_t pi;
    int relevant = intent_of(event, attempt_id, &pi);
    json_decref(event);
    PGconn *db = relevant ? tk_http_db(req, tk_http_route_ud(req), &err) : NULL;
    if (relevant && db == NULL) {
        tk_http_reply_error(req, &err);
        return;
    }
    int rc = 0;
    bool locked = false, refund = false;
    tk_payment_attempt_t a;
    bool open = false;
    if (relevant && (rc = tk_payments_attempt_load(db, attempt_id, &a, &open, &err)) == 1 && open) {
        rc = tk_payments_lock(db, a.order_id, WEBHOOK_LOCK_WAIT_MS, &err);
        if (rc == 1)
            rc = tk_err_set(&err, TK_EUNAVAIL, NULL, "A payment for this order is in progress");
        locked = rc == 0;
        char payment_id[TK_UUID_LEN + 1];
        if (locked) {
            rc = tk_payments_reconcile(db, &a, &pi, payment_id, &refund, &err);
            if (!tk_pg_broken(db))
                tk_payments_unlock(db, a.order_id);
        }
    }
    if (refund && !tk_pg_broken(db)) {
        tk_err_t rerr = {0};
        tk_payments_refunds_run(db, a.order_id, 4, NULL, &rerr);
    }
    if (db != NULL && tk_pg_broken(db))
        tk_http_db_discard(req, tk_http_route_ud(req));
    if (rc < 0) {
        tk_log(TK_LOG_WARN, "payments", "webhook not applied, Stripe will redeliver",
               "\"request_id\":\"%s\",\"code\":\"%s\"", tk_http_request_id(req), tk_err_name(rc));
        tk_http_reply_error(req, &err);
        return;
    }
    tk_http_reply_json(req, 200, json_pack("{s:b}", "received", 1));
}

void tk_payments_webhook_routes(tk_http_server_t *srv, const char *database)
{
    tk_http_route_with(srv, "POST", "/api/payments/webhook", webhook, (void *)database, 0);
}
