/*
 * delay.c - stage 2 of the scheduler: read expiration.delay and publish expiration:complete for
 * each record when its dueAt has come.
 *
 * The delay topic is the timer wheel, and each assigned partition has a look-ahead window: every
 * record read is held there (its decoded fields, at most WINDOW_MAX per partition), due or not,
 * and fired from it exactly when due, in any order. Only a full window stops the reading:
 *
 *                 window full: pause_at() (pause, seek back to the record)
 *   +----------+ ------------------------------------------------------------> +----------+
 *   | reading  |                                                               |  paused  |
 *   |          | <------------------------------------------------------------ |          |
 *   +----------+  the window is at most half full: resume_due()                +----------+
 *     |     ^     (resume, seek to the record again: it is fetched once more)      |
 *     |     |                                                                      |
 *     +-----+ any record: hold() it in the window                                  |
 *                                                                                  |
 *   in both states: any held record is due -> fire_due() publishes expiration:complete and
 *   removes it (compact()); once the batch is acked, finish_batch() commits the offset of the
 *   window's first record still held (or the next record to read when none is).
 *
 * Why a look-ahead (DESIGN.md section 7). dueAt = created + EXPIRATION_WINDOW_SECONDS, so dueAt
 * grows along a partition only while the window stays the same. After the window is shortened
 * (900 s to 3 s), the new 3 s records sit behind 900 s ones; a stage firing strictly at the head
 * held them back up to 900 s. With the look-ahead they are read, held and fired on their dueAt,
 * whatever is in front of them, as long as fewer than WINDOW_MAX records of a longer window are
 * pending ahead of them in their partition (beyond that they wait for room, as before: late,
 * never early, never lost). A longer window keeps the order and needs none of this.
 *
 * Memory is O(partitions), never O(pending): per assigned partition one window of WINDOW_MAX
 * small records and a few counters. A partition whose window is full of far records holds those
 * and nothing more (the seek drops what was prefetched), so a million pending expirations cost a
 * million records on the broker's disk and WINDOW_MAX per partition here. What librdkafka
 * prefetches beyond (and drops at the pause) is bounded by delay_settings below.
 *
 * Crash safety: the group's committed offset of a partition never passes a record still held
 * (fire, wait for every report of the batch, then commit up to the first record not fired).
 * kill -9 at any point re-reads from a record that was not yet published or was published but
 * not committed: every due order still expires, some twice (records fired out of order behind an
 * unfired one are fired again after a restart). orders treats expiration:complete for a
 * cancelled or complete order as a no-op, so duplicates are harmless. (Each record of the delay
 * topic is there once: the intake writes it transactionally. This stage stays at-least-once: a
 * transactional expirations topic would put commit markers behind every batch, which each
 * consumer's lag and replay would have to know about.) A failed delivery ends this
 * life of the stage without committing; the caller restarts it. Nothing is ever fired before its
 * dueAt.
 *
 * Tiered delay topics would lift the WINDOW_MAX bound: expiration.delay.1m, .15m and .1h, each a
 * FIFO with one constant delay D (a record enqueued at t is due at t + D, so dueAt is
 * non-decreasing within each tier whatever the window); a head moves to the tier that fits the
 * time still left. One topic per tier and a produce per hop; not needed while window changes are
 * rare and a partition's pending count per window stays below WINDOW_MAX.
 *
 * Rebalance: assign marks partitions as ours (reading); revoke resumes the partitions we paused
 * (librdkafka keeps an application pause across unassign/assign), drops their windows and bumps
 * an epoch so records of a batch fired before the revoke are not committed by us; the next owner
 * starts from the committed offset and may fire them again (a duplicate). A batch is always
 * finished and committed before the next poll, so a revoke finds nothing fired and uncommitted.
 * A commit refused because the group is completing a rebalance is kept (p->unsaved): when the
 * partition is assigned to us again it resumes after the fired records, and the next commit
 * carries them; under the EAGER protocol a partition that went elsewhere forgets it.
 */
#include "expiration_int.h"

#include <stdio.h>
#include <string.h>

#include "ev_envelope.h"
#include "ev_expiration.h"
#include "tk/kafka.h"
#include "tk/log.h"
#include "tk/mem.h"

#define BATCH_MAX 1000 /* expiration:complete in flight before waiting for acks */
#define POLL_MS 500    /* longest sleep in poll: how often far heads are looked at */
#define SEEK_TIMEOUT_MS 10000
#define WINDOW_MAX 1024 /* records held per partition */
#define READ_MAX 4096   /* records read per loop turn, so timers are looked at often */
#define SKIP INT64_MIN  /* due_ms of a held record that cannot fire: skipped in order */

/* A record read and not yet fired: the decoded fields only. */
struct held {
    int64_t offset;
    int64_t due_ms; /* SKIP for an undecodable record: dead-lettered, then committed past */
    bool fired;     /* published in the current fire_due pass: compacted out at its end */
    char order_id[TK_UUID_LEN + 1];
    char correlation_id[64];
};

/* One partition of the delay topic, indexed by partition id. */
struct part {
    bool assigned;
    bool paused;       /* by us, until wake_ms */
    int64_t wake_ms;   /* while paused: when to resume */
    int64_t next;      /* offset of the next record to read (a resume seeks there); -1: unknown */
    int64_t reseek;    /* the offset last sought back to because of a gap, -1 for none */
    uint32_t epoch;    /* bumped on every assign and revoke */
    int64_t commit_to; /* scratch of finish_batch: offset to commit, -1 for none */
    int64_t committed; /* the offset this assignment last committed, -1 for none */
    int64_t unsaved;   /* fired up to here, but the commit was refused; -1 for none */
    struct held *win;  /* ring of WINDOW_MAX, allocated on first use */
    size_t first, count;
};

/* One record of the current batch whose offset may be committed once the batch is acked. */
struct done {
    int32_t partition;
    uint32_t epoch;
    int64_t offset;
    bool produced; /* false for a skipped record: no report to wait for */
    tk_kafka_delivery_t dr;
};

struct delay {
    const tk_expiration__cfg_t *cfg;
    rd_kafka_t *consumer;
    rd_kafka_t *producer;
    struct part *parts;
    int32_t nparts;
    int rebalance_failed; /* set by the callback when librdkafka refused an (un)assign */
    struct done batch[BATCH_MAX];
    size_t n;
};

static struct part *part_of(struct delay *d, int32_t partition)
{
    return partition >= 0 && partition < d->nparts ? &d->parts[partition] : NULL;
}

/* Make room for partition ids up to @p max (the topic's partitions are fixed: this grows once). */
static void parts_reserve(struct delay *d, int32_t max)
{
    if (max < d->nparts)
        return;
    struct part *p = tk_mem_zalloc(sizeof(*p) * (size_t)(max + 1));
    if (d->nparts > 0)
        memcpy(p, d->parts, sizeof(*p) * (size_t)d->nparts);
    free(d->parts);
    d->parts = p;
    d->nparts = max + 1;
}

static struct held *front(struct part *p)
{
    return p->count > 0 ? &p->win[p->first] : NULL;
}

/* Append to the window; the caller checked p->count < WINDOW_MAX. */
static struct held *hold(struct part *p)
{
    if (p->win == NULL)
        p->win = tk_mem_alloc(sizeof(*p->win) * WINDOW_MAX);
    struct held *h = &p->win[(p->first + p->count) % WINDOW_MAX];
    memset(h, 0, sizeof(*h));
    p->count++;
    return h;
}

/* A paused partition may resume when its head is near and its window has room for a fetch. */
static bool may_resume(const struct part *p, int64_t now)
{
    return p->assigned && p->paused && p->wake_ms <= now && p->count <= WINDOW_MAX / 2;
}

/* Remove the records fire_due marked fired, keeping the others in offset order. O(count). */
static void compact(struct part *p)
{
    size_t w = 0;
    for (size_t k = 0; k < p->count; k++) {
        struct held *h = &p->win[(p->first + k) % WINDOW_MAX];
        if (h->fired)
            continue;
        if (w != k)
            p->win[(p->first + w) % WINDOW_MAX] = *h;
        w++;
    }
    p->count = w;
}

/* The next moment something must happen: a held record due or a paused partition to wake. */
static int64_t next_event(const struct delay *d)
{
    int64_t next = INT64_MAX;
    for (int32_t i = 0; i < d->nparts; i++) {
        const struct part *p = &d->parts[i];
        if (!p->assigned)
            continue;
        for (size_t k = 0; k < p->count; k++) /* the window is not sorted by due: see handle */
            if (p->win[(p->first + k) % WINDOW_MAX].due_ms < next)
                next = p->win[(p->first + k) % WINDOW_MAX].due_ms;
        if (p->paused && p->count <= WINDOW_MAX / 2 && p->wake_ms < next)
            next = p->wake_ms;
    }
    return next;
}

/* How long the next poll may block: until the next event, at most POLL_MS. */
static int poll_timeout(const struct delay *d, int64_t now)
{
    int64_t next = next_event(d);
    if (next == INT64_MAX || next - now >= POLL_MS)
        return POLL_MS;
    return next <= now ? 0 : (int)(next - now);
}

/*
 * Seek every partition of @p list to its .offset and wait until the fetcher has taken the new
 * positions: librdkafka then never hands out a record fetched before the seek.
 */
static int seek_list(struct delay *d, rd_kafka_topic_partition_list_t *list, tk_err_t *err)
{
    return tk_kafka_seek(d->consumer, list, SEEK_TIMEOUT_MS, err);
}

/* Resume the partitions of @p list, all paused by us (never others: resuming a partition that
 * is not paused makes librdkafka 2.x refetch from an older position). */
static void resume_list(struct delay *d, rd_kafka_topic_partition_list_t *list)
{
    if (list->cnt == 0)
        return;
    rd_kafka_resume_partitions(d->consumer, list);
    for (int i = 0; i < list->cnt; i++)
        if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR)
            tk_log(TK_LOG_WARN, "expiration", "cannot resume a delay partition",
                   "\"partition\":%d,\"error\":\"%s\"", (int)list->elems[i].partition,
                   rd_kafka_err2str(list->elems[i].err));
}

/*
 * Resume every partition that may (may_resume), and seek it to its next record once more. The
 * position is already there (pause_at sought it); the second seek is what makes librdkafka 2.0
 * fetch at once: a bare resume is noticed by the fetcher only at its next wake-up, up to a second
 * later (measured).
 */
static int resume_due(struct delay *d, int64_t now, tk_err_t *err)
{
    int rc = 0;
    rd_kafka_topic_partition_list_t *list = NULL;
    for (int32_t i = 0; i < d->nparts; i++) {
        struct part *p = &d->parts[i];
        if (!may_resume(p, now))
            continue;
        if (list == NULL)
            list = rd_kafka_topic_partition_list_new(4);
        rd_kafka_topic_partition_list_add(list, d->cfg->delay_topic, i)->offset = p->next;
        p->paused = false;
    }
    if (list != NULL) {
        resume_list(d, list);
        rc = seek_list(d, list, err);
        rd_kafka_topic_partition_list_destroy(list);
    }
    return rc;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t code,
                         rd_kafka_topic_partition_list_t *list, void *opaque)
{
    struct delay *d = opaque;
    bool assign = code == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
    if (assign) {
        /* Eager: the whole new assignment, so what is not in it is not ours to save. */
        if (!tk_kafka_cooperative(rk))
            for (int32_t i = 0; i < d->nparts; i++)
                if (rd_kafka_topic_partition_list_find(list, d->cfg->delay_topic, i) == NULL)
                    d->parts[i].unsaved = -1;
        for (int i = 0; i < list->cnt; i++) {
            int32_t old = d->nparts;
            parts_reserve(d, list->elems[i].partition);
            for (int32_t j = old; j < d->nparts; j++)
                d->parts[j].unsaved = -1;
            struct part *p = &d->parts[list->elems[i].partition];
            if (p->unsaved >= 0)
                list->elems[i].offset = p->unsaved; /* resume after what was fired */
            p->assigned = true;
            p->paused = false;
            p->next = -1;
            p->reseek = -1;
            p->committed = -1;
            p->first = p->count = 0;
            p->epoch++;
        }
    } else {
        /* Revoked or lost: resume what we paused, forget the windows and wake-up times. */
        rd_kafka_topic_partition_list_t *paused = rd_kafka_topic_partition_list_new(4);
        for (int i = 0; i < list->cnt; i++) {
            struct part *p = part_of(d, list->elems[i].partition);
            if (p == NULL)
                continue;
            if (p->assigned && p->paused)
                rd_kafka_topic_partition_list_add(paused, d->cfg->delay_topic,
                                                  list->elems[i].partition);
            p->assigned = false;
            p->paused = false;
            p->first = p->count = 0;
            free(p->win);
            p->win = NULL;
            p->epoch++;
        }
        resume_list(d, paused);
        rd_kafka_topic_partition_list_destroy(paused);
    }
    tk_err_t why = {0};
    if (tk_kafka_rebalance_apply(rk, assign, list, &why) != 0) {
        tk_log(TK_LOG_ERROR, "expiration", "delay (un)assign refused", "\"error\":\"%s\"",
               why.message);
        d->rebalance_failed = 1;
    }
}

/* Stop reading @p p at @p offset until @p wake_ms: pause first, then seek back (in this order:
 * librdkafka 2.0 forgets a seek done before a pause). */
static int pause_at(struct delay *d, int32_t partition, int64_t offset, int64_t wake_ms,
                    tk_err_t *err)
{
    int rc = 0;
    struct part *p = &d->parts[partition];
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_t *tp =
        rd_kafka_topic_partition_list_add(list, d->cfg->delay_topic, partition);

    rd_kafka_pause_partitions(d->consumer, list);
    if (tp->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = tk_err_set(err, TK_EINTERNAL, d->cfg->delay_topic, "pause partition %d: %s",
                        (int)partition, rd_kafka_err2str(tp->err));
        goto out;
    }
    p->paused = true;
    p->wake_ms = wake_ms;
    p->next = offset;
    tp->offset = offset;
    rc = seek_list(d, list, err);
out:
    rd_kafka_topic_partition_list_destroy(list);
    return rc;
}

/* One record of the delay topic: hold it in the window, or pause in front of it. */
static int handle(struct delay *d, const rd_kafka_message_t *m, tk_err_t *err)
{
    tk_expiration_record_t rec;
    tk_err_t why = {0};
    struct part *p = part_of(d, m->partition);

    /* A record of a partition we no longer own, or prefetched before a pause: the seek brings
     * it back in order. */
    if (p == NULL || !p->assigned || p->paused)
        return 0;
    if (p->next >= 0 && m->offset < p->next)
        return 0; /* handled already: a stale copy */
    if (p->next >= 0 && m->offset > p->next && p->reseek != p->next) {
        /* A record would be skipped. librdkafka's seek promises this cannot happen; if it does,
         * go back for the missing record once, and accept the gap only if it is really in the
         * log. It is, after every batch of the intake: each of its transactions leaves a commit
         * marker (an offset with no record), so this costs one seek and fetch per marker and is
         * not worth a warning. */
        tk_log(TK_LOG_DEBUG, "expiration", "offset gap in a delay partition, seeking back",
               "\"partition\":%d,\"expected\":%lld,\"got\":%lld", (int)m->partition,
               (long long)p->next, (long long)m->offset);
        p->reseek = p->next;
        rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(list, d->cfg->delay_topic, m->partition)->offset =
            p->next;
        int rc = seek_list(d, list, err);
        rd_kafka_topic_partition_list_destroy(list);
        return rc;
    }

    int64_t due = SKIP, now = tk_now_ms();
    if (tk_expiration_record_decode(m->payload, m->len, &rec, &why) == 0)
        due = rec.due_ms;
    /* Every record is held, due or not (the look-ahead): a record due sooner than those in
     * front of it (a shorter window) fires on time. Only a full window stops the reading. */
    if (p->count == WINDOW_MAX)
        return pause_at(d, m->partition, m->offset, now, err); /* resumes when room is made */
    if (due == SKIP) {
        /* Dead-lettered (acked) before it is held: it is then committed past in order. */
        char reason[600];
        snprintf(reason, sizeof(reason), "undecodable delay record: %s %s", why.field, why.message);
        int rc = tk_expiration__dead_letter(d->cfg, d->producer, m, reason, err);
        if (rc != 0)
            return rc;
        memset(&rec, 0, sizeof(rec));
    }
    struct held *h = hold(p);
    h->offset = m->offset;
    h->due_ms = due;
    h->fired = false;
    memcpy(h->order_id, rec.order_id, sizeof(h->order_id));
    memcpy(h->correlation_id, rec.correlation_id, sizeof(h->correlation_id));
    p->next = m->offset + 1;
    return 0;
}

/*
 * Publish expiration:complete for @p h into the delivery slot @p slot.
 * @return 0 when enqueued; 1 when the record cannot give a valid event (logged; the caller
 *         skips it); a negative error when the producer refused it.
 */
static int fire(struct delay *d, const struct held *h, struct done *slot, tk_err_t *err)
{
    int rc = 0;
    ev_envelope_t env = {0};
    ev_expiration_complete_t ev = {{0}};
    char *payload = NULL;
    size_t len = 0;
    rd_kafka_headers_t *headers = NULL;
    char schemaversion[16];
    tk_err_t why = {0};

    memcpy(ev.order_id, h->order_id, sizeof(ev.order_id));
    if (ev_envelope_init(&env, "expiration:complete", h->order_id, 0, h->correlation_id,
                         ev_expiration_complete_to_json(&ev), &why) != 0 ||
        ev_envelope_encode(&env, &payload, &len, &why) != 0) {
        tk_log(TK_LOG_WARN, "expiration", "delay record gives no valid event, skipped",
               "\"field\":\"%s\"", why.field);
        rc = 1;
        goto out;
    }
    snprintf(schemaversion, sizeof(schemaversion), "%d", ev_envelope_schema_version(&env));
    headers = tk_kafka_headers_new(env.type, env.id, schemaversion);
    memset(&slot->dr, 0, sizeof(slot->dr));
    rc = tk_kafka_produce(d->producer, d->cfg->expirations_topic, h->order_id, payload, len,
                          headers, &slot->dr, err);
out:
    if (headers != NULL)
        rd_kafka_headers_destroy(headers);
    free(payload);
    ev_envelope_release(&env);
    return rc;
}

/* Fire every held record due at @p now (until the batch is full): in offset order among the
 * due ones, whatever not-yet-due records are in front of them. */
static int fire_due(struct delay *d, int64_t now, tk_err_t *err)
{
    int rc = 0;
    for (int32_t i = 0; i < d->nparts && rc == 0; i++) {
        struct part *p = &d->parts[i];
        if (!p->assigned || p->count == 0)
            continue;
        for (size_t k = 0; k < p->count && d->n < BATCH_MAX; k++) {
            struct held *h = &p->win[(p->first + k) % WINDOW_MAX];
            if (h->due_ms > now)
                continue;
            struct done *slot = &d->batch[d->n];
            *slot = (struct done){.partition = i, .epoch = p->epoch, .offset = h->offset};
            if (h->due_ms != SKIP) {
                if ((rc = fire(d, h, slot, err)) < 0)
                    break;
                slot->produced = rc == 0;
                rc = 0;
            }
            h->fired = true;
            d->n++;
        }
        compact(p);
    }
    return rc < 0 ? rc : 0;
}

/*
 * The next offset to read of partition @p i, whose window is empty: p->next, or past it when the
 * consumer's position moved beyond it over what is not a record to hold. The intake writes the
 * delay topic in transactions, so a commit marker (and an aborted batch, hidden by
 * read_committed) follows the records; committing past it keeps the group's lag at 0 when
 * nothing is pending (`ticketing status`). Only while the partition is read normally: a paused
 * partition or a pending seek back over a gap has a position that means nothing.
 */
static int64_t read_to(struct delay *d, int32_t i)
{
    struct part *p = &d->parts[i];
    if (p->paused || p->next < 0 || p->reseek == p->next)
        return p->next;
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_t *tp =
        rd_kafka_topic_partition_list_add(list, d->cfg->delay_topic, i);
    int64_t to = p->next;
    if (rd_kafka_position(d->consumer, list) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        tp->err == RD_KAFKA_RESP_ERR_NO_ERROR && tp->offset > to)
        to = tp->offset;
    rd_kafka_topic_partition_list_destroy(list);
    return to;
}

/*
 * Wait for every report of the batch (each enqueued record gets exactly one within
 * message.timeout.ms), then commit per partition the offset after its last fired record,
 * unless the partition was revoked meanwhile. A failed report fails the batch: nothing is
 * committed and the caller restarts the stage, re-reading from the committed offsets.
 */
static int finish_batch(struct delay *d, bool commit, tk_err_t *err)
{
    int rc = 0;
    size_t failed = 0;
    rd_kafka_resp_err_t first = RD_KAFKA_RESP_ERR_NO_ERROR;
    rd_kafka_topic_partition_list_t *offsets = NULL;

    for (size_t i = 0; i < d->n; i++) {
        while (d->batch[i].produced && !d->batch[i].dr.done)
            rd_kafka_poll(d->producer, 50);
        if (d->batch[i].produced && d->batch[i].dr.err != RD_KAFKA_RESP_ERR_NO_ERROR &&
            failed++ == 0)
            first = d->batch[i].dr.err;
    }
    if (failed > 0) {
        rc = tk_err_set(err, TK_EUNAVAIL, d->cfg->expirations_topic,
                        "%zu expiration:complete were not acked: %s", failed,
                        rd_kafka_err2str(first));
        goto out;
    }
    if (!commit)
        goto out;
    if (d->cfg->before_commit != NULL) {
        bool produced = false;
        for (size_t i = 0; i < d->n && !produced; i++)
            produced = d->batch[i].produced;
        if (produced)
            d->cfg->before_commit("delay", d->cfg->before_commit_ud);
    }
    for (int32_t i = 0; i < d->nparts; i++)
        d->parts[i].commit_to = d->parts[i].assigned ? d->parts[i].unsaved : -1;
    /* A refused commit is tried again (above); a partition of this batch commits up to its
     * window's first held (unfired) record or, with an empty window, the next record to read.
     * Everything below it was fired and acked (in this batch or an earlier one). */
    for (size_t i = 0; i < d->n; i++) {
        struct part *p = part_of(d, d->batch[i].partition);
        if (p != NULL && p->assigned && p->epoch == d->batch[i].epoch)
            p->commit_to = p->count > 0 ? front(p)->offset : read_to(d, d->batch[i].partition);
    }
    /* A partition with nothing held whose position moved past a marker that arrived after its
     * last batch was committed: commit past it too (once), or its lag would stay above 0. */
    for (int32_t i = 0; i < d->nparts; i++) {
        struct part *p = &d->parts[i];
        if (p->assigned && p->commit_to < 0 && p->count == 0 && p->next >= 0) {
            int64_t to = read_to(d, i);
            if (to > p->next && to > p->committed)
                p->commit_to = to;
        }
    }
    offsets = rd_kafka_topic_partition_list_new(8);
    for (int32_t i = 0; i < d->nparts; i++)
        if (d->parts[i].commit_to >= 0)
            rd_kafka_topic_partition_list_add(offsets, d->cfg->delay_topic, i)->offset =
                d->parts[i].commit_to;
    if (offsets->cnt > 0) {
        rd_kafka_resp_err_t e = rd_kafka_commit(d->consumer, offsets, 0);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
            tk_log(TK_LOG_WARN, "expiration", "delay commit refused, kept for the next one",
                   "\"error\":\"%s\"", rd_kafka_err2str(e));
        for (int i = 0; i < offsets->cnt; i++) {
            struct part *p = part_of(d, offsets->elems[i].partition);
            if (p == NULL)
                continue;
            p->unsaved = e != RD_KAFKA_RESP_ERR_NO_ERROR ? offsets->elems[i].offset : -1;
            if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
                p->committed = offsets->elems[i].offset;
        }
    }
out:
    if (offsets != NULL)
        rd_kafka_topic_partition_list_destroy(offsets);
    d->n = 0;
    return rc;
}

/* One turn: wake partitions, read what arrived, fire what is due, wait for acks, commit. */
static int turn(struct delay *d, tk_err_t *err)
{
    int rc = 0;
    int64_t now = tk_now_ms();
    if ((rc = resume_due(d, now, err)) != 0)
        return rc;
    rd_kafka_message_t *m = rd_kafka_consumer_poll(d->consumer, poll_timeout(d, now));
    for (int read = 0; m != NULL; read++) {
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
            rc = handle(d, m, err);
        /* A dead consumer (a fenced static member) sets rc: this life ends, the next one has a
         * new consumer. */
        else if ((rc = tk_kafka_consumer_dead(d->consumer, m, err)) == 0 &&
                 m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            tk_log(TK_LOG_WARN, "expiration", "delay consumer error", "\"error\":\"%s\"",
                   rd_kafka_message_errstr(m));
        rd_kafka_message_destroy(m);
        if (rc != 0 || read == READ_MAX)
            break;
        m = rd_kafka_consumer_poll(d->consumer, 0);
    }
    if (rc == 0)
        rc = fire_due(d, tk_now_ms(), err);
    if (rc != 0) {
        tk_err_t ignored = {0};
        finish_batch(d, false, &ignored);
        return rc;
    }
    return finish_batch(d, true, err);
}

/*
 * The delay consumer's own librdkafka settings. By default librdkafka prefetches up to 64 MiB or
 * 100,000 records per consumer and 1 MiB per partition per fetch: with a large backlog behind
 * the heads, that prefetch, thrown away at every pause, makes the process's memory follow the
 * pending count up to those limits. A window needs at most WINDOW_MAX records per partition.
 */
static const char *const delay_settings[] = {"queued.max.messages.kbytes",
                                             "4096",
                                             "queued.min.messages",
                                             "10000",
                                             "max.partition.fetch.bytes",
                                             "262144",
                                             "fetch.max.bytes",
                                             "1048576",
                                             NULL};

int tk_expiration__delay_run(const tk_expiration__cfg_t *cfg, volatile int *stop, tk_err_t *err)
{
    int rc = 0;
    struct delay *d = tk_mem_zalloc(sizeof(*d));

    d->cfg = cfg;
    if ((d->producer = tk_expiration__producer_new(NULL, cfg->expirations_topic, cfg->delay_topic,
                                                   err)) == NULL ||
        (d->consumer = tk_kafka_consumer_new_tuned(cfg->delay_group, on_rebalance, d,
                                                   delay_settings, err)) == NULL) {
        rc = err != NULL && err->code != 0 ? err->code : TK_EINTERNAL;
        goto out;
    }
    if ((rc = tk_kafka_subscribe(d->consumer, cfg->delay_topic, err)) != 0)
        goto out;
    while (!*stop) {
        if ((rc = turn(d, err)) != 0)
            goto out;
        char why[256];
        if (rd_kafka_fatal_error(d->producer, why, sizeof(why)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rc = tk_err_set(err, TK_EUNAVAIL, "", "delay producer failed: %s", why);
            goto out;
        }
        if (d->rebalance_failed) {
            rc = tk_err_set(err, TK_EINTERNAL, cfg->delay_topic, "delay rebalance failed");
            goto out;
        }
    }
out:
    if (d->consumer != NULL) {
        rd_kafka_consumer_close(d->consumer); /* runs on_rebalance (revoke) */
        rd_kafka_destroy(d->consumer);
    }
    if (d->producer != NULL) {
        rd_kafka_flush(d->producer, 10000);
        rd_kafka_destroy(d->producer);
    }
    for (int32_t i = 0; i < d->nparts; i++)
        free(d->parts[i].win);
    free(d->parts);
    free(d);
    return rc;
}
