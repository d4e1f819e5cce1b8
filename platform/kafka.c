/*
 * kafka.c - librdkafka handles as DESIGN.md section 3 configures them, the Admin API call that
 * creates the event topics, and produce helpers.
 *
 * Producers: idempotent (enable.idempotence=true implies acks=all, in-order retries and no
 * duplicates from retries inside one partition), murmur2_random so keys land where Java clients
 * put them, and bounded local queues (librdkafka's defaults allow 1 GiB). message.timeout.ms is
 * 30 s so an outage surfaces as failed delivery reports, which the outbox relay treats as "retry
 * the batch", instead of blocking for librdkafka's default five minutes.
 *
 * Delivery reports: every producer gets one callback (dr_msg_cb, as kcat does) that copies the
 * outcome into the tk_kafka_delivery_t passed as the message opaque. The callback runs only inside
 * rd_kafka_poll/rd_kafka_flush on the caller's thread, so the struct needs no locking, and it is
 * written exactly once per enqueued message (librdkafka guarantees one report per message).
 *
 * Consumers: offsets are never committed automatically (auto commit and auto offset store are
 * off); the projector keeps them in PostgreSQL with the effects they cover (section 6), the
 * expiration scheduler commits them to Kafka by hand once its output is acked. read_committed hides
 * aborted transactional records: the scheduler's intake writes expiration.delay in transactions
 * (tk_kafka_producer_new_tx; commands/expiration/intake.c).
 *
 * Consumer-group members (tk_kafka_consumer_new_with/_tuned: projectors, the expiration
 * scheduler) use static membership when TK_INSTANCE_ID names the process: group.instance.id =
 * TK_INSTANCE_ID. A member restarted after kill -9 then rejoins as itself and gets its partitions
 * back at once, with no rebalance, instead of waiting out the dead member's session.timeout.ms
 * (10 s) and then rebalancing every member. The price, documented in docs/deploy.md: a static
 * member does not leave on a clean close either, so an instance stopped for good keeps its
 * partitions idle until the session times out. Tools (tk_kafka_consumer_new: status, tail,
 * replay) never join as a static member, or they would fence the running instance.
 *
 * A fatal consumer error (tk_kafka_consumer_dead; in practice a static member fenced by another
 * with the same group.instance.id, seen after broker restarts) ends a consumer for good: every
 * long-lived owner (projector, expiration stages) checks it on error records and then starts over
 * with a new handle, which joins as the instance again.
 *
 * Site settings: every handle gets the KAFKA_CONFIG_<PROPERTY> variables (tk_cfg()->
 * kafka_config) last, so TLS, SASL, timeouts and buffer sizes can be set for a managed Kafka
 * without a rebuild. The settings the guarantees rest on are refused with a clear error
 * (reserved below): a site cannot turn off idempotence or commit offsets behind a projector.
 *
 * Logging: librdkafka's lines go through tk_log (component "rdkafka") so stderr stays JSON lines.
 */
#include "tk/kafka.h"

#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "tk/backoff.h"
#include "tk/cfg.h"
#include "tk/ids.h"
#include "tk/log.h"

static const char *const topic_names[] = {"users",
                                          "tickets",
                                          "orders",
                                          "payments",
                                          "expirations",
                                          "expiration.delay",
                                          "expiration.deadletter",
                                          NULL};

const char *const *tk_kafka_topic_names(void)
{
    return topic_names;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    tk_log_level_t l = level <= 3   ? TK_LOG_ERROR
                       : level == 4 ? TK_LOG_WARN
                       : level <= 6 ? TK_LOG_INFO
                                    : TK_LOG_DEBUG;
    /* fac and the handle name are librdkafka identifiers ([A-Za-z0-9#_-]): safe inside JSON. */
    tk_log(l, "rdkafka", buf, "\"facility\":\"%s\",\"client\":\"%s\"", fac, rd_kafka_name(rk));
}

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    tk_kafka_delivery_t *dr = m->_private;
    if (dr == NULL)
        return;
    dr->err = m->err;
    dr->partition = m->partition;
    dr->offset = m->offset;
    dr->done = 1;
}

/* Set name=value on conf; on failure fill err and return TK_EINTERNAL. */
static int conf_set(rd_kafka_conf_t *conf, const char *name, const char *value, tk_err_t *err)
{
    char errstr[256];
    if (rd_kafka_conf_set(conf, name, value, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
        return tk_err_set(err, TK_EINTERNAL, name, "kafka config %s=%s: %s", name, value, errstr);
    return 0;
}

/* conf_set for each name, value of the NULL-ended @p pairs (NULL: none); stops at a failure. */
static int conf_set_pairs(rd_kafka_conf_t *conf, const char *const *pairs, tk_err_t *err)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && pairs != NULL && pairs[i] != NULL && pairs[i + 1] != NULL; i += 2)
        rc = conf_set(conf, pairs[i], pairs[i + 1], err);
    return rc;
}

/* A conf with the settings every handle shares; NULL on error. */
static rd_kafka_conf_t *base_conf(tk_err_t *err)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    /* socket.nagle.disable: small records both ways, Nagle would hold each for an ACK
     * (freshness) */
    static const char *const shared[] = {
        "client.id", "ticketing", "log.connection.close", "false", "socket.nagle.disable",
        "true",      NULL};
    if (conf_set(conf, "bootstrap.servers", tk_cfg()->kafka_brokers, err) ||
        conf_set_pairs(conf, shared, err)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, log_cb);
    return conf;
}

/* Properties ticketing sets itself because its guarantees depend on them (DESIGN.md sections 3,
 * 4, 6), or that have their own variable: not settable through KAFKA_CONFIG_*. */
static const char *const reserved[] = {"bootstrap.servers",
                                       "metadata.broker.list",
                                       "group.id",
                                       "group.instance.id",
                                       "enable.idempotence",
                                       "acks",
                                       "request.required.acks",
                                       "partitioner",
                                       "enable.auto.commit",
                                       "enable.auto.offset.store",
                                       "isolation.level",
                                       "auto.offset.reset",
                                       "transactional.id",
                                       NULL};

/* Apply the KAFKA_CONFIG_* site settings to conf; on failure fill err naming the variable. */
static int apply_site(rd_kafka_conf_t *conf, tk_err_t *err)
{
    const char *const *kv = tk_cfg()->kafka_config;
    char errstr[256];
    for (size_t i = 0; kv != NULL && kv[i] != NULL && kv[i + 1] != NULL; i += 2) {
        for (size_t r = 0; reserved[r] != NULL; r++)
            if (strcmp(kv[i], reserved[r]) == 0)
                return tk_err_set(err, TK_EINVAL, kv[i],
                                  "KAFKA_CONFIG_* may not set %s: ticketing sets it itself "
                                  "(DESIGN.md section 3; brokers come from KAFKA_BROKERS)",
                                  kv[i]);
        if (rd_kafka_conf_set(conf, kv[i], kv[i + 1], errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
            return tk_err_set(err, TK_EINVAL, kv[i], "KAFKA_CONFIG_* %s=%s: %s", kv[i], kv[i + 1],
                              errstr);
    }
    return 0;
}

/* rd_kafka_new after the site settings; conf is consumed in every case. */
static rd_kafka_t *handle_new(rd_kafka_type_t type, rd_kafka_conf_t *conf, tk_err_t *err)
{
    char errstr[512];
    if (apply_site(conf, err) != 0) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof(errstr));
    if (rk == NULL) {
        rd_kafka_conf_destroy(conf); /* rd_kafka_new frees conf only on success */
        tk_err_set(err, TK_EINTERNAL, "", "rd_kafka_new: %s", errstr);
    }
    return rk;
}

/* A producer; transactional (with its own message timeout) when transactional_id is set. */
static rd_kafka_t *producer_new(const char *transactional_id, tk_err_t *err)
{
    rd_kafka_conf_t *conf = base_conf(err);
    if (conf == NULL)
        return NULL;
    /* linger.ms 0: a record goes out at once (freshness: up to 5 ms of linger sat on every idle
     * command's way to the read models); under load batches still form behind the requests in
     * flight. KAFKA_CONFIG_LINGER_MS may trade latency for larger batches. */
    static const char *const producer[] = {
        "enable.idempotence",
        "true",
        "acks",
        "all",
        "partitioner",
        "murmur2_random",
        "linger.ms",
        "0",
        "queue.buffering.max.kbytes",
        "65536",
        "queue.buffering.max.messages",
        "100000",
        NULL,
    };
    if (conf_set_pairs(conf, producer, err) ||
        conf_set(conf, "message.timeout.ms", transactional_id ? "10000" : "30000", err) ||
        (transactional_id != NULL && (conf_set(conf, "transactional.id", transactional_id, err) ||
                                      conf_set(conf, "transaction.timeout.ms", "10000", err)))) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, dr_msg_cb);
    return handle_new(RD_KAFKA_PRODUCER, conf, err);
}

rd_kafka_t *tk_kafka_producer_new(tk_err_t *err)
{
    return producer_new(NULL, err);
}

rd_kafka_t *tk_kafka_producer_new_tx(const char *transactional_id, tk_err_t *err)
{
    if (transactional_id == NULL || *transactional_id == '\0') {
        tk_err_set(err, TK_EINVAL, "transactional_id", "a transactional producer needs an id");
        return NULL;
    }
    return producer_new(transactional_id, err);
}

/* A consumer in group_id; a static member (group.instance.id = TK_INSTANCE_ID) when member is
 * set and the process has an instance id. */
static rd_kafka_t *consumer_new(const char *group_id, bool member, tk_kafka_rebalance_cb_t *cb,
                                void *opaque, const char *const *settings, tk_err_t *err)
{
    if (group_id == NULL || *group_id == '\0') {
        tk_err_set(err, TK_EINVAL, "group_id", "a consumer needs a group id");
        return NULL;
    }
    rd_kafka_conf_t *conf = base_conf(err);
    if (conf == NULL)
        return NULL;
    static const char *const consumer[] = {
        "enable.auto.commit",
        "false",
        "enable.auto.offset.store",
        "false",
        "auto.offset.reset",
        "earliest",
        "isolation.level",
        "read_committed",
        "session.timeout.ms",
        "10000",
        "heartbeat.interval.ms",
        "1000",
        NULL,
    };
    /* The caller's settings last: they override ours. */
    if (conf_set(conf, "group.id", group_id, err) || conf_set_pairs(conf, consumer, err) ||
        conf_set_pairs(conf, settings, err)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    if (member && tk_cfg()->instance_id != NULL &&
        conf_set(conf, "group.instance.id", tk_cfg()->instance_id, err)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    if (cb != NULL)
        rd_kafka_conf_set_rebalance_cb(conf, cb);
    rd_kafka_conf_set_opaque(conf, opaque);
    rd_kafka_t *rk = handle_new(RD_KAFKA_CONSUMER, conf, err);
    if (rk != NULL)
        rd_kafka_poll_set_consumer(rk);
    return rk;
}

rd_kafka_t *tk_kafka_consumer_new_tuned(const char *group_id, tk_kafka_rebalance_cb_t *cb,
                                        void *opaque, const char *const *settings, tk_err_t *err)
{
    return consumer_new(group_id, true, cb, opaque, settings, err);
}

bool tk_kafka_cooperative(rd_kafka_t *rk)
{
    return strcmp(rd_kafka_rebalance_protocol(rk), "COOPERATIVE") == 0;
}

int tk_kafka_rebalance_apply(rd_kafka_t *rk, bool assign, rd_kafka_topic_partition_list_t *list,
                             tk_err_t *err)
{
    if (tk_kafka_cooperative(rk)) {
        rd_kafka_error_t *error = assign ? rd_kafka_incremental_assign(rk, list)
                                         : rd_kafka_incremental_unassign(rk, list);
        if (error == NULL)
            return 0;
        int rc = tk_err_set(err, TK_EINTERNAL, NULL, "%s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        return rc;
    }
    rd_kafka_resp_err_t e = rd_kafka_assign(rk, assign ? list : NULL);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return tk_err_set(err, TK_EINTERNAL, NULL, "%s", rd_kafka_err2str(e));
    return 0;
}

int tk_kafka_subscribe(rd_kafka_t *rk, const char *topic, tk_err_t *err)
{
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
        return tk_err_set(err, TK_EINTERNAL, topic, "subscribe to %s: %s", topic,
                          rd_kafka_err2str(e));
    return 0;
}

rd_kafka_t *tk_kafka_consumer_new_with(const char *group_id, tk_kafka_rebalance_cb_t *cb,
                                       void *opaque, tk_err_t *err)
{
    return consumer_new(group_id, true, cb, opaque, NULL, err);
}

rd_kafka_t *tk_kafka_consumer_new(const char *group_id, tk_err_t *err)
{
    return consumer_new(group_id, false, NULL, NULL, NULL, err);
}

/* librdkafka before 2.1.0 (PR #4230) waits for the seek replies timeout_ms MICROseconds: its
 * rd_kafka_seek_partitions passes the remaining milliseconds to a queue pop that takes
 * microseconds. Debian's 2.0.2 thus gave up after 10 ms whenever its main thread was slower
 * than that (the soak of 2026-12-02 restarted the expiration delay stage 12 times in its first
 * 22 minutes).
 * Handing it a thousand times the wait makes the first pop wait timeout_ms; a later pop (one
 * per partition) waits what is left, in the same units, so never more than timeout_ms each. */
#define SEEK_UNITS_FIXED 0x02010000 /* rd_kafka_version() of 2.1.0 */

int tk_kafka_seek_timeout(int timeout_ms)
{
    if (timeout_ms <= 0 || rd_kafka_version() >= SEEK_UNITS_FIXED)
        return timeout_ms;
    return timeout_ms > INT_MAX / 1000 ? -1 : timeout_ms * 1000;
}

int tk_kafka_seek(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *list, int timeout_ms,
                  tk_err_t *err)
{
    int rc = 0;
    rd_kafka_error_t *error = rd_kafka_seek_partitions(rk, list, tk_kafka_seek_timeout(timeout_ms));
    if (error != NULL) {
        const char *topic = list->cnt > 0 ? list->elems[0].topic : "";
        rc = tk_err_set(err, TK_EINTERNAL, topic, "seek: %s", rd_kafka_error_string(error));
        rd_kafka_error_destroy(error);
        return rc;
    }
    for (int i = 0; i < list->cnt; i++)
        if (list->elems[i].err != RD_KAFKA_RESP_ERR_NO_ERROR &&
            !(timeout_ms == 0 && list->elems[i].err == RD_KAFKA_RESP_ERR__IN_PROGRESS))
            return tk_err_set(err, TK_EINTERNAL, list->elems[i].topic, "seek partition %d: %s",
                              (int)list->elems[i].partition, rd_kafka_err2str(list->elems[i].err));
    return 0;
}

/* A fatal consumer stays fatal (librdkafka never clears it): checking the handle as well as the
 * record covers a fatal error that reached the application as another error record. */
int tk_kafka_consumer_dead(rd_kafka_t *rk, const rd_kafka_message_t *m, tk_err_t *err)
{
    char why[256];
    rd_kafka_resp_err_t e = rd_kafka_fatal_error(rk, why, sizeof(why));
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR && m != NULL && m->err == RD_KAFKA_RESP_ERR__FATAL) {
        e = m->err;
        snprintf(why, sizeof(why), "%s", rd_kafka_message_errstr(m));
    }
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
        return 0;
    return tk_err_set(err, TK_EUNAVAIL, "", "kafka consumer %s failed for good (%s): %s",
                      rd_kafka_name(rk), rd_kafka_err2name(e), why);
}

static int admin_code(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR_NOT_CONTROLLER:
        return TK_EUNAVAIL;
    default:
        return TK_EINTERNAL;
    }
}

/* True when every topic of @p names has its partitions, each with a leader. */
static bool topics_led(const rd_kafka_metadata_t *md, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const rd_kafka_metadata_topic_t *t = NULL;
        for (int k = 0; k < md->topic_cnt && t == NULL; k++)
            if (strcmp(md->topics[k].topic, names[i]) == 0)
                t = &md->topics[k];
        if (t == NULL || t->err != RD_KAFKA_RESP_ERR_NO_ERROR || t->partition_cnt == 0)
            return false;
        for (int p = 0; p < t->partition_cnt; p++)
            if (t->partitions[p].err != RD_KAFKA_RESP_ERR_NO_ERROR || t->partitions[p].leader < 0)
                return false;
    }
    return true;
}

/* A created topic is usable only once each partition has a leader: until then produce and
 * watermark queries fail (a fresh broker takes a moment). So "topics ready" means ready. */
static int wait_for_leaders(rd_kafka_t *rk, const char *const *names, size_t n, int timeout_ms,
                            tk_err_t *err)
{
    int64_t deadline = tk_mono_ms() + timeout_ms;
    for (;;) {
        const rd_kafka_metadata_t *md = NULL;
        bool led = false;
        if (rd_kafka_metadata(rk, 1, NULL, &md, 5000) == RD_KAFKA_RESP_ERR_NO_ERROR) {
            led = topics_led(md, names, n);
            rd_kafka_metadata_destroy(md);
        }
        if (led)
            return 0;
        if (tk_mono_ms() >= deadline)
            return tk_err_set(err, TK_EUNAVAIL, "",
                              "topics created but without leaders after %d ms", timeout_ms);
        tk_nap(100, NULL);
    }
}

int tk_kafka_topics_create_list(const char *const *names, int partitions, tk_err_t *err)
{
    enum { MAX_TOPICS = 64, TIMEOUT_MS = 30000 };
    const tk_cfg_t *cfg = tk_cfg();
    rd_kafka_t *rk = NULL;
    rd_kafka_queue_t *q = NULL;
    rd_kafka_AdminOptions_t *opts = NULL;
    rd_kafka_event_t *ev = NULL;
    rd_kafka_NewTopic_t *nt[MAX_TOPICS] = {NULL};
    size_t n = 0;
    char errstr[256], isr[16];
    int rc = 0;

    if (partitions <= 0)
        partitions = cfg->kafka_partitions;
    snprintf(isr, sizeof(isr), "%d", cfg->kafka_min_insync_replicas);
    rd_kafka_conf_t *conf = base_conf(err);
    if (conf == NULL)
        return err ? err->code : TK_EINTERNAL;
    if ((rk = handle_new(RD_KAFKA_PRODUCER, conf, err)) == NULL) {
        rc = TK_EINTERNAL;
        goto out;
    }
    for (; names[n] != NULL; n++) {
        if (n == MAX_TOPICS) {
            rc = tk_err_set(err, TK_EINVAL, "topics", "more than %d topics", MAX_TOPICS);
            goto out;
        }
        nt[n] = rd_kafka_NewTopic_new(names[n], partitions, cfg->kafka_replication_factor, errstr,
                                      sizeof(errstr));
        if (nt[n] == NULL) {
            rc = tk_err_set(err, TK_EINVAL, names[n], "topic %s: %s", names[n], errstr);
            goto out;
        }
        if (rd_kafka_NewTopic_set_config(nt[n], "cleanup.policy", "delete") ||
            rd_kafka_NewTopic_set_config(nt[n], "retention.ms", "-1") ||
            rd_kafka_NewTopic_set_config(nt[n], "min.insync.replicas", isr)) {
            rc = tk_err_set(err, TK_EINTERNAL, names[n], "topic %s: cannot set configs", names[n]);
            goto out;
        }
    }
    q = rd_kafka_queue_new(rk);
    opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    if (rd_kafka_AdminOptions_set_request_timeout(opts, TIMEOUT_MS, errstr, sizeof(errstr)) ||
        rd_kafka_AdminOptions_set_operation_timeout(opts, TIMEOUT_MS, errstr, sizeof(errstr))) {
        rc = tk_err_set(err, TK_EINTERNAL, "", "admin options: %s", errstr);
        goto out;
    }
    rd_kafka_CreateTopics(rk, nt, n, opts, q);
    ev = rd_kafka_queue_poll(q, TIMEOUT_MS + 5000);
    if (ev == NULL) {
        rc =
            tk_err_set(err, TK_EUNAVAIL, "", "CreateTopics: no answer from %s", cfg->kafka_brokers);
        goto out;
    }
    if (rd_kafka_event_error(ev)) {
        rc = tk_err_set(err, admin_code(rd_kafka_event_error(ev)), "", "CreateTopics on %s: %s",
                        cfg->kafka_brokers, rd_kafka_event_error_string(ev));
        goto out;
    }
    size_t cnt = 0;
    const rd_kafka_topic_result_t **res =
        rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &cnt);
    for (size_t i = 0; i < cnt; i++) {
        rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR || e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
            continue;
        const char *why = rd_kafka_topic_result_error_string(res[i]);
        rc = tk_err_set(err, admin_code(e), rd_kafka_topic_result_name(res[i]),
                        "cannot create topic %s: %s", rd_kafka_topic_result_name(res[i]),
                        why ? why : rd_kafka_err2str(e));
        goto out;
    }
    rc = wait_for_leaders(rk, names, n, TIMEOUT_MS, err);
out:
    if (ev)
        rd_kafka_event_destroy(ev);
    if (opts)
        rd_kafka_AdminOptions_destroy(opts);
    for (size_t i = 0; i < n && i < MAX_TOPICS; i++)
        if (nt[i])
            rd_kafka_NewTopic_destroy(nt[i]);
    if (q)
        rd_kafka_queue_destroy(q);
    if (rk)
        rd_kafka_destroy(rk);
    return rc;
}

int tk_kafka_topics_create(tk_err_t *err)
{
    return tk_kafka_topics_create_list(topic_names, 0, err);
}

rd_kafka_headers_t *tk_kafka_headers_new(const char *ce_type, const char *ce_id,
                                         const char *schemaversion)
{
    rd_kafka_headers_t *h = rd_kafka_headers_new(3);
    if (ce_type)
        rd_kafka_header_add(h, TK_KAFKA_H_TYPE, -1, ce_type, -1);
    if (ce_id)
        rd_kafka_header_add(h, TK_KAFKA_H_ID, -1, ce_id, -1);
    if (schemaversion)
        rd_kafka_header_add(h, TK_KAFKA_H_SCHEMAVERSION, -1, schemaversion, -1);
    return h;
}

int tk_kafka_produce(rd_kafka_t *rk, const char *topic, const char *key, const void *payload,
                     size_t len, const rd_kafka_headers_t *headers, tk_kafka_delivery_t *dr,
                     tk_err_t *err)
{
    int64_t deadline = tk_mono_ms() + 30000;
    rd_kafka_resp_err_t e;
    for (;;) {
        /* librdkafka owns the headers only when producev succeeds: copy per attempt. */
        rd_kafka_headers_t *h = headers ? rd_kafka_headers_copy(headers) : NULL;
        e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, key ? strlen(key) : 0),
            RD_KAFKA_V_VALUE((void *)payload, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(dr), RD_KAFKA_V_END);
        if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
            return 0;
        if (h)
            rd_kafka_headers_destroy(h);
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            if (dr != NULL) { /* no report will come: record the refusal in its place */
                dr->done = 1;
                dr->err = e;
            }
            break;
        }
        if (tk_mono_ms() >= deadline)
            return tk_err_set(err, TK_EUNAVAIL, topic, "kafka producer queue full for 30 s");
        rd_kafka_poll(rk, 100); /* serve delivery reports so the queue drains */
    }
    return tk_err_set(err, TK_EINTERNAL, topic, "produce to %s: %s", topic, rd_kafka_err2str(e));
}

int tk_kafka_produce_sync(rd_kafka_t *rk, const char *topic, const char *key, const void *payload,
                          size_t len, const rd_kafka_headers_t *headers, tk_err_t *err)
{
    tk_kafka_delivery_t dr = {0};
    int rc = tk_kafka_produce(rk, topic, key, payload, len, headers, &dr, err);
    if (rc != 0)
        return rc;
    /* The report always arrives (message.timeout.ms bounds it), so this loop ends; leaving early
     * would let the callback write into a dead stack frame. */
    while (!dr.done)
        rd_kafka_poll(rk, 100);
    if (dr.err != RD_KAFKA_RESP_ERR_NO_ERROR)
        return tk_err_set(err, TK_EUNAVAIL, topic, "delivery to %s failed: %s", topic,
                          rd_kafka_err2str(dr.err));
    return 0;
}
