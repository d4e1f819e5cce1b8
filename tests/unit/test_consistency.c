/* test_consistency.c - the consistency token codec (backbone/consistency.c): round trips, the
 * merge rules of tk_consistency_token_add, and every way a token is refused (garbage, huge,
 * truncated, tampered, signed with another key, from the future), which must never crash nor
 * read past the given length. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"
#include <stdlib.h>
#include <string.h>

#include "tk/consistency.h"

#define KEY "unit-test-key"
#define NOW 1796000000LL
#define T1 "0b1f6a3e-2c4d-4e5f-8a9b-0c1d2e3f4a5b"
#define T2 "5d2b7c10-91aa-4c3e-b0f4-7e6a2d9c1b33"

static void encode_or_fail(const tk_consistency_token_t *t, char out[TK_CONSISTENCY_TOKEN_MAX + 1])
{
    assert_int_equal(tk_consistency_token_encode(t, KEY, out), 0);
}

static void round_trips(void **state)
{
    (void)state;
    tk_consistency_token_t t = {0}, back;
    char text[TK_CONSISTENCY_TOKEN_MAX + 1];
    assert_int_equal(tk_consistency_token_add(&t, TK_CONSISTENCY_TICKET, T1, 3, NOW), 0);
    /* Upper case ids are stored in canonical lower case. */
    assert_int_equal(tk_consistency_token_add(&t, TK_CONSISTENCY_ORDER,
                                              "5D2B7C10-91AA-4C3E-B0F4-7E6A2D9C1B33", 4294967295LL,
                                              NOW - 5),
                     0);
    encode_or_fail(&t, text);
    assert_true(strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
                strlen(text)); /* safe in a header and a cookie as is */
    tk_err_t err = {0};
    assert_int_equal(tk_consistency_token_decode(text, strlen(text), KEY, NOW, &back, &err), 0);
    assert_int_equal(back.n, 2);
    assert_int_equal(back.e[0].kind, TK_CONSISTENCY_TICKET);
    assert_string_equal(back.e[0].id, T1);
    assert_int_equal(back.e[0].version, 3);
    assert_int_equal(back.e[0].issued_s, NOW);
    assert_int_equal(back.e[1].kind, TK_CONSISTENCY_ORDER);
    assert_string_equal(back.e[1].id, T2);
    assert_int_equal(back.e[1].version, 4294967295LL);
}

static void add_keeps_the_highest_version_and_bounds_the_size(void **state)
{
    (void)state;
    tk_consistency_token_t t = {0};
    assert_int_equal(tk_consistency_token_add(&t, TK_CONSISTENCY_TICKET, T1, 5, NOW), 0);
    assert_int_equal(tk_consistency_token_add(&t, TK_CONSISTENCY_TICKET, T1, 2, NOW + 1), 0);
    assert_int_equal(t.n, 1);
    assert_int_equal(t.e[0].version, 5);
    /* The same id of another kind is another aggregate. */
    assert_int_equal(tk_consistency_token_add(&t, TK_CONSISTENCY_ORDER, T1, 0, NOW + 1), 0);
    assert_int_equal(t.n, 2);
    /* Full: the oldest entry goes. */
    char id[TK_UUID_LEN + 1];
    for (int i = 0; i < TK_CONSISTENCY_MAX_ENTRIES; i++) {
        tk_uuid_new(id);
        assert_int_equal(tk_consistency_token_add(&t, TK_CONSISTENCY_ORDER, id, i, NOW + 2 + i), 0);
    }
    assert_int_equal(t.n, TK_CONSISTENCY_MAX_ENTRIES);
    for (size_t i = 0; i < t.n; i++)
        assert_true(t.e[i].issued_s >= NOW + 2);
    assert_string_equal(t.e[t.n - 1].id, id);
    char text[TK_CONSISTENCY_TOKEN_MAX + 1];
    encode_or_fail(&t, text);
    assert_true(strlen(text) <= TK_CONSISTENCY_TOKEN_MAX);
    /* Bad input is refused, the token unchanged. */
    assert_int_equal(tk_consistency_token_add(&t, 'x', T1, 1, NOW), TK_EINVAL);
    assert_int_equal(tk_consistency_token_add(&t, TK_CONSISTENCY_TICKET, "nope", 1, NOW),
                     TK_EINVAL);
    assert_int_equal(tk_consistency_token_add(&t, TK_CONSISTENCY_TICKET, T1, -1, NOW), TK_EINVAL);
    assert_int_equal(tk_consistency_token_add(&t, TK_CONSISTENCY_TICKET, T1, 1LL << 40, NOW),
                     TK_EINVAL);
}

static int decode(const char *text, size_t len, const char *key, int64_t now)
{
    tk_consistency_token_t out;
    tk_err_t err = {0};
    int rc = tk_consistency_token_decode(text, len, key, now, &out, &err);
    if (rc != 0)
        assert_int_equal(out.n, 0);
    return rc;
}

static void refuses_garbage_and_forgeries(void **state)
{
    (void)state;
    tk_consistency_token_t t = {0};
    char text[TK_CONSISTENCY_TOKEN_MAX + 1];
    assert_int_equal(tk_consistency_token_add(&t, TK_CONSISTENCY_TICKET, T1, 7, NOW), 0);
    encode_or_fail(&t, text);
    size_t len = strlen(text);
    assert_int_equal(decode(text, len, KEY, NOW), 0);

    assert_int_equal(decode(NULL, 0, KEY, NOW), TK_EINVAL);
    assert_int_equal(decode("", 0, KEY, NOW), TK_EINVAL);
    assert_int_equal(decode("garbage!", 8, KEY, NOW), TK_EINVAL);
    assert_int_equal(decode("AAAA", 4, KEY, NOW), TK_EINVAL);
    /* Another key: a forgery. */
    assert_int_equal(decode(text, len, "another key", NOW), TK_EINVAL);
    /* Every single-character change, and every truncation, is refused. */
    for (size_t i = 0; i < len; i++) {
        char copy[TK_CONSISTENCY_TOKEN_MAX + 1];
        memcpy(copy, text, len + 1);
        copy[i] = copy[i] == 'A' ? 'B' : 'A';
        assert_int_equal(decode(copy, len, KEY, NOW), TK_EINVAL);
        assert_int_equal(decode(text, i, KEY, NOW), TK_EINVAL);
    }
    /* Huge: refused by its length before anything is decoded, and the length is honoured (no
     * NUL needed). */
    size_t huge = 1 << 20;
    char *big = malloc(huge);
    memset(big, 'A', huge);
    assert_int_equal(decode(big, huge, KEY, NOW), TK_EINVAL);
    memcpy(big, text, len);
    assert_int_equal(decode(big, len, KEY, NOW), 0);
    free(big);
}

static void entries_expire_and_the_future_is_refused(void **state)
{
    (void)state;
    tk_consistency_token_t t = {0}, back;
    char text[TK_CONSISTENCY_TOKEN_MAX + 1];
    tk_err_t err = {0};
    assert_int_equal(tk_consistency_token_add(&t, TK_CONSISTENCY_TICKET, T1, 1, NOW), 0);
    assert_int_equal(tk_consistency_token_add(&t, TK_CONSISTENCY_TICKET, T2, 1, NOW - 100), 0);
    encode_or_fail(&t, text);
    /* The old entry is dropped, the token stays valid. */
    assert_int_equal(tk_consistency_token_decode(text, strlen(text), KEY, NOW, &back, &err), 0);
    assert_int_equal(back.n, 1);
    assert_string_equal(back.e[0].id, T1);
    /* Later still, nothing is left to wait for. */
    assert_int_equal(tk_consistency_token_decode(text, strlen(text), KEY,
                                                 NOW + TK_CONSISTENCY_TTL_S + 1, &back, &err),
                     0);
    assert_int_equal(back.n, 0);
    /* Issued more than a minute from now (a clock gone wrong, or a forgery): refused. */
    assert_int_equal(decode(text, strlen(text), KEY, NOW - 120), TK_EINVAL);
}

TK_TEST_MAIN(NULL, NULL, cmocka_unit_test(round_trips),
             cmocka_unit_test(add_keeps_the_highest_version_and_bounds_the_size),
             cmocka_unit_test(refuses_garbage_and_forgeries),
             cmocka_unit_test(entries_expire_and_the_future_is_refused))
