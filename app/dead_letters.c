/*
 * dead_letters.c - `ticketing dead-letters list|show|retry|drop [--context C] [--id N]`
 * (DESIGN.md section 6): the records projectors parked in their context's dead_letters table.
 *
 *   list   one line per dead letter: context, id, projection, topic/partition@offset, attempts,
 *          first and last seen, error
 *   show   one dead letter (--context and --id) in full, payload included, as JSON
 *   retry  re-drive them through the projector's apply path (tk_dead_letters_retry: one
 *          transaction each, per-aggregate order kept); all of a context, or one with --id
 *   drop   delete one (--id) or all (--all) of a context, after an operator decided they are
 *          not needed
 *
 * Exit status: 0 done (retry: every record applied), 1 some database down or some record still
 * parked, 2 usage.
 */
#include "app.h"
#include "tk/dead_letters.h"
#include "tk/pg.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out, "usage: ticketing dead-letters list [--context C]\n"
                 "       ticketing dead-letters show --context C --id N\n"
                 "       ticketing dead-letters retry [--context C] [--id N]\n"
                 "       ticketing dead-letters drop --context C (--id N | --all)\n");
}

typedef struct args {
    const char *verb, *context;
    long long id;
    bool all;
} args_t;

static int parse(int argc, char **argv, args_t *a)
{
    memset(a, 0, sizeof(*a));
    if (argc < 2)
        return -1;
    a->verb = argv[1];
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--context") == 0 && i + 1 < argc) {
            a->context = argv[++i];
        } else if (strcmp(argv[i], "--id") == 0 && i + 1 < argc) {
            char *end = NULL;
            a->id = strtoll(argv[++i], &end, 10);
            if (*end != '\0' || a->id <= 0)
                return -1;
        } else if (strcmp(argv[i], "--all") == 0) {
            a->all = true;
        } else {
            return -1;
        }
    }
    if (a->context != NULL) {
        const tk_context_t *c = tk_app_context_find(a->context);
        if (c == NULL || tk_context_projector(c, 0) == NULL) {
            fprintf(stderr, "ticketing dead-letters: '%s' is not a context with projectors\n",
                    a->context);
            return -1;
        }
    }
    return 0;
}

static bool wanted(const args_t *a, const tk_context_t *c)
{
    return tk_context_projector(c, 0) != NULL &&
           (a->context == NULL || strcmp(a->context, c->name) == 0);
}

static int list(const args_t *a)
{
    int status = 0;
    printf("%-9s %6s  %-22s %-28s %8s  %-24s %-24s %s\n", "CONTEXT", "ID", "PROJECTION",
           "TOPIC/PARTITION@OFFSET", "ATTEMPTS", "FIRST SEEN", "LAST SEEN", "ERROR");
    for (const tk_context_t *const *c = tk_app_contexts(); *c != NULL; c++) {
        if (!wanted(a, *c))
            continue;
        tk_err_t err = {0};
        PGconn *db = tk_pg_connect((*c)->database, &err);
        PGresult *res =
            db ? tk_pg_exec(
                     db,
                     "SELECT id, projection, topic || '/' || partition || '@' || \"offset\", "
                     "attempts, to_char(first_seen AT TIME ZONE 'UTC', "
                     "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), to_char(last_seen AT TIME ZONE "
                     "'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), error "
                     "FROM dead_letters ORDER BY id",
                     0, NULL, &err)
               : NULL;
        if (res == NULL) {
            fprintf(stderr, "ticketing dead-letters: %s: %s\n", (*c)->name, err.message);
            status = 1;
        }
        for (int r = 0; res && r < PQntuples(res); r++)
            printf("%-9s %6s  %-22s %-28s %8s  %-24s %-24s %s\n", (*c)->name, PQgetvalue(res, r, 0),
                   PQgetvalue(res, r, 1), PQgetvalue(res, r, 2), PQgetvalue(res, r, 3),
                   PQgetvalue(res, r, 4), PQgetvalue(res, r, 5), PQgetvalue(res, r, 6));
        PQclear(res);
        PQfinish(db);
    }
    return status;
}

static int show(const args_t *a)
{
    if (a->context == NULL || a->id <= 0) {
        usage(stderr);
        return 2;
    }
    tk_err_t err = {0};
    char id[24];
    snprintf(id, sizeof(id), "%lld", a->id);
    const char *params[] = {id};
    PGconn *db = tk_pg_connect(a->context, &err);
    PGresult *res =
        db ? tk_pg_exec(db,
                        "SELECT json_build_object('context', current_database(), 'id', id, "
                        "'projection', projection, 'topic', topic, 'partition', partition, "
                        "'offset', \"offset\", 'attempts', attempts, 'firstSeen', first_seen, "
                        "'lastSeen', last_seen, 'error', error, 'key', "
                        "convert_from(key, 'SQL_ASCII'), 'payload', "
                        "convert_from(payload, 'SQL_ASCII'))::text "
                        "FROM dead_letters WHERE id = $1",
                        1, params, &err)
           : NULL;
    int status = 0;
    if (res == NULL) {
        fprintf(stderr, "ticketing dead-letters: %s: %s\n", a->context, err.message);
        status = 1;
    } else if (PQntuples(res) == 0) {
        fprintf(stderr, "ticketing dead-letters: no dead letter %s in %s\n", id, a->context);
        status = 1;
    } else {
        printf("%s\n", PQgetvalue(res, 0, 0));
    }
    PQclear(res);
    PQfinish(db);
    return status;
}

static int retry(const args_t *a)
{
    if (a->id > 0 && a->context == NULL) {
        fprintf(stderr, "ticketing dead-letters: --id needs --context (ids are per database)\n");
        return 2;
    }
    int status = 0;
    for (const tk_context_t *const *c = tk_app_contexts(); *c != NULL; c++) {
        if (!wanted(a, *c))
            continue;
        const tk_projector_spec_t *s;
        for (size_t i = 0; (s = tk_context_projector(*c, i)) != NULL; i++) {
            tk_dead_letters_outcome_t o = {0};
            tk_err_t err = {0};
            if (tk_dead_letters_retry(s, a->id, &o, &err) != 0) {
                fprintf(stderr, "ticketing dead-letters: %s.%s: %s\n", (*c)->name, s->name,
                        err.message);
                status = 1;
                continue;
            }
            if (o.applied + o.failed + o.held > 0)
                printf("%s.%s: %d applied, %d failed again, %d held behind them\n", (*c)->name,
                       s->name, o.applied, o.failed, o.held);
            if (o.failed + o.held > 0)
                status = 1;
        }
    }
    return status;
}

static int drop(const args_t *a)
{
    if (a->context == NULL || (a->id <= 0) == !a->all) {
        usage(stderr);
        return 2;
    }
    tk_err_t err = {0};
    char id[24];
    int64_t n = 0;
    snprintf(id, sizeof(id), "%lld", a->id);
    const char *params[] = {id};
    PGconn *db = tk_pg_connect(a->context, &err);
    int rc = db ? tk_pg_run(db,
                            a->all ? "DELETE FROM dead_letters"
                                   : "DELETE FROM dead_letters WHERE id = $1",
                            a->all ? 0 : 1, params, &n, &err)
                : TK_EUNAVAIL;
    PQfinish(db);
    if (rc != 0) {
        fprintf(stderr, "ticketing dead-letters: %s: %s\n", a->context, err.message);
        return 1;
    }
    printf("%lld dropped\n", (long long)n);
    return n > 0 ? 0 : 1;
}

int tk_app_dead_letters(int argc, char **argv)
{
    args_t a;
    if (parse(argc, argv, &a) != 0) {
        usage(stderr);
        return 2;
    }
    if (strcmp(a.verb, "list") == 0)
        return list(&a);
    if (strcmp(a.verb, "show") == 0)
        return show(&a);
    if (strcmp(a.verb, "retry") == 0)
        return retry(&a);
    if (strcmp(a.verb, "drop") == 0)
        return drop(&a);
    usage(stderr);
    return 2;
}
