/*
 * consistency.c - read your own writes: the consistency token (codec), the command-side note,
 * the query-side await, and the process-wide waiter that wakes parked queries (DESIGN.md
 * section 6).
 *
 * Why aggregate versions rather than log positions: a command commits long before the relay
 * gives its events Kafka offsets, so the response cannot name an offset; it does know the
 * aggregate's new version, and every read model already stores (id, version) per aggregate to
 * apply events idempotently. "Covered" is then one indexed read of the read model, valid in any
 * process and across `ticketing replay` (a rebuilt model has the same versions).
 *
 * Why the projector only NOTIFYs: every committed batch that stored offsets is announced with the
 * projection's name, right after its COMMIT in the same round trip (tk_tx__commit; not from a
 * trigger inside the transaction, which would serialize every notifying commit of the cluster:
 * common/004); the notification says "look again", the versions
 * in the read model say whether the wait is over. A lost notification (the listening connection
 * broke) can only delay an answer to its bound, never make it wrong.
 *
 * A parked query's life, with the function behind each transition:
 *
 *   worker: tk_consistency_await --covered, or no token--> the handler goes on
 *        |  not covered: tk_http_park; the worker leaves; park_then -> tk_consistency_wait
 *        v
 *   waiter: pending --checked after LISTEN / on its projection's NOTIFY: covered--> done(true)
 *           pending --deadline (one last check): not covered---------------------> done(false)
 *           pending --tk_consistency_shutdown----------------------------------> done(false)
 *   done: (stale header when false) tk_http_resume -> a worker runs the handler again, and
 *         tk_consistency_await returns true at once (tk_http_resumed).
 *
 * The waiter is one thread per process (started on first use): it holds one LISTEN connection
 * per context database that has waits, poll()s them with an eventfd that new waits ring, and
 * sleeps exactly until the next notification, new wait or deadline: no polling loop. Only the
 * waiter removes waits; workers only push new ones at the head, so the waiter may walk the list
 * from a head it read under the lock while workers add more.
 */
#include "tk/consistency.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "tk/backoff.h"
#include "tk/cfg.h"
#include "tk/log.h"
#include "tk/mem.h"
#include "tk/pg.h"

#define FORMAT 1
#define ENTRY_BYTES 25 /* kind, uuid, version, issued */
#define MAC_BYTES 16
#define RAW_MAX (2 + TK_CONSISTENCY_MAX_ENTRIES * ENTRY_BYTES + MAC_BYTES)
#define FUTURE_SKEW_S 60
#define MAC_LABEL "ticketing consistency token v1"
#define MAX_LISTENERS 8
#define RECONNECT_MAX_MS 5000

/* ---- codec ----------------------------------------------------------------------------------- */

static bool kind_valid(char k)
{
    return k == TK_CONSISTENCY_USER || k == TK_CONSISTENCY_TICKET || k == TK_CONSISTENCY_ORDER;
}

static void put_u32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static size_t b64_encode(const unsigned char *in, size_t len, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len)
            v |= in[i + 2];
        out[o++] = b64url[v >> 18 & 63];
        out[o++] = b64url[v >> 12 & 63];
        if (i + 1 < len)
            out[o++] = b64url[v >> 6 & 63];
        if (i + 2 < len)
            out[o++] = b64url[v & 63];
    }
    out[o] = '\0';
    return o;
}

static int b64_val(char c)
{
    const char *p = c ? strchr(b64url, c) : NULL;
    return p ? (int)(p - b64url) : -1;
}

/* Decodes base64url without padding; -1 on a bad character or length. */
static long b64_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
    if (len % 4 == 1)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        uint32_t v = 0;
        size_t chunk = len - i < 4 ? len - i : 4;
        for (size_t j = 0; j < 4; j++) {
            int d = j < chunk ? b64_val(in[i + j]) : 0;
            if (d < 0)
                return -1;
            v = v << 6 | (uint32_t)d;
        }
        size_t bytes = chunk - 1;
        /* Canonical only: the bits past the last byte must be zero, so that each token has
         * exactly one text (a changed character is a changed token). */
        if ((chunk == 2 && (v >> 12 & 15) != 0) || (chunk == 3 && (v >> 6 & 3) != 0))
            return -1;
        if (o + bytes > cap)
            return -1;
        for (size_t j = 0; j < bytes; j++)
            out[o++] = (unsigned char)(v >> (16 - 8 * j));
    }
    return (long)o;
}

static void mac_of(const char *key, const unsigned char *data, size_t len,
                   unsigned char out[MAC_BYTES])
{
    unsigned char msg[sizeof(MAC_LABEL) + RAW_MAX];
    unsigned char full[EVP_MAX_MD_SIZE];
    unsigned int full_len = 0;
    memcpy(msg, MAC_LABEL, sizeof(MAC_LABEL)); /* with its NUL: a label, then the data */
    memcpy(msg + sizeof(MAC_LABEL), data, len);
    const char *k = key ? key : "";
    HMAC(EVP_sha256(), k, (int)strlen(k), msg, sizeof(MAC_LABEL) + len, full, &full_len);
    memcpy(out, full, MAC_BYTES);
}

int tk_consistency_token_add(tk_consistency_token_t *t, char kind, const char *id, int64_t version,
                             int64_t now_s)
{
    if (!kind_valid(kind) || !tk_uuid_valid(id) || version < 0 || version > UINT32_MAX ||
        t->n > TK_CONSISTENCY_MAX_ENTRIES)
        return TK_EINVAL;
    for (size_t i = 0; i < t->n; i++) {
        tk_consistency_entry_t *e = &t->e[i];
        if (e->kind == kind && strcasecmp(e->id, id) == 0) {
            if (version > e->version)
                e->version = version;
            e->issued_s = now_s;
            return 0;
        }
    }
    if (t->n == TK_CONSISTENCY_MAX_ENTRIES) { /* drop the oldest */
        size_t oldest = 0;
        for (size_t i = 1; i < t->n; i++)
            if (t->e[i].issued_s < t->e[oldest].issued_s)
                oldest = i;
        memmove(&t->e[oldest], &t->e[oldest + 1], (t->n - oldest - 1) * sizeof(t->e[0]));
        t->n--;
    }
    tk_consistency_entry_t *e = &t->e[t->n++];
    e->kind = kind;
    for (size_t i = 0; i <= TK_UUID_LEN; i++)
        e->id[i] = (char)(id[i] >= 'A' && id[i] <= 'F' ? id[i] + 32 : id[i]);
    e->version = version;
    e->issued_s = now_s;
    return 0;
}

int tk_consistency_token_encode(const tk_consistency_token_t *t, const char *key,
                                char out[TK_CONSISTENCY_TOKEN_MAX + 1])
{
    unsigned char raw[RAW_MAX];
    out[0] = '\0';
    if (t->n > TK_CONSISTENCY_MAX_ENTRIES)
        return TK_EINVAL;
    size_t len = 0;
    raw[len++] = FORMAT;
    raw[len++] = (unsigned char)t->n;
    for (size_t i = 0; i < t->n; i++) {
        const tk_consistency_entry_t *e = &t->e[i];
        if (!kind_valid(e->kind) || !tk_uuid_valid(e->id) || e->version < 0 ||
            e->version > UINT32_MAX || e->issued_s < 0 || e->issued_s > UINT32_MAX)
            return TK_EINVAL;
        raw[len++] = (unsigned char)e->kind;
        tk_uuid_to_bytes(e->id, raw + len); /* valid: checked above */
        len += 16;
        put_u32(raw + len, (uint32_t)e->version);
        put_u32(raw + len + 4, (uint32_t)e->issued_s);
        len += 8;
    }
    mac_of(key, raw, len, raw + len);
    len += MAC_BYTES;
    b64_encode(raw, len, out);
    return 0;
}

int tk_consistency_token_decode(const char *text, size_t len, const char *key, int64_t now_s,
                                tk_consistency_token_t *out, tk_err_t *err)
{
    unsigned char raw[RAW_MAX], mac[MAC_BYTES];
    out->n = 0;
    if (text == NULL || len == 0)
        return tk_err_set(err, TK_EINVAL, "token", "empty");
    if (len > TK_CONSISTENCY_TOKEN_MAX)
        return tk_err_set(err, TK_EINVAL, "token", "too long");
    long n = b64_decode(text, len, raw, sizeof(raw));
    if (n < 0)
        return tk_err_set(err, TK_EINVAL, "token", "not base64url");
    if (n < 2 + MAC_BYTES || raw[0] != FORMAT)
        return tk_err_set(err, TK_EINVAL, "token", "unknown format");
    size_t count = raw[1];
    if (count > TK_CONSISTENCY_MAX_ENTRIES || (size_t)n != 2 + count * ENTRY_BYTES + MAC_BYTES)
        return tk_err_set(err, TK_EINVAL, "token", "bad size");
    size_t body = (size_t)n - MAC_BYTES;
    mac_of(key, raw, body, mac);
    if (CRYPTO_memcmp(mac, raw + body, MAC_BYTES) != 0)
        return tk_err_set(err, TK_EINVAL, "token", "bad signature");
    for (size_t i = 0; i < count; i++) {
        const unsigned char *p = raw + 2 + i * ENTRY_BYTES;
        tk_consistency_entry_t e = {.kind = (char)p[0]};
        tk_uuid_from_bytes(p + 1, e.id);
        e.version = get_u32(p + 17);
        e.issued_s = get_u32(p + 21);
        if (!kind_valid(e.kind)) {
            out->n = 0;
            return tk_err_set(err, TK_EINVAL, "token", "unknown kind");
        }
        if (e.issued_s > now_s + FUTURE_SKEW_S) {
            out->n = 0;
            return tk_err_set(err, TK_EINVAL, "token", "issued in the future");
        }
        if (e.issued_s + TK_CONSISTENCY_TTL_S < now_s)
            continue; /* expired: no longer worth a wait */
        out->e[out->n++] = e;
    }
    return 0;
}

/* ---- HTTP: the token of a request ------------------------------------------------------------ */

/* The value of cookie @p name in a Cookie header, and its length; NULL when absent. */
static const char *cookie_value(const char *header, const char *name, size_t *len)
{
    size_t nlen = strlen(name);
    for (const char *p = header; p != NULL && *p;) {
        while (*p == ' ' || *p == ';')
            p++;
        const char *end = strchr(p, ';');
        size_t plen = end ? (size_t)(end - p) : strlen(p);
        if (plen > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            *len = plen - nlen - 1;
            return p + nlen + 1;
        }
        p = end;
    }
    return NULL;
}

/* The client's valid token: the header's when it sent one (an API client says what it means),
 * else the cookie's. false when it has none, or a bad one. */
static bool request_token(tk_http_req_t *req, tk_consistency_token_t *t)
{
    const char *key = tk_cfg()->jwt_key;
    int64_t now_s = tk_now_ms() / 1000;
    const char *h = tk_http_header(req, TK_CONSISTENCY_HEADER);
    if (h != NULL)
        return tk_consistency_token_decode(h, strlen(h), key, now_s, t, NULL) == 0;
    size_t len = 0;
    const char *c = cookie_value(tk_http_header(req, "cookie"), TK_CONSISTENCY_COOKIE, &len);
    return c != NULL && tk_consistency_token_decode(c, len, key, now_s, t, NULL) == 0;
}

void tk_consistency_note(tk_http_req_t *req, char kind, const char *id, int64_t version)
{
    tk_consistency_token_t t = {0};
    char text[TK_CONSISTENCY_TOKEN_MAX + 1];
    if (!request_token(req, &t))
        t.n = 0;
    if (tk_consistency_token_add(&t, kind, id, version, tk_now_ms() / 1000) != 0 ||
        tk_consistency_token_encode(&t, tk_cfg()->jwt_key, text) != 0)
        return; /* nothing sensible to promise: the client reads without waiting */
    char cookie[TK_CONSISTENCY_TOKEN_MAX + 128];
    snprintf(cookie, sizeof(cookie), "%s=%s; path=/; max-age=%d; httponly; samesite=lax%s",
             TK_CONSISTENCY_COOKIE, text, TK_CONSISTENCY_TTL_S,
             tk_cfg()->cookie_secure ? "; secure" : "");
    tk_http_add_header(req, TK_CONSISTENCY_HEADER, text);
    tk_http_set_cookie(req, cookie);
}

/* ---- coverage -------------------------------------------------------------------------------- */

/* "{id,id,...}": a uuid[] literal of the entries of @p kind (UUIDs need no quoting). */
static char *id_array(const tk_consistency_token_t *conds, char kind)
{
    char *s = tk_mem_alloc(conds->n * (TK_UUID_LEN + 1) + 3);
    size_t len = 0;
    s[len++] = '{';
    for (size_t i = 0; i < conds->n; i++) {
        if (conds->e[i].kind != kind)
            continue;
        if (len > 1)
            s[len++] = ',';
        memcpy(s + len, conds->e[i].id, TK_UUID_LEN);
        len += TK_UUID_LEN;
    }
    s[len++] = '}';
    s[len] = '\0';
    return s;
}

static PGresult *read_versions(PGconn *conn, const tk_consistency_model_t *model, const char *ids,
                               tk_err_t *err)
{
    char sql[256];
    snprintf(sql, sizeof(sql),
             "SELECT id::text, version FROM %s WHERE id = ANY($1::uuid[]) ORDER BY id",
             model->table);
    const char *params[] = {ids};
    return tk_pg_exec(conn, sql, 1, params, err);
}

/* Whether @p res (id, version rows ordered by id) has every entry of @p kind in @p conds.
 * Binary search: the waiter checks many waits against one result. A uuid's text is lower-case
 * hex in PostgreSQL and in our entries, so text order is the uuid order. */
static bool covers(const PGresult *res, const tk_consistency_token_t *conds, char kind)
{
    for (size_t i = 0; i < conds->n; i++) {
        if (conds->e[i].kind != kind)
            continue;
        int lo = 0, hi = PQntuples(res) - 1, at = -1;
        while (lo <= hi && at < 0) {
            int mid = lo + (hi - lo) / 2;
            int c = strcmp(PQgetvalue(res, mid, 0), conds->e[i].id);
            if (c == 0)
                at = mid;
            else if (c < 0)
                lo = mid + 1;
            else
                hi = mid - 1;
        }
        if (at < 0 || strtoll(PQgetvalue(res, at, 1), NULL, 10) < conds->e[i].version)
            return false;
    }
    return true;
}

int tk_consistency_covered(PGconn *conn, const tk_consistency_model_t *model,
                           const tk_consistency_token_t *conds, tk_err_t *err)
{
    char *ids = id_array(conds, model->kind);
    PGresult *res = read_versions(conn, model, ids, err);
    free(ids);
    if (res == NULL)
        return err && err->code ? err->code : TK_EUNAVAIL;
    int rc = covers(res, conds, model->kind) ? 1 : 0;
    PQclear(res);
    return rc;
}

/* ---- the waiter ------------------------------------------------------------------------------ */

struct wait {
    struct wait *next;
    const tk_consistency_model_t *model;
    tk_consistency_token_t conds;
    int64_t deadline; /* monotonic ms */
    bool fresh;       /* not checked since it was added */
    bool check;       /* to check in the current pass (waiter only) */
    tk_consistency_done_fn *done;
    void *arg;
};

struct listener {
    const char *context; /* borrowed from a model */
    PGconn *conn;        /* LISTENing, or NULL */
    int64_t retry_at;
    tk_backoff_t backoff; /* reconnecting the LISTEN connection */
    bool recheck;         /* (re)connected, or notified: look at its waits again */
    char dirty[MAX_LISTENERS][64];
    size_t ndirty;
};

static struct {
    pthread_mutex_t mu;
    pthread_t tid;
    bool running, stopping;
    int wake_fd;
    struct wait *head;
    size_t count;
    struct listener ls[MAX_LISTENERS];
    size_t nls;
} W = {.mu = PTHREAD_MUTEX_INITIALIZER, .wake_fd = -1};

static void ring(void)
{
    uint64_t one = 1;
    if (W.wake_fd >= 0 && write(W.wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
        tk_log(TK_LOG_WARN, "consistency", "cannot wake the waiter", NULL);
}

static struct listener *listener_of(const char *context)
{
    for (size_t i = 0; i < W.nls; i++)
        if (strcmp(W.ls[i].context, context) == 0)
            return &W.ls[i];
    if (W.nls == MAX_LISTENERS)
        return NULL;
    struct listener *l = &W.ls[W.nls++];
    memset(l, 0, sizeof(*l));
    l->context = context;
    tk_backoff_init(&l->backoff, 100, RECONNECT_MAX_MS);
    return l;
}

static void listener_connect(struct listener *l)
{
    if (l->conn != NULL || tk_mono_ms() < l->retry_at)
        return;
    tk_err_t err = {0};
    PGconn *c = tk_pg_connect(l->context, &err);
    if (c != NULL &&
        tk_pg_run(c, "LISTEN \"" TK_CONSISTENCY_CHANNEL "\"", 0, NULL, NULL, &err) != 0) {
        PQfinish(c);
        c = NULL;
    }
    if (c == NULL) {
        int wait = tk_backoff_next(&l->backoff);
        tk_log(TK_LOG_WARN, "consistency", "cannot listen, retrying",
               "\"context\":\"%s\",\"error\":\"%s\",\"retry_ms\":%d", l->context, err.message,
               wait);
        l->retry_at = tk_mono_ms() + wait;
        return;
    }
    l->conn = c;
    tk_backoff_reset(&l->backoff);
    l->recheck = true; /* commits while not listening went unannounced */
}

static void listener_drop(struct listener *l)
{
    PQfinish(l->conn);
    l->conn = NULL;
    l->retry_at = 0;
}

/* Record the projections that committed; false when the connection broke. Also called with
 * consume false before sleeping: a query on this connection (check_model) may have read
 * notifications into libpq's queue, where poll() would never see them. */
static bool listener_drain(struct listener *l, bool consume)
{
    if (consume && PQconsumeInput(l->conn) == 0)
        return false;
    PGnotify *n;
    while ((n = PQnotifies(l->conn)) != NULL) {
        bool known = false;
        for (size_t i = 0; i < l->ndirty && !known; i++)
            known = strcmp(l->dirty[i], n->extra) == 0;
        if (!known && l->ndirty < MAX_LISTENERS)
            snprintf(l->dirty[l->ndirty++], sizeof(l->dirty[0]), "%s", n->extra);
        else if (!known)
            l->recheck = true; /* too many names to track: look at everything */
        PQfreemem(n);
    }
    return true;
}

static bool listener_dirty(const struct listener *l, const char *projection)
{
    if (l->recheck)
        return true;
    for (size_t i = 0; i < l->ndirty; i++)
        if (strcmp(l->dirty[i], projection) == 0)
            return true;
    return false;
}

/* Unlink @p w (waiter thread, under the lock). */
static void unlink_wait(struct wait *w)
{
    for (struct wait **pp = &W.head; *pp != NULL; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            W.count--;
            return;
        }
}

/* Check the marked waits of @p model on its listener's connection; resolve what is decided. */
static void check_model(const tk_consistency_model_t *model, struct wait *head, int64_t now)
{
    struct listener *l = listener_of(model->context);
    size_t cap = 0, len = 0;
    char *ids = NULL;
    /* One query for all the ids of this model's marked waits. */
    for (struct wait *w = head; w != NULL; w = w->next) {
        if (!w->check || w->model != model)
            continue;
        for (size_t i = 0; i < w->conds.n; i++) {
            if (len + TK_UUID_LEN + 3 > cap) {
                cap = cap ? cap * 2 : 1024;
                char *grown = tk_mem_alloc(cap);
                if (len)
                    memcpy(grown, ids, len);
                free(ids);
                ids = grown;
            }
            ids[len] = len == 0 ? '{' : ',';
            len++;
            memcpy(ids + len, w->conds.e[i].id, TK_UUID_LEN);
            len += TK_UUID_LEN;
        }
    }
    PGresult *res = NULL;
    if (ids != NULL && l != NULL && l->conn != NULL) {
        ids[len++] = '}';
        ids[len] = '\0';
        tk_err_t err = {0};
        res = read_versions(l->conn, model, ids, &err);
        if (res == NULL && tk_pg_broken(l->conn))
            listener_drop(l);
    }
    free(ids);
    for (struct wait *w = head; w != NULL;) {
        struct wait *next = w->next;
        if (w->check && w->model == model) {
            w->check = false;
            w->fresh = false;
            bool covered = res != NULL && covers(res, &w->conds, model->kind);
            if (covered || now >= w->deadline) {
                pthread_mutex_lock(&W.mu);
                unlink_wait(w);
                pthread_mutex_unlock(&W.mu);
                w->done(w->arg, covered);
                free(w);
            }
        }
        w = next;
    }
    PQclear(res);
}

static void *waiter_main(void *arg)
{
    (void)arg;
    for (;;) {
        /* Which databases to listen on. */
        pthread_mutex_lock(&W.mu);
        bool stopping = W.stopping;
        for (struct wait *w = W.head; w != NULL; w = w->next)
            listener_of(w->model->context);
        pthread_mutex_unlock(&W.mu);
        if (stopping)
            break;
        int64_t now = tk_mono_ms(), next = now + 60000;

        struct pollfd fds[MAX_LISTENERS + 1];
        struct listener *owner[MAX_LISTENERS + 1];
        nfds_t nfds = 0;
        fds[nfds] = (struct pollfd){.fd = W.wake_fd, .events = POLLIN};
        owner[nfds++] = NULL;
        for (size_t i = 0; i < W.nls; i++) {
            struct listener *l = &W.ls[i];
            listener_connect(l);
            if (l->conn == NULL) {
                if (l->retry_at < next)
                    next = l->retry_at;
                continue;
            }
            fds[nfds] = (struct pollfd){.fd = PQsocket(l->conn), .events = POLLIN};
            owner[nfds++] = l;
        }
        /* Sleep until the next deadline, unless something can be checked now: a new wait, or
         * a (re)connected listener, whose database can be read. */
        bool now_work = false;
        pthread_mutex_lock(&W.mu);
        for (struct wait *w = W.head; w != NULL; w = w->next) {
            struct listener *l = listener_of(w->model->context);
            if (w->deadline < next)
                next = w->deadline;
            now_work = now_work || (w->fresh && l != NULL && l->conn != NULL);
        }
        pthread_mutex_unlock(&W.mu);
        for (size_t i = 0; i < W.nls; i++) {
            struct listener *l = &W.ls[i];
            if (l->conn != NULL)
                listener_drain(l, false);
            now_work = now_work || (l->conn != NULL && (l->recheck || l->ndirty > 0));
        }
        int64_t timeout = next - tk_mono_ms();
        if (now_work || timeout < 0)
            timeout = 0;
        if (poll(fds, nfds, (int)timeout) > 0) {
            for (nfds_t i = 0; i < nfds; i++) {
                if (!(fds[i].revents & (POLLIN | POLLERR | POLLHUP)))
                    continue;
                if (owner[i] == NULL) {
                    uint64_t v;
                    if (read(W.wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                        tk_log(TK_LOG_WARN, "consistency", "wake read failed", NULL);
                } else if (!listener_drain(owner[i], true)) {
                    tk_log(TK_LOG_WARN, "consistency", "listening connection lost",
                           "\"context\":\"%s\"", owner[i]->context);
                    listener_drop(owner[i]);
                }
            }
        }

        /* Mark what to check: new waits, waits of a projection that committed, and waits past
         * their deadline (one last look). Then one query per model. */
        now = tk_mono_ms();
        const tk_consistency_model_t *models[64];
        size_t nmodels = 0;
        pthread_mutex_lock(&W.mu);
        struct wait *head = W.head;
        for (struct wait *w = head; w != NULL; w = w->next) {
            struct listener *l = listener_of(w->model->context);
            if (l == NULL || l->conn == NULL) {
                /* Nothing to read it with: the deadline decides, or the reconnection's
                 * recheck. */
                w->fresh = false;
                w->check = now >= w->deadline;
            } else {
                w->check =
                    w->fresh || now >= w->deadline || listener_dirty(l, w->model->projection);
            }
            if (!w->check)
                continue;
            bool seen = false;
            for (size_t i = 0; i < nmodels && !seen; i++)
                seen = models[i] == w->model;
            if (!seen && nmodels < sizeof(models) / sizeof(models[0]))
                models[nmodels++] = w->model;
            else if (!seen)
                w->check = false; /* next pass */
        }
        pthread_mutex_unlock(&W.mu);
        for (size_t i = 0; i < W.nls; i++) {
            W.ls[i].recheck = false;
            W.ls[i].ndirty = 0;
        }
        for (size_t i = 0; i < nmodels; i++)
            check_model(models[i], head, now);
    }

    /* Stopping: every pending wait ends now, uncovered. */
    pthread_mutex_lock(&W.mu);
    struct wait *w = W.head;
    W.head = NULL;
    W.count = 0;
    pthread_mutex_unlock(&W.mu);
    while (w != NULL) {
        struct wait *next = w->next;
        w->done(w->arg, false);
        free(w);
        w = next;
    }
    for (size_t i = 0; i < W.nls; i++)
        listener_drop(&W.ls[i]);
    W.nls = 0;
    return NULL;
}

int tk_consistency_wait(const tk_consistency_model_t *model, const tk_consistency_token_t *conds,
                        int wait_ms, tk_consistency_done_fn *done, void *arg)
{
    struct wait *w = tk_mem_zalloc(sizeof(*w));
    w->model = model;
    for (size_t i = 0; i < conds->n; i++)
        if (conds->e[i].kind == model->kind)
            w->conds.e[w->conds.n++] = conds->e[i];
    w->deadline = tk_mono_ms() + (wait_ms > 0 ? wait_ms : 0);
    w->fresh = true;
    w->done = done;
    w->arg = arg;
    pthread_mutex_lock(&W.mu);
    if (W.stopping || W.count >= TK_CONSISTENCY_MAX_PARKED) {
        pthread_mutex_unlock(&W.mu);
        free(w);
        return TK_EUNAVAIL;
    }
    if (W.wake_fd < 0)
        W.wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (!W.running) {
        if (W.wake_fd < 0 || pthread_create(&W.tid, NULL, waiter_main, NULL) != 0) {
            pthread_mutex_unlock(&W.mu);
            free(w);
            return TK_EUNAVAIL;
        }
        W.running = true;
    }
    w->next = W.head;
    W.head = w;
    W.count++;
    pthread_mutex_unlock(&W.mu);
    ring();
    return 0;
}

void tk_consistency_shutdown(void)
{
    pthread_mutex_lock(&W.mu);
    if (!W.running) {
        pthread_mutex_unlock(&W.mu);
        return;
    }
    W.stopping = true;
    pthread_mutex_unlock(&W.mu);
    ring();
    pthread_join(W.tid, NULL);
    pthread_mutex_lock(&W.mu);
    W.running = false;
    W.stopping = false;
    pthread_mutex_unlock(&W.mu);
}

/* ---- HTTP: the query side -------------------------------------------------------------------- */

struct parked {
    const tk_consistency_model_t *model;
    tk_consistency_token_t conds;
};

static void resume_request(void *arg, bool covered)
{
    tk_http_req_t *req = arg;
    if (!covered)
        tk_http_add_header(req, TK_CONSISTENCY_STALE_HEADER, "true");
    tk_http_resume(req);
}

/* On the worker, once the handler returned: hand the request to the waiter. */
static void park_then(tk_http_req_t *req, void *arg)
{
    struct parked *p = arg;
    if (tk_consistency_wait(p->model, &p->conds, tk_cfg()->consistency_wait_ms, resume_request,
                            req) != 0)
        resume_request(req, false); /* too many waiting: answer now, marked */
    free(p);
}

bool tk_consistency_await(tk_http_req_t *req, const tk_consistency_model_t *model, const char *id)
{
    if (tk_http_resumed(req) > 0)
        return true; /* the waiter decided (and marked a stale answer) */
    tk_consistency_token_t t = {0}, conds = {0};
    if (!request_token(req, &t))
        return true;
    for (size_t i = 0; i < t.n; i++)
        if (t.e[i].kind == model->kind && (id == NULL || strcasecmp(t.e[i].id, id) == 0))
            conds.e[conds.n++] = t.e[i];
    if (conds.n == 0)
        return true;
    tk_err_t err = {0};
    PGconn *db = tk_http_db(req, model->context, &err);
    if (db == NULL || tk_consistency_covered(db, model, &conds, &err) != 0)
        return true; /* covered, or an error the handler meets and reports */
    if (tk_cfg()->consistency_wait_ms <= 0) {
        tk_http_add_header(req, TK_CONSISTENCY_STALE_HEADER, "true");
        return true;
    }
    struct parked *p = tk_mem_alloc(sizeof(*p));
    p->model = model;
    p->conds = conds;
    tk_http_park(req, park_then, p);
    return false;
}
