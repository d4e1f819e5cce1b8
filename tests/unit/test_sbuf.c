/* test_sbuf.c - the growable byte string (tk_sbuf): appends, growth, and JSON string escaping that
 * jansson reads back to the very same string. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"
#include <jansson.h>
#include <string.h>

#include "tk/sbuf.h"

static void appends_grow_and_stay_terminated(void **state)
{
    (void)state;
    tk_sbuf_t b = {0};
    for (int i = 0; i < 1000; i++)
        tk_sbuf_printf(&b, "%s%d", i ? "," : "", i);
    assert_int_equal(b.len, strlen(b.data));
    assert_true(strncmp(b.data, "0,1,2,", 6) == 0);
    assert_string_equal(b.data + b.len - 4, ",999");
    char big[300]; /* longer than printf's stack buffer */
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    size_t before = b.len;
    tk_sbuf_printf(&b, "[%s]", big);
    assert_int_equal(b.len, before + 301);
    assert_int_equal(b.data[b.len], '\0');
    tk_sbuf_append(&b, "ab\0cd", 5); /* bytes, NUL included */
    assert_memory_equal(b.data + b.len - 5, "ab\0cd", 5);
    tk_sbuf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
}

static void json_strings_read_back_unchanged(void **state)
{
    (void)state;
    const char *cases[] = {"",
                           "plain title",
                           "quote \" backslash \\ slash /",
                           "controls \x01\x1f\n\t\r end",
                           "utf-8 é ü 漢字 🎫 and \x7f",
                           "\"\\\"\\"};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        tk_sbuf_t b = {0};
        tk_sbuf_puts(&b, "[");
        tk_sbuf_json_string(&b, cases[i]);
        tk_sbuf_puts(&b, "]");
        json_error_t jerr;
        json_t *v = json_loads(b.data, 0, &jerr);
        if (v == NULL)
            fail_msg("case %zu: %s is not JSON: %s", i, b.data, jerr.text);
        assert_string_equal(json_string_value(json_array_get(v, 0)), cases[i]);
        for (size_t k = 0; k < b.len; k++) /* every control character escaped */
            assert_true((unsigned char)b.data[k] >= 0x20);
        json_decref(v);
        tk_sbuf_free(&b);
    }
}

TK_TEST_MAIN(NULL, NULL, cmocka_unit_test(appends_grow_and_stay_terminated),
             cmocka_unit_test(json_strings_read_back_unchanged))
