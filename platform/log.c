/*
 * log.c - JSON-lines logger. A line is assembled in a stack buffer and written with one
 * write(2), which POSIX keeps whole for pipes up to PIPE_BUF and in practice for files, so
 * concurrent threads need no lock. Messages are JSON-escaped here; extra members are the
 * caller's already-formatted JSON and are trusted to be valid.
 */
#include "tk/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static int min_level = -1;

void tk_log_set_level(tk_log_level_t level)
{
    min_level = (int)level;
}

static int level_from_env(void)
{
    const char *v = getenv("TK_LOG_LEVEL");
    if (v == NULL)
        return TK_LOG_INFO;
    if (strcasecmp(v, "debug") == 0)
        return TK_LOG_DEBUG;
    if (strcasecmp(v, "warn") == 0)
        return TK_LOG_WARN;
    if (strcasecmp(v, "error") == 0)
        return TK_LOG_ERROR;
    return TK_LOG_INFO;
}

static size_t append_escaped(char *dst, size_t cap, size_t len, const char *s)
{
    for (; s && *s && len + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            dst[len++] = '\\';
            dst[len++] = (char)c;
        } else if (c < 0x20) {
            len += (size_t)snprintf(dst + len, cap - len, "\\u%04x", c);
        } else {
            dst[len++] = (char)c;
        }
    }
    return len;
}

void tk_log(tk_log_level_t level, const char *component, const char *msg, const char *extra_fmt,
            ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (min_level < 0)
        min_level = level_from_env();
    if ((int)level < min_level)
        return;

    char line[4096];
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t len =
        (size_t)snprintf(line, sizeof(line),
                         "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\","
                         "\"component\":\"",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                         tm.tm_sec, ts.tv_nsec / 1000000, names[level]);
    len = append_escaped(line, sizeof(line), len, component);
    len += (size_t)snprintf(line + len, sizeof(line) - len, "\",\"msg\":\"");
    len = append_escaped(line, sizeof(line), len, msg);
    len += (size_t)snprintf(line + len, sizeof(line) - len, "\"");
    if (extra_fmt != NULL && len < sizeof(line) - 3) {
        line[len++] = ',';
        va_list ap;
        va_start(ap, extra_fmt);
        int n = vsnprintf(line + len, sizeof(line) - len - 2, extra_fmt, ap);
        va_end(ap);
        if (n > 0)
            len += (size_t)n < sizeof(line) - len - 2 ? (size_t)n : sizeof(line) - len - 3;
    }
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '}';
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
