/*
 * test_expiration_scheduler.c - the expiration scheduler against the real broker, each case on
 * private topics and groups, with short due times (seconds) instead of the 15-minute window:
 * due orders fire after their due time and never before, past due times fire at once, other
 * events and garbage are skipped, the delay record has the documented shape, a window change in
 * either direction fires every order on its own due time (delay.c's look-ahead), and
 * tk_expiration_status reports pending records and lateness.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ev_envelope.h"
#include "test_expiration_util.h"
#include "tk/cfg.h"
#include "tk/ids.h"
#include "tk/kafka.h"
#include "tk_test.h"

#define WAIT_MS 60000

/* Due in 2 s: each order gets an expiration:complete, built after its due time, carrying the
 * order id as subject, key and data, version 0 and the order's correlation id. */
static void due_orders_fire_after_due_time(void **state)
{
    (void)state;
    enum { N = 5 };
    xt_run_t x;
    xt_run_start(&x, 3, true);

    char ids[N][TK_UUID_LEN + 1], corr[N][32];
    int64_t due[N];
    rd_kafka_t *p = tk_test_producer();
    for (int i = 0; i < N; i++) {
        xt_uuid(ids[i]);
        snprintf(corr[i], sizeof(corr[i]), "req-%d", i);
        due[i] = tk_now_ms() + 2000;
        xt_publish_order_created(p, x.names.orders, ids[i], due[i], corr[i]);
    }
    xt_producer_free(p);

    xt_collect(x.col, N, WAIT_MS);
    assert_int_equal(xt_distinct(x.col), N);
    for (int i = 0; i < N; i++) {
        const xt_fired_t *f = xt_find(x.col, ids[i]);
        assert_non_null(f);
        assert_true(f->valid);
        assert_int_equal(f->aggregateversion, 0);
        assert_string_equal(f->correlation, corr[i]);
        assert_true(f->time_ms >= due[i]); /* not before its due time */
    }

    /* The delay topic holds {orderId, dueAt} with key = order id, one per order. */
    rd_kafka_t *c = NULL;
    {
        char errstr[256], group[TK_UUID_LEN + 1];
        tk_uuid_new(group);
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        rd_kafka_conf_set(conf, "bootstrap.servers", getenv("KAFKA_BROKERS"), errstr,
                          sizeof(errstr));
        rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr));
        c = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
        assert_non_null(c);
        rd_kafka_poll_set_consumer(c);
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(3);
        for (int i = 0; i < 3; i++)
            rd_kafka_topic_partition_list_add(l, x.names.delay, i)->offset =
                RD_KAFKA_OFFSET_BEGINNING;
        rd_kafka_assign(c, l);
        rd_kafka_topic_partition_list_destroy(l);
    }
    int seen = 0;
    int64_t deadline = tk_mono_ms() + 20000;
    while (seen < N && tk_mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 100);
        if (m == NULL)
            continue;
        if (m->err == 0) {
            tk_expiration_record_t rec;
            assert_int_equal(tk_expiration_record_decode(m->payload, m->len, &rec, NULL), 0);
            assert_int_equal(m->key_len, TK_UUID_LEN);
            assert_memory_equal(m->key, rec.order_id, TK_UUID_LEN);
            json_t *doc = json_loadb(m->payload, m->len, 0, NULL);
            assert_non_null(json_string_value(json_object_get(doc, "dueAt")));
            json_decref(doc);
            for (int i = 0; i < N; i++)
                if (strcmp(rec.order_id, ids[i]) == 0) {
                    assert_int_equal(rec.due_ms, due[i]);
                    assert_string_equal(rec.correlation_id, corr[i]);
                    seen++;
                }
        }
        rd_kafka_message_destroy(m);
    }
    assert_int_equal(seen, N);
    rd_kafka_consumer_close(c);
    rd_kafka_destroy(c);

    assert_int_equal(xt_run_stop(&x), 0);
}

/* A due time already in the past fires at once, while another partition waits for an hour. */
static void past_due_fires_at_once(void **state)
{
    (void)state;
    xt_run_t x;
    xt_run_start(&x, 2, true);

    /* The hour-long one must sit in the other delay partition: within one partition the past
     * one would wait behind it (see shorter_window_fires_late_behind_head_never_early). */
    char past[TK_UUID_LEN + 1], later[TK_UUID_LEN + 1];
    xt_uuid(past);
    do
        xt_uuid(later);
    while (rd_kafka_msg_partitioner_murmur2(NULL, later, TK_UUID_LEN, 2, NULL, NULL) ==
           rd_kafka_msg_partitioner_murmur2(NULL, past, TK_UUID_LEN, 2, NULL, NULL));
    int64_t later_due = tk_now_ms() + 3600 * 1000;
    rd_kafka_t *p = tk_test_producer();
    xt_publish_order_created(p, x.names.orders, later, later_due, NULL);
    xt_publish_order_created(p, x.names.orders, past, tk_now_ms() - 60000, NULL);
    xt_producer_free(p);

    xt_collect(x.col, 1, WAIT_MS);
    assert_non_null(xt_find(x.col, past));
    assert_true(xt_find(x.col, past)->valid);
    /* The hour-long one is pending, not fired. */
    assert_null(xt_find(x.col, later));

    assert_int_equal(xt_run_stop(&x), 0);
}

/* The records of the dead-letter topic @p topic (one partition), read from the beginning until
 * @p want arrived or WAIT_MS passed: "<dlq_topic>|<value>" each, in order, into @p out. */
static size_t read_dead_letters(const char *topic, size_t want, char out[][160])
{
    char errstr[256], group[TK_UUID_LEN + 1];
    tk_uuid_new(group);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "bootstrap.servers", tk_cfg()->kafka_brokers, errstr, sizeof(errstr));
    rd_kafka_conf_set(conf, "group.id", group, errstr, sizeof(errstr));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
    assert_non_null(rk);
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(parts, topic, 0)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_assign(rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    size_t n = 0;
    int64_t deadline = tk_mono_ms() + WAIT_MS;
    while (n < want && tk_mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            rd_kafka_headers_t *h = NULL;
            const void *v = NULL;
            size_t vlen = 0;
            assert_int_equal(rd_kafka_message_headers(m, &h), RD_KAFKA_RESP_ERR_NO_ERROR);
            assert_int_equal(rd_kafka_header_get_last(h, "dlq_topic", &v, &vlen), 0);
            const void *e = NULL;
            size_t elen = 0;
            assert_int_equal(rd_kafka_header_get_last(h, "dlq_error", &e, &elen), 0);
            assert_true(elen > 0);
            assert_int_equal(rd_kafka_header_get_last(h, "dlq_offset", &e, &elen), 0);
            snprintf(out[n++], 160, "%.*s|%.*s", (int)vlen, (const char *)v, (int)m->len,
                     (const char *)m->payload);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return n;
}

/* Other order events on the orders topic are skipped; garbage on the orders topic and on the
 * delay topic is dead-lettered (issue 11 item 13, DESIGN.md section 6): copied, with its source
 * and the error, to the dead-letter topic, then committed past; the valid records behind still
 * fire. One partition, so the bad records are in front. */
static void other_events_and_garbage_are_skipped(void **state)
{
    (void)state;
    xt_run_t x;
    xt_run_start(&x, 1, false);

    char cancelled[TK_UUID_LEN + 1], created[TK_UUID_LEN + 1], direct[TK_UUID_LEN + 1];
    xt_uuid(cancelled);
    xt_uuid(created);
    xt_uuid(direct);
    rd_kafka_t *p = tk_test_producer();
    xt_publish_raw(p, x.names.orders, NULL, "not json at all");
    xt_publish_raw(p, x.names.orders, cancelled, "{\"specversion\":\"1.0\"}");
    {
        ev_order_ref_t ref = {.version = 1};
        snprintf(ref.id, sizeof(ref.id), "%s", cancelled);
        tk_uuid_new(ref.ticket.id);
        ev_envelope_t env;
        char *payload = NULL;
        assert_int_equal(ev_envelope_init(&env, "order:cancelled", cancelled, 1, NULL,
                                          ev_order_cancelled_to_json(&ref), NULL),
                         0);
        assert_int_equal(ev_envelope_encode(&env, &payload, NULL, NULL), 0);
        xt_publish_raw(p, x.names.orders, cancelled, payload);
        free(payload);
        ev_envelope_release(&env);
    }
    xt_publish_order_created(p, x.names.orders, created, tk_now_ms() - 1000, NULL);
    xt_publish_raw(p, x.names.delay, NULL, "{\"orderId\":\"x\"}");
    char rec[TK_EXPIRATION_RECORD_MAX];
    tk_expiration_record_t r = {.due_ms = tk_now_ms() - 1000};
    snprintf(r.order_id, sizeof(r.order_id), "%s", direct);
    assert_true(tk_expiration_record_encode(&r, rec, sizeof(rec), NULL) > 0);
    xt_publish_raw(p, x.names.delay, direct, rec);
    xt_producer_free(p);

    x.sched = xt_thread_start(&x.opts);
    xt_collect(x.col, 2, WAIT_MS);
    assert_non_null(xt_find(x.col, created));
    assert_non_null(xt_find(x.col, direct));
    assert_null(xt_find(x.col, cancelled));
    size_t n = 0;
    const xt_fired_t *all = xt_collected(x.col, &n);
    for (size_t i = 0; i < n; i++)
        assert_true(all[i].valid);
    assert_int_equal(xt_thread_stop(x.sched), 0);
    x.sched = NULL;

    /* Both groups committed past the bad records: nothing is left pending. */
    tk_expiration_status_t st;
    tk_err_t err = {0};
    assert_int_equal(tk_expiration_status_opts(&x.opts, &st, &err), 0);
    assert_int_equal(st.intake_lag, 0);
    assert_int_equal(st.pending, 0);
    assert_int_equal(st.heads, 0);

    /* The three bad records are kept, nothing else. */
    char dead[4][160];
    assert_int_equal(read_dead_letters(x.names.dead, 4, dead), 3);
    char want[3][160];
    snprintf(want[0], 160, "%s|not json at all", x.names.orders);
    snprintf(want[1], 160, "%s|{\"specversion\":\"1.0\"}", x.names.orders);
    snprintf(want[2], 160, "%s|{\"orderId\":\"x\"}", x.names.delay);
    for (int w = 0; w < 3; w++) {
        bool found = false;
        for (int i = 0; i < 3; i++)
            found = found || strcmp(dead[i], want[w]) == 0;
        assert_true(found);
    }

    assert_int_equal(xt_run_stop(&x), 0);
}

/*
 * A window change in both directions (delay.c's look-ahead, DESIGN.md section 7). Shortened:
 * orders under a short window, published behind orders under a long one in the same partition,
 * fire on their own due time, long before the long ones, which still fire on theirs. Lengthened:
 * long orders behind short ones, each on time. Never early.
 */
#define WINDOW_ORDERS 5
#define ON_TIME_MS 3000 /* slack for a loaded machine; far below the windows' difference */

static void window_change_in_both_directions(void **state)
{
    (void)state;
    xt_run_t x;
    xt_run_start(&x, 1, true);

    /* Shortened: 5 orders due in 12 s, then 5 due in 1.5 s; then lengthened: 5 due in 2 s,
     * then 5 due in 4 s. One partition: every record queues behind the ones before. */
    const int64_t offsets[4] = {12000, 1500, 2000, 4000};
    char ids[4][WINDOW_ORDERS][TK_UUID_LEN + 1];
    int64_t due[4];
    int64_t now = tk_now_ms();
    rd_kafka_t *p = tk_test_producer();
    for (int g = 0; g < 4; g++) {
        due[g] = now + offsets[g];
        for (int i = 0; i < WINDOW_ORDERS; i++) {
            xt_uuid(ids[g][i]);
            xt_publish_order_created(p, x.names.orders, ids[g][i], due[g], NULL);
        }
    }
    xt_producer_free(p);

    xt_collect(x.col, 4 * WINDOW_ORDERS, WAIT_MS);
    for (int g = 0; g < 4; g++)
        for (int i = 0; i < WINDOW_ORDERS; i++) {
            const xt_fired_t *f = xt_find(x.col, ids[g][i]);
            assert_non_null(f);
            if (f->time_ms < due[g] || f->time_ms > due[g] + ON_TIME_MS)
                print_error("group %d order %d fired %lld ms after its due time\n", g, i,
                            (long long)(f->time_ms - due[g]));
            assert_true(f->time_ms >= due[g]);              /* never early */
            assert_true(f->time_ms <= due[g] + ON_TIME_MS); /* not held behind longer ones */
        }

    assert_int_equal(xt_run_stop(&x), 0);
}

/* tk_expiration_status: pending = the delay group's lag, lateness from the head record. */
static void status_reports_pending_and_lateness(void **state)
{
    (void)state;
    xt_run_t x;
    xt_run_start(&x, 2, false);
    tk_expiration_status_t st;
    tk_err_t err = {0};

    /* No scheduler yet: three delay records, due a minute ago, are pending and overdue. */
    rd_kafka_t *p = tk_test_producer();
    char ids[3][TK_UUID_LEN + 1];
    int64_t due = tk_now_ms() - 60000;
    for (int i = 0; i < 3; i++) {
        char rec[TK_EXPIRATION_RECORD_MAX];
        tk_expiration_record_t r = {.due_ms = due};
        xt_uuid(ids[i]);
        snprintf(r.order_id, sizeof(r.order_id), "%.36s", ids[i]);
        assert_true(tk_expiration_record_encode(&r, rec, sizeof(rec), NULL) > 0);
        xt_publish_raw(p, x.names.delay, ids[i], rec);
    }
    /* And two orders not yet taken in by the intake. */
    char o1[TK_UUID_LEN + 1], o2[TK_UUID_LEN + 1];
    xt_uuid(o1);
    xt_uuid(o2);
    int64_t future = tk_now_ms() + 3600 * 1000;
    xt_publish_order_created(p, x.names.orders, o1, future, NULL);
    xt_publish_order_created(p, x.names.orders, o2, future, NULL);
    xt_producer_free(p);

    assert_int_equal(tk_expiration_status_opts(&x.opts, &st, &err), 0);
    assert_int_equal(st.pending, 3);
    assert_int_equal(st.intake_lag, 2);
    assert_int_equal(st.partitions, 2);
    assert_true(st.heads >= 1);
    assert_true(st.lateness_ms >= 60000);

    /* With the scheduler: the overdue ones fire, the two hour-long ones wait as heads. */
    x.sched = xt_thread_start(&x.opts);
    xt_collect(x.col, 3, WAIT_MS);
    for (int i = 0; i < 3; i++)
        assert_non_null(xt_find(x.col, ids[i]));
    int64_t deadline = tk_mono_ms() + WAIT_MS;
    do {
        assert_int_equal(tk_expiration_status_opts(&x.opts, &st, &err), 0);
    } while ((st.pending < 2 || st.pending > 4 || st.intake_lag != 0) && tk_mono_ms() < deadline);
    /* The two held records, plus the commit marker of each intake transaction that wrote them
     * (pending counts offsets: at most one transaction per record here). */
    assert_true(st.pending >= 2 && st.pending <= 4);
    assert_int_equal(st.intake_lag, 0);
    assert_true(st.heads >= 1);
    assert_true(st.lateness_ms < 0); /* nothing overdue: the next head is due in an hour */
    assert_true(st.lateness_ms > -3600 * 1000 - 1);
    assert_null(xt_find(x.col, o1));

    assert_int_equal(xt_run_stop(&x), 0);
}

TK_TEST_MAIN(tk_test_stack_setup, NULL, cmocka_unit_test(due_orders_fire_after_due_time),
             cmocka_unit_test(past_due_fires_at_once),
             cmocka_unit_test(other_events_and_garbage_are_skipped),
             cmocka_unit_test(window_change_in_both_directions),
             cmocka_unit_test(status_reports_pending_and_lateness))
