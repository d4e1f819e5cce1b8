/*
 * test_ev_envelope.c - the CloudEvents envelope: init/encode/decode round trips for every event
 * type, the member order and money printing of the encoding, and a table of malformed records
 * (plus every truncation of a valid one) that decode must refuse with TK_EINVAL, leaving nothing
 * to release.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ev_sample_data.h"
#include "ev_catalog.h"
#include "ev_envelope.h"
#include "ev_ticket.h"

/* A valid encoded envelope of @p type. Owned, free(). */
static char *encoded_sample(const char *type, size_t *len)
{
    ev_sample_t s;
    ev_envelope_t env;
    tk_err_t err = {0};
    char *out = NULL;
    assert_int_equal(ev_sample_get(type, &s), 0);
    assert_int_equal(ev_envelope_init(&env, s.type, s.subject, s.aggregateversion,
                                      EV_SAMPLE_CORRELATION, s.data, &err),
                     0);
    assert_int_equal(ev_envelope_encode(&env, &out, len, &err), 0);
    ev_envelope_release(&env);
    return out;
}

static bool is_zeroed(const ev_envelope_t *env)
{
    static const ev_envelope_t zero;
    return memcmp(env, &zero, sizeof(zero)) == 0;
}

static void every_type_round_trips(void **state)
{
    (void)state;
    for (size_t i = 0; i < ev_catalog_count(); i++) {
        const ev_type_info_t *t = ev_catalog_at(i);
        ev_sample_t s;
        ev_envelope_t env, back;
        tk_err_t err = {0};
        char *text = NULL;
        size_t len = 0;
        assert_int_equal(ev_sample_get(t->name, &s), 0);
        json_t *expected = json_deep_copy(s.data);
        if (ev_envelope_init(&env, s.type, s.subject, s.aggregateversion, EV_SAMPLE_CORRELATION,
                             s.data, &err) != 0)
            fail_msg("%s: init: %s", t->name, err.message);
        assert_true(tk_uuid_valid(env.id));
        assert_string_equal(env.source, t->source);
        char path[96];
        assert_int_equal(ev_catalog_schema_path(t, t->version, path, sizeof(path)), 0);
        assert_string_equal(env.dataschema, path);
        assert_int_equal(ev_envelope_schema_version(&env), 1);
        assert_int_equal(ev_envelope_encode(&env, &text, &len, &err), 0);
        assert_int_equal(len, strlen(text));
        if (ev_envelope_decode(text, len, &back, &err) != 0)
            fail_msg("%s: decode: %s", t->name, err.message);
        assert_string_equal(back.id, env.id);
        assert_string_equal(back.type, t->name);
        assert_string_equal(back.source, env.source);
        assert_string_equal(back.subject, s.subject);
        assert_string_equal(back.time, env.time);
        assert_string_equal(back.dataschema, env.dataschema);
        assert_int_equal(back.aggregateversion, s.aggregateversion);
        assert_string_equal(back.correlationid, EV_SAMPLE_CORRELATION);
        assert_true(json_equal(back.data, expected));
        /* The text read is kept (borrowed) as the envelope's encoding, and it is: encoding what
         * was decoded gives the same bytes. */
        assert_ptr_equal(back.raw, text);
        assert_int_equal(back.raw_len, len);
        assert_null(env.raw); /* built, not read */
        char *again = NULL;
        assert_int_equal(ev_envelope_encode(&back, &again, NULL, &err), 0);
        assert_string_equal(again, text);
        free(again);
        free(text);
        json_decref(expected);
        ev_envelope_release(&back);
        ev_envelope_release(&env);
        assert_true(is_zeroed(&env));
    }
}

static void encoding_has_the_contract_member_order_and_money(void **state)
{
    (void)state;
    static const char *const order[] = {"specversion",     "id",         "type",
                                        "source",          "subject",    "time",
                                        "datacontenttype", "dataschema", "aggregateversion",
                                        "correlationid",   "data"};
    size_t len = 0;
    char *text = encoded_sample("ticket:created", &len);
    assert_true(strncmp(text, "{\"specversion\":\"1.0\",\"id\":\"", 27) == 0);
    assert_non_null(strstr(text, "\"price\":19.99,"));
    assert_non_null(strstr(text, "\"datacontenttype\":\"application/json\","));
    assert_non_null(
        strstr(text, "\"dataschema\":\"schemas/events/ticket.created.v1.json\",\"aggregateversion\""
                     ":0,\"correlationid\":\"" EV_SAMPLE_CORRELATION "\",\"data\":{\"id\":"));
    assert_null(strstr(text, "\": ")); /* compact */
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    size_t k = 0;
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        assert_true(k < sizeof(order) / sizeof(order[0]));
        assert_string_equal(key, order[k++]);
    }
    assert_int_equal(k, sizeof(order) / sizeof(order[0]));
    json_decref(root);
    free(text);
}

static void init_refuses_bad_arguments_and_consumes_data(void **state)
{
    (void)state;
    ev_sample_t s;
    ev_envelope_t env;
    tk_err_t err = {0};
    char long_id[80];
    memset(long_id, 'r', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    static const struct {
        const char *type, *subject;
        int64_t version;
        const char *correlationid;
        const char *field;
    } cases[] = {
        {"ticket:deleted", EV_SAMPLE_TICKET, 0, NULL, "type"},
        {NULL, EV_SAMPLE_TICKET, 0, NULL, "type"},
        {"ticket:created", "not-a-uuid", 0, NULL, "subject"},
        {"ticket:created", NULL, 0, NULL, "subject"},
        {"ticket:created", EV_SAMPLE_TICKET, -1, NULL, "aggregateversion"},
        {"ticket:created", EV_SAMPLE_TICKET, 0, "bad \xff utf8", "correlationid"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(ev_sample_get("ticket:created", &s), 0);
        assert_int_equal(ev_envelope_init(&env, cases[i].type, cases[i].subject, cases[i].version,
                                          cases[i].correlationid, s.data, &err),
                         TK_EINVAL);
        assert_string_equal(err.field, cases[i].field);
        assert_true(is_zeroed(&env));
        ev_envelope_release(&env);
    }
    assert_int_equal(ev_sample_get("ticket:created", &s), 0);
    assert_int_equal(ev_envelope_init(&env, s.type, s.subject, 0, long_id, s.data, &err),
                     TK_EINVAL);
    assert_string_equal(err.field, "correlationid");

    /* NULL data (a failed to_json), data of another type, data that is not an object. */
    assert_int_equal(
        ev_envelope_init(&env, "ticket:created", EV_SAMPLE_TICKET, 0, NULL, NULL, &err), TK_EINVAL);
    assert_string_equal(err.field, "data");
    assert_int_equal(ev_sample_get("order:created", &s), 0);
    assert_int_equal(
        ev_envelope_init(&env, "ticket:created", EV_SAMPLE_TICKET, 0, NULL, s.data, &err),
        TK_EINVAL);
    assert_true(strncmp(err.field, "data.", 5) == 0);
    assert_true(strncmp(err.message, "data.", 5) == 0);
    assert_int_equal(
        ev_envelope_init(&env, "ticket:created", EV_SAMPLE_TICKET, 0, NULL, json_array(), &err),
        TK_EINVAL);

    /* A ticket:created with an orderId is not a valid event. */
    ev_ticket_t t = {.id = EV_SAMPLE_TICKET,
                     .title = "x",
                     .price_cents = 100,
                     .user_id = EV_SAMPLE_USER,
                     .order_id = EV_SAMPLE_ORDER};
    assert_int_equal(ev_envelope_init(&env, "ticket:created", EV_SAMPLE_TICKET, 0, "",
                                      ev_ticket_created_to_json(&t), &err),
                     TK_EINVAL);
    assert_string_equal(err.field, "data.orderId");
    /* NULL correlation id is "". */
    assert_int_equal(ev_sample_get("ticket:created", &s), 0);
    assert_int_equal(ev_envelope_init(&env, s.type, s.subject, 0, NULL, s.data, &err), 0);
    assert_string_equal(env.correlationid, "");
    ev_envelope_release(&env);
}

static void encode_refuses_tampered_envelopes(void **state)
{
    (void)state;
    ev_sample_t s;
    ev_envelope_t env;
    tk_err_t err = {0};
    char *out = NULL;
    assert_int_equal(ev_sample_get("payment:created", &s), 0);
    assert_int_equal(ev_envelope_init(&env, s.type, s.subject, 0, NULL, s.data, &err), 0);

    ev_envelope_t bad = env;
    strcpy(bad.type, "payment:deleted");
    assert_int_equal(ev_envelope_encode(&bad, &out, NULL, &err), TK_EINVAL);
    bad = env;
    strcpy(bad.source, "ticketing/orders");
    assert_int_equal(ev_envelope_encode(&bad, &out, NULL, &err), TK_EINVAL);
    bad = env;
    bad.time[10] = ' ';
    assert_int_equal(ev_envelope_encode(&bad, &out, NULL, &err), TK_EINVAL);
    bad = env;
    memset(bad.correlationid, 'c', sizeof(bad.correlationid)); /* unterminated */
    assert_int_equal(ev_envelope_encode(&bad, &out, NULL, &err), TK_EINVAL);
    bad = env;
    strcpy(bad.dataschema, "schemas/events/payment.created.v2.json");
    assert_int_equal(ev_envelope_encode(&bad, &out, NULL, &err), TK_EINVAL);
    bad = env;
    bad.data = NULL;
    assert_int_equal(ev_envelope_encode(&bad, &out, NULL, &err), TK_EINVAL);
    assert_int_equal(ev_envelope_encode(NULL, &out, NULL, &err), TK_EINVAL);

    /* Data changed after init is checked again. */
    json_object_set_new(env.data, "stripeId", json_integer(5));
    assert_int_equal(ev_envelope_encode(&env, &out, NULL, &err), TK_EINVAL);
    assert_string_equal(err.field, "data.stripeId");
    /* An unknown member is fine, but not one that makes the record bigger than 64 KiB. */
    json_object_set_new(env.data, "stripeId", json_string("pi_1"));
    char *big = malloc(EV_ENVELOPE_MAX_BYTES + 1);
    memset(big, 'z', EV_ENVELOPE_MAX_BYTES);
    big[EV_ENVELOPE_MAX_BYTES] = '\0';
    json_object_set_new(env.data, "note", json_string(big));
    assert_int_equal(ev_envelope_encode(&env, &out, NULL, &err), TK_EINVAL);
    json_object_set_new(env.data, "note", json_string("small"));
    assert_int_equal(ev_envelope_encode(&env, &out, NULL, &err), 0);
    assert_non_null(out);
    free(out);
    free(big);
    ev_envelope_release(&env);
}

/* Replace the first occurrence of @p from in @p s by @p to. Owned. */
static char *replace(const char *s, const char *from, const char *to)
{
    const char *at = strstr(s, from);
    assert_non_null(at);
    size_t n = strlen(s) - strlen(from) + strlen(to) + 1;
    char *out = malloc(n);
    size_t pre = (size_t)(at - s);
    memcpy(out, s, pre);
    strcpy(out + pre, to);
    strcat(out, at + strlen(from));
    return out;
}

/* The valid record all malformed cases start from (fixed id and time, so cases can name them). */
#define GOOD                                                                                       \
    "{\"specversion\":\"1.0\",\"id\":\"11111111-2222-4333-8444-555555555555\",\"type\":\"ticket:"  \
    "created\",\"source\":\"ticketing/tickets\",\"subject\":\"" EV_SAMPLE_TICKET "\",\"time\":"    \
    "\"2026-11-28T05:49:12.123Z\",\"datacontenttype\":\"application/json\",\"dataschema\":"        \
    "\"schemas/events/ticket.created.v1.json\",\"aggregateversion\":0,\"correlationid\":\"r1\","   \
    "\"data\":{\"id\":\"" EV_SAMPLE_TICKET "\",\"version\":0,\"title\":\"t\",\"price\":19.99,"     \
    "\"userId\":\"" EV_SAMPLE_USER "\"}}"

static const struct {
    const char *from, *to; /* replacement applied to GOOD */
    const char *field;     /* expected err.field */
} mutations[] = {
    {"\"specversion\":\"1.0\",", "", "specversion"},
    {"\"specversion\":\"1.0\"", "\"specversion\":\"0.3\"", "specversion"},
    {"\"specversion\":\"1.0\"", "\"specversion\":1.0", "specversion"},
    {"\"specversion\":\"1.0\"", "\"specversion\":null", "specversion"},
    {"\"id\":\"11111111-2222-4333-8444-555555555555\",", "", "id"},
    {"11111111-2222-4333-8444-555555555555", "11111111-2222-4333-8444-55555555555", "id"},
    {"11111111-2222-4333-8444-555555555555", "11111111-2222-4333-8444-55555555555g", "id"},
    {"\"id\":\"11111111-2222-4333-8444-555555555555\"", "\"id\":11111111", "id"},
    {"\"type\":\"ticket:created\",", "", "type"},
    {"ticket:created\"", "ticket:deleted\"", "type"},
    {"ticket:created\"", "Ticket:Created\"", "type"},
    {"\"type\":\"ticket:created\"", "\"type\":[\"ticket:created\"]", "type"},
    {"ticket:created\"",
     "ticket:createdxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"",
     "type"},
    {"\"source\":\"ticketing/tickets\",", "", "source"},
    {"ticketing/tickets", "ticketing/orders", "source"},
    {"\"source\":\"ticketing/tickets\"", "\"source\":{}", "source"},
    {"\"subject\":\"" EV_SAMPLE_TICKET "\",", "", "subject"},
    {"\"subject\":\"" EV_SAMPLE_TICKET "\"", "\"subject\":\"ticket-1\"", "subject"},
    {"\"subject\":\"" EV_SAMPLE_TICKET "\"", "\"subject\":null", "subject"},
    {"\"time\":\"2026-11-28T05:49:12.123Z\",", "", "time"},
    {"2026-11-28T05:49:12.123Z", "2026-11-28T05:49:12Z", "time"},
    {"2026-11-28T05:49:12.123Z", "2026-11-28 05:49:12.123Z", "time"},
    {"2026-11-28T05:49:12.123Z", "2026-11-28T06:49:12.123+01:00", "time"},
    {"2026-11-28T05:49:12.123Z", "2026-13-28T05:49:12.123Z", "time"},
    {"2026-11-28T05:49:12.123Z", "2026-11-31T05:49:12.123Z", "time"},
    {"\"time\":\"2026-11-28T05:49:12.123Z\"", "\"time\":1795845000123", "time"},
    {"\"datacontenttype\":\"application/json\"", "\"datacontenttype\":\"text/plain\"",
     "datacontenttype"},
    {"\"datacontenttype\":\"application/json\"", "\"datacontenttype\":null", "datacontenttype"},
    {"\"dataschema\":\"schemas/events/ticket.created.v1.json\",", "", "dataschema"},
    {"ticket.created.v1.json", "ticket.updated.v1.json", "dataschema"},
    {"ticket.created.v1.json", "ticket.created.v0.json", "dataschema"},
    {"ticket.created.v1.json", "ticket.created.v01.json", "dataschema"},
    {"ticket.created.v1.json", "ticket.created.v2.json", "dataschema"}, /* newer than known */
    {"ticket.created.v1.json", "ticket.created.v1.JSON", "dataschema"},
    {"ticket.created.v1.json", "ticket.created.v99999.json", "dataschema"},
    {"schemas/events/ticket.created.v1.json", "https://x/ticket.created.v1.json", "dataschema"},
    {"\"aggregateversion\":0,", "", "aggregateversion"},
    {"\"aggregateversion\":0", "\"aggregateversion\":-1", "aggregateversion"},
    {"\"aggregateversion\":0", "\"aggregateversion\":\"0\"", "aggregateversion"},
    {"\"aggregateversion\":0", "\"aggregateversion\":0.5", "aggregateversion"},
    {"\"correlationid\":\"r1\"", "\"correlationid\":7", "correlationid"},
    {"\"correlationid\":\"r1\"", "\"correlationid\":null", "correlationid"},
    {"\"correlationid\":\"r1\"",
     "\"correlationid\":\"0123456789012345678901234567890123456789012345678901234567890123\"",
     "correlationid"},
    {",\"data\":{\"id\":\"" EV_SAMPLE_TICKET "\",\"version\":0,\"title\":\"t\",\"price\":19.99,"
     "\"userId\":\"" EV_SAMPLE_USER "\"}",
     "", "data"},
    {"\"data\":{", "\"data\":null,\"x\":{", "data"},
    {"\"data\":{", "\"data\":\"{}\",\"x\":{", "data"},
    {"\"data\":{", "\"data\":[],\"x\":{", "data"},
    {"\"version\":0,", "\"version\":\"0\",", "data.version"},
    {"\"title\":\"t\"", "\"title\":5", "data.title"},
    {"\"price\":19.99", "\"price\":\"19.99\"", "data.price"},
    {"\"price\":19.99", "\"price\":0", "data.price"},
    {",\"userId\":\"" EV_SAMPLE_USER "\"", "", "data.userId"},
    /* JSON-level problems */
    {"\"correlationid\":\"r1\"", "\"correlationid\":\"r1\",\"type\":\"ticket:created\"", ""},
    {"\"title\":\"t\"", "\"title\":\"t\",\"title\":\"u\"", ""},
    {"\"title\":\"t\"", "\"title\":\"t\\u0000\"", ""},
    {"\"title\":\"t\"", "\"title\":\"\xff\xfe\"", ""},
    {"\"title\":\"t\"", "\"title\":'t'", ""},
    {"\"price\":19.99", "\"price\":NaN", ""},
    {"\"price\":19.99", "\"price\":Infinity", ""},
    {"\"price\":19.99", "\"price\":1e999", ""},
    {"\"aggregateversion\":0", "\"aggregateversion\":99999999999999999999", ""},
    {"\"userId\"", "userId", ""},
    {"}}", "}},", ""},
    {"}}", "}}}", ""},
    {"}}", "}} x", ""},
    {"{\"specversion\"", "[{\"specversion\"", ""},
};

static void malformed_records_are_rejected(void **state)
{
    (void)state;
    ev_envelope_t env;
    tk_err_t err = {0};
    assert_int_equal(ev_envelope_decode(GOOD, strlen(GOOD), &env, &err), 0);
    ev_envelope_release(&env);
    for (size_t i = 0; i < sizeof(mutations) / sizeof(mutations[0]); i++) {
        char *text = replace(GOOD, mutations[i].from, mutations[i].to);
        tk_err_clear(&err);
        int rc = ev_envelope_decode(text, strlen(text), &env, &err);
        if (rc != TK_EINVAL)
            fail_msg("mutation %zu accepted: %s", i, text);
        if (strcmp(err.field, mutations[i].field) != 0)
            fail_msg("mutation %zu: field '%s', want '%s' (%s)", i, err.field, mutations[i].field,
                     err.message);
        assert_true(err.message[0] != '\0');
        assert_true(is_zeroed(&env));
        ev_envelope_release(&env);
        free(text);
    }
}

static void other_records_are_rejected(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "",
        " ",
        "null",
        "true",
        "42",
        "\"x\"",
        "[]",
        "{}",
        "[" GOOD "]",
        "{\"specversion\":\"1.0\"}",
        "{\"data\":{}}",
    };
    ev_envelope_t env;
    tk_err_t err = {0};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        assert_int_equal(ev_envelope_decode(texts[i], strlen(texts[i]), &env, &err), TK_EINVAL);
        assert_true(is_zeroed(&env));
    }
    assert_int_equal(ev_envelope_decode(NULL, 5, &env, &err), TK_EINVAL);
    assert_int_equal(ev_envelope_decode(GOOD, 0, &env, &err), TK_EINVAL);
    /* A NUL byte inside the buffer. */
    char withnul[] = GOOD;
    withnul[40] = '\0';
    assert_int_equal(ev_envelope_decode(withnul, sizeof(withnul) - 1, &env, &err), TK_EINVAL);
}

/* Every proper prefix of a valid record is invalid, and decoding one never reads past it. */
static void every_truncation_is_rejected(void **state)
{
    (void)state;
    size_t len = 0;
    char *text = encoded_sample("order:created", &len);
    ev_envelope_t env;
    tk_err_t err = {0};
    for (size_t n = 0; n < len; n++) {
        char *copy = malloc(n + 1); /* exact size, so ASan sees any overread */
        memcpy(copy, text, n);
        assert_int_equal(ev_envelope_decode(n ? copy : NULL, n, &env, &err), TK_EINVAL);
        assert_true(is_zeroed(&env));
        free(copy);
    }
    /* And the whole record, unterminated, is valid. */
    char *copy = malloc(len);
    memcpy(copy, text, len);
    assert_int_equal(ev_envelope_decode(copy, len, &env, &err), 0);
    ev_envelope_release(&env);
    free(copy);
    free(text);
}

/* GOOD with an unknown member "pad" that makes it @p n bytes long, into @p out (n + 1 bytes). */
static void padded(char *out, size_t n)
{
    int k = snprintf(out, n + 1, "%.*s,\"pad\":\"", (int)strlen(GOOD) - 1, GOOD);
    memset(out + k, 'p', n - (size_t)k - 2);
    out[n - 2] = '"';
    out[n - 1] = '}';
    out[n] = '\0';
}

static void oversize_and_deeply_nested_records_are_rejected(void **state)
{
    (void)state;
    ev_envelope_t env;
    tk_err_t err = {0};
    /* Over 64 KiB in an unknown member: refused before parsing. */
    size_t n = EV_ENVELOPE_MAX_BYTES + 100;
    char *big = malloc(n + 1);
    padded(big, n);
    assert_int_equal(ev_envelope_decode(big, n, &env, &err), TK_EINVAL);
    assert_true(is_zeroed(&env));
    /* Just under the limit, the same record is fine: unknown members are ignored. */
    size_t m = EV_ENVELOPE_MAX_BYTES;
    padded(big, m);
    assert_int_equal(ev_envelope_decode(big, m, &env, &err), 0);
    ev_envelope_release(&env);

    /* Nesting: 30000 levels fit in 64 KiB but exceed jansson's depth limit; 1000 do not. */
    for (size_t depth = 1000; depth <= 30000; depth *= 30) {
        size_t cap = strlen(GOOD) + 2 * depth + 16;
        char *deep = malloc(cap);
        int p = snprintf(deep, cap, "%.*s,\"x\":", (int)strlen(GOOD) - 1, GOOD);
        for (size_t i = 0; i < depth; i++)
            deep[p++] = '[';
        for (size_t i = 0; i < depth; i++)
            deep[p++] = ']';
        deep[p++] = '}';
        int rc = ev_envelope_decode(deep, (size_t)p, &env, &err);
        assert_int_equal(rc, depth > 2048 ? TK_EINVAL : 0);
        ev_envelope_release(&env);
        /* The same nesting as the data itself. */
        char *nested = replace(GOOD, "\"title\":\"t\"", "\"title\":[[[[[[[[[[]]]]]]]]]]");
        assert_int_equal(ev_envelope_decode(nested, strlen(nested), &env, &err), TK_EINVAL);
        assert_string_equal(err.field, "data.title");
        free(nested);
        free(deep);
    }
    free(big);
}

static void optional_members_and_extensions(void **state)
{
    (void)state;
    ev_envelope_t env;
    tk_err_t err = {0};
    char *a = replace(GOOD, "\"datacontenttype\":\"application/json\",", "");
    char *b = replace(a, "\"correlationid\":\"r1\",", "\"traceparent\":\"00-abc-01\",");
    assert_int_equal(ev_envelope_decode(b, strlen(b), &env, &err), 0);
    assert_string_equal(env.correlationid, "");
    char *text = NULL;
    assert_int_equal(ev_envelope_encode(&env, &text, NULL, &err), 0);
    assert_non_null(strstr(text, "\"datacontenttype\":\"application/json\""));
    assert_non_null(strstr(text, "\"correlationid\":\"\""));
    assert_null(strstr(text, "traceparent")); /* extensions are not kept */
    free(text);
    ev_envelope_release(&env);
    free(a);
    free(b);
    /* Upper-case UUIDs are UUIDs. */
    char *c = replace(GOOD, "11111111-2222-4333-8444-555555555555",
                      "ABCDEF11-2222-4333-8444-555555555555");
    assert_int_equal(ev_envelope_decode(c, strlen(c), &env, &err), 0);
    ev_envelope_release(&env);
    free(c);
}

static void release_accepts_zeroed_and_null(void **state)
{
    (void)state;
    ev_envelope_t env;
    memset(&env, 0, sizeof(env));
    ev_envelope_release(&env);
    ev_envelope_release(&env);
    ev_envelope_release(NULL);
    assert_int_equal(ev_envelope_schema_version(&env), TK_EINVAL);
    assert_int_equal(ev_envelope_schema_version(NULL), TK_EINVAL);
}

TK_TEST_MAIN(NULL, NULL, cmocka_unit_test(every_type_round_trips),
             cmocka_unit_test(encoding_has_the_contract_member_order_and_money),
             cmocka_unit_test(init_refuses_bad_arguments_and_consumes_data),
             cmocka_unit_test(encode_refuses_tampered_envelopes),
             cmocka_unit_test(malformed_records_are_rejected),
             cmocka_unit_test(other_records_are_rejected),
             cmocka_unit_test(every_truncation_is_rejected),
             cmocka_unit_test(oversize_and_deeply_nested_records_are_rejected),
             cmocka_unit_test(optional_members_and_extensions),
             cmocka_unit_test(release_accepts_zeroed_and_null))
