/*
 * cfg.c - environment configuration. Values point into the environment (getenv storage), string
 * literals or this file's static buffers (the KAFKA_CONFIG_* names); nothing is allocated, so
 * there is nothing to free.
 */
#include "tk/cfg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

extern char **environ;

/* KAFKA_CONFIG_* variables kept: a bound, so a runaway environment is an error, not a surprise. */
#define KAFKA_CONFIG_MAX 64
#define KAFKA_CONFIG_PREFIX "KAFKA_CONFIG_"
#define INSTANCE_ID_MAX 200

static char kafka_names[KAFKA_CONFIG_MAX][128];
static const char *kafka_pairs[2 * KAFKA_CONFIG_MAX + 1];

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
    .kafka_config = kafka_pairs,
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

/* TK_INSTANCE_ID: a Kafka group.instance.id, so only characters every tool prints plainly. */
static int env_instance_id(tk_err_t *err)
{
    const char *v = getenv("TK_INSTANCE_ID");
    if (v == NULL || *v == '\0') {
        cfg.instance_id = NULL;
        return 0;
    }
    size_t n = strlen(v);
    if (n > INSTANCE_ID_MAX || strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                         "0123456789._-") != n)
        return tk_err_set(err, TK_EINVAL, "TK_INSTANCE_ID",
                          "TK_INSTANCE_ID must be 1..%d characters of [A-Za-z0-9._-], got '%s'",
                          INSTANCE_ID_MAX, v);
    cfg.instance_id = v;
    return 0;
}

/*
 * KAFKA_CONFIG_<PROPERTY>=value -> ("property", "value"): the suffix lowered, '_' read as '.'.
 * librdkafka's property names are lower-case words joined by dots, so the mapping is exact; the
 * value is librdkafka's to judge (kafka.c reports a rejected one naming the variable).
 */
static int env_kafka_config(tk_err_t *err)
{
    size_t n = 0;
    const size_t plen = strlen(KAFKA_CONFIG_PREFIX);
    for (char **e = environ; e != NULL && *e != NULL; e++) {
        if (strncmp(*e, KAFKA_CONFIG_PREFIX, plen) != 0)
            continue;
        const char *name = *e + plen, *eq = strchr(name, '=');
        size_t len = eq != NULL ? (size_t)(eq - name) : 0;
        if (len == 0 || len >= sizeof(kafka_names[0]) ||
            strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") < len)
            return tk_err_set(err, TK_EINVAL, KAFKA_CONFIG_PREFIX,
                              "%.*s: expected KAFKA_CONFIG_<PROPERTY>=value, the property in "
                              "letters, digits and '_' (read as '.')",
                              (int)(eq != NULL ? (size_t)(eq - *e) : strlen(*e)), *e);
        if (n == KAFKA_CONFIG_MAX)
            return tk_err_set(err, TK_EINVAL, KAFKA_CONFIG_PREFIX,
                              "more than %d KAFKA_CONFIG_* variables", KAFKA_CONFIG_MAX);
        for (size_t i = 0; i < len; i++) {
            char c = name[i];
            kafka_names[n][i] = c == '_' ? '.' : (c >= 'A' && c <= 'Z' ? (char)(c + 32) : c);
        }
        kafka_names[n][len] = '\0';
        kafka_pairs[2 * n] = kafka_names[n];
        kafka_pairs[2 * n + 1] = eq + 1;
        n++;
    }
    kafka_pairs[2 * n] = NULL;
    return 0;
}

int tk_cfg_load(unsigned need, tk_err_t *err)
{
    int rc;
    if ((rc = env_instance_id(err)) || (rc = env_kafka_config(err)))
        return rc;
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
        (rc = env_int("PROJECTOR_GAP_TIMEOUT_MS", 0, 86400000, &cfg.gap_timeout_ms, err)))
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
