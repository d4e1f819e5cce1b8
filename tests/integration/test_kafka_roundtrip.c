/*
 * test_kafka_roundtrip.c - the Kafka foundation against the real broker: the event topics are
 * created idempotently with the configs of DESIGN.md section 3, a record produced by our
 * producer (tk_kafka_produce_sync, acks=all) is consumed back by a real consumer with its key,
 * value and headers intact, and keys are partitioned as Java clients partition them (murmur2).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "bb_test.h"
#include "tk/cfg.h"
#include "tk/ids.h"
#include "tk/kafka.h"

/* The value of config @p name of @p topic, described through the Admin API, into out. */
static void topic_config(const char *topic, const char *name, char *out, size_t size)
{
    tk_err_t err = {0};
    char errstr[256];
    out[0] = '\0';
    rd_kafka_t *rk = tk_kafka_producer_new(&err);
    assert_non_null(rk);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_ConfigResource_t *res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic);
    rd_kafka_AdminOptions_t *opts =
        rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONFIGS);
    rd_kafka_AdminOptions_set_request_timeout(opts, 10000, errstr, sizeof(errstr));
    rd_kafka_DescribeConfigs(rk, &res, 1, opts, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
    assert_non_null(ev);
    assert_int_equal(rd_kafka_event_error(ev), 0);
    size_t nres = 0, nconf = 0;
    const rd_kafka_ConfigResource_t **rs =
        rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &nres);
    assert_int_equal(nres, 1);
    const rd_kafka_ConfigEntry_t **entries = rd_kafka_ConfigResource_configs(rs[0], &nconf);
    for (size_t i = 0; i < nconf; i++)
        if (strcmp(rd_kafka_ConfigEntry_name(entries[i]), name) == 0)
            snprintf(out, size, "%s", rd_kafka_ConfigEntry_value(entries[i]));
    rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_ConfigResource_destroy(res);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
}

static void event_topics_are_created_idempotently(void **state)
{
    (void)state;
    tk_err_t err = {0};
    assert_int_equal(tk_kafka_topics_create(&err), 0);
    assert_int_equal(tk_kafka_topics_create(&err), 0); /* TOPIC_ALREADY_EXISTS is success */
    char v[64], isr[16];
    snprintf(isr, sizeof(isr), "%d", tk_cfg()->kafka_min_insync_replicas);
    for (const char *const *t = tk_kafka_topic_names(); *t != NULL; t++) {
        topic_config(*t, "retention.ms", v, sizeof(v));
        assert_string_equal(v, "-1");
        topic_config(*t, "cleanup.policy", v, sizeof(v));
        assert_string_equal(v, "delete");
        topic_config(*t, "min.insync.replicas", v, sizeof(v));
        assert_string_equal(v, isr);
    }
}

static void produced_record_is_consumed_back(void **state)
{
    (void)state;
    tk_err_t err = {0};
    char topic[64], group[64], id[TK_UUID_LEN + 1], key[TK_UUID_LEN + 1], value[160];
    bb_unique("bbtest_rt", topic, sizeof(topic));
    bb_unique("bbtest_rt_group", group, sizeof(group));
    tk_uuid_new(id);
    tk_uuid_new(key);
    snprintf(value, sizeof(value), "{\"hello\":\"%s\"}", id);
    bb_topic(topic, 3);
    bb_topic(topic, 3); /* again: still success */

    rd_kafka_t *producer = tk_kafka_producer_new(&err);
    assert_non_null(producer);
    rd_kafka_headers_t *h = tk_kafka_headers_new("ticket:created", id, "1");
    assert_int_equal(tk_kafka_produce_sync(producer, topic, key, value, strlen(value), h, &err), 0);
    rd_kafka_headers_destroy(h);
    rd_kafka_destroy(producer);

    /* A real group consumer, subscribed: the path projectors use. */
    rd_kafka_t *consumer = tk_kafka_consumer_new(group, &err);
    assert_non_null(consumer);
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subs, topic, RD_KAFKA_PARTITION_UA);
    assert_int_equal(rd_kafka_subscribe(consumer, subs), 0);
    rd_kafka_topic_partition_list_destroy(subs);
    rd_kafka_message_t *m = NULL;
    int64_t deadline = tk_mono_ms() + 30000;
    while (tk_mono_ms() < deadline) {
        m = rd_kafka_consumer_poll(consumer, 200);
        if (m != NULL && m->err == 0)
            break;
        if (m != NULL)
            rd_kafka_message_destroy(m);
        m = NULL;
    }
    assert_non_null(m);
    assert_int_equal(m->key_len, strlen(key));
    assert_memory_equal(m->key, key, m->key_len);
    assert_int_equal(m->len, strlen(value));
    assert_memory_equal(m->payload, value, m->len);
    rd_kafka_headers_t *got = NULL;
    const void *hv = NULL;
    size_t hlen = 0;
    assert_int_equal(rd_kafka_message_headers(m, &got), 0);
    assert_int_equal(rd_kafka_header_get_last(got, TK_KAFKA_H_TYPE, &hv, &hlen), 0);
    assert_int_equal(hlen, strlen("ticket:created"));
    assert_memory_equal(hv, "ticket:created", hlen);
    assert_int_equal(rd_kafka_header_get_last(got, TK_KAFKA_H_ID, &hv, &hlen), 0);
    assert_memory_equal(hv, id, hlen);
    assert_int_equal(rd_kafka_header_get_last(got, TK_KAFKA_H_SCHEMAVERSION, &hv, &hlen), 0);
    assert_memory_equal(hv, "1", hlen);
    rd_kafka_message_destroy(m);
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
}

/* Kafka's Java Utils.murmur2 (its test vectors: "21" -> -973932308, "abc" -> 479470107). */
static int32_t java_murmur2(const unsigned char *d, size_t len)
{
    const uint32_t m = 0x5bd1e995;
    uint32_t h = 0x9747b28cu ^ (uint32_t)len;
    for (size_t i = 0; i + 4 <= len; i += 4) {
        uint32_t k =
            d[i] | (uint32_t)d[i + 1] << 8 | (uint32_t)d[i + 2] << 16 | (uint32_t)d[i + 3] << 24;
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    size_t t = len & ~(size_t)3;
    switch (len % 4) {
    case 3:
        h ^= (uint32_t)d[t + 2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)d[t + 1] << 8;
        /* fall through */
    case 1:
        h ^= d[t];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return (int32_t)h;
}

static void keys_land_where_java_clients_put_them(void **state)
{
    (void)state;
    enum { PARTITIONS = 6, KEYS = 24 };
    assert_int_equal(java_murmur2((const unsigned char *)"21", 2), -973932308);
    assert_int_equal(java_murmur2((const unsigned char *)"abc", 3), 479470107);
    char topic[64];
    bb_unique("bbtest_part", topic, sizeof(topic));
    bb_topic(topic, PARTITIONS);
    tk_err_t err = {0};
    rd_kafka_t *producer = tk_kafka_producer_new(&err);
    assert_non_null(producer);
    for (int i = 0; i < KEYS; i++) {
        char key[TK_UUID_LEN + 1];
        tk_uuid_new(key);
        tk_kafka_delivery_t dr = {0};
        assert_int_equal(tk_kafka_produce(producer, topic, key, "v", 1, NULL, &dr, &err), 0);
        while (!dr.done)
            rd_kafka_poll(producer, 100);
        assert_int_equal(dr.err, RD_KAFKA_RESP_ERR_NO_ERROR);
        int32_t h = java_murmur2((const unsigned char *)key, strlen(key));
        assert_int_equal(dr.partition, (h & 0x7fffffff) % PARTITIONS);
    }
    rd_kafka_destroy(producer);
}

int main(void)
{
    bb_require_stack(false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(event_topics_are_created_idempotently),
        cmocka_unit_test(produced_record_is_consumed_back),
        cmocka_unit_test(keys_land_where_java_clients_put_them),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
