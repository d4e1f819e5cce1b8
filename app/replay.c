/*
 * replay.c - `ticketing replay <context>.<projection>` (DESIGN.md sections 2 and 6): rebuild a
 * read model from the log with a progress bar, verify it against the live one, swap it in; and
 * `ticketing replay list`: the projections that can be replayed.
 *
 * The work is backbone's tk_replay_run; this file finds the projector in app/contexts.c's table,
 * draws the progress on stderr (a terminal: one line rewritten in place; otherwise a line every
 * 2 s, so a log file stays readable) and prints the outcome on stdout. Exit status: 0 swapped
 * (with --check: identical), 1 not swapped (the models differ, the live projector stayed behind,
 * a dependency failed, Ctrl-C), 2 usage.
 */
#include "app.h"
#include "tk/ids.h"
#include "tk/replay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LINE_EVERY_MS 2000

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ticketing replay list\n"
            "       ticketing replay <context>.<projection> [--to end|live] [--force] [--check]\n"
            "                        [--keep-old] [--wait SECONDS] [--batch N]\n\n"
            "  --to end      rebuild up to the log's current end, then catch up with the live\n"
            "                projector (the default when its consumer group has members)\n"
            "  --to live     rebuild up to the live projector's stored offsets (the default when\n"
            "                it is stopped)\n"
            "  --force       swap even when the models differ or the live projector stays behind\n"
            "  --check       build and compare only; never swap\n"
            "  --keep-old    keep the replaced tables in schema replaced_<projection>_<time>\n"
            "  --wait S      how long a live projector may make no progress while behind (30)\n"
            "  --batch N     records per transaction (1000)\n");
}

static void list(void)
{
    const tk_context_t *const *ctx = tk_app_contexts();
    const tk_projector_spec_t *s;
    for (size_t i = 0; ctx[i] != NULL; i++)
        for (size_t j = 0; (s = tk_context_projector(ctx[i], j)) != NULL; j++) {
            if (s->tables == NULL)
                continue;
            printf("%s.%s\t", ctx[i]->name, s->name);
            for (size_t t = 0; s->tables[t] != NULL; t++)
                printf("%s%s", t ? "," : "", s->tables[t]);
            printf("\n");
        }
}

/* "<context>.<projection>", or a projection name that only one context has. */
static const tk_projector_spec_t *find_spec(const char *arg)
{
    const tk_projector_spec_t *found = NULL;
    int matches = 0;
    const tk_context_t *const *ctx = tk_app_contexts();
    const tk_projector_spec_t *s;
    for (size_t i = 0; ctx[i] != NULL; i++)
        for (size_t j = 0; (s = tk_context_projector(ctx[i], j)) != NULL; j++) {
            char full[192];
            tk_projector_group_name(ctx[i]->name, s->name, full, sizeof(full));
            if (strcmp(full, arg) == 0)
                return s;
            if (strcmp(s->name, arg) == 0) {
                found = s;
                matches++;
            }
        }
    return matches == 1 ? found : NULL;
}

typedef struct bar {
    const char *name;
    bool tty;
    int64_t last_line_ms;
    bool drawn;
} bar_t;

static void clock_text(int64_t ms, char *out, size_t size)
{
    int64_t s = (ms + 999) / 1000;
    if (s >= 3600)
        snprintf(out, size, "%lld:%02lld:%02lld", (long long)(s / 3600), (long long)(s / 60 % 60),
                 (long long)(s % 60));
    else
        snprintf(out, size, "%lld:%02lld", (long long)(s / 60), (long long)(s % 60));
}

static void on_progress(const tk_replay_progress_t *p, void *ud)
{
    bar_t *b = ud;
    char eta[32] = "-";
    if (p->eta_ms >= 0)
        clock_text(p->eta_ms, eta, sizeof(eta));
    double pct = p->total > 0 ? 100.0 * (double)p->done / (double)p->total : 100.0;
    if (pct > 100.0)
        pct = 100.0;
    if (b->tty) {
        char fill[31];
        int n = (int)(pct * 30.0 / 100.0);
        for (int i = 0; i < 30; i++)
            fill[i] = i < n ? '#' : '.';
        fill[30] = '\0';
        fprintf(stderr, "\r\033[K%-9s [%s] %5.1f%%  %lld/%lld  %.0f ev/s  ETA %s", p->phase, fill,
                pct, (long long)p->done, (long long)p->total, p->rate, eta);
        b->drawn = true;
        return;
    }
    int64_t now = tk_mono_ms();
    if (b->last_line_ms != 0 && now - b->last_line_ms < LINE_EVERY_MS &&
        strcmp(p->phase, "verify") != 0 && strcmp(p->phase, "swap") != 0)
        return;
    b->last_line_ms = now;
    if (p->total == 0 && p->done == 0)
        fprintf(stderr, "replay %s: %s\n", b->name, p->phase);
    else
        fprintf(stderr, "replay %s: %s %lld/%lld (%.1f%%), %.0f events/s, ETA %s\n", b->name,
                p->phase, (long long)p->done, (long long)p->total, pct, p->rate, eta);
}

static void report(const char *name, const tk_replay_result_t *r, bool check)
{
    printf("%s: read %lld records (%lld applied, %lld skipped, %lld dead letters) up to %s in "
           "%.1f s\n",
           name, (long long)r->records, (long long)r->applied, (long long)r->skipped,
           (long long)r->dead_letters, r->to_live ? "the live offsets" : "the log's end",
           (double)r->elapsed_ms / 1000.0);
    if (r->first_dead_letter[0])
        printf("  first dead letter: %s\n", r->first_dead_letter);
    if (r->emitted > 0)
        printf("  apply emitted %lld events: discarded with the replay schema\n",
               (long long)r->emitted);
    for (int i = 0; i < r->ntables; i++) {
        const tk_replay_table_t *t = &r->tables[i];
        if (t->only_live == 0 && t->only_replay == 0)
            printf("  %-24s live %lld rows, rebuilt %lld rows: identical\n", t->name,
                   (long long)t->live_rows, (long long)t->replay_rows);
        else
            printf("  %-24s live %lld rows, rebuilt %lld rows: DIFFERENT (%lld only live, %lld "
                   "only rebuilt)\n",
                   t->name, (long long)t->live_rows, (long long)t->replay_rows,
                   (long long)t->only_live, (long long)t->only_replay);
    }
    if (r->excluded[0])
        printf("  not compared (set by the clock, not by events): %s\n", r->excluded);
    if (r->behind)
        printf("  the live projector was behind the rebuild: its offsets were moved forward\n");
    if (r->swapped)
        printf("swapped: the live projector continues on the rebuilt tables%s%s\n",
               r->replaced_schema[0] ? "; old tables kept in schema " : "", r->replaced_schema);
    else if (check && r->identical)
        printf("identical (--check: not swapped)\n");
}

int tk_app_replay(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "list") == 0 && argc == 2) {
        list();
        return 0;
    }
    if (argc < 2 || argv[1][0] == '-') {
        usage(argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr);
        return argc >= 2 && strcmp(argv[1], "--help") == 0 ? 0 : 2;
    }
    const tk_projector_spec_t *spec = find_spec(argv[1]);
    if (spec == NULL) {
        fprintf(stderr, "ticketing replay: unknown projection '%s' (see `ticketing replay list`)\n",
                argv[1]);
        return 2;
    }
    char name[192];
    tk_projector_group_name(spec->context, spec->name, name, sizeof(name));
    if (spec->tables == NULL) {
        fprintf(stderr,
                "ticketing replay: %s is not replayable: it reacts or writes a write model, and "
                "replaying it would repeat its effects\n",
                name);
        return 2;
    }
    bar_t bar = {.name = name, .tty = isatty(STDERR_FILENO) == 1};
    tk_replay_opts_t opts = {.progress = on_progress, .progress_ud = &bar, .stop = &tk_app_stop};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--force") == 0)
            opts.force = true;
        else if (strcmp(a, "--check") == 0)
            opts.check = true;
        else if (strcmp(a, "--keep-old") == 0)
            opts.keep_old = true;
        else if (strcmp(a, "--to") == 0 && v && (!strcmp(v, "end") || !strcmp(v, "live"))) {
            opts.to = strcmp(v, "end") == 0 ? TK_REPLAY_TO_END : TK_REPLAY_TO_LIVE;
            i++;
        } else if (strcmp(a, "--wait") == 0 && v && atoi(v) > 0) {
            opts.wait_ms = atoi(v) * 1000;
            i++;
        } else if (strcmp(a, "--batch") == 0 && v && atoi(v) > 0) {
            opts.batch = atoi(v);
            i++;
        } else {
            fprintf(stderr, "ticketing replay: bad argument '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
    }

    tk_err_t err = {0};
    tk_replay_result_t result;
    int rc = tk_replay_run(spec, &opts, &result, &err);
    if (bar.drawn)
        fprintf(stderr, "\n");
    report(name, &result, opts.check);
    if (rc != 0) {
        fprintf(stderr, "ticketing replay: %s: %s\n", name, err.message);
        return 1;
    }
    return 0;
}
