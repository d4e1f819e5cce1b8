/* test_ev_money.c - money: JSON numbers <-> int64 cents, printing, rounding and limits. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"
#include <stdlib.h>
#include <string.h>

#include "ev_money.h"

/* Dump a bare JSON value as the envelope does. Owned, free(). */
static char *dump(const json_t *v)
{
    return json_dumps(v, EV_JSON_DUMP_FLAGS | JSON_ENCODE_ANY);
}

static void to_json_prints_whole_amounts_as_integers(void **state)
{
    (void)state;
    json_t *v = ev_money_to_json(2000);
    assert_true(json_is_integer(v));
    assert_int_equal(json_integer_value(v), 20);
    json_decref(v);
    v = ev_money_to_json(0);
    assert_true(json_is_integer(v));
    json_decref(v);
}

static void to_json_prints_two_decimals_at_most(void **state)
{
    (void)state;
    static const struct {
        int64_t cents;
        const char *text;
    } cases[] = {
        {1999, "19.99"},
        {2050, "20.5"},
        {1, "0.01"},
        {10, "0.1"},
        {99999999999LL, "999999999.99"},
        {100000000000LL, "1000000000"},
        {123456789012LL, "1234567890.12"},
        {-1999, "-19.99"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *v = ev_money_to_json(cases[i].cents);
        char *s = dump(v);
        assert_string_equal(s, cases[i].text);
        char f[EV_MONEY_TEXT_SIZE];
        ev_money_format(cases[i].cents, f);
        assert_string_equal(f, cases[i].text);
        free(s);
        json_decref(v);
    }
    /* The reason for EV_JSON_DUMP_FLAGS: jansson's default precision shows the binary value. */
    json_t *v = ev_money_to_json(1999);
    char *s = json_dumps(v, JSON_ENCODE_ANY);
    assert_string_equal(s, "19.989999999999998");
    free(s);
    json_decref(v);
}

/* Every amount survives to_json, printing, parsing and from_json unchanged. */
static void every_amount_round_trips(void **state)
{
    (void)state;
    static const int64_t bases[] = {0, 99999900LL, 4503599627300LL / 100, 99999000000LL};
    for (size_t b = 0; b < sizeof(bases) / sizeof(bases[0]); b++) {
        for (int64_t c = bases[b]; c <= bases[b] + 100000 && c <= EV_MONEY_MAX_CENTS; c++) {
            json_t *v = ev_money_to_json(c);
            char *s = dump(v);
            char f[EV_MONEY_TEXT_SIZE];
            ev_money_format(c, f);
            if (strcmp(s, f) != 0)
                fail_msg("cents %lld printed %s, formatted %s", (long long)c, s, f);
            json_error_t jerr;
            json_t *back = json_loads(s, JSON_DECODE_ANY, &jerr);
            int64_t got = -1;
            tk_err_t err = {0};
            assert_int_equal(ev_money_from_json(back, false, &got, &err), 0);
            if (got != c)
                fail_msg("cents %lld came back as %lld", (long long)c, (long long)got);
            int64_t parsed = -1;
            assert_int_equal(ev_money_parse(f, &parsed, &err), 0);
            assert_int_equal(parsed, c);
            json_decref(back);
            json_decref(v);
            free(s);
        }
    }
}

static void from_json_table(void **state)
{
    (void)state;
    static const struct {
        const char *json; /* a JSON text (JSON_DECODE_ANY) */
        bool allow_string;
        int rc;
        int64_t cents;
    } cases[] = {
        {"19.99", false, 0, 1999},
        {"20", false, 0, 2000},
        {"20.5", false, 0, 2050},
        {"20.0", false, 0, 2000},
        {"0", false, 0, 0},
        {"-0", false, 0, 0},
        {"-0.0", false, 0, 0},
        {"1.005", false, 0, 101}, /* decimal rounding, not binary */
        {"0.125", false, 0, 13},  /* half away from zero */
        {"0.004", false, 0, 0},
        {"0.005", false, 0, 1},
        {"19.994999", false, 0, 1999},
        {"1e3", false, 0, 100000},
        {"1E-2", false, 0, 1},
        {"1e-300", false, 0, 0},
        {"1000000000", false, 0, 100000000000LL},
        {"1000000000.0", false, 0, 100000000000LL},
        {"999999999.99", false, 0, 99999999999LL},
        {"999999999.999", false, 0, 100000000000LL},
        {"1000000000.004", false, TK_EINVAL, 0},
        {"1000000001", false, TK_EINVAL, 0},
        {"1e10", false, TK_EINVAL, 0},
        {"1e300", false, TK_EINVAL, 0},
        {"9223372036854775807", false, TK_EINVAL, 0},
        {"-1", false, TK_EINVAL, 0},
        {"-0.01", false, TK_EINVAL, 0},
        {"-9223372036854775808", false, TK_EINVAL, 0},
        {"\"20.5\"", false, TK_EINVAL, 0},
        {"\"20.5\"", true, 0, 2050},
        {"\"20\"", true, 0, 2000},
        {"\"+5\"", true, 0, 500},
        {"\".5\"", true, 0, 50},
        {"\"5.\"", true, 0, 500},
        {"\"1e3\"", true, 0, 100000},
        {"\"1.005\"", true, 0, 101},
        {"\"0.0000000000000000000000000000000000000001\"", true, 0, 0},
        {"\"1e-99999999999999\"", true, 0, 0},
        {"\"00000000000000000000000000000000000000001\"", true, 0, 100},
        {"\"1000000000.0000000000000001\"", true, TK_EINVAL, 0},
        {"\"1e99999999999999\"", true, TK_EINVAL, 0},
        {"\"99999999999999999999999999\"", true, TK_EINVAL, 0},
        {"\"-5\"", true, TK_EINVAL, 0},
        {"\"-0\"", true, 0, 0},
        {"\"\"", true, TK_EINVAL, 0},
        {"\".\"", true, TK_EINVAL, 0},
        {"\"+\"", true, TK_EINVAL, 0},
        {"\"e5\"", true, TK_EINVAL, 0},
        {"\"1e\"", true, TK_EINVAL, 0},
        {"\"1e+\"", true, TK_EINVAL, 0},
        {"\" 20\"", true, TK_EINVAL, 0},
        {"\"20 \"", true, TK_EINVAL, 0},
        {"\"20,5\"", true, TK_EINVAL, 0},
        {"\"0x10\"", true, TK_EINVAL, 0},
        {"\"NaN\"", true, TK_EINVAL, 0},
        {"\"nan\"", true, TK_EINVAL, 0},
        {"\"Infinity\"", true, TK_EINVAL, 0},
        {"\"inf\"", true, TK_EINVAL, 0},
        {"\"1.2.3\"", true, TK_EINVAL, 0},
        {"\"12345678901234567890123456789012345678901234567890123456789012345\"", true, TK_EINVAL,
         0}, /* 65 characters */
        {"\"abc\"", true, TK_EINVAL, 0},
        {"true", true, TK_EINVAL, 0},
        {"null", true, TK_EINVAL, 0},
        {"[]", true, TK_EINVAL, 0},
        {"{}", true, TK_EINVAL, 0},
        {"[20]", true, TK_EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_error_t jerr;
        json_t *v = json_loads(cases[i].json, JSON_DECODE_ANY, &jerr);
        if (v == NULL)
            fail_msg("case %zu: test JSON does not parse: %s", i, jerr.text);
        int64_t cents = -7;
        tk_err_t err = {0};
        int rc = ev_money_from_json(v, cases[i].allow_string, &cents, &err);
        if (rc != cases[i].rc)
            fail_msg("case %zu (%s): rc %d, want %d (%s)", i, cases[i].json, rc, cases[i].rc,
                     err.message);
        if (rc == 0 && cents != cases[i].cents)
            fail_msg("case %zu (%s): %lld cents, want %lld", i, cases[i].json, (long long)cents,
                     (long long)cases[i].cents);
        if (rc != 0) {
            assert_int_equal(cents, -7); /* untouched on failure */
            assert_int_equal(err.code, TK_EINVAL);
            assert_true(err.message[0] != '\0');
        }
        json_decref(v);
    }
}

static void rejects_missing_value_and_non_finite_text(void **state)
{
    (void)state;
    int64_t cents = 0;
    tk_err_t err = {0};
    assert_int_equal(ev_money_from_json(NULL, true, &cents, &err), TK_EINVAL);
    assert_int_equal(ev_money_parse(NULL, &cents, &err), TK_EINVAL);
    assert_int_equal(ev_money_parse("nan", &cents, &err), TK_EINVAL);
    assert_int_equal(ev_money_parse("-inf", &cents, &err), TK_EINVAL);
    /* jansson refuses to hold NaN or infinity, so no JSON value can carry them. */
    assert_null(json_real(strtod("nan", NULL)));
    assert_null(json_real(strtod("inf", NULL)));
}

static void format_extremes(void **state)
{
    (void)state;
    char f[EV_MONEY_TEXT_SIZE];
    ev_money_format(INT64_MIN, f);
    assert_string_equal(f, "-92233720368547758.08");
    ev_money_format(INT64_MAX, f);
    assert_string_equal(f, "92233720368547758.07");
    ev_money_format(5, f);
    assert_string_equal(f, "0.05");
}

TK_TEST_MAIN(NULL, NULL, cmocka_unit_test(to_json_prints_whole_amounts_as_integers),
             cmocka_unit_test(to_json_prints_two_decimals_at_most),
             cmocka_unit_test(every_amount_round_trips), cmocka_unit_test(from_json_table),
             cmocka_unit_test(rejects_missing_value_and_non_finite_text),
             cmocka_unit_test(format_extremes))
