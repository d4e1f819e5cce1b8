/*
 * processes.c - the long-running subcommands: `project`, `relay` and `run` (DESIGN.md section
 * 2). `run` is the local default: every context's routes on one port, every relay and projector
 * as threads, and the expiration scheduler, in one process that Ctrl-C stops cleanly.
 */
#include "app.h"
#include "tk/cfg.h"
#include "tk/log.h"
#include "tk/mem.h"

#include <stdio.h>
#include <string.h>

/* Resolves "<context>|all" into @p out (NULL for all); prints usage and returns -1 if bad. */
static int context_arg(int argc, char **argv, const char *sub, const tk_context_t **out)
{
    if (argc < 2) {
        fprintf(stderr, "usage: ticketing %s <context>|all\n", sub);
        return -1;
    }
    *out = NULL;
    if (strcmp(argv[1], "all") == 0)
        return 0;
    *out = tk_app_context_find(argv[1]);
    if (*out == NULL) {
        fprintf(stderr, "ticketing %s: unknown context '%s'\n", sub, argv[1]);
        return -1;
    }
    return 0;
}

static int run_workers(int argc, char **argv, const char *sub, bool relays, bool projectors)
{
    const tk_context_t *ctx;
    if (context_arg(argc, argv, sub, &ctx) != 0)
        return 2;
    tk_err_t err = {0};
    tk_app_workers_t *w = tk_app_workers_start(ctx, relays, projectors, &err);
    tk_log(TK_LOG_INFO, sub, "started", "\"context\":\"%s\"", argv[1]);
    tk_app_workers_join(w);
    tk_log(TK_LOG_INFO, sub, "stopped", NULL);
    return 0;
}

int tk_app_project(int argc, char **argv)
{
    tk_mem_bound_heap(); /* before its consumers' threads start */
    return run_workers(argc, argv, "project", false, true);
}

int tk_app_relay(int argc, char **argv)
{
    return run_workers(argc, argv, "relay", true, false);
}
