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
    int jwt_ttl_seconds;           /* JWT_TTL_SECONDS: exp claim, 0 = none (the original) */
    int cookie_secure;             /* COOKIE_SECURE=1 adds secure; samesite=lax */
    int kafka_partitions;          /* KAFKA_PARTITIONS, default 6 */
    int kafka_replication_factor;  /* KAFKA_REPLICATION_FACTOR, default 1 */
    int kafka_min_insync_replicas; /* KAFKA_MIN_INSYNC_REPLICAS, default 1 */
    int gap_timeout_ms;            /* PROJECTOR_GAP_TIMEOUT_MS: version gap wait before DLQ */
    int consistency_wait_ms;       /* CONSISTENCY_WAIT_MS: a query's wait for its token, 2000 */
} tk_cfg_t;

/**
 * @brief Read the environment into the process-wide configuration.
 * @param need a mask of TK_CFG_NEED_*.
 * @return 0, or TK_EINVAL with err->message naming the variable.
 */
int tk_cfg_load(unsigned need, tk_err_t *err);

/** @brief The loaded configuration (defaults if tk_cfg_load was never called). Borrowed. */
const tk_cfg_t *tk_cfg(void);

/**
 * @brief The libpq connection string for @p context's database ("auth", "tickets", ...):
 *        DATABASE_URL_<CONTEXT> when set, else DATABASE_URL with the database tk_<context>.
 * @return 0 and keyword/value pairs in @p keys/@p vals (borrowed, static or env storage) for
 *         PQconnectdbParams(expand_dbname=1); TK_EINVAL for an unknown context.
 */
int tk_cfg_pg_params(const char *context, const char *keys[3], const char *vals[3]);

#endif
