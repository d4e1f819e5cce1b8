/*
 * log.c - JSON-lines logger. A line is assembled in a stack buffer and written with one
 * write(2), which POSIX keeps whole for pipes up to PIPE_BUF and in practice for files, so
 * concurrent threads need no lock.
 *
 * Every string in a line is JSON-escaped here, including each %s argument of the caller's extra
 * members: a client controls request paths, ids and error texts, and one unescaped quote or
 * newline would let it forge members or whole lines (log injection). The extra format is
 * therefore interpreted by a small printf of our own (format_extra): %s arguments are escaped
 * (control characters as \u00XX, invalid UTF-8 as U+FFFD), every other conversion is handed to
 * snprintf as it is. The format text itself is the caller's literal JSON and is trusted.
 *
 * The minimum level comes from TK_LOG_LEVEL at first use (an atomic: any thread may be first).
 */
#include "tk/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 4096

static atomic_int min_level = -1;

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

/* Length of the valid UTF-8 sequence at @p s (at most @p n bytes), or 0 when it is invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len;
    uint32_t cp;
    if (s[0] < 0x80)
        return 1;
    if ((s[0] & 0xe0) == 0xc0) {
        len = 2;
        cp = s[0] & 0x1f;
    } else if ((s[0] & 0xf0) == 0xe0) {
        len = 3;
        cp = s[0] & 0x0f;
    } else if ((s[0] & 0xf8) == 0xf0) {
        len = 4;
        cp = s[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    /* Overlong forms, surrogates and values past U+10FFFF are not UTF-8. */
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return len;
}

/* Appends at most @p max bytes of @p s, escaped for a JSON string; keeps room for the line end. */
static size_t append_escaped_n(char *dst, size_t cap, size_t len, const char *s, size_t max)
{
    if (s == NULL)
        s = "(null)";
    size_t n = strnlen(s, max);
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end && len + 8 < cap) {
        unsigned char c = *p;
        size_t u;
        if (c == '"' || c == '\\') {
            dst[len++] = '\\';
            dst[len++] = (char)c;
            p++;
        } else if (c < 0x20 || c == 0x7f) {
            len += (size_t)snprintf(dst + len, cap - len, "\\u%04x", c);
            p++;
        } else if ((u = utf8_len(p, (size_t)(end - p))) == 0) {
            len += (size_t)snprintf(dst + len, cap - len, "\\ufffd");
            p++;
        } else {
            memcpy(dst + len, p, u);
            len += u;
            p += u;
        }
    }
    return len;
}

static size_t append_escaped(char *dst, size_t cap, size_t len, const char *s)
{
    return append_escaped_n(dst, cap, len, s, SIZE_MAX);
}

/* printf for the extra members, with every %s escaped (see the top of the file). */
static size_t format_extra(char *dst, size_t cap, size_t len, const char *fmt, va_list ap)
{
    const char *f = fmt;
    while (*f && len + 8 < cap) {
        if (*f != '%') {
            dst[len++] = *f++;
            continue;
        }
        if (f[1] == '%') {
            dst[len++] = '%';
            f += 2;
            continue;
        }
        /* One conversion: %[flags][width][.precision][length]conv */
        const char *start = f++;
        f += strspn(f, "-+ #0");
        int width = -1, prec = -1;
        if (*f == '*') {
            width = va_arg(ap, int);
            f++;
        } else {
            f += strspn(f, "0123456789");
        }
        if (*f == '.') {
            f++;
            if (*f == '*') {
                prec = va_arg(ap, int);
                f++;
            } else {
                prec = atoi(f);
                f += strspn(f, "0123456789");
            }
        }
        const char *lm = f;
        f += strspn(f, "hljztL");
        char conv = *f;
        if (conv == '\0')
            break;
        f++;
        if (conv == 's') {
            /* Leave room for the rest of the format, so a long value is cut, not the line. */
            const char *s = va_arg(ap, const char *);
            size_t reserve = strlen(f) + 64;
            if (cap > len + reserve)
                len = append_escaped_n(dst, cap - reserve, len, s,
                                       prec >= 0 ? (size_t)prec : SIZE_MAX);
            continue;
        }
        /* Rebuild the spec with each '*' replaced by the value it consumed. */
        char spec[48];
        size_t sl = 0;
        bool after_dot = false;
        for (const char *q = start; q < f && sl + 12 < sizeof(spec); q++) {
            if (*q == '.')
                after_dot = true;
            if (*q == '*')
                sl +=
                    (size_t)snprintf(spec + sl, sizeof(spec) - sl, "%d", after_dot ? prec : width);
            else
                spec[sl++] = *q;
        }
        spec[sl] = '\0';
        size_t room = cap - len - 3;
        int n = 0;
        size_t lml = (size_t)(f - 1 - lm);
        if (conv == 'f' || conv == 'g' || conv == 'e' || conv == 'F' || conv == 'G' ||
            conv == 'E') {
            if (lml == 1 && lm[0] == 'L')
                n = snprintf(dst + len, room, spec, va_arg(ap, long double));
            else
                n = snprintf(dst + len, room, spec, va_arg(ap, double));
        } else if (conv == 'p') {
            n = snprintf(dst + len, room, spec, va_arg(ap, void *));
        } else if (lml == 2 && lm[0] == 'l') {
            n = snprintf(dst + len, room, spec, va_arg(ap, long long));
        } else if (lml == 1 && lm[0] == 'l') {
            n = snprintf(dst + len, room, spec, va_arg(ap, long));
        } else if (lml == 1 && (lm[0] == 'z' || lm[0] == 't')) {
            n = snprintf(dst + len, room, spec, va_arg(ap, size_t));
        } else if (lml == 1 && lm[0] == 'j') {
            n = snprintf(dst + len, room, spec, va_arg(ap, intmax_t));
        } else {
            n = snprintf(dst + len, room, spec, va_arg(ap, int));
        }
        if (n > 0)
            len += (size_t)n < room ? (size_t)n : room - 1;
    }
    return len;
}

size_t tk_log__format(char *line, size_t cap, tk_log_level_t level, const char *component,
                      const char *msg, const char *extra_fmt, va_list ap)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t len =
        (size_t)snprintf(line, cap,
                         "{\"time\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\","
                         "\"component\":\"",
                         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                         tm.tm_sec, ts.tv_nsec / 1000000, names[level]);
    len = append_escaped(line, cap, len, component);
    len += (size_t)snprintf(line + len, cap - len, "\",\"msg\":\"");
    len = append_escaped(line, cap, len, msg);
    len += (size_t)snprintf(line + len, cap - len, "\"");
    if (extra_fmt != NULL && len < cap - 3) {
        line[len++] = ',';
        len = format_extra(line, cap, len, extra_fmt, ap);
    }
    if (len > cap - 2)
        len = cap - 2;
    line[len++] = '}';
    line[len++] = '\n';
    return len;
}

void tk_log(tk_log_level_t level, const char *component, const char *msg, const char *extra_fmt,
            ...)
{
    int min = atomic_load(&min_level);
    if (min < 0) {
        int expected = -1;
        atomic_compare_exchange_strong(&min_level, &expected, level_from_env());
        min = atomic_load(&min_level);
    }
    if ((int)level < min)
        return;
    char line[LINE_MAX_BYTES];
    va_list ap;
    va_start(ap, extra_fmt);
    size_t len = tk_log__format(line, sizeof(line), level, component, msg, extra_fmt, ap);
    va_end(ap);
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}
