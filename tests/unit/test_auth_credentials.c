/* test_auth_credentials.c - email and password rules of sign-up and sign-in, and scrypt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "tk/cfg.h"
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
    /* OWASP's recommendation by default: N = 2^17, r = 8, p = 1 (issue 11 item 3). */
    assert_int_equal(strncmp(a, "scrypt$131072$8$1$", 18), 0);
    assert_null(strstr(a, "password"));
    assert_int_equal(tk_password_check("password", a, NULL), 1);
    assert_int_equal(tk_password_check("passwore", a, NULL), 0);
    assert_false(tk_password_outdated(a));
    assert_int_equal(tk_password_check("password", "scrypt$16384$8$1$bad$bad", NULL), 0);
    assert_int_equal(tk_password_check("password", "scrypt$3$8$1$AAAA$AAAA", NULL), 0);
    assert_int_equal(tk_password_check("password", "plain", NULL), 0);
    assert_int_equal(tk_password_check("password", NULL, NULL), 0);
    /* The unknown-email stand-in is well formed, so it costs a full scrypt, at today's cost. */
    assert_int_equal(strncmp(tk_password_dummy(), "scrypt$131072$8$1$", 18), 0);
    assert_int_equal(tk_password_check("password", tk_password_dummy(), NULL), 0);
    free(a);
    free(b);
}

/* A hash made with the original's cost (Node's defaults, N = 2^14) still verifies and is
 * reported outdated, so sign-in re-hashes it. */
static void old_hashes_verify_and_are_outdated(void **state)
{
    (void)state;
    setenv("SCRYPT_LOG2_N", "14", 1);
    assert_int_equal(tk_cfg_load(0, NULL), 0);
    char *old = NULL;
    assert_int_equal(tk_password_hash("password", &old, NULL), 0);
    assert_int_equal(strncmp(old, "scrypt$16384$8$1$", 17), 0);
    setenv("SCRYPT_LOG2_N", "17", 1);
    assert_int_equal(tk_cfg_load(0, NULL), 0);
    assert_true(tk_password_outdated(old));
    assert_int_equal(tk_password_check("password", old, NULL), 1);
    assert_int_equal(tk_password_check("passwore", old, NULL), 0);
    unsetenv("SCRYPT_LOG2_N");
    free(old);
}

TK_TEST_MAIN(NULL, NULL, cmocka_unit_test(emails),
             cmocka_unit_test(password_trim_counts_characters), cmocka_unit_test(scrypt_round_trip),
             cmocka_unit_test(old_hashes_verify_and_are_outdated))
