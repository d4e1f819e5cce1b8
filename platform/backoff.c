/*
 * backoff.c - retry delays (see backoff.h). The doubling stops at the cap instead of passing it
 * once (5,000 ms capped after 3,200 ms gives 5,000, never 6,400), and a nap looks at its stop
 * flag every 100 ms at most, so a process asked to stop never sleeps out a long backoff.
 * tk_supervise is the one restart loop built on them.
 */
#include "tk/backoff.h"

#include <errno.h>
#include <time.h>

#define SLICE_MS 100

void tk_backoff_init(tk_backoff_t *b, int first_ms, int max_ms)
{
    b->first_ms = first_ms > 0 ? first_ms : 1;
    b->max_ms = max_ms > b->first_ms ? max_ms : b->first_ms;
    b->next_ms = b->first_ms;
}

int tk_backoff_next(tk_backoff_t *b)
{
    int now = b->next_ms;
    b->next_ms = now > b->max_ms / 2 ? b->max_ms : now * 2;
    return now;
}

void tk_backoff_reset(tk_backoff_t *b)
{
    b->next_ms = b->first_ms;
}

static void sleep_whole(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

bool tk_nap(int ms, volatile int *stop)
{
    for (int left = ms; left > 0; left -= SLICE_MS) {
        if (stop != NULL && *stop)
            return true;
        sleep_whole(left < SLICE_MS ? left : SLICE_MS);
    }
    return stop != NULL && *stop;
}

void tk_supervise(tk_life_fn *life, tk_life_failed_fn *failed, void *arg, tk_backoff_t *delay,
                  volatile int *stop)
{
    while (!*stop) {
        tk_err_t err = {0};
        if (life(arg, stop, delay, &err) == 0)
            continue;
        failed(arg, &err);
        tk_nap(tk_backoff_next(delay), stop);
    }
}
