/*
 * projector.c - the one projector loop: Kafka records -> read model, with the consumed offsets
 * stored in the same PostgreSQL transaction as the effects (DESIGN.md section 6).
 *
 * A batch (tk_projector_poll_once):
 *
 *   wait for the first record; then take what has already arrived (no waiting), up to 2000
 *   records or until their payloads reach the byte budget (PROJECTOR_BATCH_BYTES)
 *   BEGIN
 *     lock this projection's rows of projection_offsets (FOR UPDATE)
 *     records of partitions assigned and positioned, at or past the stored next offset
 *     (an older one was applied already: a zombie's overlap) go through the shared per-record
 *     rules, tk_apply__batch (apply.c): one statement dedupes the batch's event ids, apply runs
 *     without savepoints, and only a batch with a record that fails is redone record by record
 *     under savepoints:
 *         decode fails                        -> dead_letters, advance   (poison never blocks)
 *         event id in processed_events        -> advance                  (duplicate)
 *         apply: OK / SKIP                    -> advance
 *                RETRY, waiting < gap timeout -> undone, hold the partition (on_gap)
 *                RETRY, waited >= gap timeout -> dead_letters "version gap", error log, advance
 *                error (not transient)        -> dead_letters, error log, advance
 *                retryable conflict / db down -> the whole batch fails
 *     upsert next offsets of the partitions that advanced (one statement)
 *   COMMIT
 *   held partitions: seek back to the held offset and pause until the backoff ends
 *   failed batch: ROLLBACK, seek every partition of the batch back to its stored offset
 *
 * Why this is exactly-once for effects: an effect, the processed_events row of its event and the
 * offset past it commit together or not at all. A crash before COMMIT leaves the stored offsets
 * where they were, and on restart the consumer is positioned from them, not from Kafka's
 * committed offsets (which are never written). A record published twice (relay crash between ack
 * and delete) has the same event id: processed_events catches it. Follow-up events emitted by
 * apply go to the outbox in the same transaction, so they too exist exactly once.
 *
 * Partition positions: on assignment (rebalance_cb) the offsets are read from projection_offsets
 * and passed to assign (a partition never seen starts at the beginning). If PostgreSQL is down at
 * that moment the partitions are assigned paused and "unpositioned"; the loop positions them
 * (seek, resume) once the database answers. Within a batch, records collected before a rebalance
 * are dropped, since the new assignment starts again from the stored offsets.
 *
 * A fatal consumer error (tk_kafka_consumer_dead: a static member fenced by another with the
 * same group.instance.id, seen after broker restarts) makes the consumer useless for good: the
 * batch is dropped and tk_projector_run returns, and its owner (app/workers.c) frees the projector
 * and starts a new one, which rejoins as the instance and resumes from the stored offsets.
 *
 * Version gaps: a replica that receives version v+2 while it holds v asks to RETRY. The partition
 * is held back (later records of it wait: per-aggregate order must not be broken) and retried with
 * backoff. The clock starts at the first RETRY of that offset; after tk_cfg()->gap_timeout_ms the
 * record is dead-lettered with "version gap" and an error log line, and the partition moves on.
 */
#include "tk/projector.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tk/backoff.h"
#include "tk/cfg.h"
#include "tk/ids.h"
#include "tk/kafka.h"
#include "tk/log.h"
#include "tk/mem.h"
#include "tk/pg.h"
#include "apply_int.h"
#include "tx_int.h"
#include "tk/prune.h"

#define MAX_BATCH 2000
#define NO_OFFSET (-1) /* no stored row: the partition starts at the beginning */

typedef struct part {
    char *topic; /* owned */
    int32_t partition;
    bool assigned;
    bool unpositioned;    /* assigned while PostgreSQL was down: paused until positioned */
    int64_t committed;    /* next offset stored in projection_offsets, or NO_OFFSET */
    int64_t pos;          /* next offset within the current batch */
    bool in_batch;        /* a record of this partition was collected in the current batch */
    bool advanced;        /* pos moved in the current batch: store it */
    bool held;            /* RETRY in this batch: ignore its later records, seek back to pos */
    bool paused;          /* paused for a retry backoff */
    int64_t resume_at;    /* monotonic ms */
    int64_t retry_offset; /* offset that asked to RETRY, or -1 */
    int64_t retry_since;  /* monotonic ms of its first RETRY */
    int64_t retry_wall;   /* wall ms of its first RETRY (dead_letters.first_seen) */
    int retries;
} part_t;

struct tk_projector {
    char *context, *name;
    char **topics;            /* owned, NULL-terminated */
    tk_projector_spec_t spec; /* the caller's, pointing at the copies above */
    char group[192];
    PGconn *conn; /* NULL while disconnected */
    rd_kafka_t *rk;
    part_t *parts;
    size_t nparts, cap;
    bool rebalanced; /* set by rebalance_cb, read by the collector */
    bool dead;       /* the consumer failed for good (tk_kafka_consumer_dead): run ends */
};

/* ---- partitions ------------------------------------------------------------------------------ */

static part_t *part_find(tk_projector_t *p, const char *topic, int32_t partition)
{
    for (size_t i = 0; i < p->nparts; i++)
        if (p->parts[i].partition == partition && strcmp(p->parts[i].topic, topic) == 0)
            return &p->parts[i];
    return NULL;
}

static part_t *part_get(tk_projector_t *p, const char *topic, int32_t partition)
{
    part_t *t = part_find(p, topic, partition);
    if (t != NULL)
        return t;
    if (p->nparts == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 16;
        part_t *grown = tk_mem_zalloc(p->cap * sizeof(*grown));
        if (p->nparts)
            memcpy(grown, p->parts, p->nparts * sizeof(*grown));
        free(p->parts);
        p->parts = grown;
    }
    t = &p->parts[p->nparts++];
    memset(t, 0, sizeof(*t));
    t->topic = tk_mem_strdup(topic);
    t->partition = partition;
    t->committed = NO_OFFSET;
    t->retry_offset = -1;
    return t;
}

/* A fresh assignment of t at stored offset committed. */
static void part_assign(part_t *t, int64_t committed, bool unpositioned)
{
    t->assigned = true;
    t->unpositioned = unpositioned;
    t->committed = committed;
    t->pos = committed;
    t->paused = unpositioned;
    t->held = false;
    t->retry_offset = -1;
    t->retries = 0;
}

static rd_kafka_topic_partition_list_t *one_partition(const part_t *t, int64_t offset)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, t->topic, t->partition)->offset = offset;
    return l;
}

static void part_seek(tk_projector_t *p, const part_t *t, int64_t offset)
{
    rd_kafka_topic_partition_list_t *l =
        one_partition(t, offset == NO_OFFSET ? RD_KAFKA_OFFSET_BEGINNING : offset);
    /* Asynchronous: the seek is queued before any later fetch of the partition, and records
     * fetched before it are discarded by librdkafka's version barrier. */
    rd_kafka_error_t *e = rd_kafka_seek_partitions(p->rk, l, 0);
    if (e != NULL) {
        tk_log(TK_LOG_WARN, "projector", rd_kafka_error_string(e),
               "\"group\":\"%s\",\"topic\":\"%s\",\"partition\":%d", p->group, t->topic,
               (int)t->partition);
        rd_kafka_error_destroy(e);
    }
    rd_kafka_topic_partition_list_destroy(l);
}

static void part_pause(tk_projector_t *p, part_t *t, bool pause)
{
    rd_kafka_topic_partition_list_t *l = one_partition(t, RD_KAFKA_OFFSET_INVALID);
    if (pause)
        rd_kafka_pause_partitions(p->rk, l);
    else
        rd_kafka_resume_partitions(p->rk, l);
    rd_kafka_topic_partition_list_destroy(l);
    t->paused = pause;
}

/* ---- database helpers ------------------------------------------------------------------------ */

static int ensure_conn(tk_projector_t *p, tk_err_t *err)
{
    return tk_pg_ensure(&p->conn, p->context, err);
}

/* The column of a partition list that pg_array writes. */
enum { COL_TOPIC, COL_PARTITION, COL_OFFSET };

/* A PostgreSQL array literal of one column of @p l: "{"a","b"}" (text[]: Kafka topic names need
 * no escaping), "{0,1}" (integer[]), "{5,7}" (bigint[]). Owned, free with free(). */
static char *pg_array(const rd_kafka_topic_partition_list_t *l, int col)
{
    size_t cap = 3, len = 0;
    for (int i = 0; i < l->cnt; i++)
        cap += col == COL_TOPIC ? strlen(l->elems[i].topic) + 3 : 22;
    char *s = tk_mem_alloc(cap);
    s[len++] = '{';
    for (int i = 0; i < l->cnt; i++) {
        const rd_kafka_topic_partition_t *e = &l->elems[i];
        const char *sep = i ? "," : "";
        if (col == COL_TOPIC)
            len += (size_t)snprintf(s + len, cap - len, "%s\"%s\"", sep, e->topic);
        else
            len += (size_t)snprintf(s + len, cap - len, "%s%lld", sep,
                                    col == COL_PARTITION ? (long long)e->partition
                                                         : (long long)e->offset);
    }
    snprintf(s + len, cap - len, "}");
    return s;
}

/*
 * Read the stored next offsets of the partitions in l into their ->offset (NO_OFFSET when none).
 * With lock, the rows are locked FOR UPDATE (in a transaction), in a fixed order so that two
 * members overlapping during a rebalance cannot deadlock; only l's rows are locked, so members
 * owning other partitions never wait on each other.
 */
static int read_offsets(tk_projector_t *p, rd_kafka_topic_partition_list_t *l, bool lock,
                        tk_err_t *err)
{
    int rc = ensure_conn(p, err);
    if (rc != 0)
        return rc;
    for (int i = 0; i < l->cnt; i++)
        l->elems[i].offset = NO_OFFSET;
    if (l->cnt == 0)
        return 0;
    char *topics = pg_array(l, COL_TOPIC), *partitions = pg_array(l, COL_PARTITION);
    const char *params[] = {p->name, topics, partitions};
    PGresult *res =
        tk_pg_exec_prepared(p->conn,
                            lock ? "SELECT topic, partition, next_offset FROM projection_offsets "
                                   "WHERE projection = $1 AND (topic, partition) IN "
                                   "(SELECT * FROM unnest($2::text[], $3::int[])) "
                                   "ORDER BY topic, partition FOR UPDATE"
                                 : "SELECT topic, partition, next_offset FROM projection_offsets "
                                   "WHERE projection = $1 AND (topic, partition) IN "
                                   "(SELECT * FROM unnest($2::text[], $3::int[]))",
                            3, params, err);
    free(topics);
    free(partitions);
    if (res == NULL)
        return err ? err->code : TK_EUNAVAIL;
    for (int r = 0; r < PQntuples(res); r++) {
        const char *topic = PQgetvalue(res, r, 0);
        int32_t partition = (int32_t)strtol(PQgetvalue(res, r, 1), NULL, 10);
        int64_t next = strtoll(PQgetvalue(res, r, 2), NULL, 10);
        for (int i = 0; i < l->cnt; i++)
            if (l->elems[i].partition == partition && strcmp(l->elems[i].topic, topic) == 0)
                l->elems[i].offset = next;
    }
    PQclear(res);
    return 0;
}

/* Copy msg into out keeping printable ASCII only: error texts may quote a poison record's bytes,
 * and a text column refuses invalid UTF-8 (which would make the dead letter itself fail). */
static void ascii_copy(char *out, size_t cap, const char *msg)
{
    size_t n = 0;
    for (; msg && *msg && n + 1 < cap; msg++)
        out[n++] = (*msg >= 0x20 && *msg < 0x7f) ? *msg : '?';
    out[n] = '\0';
}

static int dead_letter(tk_projector_t *p, const part_t *t, const rd_kafka_message_t *m,
                       const char *error, int64_t first_seen_ms, tk_err_t *err)
{
    char partition[16], offset[24], first_seen[TK_TIME_LEN + 1], why[512];
    char *key = m->key ? tk_pg_bytea_hex(m->key, m->key_len) : NULL;
    char *payload = m->payload ? tk_pg_bytea_hex(m->payload, m->len) : NULL;
    snprintf(partition, sizeof(partition), "%d", (int)t->partition);
    snprintf(offset, sizeof(offset), "%lld", (long long)m->offset);
    tk_time_format(first_seen_ms, first_seen);
    ascii_copy(why, sizeof(why), error);
    const char *params[] = {p->name, t->topic, partition, offset, key, payload, why, first_seen};
    int rc = tk_pg_run(p->conn,
                       "INSERT INTO dead_letters (projection, topic, partition, \"offset\", key, "
                       "payload, error, first_seen) "
                       "VALUES ($1, $2, $3, $4, $5::bytea, $6::bytea, $7, $8::timestamptz) "
                       "ON CONFLICT DO NOTHING",
                       8, params, NULL, err);
    free(key);
    free(payload);
    if (rc == 0)
        tk_log(TK_LOG_ERROR, "projector", why,
               "\"alert\":\"dead_letter\",\"group\":\"%s\",\"topic\":\"%s\",\"partition\":%d,"
               "\"offset\":%lld",
               p->group, t->topic, (int)t->partition, (long long)m->offset);
    return rc;
}

/* ---- the rules' hooks (apply.c) ---------------------------------------------------------------
 */

/* Backoff before retrying a held partition: 50 ms doubling to 1 s. */
static int64_t retry_delay(int retries)
{
    int64_t d = 50LL << (retries < 5 ? retries : 5);
    return d > 1000 ? 1000 : d;
}

static part_t *part_of(tk_projector_t *p, const rd_kafka_message_t *m)
{
    return part_find(p, rd_kafka_topic_name(m->rkt), m->partition);
}

/* A version gap: hold the partition with backoff; the clock starts at the first RETRY of this
 * offset, and past gap_timeout_ms the record is dead-lettered instead. */
static bool on_gap(void *ud, const rd_kafka_message_t *m, const ev_envelope_t *env, char *why,
                   size_t cap, int64_t *first_seen_ms)
{
    tk_projector_t *p = ud;
    part_t *t = part_of(p, m);
    int64_t now = tk_mono_ms();
    if (t->retry_offset != m->offset) {
        t->retry_offset = m->offset;
        t->retry_since = now;
        t->retry_wall = tk_now_ms();
        t->retries = 0;
    }
    if (now - t->retry_since >= tk_cfg()->gap_timeout_ms) {
        snprintf(why, cap, "version gap: %s %s version %lld still waits after %d ms", env->type,
                 env->subject, (long long)env->aggregateversion, tk_cfg()->gap_timeout_ms);
        *first_seen_ms = t->retry_wall;
        return false;
    }
    int64_t resume = now + retry_delay(t->retries++);
    int64_t deadline = t->retry_since + tk_cfg()->gap_timeout_ms;
    t->resume_at = resume < deadline ? resume : deadline;
    return true;
}

static int on_dead(void *ud, const rd_kafka_message_t *m, const char *why, int64_t first_seen_ms,
                   tk_err_t *err)
{
    tk_projector_t *p = ud;
    part_t *t = part_of(p, m);
    int rc = dead_letter(p, t, m, why, first_seen_ms, err);
    if (rc == 0 && t->retry_offset == m->offset)
        t->retry_offset = -1; /* a gap given up: the next one starts its own clock */
    return rc;
}

/* ---- a batch --------------------------------------------------------------------------------- */

/*
 * Store the next offsets of the partitions that advanced and COMMIT, in one round trip (the
 * upsert rides in the commit's pipeline, tk_tx__commit); waiting queries are told when offsets
 * were stored (tk_consistency). A failed upsert fails the commit: nothing of the batch is kept.
 */
static int commit_batch(tk_projector_t *p, int emitted, tk_err_t *err)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < p->nparts; i++)
        if (p->parts[i].advanced)
            rd_kafka_topic_partition_list_add(l, p->parts[i].topic, p->parts[i].partition)->offset =
                p->parts[i].pos;
    int rc;
    if (l->cnt == 0) {
        rc = tk_tx__commit(p->conn, emitted, NULL, NULL, err);
    } else {
        char *topics = pg_array(l, COL_TOPIC), *partitions = pg_array(l, COL_PARTITION),
             *nexts = pg_array(l, COL_OFFSET);
        const char *params[] = {p->name, topics, partitions, nexts};
        const tk_pg_stmt_t upsert = {
            "INSERT INTO projection_offsets (projection, topic, partition, next_offset) "
            "SELECT $1, * FROM unnest($2::text[], $3::int[], $4::bigint[]) "
            "ON CONFLICT (projection, topic, partition) DO UPDATE SET "
            "next_offset = GREATEST(projection_offsets.next_offset, EXCLUDED.next_offset), "
            "updated_at = now()",
            4, params};
        rc = tk_tx__commit(p->conn, emitted, p->name, &upsert, err);
        free(topics);
        free(partitions);
        free(nexts);
    }
    rd_kafka_topic_partition_list_destroy(l);
    return rc;
}

/*
 * Lock the offsets rows of the batch's partitions. A stored offset ahead of ours means another
 * member (a zombie of a past assignment) applied those records: never apply them again.
 */
static int lock_offsets(tk_projector_t *p, tk_err_t *err)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < p->nparts; i++)
        if (p->parts[i].in_batch)
            rd_kafka_topic_partition_list_add(l, p->parts[i].topic, p->parts[i].partition);
    int rc = read_offsets(p, l, true, err);
    for (int i = 0; rc == 0 && i < l->cnt; i++) {
        part_t *t = part_find(p, l->elems[i].topic, l->elems[i].partition);
        int64_t next = l->elems[i].offset;
        if (next == NO_OFFSET)
            continue;
        if (t->committed == NO_OFFSET || next > t->committed)
            t->committed = next;
        if (t->pos == NO_OFFSET || next > t->pos)
            t->pos = next;
    }
    rd_kafka_topic_partition_list_destroy(l);
    return rc;
}

static int apply_batch(tk_projector_t *p, rd_kafka_message_t **msgs, int n, int *applied,
                       tk_err_t *err)
{
    int rc = 0, count = 0, nrecs = 0;
    bool open = false;
    tk_rec_t *recs = tk_mem_zalloc((size_t)n * sizeof(*recs));

    for (size_t i = 0; i < p->nparts; i++) {
        part_t *t = &p->parts[i];
        t->pos = t->committed;
        t->in_batch = t->advanced = t->held = false;
    }
    for (int i = 0; i < n; i++) {
        part_t *t = part_find(p, rd_kafka_topic_name(msgs[i]->rkt), msgs[i]->partition);
        if (t != NULL)
            t->in_batch = true;
    }
    /* BEGIN rides with lock_offsets' SELECT: one round trip fewer per batch. */
    if ((rc = ensure_conn(p, err)) != 0 || (rc = tk_pg_begin_deferred(p->conn, err)) != 0)
        goto out;
    open = true;
    if ((rc = lock_offsets(p, err)) != 0)
        goto out;
    /* The records to apply: of partitions assigned, positioned and not paused, from the stored
     * position on (a stale fetch or a zombie's overlap is applied already). */
    for (int i = 0; i < n; i++) {
        rd_kafka_message_t *m = msgs[i];
        part_t *t = part_find(p, rd_kafka_topic_name(m->rkt), m->partition);
        if (t == NULL || !t->assigned || t->unpositioned || t->paused)
            continue;
        if (t->pos != NO_OFFSET && m->offset < t->pos)
            continue;
        recs[nrecs++] = (tk_rec_t){.m = m};
    }
    const tk_apply_hooks_t hooks = {.gap = on_gap, .dead = on_dead, .ud = p};
    if ((rc = tk_apply__batch(p->conn, &p->spec, recs, nrecs, &hooks, err)) != 0)
        goto out;
    for (int i = 0; i < nrecs; i++) {
        part_t *t = part_of(p, recs[i].m);
        if (recs[i].outcome == TK_REC_PENDING || t->held)
            continue;
        if (recs[i].outcome == TK_REC_HELD) {
            t->held = true;
            t->pos = recs[i].m->offset;
            continue;
        }
        t->pos = recs[i].m->offset + 1;
        t->advanced = true;
        count++;
    }
    int emitted = 0;
    for (int i = 0; i < nrecs; i++)
        emitted += recs[i].emitted;
    if ((rc = commit_batch(p, emitted, err)) != 0)
        goto out;
    open = false;
    for (size_t i = 0; i < p->nparts; i++) {
        part_t *t = &p->parts[i];
        if (t->advanced)
            t->committed = t->pos;
        if (t->retry_offset >= 0 && t->committed != NO_OFFSET && t->retry_offset < t->committed)
            t->retry_offset = -1; /* the gap closed */
        if (t->held) {
            part_seek(p, t, t->pos);
            part_pause(p, t, true);
        }
    }
out:
    if (rc != 0) {
        if (open)
            tk_pg_rollback(p->conn, NULL);
        /* Nothing of this batch happened: start its partitions again from the stored offsets. */
        for (size_t i = 0; i < p->nparts; i++) {
            part_t *t = &p->parts[i];
            if (t->in_batch && t->assigned && !t->unpositioned && !t->paused)
                part_seek(p, t, t->committed);
        }
        count = 0;
    }
    free(recs);
    if (applied != NULL)
        *applied = count;
    return rc;
}

/* ---- positioning and pauses ------------------------------------------------------------------ */

/* Position partitions assigned while PostgreSQL was down, and resume those whose backoff ended. */
static void tend_partitions(tk_projector_t *p)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(8);
    for (size_t i = 0; i < p->nparts; i++)
        if (p->parts[i].assigned && p->parts[i].unpositioned)
            rd_kafka_topic_partition_list_add(l, p->parts[i].topic, p->parts[i].partition);
    tk_err_t err = {0};
    if (l->cnt > 0 && read_offsets(p, l, false, &err) == 0) {
        for (int i = 0; i < l->cnt; i++) {
            part_t *t = part_find(p, l->elems[i].topic, l->elems[i].partition);
            part_assign(t, l->elems[i].offset, false);
            part_seek(p, t, t->committed);
            part_pause(p, t, false);
        }
        tk_log(TK_LOG_INFO, "projector", "partitions positioned", "\"group\":\"%s\",\"count\":%d",
               p->group, l->cnt);
    }
    rd_kafka_topic_partition_list_destroy(l);
    int64_t now = tk_mono_ms();
    for (size_t i = 0; i < p->nparts; i++) {
        part_t *t = &p->parts[i];
        if (t->assigned && t->paused && !t->unpositioned && now >= t->resume_at)
            part_pause(p, t, false);
    }
}

/* Milliseconds until the earliest paused partition resumes, capped at cap. */
static int until_resume(const tk_projector_t *p, int cap)
{
    int64_t now = tk_mono_ms(), best = cap;
    for (size_t i = 0; i < p->nparts; i++) {
        const part_t *t = &p->parts[i];
        if (t->assigned && t->paused && !t->unpositioned && t->resume_at - now < best)
            best = t->resume_at - now;
    }
    return best < 0 ? 0 : (int)best;
}

static void rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t code,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    tk_projector_t *p = opaque;
    bool coop = strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
    rd_kafka_error_t *e = NULL;
    p->rebalanced = true;
    if (code == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
        tk_err_t err = {0};
        bool positioned = read_offsets(p, parts, false, &err) == 0;
        if (!positioned)
            tk_log(TK_LOG_WARN, "projector", err.message,
                   "\"group\":\"%s\",\"note\":\"assigned paused until PostgreSQL answers\"",
                   p->group);
        for (int i = 0; i < parts->cnt; i++) {
            int64_t off = positioned ? parts->elems[i].offset : NO_OFFSET;
            part_assign(part_get(p, parts->elems[i].topic, parts->elems[i].partition), off,
                        !positioned);
            parts->elems[i].offset = off == NO_OFFSET ? RD_KAFKA_OFFSET_BEGINNING : off;
        }
        if (coop)
            e = rd_kafka_incremental_assign(rk, parts);
        else
            rd_kafka_assign(rk, parts);
        if (!positioned)
            rd_kafka_pause_partitions(rk, parts);
        tk_log(TK_LOG_INFO, "projector", "partitions assigned", "\"group\":\"%s\",\"count\":%d",
               p->group, parts->cnt);
    } else {
        for (int i = 0; i < parts->cnt; i++) {
            part_t *t = part_find(p, parts->elems[i].topic, parts->elems[i].partition);
            if (t != NULL)
                t->assigned = t->paused = t->unpositioned = false;
        }
        if (coop)
            e = rd_kafka_incremental_unassign(rk, parts);
        else
            rd_kafka_assign(rk, NULL);
    }
    if (e != NULL) {
        tk_log(TK_LOG_ERROR, "projector", rd_kafka_error_string(e), "\"group\":\"%s\"", p->group);
        rd_kafka_error_destroy(e);
    }
}

/* ---- public ---------------------------------------------------------------------------------- */

#define PREFETCH_BATCHES 4 /* the consumer fetches ahead at most this many batches' worth */

/* The consumer's librdkafka settings, from the batch budget (tk_projector_new). */
typedef struct prefetch {
    char queue_kb[24], partition_bytes[24], queue_records[24];
    const char *settings[7]; /* "name", "value", ..., NULL, pointing into the above */
} prefetch_t;

/*
 * By default librdkafka prefetches up to 64 MiB or 100,000 records per consumer and 1 MiB per
 * partition per fetch, so with a backlog each projector's memory follows its lag (a backlog of
 * 20k ticket events: about 10 MB for each consumer of the topic), whatever a batch holds. A few
 * batches ahead keep the loop fed, but not fewer: librdkafka 2.0 looks at a partition whose queue
 * is over the bound again only about a second later (the broker thread's wait), so a queue much
 * smaller than a second of the loop's work starves it (README, Benchmarks: a 256 KiB budget, so
 * a 1 MiB queue, cost a quarter to a half of the rate). KAFKA_CONFIG_QUEUED_MAX_MESSAGES_KBYTES
 * overrides the bound (site settings are applied last).
 */
static void prefetch_init(prefetch_t *f)
{
    /* PROJECTOR_BATCH_BYTES <= 256 MiB (cfg.c) keeps both within librdkafka's ranges. */
    int64_t budget = tk_cfg()->projector_batch_bytes;
    int64_t kb = PREFETCH_BATCHES * budget / 1024;
    snprintf(f->queue_kb, sizeof(f->queue_kb), "%lld", (long long)(kb < 1 ? 1 : kb));
    snprintf(f->partition_bytes, sizeof(f->partition_bytes), "%lld", (long long)budget);
    snprintf(f->queue_records, sizeof(f->queue_records), "%d", PREFETCH_BATCHES * MAX_BATCH);
    const char *const settings[] = {"queued.max.messages.kbytes",
                                    f->queue_kb,
                                    "max.partition.fetch.bytes",
                                    f->partition_bytes,
                                    "queued.min.messages",
                                    f->queue_records,
                                    NULL};
    memcpy(f->settings, settings, sizeof(settings));
}

static void free_strings(char **v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        free(v[i]);
    free(v);
}

tk_projector_t *tk_projector_new(const tk_projector_spec_t *spec, tk_err_t *err)
{
    tk_projector_t *p = NULL;
    rd_kafka_topic_partition_list_t *subs = NULL;
    size_t ntopics = 0;
    int rc = 0;

    if (tk_apply__spec_check(spec, err) != 0)
        return NULL;
    while (spec->topics[ntopics] != NULL)
        ntopics++;
    p = tk_mem_zalloc(sizeof(*p));
    p->context = tk_mem_strdup(spec->context);
    p->name = tk_mem_strdup(spec->name);
    p->topics = tk_mem_zalloc((ntopics + 1) * sizeof(char *));
    for (size_t i = 0; i < ntopics; i++)
        p->topics[i] = tk_mem_strdup(spec->topics[i]);
    p->spec = *spec;
    p->spec.context = p->context;
    p->spec.name = p->name;
    p->spec.topics = (const char *const *)p->topics;
    tk_projector_group_name(spec->context, spec->name, p->group, sizeof(p->group));

    if ((p->conn = tk_pg_connect(p->context, err)) == NULL) {
        rc = err ? err->code : TK_EUNAVAIL;
        goto out;
    }
    prefetch_t prefetch;
    prefetch_init(&prefetch);
    if ((p->rk = tk_kafka_consumer_new_tuned(p->group, rebalance_cb, p, prefetch.settings, err)) ==
        NULL) {
        rc = TK_EINTERNAL;
        goto out;
    }
    subs = rd_kafka_topic_partition_list_new((int)ntopics);
    for (size_t i = 0; i < ntopics; i++)
        rd_kafka_topic_partition_list_add(subs, p->topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(p->rk, subs);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        rc =
            tk_err_set(err, TK_EINVAL, "topics", "subscribe %s: %s", p->group, rd_kafka_err2str(e));
out:
    if (subs)
        rd_kafka_topic_partition_list_destroy(subs);
    if (rc != 0) {
        tk_projector_free(p);
        return NULL;
    }
    return p;
}

void tk_projector_free(tk_projector_t *p)
{
    if (p == NULL)
        return;
    if (p->rk) {
        rd_kafka_consumer_close(p->rk); /* leave the group now: the next member starts at once */
        rd_kafka_destroy(p->rk);
    }
    PQfinish(p->conn);
    for (size_t i = 0; i < p->nparts; i++)
        free(p->parts[i].topic);
    free(p->parts);
    free_strings(p->topics);
    free(p->context);
    free(p->name);
    free(p);
}

/* Log a consumer error record once in a while; they repeat while a broker is down. */
static void consumer_error(tk_projector_t *p, const rd_kafka_message_t *m)
{
    static _Thread_local int64_t last;
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF)
        return;
    int64_t now = tk_mono_ms();
    if (now - last < 5000)
        return;
    last = now;
    tk_log(TK_LOG_WARN, "projector", rd_kafka_message_errstr(m), "\"group\":\"%s\",\"code\":\"%s\"",
           p->group, rd_kafka_err2name(m->err));
}

void tk_projector_group_name(const char *context, const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s.%s", context, name);
}

/*
 * Adaptive batching (group commit): wait up to timeout_ms for the first record, then take only
 * what has already arrived (polls with timeout 0) up to MAX_BATCH records, or until the records'
 * payloads (and keys) reach tk_cfg()->projector_batch_bytes: the record that reaches the budget
 * is the batch's last, so a record larger than the budget still makes a batch of one.
 * Idle, a record is applied as soon as it arrives; under load, records pile up in librdkafka's
 * queue while a batch commits, so the next batch is larger and the per-transaction cost is
 * shared by more records.
 *
 * Why a byte budget: a batch is held whole while it is applied, each record decoded into an
 * envelope (a JSON tree several times the payload's size), its rows built and sent. With a
 * backlog every batch is full, so the budget, not the record count, sets the role's peak memory.
 */
int tk_projector_poll_once(tk_projector_t *p, int timeout_ms, int *applied, tk_err_t *err)
{
    rd_kafka_message_t *msgs[MAX_BATCH];
    int n = 0, rc = 0;
    size_t bytes = 0, budget = (size_t)tk_cfg()->projector_batch_bytes;
    if (applied != NULL)
        *applied = 0;
    if (p->dead || (rc = tk_kafka_consumer_dead(p->rk, NULL, err)) != 0) {
        p->dead = true;
        return rc != 0 ? rc : tk_err_set(err, TK_EUNAVAIL, "", "%s: consumer dead", p->group);
    }
    tend_partitions(p);
    p->rebalanced = false;
    int64_t deadline = tk_mono_ms() + timeout_ms;
    while (n < MAX_BATCH && bytes < budget) {
        int wait = 0;
        if (n == 0) {
            int64_t now = tk_mono_ms();
            if (now >= deadline)
                break;
            wait = until_resume(p, (int)(deadline - now));
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(p->rk, wait);
        if (p->rebalanced) {
            /* Records collected before the rebalance belong to the old assignment: drop them,
             * and refetch those of partitions we still own (a cooperative rebalance keeps some;
             * an eager one has just positioned them at the stored offsets anyway). */
            for (size_t i = 0; i < p->nparts; i++)
                p->parts[i].in_batch = false;
            for (int i = 0; i < n; i++) {
                part_t *t = part_find(p, rd_kafka_topic_name(msgs[i]->rkt), msgs[i]->partition);
                if (t != NULL && t->assigned && !t->unpositioned && !t->paused)
                    t->in_batch = true;
                rd_kafka_message_destroy(msgs[i]);
            }
            for (size_t i = 0; i < p->nparts; i++)
                if (p->parts[i].in_batch) {
                    part_seek(p, &p->parts[i], p->parts[i].committed);
                    p->parts[i].in_batch = false;
                }
            n = 0;
            bytes = 0;
            p->rebalanced = false;
        }
        if (m == NULL) {
            if (n > 0)
                break; /* nothing more has arrived: apply what we have */
            tend_partitions(p);
            continue;
        }
        if (m->err) {
            /* A fenced static member never consumes again: what was collected is dropped (the
             * stored offsets hold) and run ends, so its owner starts over with a new consumer. */
            if ((rc = tk_kafka_consumer_dead(p->rk, m, err)) != 0)
                p->dead = true;
            else
                consumer_error(p, m);
            rd_kafka_message_destroy(m);
            if (p->dead)
                break;
            continue;
        }
        msgs[n++] = m;
        bytes += m->len + m->key_len;
    }
    if (n > 0 && !p->dead)
        rc = apply_batch(p, msgs, n, applied, err);
    for (int i = 0; i < n; i++)
        rd_kafka_message_destroy(msgs[i]);
    return rc;
}

int tk_projector_run(tk_projector_t *p, volatile int *stop)
{
    tk_backoff_t backoff;
    tk_backoff_init(&backoff, 100, 5000);
    int64_t prune_at = 0;
    tk_log(TK_LOG_INFO, "projector", "started", "\"group\":\"%s\"", p->group);
    while (!*stop) {
        tk_prune_tick(p->conn, p->name, &prune_at); /* bounded processed_events: prune.c */
        tk_err_t err = {0};
        int applied = 0;
        int rc = tk_projector_poll_once(p, 500, &applied, &err);
        if (rc == 0) {
            tk_backoff_reset(&backoff);
            continue;
        }
        if (p->dead) {
            tk_log(TK_LOG_ERROR, "projector", err.message,
                   "\"group\":\"%s\",\"note\":\"ends; its owner starts a new consumer\"", p->group);
            return rc;
        }
        int backoff_ms = tk_backoff_next(&backoff);
        tk_log(TK_LOG_WARN, "projector", err.message,
               "\"group\":\"%s\",\"code\":\"%s\",\"retry_ms\":%d", p->group, tk_err_name(rc),
               backoff_ms);
        tk_nap(backoff_ms, stop);
    }
    tk_log(TK_LOG_INFO, "projector", "stopped", "\"group\":\"%s\"", p->group);
    return 0;
}
