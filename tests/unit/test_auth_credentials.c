/* test_auth_credentials.c - email and password rules of sign-up and sign-in, and scrypt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "password.h"

static void emails(void **state)
{
    (void)state;
    const char *good[] = {"test@test.com", "a.b+c@example.co.uk", "x_y@sub-domain.example.org",
                          "UPPER@CASE.COM"};
    const char *bad[] = {"alskdflaskjfd", "",
                         "@test.com",     "test@",
                         "test@test",     "a@b.c",
                         "a b@test.com",  "a@@test.com",
                         "a@te st.com",   ".a@test.com",
                         "a.@test.com",   "a..b@test.com",
                         "a@-test.com",   "a@test.c0m",
                         "a@test..com",   "a\"b@test.com"};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_true(tk_auth_email_valid(good[i]));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_false(tk_auth_email_valid(bad[i]));
    assert_false(tk_auth_email_valid(NULL));
    char long_local[300];
    memset(long_local, 'a', 260);
    strcpy(long_local + 260, "@test.com");
    assert_false(tk_auth_email_valid(long_local));
}

static void password_trim_counts_characters(void **state)
{
    (void)state;
    char out[64];
    assert_int_equal(tk_auth_password_trim("  password \t", out, sizeof(out)), 8);
    assert_string_equal(out, "password");
    assert_int_equal(tk_auth_password_trim("p", out, sizeof(out)), 1);
    assert_int_equal(tk_auth_password_trim("    ", out, sizeof(out)), 0);
    assert_int_equal(tk_auth_password_trim("p\xc3\xa4ss", out, sizeof(out)), 4);
    char big[100];
    memset(big, 'x', 99);
    big[99] = '\0';
    assert_int_equal(tk_auth_password_trim(big, out, sizeof(out)), -1);
}

static void scrypt_round_trip(void **state)
{
    (void)state;
    char *a = NULL, *b = NULL;
    assert_int_equal(tk_password_hash("password", &a, NULL), 0);
    assert_int_equal(tk_password_hash("password", &b, NULL), 0);
    assert_string_not_equal(a, b); /* a fresh salt each time */
    assert_int_equal(strncmp(a, "scrypt$16384$8$1$", 17), 0);
    assert_null(strstr(a, "password"));
    assert_true(tk_password_verify("password", a));
    assert_false(tk_password_verify("passwore", a));
    assert_false(tk_password_verify("password", "scrypt$16384$8$1$bad$bad"));
    assert_false(tk_password_verify("password", "scrypt$3$8$1$AAAA$AAAA"));
    assert_false(tk_password_verify("password", "plain"));
    assert_false(tk_password_verify("password", NULL));
    free(a);
    free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(emails),
        cmocka_unit_test(password_trim_counts_characters),
        cmocka_unit_test(scrypt_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
