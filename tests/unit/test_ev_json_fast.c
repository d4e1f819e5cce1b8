/* test_ev_json_fast.c - the fast record parser (events/ev_json_fast.c): whatever it accepts,
 * json_loadb accepts as an equal tree; the records we publish take it; the rest goes to jansson. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"
#include <stdlib.h>
#include <string.h>

#include "ev_envelope.h"
#include "ev_json_int.h"

static const char RECORD[] =
    "{\"specversion\":\"1.0\",\"id\":\"da471d80-0513-47c0-92fb-28f419dc87b9\",\"type\":"
    "\"ticket:updated\",\"source\":\"ticketing/tickets\",\"subject\":"
    "\"6f1c2b8e-3c1d-4a6e-9b1a-2f3e4d5c6b7a\",\"time\":\"2026-12-02T06:03:51.094Z\","
    "\"datacontenttype\":\"application/json\",\"dataschema\":"
    "\"schemas/events/ticket.updated.v1.json\",\"aggregateversion\":2,\"correlationid\":"
    "\"corr-123\",\"data\":{\"id\":\"6f1c2b8e-3c1d-4a6e-9b1a-2f3e4d5c6b7a\",\"version\":2,"
    "\"title\":\"A concert ticket\",\"price\":19.99,\"userId\":"
    "\"1a2b3c4d-1111-4222-8333-444455556666\",\"tags\":[1,-0,0.5,true,false,null,[],{}]}}";

/* The property: fast accepts -> jansson accepts the same bytes, and the trees are equal. */
static void check_agrees(const char *buf, size_t len, int *fast_count)
{
    json_t *fast = ev__json_load_fast(buf, len);
    if (fast == NULL)
        return;
    json_error_t jerr;
    json_t *ref = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
    if (ref == NULL)
        fail_msg("fast parser accepted what jansson refuses (%s): %.*s", jerr.text, (int)len, buf);
    if (!json_equal(fast, ref))
        fail_msg("trees differ for: %.*s", (int)len, buf);
    json_decref(ref);
    json_decref(fast);
    (*fast_count)++;
}

static void published_records_take_the_fast_path(void **state)
{
    (void)state;
    json_t *data = json_pack("{s:s,s:i,s:s,s:f,s:s}", "id", "6f1c2b8e-3c1d-4a6e-9b1a-2f3e4d5c6b7a",
                             "version", 3, "title", "Front row", "price", 19.99, "userId",
                             "1a2b3c4d-1111-4222-8333-444455556666");
    ev_envelope_t env;
    tk_err_t err = {0};
    assert_int_equal(ev_envelope_init(&env, "ticket:updated",
                                      "6f1c2b8e-3c1d-4a6e-9b1a-2f3e4d5c6b7a", 3, "c-1", data, &err),
                     0);
    char *text = NULL;
    size_t len = 0;
    assert_int_equal(ev_envelope_encode(&env, &text, &len, &err), 0);
    int fast = 0;
    check_agrees(text, len, &fast);
    assert_int_equal(fast, 1); /* else the decoder runs at jansson's speed */
    check_agrees(RECORD, strlen(RECORD), &fast);
    assert_int_equal(fast, 2);
    free(text);
    ev_envelope_release(&env);
}

/* Inputs outside the subset, valid or not, are left to jansson (NULL). */
static void leaves_the_rest_to_jansson(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "{\"a\":\"\\u00e9\"}",         /* an escape */
        "{\"a\":\"\xc3\xa9\"}",        /* non-ASCII */
        "{\"a\":1e5}",                 /* an exponent */
        "{\"a\":1234567890123456789}", /* 19 digits */
        "{\"a\":1,\"a\":2}",           /* a duplicate key: jansson refuses */
        "{\"a\":01}",                  /* a leading zero: invalid */
        "{\"a\":1.}",                  /* invalid */
        "{\"a\":truex}",               /* invalid */
        "{\"a\":1} x",                 /* trailing bytes */
        "{\"a\":1",                    /* truncated */
        "[1,2]",                       /* not an object */
        "{\"a\":\"x\ty\"}",            /* a control character */
        "",
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *v = ev__json_load_fast(cases[i], strlen(cases[i]));
        if (v != NULL)
            fail_msg("accepted: %s", cases[i]);
    }
    /* a NUL byte inside */
    static const char nul[] = "{\"a\":\"x\0y\"}";
    assert_null(ev__json_load_fast(nul, sizeof(nul) - 1));
    char deep[512] = "";
    for (int i = 0; i < 40; i++)
        strcat(deep, "{\"a\":");
    strcat(deep, "1");
    for (int i = 0; i < 40; i++)
        strcat(deep, "}");
    assert_null(ev__json_load_fast(deep, strlen(deep)));
}

/* Mutations of a record (a byte replaced, deleted or inserted), from a fixed seed: every one
 * the fast parser accepts must be accepted by jansson as an equal tree. */
static void mutations_agree_with_jansson(void **state)
{
    (void)state;
    static const char alphabet[] = "{}[],:\"\\ 0123456789.-+eEtrufalsn\t\n\x01\x7f\xc3\xa9";
    size_t n = strlen(RECORD);
    char *buf = malloc(n + 2);
    unsigned seed = 14;
    int fast = 0;
    for (int round = 0; round < 20000; round++) {
        memcpy(buf, RECORD, n + 1);
        size_t len = n;
        seed = seed * 1103515245u + 12345u;
        size_t at = (seed >> 8) % n;
        seed = seed * 1103515245u + 12345u;
        char ch = alphabet[(seed >> 8) % (sizeof(alphabet) - 1)];
        switch (round % 3) {
        case 0:
            buf[at] = ch;
            break;
        case 1:
            memmove(buf + at, buf + at + 1, len - at);
            len--;
            break;
        default:
            memmove(buf + at + 1, buf + at, len - at + 1);
            buf[at] = ch;
            len++;
        }
        check_agrees(buf, len, &fast);
    }
    free(buf);
    assert_true(fast > 1000); /* the property was tested on many accepted inputs */
}

TK_TEST_MAIN(NULL, NULL, cmocka_unit_test(published_records_take_the_fast_path),
             cmocka_unit_test(leaves_the_rest_to_jansson),
             cmocka_unit_test(mutations_agree_with_jansson))
