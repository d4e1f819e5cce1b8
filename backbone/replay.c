/*
 * replay.c - rebuild a read model from the log beside the live one, verify it, swap it in
 * (DESIGN.md section 6, `ticketing replay`).
 *
 *   prepare    advisory lock "one replay per projection"; schema replay_<name> with
 *              LIKE ... INCLUDING ALL copies of the projector's tables (indexes renamed to the
 *              live names) and of outbox, processed_events, projection_offsets, dead_letters
 *              (these UNLOGGED, with only their unique indexes: disposable, never swapped);
 *              a row in the live projection_offsets for every partition (next_offset 0 where
 *              none existed: the same position as "no row", but a row the swap can lock)
 *   build      a plain consumer (assign, never subscribe: no group membership, no commits)
 *              reads each partition from its start to the target: the high watermark at start
 *              (TK_REPLAY_TO_END) or the live offsets at start (TK_REPLAY_TO_LIVE); records are
 *              applied through spec->apply on the replay session (search_path replay_<name>,
 *              public) in transactions of `batch` records, with the live loop's rules (below)
 *   settle     read the live offsets; apply the records up to them; while the live projector is
 *              behind the rebuild (some partition), wait for it (bounded)
 *   lock       BEGIN; SELECT ... FROM projection_offsets WHERE projection = $1 FOR UPDATE
 *              the live loop locks the same rows first thing in each batch, so from here on it
 *              applies nothing; apply the records up to exactly its offsets
 *   verify     per table: (live EXCEPT ALL rebuilt) and (rebuilt EXCEPT ALL live) must be empty
 *   swap       ALTER TABLE public.t SET SCHEMA replaced_<name>_<time>;
 *              ALTER TABLE replay_<name>.t SET SCHEMA public; COMMIT
 *              the live loop wakes up, finds its offsets untouched (they equal the rebuild's)
 *              and writes its next batch into the new tables
 *   cleanup    DROP SCHEMA replay_<name> (always) and replaced_<name>_<time> (unless keep_old)
 *
 * Why the rebuild equals what the live loop would have built: the same apply function sees the
 * same records in the same per-partition order with the same rules (undecodable records and
 * failing applies are skipped as the live loop dead-letters them, an event id seen before is
 * skipped). One difference: a version gap (TK_APPLY_RETRY) is not waited for, since a replay reads
 * a finished log in which the missing event cannot arrive later in the same partition; it counts
 * as a dead letter, as the live loop's gap timeout eventually does.
 *
 * The per-record rules are the live loop's own (tk_apply__batch, apply.c: a fast path with one
 * dedupe statement a batch and no savepoints, the careful path only for a batch with a failing
 * record). The replay session also commits with synchronous_commit off: until the swap its work
 * is disposable.
 *
 * A spec with a fold (tk_projector_fold_t) is rebuilt in memory instead, with the same rules
 * (tk_apply__fold_batch): no statement per record, a write (COPY) every FOLD_WRITE_EVERY records
 * of what the fold holds final, and its last write inside the lock, after the last record and
 * before the comparison. The profile it answers: through apply, each event cost a dedupe row, two
 * upserts' JSON parsing and B-tree inserts in PostgreSQL; folded, most of the time left is
 * decoding envelopes (JSON) in this process, which runs on several threads, and PostgreSQL's COPY
 * of the history rows.
 *
 * Why readers see no downtime: the swap is one transaction. A query sees the old table until the
 * COMMIT and the new one after it; ALTER TABLE waits for running queries (lock_timeout bounds the
 * wait) and queues new ones behind it for the few milliseconds of the renames.
 *
 * Why the live model is never harmed: nothing touches public tables before the swap transaction,
 * and that transaction commits only when the comparison passed (or force). The rebuild's own
 * writes, including anything apply emits (tk_tx_emit), stay in the replay schema and are dropped.
 *
 * Limits: a read-model table with a sequence-backed column (serial) cannot be swapped (the copy
 * would share the live sequence) and is refused; grants on the live tables are not copied; a
 * record at the target's last offset must be a data record (no transactional producers here).
 */
#include "tk/replay.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tk/backoff.h"
#include "tk/ids.h"
#include "tk/kafka.h"
#include "tk/mem.h"
#include "tk/pg.h"
#include "apply_int.h"

#define DEFAULT_BATCH 4000 /* records a transaction: fewer commits and round trips */
#define DEFAULT_WAIT_MS 30000
#define IDLE_LIMIT_MS 60000 /* no record although some are due: the broker is gone */
#define PROGRESS_EVERY_MS 200
#define FOLD_WRITE_EVERY 32768 /* records between two writes of a fold (each one COPY) */
#define NAME_MAX_LEN 38        /* "replaced_" + name + "_YYYYmmddHHMMSS" fits an identifier (63) */

/* The backbone tables apply might touch: copied so that its writes stay in the sandbox. */
static const char *const backbone_tables[] = {"outbox", "processed_events", "projection_offsets",
                                              "dead_letters", NULL};

typedef struct rpart {
    char *topic; /* owned */
    int32_t partition;
    int64_t low, high; /* watermarks at start */
    int64_t live;      /* the live projector's next offset, as last read */
    int64_t next;      /* next offset the rebuild applies */
    int64_t target;    /* the rebuild reads up to here (exclusive) */
    int64_t seen;      /* next offset collected in the current pass */
    bool paused;
} rpart_t;

typedef struct replay {
    const tk_projector_spec_t *spec;
    tk_replay_opts_t opts;
    tk_replay_result_t *out;
    PGconn *ctl; /* locks, compares, swaps; default search_path */
    PGconn *rep; /* applies; search_path replay_<name>, public */
    rd_kafka_t *rk;
    rpart_t *parts; /* tk_mem_grow */
    size_t nparts, capparts;
    char schema[64];
    char replaced[64];
    const char *phase;
    int64_t started_ms, first_ms, last_progress_ms;
    int64_t done, total;
    tk_apply_fold_t *fold; /* spec->fold's state, or NULL: records go through apply */
    char **restore;        /* fold: SQL that puts back the indexes set aside, tk_mem_grow */
    size_t nrestore, caprestore;
    int64_t unwritten; /* records folded since the fold's last write */
} replay_t;

/* ---- small helpers --------------------------------------------------------------------------- */

/* A formatted string. Owned, free(). */
static char *sqlf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *sqlf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = tk_mem_alloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* Lower-case letters, digits and '_', not starting with a digit: safe to splice into SQL. */
static bool plain_identifier(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

static int run(PGconn *c, const char *sql, tk_err_t *err)
{
    return tk_pg_run(c, sql, 0, NULL, NULL, err);
}

/* Run an owned SQL text and free it. */
static int run_owned(PGconn *c, char *sql, tk_err_t *err)
{
    int rc = run(c, sql, err);
    free(sql);
    return rc;
}

static bool stopped(const replay_t *r)
{
    return r->opts.stop != NULL && *r->opts.stop;
}

static void progress(replay_t *r, const char *phase, bool force)
{
    int64_t now = tk_mono_ms();
    bool changed = r->phase == NULL || strcmp(r->phase, phase) != 0;
    r->phase = phase;
    if (r->opts.progress == NULL ||
        (!force && !changed && now - r->last_progress_ms < PROGRESS_EVERY_MS))
        return;
    r->last_progress_ms = now;
    tk_replay_progress_t p = {.phase = phase, .done = r->done, .total = r->total, .eta_ms = -1};
    if (r->first_ms > 0 && now > r->first_ms && r->done > 0) {
        p.rate = (double)r->done * 1000.0 / (double)(now - r->first_ms);
        if (p.rate > 0 && r->total >= r->done)
            p.eta_ms = (int64_t)((double)(r->total - r->done) * 1000.0 / p.rate);
    }
    r->opts.progress(&p, r->opts.progress_ud);
}

static rpart_t *part_find(replay_t *r, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < r->nparts; i++)
        if (r->parts[i].partition == partition && strcmp(r->parts[i].topic, topic) == 0)
            return &r->parts[i];
    return NULL;
}

/* ---- Kafka: partitions, watermarks, group membership ------------------------------------------
 */

static int topic_partitions(replay_t *r, const char *topic, int *count, tk_err_t *err)
{
    rd_kafka_topic_t *t = rd_kafka_topic_new(r->rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(r->rk, 0, t, &md, 10000);
    int rc = 0;
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        rc = tk_err_set(err, TK_EUNAVAIL, "broker", "metadata of %s: %s", topic,
                        rd_kafka_err2str(e));
    else if (md->topic_cnt != 1 || md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR ||
             md->topics[0].partition_cnt <= 0)
        rc = tk_err_set(err, TK_EUNAVAIL, "topics", "topic %s: %s", topic,
                        md->topic_cnt == 1 ? rd_kafka_err2str(md->topics[0].err) : "unknown");
    else
        *count = md->topics[0].partition_cnt;
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    return rc;
}

static int load_partitions(replay_t *r, tk_err_t *err)
{
    int rc = 0;
    for (size_t i = 0; r->spec->topics[i] != NULL; i++) {
        const char *topic = r->spec->topics[i];
        int n = 0;
        if ((rc = topic_partitions(r, topic, &n, err)) != 0)
            return rc;
        r->parts = tk_mem_grow(r->parts, &r->capparts, r->nparts + (size_t)n, sizeof(*r->parts));
        for (int p = 0; p < n; p++) {
            rpart_t *x = &r->parts[r->nparts++];
            memset(x, 0, sizeof(*x));
            x->topic = tk_mem_strdup(topic);
            x->partition = p;
            rd_kafka_resp_err_t e =
                rd_kafka_query_watermark_offsets(r->rk, topic, p, &x->low, &x->high, 10000);
            if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
                return tk_err_set(err, TK_EUNAVAIL, "broker", "watermarks of %s/%d: %s", topic, p,
                                  rd_kafka_err2str(e));
            x->next = x->seen = x->low;
        }
    }
    return 0;
}

/* Members of the live projector's consumer group: > 0 means it runs; -1 when unknown. */
static int live_members(replay_t *r)
{
    char group[192];
    tk_projector_group_name(r->spec->context, r->spec->name, group, sizeof(group));
    const struct rd_kafka_group_list *gl = NULL;
    if (rd_kafka_list_groups(r->rk, group, &gl, 5000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    int members = gl->group_cnt == 1 ? gl->groups[0].member_cnt : 0;
    rd_kafka_group_list_destroy(gl);
    return members;
}

/* ---- PostgreSQL: the live offsets ------------------------------------------------------------ */

/* Give every partition a row (next_offset 0 = from the start, as no row means), committed, so that
 * the FOR UPDATE of the swap blocks the live loop whichever partitions its next batch holds. */
static int ensure_offset_rows(replay_t *r, tk_err_t *err)
{
    for (size_t i = 0; i < r->nparts; i++) {
        char partition[16];
        snprintf(partition, sizeof(partition), "%d", (int)r->parts[i].partition);
        const char *params[] = {r->spec->name, r->parts[i].topic, partition};
        int rc = tk_pg_run(r->ctl,
                           "INSERT INTO public.projection_offsets (projection, topic, partition, "
                           "next_offset) VALUES ($1, $2, $3::integer, 0) ON CONFLICT DO NOTHING",
                           3, params, NULL, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* Read the live next offsets into parts[].live (locking the rows with lock, in the live loop's
 * order: topic, partition). */
static int read_live(replay_t *r, bool lock, tk_err_t *err)
{
    const char *params[] = {r->spec->name};
    PGresult *res = tk_pg_exec(r->ctl,
                               lock ? "SELECT topic, partition, next_offset FROM "
                                      "public.projection_offsets WHERE projection = $1 "
                                      "ORDER BY topic, partition FOR UPDATE"
                                    : "SELECT topic, partition, next_offset FROM "
                                      "public.projection_offsets WHERE projection = $1",
                               1, params, err);
    if (res == NULL)
        return err ? err->code : TK_EUNAVAIL;
    for (size_t i = 0; i < r->nparts; i++)
        r->parts[i].live = 0;
    for (int row = 0; row < PQntuples(res); row++) {
        rpart_t *p = part_find(r, PQgetvalue(res, row, 0),
                               (int32_t)strtol(PQgetvalue(res, row, 1), NULL, 10));
        if (p != NULL)
            p->live = strtoll(PQgetvalue(res, row, 2), NULL, 10);
    }
    PQclear(res);
    return 0;
}

/* Raise every target to the live offset (never lower it: applied records cannot be undone). */
static void targets_to_live(replay_t *r)
{
    for (size_t i = 0; i < r->nparts; i++) {
        rpart_t *p = &r->parts[i];
        if (p->live > p->target) {
            r->total += p->live - p->target;
            p->target = p->live;
        }
    }
}

/* ---- the replay schema ----------------------------------------------------------------------- */

/* The indexes of the replay schema's copy of @p table: @p sql is a catalog query whose $1 is the
 * copy's name as text ("<schema>.<table>", read with ::regclass). Owned result, or NULL with err.
 */
static PGresult *indexes_of_copy(replay_t *r, const char *table, const char *sql, tk_err_t *err)
{
    char copy[96];
    snprintf(copy, sizeof(copy), "%s.%s", r->schema, table);
    const char *params[] = {copy};
    return tk_pg_exec(r->ctl, sql, 1, params, err);
}

/* Drop the non-unique indexes of a backbone copy: they serve lookups of the live tables (prune's
 * processed_events_position), never the rebuild, and each cost an index insert per record.
 * Unique ones stay: they are the rules (the event-id dedupe is processed_events' primary key). */
static int drop_lookup_indexes(replay_t *r, const char *table, tk_err_t *err)
{
    PGresult *res = indexes_of_copy(r, table,
                                    "SELECT c.relname FROM pg_index i JOIN pg_class c ON "
                                    "c.oid = i.indexrelid WHERE i.indrelid = $1::regclass AND "
                                    "NOT i.indisunique",
                                    err);
    if (res == NULL)
        return err->code;
    int rc = 0;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++)
        if (plain_identifier(PQgetvalue(res, i, 0), 63))
            rc = run_owned(r->ctl, sqlf("DROP INDEX %s.%s", r->schema, PQgetvalue(res, i, 0)), err);
    PQclear(res);
    return rc;
}

/* A copy of public.<table> in the replay schema. Sequence-backed columns get a sequence of their
 * own (backbone copies) or are refused (read-model tables, which are swapped into public). */
static int copy_table(replay_t *r, const char *table, bool read_model, tk_err_t *err)
{
    char qualified[96];
    snprintf(qualified, sizeof(qualified), "public.%s", table);
    const char *p1[] = {qualified};
    PGresult *res = tk_pg_exec(r->ctl, "SELECT to_regclass($1) IS NOT NULL", 1, p1, err);
    if (res == NULL)
        return err->code;
    bool exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (!exists)
        return tk_err_set(err, TK_EINVAL, "tables", "table %s does not exist", qualified);

    /* A backbone copy is thrown away with the schema: no WAL for it (UNLOGGED). */
    int rc = run_owned(r->ctl,
                       sqlf("CREATE %sTABLE %s.%s (LIKE public.%s INCLUDING ALL)",
                            read_model ? "" : "UNLOGGED ", r->schema, table, table),
                       err);
    if (rc == 0 && !read_model)
        rc = drop_lookup_indexes(r, table, err);
    if (rc != 0)
        return rc;
    const char *p2[] = {r->schema, table};
    res = tk_pg_exec(r->ctl,
                     "SELECT column_name FROM information_schema.columns WHERE table_schema = $1 "
                     "AND table_name = $2 AND column_default LIKE 'nextval(%'",
                     2, p2, err);
    if (res == NULL)
        return err->code;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++) {
        const char *col = PQgetvalue(res, i, 0);
        if (read_model || !plain_identifier(col, 63)) {
            rc =
                tk_err_set(err, TK_EINVAL, "tables",
                           "%s.%s is sequence-backed: replay cannot swap such a table", table, col);
            break;
        }
        if ((rc = run_owned(r->ctl,
                            sqlf("CREATE SEQUENCE %s.%s_%s_seq OWNED BY %s.%s.%s", r->schema, table,
                                 col, r->schema, table, col),
                            err)) == 0)
            rc = run_owned(r->ctl,
                           sqlf("ALTER TABLE %s.%s ALTER COLUMN %s SET DEFAULT "
                                "nextval('%s.%s_%s_seq')",
                                r->schema, table, col, r->schema, table, col),
                           err);
    }
    PQclear(res);
    return rc;
}

/*
 * LIKE ... INCLUDING ALL names the copied indexes by its own rule (ticket_view_created_at_id_idx
 * for ticket_view_free_idx): give each copy the name of the live index with the same definition,
 * so that after the swap public has the names the migrations created (and may later drop).
 */
static int rename_indexes(replay_t *r, const char *table, tk_err_t *err)
{
    char copy[96], live[96];
    snprintf(copy, sizeof(copy), "%s.%s", r->schema, table);
    snprintf(live, sizeof(live), "public.%s", table);
    const char *params[] = {copy, live};
    PGresult *res = tk_pg_exec(
        r->ctl,
        "SELECT n.relname, o.relname FROM pg_index ni JOIN pg_class n ON n.oid = ni.indexrelid, "
        "pg_index oi JOIN pg_class o ON o.oid = oi.indexrelid "
        "WHERE ni.indrelid = $1::regclass AND oi.indrelid = $2::regclass AND "
        "regexp_replace(pg_get_indexdef(ni.indexrelid), '^(CREATE (UNIQUE )?INDEX )\\S+ ON "
        "\\S+', '\\1') = regexp_replace(pg_get_indexdef(oi.indexrelid), "
        "'^(CREATE (UNIQUE )?INDEX )\\S+ ON \\S+', '\\1') ORDER BY 1, 2",
        2, params, err);
    if (res == NULL)
        return err->code;
    int n = PQntuples(res), rc = 0, pairs = 0;
    const char **from = tk_mem_zalloc(((size_t)n + 1) * sizeof(char *));
    const char **to = tk_mem_zalloc(((size_t)n + 1) * sizeof(char *));
    for (int i = 0; i < n; i++) {
        const char *a = PQgetvalue(res, i, 0), *b = PQgetvalue(res, i, 1);
        bool used = false; /* two identical live indexes: pair each copy with one of them */
        for (int j = 0; j < pairs && !used; j++)
            used = strcmp(from[j], a) == 0 || strcmp(to[j], b) == 0;
        if (!used && plain_identifier(a, 63) && plain_identifier(b, 63)) {
            from[pairs] = a;
            to[pairs++] = b;
        }
    }
    /* Two steps, so that a copy may take a name another copy still holds. */
    for (int j = 0; rc == 0 && j < pairs; j++)
        rc = run_owned(
            r->ctl, sqlf("ALTER INDEX %s.%s RENAME TO replay_tmp_%d", r->schema, from[j], j), err);
    for (int j = 0; rc == 0 && j < pairs; j++)
        rc = run_owned(r->ctl,
                       sqlf("ALTER INDEX %s.replay_tmp_%d RENAME TO %s", r->schema, j, to[j]), err);
    free(from);
    free(to);
    PQclear(res);
    return rc;
}

/*
 * The fold path loads each read-model copy in bulk: its indexes (and the constraints they back)
 * go before the load and come back after the last write, each B-tree built once from sorted keys
 * instead of one insert per row (COPY of 100k history rows: 2.9 s with the primary key, 1.3 s +
 * 0.3 s without it and built after). Kept: the names (the live ones, see rename_indexes) and
 * definitions, so the swap brings the same indexes as before; a duplicate key fails the replay.
 */
static int set_aside_indexes(replay_t *r, const char *table, tk_err_t *err)
{
    PGresult *res =
        indexes_of_copy(r, table,
                        "SELECT c.relname, coalesce(con.conname, ''), "
                        "coalesce(pg_get_constraintdef(con.oid), ''), "
                        "pg_get_indexdef(i.indexrelid) FROM pg_index i "
                        "JOIN pg_class c ON c.oid = i.indexrelid "
                        "LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND "
                        "con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x') "
                        "WHERE i.indrelid = $1::regclass ORDER BY 1",
                        err);
    if (res == NULL)
        return err->code;
    int rc = 0;
    for (int i = 0; rc == 0 && i < PQntuples(res); i++) {
        const char *index = PQgetvalue(res, i, 0), *con = PQgetvalue(res, i, 1);
        if (!plain_identifier(index, 63) || (con[0] != '\0' && !plain_identifier(con, 63)))
            continue; /* a name we do not splice: the index stays during the load */
        char *drop, *back;
        if (con[0] != '\0') {
            drop = sqlf("ALTER TABLE %s.%s DROP CONSTRAINT %s", r->schema, table, con);
            back = sqlf("ALTER TABLE %s.%s ADD CONSTRAINT %s %s", r->schema, table, con,
                        PQgetvalue(res, i, 2));
        } else {
            drop = sqlf("DROP INDEX %s.%s", r->schema, index);
            back = tk_mem_strdup(PQgetvalue(res, i, 3));
        }
        if ((rc = run_owned(r->ctl, drop, err)) == 0) {
            r->restore =
                tk_mem_grow(r->restore, &r->caprestore, r->nrestore + 1, sizeof(*r->restore));
            r->restore[r->nrestore++] = back;
        } else {
            free(back);
        }
    }
    PQclear(res);
    return rc;
}

/* Put back what set_aside_indexes took (inside the swap's transaction, on ctl). */
static int restore_indexes(replay_t *r, tk_err_t *err)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < r->nrestore; i++)
        rc = run(r->ctl, r->restore[i], err);
    return rc;
}

static int prepare_schema(replay_t *r, tk_err_t *err)
{
    int rc = tk_pg_begin(r->ctl, err);
    if (rc != 0)
        return rc;
    if ((rc = run_owned(r->ctl, sqlf("DROP SCHEMA IF EXISTS %s CASCADE", r->schema), err)) != 0 ||
        (rc = run_owned(r->ctl, sqlf("CREATE SCHEMA %s", r->schema), err)) != 0)
        goto out;
    for (size_t i = 0; r->spec->tables[i] != NULL; i++)
        if ((rc = copy_table(r, r->spec->tables[i], true, err)) != 0 ||
            (rc = rename_indexes(r, r->spec->tables[i], err)) != 0 ||
            (r->fold != NULL && (rc = set_aside_indexes(r, r->spec->tables[i], err)) != 0))
            goto out;
    for (size_t i = 0; backbone_tables[i] != NULL; i++)
        if ((rc = copy_table(r, backbone_tables[i], false, err)) != 0)
            goto out;
    rc = tk_pg_commit(r->ctl, err);
out:
    if (rc != 0)
        tk_pg_rollback(r->ctl, NULL);
    return rc;
}

static void drop_schema(PGconn *c, const char *schema)
{
    if (tk_pg_broken(c) || schema[0] == '\0')
        return;
    tk_pg_rollback(c, NULL);
    run_owned(c, sqlf("DROP SCHEMA IF EXISTS %s CASCADE", schema), NULL);
}

/* ---- applying records ------------------------------------------------------------------------ */

static void dead_letter(replay_t *r, const rd_kafka_message_t *m, const char *why)
{
    r->out->dead_letters++;
    if (r->out->first_dead_letter[0] == '\0') {
        /* Truncation is fine: the first dead letter is a hint, the table has the whole story. */
        int n = snprintf(r->out->first_dead_letter, sizeof(r->out->first_dead_letter),
                         "%s/%d@%lld: ", rd_kafka_topic_name(m->rkt), (int)m->partition,
                         (long long)m->offset);
        size_t used = n < 0 ? 0 : (size_t)n;
        char *dst = r->out->first_dead_letter;
        if (used < sizeof(r->out->first_dead_letter)) {
            size_t len = strlen(why), cap = sizeof(r->out->first_dead_letter) - used - 1;
            len = len < cap ? len : cap;
            memcpy(dst + used, why, len);
            dst[used + len] = '\0';
        }
    }
}

static bool on_gap(void *ud, const rd_kafka_message_t *m, const ev_envelope_t *env, char *why,
                   size_t cap, int64_t *first_seen_ms)
{
    (void)ud, (void)m, (void)env, (void)why, (void)cap, (void)first_seen_ms;
    return false; /* a finished log: the missing event cannot arrive later in this partition */
}

static int on_dead(void *ud, const rd_kafka_message_t *m, const char *why, int64_t first_seen_ms,
                   tk_err_t *err)
{
    (void)first_seen_ms, (void)err;
    dead_letter(ud, m, why);
    return 0;
}

/* One write of the fold in its own transaction; final: everything it holds. */
static int fold_write(replay_t *r, bool final, tk_err_t *err)
{
    int rc = tk_pg_begin(r->rep, err);
    if (rc == 0)
        rc = tk_apply__fold_write(r->fold, r->rep, final, err);
    if (rc == 0)
        rc = tk_pg_commit(r->rep, err);
    if (rc != 0)
        tk_pg_rollback(r->rep, NULL);
    r->unwritten = 0;
    return rc;
}

/* Records through the live loop's rules (apply.c): in memory through the fold, with a write every
 * FOLD_WRITE_EVERY records, else one transaction through apply. */
static int apply_batch(replay_t *r, rd_kafka_message_t **msgs, int n, tk_err_t *err)
{
    tk_rec_t *recs = tk_mem_zalloc((size_t)n * sizeof(*recs));
    for (int i = 0; i < n; i++)
        recs[i].m = msgs[i];
    const tk_apply_hooks_t hooks = {.gap = on_gap, .dead = on_dead, .ud = r};
    int64_t dead_before = r->out->dead_letters;
    char first_before[sizeof(r->out->first_dead_letter)];
    memcpy(first_before, r->out->first_dead_letter, sizeof(first_before));
    int rc = 0;
    if (r->fold != NULL) {
        rc = tk_apply__fold_batch(r->fold, recs, n, &hooks, err);
        if (rc == 0 && (r->unwritten += n) >= FOLD_WRITE_EVERY)
            rc = fold_write(r, false, err);
    } else {
        rc = tk_pg_begin(r->rep, err);
        if (rc == 0)
            rc = tk_apply__batch(r->rep, r->spec, recs, n, &hooks, err);
        if (rc == 0)
            rc = tk_pg_commit(r->rep, err);
    }
    if (rc != 0) {
        tk_pg_rollback(r->rep, NULL);
        r->out->dead_letters = dead_before; /* nothing of this batch happened */
        memcpy(r->out->first_dead_letter, first_before, sizeof(first_before));
        free(recs);
        return rc;
    }
    for (int i = 0; i < n; i++) {
        if (recs[i].outcome == TK_REC_APPLIED)
            r->out->applied++;
        else if (recs[i].outcome == TK_REC_SKIPPED)
            r->out->skipped++;
        r->out->emitted += recs[i].emitted;
        rpart_t *p = part_find(r, rd_kafka_topic_name(msgs[i]->rkt), msgs[i]->partition);
        if (p != NULL && msgs[i]->offset + 1 > p->next)
            p->next = msgs[i]->offset + 1;
    }
    free(recs);
    r->done += n;
    r->out->records += n;
    return 0;
}

static void pause_part(replay_t *r, rpart_t *p)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, p->topic, p->partition);
    rd_kafka_pause_partitions(r->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    p->paused = true;
}

/*
 * Read every partition from parts[].next up to parts[].target and apply the records. A record at
 * or beyond a target (fetched ahead) is dropped and its partition paused; the next pass assigns
 * again from next.
 */
static int consume(replay_t *r, const char *phase, tk_err_t *err)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new((int)r->nparts);
    size_t remaining = 0;
    int rc = 0, n = 0;
    for (size_t i = 0; i < r->nparts; i++) {
        rpart_t *p = &r->parts[i];
        p->seen = p->next;
        p->paused = false;
        if (p->next < p->target) {
            rd_kafka_topic_partition_list_add(l, p->topic, p->partition)->offset = p->next;
            remaining++;
        }
    }
    if (remaining == 0) {
        rd_kafka_topic_partition_list_destroy(l);
        return 0;
    }
    rd_kafka_resp_err_t e = rd_kafka_assign(r->rk, l);
    /* A partition paused at its target in an earlier pass stays paused across assignments. */
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
        e = rd_kafka_resume_partitions(r->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return tk_err_set(err, TK_EUNAVAIL, "broker", "assign: %s", rd_kafka_err2str(e));

    rd_kafka_message_t **msgs = tk_mem_zalloc((size_t)r->opts.batch * sizeof(*msgs));
    int64_t idle_since = tk_mono_ms();
    char last_error[200] = "";
    while (remaining > 0) {
        if (stopped(r)) {
            rc = tk_err_set(err, TK_EINTERNAL, "stop", "interrupted");
            break;
        }
        progress(r, phase, false);
        rd_kafka_message_t *m = rd_kafka_consumer_poll(r->rk, 100);
        if (m == NULL) {
            if (n > 0) {
                if ((rc = apply_batch(r, msgs, n, err)) != 0)
                    break;
                for (int i = 0; i < n; i++)
                    rd_kafka_message_destroy(msgs[i]);
                n = 0;
            } else if (tk_mono_ms() - idle_since > IDLE_LIMIT_MS) {
                rc = tk_err_set(err, TK_EUNAVAIL, "broker",
                                "no record for %d s although %zu partition(s) are not done%s%s",
                                IDLE_LIMIT_MS / 1000, remaining, last_error[0] ? ": " : "",
                                last_error);
                break;
            }
            continue;
        }
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                snprintf(last_error, sizeof(last_error), "%s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        idle_since = tk_mono_ms();
        rpart_t *p = part_find(r, rd_kafka_topic_name(m->rkt), m->partition);
        if (p == NULL || m->offset < p->seen) {
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->offset >= p->target) {
            if (!p->paused)
                pause_part(r, p);
            rd_kafka_message_destroy(m);
            continue;
        }
        if (r->first_ms == 0)
            r->first_ms = tk_mono_ms();
        p->seen = m->offset + 1;
        if (p->seen >= p->target) {
            remaining--;
            pause_part(r, p);
        }
        msgs[n++] = m;
        if (n == r->opts.batch) {
            if ((rc = apply_batch(r, msgs, n, err)) != 0)
                break;
            for (int i = 0; i < n; i++)
                rd_kafka_message_destroy(msgs[i]);
            n = 0;
        }
    }
    if (rc == 0 && n > 0)
        rc = apply_batch(r, msgs, n, err);
    for (int i = 0; i < n; i++)
        rd_kafka_message_destroy(msgs[i]);
    free(msgs);
    rd_kafka_assign(r->rk, NULL);
    progress(r, phase, true);
    return rc;
}

/* ---- verify and swap ------------------------------------------------------------------------- */

/* Append the columns of public.<table> that come from events to *cols (a select list, each
 * column behind @p prefix: "" or "l."); a column whose default is the clock is left out and
 * named in out->excluded. */
static int table_columns(replay_t *r, const char *table, const char *prefix, char **cols,
                         tk_err_t *err)
{
    const char *params[] = {table};
    PGresult *res = tk_pg_exec(r->ctl,
                               "SELECT column_name, data_type, coalesce(column_default, '') ~* "
                               "'(now\\(\\)|current_timestamp|clock_timestamp|"
                               "statement_timestamp|transaction_timestamp|localtimestamp)' "
                               "FROM information_schema.columns WHERE table_schema = 'public' "
                               "AND table_name = $1 ORDER BY ordinal_position",
                               1, params, err);
    if (res == NULL)
        return err->code;
    size_t cap = 64, len = 0;
    char *s = tk_mem_alloc(cap);
    s[0] = '\0';
    for (int i = 0; i < PQntuples(res); i++) {
        const char *col = PQgetvalue(res, i, 0), *type = PQgetvalue(res, i, 1);
        if (strcmp(PQgetvalue(res, i, 2), "t") == 0) {
            size_t used = strlen(r->out->excluded);
            snprintf(r->out->excluded + used, sizeof(r->out->excluded) - used, "%s%s.%s",
                     used ? ", " : "", table, col);
            continue;
        }
        /* json has no equality operator: compare its text. Quote: a column may be a keyword. */
        char *item = sqlf("%s%s\"%s\"%s", len ? ", " : "", prefix, col,
                          strcmp(type, "json") == 0 ? "::text" : "");
        size_t need = len + strlen(item) + 1;
        if (need > cap) {
            cap = need * 2;
            char *grown = tk_mem_alloc(cap);
            memcpy(grown, s, len + 1);
            free(s);
            s = grown;
        }
        memcpy(s + len, item, strlen(item) + 1);
        len += strlen(item);
        free(item);
    }
    PQclear(res);
    if (len == 0) {
        free(s);
        return tk_err_set(err, TK_EINVAL, "tables", "table %s has no column to compare", table);
    }
    *cols = s;
    return 0;
}

/* The primary key of <schema>.<table> as an ON condition "(l."a", l."b") = (r."a", r."b")";
 * NULL (and 0) when it has none. Owned. */
static int primary_key(replay_t *r, const char *schema, const char *table, char **on, tk_err_t *err)
{
    *on = NULL;
    char *rel = sqlf("\"%s\".\"%s\"", schema, table);
    const char *params[] = {rel};
    PGresult *res = tk_pg_exec(
        r->ctl,
        "SELECT '(' || string_agg('l.' || quote_ident(a.attname), ', ' ORDER BY k.n) || ') = (' "
        "|| string_agg('r.' || quote_ident(a.attname), ', ' ORDER BY k.n) || ')' "
        "FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) "
        "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
        "WHERE i.indrelid = $1::regclass AND i.indisprimary",
        1, params, err);
    free(rel);
    if (res == NULL)
        return err->code;
    if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
        *on = tk_mem_strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

/* The comparison's statement for one table: (live EXCEPT ALL rebuilt) and (rebuilt EXCEPT ALL
 * live) as four counts (live rows, rebuilt rows, only live, only rebuilt). Owned.
 *
 * Both copies have the same primary key (the rebuilt one's indexes are back before the
 * comparison): a FULL JOIN on it then counts the same thing, since each key is at most once on
 * each side: a key on one side only is a row only there, a key on both sides whose other
 * columns differ is one row only on each side. It joins on the keys alone (a merge join over
 * both primary key indexes, or a hash of the keys), where the general form below hashes whole
 * rows: 2 s of a 100k-event replay, and at 1M rows its hash spilled to disk (27 s). */
static int compare_sql(replay_t *r, const char *table, char **sql, tk_err_t *err)
{
    char *cols = NULL, *lcols = NULL, *rcols = NULL, *on_live = NULL, *on_rebuilt = NULL;
    int rc = 0;
    *sql = NULL;
    if ((rc = table_columns(r, table, "", &cols, err)) != 0)
        goto out;
    size_t mark = strlen(r->out->excluded); /* excluded columns are named by the first call */
    rc = table_columns(r, table, "l.", &lcols, err);
    r->out->excluded[mark] = '\0';
    if (rc != 0 || (rc = table_columns(r, table, "r.", &rcols, err)) != 0)
        goto out;
    r->out->excluded[mark] = '\0';
    if ((rc = primary_key(r, "public", table, &on_live, err)) != 0 ||
        (rc = primary_key(r, r->schema, table, &on_rebuilt, err)) != 0)
        goto out;
    if (on_live != NULL && on_rebuilt != NULL && strcmp(on_live, on_rebuilt) == 0) {
        /* A key column is NOT NULL: l.tk_present is NULL exactly where the live side has no row. */
        *sql = sqlf("SELECT count(l.tk_present), count(r.tk_present), "
                    "count(*) FILTER (WHERE l.tk_present AND (r.tk_present IS NULL OR "
                    "ROW(%s) IS DISTINCT FROM ROW(%s))), "
                    "count(*) FILTER (WHERE r.tk_present AND (l.tk_present IS NULL OR "
                    "ROW(%s) IS DISTINCT FROM ROW(%s))) "
                    "FROM (SELECT *, true tk_present FROM public.%s) l FULL JOIN "
                    "(SELECT *, true tk_present FROM %s.%s) r ON %s",
                    lcols, rcols, lcols, rcols, table, r->schema, table, on_live);
        goto out;
    }
    /* No shared primary key: per distinct row, its count on each side, in ONE pass over both
     * tables; a side has the excess. Two EXCEPT ALLs read each table twice and sort both. */
    *sql = sqlf("SELECT coalesce(sum(tk_l), 0), coalesce(sum(tk_r), 0), "
                "coalesce(sum(greatest(tk_l - tk_r, 0)), 0), "
                "coalesce(sum(greatest(tk_r - tk_l, 0)), 0) FROM (SELECT "
                "count(*) FILTER (WHERE tk_side = 0) tk_l, "
                "count(*) FILTER (WHERE tk_side = 1) tk_r FROM (SELECT %s, 0 tk_side "
                "FROM public.%s UNION ALL SELECT %s, 1 FROM %s.%s) u GROUP BY %s) g",
                cols, table, cols, r->schema, table, cols);
out:
    free(cols);
    free(lcols);
    free(rcols);
    free(on_live);
    free(on_rebuilt);
    return rc;
}

static int compare(replay_t *r, tk_err_t *err)
{
    r->out->identical = true;
    r->out->excluded[0] = '\0';
    for (size_t i = 0; r->spec->tables[i] != NULL; i++) {
        const char *table = r->spec->tables[i];
        char *sql = NULL;
        int rc = compare_sql(r, table, &sql, err);
        if (rc != 0)
            return rc;
        PGresult *res = tk_pg_exec(r->ctl, sql, 0, NULL, err);
        free(sql);
        if (res == NULL)
            return err->code;
        tk_replay_table_t *t = &r->out->tables[r->out->ntables++];
        snprintf(t->name, sizeof(t->name), "%s", table);
        t->live_rows = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        t->replay_rows = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        t->only_live = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
        t->only_replay = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
        PQclear(res);
        if (t->only_live != 0 || t->only_replay != 0)
            r->out->identical = false;
    }
    return 0;
}

/* Inside the locked transaction: old tables out of public, rebuilt ones in. */
static int swap(replay_t *r, tk_err_t *err)
{
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
    snprintf(r->replaced, sizeof(r->replaced), "replaced_%s_%s", r->spec->name, stamp);
    int rc = run_owned(r->ctl, sqlf("CREATE SCHEMA %s", r->replaced), err);
    for (size_t i = 0; rc == 0 && r->spec->tables[i] != NULL; i++)
        rc = run_owned(r->ctl,
                       sqlf("ALTER TABLE public.%s SET SCHEMA %s", r->spec->tables[i], r->replaced),
                       err);
    for (size_t i = 0; rc == 0 && r->spec->tables[i] != NULL; i++)
        rc = run_owned(r->ctl,
                       sqlf("ALTER TABLE %s.%s SET SCHEMA public", r->schema, r->spec->tables[i]),
                       err);
    /* force with a live projector behind the rebuild: it must not apply those records again. */
    for (size_t i = 0; rc == 0 && i < r->nparts; i++) {
        rpart_t *p = &r->parts[i];
        if (p->next <= p->live)
            continue;
        char partition[16], next[24];
        snprintf(partition, sizeof(partition), "%d", (int)p->partition);
        snprintf(next, sizeof(next), "%lld", (long long)p->next);
        const char *params[] = {r->spec->name, p->topic, partition, next};
        rc = tk_pg_run(r->ctl,
                       "UPDATE public.projection_offsets SET next_offset = $4::bigint, "
                       "updated_at = now() WHERE projection = $1 AND topic = $2 AND "
                       "partition = $3::integer AND next_offset < $4::bigint",
                       4, params, NULL, err);
    }
    return rc;
}

static bool live_behind(const replay_t *r)
{
    for (size_t i = 0; i < r->nparts; i++)
        if (r->parts[i].next > r->parts[i].live)
            return true;
    return false;
}

static void describe_behind(const replay_t *r, tk_err_t *err)
{
    for (size_t i = 0; i < r->nparts; i++) {
        const rpart_t *p = &r->parts[i];
        if (p->next > p->live) {
            tk_err_set(err, TK_ECONFLICT, "live",
                       "the live projector %s.%s is behind the rebuild at %s/%d (live %lld, "
                       "rebuilt %lld) after %d ms: start it, or use force to swap and move its "
                       "offsets",
                       r->spec->context, r->spec->name, p->topic, (int)p->partition,
                       (long long)p->live, (long long)p->next, r->opts.wait_ms);
            return;
        }
    }
}

/* ---- the steps ------------------------------------------------------------------------------- */

static int connect_all(replay_t *r, tk_err_t *err)
{
    char group[160], id[TK_UUID_LEN + 1];
    tk_uuid_new(id);
    snprintf(group, sizeof(group), "replay.%s.%s.%.8s", r->spec->context, r->spec->name, id);
    if ((r->ctl = tk_pg_connect(r->spec->context, err)) == NULL ||
        (r->rep = tk_pg_connect(r->spec->context, err)) == NULL)
        return err ? err->code : TK_EUNAVAIL;
    if ((r->rk = tk_kafka_consumer_new(group, err)) == NULL)
        return err ? err->code : TK_EINTERNAL;
    const char *params[] = {r->spec->context, r->spec->name};
    PGresult *res = tk_pg_exec(r->ctl,
                               "SELECT pg_try_advisory_lock(hashtext('tk_replay ' || $1), "
                               "hashtext($2))",
                               2, params, err);
    if (res == NULL)
        return err->code;
    bool locked = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (!locked)
        return tk_err_set(err, TK_ECONFLICT, "projection", "another replay of %s.%s is running",
                          r->spec->context, r->spec->name);
    /* The rebuild is disposable until the swap: no need to wait for its WAL flushes. */
    char *sql = sqlf("SET search_path TO %s, public; SET synchronous_commit TO off", r->schema);
    int rc = tk_pg_run_script(r->rep, sql, err);
    free(sql);
    return rc;
}

/* Choose the targets: the log's end, or the live offsets when the live projector is stopped. */
static int choose_targets(replay_t *r, tk_err_t *err)
{
    int rc = read_live(r, false, err);
    if (rc != 0)
        return rc;
    bool to_live = r->opts.to == TK_REPLAY_TO_LIVE;
    if (r->opts.to == TK_REPLAY_TO_AUTO)
        to_live = live_members(r) == 0;
    r->out->to_live = to_live;
    r->total = 0;
    for (size_t i = 0; i < r->nparts; i++) {
        rpart_t *p = &r->parts[i];
        p->target = to_live ? p->live : p->high;
        if (p->target < p->low)
            p->target = p->low;
        r->total += p->target - p->low;
    }
    return 0;
}

/* Catch up with the live offsets until the live projector is not behind the rebuild; give up
 * when it made no progress for wait_ms. */
static int settle(replay_t *r, tk_err_t *err)
{
    int64_t deadline = tk_mono_ms() + r->opts.wait_ms, last_sum = -1;
    for (;;) {
        int rc = read_live(r, false, err);
        if (rc != 0)
            return rc;
        int64_t sum = 0;
        for (size_t i = 0; i < r->nparts; i++)
            sum += r->parts[i].live;
        if (last_sum >= 0 && sum > last_sum)
            deadline = tk_mono_ms() + r->opts.wait_ms; /* it is moving: keep waiting */
        last_sum = sum;
        targets_to_live(r);
        if ((rc = consume(r, "catch-up", err)) != 0)
            return rc;
        if (!live_behind(r) || r->opts.force)
            return 0;
        if (tk_mono_ms() >= deadline) {
            r->out->behind = true;
            describe_behind(r, err);
            return TK_ECONFLICT;
        }
        if (stopped(r))
            return tk_err_set(err, TK_EINTERNAL, "stop", "interrupted");
        progress(r, "wait-live", false);
        tk_nap(200, NULL);
    }
}

/* Lock the live projector, apply up to its offsets, compare, and swap (or not). */
static int lock_verify_swap(replay_t *r, tk_err_t *err)
{
    int rc = tk_pg_begin(r->ctl, err);
    if (rc != 0)
        return rc;
    /* work_mem: the comparison's hash of both tables stays in memory longer (it spills to disk
     * beyond; the default 4MB spills at a few thousand rows). */
    if ((rc = run(r->ctl, "SET LOCAL lock_timeout = '30s'", err)) != 0 ||
        (rc = run(r->ctl, "SET LOCAL work_mem = '64MB'", err)) != 0 ||
        (rc = read_live(r, true, err)) != 0)
        goto out;
    targets_to_live(r);
    if ((rc = consume(r, "catch-up", err)) != 0)
        goto out;
    r->out->behind = live_behind(r);
    /* The fold's last write: the records up to the live offsets are all in it now. */
    if (r->fold != NULL &&
        ((rc = fold_write(r, true, err)) != 0 || (rc = restore_indexes(r, err)) != 0))
        goto out;
    progress(r, "verify", true);
    if ((rc = compare(r, err)) != 0)
        goto out;
    if (!r->out->identical && !r->opts.force) {
        rc = tk_err_set(err, TK_ECONFLICT, "tables",
                        "the rebuilt %s.%s differs from the live model: kept the live one",
                        r->spec->context, r->spec->name);
        goto out;
    }
    if (r->opts.check)
        goto out; /* rolled back below: nothing swapped */
    progress(r, "swap", true);
    if ((rc = swap(r, err)) != 0 || (rc = tk_pg_commit(r->ctl, err)) != 0)
        goto out;
    r->out->swapped = true;
    return 0;
out:
    tk_pg_rollback(r->ctl, NULL);
    return rc;
}

int tk_replay_run(const tk_projector_spec_t *spec, const tk_replay_opts_t *opts,
                  tk_replay_result_t *out, tk_err_t *err)
{
    replay_t r = {0};
    int rc = 0;
    bool prepared = false;

    memset(out, 0, sizeof(*out));
    if ((rc = tk_apply__spec_check(spec, err)) != 0)
        return rc;
    if (spec->tables == NULL || spec->tables[0] == NULL)
        return tk_err_set(err, TK_EINVAL, "projection",
                          "%s.%s is not replayable: it reacts or writes a write model",
                          spec->context, spec->name);
    if (!plain_identifier(spec->name, NAME_MAX_LEN))
        return tk_err_set(err, TK_EINVAL, "projection",
                          "projection name '%s' must be at most %d of [a-z0-9_]", spec->name,
                          NAME_MAX_LEN);
    size_t ntables = 0;
    for (; spec->tables[ntables] != NULL; ntables++)
        if (!plain_identifier(spec->tables[ntables], 63) || ntables == TK_REPLAY_MAX_TABLES)
            return tk_err_set(err, TK_EINVAL, "tables", "bad or too many tables in %s.%s",
                              spec->context, spec->name);

    r.spec = spec;
    r.out = out;
    if (opts != NULL)
        r.opts = *opts;
    if (r.opts.batch <= 0)
        r.opts.batch = DEFAULT_BATCH;
    if (r.opts.wait_ms <= 0)
        r.opts.wait_ms = DEFAULT_WAIT_MS;
    r.started_ms = tk_mono_ms();
    snprintf(r.schema, sizeof(r.schema), "replay_%s", spec->name);

    if (spec->fold != NULL) {
        r.fold = tk_apply__fold_new(spec);
        out->folded = true;
    }
    progress(&r, "prepare", true);
    if ((rc = connect_all(&r, err)) != 0 || (rc = load_partitions(&r, err)) != 0)
        goto out;
    prepared = true;
    if ((rc = prepare_schema(&r, err)) != 0 || (rc = ensure_offset_rows(&r, err)) != 0 ||
        (rc = choose_targets(&r, err)) != 0)
        goto out;
    if ((rc = consume(&r, "build", err)) != 0 || (rc = settle(&r, err)) != 0 ||
        (rc = lock_verify_swap(&r, err)) != 0)
        goto out;
    if (r.opts.keep_old)
        snprintf(out->replaced_schema, sizeof(out->replaced_schema), "%s", r.replaced);
    else
        drop_schema(r.ctl, r.replaced);
out:
    if (prepared)
        drop_schema(r.ctl, r.schema);
    if (r.rk != NULL) {
        rd_kafka_consumer_close(r.rk);
        rd_kafka_destroy(r.rk);
    }
    PQfinish(r.rep);
    PQfinish(r.ctl); /* releases the advisory lock */
    tk_apply__fold_free(r.fold);
    for (size_t i = 0; i < r.nrestore; i++)
        free(r.restore[i]);
    free(r.restore);
    for (size_t i = 0; i < r.nparts; i++)
        free(r.parts[i].topic);
    free(r.parts);
    out->elapsed_ms = tk_mono_ms() - r.started_ms;
    return rc;
}
