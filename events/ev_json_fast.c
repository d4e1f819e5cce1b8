/*
 * ev_json_fast.c - a fast parser for the common shape of an event record, building the same
 * jansson tree as json_loadb (DESIGN.md section 6, "decoding").
 *
 * Why: the profile of the projector and the replay put jansson's json_loadb at about half of the
 * process's CPU (16 us for a 500-byte envelope here): its lexer appends each character to a
 * growable buffer through a function call. Records are read forever, so the decoder must accept
 * exactly what jansson accepts, with jansson's error messages. Hence this parser does not decide
 * anything: it accepts only a strict subset of JSON (printable ASCII strings without escapes,
 * integers of at most 18 digits, decimals without exponent, no duplicate key, nesting of at most
 * 32), for which it builds exactly the tree json_loadb builds, and returns NULL for anything else,
 * valid or not, so that the caller parses that input with json_loadb.
 * tests/unit/test_ev_json_fast.c checks both halves: on thousands of mutated records, whatever it
 * accepts jansson accepts as an equal tree, and the records we publish take the fast path.
 */
#include "ev_json_int.h"

#include <stdlib.h>
#include <string.h>

#define FAST_MAX_DEPTH 32
#define FAST_MAX_INT_DIGITS 18 /* always fits a json_int_t (long long): no overflow to report */
#define FAST_MAX_NUMBER 64     /* a longer number goes to jansson */

typedef struct cursor {
    const char *p, *end;
} cursor_t;

static void skip_ws(cursor_t *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\n' || *c->p == '\r' || *c->p == '\t'))
        c->p++;
}

/* A string of printable ASCII without escapes: *s and *n point into the input. */
static bool plain_string(cursor_t *c, const char **s, size_t *n)
{
    if (c->p >= c->end || *c->p != '"')
        return false;
    const char *start = ++c->p;
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p;
        if (ch == '"') {
            *s = start;
            *n = (size_t)(c->p - start);
            c->p++;
            return true;
        }
        if (ch < 0x20 || ch >= 0x7f || ch == '\\')
            return false;
        c->p++;
    }
    return false;
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* JSON's number grammar without an exponent: -?(0|[1-9][0-9]*)(\.[0-9]+)? */
static json_t *number(cursor_t *c)
{
    const char *start = c->p;
    if (c->p < c->end && *c->p == '-')
        c->p++;
    const char *digits = c->p;
    if (c->p >= c->end || !is_digit(*c->p))
        return NULL;
    if (*c->p == '0') {
        c->p++;
        if (c->p < c->end && is_digit(*c->p))
            return NULL; /* a leading zero: jansson's error */
    } else {
        while (c->p < c->end && is_digit(*c->p))
            c->p++;
    }
    bool real = false;
    if (c->p < c->end && *c->p == '.') {
        real = true;
        c->p++;
        if (c->p >= c->end || !is_digit(*c->p))
            return NULL;
        while (c->p < c->end && is_digit(*c->p))
            c->p++;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E'))
        return NULL;
    size_t len = (size_t)(c->p - start);
    if (len >= FAST_MAX_NUMBER)
        return NULL;
    if (!real) {
        if ((size_t)(c->p - digits) > FAST_MAX_INT_DIGITS)
            return NULL;
        json_int_t v = 0;
        for (const char *d = digits; d < c->p; d++)
            v = v * 10 + (*d - '0');
        return json_integer(*start == '-' ? -v : v);
    }
    /* strtod, as jansson converts a real; a locale whose decimal point is not '.' stops it
     * early, and then jansson (which handles that) decides. */
    char tmp[FAST_MAX_NUMBER];
    memcpy(tmp, start, len);
    tmp[len] = '\0';
    char *stop = NULL;
    double v = strtod(tmp, &stop);
    if (stop != tmp + len)
        return NULL;
    return json_real(v);
}

static json_t *value(cursor_t *c, int depth);

/* After a member or an element: 1 when @p close ends the container, 0 after a ',' (another
 * follows), -1 for anything else. */
static int next_member(cursor_t *c, char close)
{
    skip_ws(c);
    if (c->p >= c->end)
        return -1;
    if (*c->p == close) {
        c->p++;
        return 1;
    }
    if (*c->p != ',')
        return -1;
    c->p++;
    return 0;
}

static json_t *object(cursor_t *c, int depth)
{
    json_t *obj = json_object();
    if (obj == NULL)
        return NULL;
    c->p++; /* '{' */
    skip_ws(c);
    if (c->p < c->end && *c->p == '}') {
        c->p++;
        return obj;
    }
    for (;;) {
        const char *key = NULL;
        size_t klen = 0;
        skip_ws(c);
        if (!plain_string(c, &key, &klen))
            goto fail;
        skip_ws(c);
        if (c->p >= c->end || *c->p != ':')
            goto fail;
        c->p++;
        if (json_object_getn(obj, key, klen) != NULL)
            goto fail; /* a duplicate: jansson refuses it (JSON_REJECT_DUPLICATES) */
        json_t *v = value(c, depth + 1);
        if (v == NULL || json_object_setn_new_nocheck(obj, key, klen, v) != 0)
            goto fail;
        int end = next_member(c, '}');
        if (end < 0)
            goto fail;
        if (end > 0)
            return obj;
    }
fail:
    json_decref(obj);
    return NULL;
}

static json_t *array(cursor_t *c, int depth)
{
    json_t *arr = json_array();
    if (arr == NULL)
        return NULL;
    c->p++; /* '[' */
    skip_ws(c);
    if (c->p < c->end && *c->p == ']') {
        c->p++;
        return arr;
    }
    for (;;) {
        json_t *v = value(c, depth + 1);
        if (v == NULL || json_array_append_new(arr, v) != 0)
            goto fail;
        int end = next_member(c, ']');
        if (end < 0)
            goto fail;
        if (end > 0)
            return arr;
    }
fail:
    json_decref(arr);
    return NULL;
}

/* A literal (true, false, null) not followed by a letter: jansson reads a whole word. */
static bool literal(cursor_t *c, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return false;
    if ((size_t)(c->end - c->p) > n) {
        char next = c->p[n];
        if ((next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z'))
            return false;
    }
    c->p += n;
    return true;
}

static json_t *value(cursor_t *c, int depth)
{
    if (depth > FAST_MAX_DEPTH)
        return NULL;
    skip_ws(c);
    if (c->p >= c->end)
        return NULL;
    switch (*c->p) {
    case '{':
        return object(c, depth);
    case '[':
        return array(c, depth);
    case '"': {
        const char *s = NULL;
        size_t n = 0;
        return plain_string(c, &s, &n) ? json_stringn_nocheck(s, n) : NULL;
    }
    case 't':
        return literal(c, "true") ? json_true() : NULL;
    case 'f':
        return literal(c, "false") ? json_false() : NULL;
    case 'n':
        return literal(c, "null") ? json_null() : NULL;
    default:
        return number(c);
    }
}

json_t *ev__json_load_fast(const char *buf, size_t len)
{
    cursor_t c = {buf, buf + len};
    skip_ws(&c);
    if (c.p >= c.end || *c.p != '{')
        return NULL; /* an envelope is an object; anything else is jansson's to judge */
    json_t *root = object(&c, 1);
    if (root == NULL)
        return NULL;
    skip_ws(&c);
    if (c.p != c.end) {
        json_decref(root);
        return NULL;
    }
    return root;
}
