/* test_ids.c - UUID and RFC 3339 helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"
#include <string.h>

#include "tk/err.h"
#include "tk/ids.h"

static void uuid_is_v4_and_unique(void **state)
{
    (void)state;
    char a[TK_UUID_LEN + 1], b[TK_UUID_LEN + 1];
    tk_uuid_new(a);
    tk_uuid_new(b);
    assert_true(tk_uuid_valid(a));
    assert_int_equal(a[14], '4');
    assert_string_not_equal(a, b);
}

static void uuid_validation_rejects_malformed(void **state)
{
    (void)state;
    assert_false(tk_uuid_valid(NULL));
    assert_false(tk_uuid_valid(""));
    assert_false(tk_uuid_valid("5f4dcc3b5aa765d61d8327de"));
    assert_false(tk_uuid_valid("0b1f6a3e-2c4d-4e5f-8a9b-0c1d2e3f4a5b0"));
    assert_false(tk_uuid_valid("0b1f6a3e-2c4d-4e5f-8a9b_0c1d2e3f4a5b"));
    assert_true(tk_uuid_valid("0B1F6A3E-2C4D-4E5F-8A9B-0C1D2E3F4A5B"));
}

static void uuid_bytes_round_trip_and_reject_malformed(void **state)
{
    (void)state;
    uint8_t b[16];
    char text[TK_UUID_LEN + 1];
    assert_true(tk_uuid_to_bytes("0123ABCD-4567-89ab-CDEF-0123456789aB", b));
    assert_int_equal(b[0], 0x01);
    assert_int_equal(b[3], 0xcd);
    assert_int_equal(b[15], 0xab);
    tk_uuid_from_bytes(b, text);
    assert_string_equal(text, "0123abcd-4567-89ab-cdef-0123456789ab");
    for (int i = 0; i < 100; i++) {
        char id[TK_UUID_LEN + 1];
        tk_uuid_new(id);
        assert_true(tk_uuid_to_bytes(id, b));
        tk_uuid_from_bytes(b, text);
        assert_string_equal(text, id);
    }
    const char *bad[] = {NULL,
                         "",
                         "0123abcd-4567-89ab-cdef-0123456789a",
                         "0123abcd-4567-89ab-cdef-0123456789abc",
                         "0123abcd-4567-89ab-cdef_0123456789ab",
                         "0123abcg-4567-89ab-cdef-0123456789ab",
                         "0123abcd4567-89ab-cdef-0123456789ab-"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(tk_uuid_to_bytes(bad[i], b));
}

static void time_round_trips(void **state)
{
    (void)state;
    char s[TK_TIME_LEN + 1];
    tk_time_format(1795845000123LL, s);
    assert_string_equal(s, "2026-11-28T05:50:00.123Z");
    int64_t ms = 0;
    assert_int_equal(tk_time_parse(s, &ms), 0);
    assert_int_equal(ms, 1795845000123LL);
    assert_int_equal(tk_time_parse("2026-11-28T06:50:00.5+01:00", &ms), 0);
    assert_int_equal(ms, 1795845000500LL);
}

static void time_parse_rejects_garbage(void **state)
{
    (void)state;
    int64_t ms = 0;
    assert_int_equal(tk_time_parse("2026-13-01T00:00:00Z", &ms), TK_EINVAL);
    assert_int_equal(tk_time_parse("2026-11-28 05:50:00Z", &ms), TK_EINVAL);
    assert_int_equal(tk_time_parse("2026-11-28T05:50:00", &ms), TK_EINVAL);
    assert_int_equal(tk_time_parse("2026-11-28T05:50:00Zjunk", &ms), TK_EINVAL);
    assert_int_equal(tk_time_parse(NULL, &ms), TK_EINVAL);
}

TK_TEST_MAIN(NULL, NULL, cmocka_unit_test(uuid_is_v4_and_unique),
             cmocka_unit_test(uuid_validation_rejects_malformed),
             cmocka_unit_test(uuid_bytes_round_trip_and_reject_malformed),
             cmocka_unit_test(time_round_trips), cmocka_unit_test(time_parse_rejects_garbage))
