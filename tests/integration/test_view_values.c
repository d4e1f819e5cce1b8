/*
 * test_view_values.c - the tickets view's set-based apply sends a batch as binary arrays (one
 * per column, projections/tickets/ticket_view.c): every value must arrive as apply, record by
 * record with text parameters, stores it. Titles with the characters that quoting, escaping or a
 * length could get wrong (quotes, backslashes, braces, commas, the word NULL, multi-byte UTF-8,
 * spaces at both ends), reserved and free tickets, and the envelopes, projected once through
 * apply_set and once record by record into the same private database, must give the same
 * tables, and the titles must read back as published.
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

#include "bb_test.h"
#include "test_replay_util.h"
#include "tk/projector.h"

static rt_env_t env;

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

static void project(const tk_projector_spec_t *spec)
{
    tk_err_t err = {0};
    tk_projector_t *p = tk_projector_new(spec, &err);
    assert_non_null(p);
    assert_true(rt_catch_up(&env, p, 120000));
    tk_projector_free(p);
}

static void binary_batches_store_every_value_as_apply_does(void **state)
{
    (void)state;
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

    const char *name[] = {env.name};
    bb_exec(env.db_conn, "TRUNCATE ticket_view, ticket_history", 0, NULL);
    bb_exec(env.db_conn, "DELETE FROM projection_offsets WHERE projection = $1", 1, name);
    tk_projector_spec_t one_by_one = env.spec;
    one_by_one.apply_set = NULL;
    project(&one_by_one);
    char *each = rt_tickets_snapshot(&env);
    if (strcmp(set_based, each) != 0)
        print_error("set-based:\n%s\none by one:\n%s\n", set_based, each);
    assert_string_equal(set_based, each);
    free(set_based);
    free(each);
}

static int setup(void **state)
{
    (void)state;
    rt_env_init(&env, "viewvalues", 1);
    return 0;
}

TK_TEST_MAIN(setup, rt_teardown, cmocka_unit_test(binary_batches_store_every_value_as_apply_does))
