/*
 * fake_stripe_main.c - `tk_fake_stripe`: the fault-injecting Stripe of fake_stripe.h as a process
 * of its own, for black-box suites whose system under test runs in other processes
 * (tests/security/run.sh points the topology's STRIPE_API_BASE at it). It prints its base URL on
 * one line of stdout, then serves until SIGTERM or SIGINT. Tests drive its faults and read what it
 * saw through its /__fake/ control endpoints (fake_stripe.h).
 */
#include "fake_stripe.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>

int main(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    /* Blocked before the server's threads start, so that only sigwait below takes them. */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    tk_fake_stripe_t *fs = tk_fake_stripe_start();
    printf("%s\n", tk_fake_stripe_url(fs));
    fflush(stdout);
    int sig = 0;
    sigwait(&set, &sig);
    tk_fake_stripe_stop(fs);
    return 0;
}
