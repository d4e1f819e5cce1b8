/* test_kafka.c - tk/kafka.h without a broker: the topic list of DESIGN.md section 3, event
 * headers, configuration errors reported through tk_err_t, the KAFKA_CONFIG_* site settings and
 * static membership (TK_INSTANCE_ID). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tk/cfg.h"
#include "tk/kafka.h"

/* The value of property @p name in handle @p rk's configuration, "" when unset (librdkafka
 * then answers RD_KAFKA_CONF_INVALID). */
static const char *setting(rd_kafka_t *rk, const char *name)
{
    static char buf[256];
    size_t size = sizeof(buf);
    if (rd_kafka_conf_get(rd_kafka_conf(rk), name, buf, &size) != RD_KAFKA_CONF_OK)
        return "";
    return buf;
}

/* @p rk (consumed) was made, and its property @p name is @p want. */
static void made_with(rd_kafka_t *rk, const char *name, const char *want)
{
    assert_non_null(rk);
    assert_string_equal(setting(rk, name), want);
    rd_kafka_destroy(rk);
}

static void reload(void)
{
    tk_err_t err = {0};
    assert_int_equal(tk_cfg_load(0, &err), 0);
}

static void topics_are_the_contracts(void **state)
{
    (void)state;
    static const char *const want[] = {"users",
                                       "tickets",
                                       "orders",
                                       "payments",
                                       "expirations",
                                       "expiration.delay",
                                       "expiration.deadletter"};
    const char *const *got = tk_kafka_topic_names();
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_string_equal(got[i], want[i]);
    assert_null(got[sizeof(want) / sizeof(want[0])]);
}

static void headers_carry_type_id_and_schema_version(void **state)
{
    (void)state;
    rd_kafka_headers_t *h = tk_kafka_headers_new("order:created", "id-1", "2");
    const void *v = NULL;
    size_t len = 0;
    assert_int_equal(rd_kafka_header_cnt(h), 3);
    assert_int_equal(rd_kafka_header_get_last(h, TK_KAFKA_H_TYPE, &v, &len), 0);
    assert_int_equal(len, strlen("order:created"));
    assert_memory_equal(v, "order:created", len);
    assert_int_equal(rd_kafka_header_get_last(h, TK_KAFKA_H_ID, &v, &len), 0);
    assert_memory_equal(v, "id-1", len);
    assert_int_equal(rd_kafka_header_get_last(h, TK_KAFKA_H_SCHEMAVERSION, &v, &len), 0);
    assert_memory_equal(v, "2", len);
    rd_kafka_headers_destroy(h);
    h = tk_kafka_headers_new("x", "y", NULL);
    assert_int_equal(rd_kafka_header_cnt(h), 2);
    rd_kafka_headers_destroy(h);
}

static void handles_are_created_without_a_broker(void **state)
{
    (void)state;
    tk_err_t err = {0};
    rd_kafka_t *p = tk_kafka_producer_new(&err);
    assert_non_null(p); /* librdkafka connects lazily */
    rd_kafka_destroy(p);
    rd_kafka_t *c = tk_kafka_consumer_new("unit.test", &err);
    assert_non_null(c);
    rd_kafka_destroy(c);
    assert_null(tk_kafka_consumer_new("", &err));
    assert_int_equal(err.code, TK_EINVAL);
}

static void site_settings_reach_every_handle(void **state)
{
    (void)state;
    tk_err_t err = {0};
    setenv("KAFKA_CONFIG_CLIENT_RACK", "rack-7", 1);
    setenv("KAFKA_CONFIG_SOCKET_KEEPALIVE_ENABLE", "true", 1);
    setenv("KAFKA_CONFIG_LINGER_MS", "17", 1); /* a tunable: the site's value wins */
    reload();
    rd_kafka_t *p = tk_kafka_producer_new(&err);
    assert_non_null(p);
    assert_string_equal(setting(p, "client.rack"), "rack-7");
    assert_string_equal(setting(p, "socket.keepalive.enable"), "true");
    assert_string_equal(setting(p, "linger.ms"), "17");
    assert_string_equal(setting(p, "enable.idempotence"), "true");
    rd_kafka_destroy(p);
    made_with(tk_kafka_consumer_new("unit.test", &err), "client.rack", "rack-7");
    unsetenv("KAFKA_CONFIG_CLIENT_RACK");
    unsetenv("KAFKA_CONFIG_SOCKET_KEEPALIVE_ENABLE");
    unsetenv("KAFKA_CONFIG_LINGER_MS");
    reload();
}

static void site_settings_cannot_weaken_the_guarantees(void **state)
{
    (void)state;
    /* Each refused when its client is made, with the property named where @p field says. */
    static const struct {
        const char *env, *value;
        bool consumer;
        const char *field; /* NULL: not checked */
    } refused[] = {
        {"KAFKA_CONFIG_ACKS", "1", false, "acks"},
        {"KAFKA_CONFIG_ENABLE_AUTO_COMMIT", "true", true, NULL},
        {"KAFKA_CONFIG_NO_SUCH_PROPERTY", "1", false, "no.such.property"},
    };
    tk_err_t err = {0};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        err = (tk_err_t){0};
        setenv(refused[i].env, refused[i].value, 1);
        reload();
        rd_kafka_t *rk = refused[i].consumer
                             ? tk_kafka_consumer_new_with("unit.test", NULL, NULL, &err)
                             : tk_kafka_producer_new(&err);
        if (rk != NULL || err.code != TK_EINVAL)
            fail_msg("%s=%s was not refused (code %d)", refused[i].env, refused[i].value, err.code);
        if (refused[i].field != NULL)
            assert_string_equal(err.field, refused[i].field);
        unsetenv(refused[i].env);
    }

    err = (tk_err_t){0};
    setenv("KAFKA_CONFIG_", "x", 1);
    assert_int_equal(tk_cfg_load(0, &err), TK_EINVAL);
    unsetenv("KAFKA_CONFIG_");
    reload();
}

static void members_are_static_with_an_instance_id(void **state)
{
    (void)state;
    tk_err_t err = {0};
    setenv("TK_INSTANCE_ID", "project-orders.2", 1);
    reload();
    made_with(tk_kafka_consumer_new_with("unit.test", NULL, NULL, &err), "group.instance.id",
              "project-orders.2");
    made_with(tk_kafka_consumer_new_tuned("unit.test", NULL, NULL, NULL, &err), "group.instance.id",
              "project-orders.2");
    /* A tool in the same group must not fence the running instance. */
    made_with(tk_kafka_consumer_new("unit.test", &err), "group.instance.id", "");

    setenv("TK_INSTANCE_ID", "bad id", 1);
    assert_int_equal(tk_cfg_load(0, &err), TK_EINVAL);
    assert_string_equal(err.field, "TK_INSTANCE_ID");
    unsetenv("TK_INSTANCE_ID");
    reload();
    made_with(tk_kafka_consumer_new_with("unit.test", NULL, NULL, &err), "group.instance.id", "");
}

static void transactional_producers_need_an_id_and_keep_it(void **state)
{
    (void)state;
    tk_err_t err = {0};
    assert_null(tk_kafka_producer_new_tx("", &err));
    assert_int_equal(err.code, TK_EINVAL);
    err = (tk_err_t){0};
    assert_null(tk_kafka_producer_new_tx(NULL, &err));
    assert_int_equal(err.code, TK_EINVAL);
    rd_kafka_t *p = tk_kafka_producer_new_tx("expiration.intake.expire.1", &err);
    assert_non_null(p);
    assert_string_equal(setting(p, "transactional.id"), "expiration.intake.expire.1");
    assert_string_equal(setting(p, "enable.idempotence"), "true");
    /* An open transaction of a killed process holds read_committed readers at most this long. */
    assert_string_equal(setting(p, "transaction.timeout.ms"), "10000");
    rd_kafka_destroy(p);
    /* A site cannot give every handle one transactional id (they would fence each other). */
    err = (tk_err_t){0};
    setenv("KAFKA_CONFIG_TRANSACTIONAL_ID", "x", 1);
    reload();
    assert_null(tk_kafka_producer_new_tx("expiration.intake.expire.1", &err));
    assert_int_equal(err.code, TK_EINVAL);
    unsetenv("KAFKA_CONFIG_TRANSACTIONAL_ID");
    reload();
}

TK_TEST_MAIN(NULL, NULL, cmocka_unit_test(topics_are_the_contracts),
             cmocka_unit_test(headers_carry_type_id_and_schema_version),
             cmocka_unit_test(handles_are_created_without_a_broker),
             cmocka_unit_test(site_settings_reach_every_handle),
             cmocka_unit_test(site_settings_cannot_weaken_the_guarantees),
             cmocka_unit_test(members_are_static_with_an_instance_id),
             cmocka_unit_test(transactional_producers_need_an_id_and_keep_it))
