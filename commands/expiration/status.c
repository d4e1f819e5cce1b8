/*
 * status.c - the scheduler seen from outside, for `ticketing status`: how many expirations are
 * pending and how late the most overdue one is.
 *
 * Everything is read from the broker, so the answer is right whether the scheduler runs in this
 * process, in another one, or not at all:
 *   pending     = sum over delay partitions of (end offset - the delay group's committed offset)
 *   intake_lag  = the same for the intake group on the orders topic
 *   lateness_ms = max over delay partitions with a lag of (now - dueAt of the record at the
 *                 committed offset): the head the scheduler waits for or is about to fire.
 * The handles used here never subscribe, so they never join (or disturb) the groups; reading the
 * heads assigns the partitions to a private fetcher for a moment.
 */
#include "expiration_int.h"

#include <string.h>

#include "tk/kafka.h"
#include "tk/mem.h"

#define TIMEOUT_MS 5000

/* The partitions of @p topic, each at the committed offset of @p rk's group (or the start of the
 * log when the group never committed), and the total lag in @p lag. */
static int lag_of(rd_kafka_t *rk, const char *topic, rd_kafka_topic_partition_list_t **out,
                  int64_t *lag, tk_err_t *err)
{
    int rc = 0;
    const rd_kafka_metadata_t *md = NULL;
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_topic_partition_list_t *list = NULL;
    int64_t *hi = NULL;

    *out = NULL;
    *lag = 0;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, TIMEOUT_MS);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1 || md->topics[0].err ||
        md->topics[0].partition_cnt == 0) {
        rc = tk_err_set(err, TK_EUNAVAIL, topic, "no metadata for topic %s: %s", topic,
                        rd_kafka_err2str(e                    ? e
                                         : md->topic_cnt == 1 ? md->topics[0].err
                                                              : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
        goto out;
    }
    int n = md->topics[0].partition_cnt;
    list = rd_kafka_topic_partition_list_new(n);
    hi = tk_mem_zalloc(sizeof(*hi) * (size_t)n);
    for (int i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(list, topic, md->topics[0].partitions[i].id);
    if ((e = rd_kafka_committed(rk, list, TIMEOUT_MS)) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        rc = tk_err_set(err, TK_EUNAVAIL, topic, "committed offsets on %s: %s", topic,
                        rd_kafka_err2str(e));
        goto out;
    }
    for (int i = 0; i < list->cnt; i++) {
        rd_kafka_topic_partition_t *tp = &list->elems[i];
        int64_t lo = 0;
        e = rd_kafka_query_watermark_offsets(rk, topic, tp->partition, &lo, &hi[i], TIMEOUT_MS);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
            rc = tk_err_set(err, TK_EUNAVAIL, topic, "end offsets of %s: %s", topic,
                            rd_kafka_err2str(e));
            goto out;
        }
        if (tp->offset < lo)
            tp->offset = lo; /* never committed (or compacted away): auto.offset.reset=earliest */
        if (hi[i] > tp->offset)
            *lag += hi[i] - tp->offset;
        else
            tp->offset = RD_KAFKA_OFFSET_END; /* mark "nothing pending" for the caller */
    }
    *out = list;
    list = NULL;
out:
    free(hi);
    if (list != NULL)
        rd_kafka_topic_partition_list_destroy(list);
    if (md != NULL)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(t);
    return rc;
}

/* Read the record at the committed offset of every partition with a lag. */
static void read_heads(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *list,
                       tk_expiration_status_t *out)
{
    rd_kafka_topic_partition_list_t *want = rd_kafka_topic_partition_list_new(list->cnt);
    for (int i = 0; i < list->cnt; i++)
        if (list->elems[i].offset >= 0)
            rd_kafka_topic_partition_list_add(want, list->elems[i].topic, list->elems[i].partition)
                ->offset = list->elems[i].offset;
    int left = want->cnt;
    if (left == 0 || rd_kafka_assign(rk, want) != RD_KAFKA_RESP_ERR_NO_ERROR)
        goto out;
    int64_t now = tk_now_ms(), deadline = tk_mono_ms() + TIMEOUT_MS;
    while (left > 0 && tk_mono_ms() < deadline) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 100);
        if (m == NULL)
            continue;
        rd_kafka_topic_partition_t *tp = NULL;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR)
            tp =
                rd_kafka_topic_partition_list_find(want, rd_kafka_topic_name(m->rkt), m->partition);
        if (tp != NULL && tp->offset >= 0 && m->offset >= tp->offset) {
            tk_expiration_record_t rec;
            if (tk_expiration_record_decode(m->payload, m->len, &rec, NULL) == 0) {
                int64_t late = now - rec.due_ms;
                if (out->heads == 0 || late > out->lateness_ms)
                    out->lateness_ms = late;
                out->heads++;
            }
            tp->offset = RD_KAFKA_OFFSET_END; /* seen */
            left--;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_assign(rk, NULL);
out:
    rd_kafka_topic_partition_list_destroy(want);
}

static void close_consumer(rd_kafka_t *rk)
{
    if (rk != NULL) {
        rd_kafka_consumer_close(rk);
        rd_kafka_destroy(rk);
    }
}

int tk_expiration_status_opts(const tk_expiration_opts_t *opts, tk_expiration_status_t *out,
                              tk_err_t *err)
{
    int rc = 0;
    tk_expiration__cfg_t cfg;
    rd_kafka_t *delay = NULL, *intake = NULL;
    rd_kafka_topic_partition_list_t *dlist = NULL, *ilist = NULL;

    memset(out, 0, sizeof(*out));
    if ((rc = tk_expiration__cfg_resolve(opts, &cfg, err)) != 0)
        return rc;
    if ((delay = tk_kafka_consumer_new(cfg.delay_group, err)) == NULL ||
        (intake = tk_kafka_consumer_new(cfg.intake_group, err)) == NULL) {
        rc = TK_EINTERNAL;
        goto out;
    }
    if ((rc = lag_of(delay, cfg.delay_topic, &dlist, &out->pending, err)) != 0 ||
        (rc = lag_of(intake, cfg.orders_topic, &ilist, &out->intake_lag, err)) != 0)
        goto out;
    out->partitions = dlist->cnt;
    read_heads(delay, dlist, out);
out:
    if (dlist != NULL)
        rd_kafka_topic_partition_list_destroy(dlist);
    if (ilist != NULL)
        rd_kafka_topic_partition_list_destroy(ilist);
    close_consumer(delay);
    close_consumer(intake);
    return rc;
}

int tk_expiration_status(tk_expiration_status_t *out, tk_err_t *err)
{
    return tk_expiration_status_opts(NULL, out, err);
}
