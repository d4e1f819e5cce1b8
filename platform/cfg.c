/*
 * cfg.c - environment configuration. Values point into the environment (getenv storage), string
 * literals or this file's static buffers (the KAFKA_CONFIG_* names); nothing is allocated, so
 * there is nothing to free.
 */
#include "tk/cfg.h"

#include <errno.h>
#include <stdbool.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

extern char **environ;

/* KAFKA_CONFIG_* variables kept: a bound, so a runaway environment is an error, not a surprise. */
#define KAFKA_CONFIG_MAX 64
#define KAFKA_CONFIG_PREFIX "KAFKA_CONFIG_"
#define INSTANCE_ID_MAX 200

static char kafka_names[KAFKA_CONFIG_MAX][128];
static const char *kafka_pairs[2 * KAFKA_CONFIG_MAX + 1];

/* The defaults until the first tk_cfg_load, which keeps a copy of them (defaults) to start each
 * load from. */
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
    .projector_batch_bytes = 1024 * 1024,
    .jwt_ttl_seconds = 86400,
    .trusted_proxies = "",
    .signin_account_limit = 10,
    .signin_account_window = 900,
    .signin_address_limit = 30,
    .signin_address_window = 300,
    .signin_throttle_slots = 65536,
    .scrypt_log2_n = 17,
    .scrypt_concurrency = 2,
    .list_default_limit = 100,
    .list_max_limit = 1000,
    .orders_open_max = 10,
    .stripe_webhook_tolerance_s = 300,
    .stripe_connect_timeout_ms = 2000,
    .stripe_timeout_ms = 10000,
    .stripe_max_attempts = 3,
    .stripe_backoff_ms = 250,
    .stripe_backoff_max_ms = 2000,
    .refund_backoff_ms = 1000,
    .refund_backoff_max_ms = 300000,
    .kafka_config = kafka_pairs,
    .consistency_wait_ms = 2000,
    .http_queue_max = 128,
    .http_deadline_ms = 20000,
    .sse_max_streams_per_user = 8,
    .sse_max_streams_per_order = 4,
    .pg_connect_timeout_s = 5,
    .pg_statement_timeout_ms = 30000,
    .prune_every_ms = 60000, /* backbone/include/tk/prune.h says why */
    .prune_keep_offsets = 100000,
};
static tk_cfg_t defaults;
static bool defaults_kept;

/* Outside development a session key must be at least this long (HS256 wants 256 bits). */
#define JWT_KEY_MIN 32

/* A context's name (its descriptor's database, tk/context.h): lower case letters and '_'. */
#define CONTEXT_NAME_MAX 32

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
static int env_instance_id(tk_cfg_t *c, tk_err_t *err)
{
    const char *v = getenv("TK_INSTANCE_ID");
    if (v == NULL || *v == '\0') {
        c->instance_id = NULL;
        return 0;
    }
    size_t n = strlen(v);
    if (n > INSTANCE_ID_MAX || strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                         "0123456789._-") != n)
        return tk_err_set(err, TK_EINVAL, "TK_INSTANCE_ID",
                          "TK_INSTANCE_ID must be 1..%d characters of [A-Za-z0-9._-], got '%s'",
                          INSTANCE_ID_MAX, v);
    c->instance_id = v;
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

/* Connections stay below the descriptor limit, leaving room for databases, Kafka, files. */
static int default_max_connections(void)
{
    struct rlimit rl;
    long fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                   ? (long)rl.rlim_cur
                   : 4096;
    return (int)(fds - 128 < 16 ? 16 : fds - 128 > 4096 ? 4096 : fds - 128);
}

/* The bounds of the HTTP front and of every PostgreSQL connection. */
static int load_bounds(tk_cfg_t *c, tk_err_t *err)
{
    int rc;
    c->http_max_connections = default_max_connections();
    if ((rc = env_int("HTTP_QUEUE_MAX", 1, 100000, &c->http_queue_max, err)) ||
        (rc = env_int("HTTP_DEADLINE_MS", 100, 3600000, &c->http_deadline_ms, err)) ||
        (rc = env_int("HTTP_MAX_CONNECTIONS", 1, 1000000, &c->http_max_connections, err)))
        return rc;
    c->sse_max_streams = c->http_max_connections / 2 > 0 ? c->http_max_connections / 2 : 1;
    if ((rc = env_int("SSE_MAX_STREAMS", 1, 1000000, &c->sse_max_streams, err)) ||
        (rc = env_int("SSE_MAX_STREAMS_PER_USER", 1, 100000, &c->sse_max_streams_per_user, err)) ||
        (rc =
             env_int("SSE_MAX_STREAMS_PER_ORDER", 1, 100000, &c->sse_max_streams_per_order, err)) ||
        (rc = env_int("PG_CONNECT_TIMEOUT_S", 0, 3600, &c->pg_connect_timeout_s, err)) ||
        (rc = env_int("PG_STATEMENT_TIMEOUT_MS", 0, 86400000, &c->pg_statement_timeout_ms, err)) ||
        (rc = env_int("PROCESSED_EVENTS_PRUNE_MS", 0, 86400000, &c->prune_every_ms, err)) ||
        (rc = env_int("PROCESSED_EVENTS_KEEP_OFFSETS", 0, 1 << 30, &c->prune_keep_offsets, err)))
        return rc;
    return 0;
}

int tk_cfg_load(unsigned need, tk_err_t *err)
{
    int rc;
    if (!defaults_kept) {
        defaults = cfg;
        defaults_kept = true;
    }
    /* Built aside, then published whole: a test that reloads while its threads read tk_cfg()
     * sees each setting old or new, never a default in between. */
    tk_cfg_t next = defaults, *c = &next;
    if ((rc = load_bounds(c, err)) != 0)
        return rc;
    if ((rc = env_instance_id(c, err)) || (rc = env_kafka_config(err)))
        return rc;
    env_str("KAFKA_BROKERS", &c->kafka_brokers);
    env_str("DATABASE_URL", &c->database_url);
    env_str("JWT_KEY", &c->jwt_key);
    env_str("STRIPE_KEY", &c->stripe_key);
    env_str("STRIPE_API_BASE", &c->stripe_api_base);
    env_str("TRUSTED_PROXIES", &c->trusted_proxies);
    env_str("STRIPE_WEBHOOK_SECRET", &c->stripe_webhook_secret);
    if ((rc = env_int("EXPIRATION_WINDOW_SECONDS", 0, 86400 * 365, &c->expiration_window_seconds,
                      err)) ||
        (rc = env_int("PORT", 1, 65535, &c->port, err)) ||
        (rc = env_int("HTTP_WORKERS", 1, 256, &c->http_workers, err)) ||
        (rc = env_int("JWT_TTL_SECONDS", 60, 86400 * 365, &c->jwt_ttl_seconds, err)) ||
        (rc = env_int("COOKIE_SECURE", 0, 1, &c->cookie_secure, err)) ||
        (rc = env_int("TK_DEV", 0, 1, &c->dev, err)) ||
        (rc = env_int("SIGNIN_ACCOUNT_LIMIT", 1, 1000000, &c->signin_account_limit, err)) ||
        (rc = env_int("SIGNIN_ACCOUNT_WINDOW_SECONDS", 1, 86400, &c->signin_account_window, err)) ||
        (rc = env_int("SIGNIN_ADDRESS_LIMIT", 1, 1000000, &c->signin_address_limit, err)) ||
        (rc = env_int("SIGNIN_ADDRESS_WINDOW_SECONDS", 1, 86400, &c->signin_address_window, err)) ||
        (rc = env_int("SIGNIN_THROTTLE_SLOTS", 16, 1 << 24, &c->signin_throttle_slots, err)) ||
        (rc = env_int("SCRYPT_LOG2_N", 14, 20, &c->scrypt_log2_n, err)) ||
        (rc = env_int("SCRYPT_CONCURRENCY", 1, 64, &c->scrypt_concurrency, err)) ||
        (rc = env_int("LIST_MAX_LIMIT", 1, 10000, &c->list_max_limit, err)) ||
        (rc = env_int("LIST_DEFAULT_LIMIT", 1, c->list_max_limit, &c->list_default_limit, err)) ||
        (rc = env_int("ORDERS_OPEN_MAX", 1, 1000000, &c->orders_open_max, err)) ||
        (rc = env_int("KAFKA_PARTITIONS", 1, 1000, &c->kafka_partitions, err)) ||
        (rc = env_int("KAFKA_REPLICATION_FACTOR", 1, 16, &c->kafka_replication_factor, err)) ||
        (rc = env_int("KAFKA_MIN_INSYNC_REPLICAS", 1, 16, &c->kafka_min_insync_replicas, err)) ||
        (rc = env_int("PROJECTOR_GAP_TIMEOUT_MS", 0, 86400000, &c->gap_timeout_ms, err)) ||
        (rc = env_int("PROJECTOR_BATCH_BYTES", 1, 1 << 28, &c->projector_batch_bytes, err)) ||
        (rc = env_int("STRIPE_WEBHOOK_TOLERANCE_SECONDS", 1, 86400, &c->stripe_webhook_tolerance_s,
                      err)) ||
        (rc =
             env_int("STRIPE_CONNECT_TIMEOUT_MS", 1, 600000, &c->stripe_connect_timeout_ms, err)) ||
        (rc = env_int("STRIPE_TIMEOUT_MS", 1, 600000, &c->stripe_timeout_ms, err)) ||
        (rc = env_int("STRIPE_MAX_ATTEMPTS", 1, 10, &c->stripe_max_attempts, err)) ||
        (rc = env_int("STRIPE_BACKOFF_MS", 0, 60000, &c->stripe_backoff_ms, err)) ||
        (rc = env_int("STRIPE_BACKOFF_MAX_MS", 0, 60000, &c->stripe_backoff_max_ms, err)) ||
        (rc = env_int("REFUND_BACKOFF_MS", 1, 3600000, &c->refund_backoff_ms, err)) ||
        (rc = env_int("REFUND_BACKOFF_MAX_MS", 1, 86400000, &c->refund_backoff_max_ms, err)) ||
        (rc = env_int("CONSISTENCY_WAIT_MS", 0, 60000, &c->consistency_wait_ms, err)))
        return rc;
    if ((need & TK_CFG_NEED_JWT) && c->jwt_key == NULL)
        return tk_err_set(err, TK_EINVAL, "JWT_KEY", "JWT_KEY must be set");
    if ((need & TK_CFG_NEED_JWT) && !c->dev && strlen(c->jwt_key) < JWT_KEY_MIN)
        return tk_err_set(err, TK_EINVAL, "JWT_KEY",
                          "JWT_KEY must be at least %d bytes (a random secret; TK_DEV=1 allows a "
                          "shorter one for development)",
                          JWT_KEY_MIN);
    if ((need & TK_CFG_NEED_KAFKA) && getenv("KAFKA_BROKERS") == NULL)
        return tk_err_set(err, TK_EINVAL, "KAFKA_BROKERS",
                          "KAFKA_BROKERS must be set (host:port[,host:port...])");
    if ((need & TK_CFG_NEED_DATABASE) && getenv("DATABASE_URL") == NULL)
        return tk_err_set(err, TK_EINVAL, "DATABASE_URL",
                          "DATABASE_URL must be set (postgresql://user@host:port/db)");
    cfg = next;
    return 0;
}

/* Without tk_cfg_load (some tests), the defaults that depend on the process still apply. */
static void derive_defaults(void)
{
    if (cfg.http_max_connections == 0)
        cfg.http_max_connections = default_max_connections();
    if (cfg.sse_max_streams == 0)
        cfg.sse_max_streams = cfg.http_max_connections / 2 > 0 ? cfg.http_max_connections / 2 : 1;
}

const tk_cfg_t *tk_cfg(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, derive_defaults);
    return &cfg;
}

int tk_cfg_pg_params(const char *context, const char *keys[3], const char *vals[3])
{
    /* No list of contexts here: any well-formed name is tk_<name> (the descriptors say which
     * exist). Thread-local, so concurrent connects on several threads do not share it. */
    static _Thread_local char dbname[CONTEXT_NAME_MAX + 4];
    size_t len = context != NULL ? strlen(context) : 0;
    if (len == 0 || len > CONTEXT_NAME_MAX || strspn(context, "abcdefghijklmnopqrstuvwxyz_") != len)
        return TK_EINVAL;
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
    snprintf(dbname, sizeof(dbname), "tk_%s", context);
    vals[0] = cfg.database_url;
    keys[1] = "dbname";
    vals[1] = dbname;
    return 0;
}
