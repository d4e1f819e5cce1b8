/*
 * sbuf.c - the growable byte string of sbuf.h. Doubling growth; one NUL kept past len so data
 * can go straight to libpq as a parameter.
 */
#include "tk/sbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tk/mem.h"

static void reserve(tk_sbuf_t *b, size_t more)
{
    size_t need = b->len + more + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (p == NULL)
        abort();
    b->data = p;
    b->cap = cap;
}

void tk_sbuf_append(tk_sbuf_t *b, const char *s, size_t n)
{
    reserve(b, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void tk_sbuf_puts(tk_sbuf_t *b, const char *s)
{
    tk_sbuf_append(b, s, strlen(s));
}

void tk_sbuf_printf(tk_sbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[128];
    int n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(small)) {
        tk_sbuf_append(b, small, (size_t)n);
        return;
    }
    reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void tk_sbuf_json_string(tk_sbuf_t *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = strlen(s);
    reserve(b, n + 2);
    b->data[b->len++] = '"';
    const char *run = s; /* bytes copied as they are, in one memcpy */
    for (const char *p = s;; p++) {
        unsigned char c = (unsigned char)*p;
        if (c != '\0' && c != '"' && c != '\\' && c >= 0x20)
            continue;
        tk_sbuf_append(b, run, (size_t)(p - run));
        if (c == '\0')
            break;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            tk_sbuf_append(b, esc, 2);
        } else {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            tk_sbuf_append(b, esc, 6);
        }
        run = p + 1;
    }
    tk_sbuf_append(b, "\"", 1);
}

void tk_sbuf_free(tk_sbuf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}
