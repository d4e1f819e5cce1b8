/*
 * cfg.c - environment configuration. Values point into the environment (getenv storage) or
 * string literals; nothing is allocated, so there is nothing to free.
 */
#include "tk/cfg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tk_cfg_t cfg = {
    .kafka_brokers = "127.0.0.1:19092",
    .database_url = "postgresql://postgres@127.0.0.1:15432/postgres",
    .stripe_api_base = "https://api.stripe.com",
    .stripe_key = "",
    .expiration_window_seconds = 900,
    .port = 3000,
    .http_workers = 8,
    .kafka_partitions = 6,
    .kafka_replication_factor = 1,
    .kafka_min_insync_replicas = 1,
    .gap_timeout_ms = 30000,
    .consistency_wait_ms = 2000,
};

static const char *const contexts[] = {"auth", "tickets", "orders", "payments", "expiration"};
static const char *const dbnames[] = {"tk_auth", "tk_tickets", "tk_orders", "tk_payments",
                                      "tk_expiration"};

static int env_int(const char *name, int lo, int hi, int *out, tk_err_t *err)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return 0;
    char *end = NULL;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || n < lo || n > hi)
        return tk_err_set(err, TK_EINVAL, name, "%s must be an integer in [%d, %d], got '%s'", name,
                          lo, hi, v);
    *out = (int)n;
    return 0;
}

static void env_str(const char *name, const char **out)
{
    const char *v = getenv(name);
    if (v != NULL && *v != '\0')
        *out = v;
}

int tk_cfg_load(unsigned need, tk_err_t *err)
{
    int rc;
    env_str("KAFKA_BROKERS", &cfg.kafka_brokers);
    env_str("DATABASE_URL", &cfg.database_url);
    env_str("JWT_KEY", &cfg.jwt_key);
    env_str("STRIPE_KEY", &cfg.stripe_key);
    env_str("STRIPE_API_BASE", &cfg.stripe_api_base);
    if ((rc = env_int("EXPIRATION_WINDOW_SECONDS", 0, 86400 * 365, &cfg.expiration_window_seconds,
                      err)) ||
        (rc = env_int("PORT", 1, 65535, &cfg.port, err)) ||
        (rc = env_int("HTTP_WORKERS", 1, 256, &cfg.http_workers, err)) ||
        (rc = env_int("JWT_TTL_SECONDS", 0, 86400 * 365, &cfg.jwt_ttl_seconds, err)) ||
        (rc = env_int("COOKIE_SECURE", 0, 1, &cfg.cookie_secure, err)) ||
        (rc = env_int("KAFKA_PARTITIONS", 1, 1000, &cfg.kafka_partitions, err)) ||
        (rc = env_int("KAFKA_REPLICATION_FACTOR", 1, 16, &cfg.kafka_replication_factor, err)) ||
        (rc = env_int("KAFKA_MIN_INSYNC_REPLICAS", 1, 16, &cfg.kafka_min_insync_replicas, err)) ||
        (rc = env_int("PROJECTOR_GAP_TIMEOUT_MS", 0, 86400000, &cfg.gap_timeout_ms, err)) ||
        (rc = env_int("CONSISTENCY_WAIT_MS", 0, 60000, &cfg.consistency_wait_ms, err)))
        return rc;
    if ((need & TK_CFG_NEED_JWT) && cfg.jwt_key == NULL)
        return tk_err_set(err, TK_EINVAL, "JWT_KEY", "JWT_KEY must be set");
    if ((need & TK_CFG_NEED_KAFKA) && getenv("KAFKA_BROKERS") == NULL)
        return tk_err_set(err, TK_EINVAL, "KAFKA_BROKERS",
                          "KAFKA_BROKERS must be set (host:port[,host:port...])");
    if ((need & TK_CFG_NEED_DATABASE) && getenv("DATABASE_URL") == NULL)
        return tk_err_set(err, TK_EINVAL, "DATABASE_URL",
                          "DATABASE_URL must be set (postgresql://user@host:port/db)");
    return 0;
}

const tk_cfg_t *tk_cfg(void)
{
    return &cfg;
}

int tk_cfg_pg_params(const char *context, const char *keys[3], const char *vals[3])
{
    for (size_t i = 0; i < sizeof(contexts) / sizeof(contexts[0]); i++) {
        if (strcmp(context, contexts[i]) != 0)
            continue;
        char var[64];
        snprintf(var, sizeof(var), "DATABASE_URL_%s", context);
        for (char *p = var; *p; p++)
            *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
        const char *own = getenv(var);
        keys[0] = "dbname";
        keys[1] = NULL;
        keys[2] = NULL;
        vals[1] = NULL;
        vals[2] = NULL;
        if (own != NULL && *own != '\0') {
            vals[0] = own;
            return 0;
        }
        /* A later "dbname" overrides the database of the expanded URL (libpq docs). */
        vals[0] = cfg.database_url;
        keys[1] = "dbname";
        vals[1] = dbnames[i];
        return 0;
    }
    return TK_EINVAL;
}
