/*
 * test_apply_set.c - a projection's set-based apply (tk_projector_spec_t.apply_set, the fast path
 * of backbone/apply.c) must leave exactly the state that apply, one record after another, leaves.
 *
 * The tickets view is projected twice from the same private topic into the same private database:
 * once through its apply_set, once with apply_set removed (record by record), with the tables
 * emptied in between. The log holds the cases where a set-based upsert can go wrong: a ticket's
 * created and updated events in one batch (created_at must be the first event's time, and the
 * view the highest version's state), an older version arriving after a newer one, two events
 * with the same (ticket, version) but different content (the first one wins the history), and an
 * update of a ticket whose ticket:created is not in the log. The values of the batch's binary
 * arrays get their own case: titles that quoting, escaping or a length could get wrong.
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
#include "tk/pg.h"
#include "tk/projector.h"

#define TICKETS 20

static rt_env_t env;

static void project(const tk_projector_spec_t *spec)
{
    tk_err_t err = {0};
    tk_projector_t *p = tk_projector_new(spec, &err);
    assert_non_null(p);
    assert_true(rt_catch_up(&env, p, 120000));
    tk_projector_free(p);
}

static void reset(void)
{
    const char *p[] = {env.name};
    bb_exec(env.db_conn, "TRUNCATE ticket_view, ticket_history", 0, NULL);
    bb_exec(env.db_conn, "DELETE FROM processed_events WHERE projection = $1", 1, p);
    bb_exec(env.db_conn, "DELETE FROM projection_offsets WHERE projection = $1", 1, p);
}

/* The tables the view's apply leaves, record by record, from an empty view: they must equal
 * @p set_based (borrowed), what apply_set left from the same log. */
static void assert_one_by_one_equals(const char *set_based)
{
    reset();
    tk_projector_spec_t one_by_one = env.spec;
    one_by_one.apply_set = NULL;
    project(&one_by_one);
    char *each = rt_tickets_snapshot(&env);
    if (strcmp(set_based, each) != 0)
        print_error("set-based:\n%s\none by one:\n%s\n", set_based, each);
    assert_string_equal(set_based, each);
    free(each);
}

static void set_based_apply_equals_one_by_one(void **state)
{
    (void)state;
    rt_ticket_t t[TICKETS + 1];
    rt_publish_hard_cases(&env, t, TICKETS);
    rt_flush(&env);

    assert_non_null(env.spec.apply_set); /* the tickets view offers the set-based path */
    project(&env.spec);
    char *set_based = rt_tickets_snapshot(&env);
    assert_one_by_one_equals(set_based);
    /* The cases really happened: the view kept version 3, created_at precedes the updates. */
    assert_true(rt_hard_cases_happened(&env, TICKETS));
    free(set_based);
}

static int64_t processed_rows(void)
{
    const char *p[] = {env.name};
    return bb_scalar(env.db_conn, "SELECT count(*) FROM processed_events WHERE projection = $1", 1,
                     p);
}

/* The tickets view says it is idempotent (tk_projector_spec_t.idempotent): the loop keeps no
 * processed_events for it, and a redelivered event, newest first, changes nothing. The same log
 * through the event-id dedupe gives the same tables. */
static void an_idempotent_view_applies_redeliveries_once_without_processed_events(void **state)
{
    (void)state;
    reset();
    rt_ticket_t t[10];
    memset(t, 0, sizeof(t));
    rt_publish_tickets(&env, t, 10, 2);
    rt_flush(&env);
    assert_true(env.spec.idempotent);
    project(&env.spec);
    char *first = rt_tickets_snapshot(&env);
    assert_int_equal(processed_rows(), 0);

    /* Every event again, the very records (same ids), newest version first. */
    PGresult *res = tk_pg_exec(env.db_conn,
                               "SELECT ticket_id::text, envelope FROM ticket_history "
                               "ORDER BY version DESC, ticket_id",
                               0, NULL, NULL);
    assert_non_null(res);
    int again = PQntuples(res);
    assert_true(again >= 30);
    for (int r = 0; r < again; r++)
        rt_publish_raw(&env, PQgetvalue(res, r, 0), PQgetvalue(res, r, 1));
    PQclear(res);
    rt_flush(&env);
    int64_t before =
        bb_scalar(env.db_conn, "SELECT sum(next_offset) FROM projection_offsets", 0, NULL);
    project(&env.spec);
    assert_int_equal(
        bb_scalar(env.db_conn, "SELECT sum(next_offset) FROM projection_offsets", 0, NULL),
        before + again); /* consumed, */
    char *redelivered = rt_tickets_snapshot(&env);
    assert_string_equal(redelivered, first); /* and nothing changed */

    reset();
    tk_projector_spec_t deduped = env.spec;
    deduped.idempotent = false;
    project(&deduped);
    char *through_dedupe = rt_tickets_snapshot(&env);
    assert_string_equal(through_dedupe, first);
    assert_true(processed_rows() > 0);
    free(first);
    free(redelivered);
    free(through_dedupe);
}

static const char *const titles[] = {
    "say \"hi\"",
    "back\\slash \\\" both",
    "{braces, commas}",
    "NULL",
    "\xc3\xa9t\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac",
    "  spaces at both ends  ",
    "'single'",
    "tab\there",
};
#define NTITLES (sizeof(titles) / sizeof(titles[0]))

/*
 * The set-based apply sends a batch as binary arrays (one per column,
 * projections/tickets/ticket_view.c): every value must arrive as apply, record by record with text
 * parameters, stores it. Titles with the characters that quoting, escaping or a length could get
 * wrong (quotes, backslashes, braces, commas, the word NULL, multi-byte UTF-8, spaces at both
 * ends), reserved and free tickets, projected both ways, must give the same tables, and the titles
 * must read back as published.
 */
static void binary_batches_store_every_value_as_apply_does(void **state)
{
    (void)state;
    reset(); /* the records of the cases before are projected too: both ways alike */
    rt_ticket_t t[NTITLES], reserved[4];
    memset(t, 0, sizeof(t));
    rt_publish_tickets(&env, t, (int)NTITLES, 0);
    for (size_t i = 0; i < NTITLES; i++)
        rt_publish_update(&env, &t[i], titles[i]);
    rt_publish_tickets(&env, reserved, 4, 1); /* an even ticket's update reserves it */
    rt_flush(&env);

    project(&env.spec);
    char *set_based = rt_tickets_snapshot(&env);
    for (size_t i = 0; i < NTITLES; i++) {
        const char *p[] = {t[i].id};
        char *title = rt_text(&env, "SELECT title FROM ticket_view WHERE id = $1", 1, p);
        assert_string_equal(title, titles[i]);
        free(title);
    }
    assert_true(bb_scalar(env.db_conn, "SELECT count(*) FROM ticket_view WHERE order_id IS NULL", 0,
                          NULL) > 0);
    assert_true(bb_scalar(env.db_conn,
                          "SELECT count(*) FROM ticket_view WHERE order_id IS NOT NULL", 0,
                          NULL) > 0);
    assert_one_by_one_equals(set_based);
    free(set_based);
}

static int setup(void **state)
{
    (void)state;
    rt_env_init(&env, "applyset", 1);
    return 0;
}

TK_TEST_MAIN(
    setup, rt_teardown, cmocka_unit_test(set_based_apply_equals_one_by_one),
    cmocka_unit_test(an_idempotent_view_applies_redeliveries_once_without_processed_events),
    cmocka_unit_test(binary_batches_store_every_value_as_apply_does))
