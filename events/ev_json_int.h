/*
 * ev_json_int.h - private helpers shared by the codecs of events/ (SQLite's *Int.h habit): strict
 * readers of one object member each. Not part of the contract; other layers use the public
 * ev_*.h headers only.
 *
 * Every reader fills @p err with field = @p path and a message that starts with @p path
 * ("ticket.id must be a UUID"), so the envelope can prefix "data." to both and the text stays
 * readable in a dead-letter row. Strings are measured in bytes, NUL bytes are rejected, and an
 * output buffer is written only when the whole member is valid.
 */
#ifndef EV_JSON_INT_H
#define EV_JSON_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tk/err.h"
#include "tk/ids.h"

/** @brief TK_EINVAL unless @p v is a JSON object. @p v borrowed, may be NULL. */
int ev__want_object(const json_t *v, const char *path, tk_err_t *err);

/** @brief True when object @p obj has member @p key (any value, null included). */
bool ev__has(const json_t *obj, const char *key);

/**
 * @brief Copy the required string member @p key of @p obj into @p out.
 * @param size the size of @p out: the string must have at most size - 1 bytes.
 * @param min_len minimum length in bytes (1 for "non-empty").
 * @return 0, or TK_EINVAL when the member is missing, not a string, too short, too long or
 *         holds a NUL byte; @p out is then left untouched.
 */
int ev__get_string(const json_t *obj, const char *key, const char *path, char *out, size_t size,
                   size_t min_len, tk_err_t *err);

/** @brief Required member that is a canonical UUID (tk_uuid_valid), copied into @p out. */
int ev__get_uuid(const json_t *obj, const char *key, const char *path, char out[TK_UUID_LEN + 1],
                 tk_err_t *err);

/** @brief Required member that is a timestamp in the contract's form (ev__time_valid). */
int ev__get_time(const json_t *obj, const char *key, const char *path, char out[TK_TIME_LEN + 1],
                 tk_err_t *err);

/** @brief Required member that is a JSON integer (not a real such as 1.0) in [min, max]. */
int ev__get_int(const json_t *obj, const char *key, const char *path, int64_t min, int64_t max,
                int64_t *out, tk_err_t *err);

/** @brief Required member that is a JSON number of money (ev_money_from_json) > 0 cents. */
int ev__get_price(const json_t *obj, const char *key, const char *path, int64_t *cents,
                  tk_err_t *err);

/** @brief Required member that is a JSON object; *@p out is borrowed from @p obj. */
int ev__get_object(const json_t *obj, const char *key, const char *path, const json_t **out,
                   tk_err_t *err);

/* ---- reading an event's data by a table of its members ---- */

typedef enum ev__kind {
    EV__K_UUID,   /* ev__get_uuid into char[TK_UUID_LEN + 1] */
    EV__K_TIME,   /* ev__get_time into char[TK_TIME_LEN + 1] */
    EV__K_STRING, /* ev__get_string into char[size], at least min bytes */
    EV__K_INT,    /* ev__get_int into int64_t, in [min, max] */
    EV__K_PRICE,  /* ev__get_price into int64_t cents */
    EV__K_READ,   /* read(obj, at, err): a member with its own rule (an enum name, ...) */
} ev__kind_t;

/* One member of an event's data and where its value goes in the typed struct. */
typedef struct ev__field {
    const char *in;   /* NULL: a member of data; else of data's object member @p in ("ticket") */
    const char *key;  /* the member's name */
    const char *path; /* its name in errors: key, or "ticket.id" */
    ev__kind_t kind;
    size_t offset; /* offsetof the typed struct's member */
    size_t size;   /* EV__K_STRING: the buffer's size */
    int64_t min, max;
    int (*read)(const json_t *obj, void *at, tk_err_t *err); /* EV__K_READ */
} ev__field_t;

#define EV__F_UUID(type, key_, member)                                                             \
    {                                                                                              \
        .key = key_, .path = key_, .kind = EV__K_UUID, .offset = offsetof(type, member)            \
    }
#define EV__F_TIME(type, key_, member)                                                             \
    {                                                                                              \
        .key = key_, .path = key_, .kind = EV__K_TIME, .offset = offsetof(type, member)            \
    }
#define EV__F_STRING(type, key_, member, min_len)                                                  \
    {                                                                                              \
        .key = key_, .path = key_, .kind = EV__K_STRING, .offset = offsetof(type, member),         \
        .size = sizeof(((type *)0)->member), .min = (min_len)                                      \
    }
#define EV__F_INT(type, key_, member, lo, hi)                                                      \
    {                                                                                              \
        .key = key_, .path = key_, .kind = EV__K_INT, .offset = offsetof(type, member),            \
        .min = (lo), .max = (hi)                                                                   \
    }
#define EV__F_PRICE(type, key_, member)                                                            \
    {                                                                                              \
        .key = key_, .path = key_, .kind = EV__K_PRICE, .offset = offsetof(type, member)           \
    }
/* A member of the object member @p in_ of data, e.g. ticket.id. */
#define EV__F_IN(in_, path_, kind_, type, key_, member)                                            \
    {                                                                                              \
        .in = in_, .key = key_, .path = path_, .kind = kind_, .offset = offsetof(type, member)     \
    }
#define EV__F_READ(type, key_, member, fn)                                                         \
    {                                                                                              \
        .key = key_, .path = key_, .kind = EV__K_READ, .offset = offsetof(type, member),           \
        .read = fn                                                                                 \
    }

/**
 * @brief Clear *@p out, then read @p data (which must be an object) member by member as the
 *        table @p fields says, in its order: the first failure is the error.
 * @return 0, or TK_EINVAL with @p err naming the member; *@p out is then partly filled.
 */
int ev__decode(const json_t *data, const ev__field_t *fields, size_t nfields, void *out,
               size_t out_size, tk_err_t *err);

/* ev__decode with the table's and the output's sizes: EV__DECODE(data, fields, out, err). */
#define EV__DECODE(data, fields, out, err)                                                         \
    ev__decode((data), (fields), sizeof(fields) / sizeof((fields)[0]), (out), sizeof(*(out)), (err))

/**
 * @brief True when @p s is a timestamp exactly as tk_time_format writes it,
 *        "YYYY-MM-DDTHH:MM:SS.mmmZ", with a real calendar date (no Feb 30, no leap second).
 */
bool ev__time_valid(const char *s);

/**
 * @brief Prefix field and message of an error already in @p err with @p prefix ("data.").
 * @return err->code (or TK_EINVAL when @p err is NULL), for `return ev__prefix_err(...)`.
 */
int ev__prefix_err(tk_err_t *err, const char *prefix);

/**
 * @brief Build an object from alternating key / value pairs ending with a NULL key. Each value
 *        is consumed, even on failure; a NULL value (json_string of invalid UTF-8, a failed
 *        nested build) fails the whole build, so a codec never emits half an event.
 * @return owned new reference, or NULL.
 */
json_t *ev__object(const char *key, json_t *value, ...);

/** @brief json_string, or NULL when @p s is NULL or not UTF-8. Ownership: owned. */
json_t *ev__str(const char *s);

/**
 * @brief The object in @p buf (@p len bytes) as json_loadb(buf, len, JSON_REJECT_DUPLICATES)
 *        would build it, when @p buf is within the subset this fast parser reads (ev_json_fast.c:
 *        printable ASCII strings without escapes, short integers, decimals without exponent);
 *        NULL for anything else, valid JSON or not: parse that with json_loadb, which judges it.
 * @return owned new reference, or NULL. Ownership: @p buf borrowed. Thread: any.
 */
json_t *ev__json_load_fast(const char *buf, size_t len);

#endif
