/*
 * ev_catalog.c - the table of event types, and the lookups, schema paths and upcasting built on
 * it.
 *
 * Why one table: topic, source, schema file and codec of a type must never disagree between the
 * producer that writes an event and the consumers that read it years later, so they are declared
 * once, here, and tests/contract checks this table against schemas/events/ (every type has its
 * schema file, every sample validates). Adding a type is one line here, one codec, one schema.
 *
 * Versioning: an incompatible data shape is a new schema version (bump .version, add the file
 * <schema>.v<N>.json, write .upcast for the older ones). Consumers always see the current shape:
 * ev_envelope_decode upcasts before it validates. The decoders are called through small adapters
 * because calling a function through a pointer of another type is undefined behaviour in C.
 */
#include "ev_catalog.h"
#include "ev_expiration.h"
#include "ev_order.h"
#include "ev_payment.h"
#include "ev_ticket.h"
#include "ev_user.h"

#include <stdalign.h>
#include <stdio.h>
#include <string.h>

const char *const ev_topics[EV_TOPIC_COUNT + 1] = {
    EV_TOPIC_USERS,
    EV_TOPIC_TICKETS,
    EV_TOPIC_ORDERS,
    EV_TOPIC_PAYMENTS,
    EV_TOPIC_EXPIRATIONS,
    EV_TOPIC_EXPIRATION_DELAY,
    NULL,
};

/* Adapters from the typed codecs to the table's void * signatures. */
#define EV_ADAPT(fn, type)                                                                         \
    static int fn##_from(const json_t *data, void *out, tk_err_t *err)                             \
    {                                                                                              \
        return ev_##fn##_from_json(data, (type *)out, err);                                        \
    }                                                                                              \
    static json_t *fn##_to(const void *in)                                                         \
    {                                                                                              \
        return ev_##fn##_to_json((const type *)in);                                                \
    }

EV_ADAPT(user_registered, ev_user_registered_t)
EV_ADAPT(ticket_created, ev_ticket_t)
EV_ADAPT(ticket_updated, ev_ticket_t)
EV_ADAPT(order_created, ev_order_created_t)
EV_ADAPT(order_cancelled, ev_order_ref_t)
EV_ADAPT(order_completed, ev_order_ref_t)
EV_ADAPT(expiration_complete, ev_expiration_complete_t)
EV_ADAPT(payment_created, ev_payment_created_t)
EV_ADAPT(payment_refunded, ev_payment_refunded_t)
EV_ADAPT(payment_expired, ev_payment_expired_t)

#define EV_TYPE(name_, topic_, schema_, fn, type)                                                  \
    {                                                                                              \
        .name = name_, .topic = topic_, .source = "ticketing/" topic_, .schema = schema_,          \
        .version = 1, .data_size = sizeof(type), .decode = fn##_from, .encode = fn##_to,           \
        .upcast = NULL,                                                                            \
    }

static const ev_type_info_t catalog[] = {
    EV_TYPE("user:registered", EV_TOPIC_USERS, "user.registered", user_registered,
            ev_user_registered_t),
    EV_TYPE("ticket:created", EV_TOPIC_TICKETS, "ticket.created", ticket_created, ev_ticket_t),
    EV_TYPE("ticket:updated", EV_TOPIC_TICKETS, "ticket.updated", ticket_updated, ev_ticket_t),
    EV_TYPE("order:created", EV_TOPIC_ORDERS, "order.created", order_created, ev_order_created_t),
    EV_TYPE("order:cancelled", EV_TOPIC_ORDERS, "order.cancelled", order_cancelled, ev_order_ref_t),
    EV_TYPE("order:completed", EV_TOPIC_ORDERS, "order.completed", order_completed, ev_order_ref_t),
    EV_TYPE("expiration:complete", EV_TOPIC_EXPIRATIONS, "expiration.complete", expiration_complete,
            ev_expiration_complete_t),
    EV_TYPE("payment:created", EV_TOPIC_PAYMENTS, "payment.created", payment_created,
            ev_payment_created_t),
    EV_TYPE("payment:refunded", EV_TOPIC_PAYMENTS, "payment.refunded", payment_refunded,
            ev_payment_refunded_t),
    EV_TYPE("payment:expired", EV_TOPIC_PAYMENTS, "payment.expired", payment_expired,
            ev_payment_expired_t),
};
#define CATALOG_COUNT (sizeof(catalog) / sizeof(catalog[0]))

/* The scratch buffer of ev_catalog_validate must hold every decoded struct. */
_Static_assert(sizeof(ev_user_registered_t) <= EV_DATA_MAX_SIZE, "EV_DATA_MAX_SIZE");
_Static_assert(sizeof(ev_ticket_t) <= EV_DATA_MAX_SIZE, "EV_DATA_MAX_SIZE");
_Static_assert(sizeof(ev_order_created_t) <= EV_DATA_MAX_SIZE, "EV_DATA_MAX_SIZE");
_Static_assert(sizeof(ev_order_ref_t) <= EV_DATA_MAX_SIZE, "EV_DATA_MAX_SIZE");
_Static_assert(sizeof(ev_expiration_complete_t) <= EV_DATA_MAX_SIZE, "EV_DATA_MAX_SIZE");
_Static_assert(sizeof(ev_payment_created_t) <= EV_DATA_MAX_SIZE, "EV_DATA_MAX_SIZE");
_Static_assert(sizeof(ev_payment_refunded_t) <= EV_DATA_MAX_SIZE, "EV_DATA_MAX_SIZE");
_Static_assert(sizeof(ev_payment_expired_t) <= EV_DATA_MAX_SIZE, "EV_DATA_MAX_SIZE");

const ev_type_info_t *ev_catalog_find(const char *type)
{
    for (size_t i = 0; type != NULL && i < CATALOG_COUNT; i++)
        if (strcmp(catalog[i].name, type) == 0)
            return &catalog[i];
    return NULL;
}

size_t ev_catalog_count(void)
{
    return CATALOG_COUNT;
}

const ev_type_info_t *ev_catalog_at(size_t i)
{
    return i < CATALOG_COUNT ? &catalog[i] : NULL;
}

const char *ev_topic_of(const char *type)
{
    const ev_type_info_t *t = ev_catalog_find(type);
    return t != NULL ? t->topic : NULL;
}

int ev_catalog_schema_path(const ev_type_info_t *t, int version, char *buf, size_t size)
{
    if (t == NULL || version < 1 || buf == NULL || size == 0)
        return TK_EINVAL;
    int n = snprintf(buf, size, EV_SCHEMA_DIR "%s.v%d.json", t->schema, version);
    if (n < 0 || (size_t)n >= size) {
        buf[0] = '\0';
        return TK_EINVAL;
    }
    return 0;
}

int ev_catalog_schema_version(const ev_type_info_t *t, const char *path, int *version,
                              tk_err_t *err)
{
    const char *p = path;
    size_t dir_len = strlen(EV_SCHEMA_DIR), stem_len = strlen(t->schema);
    int v = 0, ndigits = 0;

    if (p == NULL || strncmp(p, EV_SCHEMA_DIR, dir_len) != 0)
        goto bad;
    p += dir_len;
    if (strncmp(p, t->schema, stem_len) != 0)
        goto bad;
    p += stem_len;
    if (p[0] != '.' || p[1] != 'v')
        goto bad;
    /* 1 .. 9999, no leading zero, so each version has exactly one spelling. */
    for (p += 2; *p >= '0' && *p <= '9' && ndigits < 5; p++, ndigits++)
        v = v * 10 + (*p - '0');
    if (ndigits == 0 || ndigits > 4 || v < 1 || (ndigits > 1 && p[-ndigits] == '0'))
        goto bad;
    if (strcmp(p, ".json") != 0)
        goto bad;
    *version = v;
    return 0;
bad:
    return tk_err_set(err, TK_EINVAL, "dataschema",
                      "dataschema must be \"" EV_SCHEMA_DIR "%s.v<N>.json\" for type %s", t->schema,
                      t->name);
}

int ev_catalog_validate(const ev_type_info_t *t, const json_t *data, tk_err_t *err)
{
    alignas(max_align_t) unsigned char scratch[EV_DATA_MAX_SIZE];
    if (t == NULL || t->decode == NULL || t->data_size > sizeof(scratch))
        return tk_err_set(err, TK_EINVAL, "type", "no decoder for this event type");
    return t->decode(data, scratch, err);
}

int ev_catalog_upcast(const ev_type_info_t *t, json_t **data, int from_version, tk_err_t *err)
{
    if (from_version == t->version)
        return 0;
    if (from_version < 1 || from_version > t->version)
        return tk_err_set(err, TK_EINVAL, "dataschema",
                          "%s schema version %d is not known (this build knows 1..%d)", t->name,
                          from_version, t->version);
    if (t->upcast == NULL)
        return tk_err_set(err, TK_EINVAL, "dataschema", "%s has no upcaster from version %d",
                          t->name, from_version);
    json_t *up = t->upcast(*data, from_version);
    if (up == NULL || !json_is_object(up)) {
        json_decref(up);
        return tk_err_set(err, TK_EINVAL, "data", "%s data of version %d cannot be upcast to %d",
                          t->name, from_version, t->version);
    }
    json_decref(*data);
    *data = up;
    return 0;
}
