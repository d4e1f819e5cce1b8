/*
 * fold.c - the tools of a projection's fold (fold.h, DESIGN.md section 6): a set of fixed-size
 * keys and a COPY writer.
 *
 * The key set: open addressing with linear probing over a power-of-two table at most half full;
 * a slot holds the index + 1 of a key in one dense array (0 = empty), so the keys themselves are
 * stored once and in order. Keys here are mostly UUIDs, random already, so a cheap multiplicative
 * hash over 8-byte words spreads them well.
 *
 * The COPY writer: rows are escaped into a buffer and sent in chunks of COPY_CHUNK bytes with
 * PQputCopyData; the server parses one chunk while the client fills the next.
 */
#include "tk/fold.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tk/ids.h"
#include "tk/mem.h"
#include "tk/pg.h"

#define COPY_CHUNK (256 * 1024)

/* ---- keys ------------------------------------------------------------------------------------ */

struct tk_fold_keys {
    size_t key_len;
    uint8_t *keys; /* count * key_len bytes, tk_mem_grow */
    size_t count, cap;
    uint32_t *slots; /* index + 1, 0 = empty */
    size_t nslots;   /* a power of two */
};

static uint64_t hash(const uint8_t *key, size_t len)
{
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ len;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t w;
        memcpy(&w, key + i, 8);
        h = (h ^ w) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 31;
    }
    for (; i < len; i++)
        h = (h ^ key[i]) * 0x94d049bb133111ebULL;
    h ^= h >> 29;
    return h;
}

tk_fold_keys_t *tk_fold_keys_new(size_t key_len)
{
    if (key_len == 0 || key_len > 64)
        abort(); /* a programming error */
    tk_fold_keys_t *k = tk_mem_zalloc(sizeof(*k));
    k->key_len = key_len;
    k->nslots = 1024;
    k->slots = tk_mem_zalloc(k->nslots * sizeof(*k->slots));
    return k;
}

static const uint8_t *key_at(const tk_fold_keys_t *k, size_t index)
{
    return k->keys + index * k->key_len;
}

/* The slot holding @p key, or the empty slot where it would go. */
static size_t probe(const tk_fold_keys_t *k, const void *key)
{
    size_t mask = k->nslots - 1, s = (size_t)hash(key, k->key_len) & mask;
    while (k->slots[s] != 0 && memcmp(key_at(k, k->slots[s] - 1), key, k->key_len) != 0)
        s = (s + 1) & mask;
    return s;
}

static void grow(tk_fold_keys_t *k)
{
    free(k->slots);
    k->nslots *= 2;
    k->slots = tk_mem_zalloc(k->nslots * sizeof(*k->slots));
    for (size_t i = 0; i < k->count; i++)
        k->slots[probe(k, key_at(k, i))] = (uint32_t)(i + 1);
}

int64_t tk_fold_keys_find(const tk_fold_keys_t *k, const void *key)
{
    size_t s = probe(k, key);
    return k->slots[s] == 0 ? -1 : (int64_t)k->slots[s] - 1;
}

int64_t tk_fold_keys_add(tk_fold_keys_t *k, const void *key, bool *added)
{
    size_t s = probe(k, key);
    if (k->slots[s] != 0) {
        if (added)
            *added = false;
        return (int64_t)k->slots[s] - 1;
    }
    if (k->count >= UINT32_MAX - 1)
        abort(); /* four billion keys: far beyond any log a replay folds in memory */
    k->keys = tk_mem_grow(k->keys, &k->cap, (k->count + 1) * k->key_len, 1);
    memcpy(k->keys + k->count * k->key_len, key, k->key_len);
    k->slots[s] = (uint32_t)(++k->count);
    if (k->count * 2 > k->nslots)
        grow(k);
    if (added)
        *added = true;
    return (int64_t)k->count - 1;
}

size_t tk_fold_keys_count(const tk_fold_keys_t *k)
{
    return k->count;
}

void tk_fold_keys_free(tk_fold_keys_t *k)
{
    if (k == NULL)
        return;
    free(k->keys);
    free(k->slots);
    free(k);
}

/* ---- COPY ------------------------------------------------------------------------------------ */

struct tk_copy {
    PGconn *conn; /* borrowed */
    char *buf;    /* COPY_CHUNK + room for one escaped value */
    size_t len, cap;
    bool failed; /* PQputCopyData failed: end with an error */
};

tk_copy_t *tk_copy_begin(tk_tx_t *tx, const char *table, const char *columns, tk_err_t *err)
{
    PGconn *c = tk_tx_conn(tx);
    size_t n = strlen(table) + strlen(columns) + 64;
    char *sql = tk_mem_alloc(n);
    snprintf(sql, n, "COPY %s (%s) FROM STDIN", table, columns);
    PGresult *res = PQexec(c, sql);
    free(sql);
    if (PQresultStatus(res) != PGRES_COPY_IN) {
        tk_pg_error_map(res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL, NULL,
                        res ? PQresultErrorMessage(res) : PQerrorMessage(c),
                        PQstatus(c) == CONNECTION_OK, err);
        PQclear(res);
        return NULL;
    }
    PQclear(res);
    tk_copy_t *w = tk_mem_zalloc(sizeof(*w));
    w->conn = c;
    w->cap = COPY_CHUNK * 2;
    w->buf = tk_mem_alloc(w->cap);
    return w;
}

static int flush(tk_copy_t *w, tk_err_t *err)
{
    if (w->len > 0 && !w->failed && PQputCopyData(w->conn, w->buf, (int)w->len) != 1)
        w->failed = true;
    w->len = 0;
    if (w->failed)
        return tk_err_set(err, TK_EUNAVAIL, "db", "COPY: %s", PQerrorMessage(w->conn));
    return 0;
}

/* Room for @p need more bytes. */
static void reserve(tk_copy_t *w, size_t need)
{
    if (w->len + need > w->cap) {
        w->cap = (w->len + need) * 2;
        char *grown = tk_mem_alloc(w->cap);
        memcpy(grown, w->buf, w->len);
        free(w->buf);
        w->buf = grown;
    }
}

int tk_copy_row(tk_copy_t *w, int n, const char *const *values, tk_err_t *err)
{
    for (int i = 0; i < n; i++) {
        const char *v = values[i];
        if (v == NULL) {
            reserve(w, 3);
            memcpy(w->buf + w->len, "\\N", 2);
            w->len += 2;
        } else {
            size_t vlen = strlen(v);
            reserve(w, vlen * 2 + 2);
            char *d = w->buf + w->len;
            /* The text format's escapes: backslash, and the delimiters of fields and rows. */
            for (size_t j = 0; j < vlen; j++) {
                char ch = v[j];
                if (ch == '\\' || ch == '\t' || ch == '\n' || ch == '\r') {
                    *d++ = '\\';
                    ch = ch == '\t' ? 't' : ch == '\n' ? 'n' : ch == '\r' ? 'r' : '\\';
                }
                *d++ = ch;
            }
            w->len = (size_t)(d - w->buf);
        }
        w->buf[w->len++] = i + 1 < n ? '\t' : '\n';
    }
    return w->len >= COPY_CHUNK ? flush(w, err) : 0;
}

int tk_copy_end(tk_copy_t *w, int64_t *rows, tk_err_t *err)
{
    if (w == NULL)
        return 0;
    int rc = flush(w, err);
    PGconn *c = w->conn;
    if (PQputCopyEnd(c, rc == 0 ? NULL : "the client failed") != 1 && rc == 0)
        rc = tk_err_set(err, TK_EUNAVAIL, "db", "COPY: %s", PQerrorMessage(c));
    PGresult *res;
    bool first = true;
    while ((res = PQgetResult(c)) != NULL) {
        if (first && rc == 0) {
            if (PQresultStatus(res) == PGRES_COMMAND_OK) {
                if (rows)
                    *rows = strtoll(PQcmdTuples(res), NULL, 10);
            } else {
                rc = tk_pg_error_map(PQresultErrorField(res, PG_DIAG_SQLSTATE),
                                     PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME),
                                     PQresultErrorMessage(res), PQstatus(c) == CONNECTION_OK, err);
                if (rc == 0)
                    rc = tk_err_set(err, TK_EINTERNAL, "db", "COPY failed");
            }
        }
        first = false;
        PQclear(res);
    }
    free(w->buf);
    free(w);
    return rc;
}
