/*
 * test_tools.c - the operator tools of the `ticketing` binary, run as subprocesses (TK_BIN, the
 * built binary) against the real stack:
 *
 *   events tail  JSON lines with the record's position, key, headers and the envelope exactly as
 *                the broker holds it; filters by type and key; from the beginning or from now;
 *                a poison record printed as a string with the decoder's error
 *   status       a projector's lag (exact, on a private topic) goes up with new records and back
 *                to 0 when it catches up; its dead letters show after a poison record; a
 *                database or a broker that is down is reported (exit 1) without a crash
 *   replay       list, refusals, and a real `replay tickets.ticket_view` on the shared tickets
 *                topic into a private database: --force builds and swaps, a corrupted row makes
 *                it refuse (exit 1, live row untouched), --force repairs it
 *
 * The tickets database is a private one (DATABASE_URL_TICKETS, inherited by the subprocesses), so
 * the swaps and projection rows of this test touch nobody else's data.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bb_test.h"
#include "ev_envelope.h"
#include "ev_ticket.h"
#include "test_replay_util.h"
#include "tk_test.h"
#include "tk/kafka.h"
#include "tk/pg.h"

#ifndef TK_BIN
#error "TK_BIN must name the ticketing binary"
#endif

#define RUN_MS 60000

static rt_env_t env;
static rt_ticket_t tickets[2];
static tk_projector_t *live;

/* ---- subprocesses ---------------------------------------------------------------------------- */

typedef struct tool {
    pid_t pid;
    int out_fd, err_fd;
    char *out, *err; /* owned, NUL-terminated, everything read so far */
    size_t out_len, err_len;
    int status; /* raw waitpid status once waited */
} tool_t;

/* Start TK_BIN with args (NULL-terminated, without argv[0]) and extra "K=V" settings. */
static void tool_start(tool_t *t, const char *const *args, const char *const *env_kv)
{
    memset(t, 0, sizeof(*t));
    int out[2], err[2];
    assert_int_equal(pipe(out), 0);
    assert_int_equal(pipe(err), 0);
    fflush(NULL);
    t->pid = fork();
    assert_true(t->pid >= 0);
    if (t->pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        dup2(err[1], STDERR_FILENO);
        close(out[0]);
        close(err[0]);
        close(out[1]);
        close(err[1]);
        for (size_t i = 0; env_kv != NULL && env_kv[i] != NULL; i++)
            putenv((char *)env_kv[i]);
        char *argv[32] = {"ticketing"};
        for (size_t i = 0; args[i] != NULL && i < 30; i++)
            argv[i + 1] = (char *)args[i];
        execv(TK_BIN, argv);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    t->out_fd = out[0];
    t->err_fd = err[0];
    t->out = calloc(1, 1);
    t->err = calloc(1, 1);
}

static void append(char **buf, size_t *len, const char *data, size_t n)
{
    *buf = realloc(*buf, *len + n + 1);
    memcpy(*buf + *len, data, n);
    *len += n;
    (*buf)[*len] = '\0';
}

/* Read both pipes until @p done says so (or both close) or the deadline; true when done. */
static bool tool_read(tool_t *t, bool (*done)(const tool_t *t, const void *arg), const void *arg,
                      int timeout_ms)
{
    int64_t deadline = tk_mono_ms() + timeout_ms;
    while (done == NULL || !done(t, arg)) {
        struct pollfd fds[2] = {{.fd = t->out_fd, .events = POLLIN},
                                {.fd = t->err_fd, .events = POLLIN}};
        if (t->out_fd < 0 && t->err_fd < 0)
            return done == NULL;
        int64_t left = deadline - tk_mono_ms();
        if (left <= 0)
            return false;
        if (poll(fds, 2, (int)left) < 0 && errno != EINTR)
            return false;
        for (int i = 0; i < 2; i++) {
            if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            char buf[4096];
            ssize_t n = read(fds[i].fd, buf, sizeof(buf));
            if (n <= 0) {
                close(fds[i].fd);
                *(i == 0 ? &t->out_fd : &t->err_fd) = -1;
            } else if (i == 0) {
                append(&t->out, &t->out_len, buf, (size_t)n);
            } else {
                append(&t->err, &t->err_len, buf, (size_t)n);
            }
        }
    }
    return true;
}

/* Collect the rest of the output and the exit status (killing the tool after the deadline). */
static int tool_finish(tool_t *t, int timeout_ms)
{
    if (!tool_read(t, NULL, NULL, timeout_ms))
        kill(t->pid, SIGKILL);
    while (waitpid(t->pid, &t->status, 0) < 0 && errno == EINTR)
        ;
    if (t->out_fd >= 0)
        close(t->out_fd);
    if (t->err_fd >= 0)
        close(t->err_fd);
    return WIFEXITED(t->status) ? WEXITSTATUS(t->status) : 128 + WTERMSIG(t->status);
}

static void tool_release(tool_t *t)
{
    free(t->out);
    free(t->err);
}

/* Run to the end; returns the exit code (128 + signal when killed). */
static int tool_run(tool_t *t, const char *const *args, const char *const *env_kv)
{
    tool_start(t, args, env_kv);
    int rc = tool_finish(t, RUN_MS);
    if (rc != 0)
        fprintf(stderr, "[tool exit %d] stderr:\n%s\n", rc, t->err);
    return rc;
}

static bool has_text(const tool_t *t, const void *arg)
{
    const char *const *what = arg; /* {"out"|"err", needle} */
    return strstr(strcmp(what[0], "out") == 0 ? t->out : t->err, what[1]) != NULL;
}

/* The JSON lines of @p text, as an array (owned). */
static json_t *json_lines(const char *text)
{
    json_t *a = json_array();
    const char *p = text;
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        json_error_t e;
        json_t *v = json_loadb(p, n, 0, &e);
        if (v == NULL)
            fail_msg("not a JSON line: %.*s (%s)", (int)n, p, e.text);
        json_array_append_new(a, v);
        p += n + (nl ? 1 : 0);
    }
    return a;
}

static const char *str(const json_t *o, const char *path1, const char *path2)
{
    const json_t *v = json_object_get(o, path1);
    if (path2 != NULL)
        v = json_object_get(v, path2);
    return json_string_value(v);
}

/* ---- setup ----------------------------------------------------------------------------------- */

static int setup(void **state)
{
    (void)state;
    rt_env_init(&env, "toolstest", 3);
    return 0;
}

static int teardown(void **state)
{
    tk_projector_free(live);
    return rt_teardown(state);
}

/* ---- events tail ----------------------------------------------------------------------------- */

static void tail_prints_json_lines_filtered_by_type_and_key(void **state)
{
    (void)state;
    rt_publish_tickets(&env, tickets, 2, 2); /* 2 x (created, updated v1, updated v2) */
    rt_publish_raw(&env, "poison", "this is poison");
    rt_flush(&env);

    /* Everything from the beginning: 7 records, each exactly as the broker holds it. */
    tool_t t;
    const char *all[] = {"events",           "tail",  "--topic", env.topic,
                         "--from-beginning", "--max", "7",       NULL};
    assert_int_equal(tool_run(&t, all, NULL), 0);
    json_t *lines = json_lines(t.out);
    assert_int_equal(json_array_size(lines), 7);
    bb_reader_t *raw = bb_reader_new(env.topic, true);
    assert_int_equal(bb_reader_collect(raw, 7, 20000), 7);
    for (size_t i = 0; i < raw->n; i++) {
        char needle[70000];
        snprintf(needle, sizeof(needle), "\"offset\":%lld,", (long long)raw->recs[i].offset);
        assert_non_null(strstr(t.out, needle));
        if (raw->recs[i].value[0] == '{') { /* an envelope: spliced in byte for byte */
            snprintf(needle, sizeof(needle), "\"event\":%s}", raw->recs[i].value);
            assert_non_null(strstr(t.out, needle));
        }
    }
    bb_reader_free(raw);
    int poison = 0, created = 0;
    for (size_t i = 0; i < json_array_size(lines); i++) {
        json_t *l = json_array_get(lines, i);
        assert_string_equal(str(l, "topic", NULL), env.topic);
        assert_true(json_is_integer(json_object_get(l, "partition")));
        assert_true(json_is_integer(json_object_get(l, "offset")));
        assert_non_null(str(l, "timestamp", NULL));
        if (strcmp(str(l, "key", NULL), "poison") == 0) {
            poison++;
            assert_string_equal(str(l, "event", NULL), "this is poison");
            assert_non_null(strstr(str(l, "error", NULL), "not JSON"));
            continue;
        }
        assert_null(json_object_get(l, "error"));
        assert_string_equal(str(l, "headers", "ce_type"), str(l, "event", "type"));
        assert_string_equal(str(l, "headers", "ce_id"), str(l, "event", "id"));
        assert_string_equal(str(l, "key", NULL), str(l, "event", "subject"));
        created += strcmp(str(l, "event", "type"), "ticket:created") == 0;
    }
    assert_int_equal(poison, 1);
    assert_int_equal(created, 2);
    json_decref(lines);
    tool_release(&t);

    /* --type: only the creations. */
    const char *by_type[] = {"events", "tail",           "--topic", env.topic, "--from-beginning",
                             "--type", "ticket:created", "--max",   "2",       NULL};
    assert_int_equal(tool_run(&t, by_type, NULL), 0);
    lines = json_lines(t.out);
    assert_int_equal(json_array_size(lines), 2);
    for (size_t i = 0; i < 2; i++)
        assert_string_equal(str(json_array_get(lines, i), "event", "type"), "ticket:created");
    json_decref(lines);
    tool_release(&t);

    /* --key and --type together: ticket 1's two updates, in order. */
    const char *by_key[] = {"events",           "tail",  "--topic",     env.topic,
                            "--from-beginning", "--key", tickets[1].id, "--type",
                            "ticket:updated",   "--max", "2",           NULL};
    assert_int_equal(tool_run(&t, by_key, NULL), 0);
    lines = json_lines(t.out);
    assert_int_equal(json_array_size(lines), 2);
    for (size_t i = 0; i < 2; i++) {
        json_t *l = json_array_get(lines, i);
        assert_string_equal(str(l, "key", NULL), tickets[1].id);
        assert_int_equal(
            json_integer_value(json_object_get(json_object_get(l, "event"), "aggregateversion")),
            (json_int_t)i + 1);
    }
    json_decref(lines);
    tool_release(&t);

    /* From now: only what is published after the ready line. */
    rt_ticket_t later[1];
    const char *from_now[] = {"events", "tail", "--topic", env.topic, "--max", "1", NULL};
    tool_start(&t, from_now, NULL);
    const char *ready[] = {"err", "reading"};
    assert_true(tool_read(&t, has_text, ready, RUN_MS));
    rt_publish_tickets(&env, later, 1, 0);
    rt_flush(&env);
    assert_int_equal(tool_finish(&t, RUN_MS), 0);
    lines = json_lines(t.out);
    assert_int_equal(json_array_size(lines), 1);
    assert_string_equal(str(json_array_get(lines, 0), "key", NULL), later[0].id);
    json_decref(lines);
    tool_release(&t);
}

/* ---- status ---------------------------------------------------------------------------------- */

/* `ticketing status --json` with extra settings; returns the exit code and the parsed output. */
static int status(const char *const *env_kv, json_t **out)
{
    tool_t t;
    const char *args[] = {"status", "--json", NULL};
    tool_start(&t, args, env_kv);
    int rc = tool_finish(&t, RUN_MS);
    json_error_t e;
    *out = json_loads(t.out, 0, &e);
    if (*out == NULL)
        fail_msg("status printed no JSON (exit %d): %s / %s", rc, t.out, t.err);
    tool_release(&t);
    return rc;
}

static json_t *find(json_t *root, const char *array, const char *context, const char *name)
{
    json_t *a = json_object_get(root, array), *v;
    size_t i;
    json_array_foreach(a, i, v)
    {
        if (strcmp(str(v, "context", NULL), context) == 0 &&
            (name == NULL || strcmp(str(v, "projection", NULL), name) == 0))
            return v;
    }
    fail_msg("%s has no %s %s", array, context, name ? name : "");
    return NULL;
}

static json_int_t lag_of_ours(json_t *root)
{
    json_t *p = find(root, "projectors", "tickets", env.name);
    assert_true(json_is_integer(json_object_get(p, "lag")));
    return json_integer_value(json_object_get(p, "lag"));
}

static void status_shows_lag_dead_letters_and_what_is_down(void **state)
{
    (void)state;
    tk_err_t err = {0};
    assert_non_null(live = tk_projector_new(&env.spec, &err));
    assert_true(rt_catch_up(&env, live, RUN_MS));

    json_t *s = NULL;
    assert_int_equal(status(NULL, &s), 0);
    assert_true(json_is_true(json_object_get(json_object_get(s, "broker"), "up")));
    assert_true(json_is_true(json_object_get(find(s, "databases", "tickets", NULL), "up")));
    json_t *ours = find(s, "projectors", "tickets", env.name);
    assert_int_equal(lag_of_ours(s), 0);
    assert_int_equal(json_integer_value(json_object_get(ours, "deadLetters")), 1); /* poison */
    assert_int_equal(json_integer_value(json_object_get(ours, "members")), 1);
    assert_true(json_is_false(json_object_get(ours, "inTable")));
    assert_string_equal(json_string_value(json_array_get(json_object_get(ours, "topics"), 0)),
                        env.topic);
    /* The table's projectors are listed even without offsets; ticket_view is replayable. */
    assert_true(json_is_true(
        json_object_get(find(s, "projectors", "tickets", "ticket_view"), "replayable")));
    assert_true(json_is_false(
        json_object_get(find(s, "projectors", "payments", "orders_replica"), "replayable")));
    assert_true(json_is_true(json_object_get(json_object_get(s, "expiration"), "up")));
    json_decref(s);

    /* Three new records: lag 3; caught up: 0. */
    rt_publish_update(&env, &tickets[0], "lag 1");
    rt_publish_update(&env, &tickets[0], "lag 2");
    rt_publish_update(&env, &tickets[1], "lag 3");
    rt_flush(&env);
    assert_int_equal(status(NULL, &s), 0);
    assert_int_equal(lag_of_ours(s), 3);
    json_decref(s);
    assert_true(rt_catch_up(&env, live, RUN_MS));
    assert_int_equal(status(NULL, &s), 0);
    assert_int_equal(lag_of_ours(s), 0);
    json_decref(s);

    /* Another poison record: one more dead letter, and no lag once it was dead-lettered. */
    rt_publish_raw(&env, "poison", "{\"specversion\":\"0.1\"}");
    rt_flush(&env);
    assert_true(rt_catch_up(&env, live, RUN_MS));
    assert_int_equal(status(NULL, &s), 0);
    ours = find(s, "projectors", "tickets", env.name);
    assert_int_equal(json_integer_value(json_object_get(ours, "deadLetters")), 2);
    assert_int_equal(lag_of_ours(s), 0);
    json_int_t tickets_dead =
        json_integer_value(json_object_get(find(s, "databases", "tickets", NULL), "deadLetters"));
    assert_int_equal(tickets_dead, 2);
    json_decref(s);

    /* A database that is down: reported, the rest still measured, exit 1. */
    const char *db_down[] = {"DATABASE_URL_ORDERS=postgresql://postgres@127.0.0.1:1/tk_orders",
                             NULL};
    assert_int_equal(status(db_down, &s), 1);
    json_t *orders = find(s, "databases", "orders", NULL);
    assert_true(json_is_false(json_object_get(orders, "up")));
    assert_non_null(str(orders, "error", NULL));
    assert_true(
        json_is_null(json_object_get(find(s, "projectors", "orders", "order_view"), "lag")));
    assert_int_equal(lag_of_ours(s), 0);
    json_decref(s);

    /* The broker down: reported, the databases still measured, exit 1. */
    const char *broker_down[] = {"KAFKA_BROKERS=127.0.0.1:1", NULL};
    assert_int_equal(status(broker_down, &s), 1);
    assert_true(json_is_false(json_object_get(json_object_get(s, "broker"), "up")));
    assert_true(json_is_null(json_object_get(find(s, "projectors", "tickets", env.name), "lag")));
    assert_true(json_is_true(json_object_get(find(s, "databases", "tickets", NULL), "up")));
    assert_true(json_is_false(json_object_get(json_object_get(s, "expiration"), "up")));
    json_decref(s);

    /* The table form names our projector (found in projection_offsets, marked *). */
    tool_t t;
    const char *table[] = {"status", NULL};
    assert_int_equal(tool_run(&t, table, NULL), 0);
    char needle[128];
    snprintf(needle, sizeof(needle), "tickets.%s *", env.name);
    assert_non_null(strstr(t.out, needle));
    assert_non_null(strstr(t.out, "OUTBOX"));
    tool_release(&t);
}

/* ---- replay ---------------------------------------------------------------------------------- */

static char *view_title(const char *id)
{
    const char *p[] = {id};
    return rt_text(&env, "SELECT title FROM ticket_view WHERE id = $1", 1, p);
}

static void replay_cli_lists_refuses_builds_detects_and_repairs(void **state)
{
    (void)state;
    tool_t t;
    const char *list[] = {"replay", "list", NULL};
    assert_int_equal(tool_run(&t, list, NULL), 0);
    assert_non_null(strstr(t.out, "tickets.ticket_view\tticket_view,ticket_history\n"));
    assert_non_null(strstr(t.out, "orders.order_view\torder_view\n"));
    assert_non_null(strstr(t.out, "orders.tickets_replica\ttickets_replica\n"));
    assert_null(strstr(t.out, "orders_replica\t"));
    tool_release(&t);

    const char *refused[] = {"replay", "payments.orders_replica", NULL};
    tool_start(&t, refused, NULL);
    assert_int_equal(tool_finish(&t, RUN_MS), 2);
    assert_non_null(strstr(t.err, "not replayable"));
    tool_release(&t);
    const char *unknown[] = {"replay", "tickets.nope", NULL};
    tool_start(&t, unknown, NULL);
    assert_int_equal(tool_finish(&t, RUN_MS), 2);
    tool_release(&t);

    /* A ticket of ours on the real tickets topic, keyed by its id as the tickets context does. */
    ev_ticket_t tk = {.version = 0, .price_cents = 1234};
    tk_uuid_new(tk.id);
    tk_uuid_new(tk.user_id);
    snprintf(tk.title, sizeof(tk.title), "replayed by the CLI");
    tk_err_t err = {0};
    char event_id[TK_UUID_LEN + 1];
    char *text =
        tk_test_event_text("ticket:created", tk.id, 0, ev_ticket_created_to_json(&tk), event_id);
    rd_kafka_headers_t *h = tk_kafka_headers_new("ticket:created", event_id, "1");
    assert_int_equal(
        tk_kafka_produce_sync(env.producer, "tickets", tk.id, text, strlen(text), h, &err), 0);
    rd_kafka_headers_destroy(h);
    free(text);

    /* --to end --force: rebuilt from the whole shared topic and swapped in, offsets set. */
    const char *build[] = {"replay", "tickets.ticket_view", "--to", "end", "--force", NULL};
    assert_int_equal(tool_run(&t, build, NULL), 0);
    assert_non_null(strstr(t.out, "swapped"));
    assert_non_null(strstr(t.err, "replay tickets.ticket_view: ")); /* progress, not a TTY */
    assert_non_null(strstr(t.err, "events/s"));
    tool_release(&t);
    char *title = view_title(tk.id);
    assert_string_equal(title, "replayed by the CLI");
    free(title);
    const char *pv[] = {"ticket_view"};
    assert_int_equal(bb_scalar(env.db_conn,
                               "SELECT count(*) FROM projection_offsets WHERE projection = $1 "
                               "AND next_offset > 0",
                               1, pv) > 0,
                     1);

    /* A corrupted live row: refused, exit 1, the live row left as it is. */
    const char *pid[] = {tk.id};
    bb_exec(env.db_conn, "UPDATE ticket_view SET title = 'corrupted' WHERE id = $1", 1, pid);
    const char *verify[] = {"replay", "tickets.ticket_view", "--to", "live", NULL};
    tool_start(&t, verify, NULL);
    assert_int_equal(tool_finish(&t, RUN_MS), 1);
    assert_non_null(strstr(t.out, "DIFFERENT"));
    assert_non_null(strstr(t.err, "differs from the live model"));
    tool_release(&t);
    title = view_title(tk.id);
    assert_string_equal(title, "corrupted");
    free(title);

    /* --force repairs it. */
    const char *repair[] = {"replay", "tickets.ticket_view", "--to", "live", "--force", NULL};
    assert_int_equal(tool_run(&t, repair, NULL), 0);
    tool_release(&t);
    title = view_title(tk.id);
    assert_string_equal(title, "replayed by the CLI");
    free(title);
}

TK_TEST_MAIN(setup, teardown, cmocka_unit_test(tail_prints_json_lines_filtered_by_type_and_key),
             cmocka_unit_test(status_shows_lag_dead_letters_and_what_is_down),
             cmocka_unit_test(replay_cli_lists_refuses_builds_detects_and_repairs))
