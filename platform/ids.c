/*
 * ids.c - UUID v4 and RFC 3339 helpers. UUIDs come from RAND_bytes so ids are unguessable
 * (they appear in URLs); the parser is strict because timestamps arrive in events from the log.
 */
#include "tk/ids.h"
#include "tk/err.h"

#include <ctype.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void tk_uuid_new(char out[TK_UUID_LEN + 1])
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof(b)) != 1)
        abort(); /* no entropy: nothing safe to do */
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, TK_UUID_LEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
}

bool tk_uuid_valid(const char *s)
{
    if (s == NULL)
        return false;
    for (int i = 0; i < TK_UUID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!isxdigit((unsigned char)s[i])) {
            return false;
        }
    }
    return s[TK_UUID_LEN] == '\0';
}

bool tk_uuid_to_bytes(const char *text, uint8_t out[16])
{
    if (text == NULL)
        return false;
    size_t n = 0;
    for (size_t i = 0; i < TK_UUID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (text[i] != '-')
                return false;
            continue;
        }
        int hi = tk_hex_value((unsigned char)text[i]);
        if (hi < 0)
            return false;
        int lo = tk_hex_value((unsigned char)text[++i]);
        if (lo < 0)
            return false;
        out[n++] = (uint8_t)(hi << 4 | lo);
    }
    return text[TK_UUID_LEN] == '\0';
}

void tk_uuid_from_bytes(const uint8_t bytes[16], char out[TK_UUID_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = digits[bytes[i] >> 4];
        out[o++] = digits[bytes[i] & 15];
    }
    out[o] = '\0';
}

int64_t tk_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tk_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tk_time_format(int64_t epoch_ms, char out[TK_TIME_LEN + 1])
{
    time_t sec = (time_t)(epoch_ms / 1000);
    int ms = (int)(epoch_ms % 1000);
    if (ms < 0) {
        ms += 1000;
        sec -= 1;
    }
    struct tm tm;
    gmtime_r(&sec, &tm);
    /* The year is clamped to 4 digits: timestamps beyond 9999 are not part of the contract. */
    if (tm.tm_year > 9999 - 1900 || tm.tm_year < -1900)
        tm.tm_year = 9999 - 1900;
    char buf[64];
    snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (tm.tm_year + 1900) % 10000,
             (tm.tm_mon + 1) % 100, tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
             tm.tm_sec % 100, ms % 1000);
    memcpy(out, buf, TK_TIME_LEN);
    out[TK_TIME_LEN] = '\0';
}

static int digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++, (*p)++) {
        if (!isdigit((unsigned char)**p))
            return -1;
        v = v * 10 + (**p - '0');
    }
    return v;
}

int tk_time_parse(const char *s, int64_t *epoch_ms)
{
    if (s == NULL)
        return TK_EINVAL;
    const char *p = s;
    struct tm tm = {0};
    int y = digits(&p, 4);
    if (y < 0 || *p++ != '-')
        return TK_EINVAL;
    int mo = digits(&p, 2);
    if (mo < 1 || mo > 12 || *p++ != '-')
        return TK_EINVAL;
    int d = digits(&p, 2);
    if (d < 1 || d > 31 || (*p != 'T' && *p != 't'))
        return TK_EINVAL;
    p++;
    int h = digits(&p, 2);
    if (h < 0 || h > 23 || *p++ != ':')
        return TK_EINVAL;
    int mi = digits(&p, 2);
    if (mi < 0 || mi > 59 || *p++ != ':')
        return TK_EINVAL;
    int se = digits(&p, 2);
    if (se < 0 || se > 60)
        return TK_EINVAL;
    int ms = 0;
    if (*p == '.') {
        p++;
        int n = 0;
        while (isdigit((unsigned char)*p)) {
            if (n < 3)
                ms = ms * 10 + (*p - '0');
            n++;
            p++;
        }
        if (n == 0 || n > 9)
            return TK_EINVAL;
        for (; n < 3; n++)
            ms *= 10;
    }
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1;
        int oh = digits(&p, 2);
        if (oh < 0 || oh > 23 || *p++ != ':')
            return TK_EINVAL;
        int om = digits(&p, 2);
        if (om < 0 || om > 59)
            return TK_EINVAL;
        offset_min = sign * (oh * 60 + om);
    } else {
        return TK_EINVAL;
    }
    if (*p != '\0')
        return TK_EINVAL;
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    time_t t = timegm(&tm);
    *epoch_ms = ((int64_t)t - (int64_t)offset_min * 60) * 1000 + ms;
    return 0;
}

int tk_hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
