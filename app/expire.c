/*
 * expire.c - `ticketing expire`: the expiration scheduler (DESIGN.md section 7) as a process of
 * its own, until SIGINT/SIGTERM; and `ticketing expire status`: the scheduler's pending count and
 * lateness as one JSON line (the numbers `ticketing status` shows).
 */
#include "app.h"
#include "expiration.h"
#include "tk/log.h"

#include <stdio.h>
#include <string.h>

static int print_status(void)
{
    tk_err_t err = {0};
    tk_expiration_status_t st;
    if (tk_expiration_status(&st, &err) != 0) {
        fprintf(stderr, "ticketing expire status: %s\n", err.message);
        return 1;
    }
    printf("{\"pending\":%lld,\"intakeLag\":%lld,\"partitions\":%d,\"heads\":%d,"
           "\"latenessMs\":%lld}\n",
           (long long)st.pending, (long long)st.intake_lag, st.partitions, st.heads,
           (long long)st.lateness_ms);
    return 0;
}

int tk_app_expire(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "status") == 0)
        return print_status();
    if (argc >= 2) {
        fprintf(stderr, "usage: ticketing expire [status]\n");
        return 2;
    }
    tk_err_t err = {0};
    if (tk_expiration_run(&tk_app_stop, &err) != 0) {
        fprintf(stderr, "ticketing expire: %s\n", err.message);
        return 1;
    }
    return 0;
}
