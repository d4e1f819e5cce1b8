/*
 * kafka.h - librdkafka handles configured as DESIGN.md section 3 requires, topic creation, and
 * produce helpers.
 *
 * Producers are idempotent with acks=all and bounded queues; consumers never auto-commit (a
 * projector keeps its offsets in PostgreSQL, section 6; the expiration scheduler commits by hand
 * after its acks) and read only committed records. Every handle logs through tk_log (component
 * "rdkafka"), so librdkafka prints nothing of its own. Every handle also gets the site's
 * KAFKA_CONFIG_<PROPERTY> settings (tk_cfg()->kafka_config) after the project's own; a handle
 * constructor fails with TK_EINVAL naming the property when one is reserved (bootstrap.servers,
 * group.id, group.instance.id, enable.idempotence, acks, partitioner, enable.auto.commit,
 * enable.auto.offset.store, isolation.level, auto.offset.reset, transactional.id) or rejected by
 * librdkafka.
 */
#ifndef TK_KAFKA_H
#define TK_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <librdkafka/rdkafka.h>

#include "tk/err.h"

/* Header names carried by every event record (DESIGN.md section 3). */
#define TK_KAFKA_H_TYPE "ce_type"
#define TK_KAFKA_H_ID "ce_id"
#define TK_KAFKA_H_SCHEMAVERSION "ce_schemaversion"

/*
 * The outcome of one produced message, filled by the delivery-report callback every producer from
 * tk_kafka_producer_new installs (kcat's dr_msg_cb): pass a pointer as the message opaque and it
 * is written exactly once, from inside rd_kafka_poll()/rd_kafka_flush() on the polling thread.
 */
typedef struct tk_kafka_delivery {
    int done;                /* 1 once the report arrived */
    rd_kafka_resp_err_t err; /* RD_KAFKA_RESP_ERR_NO_ERROR when the broker acked */
    int32_t partition;
    int64_t offset;
} tk_kafka_delivery_t;

/* A rebalance callback as librdkafka defines it (rd_kafka_conf_set_rebalance_cb). */
typedef void tk_kafka_rebalance_cb_t(rd_kafka_t *rk, rd_kafka_resp_err_t code,
                                     rd_kafka_topic_partition_list_t *partitions, void *opaque);

/**
 * @brief A producer for KAFKA_BROKERS: enable.idempotence=true, acks=all,
 *        partitioner=murmur2_random, linger.ms=5, queue.buffering.max.kbytes=65536,
 *        queue.buffering.max.messages=100000, message.timeout.ms=30000.
 * @return the handle; NULL with TK_EINTERNAL when librdkafka rejects the configuration.
 * Ownership: owned, rd_kafka_flush then rd_kafka_destroy.
 * Thread: any (librdkafka handles are thread-safe); delivery reports are served by whichever
 *         thread calls rd_kafka_poll or rd_kafka_flush.
 */
rd_kafka_t *tk_kafka_producer_new(tk_err_t *err);

/**
 * @brief A transactional producer: tk_kafka_producer_new's settings plus transactional.id =
 *        @p transactional_id and transaction.timeout.ms = message.timeout.ms = 10000 (an open
 *        transaction of a process killed with kill -9 holds back read_committed consumers of its
 *        partitions until a producer with the same id starts, or at most that long).
 *        The caller runs rd_kafka_init_transactions before the first transaction.
 * @param transactional_id borrowed; non-empty (TK_EINVAL otherwise). One live producer per id:
 *        a new one fences the old.
 * @return as tk_kafka_producer_new.
 */
rd_kafka_t *tk_kafka_producer_new_tx(const char *transactional_id, tk_err_t *err);

/**
 * @brief A consumer in group @p group_id for tools (status, tail, replay): enable.auto.commit=
 *        false, enable.auto.offset.store=false, auto.offset.reset=earliest, isolation.level=
 *        read_committed, session.timeout.ms=10000. Never a static member (it would fence the
 *        running instance of the same TK_INSTANCE_ID). rd_kafka_poll_set_consumer is called.
 * @param group_id borrowed.
 * @return the handle; NULL with TK_EINVAL for an empty group id, TK_EINTERNAL otherwise.
 * Ownership: owned, rd_kafka_consumer_close then rd_kafka_destroy.
 * Thread: polled by one thread (rebalance callbacks run inside rd_kafka_consumer_poll).
 */
rd_kafka_t *tk_kafka_consumer_new(const char *group_id, tk_err_t *err);

/**
 * @brief A long-lived member of group @p group_id: tk_kafka_consumer_new's settings, a rebalance
 *        callback (NULL: librdkafka assigns itself), and static membership when TK_INSTANCE_ID
 *        is set (group.instance.id = tk_cfg()->instance_id: a restarted instance takes its
 *        partitions back without a rebalance). @p cb must assign (or incrementally assign,
 *        under the COOPERATIVE protocol) as librdkafka documents.
 * @param opaque borrowed, passed to @p cb; must outlive the handle.
 * Ownership and thread: as tk_kafka_consumer_new.
 */
rd_kafka_t *tk_kafka_consumer_new_with(const char *group_id, tk_kafka_rebalance_cb_t *cb,
                                       void *opaque, tk_err_t *err);

/**
 * @brief tk_kafka_consumer_new_with plus librdkafka settings of the caller's own, applied after
 *        the project's: for a consumer whose memory or latency needs differ from the defaults
 *        (the expiration scheduler bounds its prefetch so its memory does not follow its lag).
 * @param settings borrowed: "name", "value", ..., NULL; NULL for none.
 * @return as tk_kafka_consumer_new_with; NULL with TK_EINTERNAL naming a rejected setting.
 */
rd_kafka_t *tk_kafka_consumer_new_tuned(const char *group_id, tk_kafka_rebalance_cb_t *cb,
                                        void *opaque, const char *const *settings, tk_err_t *err);

/**
 * @brief Subscribe consumer @p rk to @p topic (the group's partitions come with rebalances).
 * @return 0; TK_EINTERNAL with err (field: the topic) when librdkafka refuses.
 * Ownership: all borrowed. Thread: the consumer's.
 */
int tk_kafka_subscribe(rd_kafka_t *rk, const char *topic, tk_err_t *err);

/** @brief Whether @p rk's group rebalances incrementally (the COOPERATIVE protocol) rather than
 *         by whole assignments (EAGER). Thread: the consumer's (its rebalance callback). */
bool tk_kafka_cooperative(rd_kafka_t *rk);

/**
 * @brief The end of a rebalance callback: take (@p assign) or give back the partitions of
 *        @p list as the group's protocol wants it, incrementally under COOPERATIVE, as the whole
 *        assignment under EAGER (librdkafka's rebalance_cb contract).
 * @return 0; TK_EINTERNAL with err (librdkafka's message) when it refuses.
 * Ownership: all borrowed. Thread: the consumer's rebalance callback.
 */
int tk_kafka_rebalance_apply(rd_kafka_t *rk, bool assign, rd_kafka_topic_partition_list_t *list,
                             tk_err_t *err);

/**
 * @brief Seek consumer @p rk's partitions of @p list to their .offset and wait up to
 *        @p timeout_ms for each seek to be taken (librdkafka then hands out no record fetched
 *        before it). Use this, not rd_kafka_seek_partitions with a timeout: librdkafka before
 *        2.1.0 takes that timeout in microseconds (tk_kafka_seek_timeout).
 * @param timeout_ms > 0 per partition; 0 starts the seeks and returns at once.
 * @return 0; TK_EINTERNAL with librdkafka's reason (field: the topic) when the wait timed out or
 *         a partition's seek failed (its .err in @p list says which).
 * Ownership: all borrowed; @p list's .err fields are written. Thread: the consumer's.
 */
int tk_kafka_seek(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *list, int timeout_ms,
                  tk_err_t *err);

/** @brief The timeout to give this process's librdkafka's rd_kafka_seek_partitions for a wait of
 *         @p timeout_ms (x1000 before 2.1.0, -1 = no bound when that overflows). Thread: any. */
int tk_kafka_seek_timeout(int timeout_ms);

/**
 * @brief Whether consumer @p rk is dead for good: librdkafka raised a fatal error on it. The one
 *        seen in practice is a static member fenced by another with the same group.instance.id
 *        (FENCED_INSTANCE_ID, e.g. after a broker restart left the group coordinator with a newer
 *        member id for the instance). Such a handle never consumes again, though its polls go on
 *        returning error records; the owner must destroy it and join with a new one.
 * @param m the record just polled, or NULL: its RD_KAFKA_RESP_ERR__FATAL counts too.
 * @return 0 while the handle can consume; TK_EUNAVAIL with librdkafka's reason once it cannot.
 * Ownership: all borrowed. Thread: any.
 */
int tk_kafka_consumer_dead(rd_kafka_t *rk, const rd_kafka_message_t *m, tk_err_t *err);

/**
 * @brief The event topics of DESIGN.md section 3, NULL-terminated: users, tickets, orders,
 *        payments, expirations, expiration.delay (the same list as events' ev_topics, which
 *        platform cannot link).
 * Ownership: borrowed, static storage. Thread: any.
 */
const char *const *tk_kafka_topic_names(void);

/**
 * @brief Create every topic of tk_kafka_topic_names() through the Admin API with
 *        tk_cfg()->kafka_partitions partitions, kafka_replication_factor replicas and the configs
 *        cleanup.policy=delete, retention.ms=-1, min.insync.replicas. A topic that already exists
 *        counts as success, so the call is idempotent (it never changes an existing topic).
 * @return 0; TK_EUNAVAIL when the cluster cannot be reached within 30 s; TK_EINTERNAL with the
 *         broker's message for any other refusal.
 * Thread: any; blocking.
 */
int tk_kafka_topics_create(tk_err_t *err);

/**
 * @brief tk_kafka_topics_create for the NULL-terminated @p names with @p partitions partitions
 *        (0 = the configured default); tests use it for private topics.
 * Ownership: @p names borrowed. Thread: any; blocking.
 */
int tk_kafka_topics_create_list(const char *const *names, int partitions, tk_err_t *err);

/**
 * @brief Build the headers of an event record.
 * @param ce_type, ce_id, schemaversion borrowed, copied; schemaversion may be NULL (omitted).
 * Ownership: owned, free with rd_kafka_headers_destroy. Thread: any.
 */
rd_kafka_headers_t *tk_kafka_headers_new(const char *ce_type, const char *ce_id,
                                         const char *schemaversion);

/**
 * @brief Enqueue one record (payload and key are copied) without waiting.
 * @param rk a producer from tk_kafka_producer_new.
 * @param key borrowed, may be NULL; @param headers borrowed, may be NULL (copied when given).
 * @param dr borrowed, may be NULL; when given it must stay valid until dr->done is set, which
 *        happens in a later rd_kafka_poll/rd_kafka_flush on @p rk.
 * @return 0 when enqueued (the report then always arrives); TK_EUNAVAIL when the queue stays
 *         full for 30 s; TK_EINTERNAL for other enqueue failures (dr is then never written).
 * Ownership: all borrowed; payload, key and headers are copied. Thread: any.
 */
/* (A refused produce, other than a full queue, sets @p dr done with librdkafka's error, e.g.
 * RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE, so callers can tell permanent refusals apart.) */
int tk_kafka_produce(rd_kafka_t *rk, const char *topic, const char *key, const void *payload,
                     size_t len, const rd_kafka_headers_t *headers, tk_kafka_delivery_t *dr,
                     tk_err_t *err);

/**
 * @brief Produce one record and wait for its delivery report (for tools and tests; services go
 *        through the outbox). Serves the delivery reports of other pending messages too.
 * @param rk a producer from tk_kafka_producer_new; the others as tk_kafka_produce.
 * @return 0 once the broker acked (acks=all); TK_EUNAVAIL with the broker's reason otherwise.
 * Ownership: all borrowed. Thread: any; blocks up to message.timeout.ms (30 s).
 */
int tk_kafka_produce_sync(rd_kafka_t *rk, const char *topic, const char *key, const void *payload,
                          size_t len, const rd_kafka_headers_t *headers, tk_err_t *err);

#endif
