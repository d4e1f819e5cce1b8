/*
 * test_kafka_seek.c - tk_kafka_seek against the real broker when librdkafka answers a seek
 * slowly. The one-hour soak of 2026-12-02 (load average up to 54) restarted the expiration delay
 * stage 12 times in 22 minutes with "seek: Timed out waiting for 1 remaining partition seek(s)
 * to finish": librdkafka 2.0.2 waited for the seek replies 10 ms instead of the 10 s asked
 * (a millisecond count passed as microseconds, fixed in librdkafka 2.1.0). Here librdkafka's
 * main thread, which serves the seek, is held 100 ms by the log callback it calls for the seek
 * (debug=topic): the seek must still succeed and take effect, once per try.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "bb_test.h"
#include "tk/cfg.h"
#include "tk/kafka.h"

#define RECORDS 3
#define TRIES 5
#define HOLD_MS 100       /* how long the seek's reply is held up: 10x the 2.0.2 wait */
#define SEEK_WAIT_MS 5000 /* what the caller asks for */

static atomic_int held; /* seeks the log callback held up */

/* librdkafka's main thread logs "... received op SEEK ..." as it starts serving a seek, before
 * it replies: sleeping here delays the reply as a busy main thread on a loaded machine does. */
static void slow_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    (void)fac;
    if (strstr(buf, "op SEEK") == NULL)
        return;
    atomic_fetch_add(&held, 1);
    nanosleep(&(struct timespec){.tv_nsec = HOLD_MS * 1000000L}, NULL);
}

static rd_kafka_t *consumer(void)
{
    char errstr[256], group[64];
    bb_unique("bbtest_seek", group, sizeof(group));
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *const kv[] = {"bootstrap.servers",
                              tk_cfg()->kafka_brokers,
                              "group.id",
                              group,
                              "enable.auto.commit",
                              "false",
                              "debug",
                              "topic",
                              NULL};
    for (int i = 0; kv[i] != NULL; i += 2)
        assert_int_equal(rd_kafka_conf_set(conf, kv[i], kv[i + 1], errstr, sizeof(errstr)),
                         RD_KAFKA_CONF_OK);
    rd_kafka_conf_set_log_cb(conf, slow_log);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

/* The offset of the next record @p rk hands out (fails after 30 s without one). */
static int64_t next_offset(rd_kafka_t *rk)
{
    for (int i = 0; i < 150; i++) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m == NULL)
            continue;
        int64_t off = m->err == RD_KAFKA_RESP_ERR_NO_ERROR ? m->offset : -1;
        rd_kafka_message_destroy(m);
        if (off >= 0)
            return off;
    }
    fail_msg("no record within 30 s");
    return -1;
}

static void a_slow_seek_still_succeeds(void **state)
{
    (void)state;
    char topic[64];
    bb_unique("bbtest_seek", topic, sizeof(topic));
    bb_topic(topic, 1);
    tk_err_t err = {0};
    rd_kafka_t *producer = tk_kafka_producer_new(&err);
    assert_non_null(producer);
    for (int i = 0; i < RECORDS; i++)
        assert_int_equal(tk_kafka_produce_sync(producer, topic, "k", "v", 1, NULL, &err), 0);
    rd_kafka_destroy(producer);

    rd_kafka_t *rk = consumer();
    rd_kafka_topic_partition_list_t *from = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(from, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    assert_int_equal(rd_kafka_assign(rk, from), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(from);
    assert_int_equal(next_offset(rk), 0);
    assert_int_equal(next_offset(rk), 1); /* reading on: the seek below goes back */

    for (int i = 0; i < TRIES; i++) {
        rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(list, topic, 0)->offset = 0;
        int before = atomic_load(&held);
        int rc = tk_kafka_seek(rk, list, SEEK_WAIT_MS, &err);
        if (rc != 0)
            fail_msg("try %d: %s", i, err.message);
        assert_int_equal(list->elems[0].err, RD_KAFKA_RESP_ERR_NO_ERROR);
        rd_kafka_topic_partition_list_destroy(list);
        assert_true(atomic_load(&held) > before); /* this seek's reply was held up */
        assert_int_equal(next_offset(rk), 0);     /* and the seek took effect */
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

int main(void)
{
    bb_require_stack(false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_slow_seek_still_succeeds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
