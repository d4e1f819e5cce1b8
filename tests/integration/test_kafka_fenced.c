/*
 * test_kafka_fenced.c - a static group member fenced by another with the same group.instance.id
 * (TK_INSTANCE_ID) on the real broker: the fenced consumer never consumes again, so its owner
 * must notice (tk_kafka_consumer_dead) and start over with a new consumer. The chaos suite saw
 * this after a broker restart: the expiration delay consumer and the projectors polled a dead
 * consumer forever (98 expirations pending). Here a rogue member with the process's instance id
 * joins the group, which fences the running one, the way the broker did:
 *   - a projector's run ends with TK_EUNAVAIL by itself (its owner, app/workers.c, then starts a
 *     new one), and the new one resumes from the stored offsets without doubles;
 *   - the expiration scheduler's stages (intake and delay) start over, so an order created after
 *     the fencing still expires.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bb_test.h"
#include "tk_test.h"
#include "ev_envelope.h"
#include "ev_ticket.h"
#include "test_expiration_util.h"
#include "tk/cfg.h"
#include "tk/ids.h"
#include "tk/kafka.h"
#include "tk/pg.h"
#include "tk/projector.h"

#define CONTEXT "tickets"
#define WAIT_MS 60000

static char instance[64]; /* TK_INSTANCE_ID of this process: every member is static */

/* ---- a rogue member: same group, same group.instance.id ------------------------------------- */

/* Join @p group as this process's instance (fencing the running member), wait until the broker
 * gave it the partitions, and go away without leaving (a static member does not leave). */
static void rogue_join(const char *group, const char *topic)
{
    tk_err_t err = {0};
    rd_kafka_t *rk = tk_kafka_consumer_new_with(group, NULL, NULL, &err);
    assert_non_null(rk);
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(subs, topic, RD_KAFKA_PARTITION_UA);
    assert_int_equal(rd_kafka_subscribe(rk, subs), RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_topic_partition_list_destroy(subs);
    int64_t deadline = tk_mono_ms() + WAIT_MS;
    for (;;) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m != NULL)
            rd_kafka_message_destroy(m);
        rd_kafka_topic_partition_list_t *a = NULL;
        bool assigned = rd_kafka_assignment(rk, &a) == RD_KAFKA_RESP_ERR_NO_ERROR && a->cnt > 0;
        if (a != NULL)
            rd_kafka_topic_partition_list_destroy(a);
        if (assigned)
            break;
        assert_true(tk_mono_ms() < deadline);
    }
    assert_int_equal(tk_kafka_consumer_dead(rk, NULL, &err), 0); /* the newest member lives */
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
}

/* ---- tickets for the toy projection (bb_totals_apply: count and sum, doubles show) --------- */

static void publish_tickets(const char *topic, int from, int to)
{
    rd_kafka_t *producer = tk_test_producer();
    tk_err_t err = {0};
    for (int i = from; i <= to; i++) {
        ev_ticket_t t = {0};
        ev_envelope_t env;
        char *out = NULL;
        size_t len = 0;
        tk_uuid_new(t.id);
        tk_uuid_new(t.user_id);
        snprintf(t.title, sizeof(t.title), "fenced %d", i);
        t.price_cents = i;
        assert_int_equal(ev_envelope_init(&env, "ticket:created", t.id, 0, "bbtest",
                                          ev_ticket_created_to_json(&t), &err),
                         0);
        assert_int_equal(ev_envelope_encode(&env, &out, &len, &err), 0);
        ev_envelope_release(&env);
        assert_int_equal(tk_kafka_produce(producer, topic, t.id, out, len, NULL, NULL, &err), 0);
        free(out);
    }
    assert_int_equal(rd_kafka_flush(producer, 30000), 0);
    rd_kafka_destroy(producer);
}

struct member {
    pthread_t thread;
    tk_projector_t *p;
    volatile int stop;
    volatile int ended; /* run returned */
    int rc;
    bb_totals_t totals; /* the projector's ud */
};

static void *member_main(void *arg)
{
    struct member *m = arg;
    m->rc = tk_projector_run(m->p, &m->stop);
    m->ended = 1;
    return NULL;
}

static void member_start(struct member *m, const char *name, const char *topic)
{
    const char *topics[] = {topic, NULL};
    tk_projector_spec_t spec = {.context = CONTEXT,
                                .name = name,
                                .topics = topics,
                                .apply = bb_totals_apply,
                                .ud = &m->totals};
    tk_err_t err = {0};
    memset(m, 0, sizeof(*m));
    m->totals = (bb_totals_t){bb_toys.totals, name};
    m->p = tk_projector_new(&spec, &err);
    if (m->p == NULL)
        print_error("tk_projector_new: %s\n", err.message);
    assert_non_null(m->p);
    pthread_create(&m->thread, NULL, member_main, m);
}

static void member_stop(struct member *m)
{
    m->stop = 1;
    pthread_join(m->thread, NULL);
    tk_projector_free(m->p);
}

static bool member_ended(void *arg)
{
    struct member *m = arg;
    return m->ended != 0;
}

static void a_fenced_projector_ends_and_a_new_one_resumes(void **state)
{
    (void)state;
    enum { N1 = 300, N2 = 200 };
    char topic[64], name[64], group[192];
    bb_fresh_topic("fenced", topic, name, 3);
    bb_totals_start(bb_toys.db, bb_toys.totals, name);
    tk_projector_group_name(CONTEXT, name, group, sizeof(group));

    publish_tickets(topic, 1, N1);
    struct member a;
    member_start(&a, name, topic);
    bb_count_goal_t g = {name, N1};
    assert_true(bb_eventually(bb_toys_counted, &g, WAIT_MS));

    /* Fenced: run must end by itself instead of polling a dead consumer forever. */
    rogue_join(group, topic);
    bool ended = bb_eventually(member_ended, &a, WAIT_MS);
    member_stop(&a);
    assert_true(ended);
    assert_int_equal(a.rc, TK_EUNAVAIL);

    /* Its owner starts a new one (as app/workers.c does): it rejoins as the instance, takes the
     * partitions back and resumes from the stored offsets. */
    struct member b;
    member_start(&b, name, topic);
    publish_tickets(topic, N1 + 1, N1 + N2);
    g.want = N1 + N2;
    assert_true(bb_eventually(bb_toys_counted, &g, WAIT_MS));
    assert_false(b.ended);
    member_stop(&b);
    assert_int_equal(bb_toys_total(name, "count"), N1 + N2);
    assert_int_equal(bb_toys_total(name, "sum"), (int64_t)(N1 + N2) * (N1 + N2 + 1) / 2);
}

/* Publish an order due in 1 s and wait for its expiration:complete. */
static bool expires(const xt_names_t *names, xt_collector_t *col)
{
    char id[TK_UUID_LEN + 1];
    xt_uuid(id);
    rd_kafka_t *p = tk_test_producer();
    xt_publish_order_created(p, names->orders, id, tk_now_ms() + 1000, NULL);
    xt_producer_free(p);
    int64_t deadline = tk_mono_ms() + WAIT_MS;
    while (xt_find(col, id) == NULL && tk_mono_ms() < deadline)
        xt_collect(col, 0, 500);
    return xt_find(col, id) != NULL;
}

static void fenced_expiration_stages_start_over(void **state)
{
    (void)state;
    xt_run_t x;
    xt_run_start(&x, 3, true);
    assert_true(expires(&x.names, x.col)); /* both stages run */

    rogue_join(x.names.delay_group, x.names.delay);
    rogue_join(x.names.intake_group, x.names.orders);
    /* Both stages were fenced: the order goes through only when each starts over. */
    bool ok = expires(&x.names, x.col);
    assert_int_equal(xt_run_stop(&x), 0);
    assert_true(ok);
}

static int setup(void **state)
{
    (void)state;
    /* Every member of this process is static, under an instance id of its own. */
    bb_unique("bbtest-fenced", instance, sizeof(instance));
    setenv("TK_INSTANCE_ID", instance, 1);
    return bb_toys_open("tk_bbtest_fenced");
}

TK_TEST_MAIN(setup, bb_toys_teardown,
             cmocka_unit_test(a_fenced_projector_ends_and_a_new_one_resumes),
             cmocka_unit_test(fenced_expiration_stages_start_over))
