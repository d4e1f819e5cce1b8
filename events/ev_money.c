/*
 * ev_money.c - conversions between JSON numbers and int64 cents.
 *
 * Design: a binary double is never rounded directly (1.005 is stored as 1.00499999999999989...,
 * and llround(x * 100) would give 100 where a person and PostgreSQL's numeric give 101). Instead
 * a double is printed with 15 significant digits, which recovers the decimal text it was parsed
 * from for every amount the contract allows (at most 12 significant digits), and that text is
 * rounded exactly by decimal arithmetic on its digits. Strings take the same decimal path.
 *
 * Limits are checked on the exact value before rounding, matching the JSON Schemas' "maximum":
 * 1000000000.004 is over the limit even though it would round to 1000000000.00.
 */
#include "ev_money.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define MAX_TEXT 64   /* longest numeric string accepted */
#define MAX_UNITS 1e9 /* EV_MONEY_MAX_CENTS / 100 as a double */

json_t *ev_money_to_json(int64_t cents)
{
    if (cents % 100 == 0)
        return json_integer((json_int_t)(cents / 100));
    /* Division is correctly rounded, so this is the double nearest to the decimal amount, the
     * same one a JSON parser produces from "19.99". */
    return json_real((double)cents / 100.0);
}

/*
 * Parse [+-]digits[.digits][(e|E)[+-]digits] into significant digits and a power of ten, then
 * round value * 100 half away from zero. @p s is NUL-terminated and at most MAX_TEXT bytes.
 */
int ev_money_parse(const char *s, int64_t *cents, tk_err_t *err)
{
    char digits[MAX_TEXT + 1]; /* significant digits, leading zeros dropped */
    int ndigits = 0;
    long exp10 = 0; /* value = 0.digits... scaled: value = digits * 10^exp10 */
    bool negative = false, any_digit = false;
    const char *p = s;

    if (s == NULL || strlen(s) > MAX_TEXT)
        return tk_err_set(err, TK_EINVAL, "", "must be a number of at most %d characters",
                          MAX_TEXT);
    if (*p == '+' || *p == '-')
        negative = *p++ == '-';
    for (; *p >= '0' && *p <= '9'; p++) {
        any_digit = true;
        if (ndigits > 0 || *p != '0')
            digits[ndigits++] = *p;
    }
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9'; p++) {
            any_digit = true;
            if (ndigits > 0 || *p != '0')
                digits[ndigits++] = *p;
            exp10--;
        }
    }
    if (!any_digit)
        return tk_err_set(err, TK_EINVAL, "", "must be a number");
    if (*p == 'e' || *p == 'E') {
        p++;
        bool eneg = false;
        if (*p == '+' || *p == '-')
            eneg = *p++ == '-';
        if (*p < '0' || *p > '9')
            return tk_err_set(err, TK_EINVAL, "", "must be a number");
        long e = 0;
        for (; *p >= '0' && *p <= '9'; p++)
            if (e < 100000) /* saturate: beyond this the value is 0 or huge either way */
                e = e * 10 + (*p - '0');
        exp10 += eneg ? -e : e;
    }
    if (*p != '\0')
        return tk_err_set(err, TK_EINVAL, "", "must be a number");
    /* Trailing zeros of the significand only shift the exponent. */
    while (ndigits > 0 && digits[ndigits - 1] == '0') {
        ndigits--;
        exp10++;
    }
    if (ndigits == 0) {
        *cents = 0;
        return 0;
    }
    if (negative)
        return tk_err_set(err, TK_EINVAL, "", "must not be negative");

    /* value * 100 = digits * 10^k. The integer part has ndigits + k digits. */
    long k = exp10 + 2;
    long int_len = ndigits + k;
    if (int_len > 12) /* >= 1e12 cents: far over the limit */
        return tk_err_set(err, TK_EINVAL, "", "must be at most 1000000000");
    int64_t whole = 0;
    for (long i = 0; i < int_len; i++)
        whole = whole * 10 + (i < ndigits ? digits[i] - '0' : 0);
    bool has_fraction = int_len < ndigits; /* digits left after the integer part */
    if (whole > EV_MONEY_MAX_CENTS || (whole == EV_MONEY_MAX_CENTS && has_fraction))
        return tk_err_set(err, TK_EINVAL, "", "must be at most 1000000000");
    /* The first fractional digit decides; when int_len < 0 it is a leading zero of the fraction. */
    if (int_len >= 0 && int_len < ndigits && digits[int_len] >= '5')
        whole++;
    *cents = whole;
    return 0;
}

int ev_money_from_json(const json_t *v, bool allow_string, int64_t *cents, tk_err_t *err)
{
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        if (i < 0)
            return tk_err_set(err, TK_EINVAL, "", "must not be negative");
        if (i > (json_int_t)(EV_MONEY_MAX_CENTS / 100))
            return tk_err_set(err, TK_EINVAL, "", "must be at most 1000000000");
        *cents = (int64_t)i * 100;
        return 0;
    }
    if (json_is_real(v)) {
        double d = json_real_value(v);
        if (!isfinite(d))
            return tk_err_set(err, TK_EINVAL, "", "must be a finite number");
        if (d < 0)
            return tk_err_set(err, TK_EINVAL, "", "must not be negative");
        if (d > MAX_UNITS)
            return tk_err_set(err, TK_EINVAL, "", "must be at most 1000000000");
        char text[40];
        snprintf(text, sizeof(text), "%.15g", d);
        return ev_money_parse(text, cents, err);
    }
    if (allow_string && json_is_string(v)) {
        if (strlen(json_string_value(v)) != json_string_length(v))
            return tk_err_set(err, TK_EINVAL, "", "must be a number");
        return ev_money_parse(json_string_value(v), cents, err);
    }
    return tk_err_set(err, TK_EINVAL, "",
                      allow_string ? "must be a number or a numeric string" : "must be a number");
}

void ev_money_format(int64_t cents, char out[EV_MONEY_TEXT_SIZE])
{
    /* Work on the magnitude as unsigned so INT64_MIN has one. */
    uint64_t mag = cents < 0 ? (uint64_t)0 - (uint64_t)cents : (uint64_t)cents;
    const char *sign = cents < 0 ? "-" : "";
    unsigned long long whole = mag / 100, frac = mag % 100;
    if (frac == 0)
        snprintf(out, EV_MONEY_TEXT_SIZE, "%s%llu", sign, whole);
    else if (frac % 10 == 0)
        snprintf(out, EV_MONEY_TEXT_SIZE, "%s%llu.%llu", sign, whole, frac / 10);
    else
        snprintf(out, EV_MONEY_TEXT_SIZE, "%s%llu.%02llu", sign, whole, frac);
}
