/*
 * credentials.c - validation of the email and password of sign-up and sign-in. Pure functions,
 * unit-tested in tests/unit/test_auth_credentials.c.
 */
#include "auth.h"

#include <ctype.h>
#include <string.h>

static bool label_ok(const char *s, size_t len)
{
    if (len == 0 || len > 63 || s[0] == '-' || s[len - 1] == '-')
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && (unsigned char)s[i] < 0x80)
            return false;
    return true;
}

bool tk_auth_email_valid(const char *email)
{
    if (email == NULL)
        return false;
    size_t len = strlen(email);
    const char *at = strchr(email, '@');
    if (len > 254 || at == NULL || strchr(at + 1, '@') != NULL)
        return false;
    size_t local = (size_t)(at - email);
    if (local == 0 || local > 64 || email[0] == '.' || at[-1] == '.' || strstr(email, "..") != NULL)
        return false;
    for (const char *p = email; p < at; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c == '"' || c == '(' || c == ')' || c == ',' || c == ':' || c == ';' ||
            c == '<' || c == '>' || c == '[' || c == '\\' || c == ']' || c == 0x7f)
            return false;
    }
    const char *domain = at + 1;
    const char *last_dot = strrchr(domain, '.');
    if (last_dot == NULL)
        return false;
    size_t labels = 0;
    for (const char *p = domain;;) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        if (!label_ok(p, l))
            return false;
        labels++;
        if (dot == NULL)
            break;
        p = dot + 1;
    }
    const char *tld = last_dot + 1;
    if (labels < 2 || strlen(tld) < 2)
        return false;
    for (const char *p = tld; *p; p++)
        if (isdigit((unsigned char)*p))
            return false;
    return true;
}

long tk_auth_password_trim(const char *password, char *out, size_t cap)
{
    const char *s = password;
    while (*s && isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    if (len >= cap)
        return -1;
    memcpy(out, s, len);
    out[len] = '\0';
    long chars = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80)
            chars++;
    return chars;
}
