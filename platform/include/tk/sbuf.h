/*
 * sbuf.h - a growable byte string for building large texts (SQL parameters made of thousands of
 * rows) without a JSON tree: appends amortise to O(1) and nothing is parsed back.
 *
 * A tk_sbuf_t is a plain value: zero-initialise it ({0}), append, read data/len, then
 * tk_sbuf_free. data is always NUL-terminated once anything was appended. Allocation failure
 * aborts (tk_mem).
 */
#ifndef TK_SBUF_H
#define TK_SBUF_H

#include <stddef.h>

typedef struct tk_sbuf {
    char *data; /* owned; NULL until the first append */
    size_t len; /* bytes before the terminating NUL */
    size_t cap;
} tk_sbuf_t;

/** @brief Append @p n bytes of @p s (borrowed). */
void tk_sbuf_append(tk_sbuf_t *b, const char *s, size_t n);
/** @brief Append the NUL-terminated @p s (borrowed). */
void tk_sbuf_puts(tk_sbuf_t *b, const char *s);
/** @brief Append printf-formatted text. */
void tk_sbuf_printf(tk_sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/**
 * @brief Append @p s (borrowed, UTF-8) as a JSON string, quotes included: '"' and '\' are
 *        escaped, control characters become \u00XX. Bytes are not checked for UTF-8 validity: pass
 *        text that already is (a decoded JSON string is).
 */
void tk_sbuf_json_string(tk_sbuf_t *b, const char *s);
/** @brief Free the buffer and zero @p b (reusable). */
void tk_sbuf_free(tk_sbuf_t *b);

#endif
