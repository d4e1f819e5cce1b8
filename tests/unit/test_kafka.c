/* test_kafka.c - tk/kafka.h without a broker: the topic list of DESIGN.md section 3, event
 * headers, and configuration errors reported through tk_err_t. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "tk/kafka.h"

static void topics_are_the_contracts(void **state)
{
    (void)state;
    static const char *const want[] = {"users",    "tickets",     "orders",
                                       "payments", "expirations", "expiration.delay"};
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(topics_are_the_contracts),
        cmocka_unit_test(headers_carry_type_id_and_schema_version),
        cmocka_unit_test(handles_are_created_without_a_broker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
