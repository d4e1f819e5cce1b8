/*
 * ev_envelope.h - the record value of every event on Kafka: a CloudEvents 1.0 envelope in
 * structured mode (DESIGN.md section 3), encoded as compact JSON with members in this order:
 *
 *   {"specversion":"1.0","id":<uuid>,"type":"ticket:created","source":"ticketing/tickets",
 *    "subject":<aggregate id>,"time":"2026-11-28T05:49:12.123Z",
 *    "datacontenttype":"application/json",
 *    "dataschema":"schemas/events/ticket.created.v1.json","aggregateversion":0,
 *    "correlationid":<request id>,"data":{...}}
 *
 * Schema: schemas/events/envelope.v1.json (and the type's schema for data).
 */
#ifndef EV_ENVELOPE_H
#define EV_ENVELOPE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "tk/err.h"
#include "tk/ids.h"

#define EV_SPECVERSION "1.0"
#define EV_DATACONTENTTYPE "application/json"
/** Largest encoded envelope, in bytes: bigger records are refused by encode and decode. */
#define EV_ENVELOPE_MAX_BYTES 65536

typedef struct ev_envelope {
    char id[TK_UUID_LEN + 1];      /* event id, uuid v4 */
    char type[48];                 /* "ticket:created" */
    char source[48];               /* "ticketing/tickets" */
    char subject[TK_UUID_LEN + 1]; /* aggregate id = Kafka key */
    char time[TK_TIME_LEN + 1];    /* RFC 3339 UTC ms */
    char dataschema[96];           /* "schemas/events/ticket.created.v1.json" */
    int64_t aggregateversion;
    char correlationid[64]; /* request id, may be "" */
    json_t *data;           /* owned reference, released by ev_envelope_release */
    /* The text ev_envelope_decode read, when it is already this envelope's encoding (current
     * schema version, nothing upcast), so a consumer that stores the event need not encode it
     * again: borrowed from decode's buffer and valid while that is; NULL otherwise (and for an
     * envelope built by ev_envelope_init). */
    const char *raw;
    size_t raw_len;
} ev_envelope_t;

/**
 * @brief Fill @p env for a new event: a fresh id (uuid v4), time = now, and source and
 *        dataschema (current version) from the catalog. @p data is checked with the type's
 *        typed decoder, so an event that its consumers would reject is never built.
 * @param env caller's struct; overwritten (release any previous content first). On failure it is
 *        zeroed, so ev_envelope_release on it is harmless.
 * @param type borrowed, a catalog name ("ticket:created").
 * @param subject borrowed, the aggregate id (a UUID), which is also the Kafka key.
 * @param aggregateversion >= 0, the aggregate's version after this event.
 * @param correlationid borrowed, the request id, may be NULL or "" (at most 63 bytes).
 * @param data consumed, even on failure: a JSON object, typically from ev_<event>_to_json. NULL
 *        (a failed to_json) gives TK_EINVAL.
 * @return 0, or TK_EINVAL for an unknown type, a bad subject, version or correlation id, or data
 *         that fails the type's codec (err says which member).
 * Thread: any.
 */
int ev_envelope_init(ev_envelope_t *env, const char *type, const char *subject,
                     int64_t aggregateversion, const char *correlationid, json_t *data,
                     tk_err_t *err);

/**
 * @brief Encode @p env as compact JSON, members in the order shown above, money printed with
 *        2 decimals at most (EV_JSON_DUMP_FLAGS). @p env is checked as decode would check it.
 * @param env borrowed.
 * @param out set on success. Ownership: owned, NUL-terminated, free with free().
 * @param len set on success to strlen(*out); may be NULL.
 * @return 0, or TK_EINVAL when @p env is not a valid event or encodes to more than
 *         EV_ENVELOPE_MAX_BYTES.
 */
int ev_envelope_encode(const ev_envelope_t *env, char **out, size_t *len, tk_err_t *err);

/**
 * @brief Strictly decode a record value. Rejects, with TK_EINVAL and a message naming the member:
 *        more than EV_ENVELOPE_MAX_BYTES, not JSON (or trailing garbage, duplicate keys), not an
 *        object, a missing or wrongly typed member, specversion other than "1.0",
 *        datacontenttype other than "application/json" (it may be absent), an unknown type, a
 *        source or dataschema that is not the type's, a bad UUID or time, an oversize string,
 *        a negative aggregateversion, data that is not an object or fails the type's codec.
 *        Unknown extra members (CloudEvents extensions) are ignored. When dataschema names an
 *        older version the type's upcaster runs first, and dataschema is then the current one.
 * @param buf borrowed, @p len bytes, need not be NUL-terminated.
 * @param out overwritten (release any previous content first). On success it owns a data
 *        reference: call ev_envelope_release. On failure it is zeroed and holds nothing.
 * @return 0, or TK_EINVAL. Never crashes on any input.
 */
int ev_envelope_decode(const char *buf, size_t len, ev_envelope_t *out, tk_err_t *err);

/**
 * @brief Release the data reference of @p env and zero it. Accepts NULL and a zeroed struct,
 *        and may be called twice.
 */
void ev_envelope_release(ev_envelope_t *env);

/**
 * @brief The schema version named by env->dataschema (for the Kafka header that repeats it).
 * @return the version (>= 1), or TK_EINVAL when env's type or dataschema is not valid.
 */
int ev_envelope_schema_version(const ev_envelope_t *env);

#endif
