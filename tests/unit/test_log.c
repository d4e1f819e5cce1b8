/*
 * test_log.c - every log line is one valid JSON object whatever its strings contain: the %s
 * arguments of the extra members are escaped (log injection, issue 11 item 9), other
 * conversions are formatted as printf does, and the level is shared between threads.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"
#include <jansson.h>
#include <string.h>

#include "tk/log.h"

static json_t *line_of(const char *msg, const char *fmt, ...)
{
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    size_t len = tk_log__format(line, sizeof(line), TK_LOG_INFO, "test", msg, fmt, ap);
    va_end(ap);
    assert_true(len >= 2 && line[len - 1] == '\n');
    assert_int_equal(memchr(line, '\n', len - 1), NULL); /* one line, whatever the input */
    json_error_t jerr;
    json_t *doc = json_loadb(line, len, 0, &jerr);
    if (doc == NULL)
        fail_msg("not JSON (%s): %.*s", jerr.text, (int)len, line);
    return doc;
}

static void strings_are_escaped(void **state)
{
    (void)state;
    const char *path = "/api/x\",\"level\":\"error\"}\n{\"forged\":\"\\";
    json_t *doc = line_of("access", "\"path\":\"%s\",\"id\":\"%s\",\"status\":%d", path,
                          "rid\r\n\t\x01", 404);
    assert_string_equal(json_string_value(json_object_get(doc, "path")), path);
    assert_string_equal(json_string_value(json_object_get(doc, "id")), "rid\r\n\t\x01");
    assert_string_equal(json_string_value(json_object_get(doc, "level")), "info");
    assert_null(json_object_get(doc, "forged"));
    assert_int_equal(json_integer_value(json_object_get(doc, "status")), 404);
    json_decref(doc);

    /* The message and component are escaped too. */
    doc = line_of("a \"quoted\"\nmessage", NULL);
    assert_string_equal(json_string_value(json_object_get(doc, "msg")), "a \"quoted\"\nmessage");
    json_decref(doc);
}

static void invalid_utf8_is_replaced(void **state)
{
    (void)state;
    /* A lone continuation byte, a truncated sequence, an overlong '/', then valid UTF-8. */
    json_t *doc = line_of("x", "\"v\":\"%s\"",
                          "a\x80"
                          "b\xc3"
                          "c\xc0\xaf"
                          "d\xc3\xa9");
    assert_string_equal(json_string_value(json_object_get(doc, "v")), "a\xef\xbf\xbd"
                                                                      "b\xef\xbf\xbd"
                                                                      "c\xef\xbf\xbd\xef\xbf\xbd"
                                                                      "d\xc3\xa9");
    json_decref(doc);
}

static void conversions_and_precision(void **state)
{
    (void)state;
    json_t *doc = line_of("x",
                          "\"a\":\"%.3s\",\"b\":%lld,\"c\":%zu,\"d\":%ld,\"e\":\"%*d\",\"f\":%.1f,"
                          "\"g\":\"100%%\"",
                          "abcdef", (long long)-5, (size_t)7, 9L, 4, 42, 2.25);
    assert_string_equal(json_string_value(json_object_get(doc, "a")), "abc");
    assert_int_equal(json_integer_value(json_object_get(doc, "b")), -5);
    assert_int_equal(json_integer_value(json_object_get(doc, "c")), 7);
    assert_int_equal(json_integer_value(json_object_get(doc, "d")), 9);
    assert_string_equal(json_string_value(json_object_get(doc, "e")), "  42");
    assert_true(json_real_value(json_object_get(doc, "f")) > 2.1);
    assert_string_equal(json_string_value(json_object_get(doc, "g")), "100%");
    json_decref(doc);
}

static void long_strings_stay_one_object(void **state)
{
    (void)state;
    char big[8000];
    memset(big, '"', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    json_t *doc = line_of("x", "\"v\":\"%s\"", big);
    json_decref(doc);
}

TK_TEST_MAIN(NULL, NULL, cmocka_unit_test(strings_are_escaped),
             cmocka_unit_test(invalid_utf8_is_replaced),
             cmocka_unit_test(conversions_and_precision),
             cmocka_unit_test(long_strings_stay_one_object))
