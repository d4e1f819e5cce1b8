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

#endif
