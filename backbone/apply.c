/*
 * apply.c - the per-record rules of projection, in one place (DESIGN.md section 6). The live
 * projector and the replay both call tk_apply__batch, so a rebuild applies every record exactly
 * as the live loop does; only the meaning of a version gap and of a dead letter differ (hooks).
 *
 * For each record, in order:
 *   undecodable                         -> dead letter
 *   event id already in processed_events
 *     or earlier in the same batch      -> skipped (a duplicate)
 *   apply: OK / SKIP                    -> applied / skipped
 *          RETRY                        -> hooks->gap: hold the partition, or dead letter
 *          error, not transient         -> dead letter
 *          retryable conflict, db down  -> the whole batch fails (the caller rolls back)
 *
 * Fast path (nearly every batch): SAVEPOINT batch; ONE INSERT ... SELECT unnest($ids) ON
 * CONFLICT DO NOTHING RETURNING dedupes the whole batch (none for an idempotent spec: its apply
 * finds a repeated event itself, so only repeats within the batch are dropped); apply runs record
 * after record with no savepoint. If a record is undecodable or apply returns neither OK nor SKIP,
 * ROLLBACK TO SAVEPOINT batch and take the careful path: record by record, each under SAVEPOINT rec
 * with its own processed_events insert, so a failing record is undone alone and dead-lettered or
 * held. Why both give the same outcome: the fast path only commits when every record was OK or
 * SKIP, and for such a batch per-record inserts and the set insert find the same duplicates (the
 * first occurrence of an id in the batch is the fresh one).
 *
 * Statements go through tk_pg_exec_prepared: parsed and planned once per connection.
 */
#include "apply_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tk/fold.h"
#include "tk/ids.h"
#include "tk/mem.h"
#include "tk/pg.h"
#include "tx_int.h"

/* Each event id is stored with its record's position, by which backbone/prune.c bounds the
 * table. */
static const char SQL_DEDUPE_SET[] =
    "INSERT INTO processed_events (projection, event_id, topic, partition, \"offset\") "
    "SELECT $1, u.id, u.topic, u.part, u.off "
    "FROM unnest($2::text[], $3::text[], $4::int[], $5::bigint[]) AS u(id, topic, part, off) "
    "ON CONFLICT DO NOTHING RETURNING event_id";
/* Batches smaller than this are decoded on the loop's thread alone: a thread start would cost
 * more than it saves. */
#define DECODE_SPLIT_MIN 256

static const char SQL_DEDUPE_ONE[] =
    "INSERT INTO processed_events (projection, event_id, topic, partition, \"offset\") "
    "VALUES ($1, $2, $3, $4::int, $5::bigint) ON CONFLICT DO NOTHING";

int tk_apply__spec_check(const tk_projector_spec_t *spec, tk_err_t *err)
{
    if (spec == NULL || spec->context == NULL || spec->name == NULL || spec->topics == NULL ||
        spec->topics[0] == NULL || spec->apply == NULL)
        return tk_err_set(err, TK_EINVAL, "spec",
                          "a projector needs context, name, topics and apply");
    const tk_projector_fold_t *f = spec->fold;
    if (f != NULL && (f->begin == NULL || f->add == NULL || f->write == NULL || f->end == NULL ||
                      (f->prepare != NULL && f->release == NULL)))
        return tk_err_set(err, TK_EINVAL, "spec",
                          "a fold needs begin, add, write and end (and release with prepare)");
    return 0;
}

static int run(PGconn *c, const char *sql, tk_err_t *err)
{
    return tk_pg_run(c, sql, 0, NULL, NULL, err);
}

/* Transient: not the record's fault, so the batch is retried as a whole (a deadlock victim must
 * drop its locks, a lost connection loses the transaction anyway). */
static bool transient(PGconn *c, int r, const tk_err_t *aerr)
{
    return tk_pg_retryable(aerr) || r == TK_EUNAVAIL || tk_pg_broken(c);
}

/* ---- the careful path ------------------------------------------------------------------------ */

static bool same_partition(const rd_kafka_message_t *a, const rd_kafka_message_t *b)
{
    return a->partition == b->partition && a->rkt == b->rkt;
}

/* One record under SAVEPOINT rec. Returns 0 with rec->outcome set, or a negative code that fails
 * the batch. */
static int careful_one(PGconn *c, const tk_projector_spec_t *spec, tk_rec_t *rec,
                       const tk_apply_hooks_t *hooks, tk_err_t *err)
{
    const rd_kafka_message_t *m = rec->m;
    ev_envelope_t env = {0};
    tk_err_t derr = {0}, aerr = {0};
    int64_t inserted = 0;
    char why[300];
    int rc = 0;

    if ((rc = run(c, "SAVEPOINT rec", err)) != 0)
        return rc;
    if (ev_envelope_decode(m->payload, m->len, &env, &derr) != 0) {
        snprintf(why, sizeof(why), "undecodable: %s", derr.message);
        rec->outcome = TK_REC_DEAD;
        rc = hooks->dead(hooks->ud, m, why, tk_now_ms(), err);
        goto out;
    }
    char partition[16], offset[24];
    snprintf(partition, sizeof(partition), "%d", (int)m->partition);
    snprintf(offset, sizeof(offset), "%lld", (long long)m->offset);
    const char *params[] = {spec->name, env.id, rd_kafka_topic_name(m->rkt), partition, offset};
    if (spec->idempotent)
        inserted = 1; /* apply itself finds an event it has applied before */
    else if ((rc = tk_pg_run_prepared(c, SQL_DEDUPE_ONE, 5, params, &inserted, err)) != 0)
        goto out;
    if (inserted == 0) { /* the same event id was applied before */
        rec->outcome = TK_REC_SKIPPED;
        goto out;
    }
    tk_tx_t tx;
    tk_tx__init(&tx, c, env.correlationid);
    int r = spec->apply(&tx, &env, spec->ud, &aerr);
    if (r == TK_APPLY_OK || r == TK_APPLY_SKIP) {
        rec->outcome = r == TK_APPLY_OK ? TK_REC_APPLIED : TK_REC_SKIPPED;
        rec->emitted = tk_tx_emitted(&tx);
        goto out;
    }
    /* Undo whatever apply did (and the processed_events row) before deciding. */
    if ((rc = run(c, "ROLLBACK TO SAVEPOINT rec", err)) != 0)
        goto out;
    if (r == TK_APPLY_RETRY) {
        int64_t first_seen = tk_now_ms();
        snprintf(why, sizeof(why), "version gap: %s", aerr.message);
        if (hooks->gap(hooks->ud, m, &env, why, sizeof(why), &first_seen)) {
            rec->outcome = TK_REC_HELD;
            goto out;
        }
        rec->outcome = TK_REC_DEAD;
        rc = hooks->dead(hooks->ud, m, why, first_seen, err);
        goto out;
    }
    if (r > 0)
        tk_err_set(&aerr, TK_EINTERNAL, "", "apply returned %d", r);
    if (transient(c, r, &aerr)) {
        rc = r < 0 ? r : TK_EINTERNAL;
        if (err)
            *err = aerr;
        goto out;
    }
    snprintf(why, sizeof(why), "apply failed: %s: %s", tk_err_name(r), aerr.message);
    rec->outcome = TK_REC_DEAD;
    rc = hooks->dead(hooks->ud, m, why, tk_now_ms(), err);
out:
    /* Every path with rc == 0 keeps its work (or its rollback to the savepoint): release it. */
    if (rc == 0)
        rc = run(c, "RELEASE SAVEPOINT rec", err);
    ev_envelope_release(&env);
    return rc;
}

static int careful(PGconn *c, const tk_projector_spec_t *spec, tk_rec_t *recs, int n,
                   const tk_apply_hooks_t *hooks, tk_err_t *err)
{
    for (int i = 0; i < n; i++) {
        recs[i].outcome = TK_REC_PENDING;
        recs[i].emitted = 0;
        bool held = false; /* per-aggregate order: nothing of a held partition may pass it */
        for (int j = 0; j < i && !held; j++)
            held = recs[j].outcome == TK_REC_HELD && same_partition(recs[j].m, recs[i].m);
        if (held)
            continue;
        int rc = careful_one(c, spec, &recs[i], hooks, err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- the fast path --------------------------------------------------------------------------- */

typedef struct id_ref {
    const char *id;
    int index;
} id_ref_t;

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* By id, then by position in the batch (so the first occurrence of an id sorts first). */
static int cmp_ref(const void *a, const void *b)
{
    const id_ref_t *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c != 0 ? c : (x->index > y->index) - (x->index < y->index);
}

/* "{"id1","id2"}": a text[] literal of event ids. Owned. Ids are validated UUIDs (the envelope
 * decoder checks them), so none needs quoting. */
static char *id_array(const ev_envelope_t *envs, int n)
{
    size_t len = 0, cap = (size_t)n * (TK_UUID_LEN + 3) + 3;
    char *s = tk_mem_alloc(cap);
    s[len++] = '{';
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(s + len, cap - len, "%s\"%s\"", i ? "," : "", envs[i].id);
    snprintf(s + len, cap - len, "}");
    return s;
}

/* The positions of @p recs as three array literals: topics "{"t",...}", partitions "{0,...}"
 * and offsets "{12,...}". Each owned. Topic names are Kafka's legal characters
 * ([A-Za-z0-9._-]), so none needs escaping inside the quotes. */
static void position_arrays(const tk_rec_t *recs, int n, char **topics, char **parts,
                            char **offsets)
{
    size_t tcap = 3, tlen = 0, pcap = (size_t)n * 12 + 3, plen = 0, ocap = (size_t)n * 21 + 3,
           olen = 0;
    for (int i = 0; i < n; i++)
        tcap += strlen(rd_kafka_topic_name(recs[i].m->rkt)) + 3;
    char *t = tk_mem_alloc(tcap), *p = tk_mem_alloc(pcap), *o = tk_mem_alloc(ocap);
    t[tlen++] = p[plen++] = o[olen++] = '{';
    for (int i = 0; i < n; i++) {
        const rd_kafka_message_t *m = recs[i].m;
        tlen += (size_t)snprintf(t + tlen, tcap - tlen, "%s\"%s\"", i ? "," : "",
                                 rd_kafka_topic_name(m->rkt));
        plen += (size_t)snprintf(p + plen, pcap - plen, "%s%d", i ? "," : "", (int)m->partition);
        olen +=
            (size_t)snprintf(o + olen, ocap - olen, "%s%lld", i ? "," : "", (long long)m->offset);
    }
    snprintf(t + tlen, tcap - tlen, "}");
    snprintf(p + plen, pcap - plen, "}");
    snprintf(o + olen, ocap - olen, "}");
    *topics = t;
    *parts = p;
    *offsets = o;
}

/* fresh[i]: envs[i] is the first occurrence in the batch of an id the insert returned (of any
 * id when @p res is NULL: an idempotent projection keeps no processed_events). Sorted copies keep
 * this O(n log n) for a batch of thousands. */
static void mark_fresh(const ev_envelope_t *envs, int n, PGresult *res, bool *fresh)
{
    int nret = res != NULL ? PQntuples(res) : 0;
    const char **returned = tk_mem_zalloc(((size_t)nret + 1) * sizeof(char *));
    for (int k = 0; k < nret; k++)
        returned[k] = PQgetvalue(res, k, 0);
    qsort(returned, (size_t)nret, sizeof(char *), cmp_str);
    id_ref_t *order = tk_mem_zalloc((size_t)n * sizeof(*order));
    for (int i = 0; i < n; i++)
        order[i] = (id_ref_t){envs[i].id, i};
    qsort(order, (size_t)n, sizeof(*order), cmp_ref);
    for (int i = 0; i < n; i++) {
        const char *id = order[i].id;
        bool first = i == 0 || strcmp(order[i - 1].id, id) != 0;
        fresh[order[i].index] = first && (res == NULL || bsearch(&id, returned, (size_t)nret,
                                                                 sizeof(char *), cmp_str) != NULL);
    }
    free(order);
    free(returned);
}

/* What a result other than OK or SKIP means on the fast path: 1 (redo it carefully), or the
 * transient error that fails the batch (the careful path would fail it the same way). */
static int fast_failure(PGconn *c, int r, const tk_err_t *aerr, tk_err_t *err)
{
    if (r < 0 && transient(c, r, aerr)) {
        if (err)
            *err = *aerr;
        return r;
    }
    return 1;
}

/* apply on each fresh record, without savepoints. */
static int fast_each(PGconn *c, const tk_projector_spec_t *spec, tk_rec_t *recs,
                     const ev_envelope_t *envs, const bool *fresh, int n, tk_err_t *err)
{
    for (int i = 0; i < n; i++) {
        if (!fresh[i])
            continue;
        tk_err_t aerr = {0};
        tk_tx_t tx;
        tk_tx__init(&tx, c, envs[i].correlationid);
        int r = spec->apply(&tx, &envs[i], spec->ud, &aerr);
        if (r != TK_APPLY_OK && r != TK_APPLY_SKIP)
            return fast_failure(c, r, &aerr, err);
        recs[i].outcome = r == TK_APPLY_OK ? TK_REC_APPLIED : TK_REC_SKIPPED;
        recs[i].emitted = tk_tx_emitted(&tx);
    }
    return 0;
}

/* apply_set once over the fresh records. */
static int fast_set(PGconn *c, const tk_projector_spec_t *spec, tk_rec_t *recs,
                    const ev_envelope_t *envs, const bool *fresh, int n, tk_err_t *err)
{
    const ev_envelope_t **set = tk_mem_zalloc(((size_t)n + 1) * sizeof(*set));
    int *index = tk_mem_zalloc(((size_t)n + 1) * sizeof(*index));
    int *results = tk_mem_zalloc(((size_t)n + 1) * sizeof(*results));
    int k = 0, rc = 0;
    for (int i = 0; i < n; i++)
        if (fresh[i]) {
            index[k] = i;
            set[k++] = &envs[i];
        }
    if (k > 0) {
        tk_err_t aerr = {0};
        tk_tx_t tx;
        tk_tx__init(&tx, c, set[0]->correlationid);
        int r = spec->apply_set(&tx, set, k, results, spec->ud, &aerr);
        if (r != 0) {
            rc = fast_failure(c, r, &aerr, err);
            goto out;
        }
        for (int j = 0; j < k; j++)
            recs[index[j]].outcome = results[j] == TK_APPLY_OK ? TK_REC_APPLIED : TK_REC_SKIPPED;
        recs[index[k - 1]].emitted = tk_tx_emitted(&tx); /* the set's, counted once */
    }
out:
    free(set);
    free(index);
    free(results);
    return rc;
}

/* Envelopes of recs[from, to) into envs; ok false when one is undecodable. */
typedef struct decode_range {
    const tk_rec_t *recs;
    ev_envelope_t *envs;
    int from, to;
    bool ok;
} decode_range_t;

static void *decode_range(void *arg)
{
    decode_range_t *r = arg;
    r->ok = true;
    for (int i = r->from; i < r->to && r->ok; i++) {
        tk_err_t derr = {0};
        r->ok =
            ev_envelope_decode(r->recs[i].m->payload, r->recs[i].m->len, &r->envs[i], &derr) == 0;
    }
    return NULL;
}

/* Decode every record of the batch; false when one is undecodable (the careful path says which).
 * Why a second thread for a large batch: parsing JSON is most of the loop's own CPU time, and
 * while it runs PostgreSQL waits for the batch, so the other core would idle. */
static bool decode_all(const tk_rec_t *recs, ev_envelope_t *envs, int n)
{
    decode_range_t head = {recs, envs, 0, n / 2, false}, tail = {recs, envs, n / 2, n, false};
    pthread_t helper;
    if (n < DECODE_SPLIT_MIN || pthread_create(&helper, NULL, decode_range, &tail) != 0) {
        head.to = n;
        decode_range(&head);
        return head.ok;
    }
    decode_range(&head);
    pthread_join(helper, NULL);
    return head.ok && tail.ok;
}

/* Returns 0 when every record was OK or SKIP (outcomes set), 1 when the careful path must redo
 * the batch (the caller rolls back to the savepoint), or a negative code that fails the batch. */
static int fast(PGconn *c, const tk_projector_spec_t *spec, tk_rec_t *recs, int n, tk_err_t *err)
{
    ev_envelope_t *envs = tk_mem_zalloc((size_t)n * sizeof(*envs));
    bool *fresh = tk_mem_zalloc((size_t)n * sizeof(*fresh));
    char *ids = NULL, *topics = NULL, *parts = NULL, *offsets = NULL;
    PGresult *res = NULL;
    int rc = 0;

    if (!decode_all(recs, envs, n)) {
        rc = 1;
        goto out;
    }
    if (!spec->idempotent) {
        ids = id_array(envs, n);
        position_arrays(recs, n, &topics, &parts, &offsets);
        const char *params[] = {spec->name, ids, topics, parts, offsets};
        if ((res = tk_pg_exec_prepared(c, SQL_DEDUPE_SET, 5, params, err)) == NULL) {
            rc = err ? err->code : TK_EUNAVAIL;
            goto out;
        }
    }
    mark_fresh(envs, n, res, fresh);
    for (int i = 0; i < n; i++) {
        recs[i].emitted = 0;
        recs[i].outcome = TK_REC_SKIPPED; /* a duplicate, unless fresh below */
    }
    rc = spec->apply_set != NULL ? fast_set(c, spec, recs, envs, fresh, n, err)
                                 : fast_each(c, spec, recs, envs, fresh, n, err);
out:
    PQclear(res);
    free(ids);
    free(topics);
    free(parts);
    free(offsets);
    for (int i = 0; i < n; i++)
        ev_envelope_release(&envs[i]);
    free(envs);
    free(fresh);
    return rc;
}

int tk_apply__batch(PGconn *c, const tk_projector_spec_t *spec, tk_rec_t *recs, int n,
                    const tk_apply_hooks_t *hooks, tk_err_t *err)
{
    if (n <= 0)
        return 0;
    int rc = run(c, "SAVEPOINT batch", err);
    if (rc != 0)
        return rc;
    if ((rc = fast(c, spec, recs, n, err)) != 1)
        return rc;
    if ((rc = run(c, "ROLLBACK TO SAVEPOINT batch", err)) != 0)
        return rc;
    return careful(c, spec, recs, n, hooks, err);
}

/* ---- the fold (replay only) ------------------------------------------------------------------ */

struct tk_apply_fold {
    const tk_projector_spec_t *spec; /* borrowed */
    void *state;                     /* the projection's, owned */
    tk_fold_keys_t *ids;             /* event ids accepted: the rebuild's processed_events */
    struct folded *batch;            /* the decoded records of a batch, kept for the next one */
    size_t capbatch;
};

tk_apply_fold_t *tk_apply__fold_new(const tk_projector_spec_t *spec)
{
    tk_apply_fold_t *f = tk_mem_zalloc(sizeof(*f));
    f->spec = spec;
    f->state = spec->fold->begin(spec->ud);
    f->ids = tk_fold_keys_new(16);
    return f;
}

void tk_apply__fold_free(tk_apply_fold_t *f)
{
    if (f == NULL)
        return;
    f->spec->fold->end(f->state, f->spec->ud);
    tk_fold_keys_free(f->ids);
    free(f->batch);
    free(f);
}

/* One record of a fold batch, decoded (and prepared) ahead of the rules. */
typedef struct folded {
    ev_envelope_t env;
    bool decoded;
    char why[300];  /* "undecodable: ..." when not decoded */
    void *prepared; /* fold->prepare's, or NULL */
} folded_t;

typedef struct fold_slice {
    const tk_projector_spec_t *spec;
    tk_rec_t *recs;
    folded_t *out;
    int from, to;
} fold_slice_t;

/* Decode and prepare recs[from..to): pure work, run on several threads at once. */
static void *fold_decode(void *arg)
{
    const fold_slice_t *s = arg;
    const tk_projector_fold_t *fold = s->spec->fold;
    for (int i = s->from; i < s->to; i++) {
        folded_t *x = &s->out[i];
        tk_err_t derr = {0};
        const rd_kafka_message_t *m = s->recs[i].m;
        x->decoded = ev_envelope_decode(m->payload, m->len, &x->env, &derr) == 0;
        if (!x->decoded)
            snprintf(x->why, sizeof(x->why), "undecodable: %s", derr.message);
        else if (fold->prepare != NULL)
            x->prepared = fold->prepare(&x->env, s->spec->ud);
    }
    return NULL;
}

/* Decoding an envelope (JSON) and preparing it cost more than the rest of a fold together: split
 * a batch over up to FOLD_THREADS threads (the online CPUs), this one included. */
#define FOLD_THREADS 4
#define FOLD_SLICE_MIN 256 /* fewer records a thread are not worth starting it */

static void fold_decode_all(const tk_projector_spec_t *spec, tk_rec_t *recs, folded_t *out, int n)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = cpus < 1 ? 1 : cpus > FOLD_THREADS ? FOLD_THREADS : (int)cpus;
    if (threads > n / FOLD_SLICE_MIN)
        threads = n / FOLD_SLICE_MIN > 0 ? n / FOLD_SLICE_MIN : 1;
    fold_slice_t slices[FOLD_THREADS];
    pthread_t tids[FOLD_THREADS];
    bool started[FOLD_THREADS] = {false};
    for (int t = 0; t < threads; t++)
        slices[t] = (fold_slice_t){spec, recs, out, (int)((int64_t)n * t / threads),
                                   (int)((int64_t)n * (t + 1) / threads)};
    /* A thread that cannot be started leaves its slice to this one. */
    for (int t = 1; t < threads; t++)
        started[t] = pthread_create(&tids[t], NULL, fold_decode, &slices[t]) == 0;
    fold_decode(&slices[0]);
    for (int t = 1; t < threads; t++) {
        if (started[t])
            pthread_join(tids[t], NULL);
        else
            fold_decode(&slices[t]);
    }
}

/* careful_one's rules for one record, in memory: add in place of apply, the id set in place of
 * processed_events (an id is accepted only with an OK or SKIP, as the savepoint's rollback
 * forgets the processed_events row of a failing record). */
static int fold_one(tk_apply_fold_t *f, tk_rec_t *rec, folded_t *x, const tk_apply_hooks_t *hooks,
                    tk_err_t *err)
{
    const rd_kafka_message_t *m = rec->m;
    const tk_projector_fold_t *fold = f->spec->fold;
    tk_err_t aerr = {0};
    uint8_t id[16];
    char why[300];

    if (!x->decoded) {
        rec->outcome = TK_REC_DEAD;
        return hooks->dead(hooks->ud, m, x->why, tk_now_ms(), err);
    }
    if (!tk_uuid_to_bytes(x->env.id, id))
        abort();                              /* the decoder accepts valid UUIDs only */
    if (tk_fold_keys_find(f->ids, id) >= 0) { /* the same event id was applied before */
        rec->outcome = TK_REC_SKIPPED;
        return 0;
    }
    int r = fold->add(f->state, &x->env, &x->prepared, f->spec->ud, &aerr);
    if (r == TK_APPLY_OK || r == TK_APPLY_SKIP) {
        tk_fold_keys_add(f->ids, id, NULL);
        rec->outcome = r == TK_APPLY_OK ? TK_REC_APPLIED : TK_REC_SKIPPED;
        return 0;
    }
    if (r == TK_APPLY_RETRY) {
        int64_t first_seen = tk_now_ms();
        snprintf(why, sizeof(why), "version gap: %s", aerr.message);
        if (hooks->gap(hooks->ud, m, &x->env, why, sizeof(why), &first_seen)) {
            rec->outcome = TK_REC_HELD;
            return 0;
        }
        rec->outcome = TK_REC_DEAD;
        return hooks->dead(hooks->ud, m, why, first_seen, err);
    }
    if (r > 0)
        tk_err_set(&aerr, TK_EINTERNAL, "", "apply returned %d", r);
    snprintf(why, sizeof(why), "apply failed: %s: %s", tk_err_name(r), aerr.message);
    rec->outcome = TK_REC_DEAD;
    return hooks->dead(hooks->ud, m, why, tk_now_ms(), err);
}

int tk_apply__fold_batch(tk_apply_fold_t *f, tk_rec_t *recs, int n, const tk_apply_hooks_t *hooks,
                         tk_err_t *err)
{
    if (n <= 0)
        return 0;
    const tk_projector_fold_t *fold = f->spec->fold;
    /* Reused: a fresh array of megabytes per batch costs page faults and heap consolidation. */
    f->batch = tk_mem_grow(f->batch, &f->capbatch, (size_t)n, sizeof(*f->batch));
    folded_t *x = f->batch;
    memset(x, 0, (size_t)n * sizeof(*x));
    fold_decode_all(f->spec, recs, x, n);
    /* Per-aggregate order, as in careful(): nothing of a held partition may pass its held
     * record. The held ones are listed (few: replay never holds), so a chunk of 100k records
     * costs no quadratic scan. */
    const rd_kafka_message_t **held = NULL;
    size_t nheld = 0, capheld = 0;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        recs[i].outcome = TK_REC_PENDING;
        recs[i].emitted = 0;
        bool skip = false;
        for (size_t j = 0; j < nheld && !skip; j++)
            skip = same_partition(held[j], recs[i].m);
        if (skip)
            continue;
        rc = fold_one(f, &recs[i], &x[i], hooks, err);
        if (rc == 0 && recs[i].outcome == TK_REC_HELD) {
            held = tk_mem_grow(held, &capheld, nheld + 1, sizeof(*held));
            held[nheld++] = recs[i].m;
        }
    }
    for (int i = 0; i < n; i++) {
        if (x[i].prepared != NULL)
            fold->release(x[i].prepared, f->spec->ud);
        ev_envelope_release(&x[i].env);
    }
    free(held);
    return rc;
}

int tk_apply__fold_write(tk_apply_fold_t *f, PGconn *c, bool final, tk_err_t *err)
{
    tk_tx_t tx;
    tk_tx__init(&tx, c, "");
    return f->spec->fold->write(f->state, &tx, final, f->spec->ud, err);
}
