/*
 * ev_catalog.h - the one table of event types of the contract (DESIGN.md section 3): for each
 * type its topic, CloudEvents source, JSON Schema file and version, typed codec and upcaster.
 * Every other module asks this table rather than spelling topic or schema names itself.
 *
 * Thread: any; the table is immutable static data.
 */
#ifndef EV_CATALOG_H
#define EV_CATALOG_H

#include <jansson.h>
#include <stddef.h>

#include "tk/err.h"

/* Topics (DESIGN.md section 3): one per aggregate type, key = aggregate id. */
#define EV_TOPIC_USERS "users"
#define EV_TOPIC_TICKETS "tickets"
#define EV_TOPIC_ORDERS "orders"
#define EV_TOPIC_PAYMENTS "payments"
#define EV_TOPIC_EXPIRATIONS "expirations"
#define EV_TOPIC_EXPIRATION_DELAY "expiration.delay" /* the scheduler's internal topic */
/* The scheduler's dead letters (records it cannot decode): not an event topic, so not counted in
 * EV_TOPIC_COUNT; `ticketing topics` creates it (platform/kafka.c). */
#define EV_TOPIC_EXPIRATION_DEAD "expiration.deadletter"
#define EV_TOPIC_COUNT 6

/** Every topic `ticketing topics` creates, EV_TOPIC_COUNT names then NULL. Static storage. */
extern const char *const ev_topics[EV_TOPIC_COUNT + 1];

/** Directory of the schemas, relative to the repository root; also the dataschema prefix. */
#define EV_SCHEMA_DIR "schemas/events/"

/**
 * An upcaster: turns the data of an older schema version into the current version's shape.
 * @param old_data borrowed, the data as written with schema version @p from_version.
 * @param from_version 1 .. current version - 1.
 * @return Ownership: owned new reference of the current shape, or NULL when it cannot.
 */
typedef json_t *(*ev_upcast_fn)(const json_t *old_data, int from_version);

/** One event type. All pointers are static storage. */
typedef struct ev_type_info {
    const char *name;   /* "ticket:created" */
    const char *topic;  /* "tickets" */
    const char *source; /* "ticketing/tickets" */
    const char *schema; /* "ticket.created": file EV_SCHEMA_DIR "<schema>.v<version>.json" */
    int version;        /* current schema version, >= 1 */
    size_t data_size;   /* sizeof the typed struct that decode fills and encode reads */
    /** The typed decoder (e.g. ev_ticket_created_from_json): @p out points to data_size bytes. */
    int (*decode)(const json_t *data, void *out, tk_err_t *err);
    /** The typed encoder (e.g. ev_ticket_created_to_json). Ownership: owned new reference. */
    json_t *(*encode)(const void *in);
    ev_upcast_fn upcast; /* NULL while the type has only version 1 */
} ev_type_info_t;

/** Largest data_size in the catalog: a buffer this big can hold any decoded event. */
#define EV_DATA_MAX_SIZE 1024

/** @brief The entry of @p type ("order:created"), or NULL when unknown (or NULL). Borrowed. */
const ev_type_info_t *ev_catalog_find(const char *type);

/** @brief Number of event types. */
size_t ev_catalog_count(void);

/** @brief Entry @p i in 0 .. ev_catalog_count() - 1 (NULL beyond). Borrowed, static. */
const ev_type_info_t *ev_catalog_at(size_t i);

/** @brief The topic of @p type, or NULL when the type is unknown. Static storage. */
const char *ev_topic_of(const char *type);

/**
 * @brief Write the dataschema of @p t at @p version, "schemas/events/ticket.created.v1.json".
 * @param buf caller's buffer of @p size bytes (96 is always enough).
 * @return 0, or TK_EINVAL when it does not fit or @p version < 1.
 */
int ev_catalog_schema_path(const ev_type_info_t *t, int version, char *buf, size_t size);

/**
 * @brief The version named by a dataschema of @p t: "schemas/events/<t->schema>.v<N>.json".
 * @return 0 with *@p version = N (1 .. 9999, any N, including newer than t->version), or
 *         TK_EINVAL when @p path is not a schema path of @p t.
 */
int ev_catalog_schema_version(const ev_type_info_t *t, const char *path, int *version,
                              tk_err_t *err);

/**
 * @brief Check @p data against @p t's typed decoder (decoding into a scratch buffer).
 * @param data borrowed. @return 0, or the decoder's TK_EINVAL and message.
 */
int ev_catalog_validate(const ev_type_info_t *t, const json_t *data, tk_err_t *err);

/**
 * @brief Bring @p *data from schema version @p from_version to @p t's current version.
 * @param data in/out: on success *data is replaced by the upcast data (the old reference is
 *        released) or left as is when already current; on failure *data is unchanged and still
 *        the caller's.
 * @return 0, or TK_EINVAL when @p from_version is < 1 or newer than t->version, when no upcaster
 *         exists, or when the upcaster fails or does not return an object.
 */
int ev_catalog_upcast(const ev_type_info_t *t, json_t **data, int from_version, tk_err_t *err);

#endif
