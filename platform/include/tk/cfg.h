/*
 * cfg.h - configuration from the environment (12-factor, DESIGN.md section 2).
 *
 * Loaded once at start-up by main(), then read-only: tk_cfg() is safe from any thread after
 * tk_cfg_load succeeded. A missing required variable or a malformed number is reported through
 * tk_err_t as one line naming the variable; main prints it and exits.
 */
#ifndef TK_CFG_H
#define TK_CFG_H

#include "tk/err.h"

/* What a subcommand needs; tk_cfg_load fails when a needed variable is missing. */
enum {
    TK_CFG_NEED_KAFKA = 1 << 0,
    TK_CFG_NEED_DATABASE = 1 << 1,
    TK_CFG_NEED_JWT = 1 << 2,
};

typedef struct tk_cfg {
    const char *kafka_brokers;     /* KAFKA_BROKERS, default 127.0.0.1:19092 */
    const char *database_url;      /* DATABASE_URL: the server; a context uses database tk_<ctx> */
    const char *jwt_key;           /* JWT_KEY, required by serve/run */
    const char *stripe_key;        /* STRIPE_KEY */
    const char *stripe_api_base;   /* STRIPE_API_BASE, default https://api.stripe.com */
    int expiration_window_seconds; /* EXPIRATION_WINDOW_SECONDS, default 900 */
    int port;                      /* PORT, default 3000 */
    int http_workers;              /* HTTP_WORKERS: database worker threads, default 8 */
    int jwt_ttl_seconds;           /* JWT_TTL_SECONDS: exp claim, default 86400 (24 h) */
    int cookie_secure;             /* COOKIE_SECURE=1 adds secure (samesite=lax is always set) */
    int dev;                       /* TK_DEV=1: development (scripts/env.sh), allows a short key */
    int kafka_partitions;          /* KAFKA_PARTITIONS, default 6 */
    int kafka_replication_factor;  /* KAFKA_REPLICATION_FACTOR, default 1 */
    int kafka_min_insync_replicas; /* KAFKA_MIN_INSYNC_REPLICAS, default 1 */
    int gap_timeout_ms;            /* PROJECTOR_GAP_TIMEOUT_MS: version gap wait before DLQ */
    const char *trusted_proxies;   /* TRUSTED_PROXIES: addresses/CIDRs whose X-Forwarded-For
                                      and X-Real-IP are believed, default none */
    int signin_account_limit;      /* SIGNIN_ACCOUNT_LIMIT: failed sign-ins per account, 10 */
    int signin_account_window;     /* SIGNIN_ACCOUNT_WINDOW_SECONDS, 900 */
    int signin_address_limit;      /* SIGNIN_ADDRESS_LIMIT: failed sign-ins per address, 30 */
    int signin_address_window;     /* SIGNIN_ADDRESS_WINDOW_SECONDS, 300 */
    int signin_throttle_slots;     /* SIGNIN_THROTTLE_SLOTS: rows of the counter table, 65536 */
    int scrypt_log2_n;             /* SCRYPT_LOG2_N: cost of new hashes, 17 (N = 2^17, 128 MiB) */
    int scrypt_concurrency;        /* SCRYPT_CONCURRENCY: hashes at once per process, 2 */
    int list_default_limit;        /* LIST_DEFAULT_LIMIT: items of a list without ?limit, 100 */
    int list_max_limit;            /* LIST_MAX_LIMIT: the largest ?limit, 1000 */
    int orders_open_max;           /* ORDERS_OPEN_MAX: open orders per user, 10 */
    const char *stripe_webhook_secret; /* STRIPE_WEBHOOK_SECRET ("whsec_..."); NULL: no webhook */
    int stripe_webhook_tolerance_s;    /* STRIPE_WEBHOOK_TOLERANCE_SECONDS, default 300 */
    int stripe_connect_timeout_ms;     /* STRIPE_CONNECT_TIMEOUT_MS, default 2000 */
    int stripe_timeout_ms;             /* STRIPE_TIMEOUT_MS, one whole attempt, default 10000 */
    int stripe_max_attempts;           /* STRIPE_MAX_ATTEMPTS, 1..10, default 3 */
    int stripe_backoff_ms;             /* STRIPE_BACKOFF_MS, default 250 */
    int stripe_backoff_max_ms;         /* STRIPE_BACKOFF_MAX_MS, default 2000 */
    int refund_backoff_ms;             /* REFUND_BACKOFF_MS: first wait after a refused refund */
    int refund_backoff_max_ms; /* REFUND_BACKOFF_MAX_MS: the longest wait between attempts */
    /* TK_INSTANCE_ID: this process's name among the instances of its role (e.g.
     * project-orders.2), the group.instance.id of its consumer-group members (static
     * membership: a restart takes its partitions back without waiting out the session
     * timeout). NULL when unset (dynamic membership). [A-Za-z0-9._-], at most 200 characters;
     * it must be unique per consumer group and stable across restarts of the instance. */
    const char *instance_id;
    /* KAFKA_CONFIG_<PROPERTY>=value: librdkafka properties for every handle, the name lowered
     * with '_' read as '.' (KAFKA_CONFIG_SECURITY_PROTOCOL -> security.protocol): TLS, SASL and
     * other site settings. "name", "value", ..., NULL; never NULL itself. */
    const char *const *kafka_config;
    int consistency_wait_ms; /* CONSISTENCY_WAIT_MS: a query's wait for its token, 2000 */
    /* Bounds of the HTTP front (platform/http*.c, DESIGN.md section 12). */
    int http_queue_max;       /* HTTP_QUEUE_MAX: queued requests per lane, 128 */
    int http_deadline_ms;     /* HTTP_DEADLINE_MS: arrival to answer of a worker route, 20000 */
    int http_max_connections; /* HTTP_MAX_CONNECTIONS: default the fd limit - 128, in [16, 4096] */
    int sse_max_streams;      /* SSE_MAX_STREAMS: event streams, default half the connections */
    int sse_max_streams_per_user;  /* SSE_MAX_STREAMS_PER_USER, 8 */
    int sse_max_streams_per_order; /* SSE_MAX_STREAMS_PER_ORDER: per channel, 4 */
    /* Bounds of every PostgreSQL connection (tk_pg_connect). */
    int pg_connect_timeout_s;    /* PG_CONNECT_TIMEOUT_S, 5 (0: libpq waits forever) */
    int pg_statement_timeout_ms; /* PG_STATEMENT_TIMEOUT_MS, 30000 (0: no limit) */
    /* processed_events pruning (backbone/prune.c). */
    int prune_every_ms;     /* PROCESSED_EVENTS_PRUNE_MS: how often, 60000 */
    int prune_keep_offsets; /* PROCESSED_EVENTS_KEEP_OFFSETS, 100000 (prune.h) */
    /* PROJECTOR_BATCH_BYTES: a live projector's batch stops growing once its records' payloads
     * and keys reach this many bytes (or at 2000 records): it bounds what a batch holds
     * decoded, the role's peak memory with a backlog (backbone/projector.c). 1048576. */
    int projector_batch_bytes;
} tk_cfg_t;

/**
 * @brief Read the environment into the process-wide configuration, from the defaults each time
 *        (a variable unset since the last load takes its default again).
 * @param need a mask of TK_CFG_NEED_*.
 * @return 0, or TK_EINVAL with err->message naming the variable.
 */
int tk_cfg_load(unsigned need, tk_err_t *err);

/** @brief The loaded configuration (defaults if tk_cfg_load was never called). Borrowed. */
const tk_cfg_t *tk_cfg(void);

/**
 * @brief The libpq connection string for @p context's database ("auth", "tickets", ...):
 *        DATABASE_URL_<CONTEXT> when set, else DATABASE_URL with the database tk_<context>.
 * @return 0 and keyword/value pairs in @p keys/@p vals (borrowed: static, env or thread-local
 *         storage valid until this thread's next call) for PQconnectdbParams(expand_dbname=1);
 *         TK_EINVAL for a malformed name (not [a-z_]{1,32}).
 */
int tk_cfg_pg_params(const char *context, const char *keys[3], const char *vals[3]);

#endif
