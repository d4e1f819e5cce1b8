/*
 * ev_envelope.c - building, encoding and strictly decoding the CloudEvents envelope that every
 * record on an event topic carries.
 *
 * Why strict: the log is kept forever and read by projectors that must tell a poison record
 * (dead-letter it, DESIGN.md section 6) from an event, so decode accepts only what
 * schemas/events/envelope.v1.json plus the type's data schema accept, and reports the first
 * offending member. Anything decode accepts, encode reproduces and decode accepts again; the
 * fuzz driver tests/fuzz/fuzz_ev_envelope.c checks that property.
 *
 * Invariants:
 * - An ev_envelope_t either is zeroed or holds a valid event whose data matches the current
 *   schema version of its type: init validates data with the type's codec, decode upcasts and
 *   then validates, and both zero the struct on failure so nothing is left to release.
 * - Members are written in the order of DESIGN.md section 3 (jansson keeps insertion order), and
 *   money is printed with EV_JSON_DUMP_FLAGS so 19.99 reads 19.99 in the log.
 */
#include "ev_envelope.h"
#include "ev_catalog.h"
#include "ev_json_int.h"
#include "ev_money.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* True when the fixed buffer @p s of @p size bytes holds a NUL-terminated string. */
static bool terminated(const char *s, size_t size)
{
    return memchr(s, '\0', size) != NULL;
}

/* True when @p s is valid UTF-8 (jansson refuses to build a string otherwise). */
static bool utf8_valid(const char *s)
{
    json_t *tmp = json_string(s);
    bool ok = tmp != NULL;
    json_decref(tmp);
    return ok;
}

/* Validate @p data for @p t, prefixing any error with "data.". */
static int validate_data(const ev_type_info_t *t, const json_t *data, tk_err_t *err)
{
    int rc = ev__want_object(data, "data", err);
    if (rc != 0)
        return rc;
    rc = ev_catalog_validate(t, data, err);
    if (rc != 0)
        return ev__prefix_err(err, "data.");
    return 0;
}

int ev_envelope_init(ev_envelope_t *env, const char *type, const char *subject,
                     int64_t aggregateversion, const char *correlationid, json_t *data,
                     tk_err_t *err)
{
    int rc = 0;
    const ev_type_info_t *t = NULL;

    memset(env, 0, sizeof(*env));
    if (correlationid == NULL)
        correlationid = "";
    if ((t = ev_catalog_find(type)) == NULL) {
        rc = tk_err_set(err, TK_EINVAL, "type", "type %.60s is not a known event type",
                        type != NULL ? type : "(null)");
        goto out;
    }
    if (!tk_uuid_valid(subject)) {
        rc = tk_err_set(err, TK_EINVAL, "subject", "subject must be a UUID");
        goto out;
    }
    if (aggregateversion < 0) {
        rc = tk_err_set(err, TK_EINVAL, "aggregateversion", "aggregateversion must be >= 0");
        goto out;
    }
    if (strlen(correlationid) >= sizeof(env->correlationid) || !utf8_valid(correlationid)) {
        rc = tk_err_set(err, TK_EINVAL, "correlationid",
                        "correlationid must be UTF-8 of at most %zu bytes",
                        sizeof(env->correlationid) - 1);
        goto out;
    }
    if ((rc = validate_data(t, data, err)) != 0)
        goto out;

    tk_uuid_new(env->id);
    snprintf(env->type, sizeof(env->type), "%s", t->name);
    snprintf(env->source, sizeof(env->source), "%s", t->source);
    memcpy(env->subject, subject, TK_UUID_LEN + 1);
    tk_time_format(tk_now_ms(), env->time);
    if ((rc = ev_catalog_schema_path(t, t->version, env->dataschema, sizeof(env->dataschema))) !=
        0) {
        rc = tk_err_set(err, TK_EINTERNAL, "dataschema", "schema path of %s does not fit", t->name);
        goto out;
    }
    snprintf(env->correlationid, sizeof(env->correlationid), "%s", correlationid);
    env->aggregateversion = aggregateversion;
    env->data = data;
    data = NULL;
out:
    json_decref(data);
    if (rc != 0)
        memset(env, 0, sizeof(*env));
    return rc;
}

/* Check the members of a built envelope as decode checks them; *tout is the type's entry. */
static int check_envelope(const ev_envelope_t *env, const ev_type_info_t **tout, tk_err_t *err)
{
    const ev_type_info_t *t = NULL;
    int version = 0;

    if (!terminated(env->type, sizeof(env->type)) || (t = ev_catalog_find(env->type)) == NULL)
        return tk_err_set(err, TK_EINVAL, "type", "type is not a known event type");
    if (!tk_uuid_valid(env->id))
        return tk_err_set(err, TK_EINVAL, "id", "id must be a UUID");
    if (!terminated(env->source, sizeof(env->source)) || strcmp(env->source, t->source) != 0)
        return tk_err_set(err, TK_EINVAL, "source", "source must be %s for %s", t->source, t->name);
    if (!tk_uuid_valid(env->subject))
        return tk_err_set(err, TK_EINVAL, "subject", "subject must be a UUID");
    if (!ev__time_valid(env->time))
        return tk_err_set(err, TK_EINVAL, "time",
                          "time must be an RFC 3339 UTC time with "
                          "milliseconds");
    if (!terminated(env->dataschema, sizeof(env->dataschema)) ||
        ev_catalog_schema_version(t, env->dataschema, &version, err) != 0 || version != t->version)
        return tk_err_set(err, TK_EINVAL, "dataschema",
                          "dataschema must name the current schema (version %d) of %s", t->version,
                          t->name);
    if (env->aggregateversion < 0)
        return tk_err_set(err, TK_EINVAL, "aggregateversion", "aggregateversion must be >= 0");
    if (!terminated(env->correlationid, sizeof(env->correlationid)) ||
        !utf8_valid(env->correlationid))
        return tk_err_set(err, TK_EINVAL, "correlationid",
                          "correlationid must be UTF-8 of at "
                          "most 63 bytes");
    *tout = t;
    return 0;
}

int ev_envelope_encode(const ev_envelope_t *env, char **out, size_t *len, tk_err_t *err)
{
    int rc = 0;
    const ev_type_info_t *t = NULL;
    json_t *root = NULL;
    char *text = NULL;

    if (env == NULL || out == NULL) {
        rc = tk_err_set(err, TK_EINVAL, "", "no envelope to encode");
        goto out;
    }
    if ((rc = check_envelope(env, &t, err)) != 0)
        goto out;
    if ((rc = validate_data(t, env->data, err)) != 0)
        goto out;
    root = ev__object("specversion", json_string(EV_SPECVERSION), "id", ev__str(env->id), "type",
                      ev__str(env->type), "source", ev__str(env->source), "subject",
                      ev__str(env->subject), "time", ev__str(env->time), "datacontenttype",
                      json_string(EV_DATACONTENTTYPE), "dataschema", ev__str(env->dataschema),
                      "aggregateversion", json_integer(env->aggregateversion), "correlationid",
                      ev__str(env->correlationid), "data", json_incref(env->data), NULL);
    if (root == NULL || (text = json_dumps(root, EV_JSON_DUMP_FLAGS)) == NULL) {
        rc = tk_err_set(err, TK_EINVAL, "", "envelope cannot be encoded as JSON");
        goto out;
    }
    size_t n = strlen(text);
    if (n > EV_ENVELOPE_MAX_BYTES) {
        rc = tk_err_set(err, TK_EINVAL, "data",
                        "encoded event of %zu bytes is over the limit of "
                        "%d bytes",
                        n, EV_ENVELOPE_MAX_BYTES);
        goto out;
    }
    *out = text;
    text = NULL;
    if (len != NULL)
        *len = n;
out:
    free(text);
    json_decref(root);
    return rc;
}

int ev_envelope_decode(const char *buf, size_t len, ev_envelope_t *out, tk_err_t *err)
{
    int rc = 0;
    json_t *root = NULL, *data = NULL;
    const json_t *d = NULL;
    const ev_type_info_t *t = NULL;
    json_error_t jerr;
    char small[32];
    int version = 0;

    memset(out, 0, sizeof(*out));
    if (buf == NULL || len == 0) {
        rc = tk_err_set(err, TK_EINVAL, "", "empty record");
        goto out;
    }
    if (len > EV_ENVELOPE_MAX_BYTES) {
        rc = tk_err_set(err, TK_EINVAL, "", "record of %zu bytes is over the limit of %d bytes",
                        len, EV_ENVELOPE_MAX_BYTES);
        goto out;
    }
    /* Duplicate keys are refused: readers that keep the first and the last would disagree. The
     * fast parser builds the same tree for the common records and leaves the rest (and every
     * error message) to jansson. */
    if ((root = ev__json_load_fast(buf, len)) == NULL &&
        (root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL) {
        rc = tk_err_set(err, TK_EINVAL, "", "not JSON: %s at byte %d", jerr.text, jerr.position);
        goto out;
    }
    if ((rc = ev__want_object(root, "envelope", err)) != 0)
        goto out;
    if ((rc = ev__get_string(root, "specversion", "specversion", small, sizeof(small), 0, err)) !=
        0)
        goto out;
    if (strcmp(small, EV_SPECVERSION) != 0) {
        rc = tk_err_set(err, TK_EINVAL, "specversion", "specversion must be \"1.0\"");
        goto out;
    }
    if ((rc = ev__get_uuid(root, "id", "id", out->id, err)) != 0)
        goto out;
    if ((rc = ev__get_string(root, "type", "type", out->type, sizeof(out->type), 1, err)) != 0)
        goto out;
    if ((t = ev_catalog_find(out->type)) == NULL) {
        rc = tk_err_set(err, TK_EINVAL, "type", "type %s is not a known event type", out->type);
        goto out;
    }
    if ((rc = ev__get_string(root, "source", "source", out->source, sizeof(out->source), 1, err)) !=
        0)
        goto out;
    if (strcmp(out->source, t->source) != 0) {
        rc = tk_err_set(err, TK_EINVAL, "source", "source must be %s for %s", t->source, t->name);
        goto out;
    }
    if ((rc = ev__get_uuid(root, "subject", "subject", out->subject, err)) != 0)
        goto out;
    if ((rc = ev__get_time(root, "time", "time", out->time, err)) != 0)
        goto out;
    if (ev__has(root, "datacontenttype")) {
        if ((rc = ev__get_string(root, "datacontenttype", "datacontenttype", small, sizeof(small),
                                 0, err)) != 0)
            goto out;
        if (strcmp(small, EV_DATACONTENTTYPE) != 0) {
            rc = tk_err_set(err, TK_EINVAL, "datacontenttype",
                            "datacontenttype must be \"" EV_DATACONTENTTYPE "\" when present");
            goto out;
        }
    }
    if ((rc = ev__get_string(root, "dataschema", "dataschema", out->dataschema,
                             sizeof(out->dataschema), 1, err)) != 0)
        goto out;
    if ((rc = ev_catalog_schema_version(t, out->dataschema, &version, err)) != 0)
        goto out;
    if ((rc = ev__get_int(root, "aggregateversion", "aggregateversion", 0, INT64_MAX,
                          &out->aggregateversion, err)) != 0)
        goto out;
    if (ev__has(root, "correlationid") &&
        (rc = ev__get_string(root, "correlationid", "correlationid", out->correlationid,
                             sizeof(out->correlationid), 0, err)) != 0)
        goto out;
    if ((rc = ev__get_object(root, "data", "data", &d, err)) != 0)
        goto out;
    data = json_incref((json_t *)d);
    if (version != t->version) {
        if ((rc = ev_catalog_upcast(t, &data, version, err)) != 0)
            goto out;
        if ((rc = ev_catalog_schema_path(t, t->version, out->dataschema,
                                         sizeof(out->dataschema))) != 0) {
            rc = tk_err_set(err, TK_EINTERNAL, "dataschema", "schema path does not fit");
            goto out;
        }
    }
    if ((rc = validate_data(t, data, err)) != 0)
        goto out;
    out->data = data;
    data = NULL;
    if (version == t->version) {
        out->raw = buf;
        out->raw_len = len;
    }
out:
    json_decref(data);
    json_decref(root);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

void ev_envelope_release(ev_envelope_t *env)
{
    if (env == NULL)
        return;
    json_decref(env->data);
    memset(env, 0, sizeof(*env));
}

int ev_envelope_schema_version(const ev_envelope_t *env)
{
    const ev_type_info_t *t = NULL;
    int version = 0;
    if (env == NULL || !terminated(env->type, sizeof(env->type)) ||
        (t = ev_catalog_find(env->type)) == NULL ||
        !terminated(env->dataschema, sizeof(env->dataschema)) ||
        ev_catalog_schema_version(t, env->dataschema, &version, NULL) != 0)
        return TK_EINVAL;
    return version;
}
