/*
 * ev_json.c - strict member readers and a failure-safe object builder for the event codecs.
 *
 * Why strict: events are the system's history and are read back years later by code that was
 * not written yet, so a codec accepts exactly what its JSON Schema in schemas/events/ accepts (or
 * less), never "whatever happens to parse". Members are checked for their exact JSON type (1.0
 * is not an integer, "5" is not a number), strings for their byte length against the fixed
 * buffers of the typed structs, and ids and timestamps for their one canonical form.
 *
 * Invariant: a reader writes its output only on success, and every failure sets @p err with a
 * message that starts with the member's path, so callers can simply `return` the code.
 */
#include "ev_json_int.h"
#include "ev_money.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int ev__want_object(const json_t *v, const char *path, tk_err_t *err)
{
    if (v == NULL)
        return tk_err_set(err, TK_EINVAL, path, "%s is required", path);
    if (!json_is_object(v))
        return tk_err_set(err, TK_EINVAL, path, "%s must be an object", path);
    return 0;
}

bool ev__has(const json_t *obj, const char *key)
{
    return json_object_get(obj, key) != NULL;
}

/* The member @p key of @p obj as a string without NUL bytes, or an error. */
static int string_member(const json_t *obj, const char *key, const char *path, const char **s,
                         size_t *len, tk_err_t *err)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return tk_err_set(err, TK_EINVAL, path, "%s is required", path);
    if (!json_is_string(v))
        return tk_err_set(err, TK_EINVAL, path, "%s must be a string", path);
    *s = json_string_value(v);
    *len = json_string_length(v);
    /* A json_t built with json_stringn may hold NUL bytes; C strings cannot. */
    if (memchr(*s, '\0', *len) != NULL)
        return tk_err_set(err, TK_EINVAL, path, "%s must not contain NUL characters", path);
    return 0;
}

int ev__get_string(const json_t *obj, const char *key, const char *path, char *out, size_t size,
                   size_t min_len, tk_err_t *err)
{
    const char *s = NULL;
    size_t len = 0;
    int rc = string_member(obj, key, path, &s, &len, err);
    if (rc != 0)
        return rc;
    if (len >= size)
        return tk_err_set(err, TK_EINVAL, path, "%s must be at most %zu bytes", path, size - 1);
    if (len < min_len && min_len == 1)
        return tk_err_set(err, TK_EINVAL, path, "%s must not be empty", path);
    if (len < min_len)
        return tk_err_set(err, TK_EINVAL, path, "%s must be at least %zu bytes", path, min_len);
    memcpy(out, s, len);
    out[len] = '\0';
    return 0;
}

/* A string member of exactly @p len bytes that @p valid accepts, copied with its NUL. */
static int fixed_member(const json_t *obj, const char *key, const char *path, size_t want,
                        bool (*valid)(const char *), const char *what, char *out, tk_err_t *err)
{
    const char *s = NULL;
    size_t len = 0;
    int rc = string_member(obj, key, path, &s, &len, err);
    if (rc != 0)
        return rc;
    if (len != want || !valid(s))
        return tk_err_set(err, TK_EINVAL, path, "%s must be %s", path, what);
    memcpy(out, s, want + 1);
    return 0;
}

int ev__get_uuid(const json_t *obj, const char *key, const char *path, char out[TK_UUID_LEN + 1],
                 tk_err_t *err)
{
    return fixed_member(obj, key, path, TK_UUID_LEN, tk_uuid_valid, "a UUID", out, err);
}

int ev__get_time(const json_t *obj, const char *key, const char *path, char out[TK_TIME_LEN + 1],
                 tk_err_t *err)
{
    return fixed_member(obj, key, path, TK_TIME_LEN, ev__time_valid,
                        "an RFC 3339 UTC time with milliseconds (YYYY-MM-DDTHH:MM:SS.mmmZ)", out,
                        err);
}

int ev__get_int(const json_t *obj, const char *key, const char *path, int64_t min, int64_t max,
                int64_t *out, tk_err_t *err)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return tk_err_set(err, TK_EINVAL, path, "%s is required", path);
    if (!json_is_integer(v))
        return tk_err_set(err, TK_EINVAL, path, "%s must be an integer", path);
    json_int_t i = json_integer_value(v);
    if (min == max && i != min)
        return tk_err_set(err, TK_EINVAL, path, "%s must be %lld", path, (long long)min);
    if (i < min)
        return tk_err_set(err, TK_EINVAL, path, "%s must be >= %lld", path, (long long)min);
    if (i > max)
        return tk_err_set(err, TK_EINVAL, path, "%s must be <= %lld", path, (long long)max);
    *out = (int64_t)i;
    return 0;
}

int ev__get_price(const json_t *obj, const char *key, const char *path, int64_t *cents,
                  tk_err_t *err)
{
    const json_t *v = json_object_get(obj, key);
    if (v == NULL)
        return tk_err_set(err, TK_EINVAL, path, "%s is required", path);
    tk_err_t merr = {0};
    int64_t c = 0;
    if (ev_money_from_json(v, false, &c, &merr) != 0)
        return tk_err_set(err, TK_EINVAL, path, "%s %s", path, merr.message);
    if (c <= 0)
        return tk_err_set(err, TK_EINVAL, path, "%s must be greater than 0", path);
    *cents = c;
    return 0;
}

int ev__get_object(const json_t *obj, const char *key, const char *path, const json_t **out,
                   tk_err_t *err)
{
    const json_t *v = json_object_get(obj, key);
    int rc = ev__want_object(v, path, err);
    if (rc != 0)
        return rc;
    *out = v;
    return 0;
}

int ev__decode(const json_t *data, const ev__field_t *fields, size_t nfields, void *out,
               size_t out_size, tk_err_t *err)
{
    memset(out, 0, out_size);
    int rc = ev__want_object(data, "data", err);
    for (size_t i = 0; rc == 0 && i < nfields; i++) {
        const ev__field_t *f = &fields[i];
        const json_t *obj = data;
        if (f->in != NULL && (rc = ev__get_object(data, f->in, f->in, &obj, err)) != 0)
            break;
        char *at = (char *)out + f->offset;
        int64_t n = 0;
        switch (f->kind) {
        case EV__K_UUID:
            rc = ev__get_uuid(obj, f->key, f->path, at, err);
            break;
        case EV__K_TIME:
            rc = ev__get_time(obj, f->key, f->path, at, err);
            break;
        case EV__K_STRING:
            rc = ev__get_string(obj, f->key, f->path, at, f->size, (size_t)f->min, err);
            break;
        case EV__K_INT:
        case EV__K_PRICE:
            rc = f->kind == EV__K_INT ? ev__get_int(obj, f->key, f->path, f->min, f->max, &n, err)
                                      : ev__get_price(obj, f->key, f->path, &n, err);
            if (rc == 0)
                memcpy(at, &n, sizeof(n));
            break;
        case EV__K_READ:
            rc = f->read(obj, at, err);
            break;
        }
    }
    return rc;
}

static int two_digits(const char *s)
{
    if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
        return -1;
    return (s[0] - '0') * 10 + (s[1] - '0');
}

bool ev__time_valid(const char *s)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    /* Positions of the separators of "YYYY-MM-DDTHH:MM:SS.mmmZ". */
    if (s == NULL || strlen(s) != TK_TIME_LEN)
        return false;
    if (s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
        s[19] != '.' || s[23] != 'Z')
        return false;
    int yh = two_digits(s), yl = two_digits(s + 2), mo = two_digits(s + 5);
    int d = two_digits(s + 8), h = two_digits(s + 11), mi = two_digits(s + 14);
    int se = two_digits(s + 17), ms_h = two_digits(s + 20);
    if (yh < 0 || yl < 0 || mo < 1 || mo > 12 || d < 1 || h < 0 || h > 23 || mi < 0 || mi > 59 ||
        se < 0 || se > 59 || ms_h < 0 || s[22] < '0' || s[22] > '9')
        return false;
    int y = yh * 100 + yl;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    int max_day = mdays[mo - 1] + (mo == 2 && leap ? 1 : 0);
    return d <= max_day;
}

int ev__prefix_err(tk_err_t *err, const char *prefix)
{
    if (err == NULL)
        return TK_EINVAL;
    char field[sizeof(err->field)];
    char message[sizeof(err->message)];
    /* Truncation only shortens a diagnostic; the code is what callers act on. */
    snprintf(field, sizeof(field), "%s%s", prefix, err->field);
    snprintf(message, sizeof(message), "%s%s", prefix, err->message);
    memcpy(err->field, field, sizeof(field));
    memcpy(err->message, message, sizeof(message));
    return err->code != 0 ? err->code : TK_EINVAL;
}

json_t *ev__object(const char *key, json_t *value, ...)
{
    json_t *obj = json_object();
    bool ok = obj != NULL;
    va_list ap;
    va_start(ap, value);
    while (key != NULL) {
        /* json_object_set_new consumes value even when it fails; a NULL value is a failure. */
        if (value == NULL || !ok) {
            json_decref(value);
            ok = false;
        } else if (json_object_set_new(obj, key, value) != 0) {
            ok = false;
        }
        key = va_arg(ap, const char *);
        if (key != NULL)
            value = va_arg(ap, json_t *);
    }
    va_end(ap);
    if (!ok) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

json_t *ev__str(const char *s)
{
    return s == NULL ? NULL : json_string(s);
}
