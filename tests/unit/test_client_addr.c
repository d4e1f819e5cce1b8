/*
 * test_client_addr.c - the client address behind trusted proxies (platform/client_addr.c): the
 * peer unless it is trusted; then the right-most untrusted X-Forwarded-For hop, or X-Real-IP.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"

#include "tk/client_addr.h"

static const char *resolve(const char *peer, const char *xff, const char *xri, const char *trusted)
{
    static char out[TK_CLIENT_ADDR_MAX];
    tk_client_addr_resolve(peer, xff, xri, trusted, out);
    return out;
}

static void trusted_lists(void **state)
{
    (void)state;
    const char *t = "127.0.0.1, ::1,10.0.0.0/8 fd00::/8";
    assert_true(tk_client_addr_trusted("127.0.0.1", t));
    assert_true(tk_client_addr_trusted("::1", t));
    assert_true(tk_client_addr_trusted("10.200.3.4", t));
    assert_true(tk_client_addr_trusted("::ffff:10.1.1.1", t)); /* IPv4-mapped */
    assert_true(tk_client_addr_trusted("fd12::7", t));
    assert_false(tk_client_addr_trusted("11.0.0.1", t));
    assert_false(tk_client_addr_trusted("127.0.0.2", t));
    assert_false(tk_client_addr_trusted("fe80::1", t));
    assert_false(tk_client_addr_trusted("not an address", t));
    assert_false(tk_client_addr_trusted("127.0.0.1", ""));
    assert_false(tk_client_addr_trusted("127.0.0.1", "127.0.0.1/99, garbage"));
}

static void headers_only_from_trusted_peers(void **state)
{
    (void)state;
    /* An untrusted peer's headers are anyone's: ignored. */
    assert_string_equal(resolve("203.0.113.9", "1.2.3.4", "5.6.7.8", "127.0.0.1"), "203.0.113.9");
    assert_string_equal(resolve("127.0.0.1", "1.2.3.4", NULL, ""), "127.0.0.1");
    /* A trusted proxy: the right-most hop that is not itself a trusted proxy. */
    assert_string_equal(resolve("127.0.0.1", "1.2.3.4", NULL, "127.0.0.1"), "1.2.3.4");
    assert_string_equal(
        resolve("127.0.0.1", "6.6.6.6, 1.2.3.4, 10.0.0.2", NULL, "127.0.0.1,10.0.0.0/8"),
        "1.2.3.4"); /* the client's own claim (6.6.6.6) is never reached */
    assert_string_equal(resolve("127.0.0.1", "garbage, 1.2.3.4", NULL, "127.0.0.1"), "1.2.3.4");
    assert_string_equal(resolve("127.0.0.1", " 2001:db8::5 ", NULL, "127.0.0.1"), "2001:db8::5");
    /* Every hop trusted: the left-most. Nothing usable: the peer. */
    assert_string_equal(resolve("127.0.0.1", "10.0.0.3, 10.0.0.2", NULL, "127.0.0.1,10.0.0.0/8"),
                        "10.0.0.3");
    assert_string_equal(resolve("127.0.0.1", "unknown", NULL, "127.0.0.1"), "127.0.0.1");
    /* X-Real-IP only without X-Forwarded-For. */
    assert_string_equal(resolve("127.0.0.1", NULL, "9.9.9.9", "127.0.0.1"), "9.9.9.9");
    assert_string_equal(resolve("127.0.0.1", "1.2.3.4", "9.9.9.9", "127.0.0.1"), "1.2.3.4");
    assert_string_equal(resolve("127.0.0.1", NULL, "nonsense", "127.0.0.1"), "127.0.0.1");
    assert_string_equal(resolve("", NULL, NULL, "127.0.0.1"), "");
}

TK_TEST_MAIN(NULL, NULL, cmocka_unit_test(trusted_lists),
             cmocka_unit_test(headers_only_from_trusted_peers))
