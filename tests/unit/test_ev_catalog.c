/*
 * test_ev_catalog.c - the table of event types: lookups, topics, schema paths (checked against
 * the files in schemas/events/), and the upcaster hook, driven by a test-only type whose schema
 * went through three versions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ev_catalog.h"

#ifndef TK_SOURCE_DIR
#error "TK_SOURCE_DIR must name the repository root"
#endif

static const struct {
    const char *type, *topic, *schema;
} expected[] = {
    {"user:registered", "users", "user.registered"},
    {"ticket:created", "tickets", "ticket.created"},
    {"ticket:updated", "tickets", "ticket.updated"},
    {"order:created", "orders", "order.created"},
    {"order:cancelled", "orders", "order.cancelled"},
    {"order:completed", "orders", "order.completed"},
    {"expiration:complete", "expirations", "expiration.complete"},
    {"payment:created", "payments", "payment.created"},
    {"payment:refunded", "payments", "payment.refunded"},
    {"payment:expired", "payments", "payment.expired"},
};
#define EXPECTED_COUNT (sizeof(expected) / sizeof(expected[0]))

static void every_design_type_is_listed(void **state)
{
    (void)state;
    assert_int_equal(ev_catalog_count(), EXPECTED_COUNT);
    for (size_t i = 0; i < EXPECTED_COUNT; i++) {
        const ev_type_info_t *t = ev_catalog_find(expected[i].type);
        assert_non_null(t);
        assert_ptr_equal(t, ev_catalog_at(i));
        assert_string_equal(t->topic, expected[i].topic);
        assert_string_equal(ev_topic_of(expected[i].type), expected[i].topic);
        char source[64];
        snprintf(source, sizeof(source), "ticketing/%s", expected[i].topic);
        assert_string_equal(t->source, source);
        assert_string_equal(t->schema, expected[i].schema);
        assert_int_equal(t->version, 1);
        assert_null(t->upcast);
        assert_non_null(t->decode);
        assert_non_null(t->encode);
        assert_true(t->data_size <= EV_DATA_MAX_SIZE);
        /* The schema name is the type with '.' for ':'. */
        for (size_t k = 0; t->name[k] != '\0'; k++)
            assert_int_equal(t->schema[k], t->name[k] == ':' ? '.' : t->name[k]);
    }
    assert_null(ev_catalog_at(EXPECTED_COUNT));
    assert_null(ev_catalog_find("ticket:deleted"));
    assert_null(ev_catalog_find("Ticket:Created"));
    assert_null(ev_catalog_find(""));
    assert_null(ev_catalog_find(NULL));
    assert_null(ev_topic_of("nope"));
}

static void topics_are_the_designs(void **state)
{
    (void)state;
    static const char *const want[] = {"users",    "tickets",     "orders",
                                       "payments", "expirations", "expiration.delay"};
    for (size_t i = 0; i < EV_TOPIC_COUNT; i++)
        assert_string_equal(ev_topics[i], want[i]);
    assert_null(ev_topics[EV_TOPIC_COUNT]);
    /* Every event's topic is one of them. */
    for (size_t i = 0; i < ev_catalog_count(); i++) {
        bool found = false;
        for (size_t k = 0; k < EV_TOPIC_COUNT; k++)
            found = found || strcmp(ev_topics[k], ev_catalog_at(i)->topic) == 0;
        assert_true(found);
    }
}

/* Each catalog entry has its schema file, and the file's $id is the dataschema it is named by. */
static void schema_files_exist(void **state)
{
    (void)state;
    for (size_t i = 0; i < ev_catalog_count(); i++) {
        const ev_type_info_t *t = ev_catalog_at(i);
        char rel[96], file[512];
        assert_int_equal(ev_catalog_schema_path(t, t->version, rel, sizeof(rel)), 0);
        snprintf(file, sizeof(file), "%s/%s", TK_SOURCE_DIR, rel);
        json_error_t jerr;
        json_t *schema = json_load_file(file, 0, &jerr);
        if (schema == NULL)
            fail_msg("%s: %s", file, jerr.text);
        assert_string_equal(json_string_value(json_object_get(schema, "$id")), rel);
        json_decref(schema);
    }
}

static void schema_paths(void **state)
{
    (void)state;
    const ev_type_info_t *t = ev_catalog_find("order:created");
    char buf[96];
    assert_int_equal(ev_catalog_schema_path(t, 1, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "schemas/events/order.created.v1.json");
    assert_int_equal(ev_catalog_schema_path(t, 12, buf, sizeof(buf)), 0);
    assert_string_equal(buf, "schemas/events/order.created.v12.json");
    assert_int_equal(ev_catalog_schema_path(t, 0, buf, sizeof(buf)), TK_EINVAL);
    assert_int_equal(ev_catalog_schema_path(t, 1, buf, 10), TK_EINVAL);
    assert_string_equal(buf, "");

    static const struct {
        const char *path;
        int rc, version;
    } cases[] = {
        {"schemas/events/order.created.v1.json", 0, 1},
        {"schemas/events/order.created.v2.json", 0, 2},
        {"schemas/events/order.created.v9999.json", 0, 9999},
        {"schemas/events/order.created.v10000.json", TK_EINVAL, 0},
        {"schemas/events/order.created.v0.json", TK_EINVAL, 0},
        {"schemas/events/order.created.v01.json", TK_EINVAL, 0},
        {"schemas/events/order.created.v.json", TK_EINVAL, 0},
        {"schemas/events/order.created.v1.json ", TK_EINVAL, 0},
        {"schemas/events/order.created.v1", TK_EINVAL, 0},
        {"schemas/events/order.createdx.v1.json", TK_EINVAL, 0},
        {"schemas/events/order.cancelled.v1.json", TK_EINVAL, 0},
        {"/schemas/events/order.created.v1.json", TK_EINVAL, 0},
        {"schemas/events/", TK_EINVAL, 0},
        {"", TK_EINVAL, 0},
        {NULL, TK_EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int v = -1;
        tk_err_t err = {0};
        int rc = ev_catalog_schema_version(t, cases[i].path, &v, &err);
        if (rc != cases[i].rc)
            fail_msg("case %zu (%s): rc %d", i, cases[i].path ? cases[i].path : "NULL", rc);
        if (rc == 0)
            assert_int_equal(v, cases[i].version);
        else
            assert_string_equal(err.field, "dataschema");
    }
}

/*
 * A test-only type whose data went through three shapes:
 *   v1 {"cost": "12.50"}   (a string, as the original's JSON bodies allowed)
 *   v2 {"cost": 12.5}
 *   v3 {"price": 12.5}     (current)
 */
static json_t *upcast_thing(const json_t *old, int from_version)
{
    const json_t *cost = json_object_get(old, "cost");
    json_t *price = NULL;
    if (from_version == 1 && json_is_string(cost))
        price = json_real(strtod(json_string_value(cost), NULL));
    else if (from_version == 2 && json_is_number(cost))
        price = json_deep_copy(cost);
    if (price == NULL)
        return NULL;
    json_t *out = json_deep_copy(old);
    json_object_del(out, "cost");
    json_object_set_new(out, "price", price);
    return out;
}

static json_t *upcast_to_array(const json_t *old, int from_version)
{
    (void)old;
    (void)from_version;
    return json_array();
}

/* A test-only type "test:<name>" of schema "test.<name>" at @p version, on the topic "tests". */
static ev_type_info_t test_type(const char *name, const char *schema, int version,
                                ev_upcast_fn upcast)
{
    return (ev_type_info_t){.name = name,
                            .topic = "tests",
                            .source = "ticketing/tests",
                            .schema = schema,
                            .version = version,
                            .upcast = upcast};
}

static void upcasters_table(void **state)
{
    (void)state;
    const ev_type_info_t thing_v3 = test_type("test:thing", "test.thing", 3, upcast_thing);
    const ev_type_info_t thing_v2_no_upcaster = test_type("test:plain", "test.plain", 2, NULL);
    const ev_type_info_t thing_v2_bad_upcaster =
        test_type("test:bad", "test.bad", 2, upcast_to_array);
    const struct {
        const ev_type_info_t *type;
        int from_version;
        const char *in;
        int rc;
        const char *out; /* expected data after the call: the input when it failed */
    } cases[] = {
        {&thing_v3, 3, "{\"price\":1}", 0, "{\"price\":1}"},
        {&thing_v3, 2, "{\"cost\":12.5,\"x\":1}", 0, "{\"x\":1,\"price\":12.5}"},
        {&thing_v3, 1, "{\"cost\":\"12.50\"}", 0, "{\"price\":12.5}"},
        {&thing_v3, 1, "{\"cost\":12.5}", TK_EINVAL, "{\"cost\":12.5}"},
        {&thing_v3, 2, "{}", TK_EINVAL, "{}"},
        {&thing_v3, 4, "{\"price\":1}", TK_EINVAL, "{\"price\":1}"},
        {&thing_v3, 0, "{\"price\":1}", TK_EINVAL, "{\"price\":1}"},
        {&thing_v3, -1, "{\"price\":1}", TK_EINVAL, "{\"price\":1}"},
        {&thing_v2_no_upcaster, 1, "{\"a\":1}", TK_EINVAL, "{\"a\":1}"},
        {&thing_v2_no_upcaster, 2, "{\"a\":1}", 0, "{\"a\":1}"},
        {&thing_v2_bad_upcaster, 1, "{\"a\":1}", TK_EINVAL, "{\"a\":1}"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_error_t jerr;
        json_t *data = json_loads(cases[i].in, 0, &jerr);
        json_t *before = data;
        json_t *want = json_loads(cases[i].out, 0, &jerr);
        tk_err_t err = {0};
        int rc = ev_catalog_upcast(cases[i].type, &data, cases[i].from_version, &err);
        if (rc != cases[i].rc)
            fail_msg("case %zu: rc %d, want %d", i, rc, cases[i].rc);
        if (!json_equal(data, want)) {
            char *got = json_dumps(data, JSON_COMPACT);
            fail_msg("case %zu: got %s, want %s", i, got, cases[i].out);
        }
        if (rc != 0)
            assert_ptr_equal(data, before); /* still the caller's, unchanged */
        else
            assert_int_equal(err.code, 0);
        json_decref(data);
        json_decref(want);
    }
}

/* Every real type is at version 1 and has no upcaster: an older version cannot exist. */
static void real_types_refuse_unknown_versions(void **state)
{
    (void)state;
    for (size_t i = 0; i < ev_catalog_count(); i++) {
        const ev_type_info_t *t = ev_catalog_at(i);
        json_t *data = json_object();
        tk_err_t err = {0};
        assert_int_equal(ev_catalog_upcast(t, &data, 1, &err), 0);
        assert_int_equal(ev_catalog_upcast(t, &data, 2, &err), TK_EINVAL);
        assert_int_equal(ev_catalog_upcast(t, &data, 0, &err), TK_EINVAL);
        json_decref(data);
    }
    tk_err_t err = {0};
    json_t *data = json_object();
    assert_int_equal(ev_catalog_validate(NULL, data, &err), TK_EINVAL);
    const ev_type_info_t thing = test_type("test:thing", "test.thing", 3, upcast_thing);
    assert_int_equal(ev_catalog_validate(&thing, data, &err), TK_EINVAL); /* no decoder */
    json_decref(data);
}

TK_TEST_MAIN(NULL, NULL, cmocka_unit_test(every_design_type_is_listed),
             cmocka_unit_test(topics_are_the_designs), cmocka_unit_test(schema_files_exist),
             cmocka_unit_test(schema_paths), cmocka_unit_test(upcasters_table),
             cmocka_unit_test(real_types_refuse_unknown_versions))
