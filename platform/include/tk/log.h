/*
 * log.h - structured logging: one JSON object per line on stderr.
 *
 * Thread: any. Each line is written with a single write(2) so lines from threads never interleave.
 * Every string is JSON-escaped, the %s arguments of extra_fmt included, so a client-controlled
 * value can never forge members or lines. Never pass secrets (passwords, tokens, keys).
 */
#ifndef TK_LOG_H
#define TK_LOG_H

#include <stdarg.h>
#include <stddef.h>

typedef enum { TK_LOG_DEBUG, TK_LOG_INFO, TK_LOG_WARN, TK_LOG_ERROR } tk_log_level_t;

/* The minimum level printed comes from TK_LOG_LEVEL (debug|info|warn|error) at first use. */

/**
 * @brief Log @p msg with optional extra members given as a JSON object text without braces,
 *        e.g. tk_log(TK_LOG_INFO, "relay", "published", "\"count\":%d", n). Each %s argument is
 *        escaped as the inside of a JSON string: write it between quotes ("\"path\":\"%s\"").
 * @param component borrowed, short name of the emitting module.
 */
void tk_log(tk_log_level_t level, const char *component, const char *msg, const char *extra_fmt,
            ...) __attribute__((format(printf, 4, 5)));

/**
 * @brief The line tk_log would write (for tests): at most @p cap bytes into @p line, ending
 *        with "}\n". @return its length. Module-internal otherwise.
 */
size_t tk_log__format(char *line, size_t cap, tk_log_level_t level, const char *component,
                      const char *msg, const char *extra_fmt, va_list ap);

#define tk_log_info(comp, msg) tk_log(TK_LOG_INFO, comp, msg, NULL)
#define tk_log_warn(comp, msg) tk_log(TK_LOG_WARN, comp, msg, NULL)
#define tk_log_error(comp, msg) tk_log(TK_LOG_ERROR, comp, msg, NULL)

#endif
