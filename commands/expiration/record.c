/*
 * record.c - the delay record of topic expiration.delay: {"orderId","dueAt"[,"correlationId"]}.
 *
 * The record is the scheduler's private format, not an event of the contract (no envelope, no
 * schema in schemas/events/): only the two stages of this context read and write it. It stays
 * small on purpose (about 90 bytes) because the delay topic holds one record per order ever
 * placed, and the delay consumer may re-read a head record many times (after every restart and
 * rebalance). dueAt is the RFC 3339 text of the order:created event's expiresAt, so a record read
 * with `ticketing events tail` or kcat is understandable without tools.
 */
#include "expiration_int.h"

#include <jansson.h>
#include <string.h>

int tk_expiration_record_encode(const tk_expiration_record_t *r, char *buf, size_t size,
                                tk_err_t *err)
{
    int rc = 0;
    json_t *o = NULL;
    char due[TK_TIME_LEN + 1];

    if (!tk_uuid_valid(r->order_id))
        return tk_err_set(err, TK_EINVAL, "orderId", "orderId must be a UUID");
    if (r->due_ms < 0)
        return tk_err_set(err, TK_EINVAL, "dueAt", "dueAt must not be before 1970");
    if (strnlen(r->correlation_id, sizeof(r->correlation_id)) >= sizeof(r->correlation_id))
        return tk_err_set(err, TK_EINVAL, "correlationId", "correlationId is too long");
    tk_time_format(r->due_ms, due);
    o = json_pack("{s:s, s:s}", "orderId", r->order_id, "dueAt", due);
    if (o == NULL) {
        rc = tk_err_set(err, TK_EINTERNAL, "", "cannot build a delay record");
        goto out;
    }
    if (r->correlation_id[0] != '\0') {
        json_t *c = json_string(r->correlation_id);
        if (c == NULL) {
            rc = tk_err_set(err, TK_EINVAL, "correlationId", "correlationId must be UTF-8");
            goto out;
        }
        json_object_set_new(o, "correlationId", c);
    }
    size_t n = json_dumpb(o, buf, size, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (n == 0 || n >= size) {
        rc = tk_err_set(err, TK_EINVAL, "", "delay record does not fit in %zu bytes", size);
        goto out;
    }
    buf[n] = '\0';
    rc = (int)n;
out:
    json_decref(o);
    return rc;
}

int tk_expiration_record_decode(const char *buf, size_t len, tk_expiration_record_t *out,
                                tk_err_t *err)
{
    int rc = 0;
    json_t *o = NULL;
    json_error_t jerr;

    memset(out, 0, sizeof(*out));
    if (buf == NULL || len > TK_EXPIRATION_RECORD_MAX)
        return tk_err_set(err, TK_EINVAL, "", "delay record is empty or over %d bytes",
                          TK_EXPIRATION_RECORD_MAX);
    o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(o)) {
        rc = tk_err_set(err, TK_EINVAL, "", "delay record is not a JSON object");
        goto out;
    }
    const char *id = json_string_value(json_object_get(o, "orderId"));
    if (!tk_uuid_valid(id)) {
        rc = tk_err_set(err, TK_EINVAL, "orderId", "orderId must be a UUID");
        goto out;
    }
    const char *due = json_string_value(json_object_get(o, "dueAt"));
    if (due == NULL || tk_time_parse(due, &out->due_ms) != 0 || out->due_ms < 0) {
        rc = tk_err_set(err, TK_EINVAL, "dueAt", "dueAt must be an RFC 3339 time");
        goto out;
    }
    json_t *c = json_object_get(o, "correlationId");
    if (c != NULL) {
        if (!json_is_string(c) || json_string_length(c) >= sizeof(out->correlation_id) ||
            strlen(json_string_value(c)) != json_string_length(c)) {
            rc = tk_err_set(err, TK_EINVAL, "correlationId",
                            "correlationId must be a string of at most %zu bytes",
                            sizeof(out->correlation_id) - 1);
            goto out;
        }
        memcpy(out->correlation_id, json_string_value(c), json_string_length(c) + 1);
    }
    memcpy(out->order_id, id, TK_UUID_LEN + 1);
out:
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    json_decref(o);
    return rc;
}
