/*
 * backoff.h - waiting before a retry: a capped doubling delay, and a nap that a stop flag cuts
 * short. Every retry loop (workers, relay, projector, listeners, the expiration stages) uses
 * these, so the delays follow one rule: first, 2 x first, 4 x first, ... never above max.
 */
#ifndef TK_BACKOFF_H
#define TK_BACKOFF_H

#include <stdbool.h>

/* A delay that doubles at each failure up to a cap; the caller embeds it (no allocation). */
typedef struct tk_backoff {
    int first_ms; /* the first delay, and the one after a reset */
    int max_ms;   /* the cap: no delay is longer */
    int next_ms;  /* the delay tk_backoff_next returns next */
} tk_backoff_t;

/** @brief Start at @p first_ms (> 0), doubling up to @p max_ms (>= first_ms). */
void tk_backoff_init(tk_backoff_t *b, int first_ms, int max_ms);

/** @brief The delay to wait now; the following one is twice as long, capped at max_ms. */
int tk_backoff_next(tk_backoff_t *b);

/** @brief After a success: the next failure waits first_ms again. */
void tk_backoff_reset(tk_backoff_t *b);

/**
 * @brief Sleep @p ms, in slices of at most 100 ms so that a set *@p stop ends it early (@p stop
 *        may be NULL: sleep the whole time). Signals do not shorten it.
 * @return true when *@p stop was set.
 */
bool tk_nap(int ms, volatile int *stop);

#endif
