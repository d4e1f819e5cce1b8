/*
 * relay.c - the outbox relay: committed outbox rows -> Kafka -> DELETE.
 *
 *   tk_relay_run:
 *     DISCONNECTED --ensure_conn--> CONNECTED --ensure_lock (pg_try_advisory_lock)--> ACTIVE
 *          ^                           |  ^ lock held by another relay:                 |
 *          |                           |  +-- STANDBY, retry every second --------------+
 *          +-------- connection lost (the server releases the lock with the session) ---+
 *     ACTIVE: LISTEN outbox; loop { drain; wait for a NOTIFY or 1 s (poll on PQsocket) }
 *
 *   drain: SELECT committed rows ORDER BY id LIMIT 500 -> produce each (key = aggregate id,
 *          headers) -> wait for every delivery report -> DELETE the acked prefix by id ->
 *          repeat while batches are full. A failed delivery stops the drain; its row and every
 *          later row of the batch stay and are retried after a backoff.
 *
 * Why no cursor, and why a late commit is never skipped: ids come from a sequence when a row is
 * inserted, not when its transaction commits, so transaction A can take id 10, B take id 11, and B
 * commit first. A relay that remembered "published up to 11" and then read "id > 11" would never
 * see A's row 10 once A commits: the gap bug Marten is known for. This relay keeps no position at
 * all: the table itself is the queue, a row leaves it only when the broker acked it, and every
 * scan starts at the smallest id still present. When A commits late, its row is simply in the
 * table at the next scan (which A's own NOTIFY triggers) and is published then.
 *
 * Why deletes are by exact id: "DELETE ... WHERE id <= max acked" would delete a row that
 * committed after the SELECT with a lower id, unpublished. Only rows whose delivery report said
 * "acked" are deleted.
 *
 * Why per-aggregate order still holds: the events of one aggregate are written by transactions
 * that the optimistic check (`UPDATE ... WHERE id = $1 AND version = $2`) serialises: a
 * transaction writing version v+1 must have read version v, i.e. started its read after the writer
 * of v committed, so it draws its outbox ids after that writer's ids and commits after it. Any
 * scan that sees the later row therefore also sees the earlier one (or it was already published),
 * and ORDER BY id sends them in that order; key = aggregate id puts both in one partition, and the
 * idempotent producer keeps a partition's order across retries. If a delivery fails, only the
 * acked rows before the first failure are deleted: acked rows after it stay and are sent again
 * after the failed one, so the last copy a consumer sees of an aggregate's events is in order
 * (consumers skip the duplicates by version or event id).
 *
 * A row Kafka refuses for good (too large, an invalid record or topic name: permanent() below)
 * would block its context's relay forever, since the drain always starts at the smallest id.
 * It is dead-lettered instead: copied to dead_letters (projection "relay", partition -1, offset =
 * its outbox id; `ticketing status` counts it, an error line with "alert" is logged) and deleted
 * with the acked rows. Consumers of that aggregate then see a version gap, which they wait for
 * and dead-letter in turn: visible, never silent.
 *
 * Crash between ack and delete: the rows are still in the table and are published again by the
 * next active relay. Duplicates are allowed (consumers dedupe), loss is not. Tests simulate it with
 * TK_FAULT_RELAY_EXIT_AFTER_ACK=1 (see tk/relay.h), which _exit(137)s after the acks and before
 * the DELETE.
 *
 * One active relay per database: a session-level advisory lock on the relay's own connection.
 * Standbys retry every second; when the active relay dies its session ends and the lock with it.
 *
 * Takeover check (issue 17: every accepted command's events on Kafka exactly once, also through a
 * relay's kill -9). A relay that has just taken the lock first looks whether the rows at the head
 * of the outbox are already on Kafka: the relay before it may have died between the broker's ack
 * and its DELETE. Those rows are at most one batch (BATCH_ROWS, read from the head as this relay
 * reads), and only this database's relays write their topics, so their copies, if any, are among
 * the last BATCH_ROWS records of each partition of those topics. A row found there, byte for byte
 * (topic, key, payload: every payload carries its own event id), is deleted instead of being
 * published again. When Kafka cannot be read the check fails and is retried with the drain:
 * nothing is published meanwhile (late rather than twice). The crash test
 * (TK_FAULT_RELAY_EXIT_AFTER_ACK) checks that the restarted relay publishes nothing twice.
 * Limit: a produce request still in flight when the relay is killed can be appended after the
 * check; that record then appears twice (consumers dedupe). A transactional producer shared by
 * the database's relays would close that gap (its init fences and aborts the dead one's batch).
 */
#include "tk/relay.h"

#include <jansson.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tk/backoff.h"
#include "tk/cfg.h"
#include "tk/ids.h"
#include "tk/kafka.h"
#include "tk/log.h"
#include "tk/mem.h"
#include "tk/pg.h"
#include "tx_int.h"

#define BATCH_ROWS 500
#define STR_(x) #x
#define STR(x) STR_(x)
#define RELAY_LOCK "7605298350474201666" /* arbitrary 64-bit key, one per database */
#define WAIT_MS 1000

struct tk_relay {
    char context[32];
    PGconn *conn;         /* holds the advisory lock and LISTENs; NULL when disconnected */
    rd_kafka_t *producer; /* from tk_kafka_producer_new */
    bool locked;          /* this session holds RELAY_LOCK */
    bool verify;          /* lock just taken: run the takeover check before publishing */
    bool fault_exit_after_ack;
};

tk_relay_t *tk_relay_new(const char *context, tk_err_t *err)
{
    const char *keys[3], *vals[3];
    if (context == NULL || strlen(context) >= sizeof(((tk_relay_t *)0)->context) ||
        tk_cfg_pg_params(context, keys, vals) != 0) {
        tk_err_set(err, TK_EINVAL, "context", "unknown context '%s'", context ? context : "");
        return NULL;
    }
    tk_relay_t *r = tk_mem_zalloc(sizeof(*r));
    snprintf(r->context, sizeof(r->context), "%s", context);
    const char *fault = getenv("TK_FAULT_RELAY_EXIT_AFTER_ACK");
    r->fault_exit_after_ack = fault != NULL && strcmp(fault, "1") == 0;
    if ((r->producer = tk_kafka_producer_new(err)) == NULL) {
        free(r);
        return NULL;
    }
    return r;
}

void tk_relay_free(tk_relay_t *r)
{
    if (r == NULL)
        return;
    if (r->producer) {
        rd_kafka_flush(r->producer, 5000);
        rd_kafka_destroy(r->producer);
    }
    /* Unlock explicitly: PQfinish alone releases the lock only once the backend has exited,
     * which a standby could observe a few milliseconds late. */
    if (r->locked && !tk_pg_broken(r->conn))
        tk_pg_run(r->conn, "SELECT pg_advisory_unlock(" RELAY_LOCK ")", 0, NULL, NULL, NULL);
    PQfinish(r->conn);
    free(r);
}

static int ensure_conn(tk_relay_t *r, tk_err_t *err)
{
    if (tk_pg_broken(r->conn))
        r->locked = false; /* the lock, if held, goes with the session */
    return tk_pg_ensure(&r->conn, r->context, err);
}

/* Take the relay lock if this session does not hold it yet; LISTEN once it does. */
static int ensure_lock(tk_relay_t *r, tk_err_t *err)
{
    if (r->locked)
        return 0;
    PGresult *res =
        tk_pg_exec(r->conn, "SELECT pg_try_advisory_lock(" RELAY_LOCK ")", 0, NULL, err);
    if (res == NULL)
        return err ? err->code : TK_EUNAVAIL;
    bool got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (!got)
        return tk_err_set(err, TK_ECONFLICT, "", "standby: another relay is active on %s",
                          r->context);
    int rc = tk_pg_run(r->conn, "LISTEN " TK_TX_OUTBOX_CHANNEL, 0, NULL, NULL, err);
    /* The relay's DELETEs need not wait for their WAL flush: a delete PostgreSQL loses in a crash
     * leaves acked rows that are published again, which the takeover check and the consumers'
     * dedupe already cover (duplicates, never loss), and the drain's next batch goes sooner. */
    if (rc == 0)
        rc = tk_pg_run(r->conn, "SET synchronous_commit TO off", 0, NULL, NULL, err);
    if (rc != 0)
        return rc;
    r->locked = true;
    r->verify = true;
    return 0;
}

/* ---- takeover check -------------------------------------------------------------------------- */

#define TAKEOVER_TIMEOUT_MS 15000
#define TAKEOVER_TOPICS 16

/* A record seen at the tail of a topic: its hash, and a copy to compare on a hash match. */
struct seen {
    uint64_t hash;
    char *rec; /* topic \0 key \0 payload */
    size_t len;
};

struct seen_set {
    struct seen *v;
    size_t n, cap;
};

/* FNV-1a over topic \0 key \0 payload, written into *out (owned, malloc) when out != NULL. */
static uint64_t rec_hash(const char *topic, const void *key, size_t klen, const void *val,
                         size_t vlen, char **out, size_t *outlen)
{
    size_t tlen = strlen(topic), len = tlen + 1 + klen + 1 + vlen;
    char *b = tk_mem_alloc(len);
    memcpy(b, topic, tlen + 1);
    if (klen > 0)
        memcpy(b + tlen + 1, key, klen);
    b[tlen + 1 + klen] = '\0';
    if (vlen > 0)
        memcpy(b + tlen + 2 + klen, val, vlen);
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)b[i]) * 1099511628211ULL;
    if (out != NULL) {
        *out = b;
        *outlen = len;
    } else {
        free(b);
    }
    return h;
}

static int seen_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct seen *)a)->hash, y = ((const struct seen *)b)->hash;
    return x < y ? -1 : x > y;
}

static bool seen_has(const struct seen_set *s, const char *topic, const char *key, size_t klen,
                     const char *val, size_t vlen)
{
    char *b = NULL;
    size_t len = 0;
    struct seen probe = {.hash = rec_hash(topic, key, klen, val, vlen, &b, &len)};
    bool found = false;
    struct seen *hit = s->n ? bsearch(&probe, s->v, s->n, sizeof(*s->v), seen_cmp) : NULL;
    if (hit != NULL) {
        while (hit > s->v && hit[-1].hash == probe.hash)
            hit--;
        for (; hit < s->v + s->n && hit->hash == probe.hash && !found; hit++)
            found = hit->len == len && memcmp(hit->rec, b, len) == 0;
    }
    free(b);
    return found;
}

/* Add the last BATCH_ROWS records of every partition of @p topic to @p s. */
static int tail_collect(tk_relay_t *r, const char *topic, struct seen_set *s, tk_err_t *err)
{
    int rc = 0;
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(r->producer, topic, NULL);
    rd_kafka_t *c = NULL;
    rd_kafka_topic_partition_list_t *list = NULL;
    int64_t *end = NULL;
    int remaining = 0;

    rd_kafka_resp_err_t e = rd_kafka_metadata(r->producer, 0, rkt, &md, TAKEOVER_TIMEOUT_MS);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1 || md->topics[0].err) {
        rc = tk_err_set(err, TK_EUNAVAIL, topic, "takeover check: no metadata for %s: %s", topic,
                        rd_kafka_err2str(e ? e : md->topics[0].err));
        goto out;
    }
    int parts = md->topics[0].partition_cnt;
    if ((c = tk_kafka_consumer_new("relay.takeover", err)) == NULL) {
        rc = TK_EINTERNAL;
        goto out;
    }
    end = tk_mem_zalloc(sizeof(*end) * (size_t)(parts > 0 ? parts : 1));
    list = rd_kafka_topic_partition_list_new(parts > 0 ? parts : 1);
    for (int p = 0; p < parts; p++) {
        int64_t lo = 0, hi = 0;
        e = rd_kafka_query_watermark_offsets(c, topic, p, &lo, &hi, TAKEOVER_TIMEOUT_MS);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rc = tk_err_set(err, TK_EUNAVAIL, topic, "takeover check: offsets of %s[%d]: %s", topic,
                            p, rd_kafka_err2str(e));
            goto out;
        }
        end[p] = hi;
        if (hi > lo) {
            rd_kafka_topic_partition_list_add(list, topic, p)->offset =
                hi - lo > BATCH_ROWS ? hi - BATCH_ROWS : lo;
            remaining++;
        }
    }
    if (remaining == 0)
        goto out;
    if ((e = rd_kafka_assign(c, list)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc =
            tk_err_set(err, TK_EINTERNAL, topic, "takeover check: assign: %s", rd_kafka_err2str(e));
        goto out;
    }
    /* Room for every record asked for: at most BATCH_ROWS per partition read. */
    size_t need = s->n + (size_t)remaining * BATCH_ROWS;
    if (need > s->cap) {
        struct seen *v = tk_mem_alloc(need * sizeof(*v));
        if (s->n > 0)
            memcpy(v, s->v, s->n * sizeof(*v));
        free(s->v);
        s->v = v;
        s->cap = need;
    }
    int64_t deadline = tk_mono_ms() + TAKEOVER_TIMEOUT_MS;
    while (remaining > 0) {
        if (tk_mono_ms() >= deadline) {
            rc = tk_err_set(err, TK_EUNAVAIL, topic, "takeover check: %s not read within %d ms",
                            topic, TAKEOVER_TIMEOUT_MS);
            goto out;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(c, 200);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->partition >= 0 && m->partition < parts &&
            m->offset < end[m->partition] && s->n < s->cap) {
            struct seen *x = &s->v[s->n++];
            x->hash = rec_hash(topic, m->key, m->key_len, m->payload, m->len, &x->rec, &x->len);
            if (m->offset + 1 >= end[m->partition]) {
                end[m->partition] = -1; /* done: later records are this relay's own */
                remaining--;
            }
        }
        rd_kafka_message_destroy(m);
    }
out:
    if (c != NULL) {
        rd_kafka_consumer_close(c);
        rd_kafka_destroy(c);
    }
    if (list != NULL)
        rd_kafka_topic_partition_list_destroy(list);
    free(end);
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return rc;
}

/* The takeover check (see the top of this file): delete head rows that are already on Kafka. */
static int skip_published(tk_relay_t *r, tk_err_t *err)
{
    int rc = 0, n = 0, found = 0;
    struct seen_set s = {0};
    const char *topics[TAKEOVER_TOPICS];
    int ntopics = 0;
    char *ids = NULL;
    PGresult *res = tk_pg_exec(r->conn,
                               "SELECT id, topic, key, payload FROM outbox ORDER BY id "
                               "LIMIT " STR(BATCH_ROWS),
                               0, NULL, err);
    if (res == NULL)
        return err ? err->code : TK_EUNAVAIL;
    n = PQntuples(res);
    for (int i = 0; i < n && rc == 0; i++) {
        const char *t = PQgetvalue(res, i, 1);
        int k = 0;
        while (k < ntopics && strcmp(topics[k], t) != 0)
            k++;
        if (k < ntopics)
            continue;
        if (ntopics == TAKEOVER_TOPICS) {
            rc = tk_err_set(err, TK_EINTERNAL, t, "takeover check: more than %d topics",
                            TAKEOVER_TOPICS);
            break;
        }
        topics[ntopics++] = t;
        rc = tail_collect(r, t, &s, err);
    }
    if (rc != 0 || n == 0)
        goto out;
    if (s.n > 0) /* qsort's array must not be NULL, even for 0 elements (UBSan) */
        qsort(s.v, s.n, sizeof(*s.v), seen_cmp);
    size_t cap = (size_t)n * 21 + 3, len = 0;
    ids = tk_mem_alloc(cap);
    ids[len++] = '{';
    for (int i = 0; i < n; i++) {
        if (!seen_has(&s, PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
                      (size_t)PQgetlength(res, i, 2), PQgetvalue(res, i, 3),
                      (size_t)PQgetlength(res, i, 3)))
            continue;
        /* An id is at most 20 digits: with its comma it always fits in cap. */
        int w = snprintf(ids + len, cap - len, "%s%s", found++ ? "," : "", PQgetvalue(res, i, 0));
        if (w > 0 && (size_t)w < cap - len)
            len += (size_t)w;
    }
    ids[len++] = '}';
    ids[len] = '\0';
    if (found > 0) {
        const char *params[] = {ids};
        rc = tk_pg_run(r->conn, "DELETE FROM outbox WHERE id = ANY($1::bigint[])", 1, params, NULL,
                       err);
        if (rc == 0)
            tk_log(TK_LOG_INFO, "relay", "takeover: rows already on Kafka deleted, not republished",
                   "\"context\":\"%s\",\"count\":%d", r->context, found);
    }
out:
    for (size_t i = 0; i < s.n; i++)
        free(s.v[i].rec);
    free(s.v);
    free(ids);
    PQclear(res);
    return rc;
}

/* Swallow queued notifications; true when there was at least one. */
static bool drain_notifies(PGconn *c)
{
    bool any = false;
    PGnotify *n;
    PQconsumeInput(c);
    while ((n = PQnotifies(c)) != NULL) {
        any = true;
        PQfreemem(n);
    }
    return any;
}

/* Headers stored as a JSON object of strings; anything else gives no headers (logged). */
static rd_kafka_headers_t *headers_from_json(const char *text, int64_t id)
{
    json_error_t jerr;
    json_t *o = json_loads(text, 0, &jerr);
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    const char *k;
    json_t *v;
    if (!json_is_object(o))
        tk_log(TK_LOG_WARN, "relay", "outbox row has invalid headers", "\"id\":%lld",
               (long long)id);
    json_object_foreach(o, k, v)
    {
        if (json_is_string(v))
            rd_kafka_header_add(h, k, -1, json_string_value(v), -1);
    }
    json_decref(o);
    return h;
}

/* Refusals that no retry can turn into an ack. */
static bool permanent(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG_SIZE:
    case RD_KAFKA_RESP_ERR_INVALID_MSG:
    case RD_KAFKA_RESP_ERR_RECORD_LIST_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_INVALID_RECORD:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
        return true;
    default:
        return false;
    }
}

/* Copy outbox row @p id to dead_letters (idempotent: a repeat after a crash changes nothing). */
static int dead_letter(tk_relay_t *r, const char *id, rd_kafka_resp_err_t e, tk_err_t *err)
{
    char why[160];
    snprintf(why, sizeof(why), "refused by Kafka: %s", rd_kafka_err2str(e));
    const char *params[] = {id, why};
    int rc = tk_pg_run(r->conn,
                       "INSERT INTO dead_letters (projection, topic, partition, \"offset\", key, "
                       "payload, error) SELECT 'relay', topic, -1, id, convert_to(key, 'UTF8'), "
                       "convert_to(payload, 'UTF8'), $2 FROM outbox WHERE id = $1::bigint "
                       "ON CONFLICT DO NOTHING",
                       2, params, NULL, err);
    if (rc == 0)
        tk_log(TK_LOG_ERROR, "relay", "outbox row dead-lettered",
               "\"context\":\"%s\",\"id\":%s,\"error\":\"%s\",\"alert\":\"outbox_dead_letter\"",
               r->context, id, rd_kafka_err2str(e));
    return rc;
}

/* The producer reported a fatal (idempotence) error: it must be replaced. */
static int renew_producer_if_fatal(tk_relay_t *r, tk_err_t *err)
{
    char why[256];
    if (rd_kafka_fatal_error(r->producer, why, sizeof(why)) == RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    tk_log(TK_LOG_ERROR, "relay", why, "\"context\":\"%s\",\"note\":\"producer recreated\"",
           r->context);
    rd_kafka_destroy(r->producer);
    r->producer = tk_kafka_producer_new(err); /* NULL is retried by the next drain */
    return r->producer ? 0 : (err ? err->code : TK_EINTERNAL);
}

/*
 * One batch: publish up to BATCH_ROWS rows, delete the acked prefix. *more is true when the batch
 * was full (more rows may be waiting). Returns TK_EUNAVAIL when a delivery failed.
 */
static int publish_batch(tk_relay_t *r, int *published, bool *more, tk_err_t *err)
{
    int rc = 0, n = 0, enqueued = 0, acked = 0;
    tk_kafka_delivery_t *dr = NULL;
    char *ids = NULL;
    PGresult *res = NULL;

    *more = false;
    res = tk_pg_exec(r->conn,
                     "SELECT id, topic, key, payload, headers::text FROM outbox ORDER BY id "
                     "LIMIT " STR(BATCH_ROWS),
                     0, NULL, err);
    if (res == NULL) {
        rc = err ? err->code : TK_EUNAVAIL;
        goto out;
    }
    if ((n = PQntuples(res)) == 0)
        goto out;
    dr = tk_mem_zalloc(sizeof(*dr) * (size_t)n);
    for (; enqueued < n; enqueued++) {
        int i = enqueued;
        int64_t id = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        rd_kafka_headers_t *h = headers_from_json(PQgetvalue(res, i, 4), id);
        rc =
            tk_kafka_produce(r->producer, PQgetvalue(res, i, 1), PQgetvalue(res, i, 2),
                             PQgetvalue(res, i, 3), (size_t)PQgetlength(res, i, 3), h, &dr[i], err);
        rd_kafka_headers_destroy(h);
        if (rc != 0 && dr[i].done && permanent(dr[i].err)) {
            rc = 0; /* refused for good: dead-lettered below, in order */
            continue;
        }
        if (rc != 0)
            break; /* the rows from here on stay for the next drain */
    }
    /* Every enqueued message gets exactly one report (message.timeout.ms bounds the wait). */
    for (;;) {
        int pending = 0;
        for (int i = 0; i < enqueued; i++)
            pending += !dr[i].done;
        if (pending == 0)
            break;
        rd_kafka_flush(r->producer, 1000);
    }
    /* The prefix to delete: acked rows, and rows refused for good once dead-lettered. */
    while (acked < enqueued &&
           (dr[acked].err == RD_KAFKA_RESP_ERR_NO_ERROR || permanent(dr[acked].err))) {
        if (dr[acked].err != RD_KAFKA_RESP_ERR_NO_ERROR &&
            (rc = dead_letter(r, PQgetvalue(res, acked, 0), dr[acked].err, err)) != 0)
            goto out;
        acked++;
    }
    if (acked < enqueued) {
        rc = tk_err_set(err, TK_EUNAVAIL, "", "delivery of outbox row %s to %s failed: %s",
                        PQgetvalue(res, acked, 0), PQgetvalue(res, acked, 1),
                        rd_kafka_err2str(dr[acked].err));
        renew_producer_if_fatal(r, NULL);
    }
    if (acked > 0 && r->fault_exit_after_ack)
        _exit(137); /* fault hook: crash between ack and delete */
    if (acked > 0) {
        /* "{1,2,3}": exact ids, never a range (see the top of this file). */
        size_t cap = (size_t)acked * 21 + 3, len = 0;
        ids = tk_mem_alloc(cap);
        ids[len++] = '{';
        for (int i = 0; i < acked; i++)
            len +=
                (size_t)snprintf(ids + len, cap - len, "%s%s", i ? "," : "", PQgetvalue(res, i, 0));
        snprintf(ids + len, cap - len, "}");
        const char *params[] = {ids};
        tk_err_t derr;
        int drc = tk_pg_run(r->conn, "DELETE FROM outbox WHERE id = ANY($1::bigint[])", 1, params,
                            NULL, &derr);
        if (drc != 0) {
            /* Published but not deleted: they will be published again (duplicates, no loss). */
            if (err)
                *err = derr;
            rc = drc;
            goto out;
        }
        *published += acked;
    }
    *more = rc == 0 && n == BATCH_ROWS;
out:
    free(ids);
    free(dr);
    PQclear(res);
    return rc;
}

static int drain(tk_relay_t *r, int *published, tk_err_t *err)
{
    int rc = 0;
    bool more = true;
    if (r->producer == NULL && (r->producer = tk_kafka_producer_new(err)) == NULL)
        return TK_EINTERNAL;
    drain_notifies(r->conn); /* this scan covers whatever they announced */
    if (r->verify) {
        if ((rc = skip_published(r, err)) != 0)
            return rc;
        r->verify = false;
    }
    while (more && rc == 0)
        rc = publish_batch(r, published, &more, err);
    return rc;
}

int tk_relay_drain_once(tk_relay_t *r, int *published, tk_err_t *err)
{
    int n = 0, rc;
    if ((rc = ensure_conn(r, err)) == 0 && (rc = ensure_lock(r, err)) == 0)
        rc = drain(r, &n, err);
    if (published != NULL)
        *published = n;
    return rc;
}

/* Wait for a NOTIFY on the relay connection, at most ms; returns early on *stop. */
static void wait_notify(tk_relay_t *r, int ms, volatile int *stop)
{
    int64_t deadline = tk_mono_ms() + ms;
    if (drain_notifies(r->conn))
        return;
    while (!*stop) {
        int64_t left = deadline - tk_mono_ms();
        if (left <= 0)
            return;
        struct pollfd pfd = {.fd = PQsocket(r->conn), .events = POLLIN};
        if (pfd.fd < 0)
            return;
        int n = poll(&pfd, 1, left < 100 ? (int)left : 100);
        if (n > 0) {
            if (!PQconsumeInput(r->conn) || drain_notifies(r->conn))
                return; /* notified, or the connection broke: either way, go look */
        }
    }
}

int tk_relay_run(tk_relay_t *r, volatile int *stop)
{
    tk_backoff_t backoff;
    tk_backoff_init(&backoff, 250, 10000);
    bool standby_logged = false;
    tk_log(TK_LOG_INFO, "relay", "started", "\"context\":\"%s\"", r->context);
    while (!*stop) {
        tk_err_t err = {0};
        int published = 0;
        if (r->conn != NULL && tk_pg_broken(r->conn))
            tk_log(TK_LOG_WARN, "relay", "database connection lost, reconnecting",
                   "\"context\":\"%s\"", r->context);
        int rc = ensure_conn(r, &err);
        if (rc == 0) {
            bool was_locked = r->locked;
            rc = ensure_lock(r, &err);
            if (rc == TK_ECONFLICT) {
                if (!standby_logged)
                    tk_log(TK_LOG_INFO, "relay", "standby: another relay holds the lock",
                           "\"context\":\"%s\"", r->context);
                standby_logged = true;
                tk_nap(WAIT_MS, stop);
                continue;
            }
            if (rc == 0 && !was_locked) {
                tk_log(TK_LOG_INFO, "relay", "active", "\"context\":\"%s\"", r->context);
                standby_logged = false;
            }
        }
        if (rc == 0)
            rc = drain(r, &published, &err);
        if (published > 0)
            tk_log(TK_LOG_DEBUG, "relay", "published", "\"context\":\"%s\",\"count\":%d",
                   r->context, published);
        if (rc != 0) {
            int backoff_ms = tk_backoff_next(&backoff);
            tk_log(TK_LOG_WARN, "relay", err.message,
                   "\"context\":\"%s\",\"code\":\"%s\",\"retry_ms\":%d", r->context,
                   tk_err_name(rc), backoff_ms);
            tk_nap(backoff_ms, stop);
            continue;
        }
        tk_backoff_reset(&backoff);
        wait_notify(r, WAIT_MS, stop);
    }
    tk_log(TK_LOG_INFO, "relay", "stopped", "\"context\":\"%s\"", r->context);
    return 0;
}
