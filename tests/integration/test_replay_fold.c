/*
 * test_replay_fold.c - a replay through a projection's fold (tk_projector_spec_t.fold: in memory,
 * written with COPY) must rebuild exactly the tables the live projector built through apply, with
 * the same per-record rules: an event id seen twice applies once, an undecodable record is a dead
 * letter.
 *
 * The real tickets view projects a private topic live (apply_set and apply); then a replay with
 * the view's fold and a replay with the fold removed (through apply, as before the fold existed)
 * must both verify identical to the live model, with the same counts. The log holds the cases a
 * fold can get wrong: a ticket's created and updated events (created_at is the first event's
 * time, the view keeps the highest version), an older version after a newer one with other
 * content, two events with the same (ticket, version) but different content (the first one wins
 * the history), updates of a ticket whose ticket:created is not in the log, an exact duplicate of
 * an envelope (same event id) published again later, and a poison record.
 *
 * The tickets view is idempotent, so it cannot tell whether a duplicate was folded twice; a
 * counting projection of the test's own (events and price sum per ticket, not idempotent, with a
 * fold too) shows that a duplicate event id counts once and a record apply refuses is a dead
 * letter that changes nothing, on the fold path as on the apply path.
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
#include <unistd.h>

#include "bb_test.h"
#include "test_replay_util.h"
#include "tk_test.h"
#include "ev_ticket.h"
#include "tk/fold.h"
#include "tk/mem.h"
#include "tk/pg.h"
#include "tk/projector.h"
#include "tk/replay.h"

#define TICKETS 20

static rt_env_t env;

static tk_replay_result_t replay(const tk_projector_spec_t *spec)
{
    tk_replay_opts_t opts = {.to = TK_REPLAY_TO_END};
    tk_replay_result_t r;
    tk_err_t err = {0};
    int rc = tk_replay_run(spec, &opts, &r, &err);
    if (rc != 0)
        print_error("replay: %s\n", err.message);
    for (int i = 0; i < r.ntables; i++)
        if (r.tables[i].only_live != 0 || r.tables[i].only_replay != 0)
            print_error("%s: %lld rows only live, %lld only rebuilt\n", r.tables[i].name,
                        (long long)r.tables[i].only_live, (long long)r.tables[i].only_replay);
    assert_int_equal(rc, 0);
    assert_true(r.identical);
    assert_true(r.swapped);
    return r;
}

static void a_folded_replay_equals_the_live_model_built_through_apply(void **state)
{
    (void)state;
    rt_ticket_t t[TICKETS + 1];
    rt_publish_hard_cases(&env, t, TICKETS);
    rt_publish_raw(&env, "poison", "this is not an envelope");
    rt_flush(&env);

    tk_err_t err = {0};
    tk_projector_t *live = tk_projector_new(&env.spec, &err);
    assert_non_null(live);
    assert_true(rt_catch_up(&env, live, 120000));
    /* The relay may publish a record twice: the same envelope (same event id) again, later. */
    const char *p0[] = {t[1].id};
    char *dup = rt_text(
        &env, "SELECT envelope FROM ticket_history WHERE ticket_id = $1 AND version = 1", 1, p0);
    rt_publish_raw(&env, t[1].id, dup);
    free(dup);
    rt_flush(&env);
    assert_true(rt_catch_up(&env, live, 120000));
    tk_projector_free(live);
    char *live_model = rt_tickets_snapshot(&env);

    /* The fold loads without indexes and builds them after: the same ones must come back. */
    static const char indexes_sql[] =
        "SELECT string_agg(indexname || ' ' || regexp_replace(indexdef, ' ON \\S+', ''), ',' "
        "ORDER BY indexname) FROM pg_indexes WHERE schemaname = 'public' AND tablename IN "
        "('ticket_view', 'ticket_history')";
    char *indexes_before = rt_text(&env, indexes_sql, 0, NULL);
    assert_non_null(strstr(indexes_before, "ticket_view_pkey"));

    assert_non_null(env.spec.fold); /* the tickets view offers the fold */
    tk_replay_result_t folded = replay(&env.spec);
    assert_true(folded.folded);
    char *after_fold = rt_tickets_snapshot(&env);
    char *indexes_after = rt_text(&env, indexes_sql, 0, NULL);
    assert_string_equal(indexes_before, indexes_after);
    free(indexes_before);
    free(indexes_after);

    tk_projector_spec_t through_apply = env.spec;
    through_apply.fold = NULL;
    tk_replay_result_t applied = replay(&through_apply);
    assert_false(applied.folded);
    char *after_apply = rt_tickets_snapshot(&env);

    if (strcmp(live_model, after_fold) != 0)
        print_error("live:\n%s\nfolded:\n%s\n", live_model, after_fold);
    assert_string_equal(live_model, after_fold);
    assert_string_equal(live_model, after_apply);
    /* The same per-record outcomes both ways. */
    assert_int_equal(folded.records, env.published);
    assert_int_equal(folded.records, applied.records);
    assert_int_equal(folded.applied, applied.applied);
    assert_int_equal(folded.skipped, applied.skipped);
    assert_int_equal(folded.dead_letters, 1); /* the poison record */
    assert_int_equal(applied.dead_letters, 1);
    assert_true(folded.skipped >= 1); /* the duplicate event id */
    assert_non_null(strstr(folded.first_dead_letter, "undecodable"));
    assert_string_equal(folded.first_dead_letter, applied.first_dead_letter);

    /* The cases really happened: the view kept version 3, created_at precedes the updates, the
     * first of two rows with one (ticket, version) stayed in the history. */
    assert_true(rt_hard_cases_happened(&env, TICKETS));
    assert_int_equal(bb_scalar(env.db_conn,
                               "SELECT count(*) FROM ticket_history WHERE envelope LIKE "
                               "'%late and older%'",
                               0, NULL),
                     0);
    free(live_model);
    free(after_fold);
    free(after_apply);
}

/* ---- a counting projection, not idempotent ------------------------------------------------- */

#define REFUSED_TITLE "refused by apply"

/* The ticket of a ticket event, or an error for the refused title (a record apply fails on). */
static int totals_ticket(const ev_envelope_t *ev, ev_ticket_t *t, tk_err_t *err)
{
    int rc = strcmp(ev->type, "ticket:created") == 0
                 ? ev_ticket_created_from_json(ev->data, t, err)
                 : ev_ticket_updated_from_json(ev->data, t, err);
    if (rc == 0 && strcmp(t->title, REFUSED_TITLE) == 0)
        rc = tk_err_set(err, TK_EINVAL, "title", "refused");
    return rc;
}

static int totals_apply(tk_tx_t *tx, const ev_envelope_t *ev, void *ud, tk_err_t *err)
{
    (void)ud;
    ev_ticket_t t;
    int rc = totals_ticket(ev, &t, err);
    if (rc != 0)
        return rc;
    char cents[24];
    snprintf(cents, sizeof(cents), "%lld", (long long)t.price_cents);
    const char *p[] = {t.id, cents};
    rc = tk_pg_run(tk_tx_conn(tx),
                   "INSERT INTO fold_totals AS f (ticket_id, events, sum) VALUES ($1, 1, "
                   "$2::bigint) ON CONFLICT (ticket_id) DO UPDATE SET events = f.events + 1, "
                   "sum = f.sum + excluded.sum",
                   2, p, NULL, err);
    return rc != 0 ? rc : TK_APPLY_OK;
}

typedef struct total {
    char id[TK_UUID_LEN + 1];
    int64_t events, sum;
} total_t;

typedef struct totals {
    tk_fold_keys_t *keys;
    total_t *rows;
    size_t cap;
} totals_t;

static void *totals_begin(void *ud)
{
    (void)ud;
    totals_t *s = tk_mem_zalloc(sizeof(*s));
    s->keys = tk_fold_keys_new(16);
    return s;
}

static int totals_add(void *state, const ev_envelope_t *ev, void **prepared, void *ud,
                      tk_err_t *err)
{
    (void)ud, (void)prepared;
    totals_t *s = state;
    ev_ticket_t t;
    uint8_t key[16];
    int rc = totals_ticket(ev, &t, err);
    if (rc != 0)
        return rc;
    assert_true(tk_uuid_to_bytes(t.id, key));
    bool added = false;
    int64_t i = tk_fold_keys_add(s->keys, key, &added);
    if (added) {
        s->rows = tk_mem_grow(s->rows, &s->cap, (size_t)i + 1, sizeof(*s->rows));
        memset(&s->rows[i], 0, sizeof(s->rows[i]));
        snprintf(s->rows[i].id, sizeof(s->rows[i].id), "%s", t.id);
    }
    s->rows[i].events++;
    s->rows[i].sum += t.price_cents;
    return TK_APPLY_OK;
}

static int totals_write(void *state, tk_tx_t *tx, bool final, void *ud, tk_err_t *err)
{
    (void)ud;
    totals_t *s = state;
    if (!final)
        return 0;
    tk_copy_t *c = tk_copy_begin(tx, "fold_totals", "ticket_id, events, sum", err);
    if (c == NULL)
        return err->code;
    int rc = 0;
    for (size_t i = 0; i < tk_fold_keys_count(s->keys) && rc == 0; i++) {
        char events[24], sum[24];
        snprintf(events, sizeof(events), "%lld", (long long)s->rows[i].events);
        snprintf(sum, sizeof(sum), "%lld", (long long)s->rows[i].sum);
        const char *row[] = {s->rows[i].id, events, sum};
        rc = tk_copy_row(c, 3, row, err);
    }
    int erc = tk_copy_end(c, NULL, rc == 0 ? err : NULL);
    return rc != 0 ? rc : erc;
}

static void totals_end(void *state, void *ud)
{
    (void)ud;
    totals_t *s = state;
    if (s == NULL)
        return;
    tk_fold_keys_free(s->keys);
    free(s->rows);
    free(s);
}

static const tk_projector_fold_t totals_fold = {
    .begin = totals_begin, .add = totals_add, .write = totals_write, .end = totals_end};
static const char *const totals_tables[] = {"fold_totals", NULL};

static void a_duplicate_folds_once_and_a_refused_record_is_a_dead_letter(void **state)
{
    (void)state;
    bb_exec(env.db_conn,
            "CREATE TABLE fold_totals (ticket_id uuid PRIMARY KEY, events bigint NOT NULL, "
            "sum bigint NOT NULL)",
            0, NULL);
    /* ticket:created published twice (the same event id): must count once. */
    rt_ticket_t t;
    memset(&t, 0, sizeof(t));
    tk_uuid_new(t.id);
    tk_uuid_new(t.user_id);
    ev_ticket_t created = {.version = 0, .price_cents = 500};
    snprintf(created.id, sizeof(created.id), "%s", t.id);
    snprintf(created.user_id, sizeof(created.user_id), "%s", t.user_id);
    snprintf(created.title, sizeof(created.title), "counted");
    tk_err_t err = {0};
    char *text =
        tk_test_event_text("ticket:created", t.id, 0, ev_ticket_created_to_json(&created), NULL);
    rt_publish_raw(&env, t.id, text);
    rt_publish_update(&env, &t, "first");
    rt_publish_raw(&env, t.id, text);
    free(text);
    rt_publish_update(&env, &t, "second");
    rt_publish_update(&env, &t, REFUSED_TITLE);
    t.version--; /* the refused version once more, acceptable this time */
    rt_publish_update(&env, &t, "accepted");
    rt_flush(&env);
    const char *p0[] = {t.id};

    char name[sizeof(env.name) + 8];
    snprintf(name, sizeof(name), "%s_totals", env.name);
    tk_projector_spec_t spec = {.context = "tickets",
                                .name = name,
                                .topics = env.topics,
                                .apply = totals_apply,
                                .tables = totals_tables,
                                .fold = &totals_fold};
    tk_projector_t *live = tk_projector_new(&spec, &err);
    assert_non_null(live);
    const char *pn[] = {name};
    int64_t deadline = tk_mono_ms() + 120000;
    while (bb_scalar(env.db_conn,
                     "SELECT coalesce(sum(next_offset), 0) FROM projection_offsets WHERE "
                     "projection = $1",
                     1, pn) < env.published) {
        assert_true(tk_mono_ms() < deadline);
        tk_projector_poll_once(live, 200, NULL, &err);
    }
    tk_projector_free(live);
    /* created, 2 updates, the accepted one; the duplicate and the refused one not counted. */
    assert_int_equal(
        bb_scalar(env.db_conn, "SELECT events FROM fold_totals WHERE ticket_id = $1", 1, p0), 4);

    tk_replay_result_t folded = replay(&spec);
    assert_true(folded.folded);
    assert_int_equal(
        bb_scalar(env.db_conn, "SELECT events FROM fold_totals WHERE ticket_id = $1", 1, p0), 4);
    tk_projector_spec_t through_apply = spec;
    through_apply.fold = NULL;
    tk_replay_result_t applied = replay(&through_apply);
    assert_int_equal(folded.applied, applied.applied);
    assert_int_equal(folded.skipped, applied.skipped);
    assert_int_equal(folded.dead_letters, applied.dead_letters);
    assert_int_equal(folded.dead_letters, 2); /* the poison record and the refused one */
    assert_int_equal(folded.skipped, 2);      /* the two duplicates of the log */
}

static int setup(void **state)
{
    (void)state;
    rt_env_init(&env, "replayfold", 3);
    return 0;
}

TK_TEST_MAIN(setup, rt_teardown,
             cmocka_unit_test(a_folded_replay_equals_the_live_model_built_through_apply),
             cmocka_unit_test(a_duplicate_folds_once_and_a_refused_record_is_a_dead_letter))
