/*
 * backoff.h - waiting before a retry: a capped doubling delay, and a nap that a stop flag cuts
 * short. Every retry loop (workers, relay, projector, listeners, the expiration stages) uses
 * these, so the delays follow one rule: first, 2 x first, 4 x first, ... never above max. And the
 * one restart loop of a long-running component (tk_supervise), for the threads a process keeps
 * alive until it stops: relays, projectors, context workers, the expiration stages.
 */
#ifndef TK_BACKOFF_H
#define TK_BACKOFF_H

#include <stdbool.h>

#include "tk/err.h"

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

/**
 * @brief One life of a component that tk_supervise keeps running: it runs until *@p stop or a
 *        failure. Once healthy it may tk_backoff_reset @p delay, so that its next failure waits
 *        first_ms again.
 * @return 0 when it stopped (run again at once unless *@p stop); non-zero when it failed, with
 *         @p err set.
 */
typedef int tk_life_fn(void *arg, volatile int *stop, tk_backoff_t *delay, tk_err_t *err);

/** @brief Told of each failed life before the nap: the caller logs it (tk_supervise prints
 *         nothing). @p err is borrowed for the call. */
typedef void tk_life_failed_fn(void *arg, const tk_err_t *err);

/**
 * @brief Run lives of @p life until *@p stop: after a failed one, @p failed, then a nap of
 *        @p delay's next delay that *@p stop cuts short.
 * Ownership: all borrowed for the call. Thread: the caller's, blocked until *@p stop.
 */
void tk_supervise(tk_life_fn *life, tk_life_failed_fn *failed, void *arg, tk_backoff_t *delay,
                  volatile int *stop);

#endif
