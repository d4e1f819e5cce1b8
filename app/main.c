/*
 * main.c - `ticketing <subcommand>`: parses the subcommand, loads the configuration it needs
 * (a missing variable stops start-up with one line), and hands over to app/<subcommand>.c.
 */
#include "app.h"
#include "tk/cfg.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

volatile int tk_app_stop;

static void on_signal(int sig)
{
    (void)sig;
    tk_app_stop = 1;
}

void tk_app_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

struct subcommand {
    const char *name;
    const char *usage;
    unsigned needs;
    int (*run)(int argc, char **argv);
};

static const struct subcommand subcommands[] = {
    {"run", "run                                       everything in one process (local default)",
     TK_CFG_NEED_JWT, tk_app_run},
    {"serve", "serve auth|tickets|orders|payments|all   REST endpoints of a context",
     TK_CFG_NEED_JWT, tk_app_serve},
    {"expire", "expire [status]                           the expiration scheduler",
     TK_CFG_NEED_KAFKA, tk_app_expire},
    {"project", "project <context>|all                     projectors: Kafka -> read models",
     TK_CFG_NEED_KAFKA | TK_CFG_NEED_DATABASE, tk_app_project},
    {"relay", "relay <context>|all                       outbox relay: events -> Kafka",
     TK_CFG_NEED_KAFKA | TK_CFG_NEED_DATABASE, tk_app_relay},
    {"migrate", "migrate                                   create databases and tables", 0,
     tk_app_migrate},
    {"topics", "topics                                    create the Kafka topics", 0,
     tk_app_topics},
    {"replay", "replay <context>.<projection>|list        rebuild a read model, verify, swap",
     TK_CFG_NEED_KAFKA | TK_CFG_NEED_DATABASE, tk_app_replay},
    {"events", "events tail [--topic T] [--type X] ...     print events as JSON lines",
     TK_CFG_NEED_KAFKA, tk_app_events},
    {"dead-letters", "dead-letters list|show|retry|drop [--context C] [--id N]",
     TK_CFG_NEED_KAFKA | TK_CFG_NEED_DATABASE, tk_app_dead_letters},
    {"status", "status [--json]                           projector lag, outbox, dead letters",
     TK_CFG_NEED_KAFKA | TK_CFG_NEED_DATABASE, tk_app_status},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: ticketing <subcommand> [args]\n\n");
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
        fprintf(out, "  ticketing %s\n", subcommands[i].usage);
    fprintf(out, "\nConfiguration comes from the environment: KAFKA_BROKERS, DATABASE_URL, "
                 "JWT_KEY, STRIPE_KEY,\nSTRIPE_API_BASE, EXPIRATION_WINDOW_SECONDS, PORT "
                 "(see README.md).\n");
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++) {
        if (strcmp(argv[1], subcommands[i].name) != 0)
            continue;
        tk_err_t err = {0};
        if (tk_cfg_load(subcommands[i].needs, &err) != 0) {
            fprintf(stderr, "ticketing %s: %s\n", argv[1], err.message);
            return 2;
        }
        tk_app_install_signals();
        return subcommands[i].run(argc - 1, argv + 1);
    }
    fprintf(stderr, "ticketing: unknown subcommand '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
