/*
 * test_expiration.c - the scheduler's pure parts: the delay record codec (its exact bytes, what
 * it rejects, that no input crashes it) and the per-partition timer bookkeeping of delay.c
 * (included to reach its statics; nothing here talks to a broker).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tk_test_main.h"
#include <stdlib.h>
#include <string.h>

#include "../../commands/expiration/delay.c"

#define ID "0b1f6a3e-2c4d-4e5f-8a9b-0c1d2e3f4a5b"

static void record_encodes_exact_bytes(void **state)
{
    (void)state;
    tk_expiration_record_t r = {.order_id = ID, .due_ms = 1795845000123LL};
    char buf[TK_EXPIRATION_RECORD_MAX];
    int n = tk_expiration_record_encode(&r, buf, sizeof(buf), NULL);
    const char *want = "{\"orderId\":\"" ID "\",\"dueAt\":\"2026-11-28T05:50:00.123Z\"}";
    assert_int_equal(n, (int)strlen(want));
    assert_string_equal(buf, want);

    snprintf(r.correlation_id, sizeof(r.correlation_id), "req-42");
    n = tk_expiration_record_encode(&r, buf, sizeof(buf), NULL);
    assert_true(n > 0);
    assert_string_equal(buf,
                        "{\"orderId\":\"" ID
                        "\",\"dueAt\":\"2026-11-28T05:50:00.123Z\",\"correlationId\":\"req-42\"}");
}

static void record_round_trips(void **state)
{
    (void)state;
    tk_expiration_record_t r = {.order_id = ID, .due_ms = 1, .correlation_id = "c"}, back;
    char buf[TK_EXPIRATION_RECORD_MAX];
    int n = tk_expiration_record_encode(&r, buf, sizeof(buf), NULL);
    assert_true(n > 0);
    assert_int_equal(tk_expiration_record_decode(buf, (size_t)n, &back, NULL), 0);
    assert_string_equal(back.order_id, ID);
    assert_int_equal(back.due_ms, 1);
    assert_string_equal(back.correlation_id, "c");

    /* Members in any order, unknown members ignored, an offset in the time accepted. */
    const char *other =
        "{\"v\":2,\"dueAt\":\"2026-11-28T06:50:00.5+01:00\",\"orderId\":\"" ID "\"}";
    assert_int_equal(tk_expiration_record_decode(other, strlen(other), &back, NULL), 0);
    assert_int_equal(back.due_ms, 1795845000500LL);
    assert_string_equal(back.correlation_id, "");
}

static void record_decode_rejects(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "null",
        "[]",
        "{\"orderId\":\"" ID "\"}",
        "{\"dueAt\":\"2026-11-28T05:50:00.123Z\"}",
        "{\"orderId\":\"not-a-uuid\",\"dueAt\":\"2026-11-28T05:50:00.123Z\"}",
        "{\"orderId\":\"" ID "\",\"dueAt\":\"tomorrow\"}",
        "{\"orderId\":\"" ID "\",\"dueAt\":1795845000123}",
        "{\"orderId\":\"" ID "\",\"dueAt\":\"2026-11-28T05:50:00.123Z\",\"correlationId\":7}",
        "{\"orderId\":\"" ID "\",\"orderId\":\"" ID "\",\"dueAt\":\"2026-11-28T05:50:00Z\"}",
        "{\"orderId\":\"" ID "\",\"dueAt\":\"2026-11-28T05:50:00.123Z\"} trailing",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        tk_expiration_record_t out;
        tk_err_t err = {0};
        memset(&out, 0x5a, sizeof(out));
        assert_int_equal(tk_expiration_record_decode(bad[i], strlen(bad[i]), &out, &err),
                         TK_EINVAL);
        assert_int_equal(err.code, TK_EINVAL);
        assert_string_equal(out.order_id, ""); /* zeroed on failure */
    }
    /* A correlation id longer than the envelope allows. */
    char longer[TK_EXPIRATION_RECORD_MAX];
    snprintf(longer, sizeof(longer),
             "{\"orderId\":\"" ID
             "\",\"dueAt\":\"2026-11-28T05:50:00Z\",\"correlationId\":\"%064d\"}",
             0);
    tk_expiration_record_t out;
    tk_err_t err = {0};
    assert_int_equal(tk_expiration_record_decode(longer, strlen(longer), &out, &err), TK_EINVAL);
    assert_string_equal(err.field, "correlationId");
    /* Over the size limit. */
    char *huge = calloc(1, TK_EXPIRATION_RECORD_MAX + 2);
    memset(huge, ' ', TK_EXPIRATION_RECORD_MAX + 1);
    assert_int_equal(tk_expiration_record_decode(huge, TK_EXPIRATION_RECORD_MAX + 1, &out, NULL),
                     TK_EINVAL);
    free(huge);
}

static void record_encode_rejects(void **state)
{
    (void)state;
    char buf[TK_EXPIRATION_RECORD_MAX];
    tk_expiration_record_t r = {.order_id = "nope", .due_ms = 0};
    tk_err_t err = {0};
    assert_int_equal(tk_expiration_record_encode(&r, buf, sizeof(buf), &err), TK_EINVAL);
    assert_string_equal(err.field, "orderId");
    tk_expiration_record_t neg = {.order_id = ID, .due_ms = -1};
    assert_int_equal(tk_expiration_record_encode(&neg, buf, sizeof(buf), &err), TK_EINVAL);
    assert_string_equal(err.field, "dueAt");
    tk_expiration_record_t ok = {.order_id = ID, .due_ms = 0};
    assert_int_equal(tk_expiration_record_encode(&ok, buf, 16, &err), TK_EINVAL); /* too small */
}

/* Random and mutated inputs never crash the decoder (a smoke version of a fuzz driver). */
static void record_decode_survives_garbage(void **state)
{
    (void)state;
    const char *seed = "{\"orderId\":\"" ID "\",\"dueAt\":\"2026-11-28T05:50:00.123Z\"}";
    size_t len = strlen(seed);
    char buf[TK_EXPIRATION_RECORD_MAX];
    srand(7);
    int accepted = 0;
    for (int i = 0; i < 20000; i++) {
        memcpy(buf, seed, len);
        for (int k = 0; k < 1 + rand() % 4; k++)
            buf[rand() % len] = (char)(rand() % 256);
        size_t n = (size_t)(rand() % (int)len) + 1;
        tk_expiration_record_t out;
        if (tk_expiration_record_decode(buf, n, &out, NULL) == 0) {
            accepted++;
            assert_true(tk_uuid_valid(out.order_id));
        }
    }
    assert_true(accepted < 20000);
}

static void timers_wait_for_the_next_event(void **state)
{
    (void)state;
    tk_expiration__cfg_t cfg = {.delay_topic = "expiration.delay"};
    struct delay d = {.cfg = &cfg};
    assert_int_equal(poll_timeout(&d, 1000), POLL_MS); /* nothing assigned */

    parts_reserve(&d, 2);
    assert_int_equal(d.nparts, 3);
    /* Partition 0 waits for a far head; partition 2 holds a record due at 1120. */
    d.parts[0] = (struct part){.assigned = true, .paused = true, .wake_ms = 1300};
    d.parts[2] = (struct part){.assigned = true};
    struct held *h = hold(&d.parts[2]);
    h->due_ms = 1120;
    h->offset = 7;
    assert_int_equal(next_event(&d), 1120);
    assert_int_equal(poll_timeout(&d, 1000), 120);
    assert_int_equal(poll_timeout(&d, 1200), 0); /* due: poll without blocking */

    /* A revoked partition's window no longer counts. */
    d.parts[2].assigned = false;
    assert_int_equal(next_event(&d), 1300);
    assert_false(may_resume(&d.parts[0], 1299));
    assert_true(may_resume(&d.parts[0], 1300));
    /* Far events are re-checked every POLL_MS at least. */
    d.parts[0].wake_ms = 100000;
    assert_int_equal(poll_timeout(&d, 1000), POLL_MS);

    /* Growing keeps what is there; the table is per partition, not per pending record. */
    parts_reserve(&d, 5);
    assert_int_equal(d.nparts, 6);
    assert_int_equal(d.parts[0].wake_ms, 100000);
    assert_int_equal(front(&d.parts[2])->offset, 7);
    assert_false(d.parts[5].assigned);
    parts_reserve(&d, 1);
    assert_int_equal(d.nparts, 6);
    assert_null(part_of(&d, 6));
    assert_null(part_of(&d, -1));
    for (int32_t i = 0; i < d.nparts; i++)
        free(d.parts[i].win);
    free(d.parts);
}

static void window_is_a_bounded_fifo(void **state)
{
    (void)state;
    struct part p = {.assigned = true, .paused = true, .wake_ms = 0};
    assert_null(front(&p));
    /* Fill, drain half, refill across the end of the ring: order is kept. */
    for (int64_t i = 0; i < WINDOW_MAX; i++)
        hold(&p)->offset = i;
    assert_int_equal(p.count, WINDOW_MAX);
    assert_false(may_resume(&p, 0)); /* full: no fetch until room is made */
    for (int64_t i = 0; i < WINDOW_MAX / 2; i++) {
        assert_int_equal(front(&p)->offset, i);
        front(&p)->fired = true;
        compact(&p);
    }
    assert_true(may_resume(&p, 0));
    for (int64_t i = WINDOW_MAX; i < WINDOW_MAX + WINDOW_MAX / 2; i++)
        hold(&p)->offset = i;
    /* Records fired out of order leave the window; the rest keep their order. */
    for (size_t k = 0; k < p.count; k += 2)
        p.win[(p.first + k) % WINDOW_MAX].fired = true;
    compact(&p);
    assert_int_equal(p.count, WINDOW_MAX / 2);
    for (int64_t i = WINDOW_MAX / 2 + 1; i < WINDOW_MAX + WINDOW_MAX / 2; i += 2) {
        assert_int_equal(front(&p)->offset, i);
        front(&p)->fired = true;
        compact(&p);
    }
    assert_int_equal(p.count, 0);
    free(p.win);
}

static void options_default_to_the_contract_names(void **state)
{
    (void)state;
    tk_expiration__cfg_t cfg;
    assert_int_equal(tk_expiration__cfg_resolve(NULL, &cfg, NULL), 0);
    assert_string_equal(cfg.orders_topic, "orders");
    assert_string_equal(cfg.delay_topic, "expiration.delay");
    assert_string_equal(cfg.expirations_topic, "expirations");
    assert_string_equal(cfg.intake_group, "expiration.intake");
    assert_string_equal(cfg.delay_group, "expiration.delay");
    tk_expiration_opts_t bad = {.delay_topic = ""};
    assert_int_equal(tk_expiration__cfg_resolve(&bad, &cfg, NULL), TK_EINVAL);
}

TK_TEST_MAIN(NULL, NULL, cmocka_unit_test(record_encodes_exact_bytes),
             cmocka_unit_test(record_round_trips), cmocka_unit_test(record_decode_rejects),
             cmocka_unit_test(record_encode_rejects),
             cmocka_unit_test(record_decode_survives_garbage),
             cmocka_unit_test(timers_wait_for_the_next_event),
             cmocka_unit_test(window_is_a_bounded_fifo),
             cmocka_unit_test(options_default_to_the_contract_names))
