/*
 * test_dead_letters.c - dead-letter tooling and bounded processed_events on the real stack
 * (DESIGN.md section 6), with toy read models in schema bbtest of a private database standing for
 * the tickets context:
 *  - tk_dead_letters_retry re-drives parked records through the apply path in per-aggregate
 *    order: while the gap is still open the first record fails again (attempts + 1) and the
 *    record behind it is held untouched; once the gap closes both apply, in order;
 *  - `ticketing dead-letters list|show|drop` show and remove rows, and /metrics of
 *    `ticketing serve tickets` shows the depth and the per-partition consumer lag;
 *  - under a long run of a live projector (tk_projector_run, pruning every 200 ms, keeping 100
 *    offsets) processed_events stays bounded, and a duplicate published within the relay's
 *    reach is still refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bb_test.h"
#include "tk_test.h"
#include "ev_envelope.h"
#include "ev_ticket.h"
#include "tk/cfg.h"
#include "tk/dead_letters.h"
#include "tk/ids.h"
#include "tk/kafka.h"
#include "tk/pg.h"
#include "tk/projector.h"
#include "tk/prune.h"

#define CONTEXT "tickets"
#define GAP_TIMEOUT_MS "1000"
#define KEEP_OFFSETS 100

static int64_t version_of(const char *id)
{
    char sql[160];
    snprintf(sql, sizeof(sql), "SELECT coalesce(max(version), -1) FROM %s WHERE id = $1",
             bb_toys.replica);
    const char *p[] = {id};
    return bb_scalar(bb_toys.db, sql, 1, p);
}

static int64_t parked(const char *projection)
{
    const char *p[] = {projection};
    return bb_scalar(bb_toys.db, "SELECT count(*) FROM dead_letters WHERE projection = $1", 1, p);
}

static int64_t attempts_at(const char *projection, int offset)
{
    char off[16];
    snprintf(off, sizeof(off), "%d", offset);
    const char *p[] = {projection, off};
    return bb_scalar(bb_toys.db,
                     "SELECT coalesce(max(attempts), 0) FROM dead_letters WHERE projection = $1 "
                     "AND \"offset\" = $2",
                     2, p);
}

static tk_projector_spec_t
spec_of(const char *name, const char *const *topics,
        int (*apply)(tk_tx_t *, const ev_envelope_t *, void *, tk_err_t *), void *ud)
{
    return (tk_projector_spec_t){
        .context = CONTEXT, .name = name, .topics = topics, .apply = apply, .ud = ud};
}

struct goal {
    const char *projection, *id;
    int64_t want;
};

static bool parked_reached(void *arg)
{
    struct goal *g = arg;
    return parked(g->projection) >= g->want;
}

static bool version_reached(void *arg)
{
    struct goal *g = arg;
    return version_of(g->id) >= g->want;
}

/* ---- retry ----------------------------------------------------------------------------------- */

static void retry_redrives_in_aggregate_order(void **state)
{
    (void)state;
    char topic[64], name[64], x[TK_UUID_LEN + 1];
    bb_fresh_topic("dl", topic, name, 1);
    tk_uuid_new(x);
    rd_kafka_t *producer = tk_test_producer();
    /* x: v0, v1, then v3 and v4 behind a gap (v2 comes later): offsets 0..3. */
    int versions[] = {0, 1, 3, 4};
    for (int i = 0; i < 4; i++)
        bb_publish_ticket(producer, topic, x, versions[i]);
    assert_int_equal(rd_kafka_flush(producer, 30000), 0);

    const char *topics[] = {topic, NULL};
    tk_err_t err = {0};
    tk_projector_spec_t spec = spec_of(name, topics, bb_replica_apply, bb_toys.replica);
    tk_projector_t *p = tk_projector_new(&spec, &err);
    assert_non_null(p);
    struct goal parked2 = {name, NULL, 2};
    bb_project_until(p, parked_reached, &parked2, 30000);
    assert_int_equal(version_of(x), 1);
    assert_int_equal(attempts_at(name, 2), 1);
    assert_int_equal(attempts_at(name, 3), 1);

    /* The gap is still open: v3 fails again, v4 is held behind it without being tried. */
    tk_dead_letters_outcome_t o = {0};
    assert_int_equal(tk_dead_letters_retry(&spec, 0, &o, &err), 0);
    assert_int_equal(o.applied, 0);
    assert_int_equal(o.failed, 1);
    assert_int_equal(o.held, 1);
    assert_int_equal(attempts_at(name, 2), 2);
    assert_int_equal(attempts_at(name, 3), 1);
    const char *pp[] = {name};
    assert_int_equal(bb_scalar(bb_toys.db,
                               "SELECT count(*) FROM dead_letters WHERE projection = $1 AND "
                               "\"offset\" = 2 AND error LIKE 'retry: version gap%' AND "
                               "last_seen > first_seen",
                               1, pp),
                     1);

    /* v2 arrives and is applied live; the retry then applies v3 and v4, in this order. */
    bb_publish_ticket(producer, topic, x, 2);
    assert_int_equal(rd_kafka_flush(producer, 30000), 0);
    rd_kafka_destroy(producer);
    struct goal v2 = {name, x, 2};
    bb_project_until(p, version_reached, &v2, 30000);
    tk_projector_free(p);
    assert_int_equal(tk_dead_letters_retry(&spec, 0, &o, &err), 0);
    assert_int_equal(o.applied, 2);
    assert_int_equal(o.failed, 0);
    assert_int_equal(o.held, 0);
    assert_int_equal(version_of(x), 4);
    assert_int_equal(parked(name), 0);
    /* Applied exactly once: their event ids are now in processed_events with their positions. */
    assert_int_equal(bb_scalar(bb_toys.db,
                               "SELECT count(*) FROM processed_events WHERE projection = $1 AND "
                               "\"offset\" IN (2, 3)",
                               1, pp),
                     2);
}

/* `ticketing dead-letters` as an operator runs it. */
static int run_cli(const char *args, char *out, size_t cap)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "%s %s 2>&1", TK_TICKETING_BIN, args);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t n = fread(out, 1, cap - 1, f);
    out[n] = '\0';
    int status = pclose(f);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void cli_lists_shows_and_drops(void **state)
{
    (void)state;
    char name[64], out[16384], args[128];
    bb_unique("dlcli", name, sizeof(name));
    const char *p[] = {name};
    PGresult *res = PQexecParams(bb_toys.db,
                                 "INSERT INTO dead_letters (projection, topic, partition, "
                                 "\"offset\", key, payload, error) VALUES ($1, 'bbtest_cli', 3, "
                                 "42, 'k', convert_to('not json {', 'UTF8'), 'undecodable: x') "
                                 "RETURNING id",
                                 1, NULL, p, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(res), PGRES_TUPLES_OK);
    long long id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);

    assert_int_equal(run_cli("dead-letters list --context tickets", out, sizeof(out)), 0);
    assert_non_null(strstr(out, name));
    assert_non_null(strstr(out, "bbtest_cli/3@42"));
    assert_non_null(strstr(out, "undecodable: x"));
    snprintf(args, sizeof(args), "dead-letters show --context tickets --id %lld", id);
    assert_int_equal(run_cli(args, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "\"payload\" : \"not json {\""));
    assert_non_null(strstr(out, "\"attempts\" : 1"));
    /* /metrics of a server of the context shows the depth and the per-partition lag. */
    assert_int_equal(run_cli("topics", out, sizeof(out)), 0);
    char want[96];
    snprintf(want, sizeof(want), "tk_dead_letters{context=\"tickets\"} %lld",
             (long long)bb_scalar(bb_toys.db, "SELECT count(*) FROM dead_letters", 0, NULL));
    int port = 0;
    pid_t pid = bb_serve_start(TK_TICKETING_BIN, "tickets", NULL, &port);
    int64_t deadline = tk_mono_ms() + 30000;
    bool seen = false;
    while (!seen && tk_mono_ms() < deadline) {
        usleep(500 * 1000);
        snprintf(args, sizeof(args), "curl -s http://127.0.0.1:%d/metrics", port);
        FILE *f = popen(args, "r");
        size_t n = fread(out, 1, sizeof(out) - 1, f);
        out[n] = '\0';
        pclose(f);
        seen = strstr(out, want) != NULL && strstr(out, "tk_consumer_lag{group=\"tickets.") != NULL;
    }
    kill(pid, SIGTERM);
    if (!seen)
        print_error("/metrics on port %d said:\n%s\n", port, out);
    assert_true(seen);
    assert_non_null(strstr(out, "tk_consumer_lag{group=\"tickets."));
    assert_non_null(strstr(out, "partition=\"0\"}"));

    assert_int_equal(run_cli("dead-letters drop --context tickets", out, sizeof(out)), 2);
    snprintf(args, sizeof(args), "dead-letters drop --context tickets --id %lld", id);
    assert_int_equal(run_cli(args, out, sizeof(out)), 0);
    assert_int_equal(parked(name), 0);
    assert_int_equal(run_cli("dead-letters frobnicate", out, sizeof(out)), 2);
}

/* ---- bounded processed_events ---------------------------------------------------------------- */

static int64_t total(const char *projection, const char *column)
{
    return bb_totals_get(bb_toys.db, bb_toys.totals, projection, column);
}

static int64_t remembered(const char *projection)
{
    const char *p[] = {projection};
    return bb_scalar(bb_toys.db, "SELECT count(*) FROM processed_events WHERE projection = $1", 1,
                     p);
}

static void processed_events_stay_bounded_and_duplicates_are_refused(void **state)
{
    (void)state;
    enum { WAVES = 6, PER_WAVE = 500 };
    char topic[64], name[64];
    bb_fresh_topic("prune", topic, name, 1);
    bb_totals_start(bb_toys.db, bb_toys.totals, name);

    const char *topics[] = {topic, NULL};
    bb_totals_t tot = {bb_toys.totals, name};
    tk_projector_spec_t spec = spec_of(name, topics, bb_totals_apply, &tot);
    tk_err_t err = {0};
    bb_loop_t r = {.projector = tk_projector_new(&spec, &err)};
    assert_non_null(r.projector);
    bb_loop_start(&r);

    rd_kafka_t *producer = tk_kafka_producer_new(&err);
    assert_non_null(producer);
    char *last = NULL;
    size_t last_len = 0;
    char last_id[TK_UUID_LEN + 1] = "";
    int64_t most = 0;
    for (int w = 0; w < WAVES; w++) {
        for (int i = 0; i < PER_WAVE; i++) {
            char id[TK_UUID_LEN + 1];
            tk_uuid_new(id);
            size_t len = 0;
            char *payload = bb_ticket_event("ticket:created", id, 0, 1, &len);
            assert_int_equal(tk_kafka_produce(producer, topic, id, payload, len, NULL, NULL, &err),
                             0);
            free(last);
            last = payload;
            last_len = len;
            memcpy(last_id, id, sizeof(last_id));
        }
        assert_int_equal(rd_kafka_flush(producer, 30000), 0);
        int64_t want = (int64_t)(w + 1) * PER_WAVE, deadline = tk_mono_ms() + 60000;
        while (total(name, "count") < want) {
            assert_true(tk_mono_ms() < deadline);
            int64_t n = remembered(name);
            most = n > most ? n : most;
            usleep(50 * 1000);
        }
        int64_t n = remembered(name);
        most = n > most ? n : most;
    }
    /* A pruning tick after the last record: wait for it. */
    int64_t deadline = tk_mono_ms() + 10000;
    while (remembered(name) > KEEP_OFFSETS) {
        assert_true(tk_mono_ms() < deadline);
        usleep(100 * 1000);
    }
    print_message("    %d records applied; processed_events peaked at %lld rows, ends at %lld\n",
                  WAVES * PER_WAVE, (long long)most, (long long)remembered(name));
    /* At most two waves (the projector may apply the next wave's first batches before a prune
     * tick comes round on a loaded machine) plus the kept tail, never the whole history (6
     * waves). */
    assert_true(most <= 2 * PER_WAVE + KEEP_OFFSETS + 100);
    assert_true(remembered(name) <= KEEP_OFFSETS);

    /* The relay's duplicate (the last record again, as after a crash between ack and delete) is
     * still refused: it lands within the kept offsets. */
    assert_int_equal(tk_kafka_produce(producer, topic, last_id, last, last_len, NULL, NULL, &err),
                     0);
    assert_int_equal(rd_kafka_flush(producer, 30000), 0);
    char off[24];
    snprintf(off, sizeof(off), "%d", WAVES * PER_WAVE + 1);
    const char *po[] = {name, topic, off};
    deadline = tk_mono_ms() + 30000;
    while (bb_scalar(bb_toys.db,
                     "SELECT coalesce(max(next_offset), 0) FROM projection_offsets WHERE "
                     "projection = $1 AND topic = $2",
                     2, po) < WAVES * PER_WAVE + 1) {
        assert_true(tk_mono_ms() < deadline);
        usleep(50 * 1000);
    }
    assert_int_equal(total(name, "count"), WAVES * PER_WAVE);
    bb_loop_stop(&r);
    tk_projector_free(r.projector);
    rd_kafka_destroy(producer);
    free(last);
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    setenv("PROJECTOR_GAP_TIMEOUT_MS", GAP_TIMEOUT_MS, 1);
    setenv("PROCESSED_EVENTS_PRUNE_MS", "200", 1);
    char keep[16];
    snprintf(keep, sizeof(keep), "%d", KEEP_OFFSETS);
    setenv("PROCESSED_EVENTS_KEEP_OFFSETS", keep, 1);
    return bb_toys_open("tk_bbtest_dead_letters");
}

TK_TEST_MAIN(setup, bb_toys_teardown, cmocka_unit_test(retry_redrives_in_aggregate_order),
             cmocka_unit_test(cli_lists_shows_and_drops),
             cmocka_unit_test(processed_events_stay_bounded_and_duplicates_are_refused))
