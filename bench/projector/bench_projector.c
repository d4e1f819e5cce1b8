/*
 * bench_projector.c - the live projector and the replay at the speed of their log (bench/run.sh).
 *
 *   bench_projector N
 *
 * Publishes N ticket events (ticket:created + 3 ticket:updated per ticket) to a private
 * 6-partition topic and a private tickets database (the replay tests' harness), prints
 * "topic=<name>" and waits for a line on stdin, so that the caller can measure Kafka's own
 * consumer on that very topic first (the ceiling). Then the real tickets view projector drains
 * the backlog, and `ticketing replay`'s engine rebuilds, verifies and swaps the view from the
 * log. Prints key=value lines; exits 0 only when the replay verified identical and swapped.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_replay_util.h"
#include "tk/replay.h"

typedef struct phases {
    int64_t build_start, build_end; /* monotonic ms; build_end at the first phase after build */
    int64_t build_done;
} phases_t;

static void on_progress(const tk_replay_progress_t *p, void *ud)
{
    phases_t *ph = ud;
    int64_t now = tk_mono_ms();
    if (strcmp(p->phase, "build") == 0) {
        if (ph->build_start == 0)
            ph->build_start = now;
        ph->build_done = p->done;
    } else if (ph->build_start != 0 && ph->build_end == 0) {
        ph->build_end = now;
    }
}

int main(int argc, char **argv)
{
    long events = argc > 1 ? atol(argv[1]) : 200000;
    int tickets = (int)(events / 4);
    if (tickets <= 0) {
        fprintf(stderr, "usage: bench_projector N (N >= 4)\n");
        return 2;
    }
    rt_env_t env;
    rt_env_init(&env, "benchproj", 6);
    rt_ticket_t *t = calloc((size_t)tickets, sizeof(*t));
    int64_t t0 = tk_mono_ms();
    rt_publish_tickets(&env, t, tickets, 3);
    rt_flush(&env);
    printf("published=%lld\npublish_ms=%lld\ntopic=%s\n", (long long)env.published,
           (long long)(tk_mono_ms() - t0), env.topic);
    fflush(stdout);
    char line[16];
    if (fgets(line, sizeof(line), stdin) == NULL) { /* the caller's go */
    }

    tk_err_t err = {0};
    tk_projector_t *live = tk_projector_new(&env.spec, &err);
    if (live == NULL) {
        fprintf(stderr, "projector: %s\n", err.message);
        return 1;
    }
    int64_t t1 = tk_mono_ms();
    bool caught_up = rt_catch_up(&env, live, 3600000);
    int64_t t2 = tk_mono_ms();
    tk_projector_free(live);
    printf("live_caught_up=%d\nlive_ms=%lld\nlive_per_s=%.0f\n", caught_up, (long long)(t2 - t1),
           env.published * 1000.0 / (double)(t2 - t1 > 0 ? t2 - t1 : 1));
    fflush(stdout);

    phases_t ph = {0};
    tk_replay_opts_t opts = {.to = TK_REPLAY_TO_END, .progress = on_progress, .progress_ud = &ph};
    tk_replay_result_t r;
    int rc = tk_replay_run(&env.spec, &opts, &r, &err);
    int64_t build_ms = ph.build_end > ph.build_start ? ph.build_end - ph.build_start : 1;
    if (rc != 0)
        fprintf(stderr, "replay: %s\n", err.message);
    printf("replay_rc=%d\nreplay_records=%lld\nreplay_ms=%lld\nreplay_build_ms=%lld\n"
           "replay_build_per_s=%.0f\nreplay_identical=%d\nreplay_swapped=%d\n",
           rc, (long long)r.records, (long long)r.elapsed_ms, (long long)build_ms,
           ph.build_done * 1000.0 / (double)build_ms, r.identical, r.swapped);
    free(t);
    rt_env_release(&env);
    return rc == 0 && r.identical && r.swapped && caught_up ? 0 : 1;
}
