/*
 * ticket_view.c - the tickets read model: applies ticket:created and ticket:updated from topic
 * `tickets` to ticket_view (the latest state of each ticket) and ticket_history (every event).
 *
 * Why by version rather than by arrival: ticket events carry the ticket's whole state, so the
 * view keeps the state of the highest version seen (an upsert guarded by `version < excluded`),
 * and the history keeps one row per version (ON CONFLICT DO NOTHING). Applying an event twice,
 * or an old one after a new one, therefore changes nothing, which is what `ticketing replay`
 * needs to rebuild both tables from offset 0, and what makes a record the relay published twice
 * harmless without the loop's event-id dedupe: the spec says so (idempotent), and no
 * processed_events row is written for its events.
 *
 * view_apply_set does the same for a whole batch in two statements (the projector's fast path):
 * per ticket, the row of the highest version in the batch (its first occurrence) is upserted
 * under the same version guard, with created_at from the ticket's first event of the batch (the
 * one that would have inserted the row); every event goes to the history, the first occurrence
 * of a (ticket, version) winning as with one insert after another. Rows arrive as one binary
 * array per column (unnest), written straight into tk_sbufs: building a jansson tree per row
 * and dumping it was most of the projector's own CPU time in the profile, and a JSON array
 * (json_to_recordset) was parsed twice by PostgreSQL. The history stores each event as the
 * record's own text (ev_envelope_t.raw, the event's encoding as published): no encoding again.
 *
 * view_fold (for `ticketing replay`, tk_projector_fold_t) is the same model in memory: a map of
 * ticket -> its latest row (replaced only by a higher version; created_at of the first event),
 * and a set of (ticket, version) whose first event's history row is kept, COPied in chunks as it
 * comes (no later event changes it); the view rows are COPied once, at the end.
 */
#include "tickets_read.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ev_catalog.h"
#include "ev_ticket.h"
#include "tk/fold.h"
#include "tk/mem.h"
#include "tk/pg.h"
#include "tk/sbuf.h"

/* The envelope text stored in ticket_history: the record as it was read when that is already
 * the event's encoding (ev_envelope_t.raw), else encoded again. *text is owned when *owned. */
static int history_text(const ev_envelope_t *env, const char **text, size_t *len, char **owned,
                        tk_err_t *err)
{
    *owned = NULL;
    if (env->raw != NULL) {
        *text = env->raw;
        *len = env->raw_len;
        return 0;
    }
    int rc = ev_envelope_encode(env, owned, len, err);
    *text = *owned;
    return rc;
}

static int view_apply(tk_tx_t *tx, const ev_envelope_t *env, void *ud, tk_err_t *err)
{
    (void)ud;
    ev_ticket_t t;
    int rc = 0;
    char *owned = NULL, *text = NULL;
    const char *envelope = NULL;
    size_t envelope_len = 0;
    int64_t changed = 0, added = 0;

    if (strcmp(env->type, "ticket:created") == 0)
        rc = ev_ticket_created_from_json(env->data, &t, err);
    else if (strcmp(env->type, "ticket:updated") == 0)
        rc = ev_ticket_updated_from_json(env->data, &t, err);
    else
        return TK_APPLY_SKIP;
    if (rc != 0)
        goto out;

    char cents[24], version[24];
    snprintf(cents, sizeof(cents), "%lld", (long long)t.price_cents);
    snprintf(version, sizeof(version), "%lld", (long long)t.version);
    const char *view[] = {t.id,    t.title,  cents, t.user_id, t.order_id[0] ? t.order_id : NULL,
                          version, env->time};
    if ((rc = tk_pg_run_prepared(
             tk_tx_conn(tx),
             "INSERT INTO ticket_view AS v (id, title, price_cents, user_id, order_id, "
             "version, created_at) VALUES ($1, $2, $3::bigint, $4, $5, $6::integer, "
             "$7::timestamptz) ON CONFLICT (id) DO UPDATE SET title = excluded.title, "
             "price_cents = excluded.price_cents, user_id = excluded.user_id, "
             "order_id = excluded.order_id, version = excluded.version "
             "WHERE v.version < excluded.version",
             7, view, &changed, err)) != 0)
        goto out;

    if ((rc = history_text(env, &envelope, &envelope_len, &owned, err)) != 0)
        goto out;
    text = tk_mem_strndup(envelope, envelope_len); /* a parameter is NUL-terminated */
    const char *history[] = {t.id, version, env->id, env->type, text};
    if ((rc = tk_pg_run_prepared(
             tk_tx_conn(tx),
             "INSERT INTO ticket_history (ticket_id, version, event_id, type, envelope) "
             "VALUES ($1, $2::integer, $3, $4, $5) ON CONFLICT DO NOTHING",
             5, history, &added, err)) != 0)
        goto out;
    rc = changed + added > 0 ? TK_APPLY_OK : TK_APPLY_SKIP;
out:
    free(owned);
    free(text);
    return rc;
}

/* One decoded ticket event of a batch. */
typedef struct row {
    ev_ticket_t t;
    int index; /* position in the batch */
} row_t;

/* By ticket id, then version descending, then batch position: the first row of an id is the
 * one whose state the view keeps. */
static int cmp_view(const void *a, const void *b)
{
    const row_t *x = a, *y = b;
    int c = strcmp(x->t.id, y->t.id);
    if (c != 0)
        return c;
    if (x->t.version != y->t.version)
        return x->t.version > y->t.version ? -1 : 1;
    return (x->index > y->index) - (x->index < y->index);
}

typedef struct id_ref {
    const char *id;
    int index;
} id_ref_t;

static int cmp_id(const void *a, const void *b)
{
    return strcmp(((const id_ref_t *)a)->id, ((const id_ref_t *)b)->id);
}

/* One column of a batch as a one-dimensional array parameter in PostgreSQL's binary format (what
 * array_recv reads: a header, then each element's length and bytes, all big-endian), read with
 * unnest(). Why: a JSON array parameter (json_to_recordset, before) was parsed twice by
 * PostgreSQL, by the ::json cast's check and by json_to_recordset, which also copied each
 * envelope character by character: two thirds of the backend's time per batch in the profile;
 * text array literals still cost a quarter of it in array_in. A binary element is copied as it
 * is: 16 bytes of a uuid, 4 of an integer, the bytes of a text (checked as UTF-8 by the server). */
typedef struct column {
    tk_sbuf_t b; /* ARRAY_HEADER bytes, patched by col_end, then the elements */
    Oid elem;
    int32_t n;
    bool nulls;
} column_t;

#define ARRAY_HEADER 20 /* ndim, has-nulls flag, element type, then length and lower bound */
#define OID_INT4 23
#define OID_INT8 20
#define OID_TEXT 25
#define OID_UUID 2950

static void put_be(unsigned char *out, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        out[i] = (unsigned char)(v >> (8 * (bytes - 1 - i)));
}

/* One element of @p len bytes (-1: NULL). */
static void col_elem(column_t *c, const void *p, int32_t len)
{
    unsigned char head[ARRAY_HEADER] = {0};
    if (c->b.len == 0)
        tk_sbuf_append(&c->b, (const char *)head, ARRAY_HEADER);
    put_be(head, (uint32_t)len, 4);
    tk_sbuf_append(&c->b, (const char *)head, 4);
    if (len > 0)
        tk_sbuf_append(&c->b, p, (size_t)len);
    c->nulls |= len < 0;
    c->n++;
}

/* A UUID in its canonical text form (the decoders accept no other). False when it is not. */
static bool col_uuid(column_t *c, const char *text)
{
    uint8_t bytes[16];
    if (!tk_uuid_to_bytes(text, bytes))
        return false;
    col_elem(c, bytes, 16);
    return true;
}

static void col_int(column_t *c, int64_t v, int bytes)
{
    unsigned char out[8];
    put_be(out, (uint64_t)v, bytes);
    col_elem(c, out, bytes);
}

/* The parameter, its length in *len. */
static const char *col_end(column_t *c, int *len)
{
    unsigned char head[ARRAY_HEADER] = {0};
    if (c->b.len == 0) /* no element: a zero-dimensional array */
        tk_sbuf_append(&c->b, (const char *)head, 12);
    put_be(head, c->n > 0 ? 1 : 0, 4);
    put_be(head + 4, c->nulls ? 1 : 0, 4);
    put_be(head + 8, c->elem, 4);
    put_be(head + 12, (uint32_t)c->n, 4);
    put_be(head + 16, 1, 4);
    memcpy(c->b.data, head, c->n > 0 ? ARRAY_HEADER : 12);
    *len = (int)c->b.len;
    return c->b.data;
}

enum { H_TICKET, H_VERSION, H_EVENT, H_TYPE, H_ENVELOPE, H_COLS };
enum { V_ID, V_TITLE, V_CENTS, V_USER, V_ORDER, V_VERSION, V_COLS };

/* Appends one ticket_history row of the batch to its columns. The envelope is the record's own
 * text (history_text): never encoded again. */
static int history_row(column_t *h, const ev_ticket_t *t, const ev_envelope_t *env, tk_err_t *err)
{
    const char *envelope = NULL;
    size_t envelope_len = 0;
    char *owned = NULL;
    int rc = history_text(env, &envelope, &envelope_len, &owned, err);
    if (rc != 0)
        return rc;
    if (!col_uuid(&h[H_TICKET], t->id) || !col_uuid(&h[H_EVENT], env->id) ||
        envelope_len > INT32_MAX) {
        free(owned);
        return TK_APPLY_RETRY; /* not for the set: view_apply reports it, record by record */
    }
    col_int(&h[H_VERSION], t->version, 4);
    col_elem(&h[H_TYPE], env->type, (int32_t)strlen(env->type));
    col_elem(&h[H_ENVELOPE], envelope, (int32_t)envelope_len);
    free(owned);
    return 0;
}

/* Appends the ticket_view row of @p t (the state the view keeps) to its columns, and its
 * created_at to @p created (a text array literal: "{t1,t2}"; the times have no character that
 * needs quoting, and the server's parse of a timestamp stays the one view_apply gets). */
static bool view_row(column_t *v, tk_sbuf_t *created, const ev_ticket_t *t, const char *created_at)
{
    if (!col_uuid(&v[V_ID], t->id) || !col_uuid(&v[V_USER], t->user_id) ||
        (t->order_id[0] && !col_uuid(&v[V_ORDER], t->order_id)))
        return false;
    if (!t->order_id[0])
        col_elem(&v[V_ORDER], NULL, -1);
    col_elem(&v[V_TITLE], t->title, (int32_t)strlen(t->title));
    col_int(&v[V_CENTS], t->price_cents, 8);
    col_int(&v[V_VERSION], t->version, 4);
    tk_sbuf_append(created, created->len == 0 ? "{" : ",", 1);
    tk_sbuf_puts(created, created_at);
    return true;
}

static int view_apply_set(tk_tx_t *tx, const ev_envelope_t *const *envs, int n, int *results,
                          void *ud, tk_err_t *err)
{
    (void)ud;
    row_t *rows = tk_mem_zalloc(((size_t)n + 1) * sizeof(*rows));
    column_t view[V_COLS] = {{.elem = OID_UUID}, {.elem = OID_TEXT}, {.elem = OID_INT8},
                             {.elem = OID_UUID}, {.elem = OID_UUID}, {.elem = OID_INT4}};
    column_t history[H_COLS] = {{.elem = OID_UUID},
                                {.elem = OID_INT4},
                                {.elem = OID_UUID},
                                {.elem = OID_TEXT},
                                {.elem = OID_TEXT}};
    tk_sbuf_t created = {0};
    PGresult *res = NULL;
    int nrows = 0, rc = 0;

    for (int i = 0; i < n; i++) {
        results[i] = TK_APPLY_SKIP;
        int r = 0;
        if (strcmp(envs[i]->type, "ticket:created") == 0)
            r = ev_ticket_created_from_json(envs[i]->data, &rows[nrows].t, err);
        else if (strcmp(envs[i]->type, "ticket:updated") == 0)
            r = ev_ticket_updated_from_json(envs[i]->data, &rows[nrows].t, err);
        else
            continue;
        /* view_apply dead-letters it, record by record; so a version the integer columns
         * cannot hold, which the server would refuse in view_apply's text parameters */
        if (r != 0 || rows[nrows].t.version > INT32_MAX) {
            rc = TK_APPLY_RETRY;
            goto out;
        }
        if ((rc = history_row(history, &rows[nrows].t, envs[i], err)) != 0)
            goto out;
        rows[nrows++].index = i;
    }
    if (nrows == 0)
        goto out;

    /* created_at of each ticket: the time of its first event in the batch. */
    qsort(rows, (size_t)nrows, sizeof(*rows), cmp_view);
    for (int a = 0; a < nrows;) {
        int b = a, first = rows[a].index;
        for (; b < nrows && strcmp(rows[b].t.id, rows[a].t.id) == 0; b++)
            if (rows[b].index < first)
                first = rows[b].index;
        if (!view_row(view, &created, &rows[a].t, envs[first]->time)) {
            rc = TK_APPLY_RETRY;
            goto out;
        }
        a = b;
    }
    tk_sbuf_puts(&created, "}");
    const char *p1[V_COLS + 1];
    int l1[V_COLS + 1], f1[V_COLS + 1];
    for (int c = 0; c < V_COLS; c++) {
        p1[c] = col_end(&view[c], &l1[c]);
        f1[c] = 1;
    }
    p1[V_COLS] = created.data;
    l1[V_COLS] = 0;
    f1[V_COLS] = 0;
    if ((res = tk_pg_exec_prepared_binary(
             tk_tx_conn(tx),
             "INSERT INTO ticket_view AS v (id, title, price_cents, user_id, order_id, version, "
             "created_at) SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::uuid[], "
             "$5::uuid[], $6::integer[], $7::timestamptz[]) "
             "ON CONFLICT (id) DO UPDATE SET title = excluded.title, "
             "price_cents = excluded.price_cents, user_id = excluded.user_id, "
             "order_id = excluded.order_id, version = excluded.version "
             "WHERE v.version < excluded.version",
             V_COLS + 1, p1, l1, f1, err)) == NULL) {
        rc = err ? err->code : TK_EUNAVAIL;
        goto out;
    }
    PQclear(res);
    res = NULL;
    /* ORDER BY ordinality: the first of two rows with one key is the one inserted. */
    const char *p2[H_COLS];
    int l2[H_COLS], f2[H_COLS];
    for (int c = 0; c < H_COLS; c++) {
        p2[c] = col_end(&history[c], &l2[c]);
        f2[c] = 1;
    }
    if ((res = tk_pg_exec_prepared_binary(
             tk_tx_conn(tx),
             "INSERT INTO ticket_history (ticket_id, version, event_id, type, envelope) "
             "SELECT x.ticket_id, x.version, x.event_id, x.type, x.envelope "
             "FROM unnest($1::uuid[], $2::integer[], $3::uuid[], $4::text[], $5::text[]) "
             "WITH ORDINALITY AS x(ticket_id, version, event_id, type, envelope, n) ORDER BY x.n "
             "ON CONFLICT DO NOTHING RETURNING event_id::text",
             H_COLS, p2, l2, f2, err)) == NULL) {
        rc = err ? err->code : TK_EUNAVAIL;
        goto out;
    }
    /* Counts only: an event whose history row is new changed the model. */
    id_ref_t *ids = tk_mem_zalloc(((size_t)n + 1) * sizeof(*ids));
    for (int i = 0; i < n; i++)
        ids[i] = (id_ref_t){envs[i]->id, i};
    qsort(ids, (size_t)n, sizeof(*ids), cmp_id);
    for (int r = 0; r < PQntuples(res); r++) {
        id_ref_t key = {PQgetvalue(res, r, 0), 0};
        const id_ref_t *hit = bsearch(&key, ids, (size_t)n, sizeof(*ids), cmp_id);
        if (hit != NULL)
            results[hit->index] = TK_APPLY_OK;
    }
    free(ids);
out:
    PQclear(res);
    for (int c = 0; c < V_COLS; c++)
        tk_sbuf_free(&view[c].b);
    for (int c = 0; c < H_COLS; c++)
        tk_sbuf_free(&history[c].b);
    tk_sbuf_free(&created);
    free(rows);
    return rc;
}

/* ---- the fold, for `ticketing replay` ------------------------------------------------------ */

/* The latest state of one ticket, as its ticket_view row. */
typedef struct fold_view {
    char *title; /* owned */
    int64_t price_cents, version;
    char id[TK_UUID_LEN + 1], user_id[TK_UUID_LEN + 1], order_id[TK_UUID_LEN + 1];
    char created_at[TK_TIME_LEN + 1];
} fold_view_t;

/* A ticket_history row not written yet. */
typedef struct fold_history {
    char ticket_id[TK_UUID_LEN + 1], event_id[TK_UUID_LEN + 1];
    const char *type; /* static: the catalog's name */
    int64_t version;
    char *envelope; /* owned */
} fold_history_t;

/* A history key: the ticket id's bytes and the version. */
typedef struct history_key {
    uint8_t ticket[16];
    int64_t version;
} history_key_t;

typedef struct fold {
    tk_fold_keys_t *tickets; /* ticket id bytes -> index in views */
    fold_view_t *views;
    size_t capviews;
    tk_fold_keys_t *versions; /* (ticket, version) rows of the history, written or not */
    fold_history_t *pending;  /* history rows to write */
    size_t npending, cappending;
} fold_t;

static void *view_fold_begin(void *ud)
{
    (void)ud;
    fold_t *f = tk_mem_zalloc(sizeof(*f));
    f->tickets = tk_fold_keys_new(16);
    f->versions = tk_fold_keys_new(sizeof(history_key_t));
    return f;
}

static void view_fold_end(void *state, void *ud)
{
    (void)ud;
    fold_t *f = state;
    if (f == NULL)
        return;
    for (size_t i = 0; i < tk_fold_keys_count(f->tickets); i++)
        free(f->views[i].title);
    for (size_t i = 0; i < f->npending; i++)
        free(f->pending[i].envelope);
    tk_fold_keys_free(f->tickets);
    tk_fold_keys_free(f->versions);
    free(f->views);
    free(f->pending);
    free(f);
}

/* view_apply in memory: the upsert guarded by version, the history insert of a new (ticket,
 * version). Nothing changes before every step that can fail has passed. */
/* The history row's text (history_text, owned), on a worker thread: an encode when the record
 * is not already the event's encoding, else a copy (the record goes before the fold writes). */
static void *view_fold_prepare(const ev_envelope_t *env, void *ud)
{
    (void)ud;
    const char *text = NULL;
    char *owned = NULL;
    size_t len = 0;
    if (strcmp(env->type, "ticket:created") != 0 && strcmp(env->type, "ticket:updated") != 0)
        return NULL;
    if (history_text(env, &text, &len, &owned, NULL) != 0)
        return NULL; /* add meets the error again and reports it */
    return owned != NULL ? owned : tk_mem_strndup(text, len);
}

static void view_fold_release(void *prepared, void *ud)
{
    (void)ud;
    free(prepared);
}

static int view_fold_add(void *state, const ev_envelope_t *env, void **prepared, void *ud,
                         tk_err_t *err)
{
    (void)ud;
    fold_t *f = state;
    ev_ticket_t t;
    int rc = 0;
    const char *type = NULL;
    if (strcmp(env->type, "ticket:created") == 0) {
        type = "ticket:created";
        rc = ev_ticket_created_from_json(env->data, &t, err);
    } else if (strcmp(env->type, "ticket:updated") == 0) {
        type = "ticket:updated";
        rc = ev_ticket_updated_from_json(env->data, &t, err);
    } else {
        return TK_APPLY_SKIP;
    }
    if (rc != 0)
        return rc;
    history_key_t hk;
    memset(&hk, 0, sizeof(hk));
    if (!tk_uuid_to_bytes(t.id, hk.ticket))
        return tk_err_set(err, TK_EINVAL, "id", "not a UUID: %s", t.id);
    hk.version = t.version;
    char *text = NULL;
    bool new_version = tk_fold_keys_find(f->versions, &hk) < 0;
    if (new_version && prepared != NULL && *prepared != NULL) {
        text = *prepared; /* taken */
        *prepared = NULL;
    } else if (new_version) {
        const char *borrowed = NULL;
        size_t len = 0;
        if ((rc = history_text(env, &borrowed, &len, &text, err)) != 0)
            return rc;
        if (text == NULL)
            text = tk_mem_strndup(borrowed, len);
    }

    bool changed = false, added = false;
    int64_t i = tk_fold_keys_add(f->tickets, hk.ticket, &added);
    fold_view_t *v;
    if (added) {
        f->views = tk_mem_grow(f->views, &f->capviews, (size_t)i + 1, sizeof(*f->views));
        v = &f->views[i];
        memset(v, 0, sizeof(*v));
        snprintf(v->created_at, sizeof(v->created_at), "%s", env->time);
    } else {
        v = &f->views[i];
    }
    if (added || v->version < t.version) {
        free(v->title);
        v->title = tk_mem_strdup(t.title);
        v->price_cents = t.price_cents;
        v->version = t.version;
        memcpy(v->id, t.id, sizeof(v->id));
        memcpy(v->user_id, t.user_id, sizeof(v->user_id));
        memcpy(v->order_id, t.order_id, sizeof(v->order_id));
        changed = true;
    }
    if (new_version) {
        tk_fold_keys_add(f->versions, &hk, NULL);
        f->pending = tk_mem_grow(f->pending, &f->cappending, f->npending + 1, sizeof(*f->pending));
        fold_history_t *h = &f->pending[f->npending++];
        memcpy(h->ticket_id, t.id, sizeof(h->ticket_id));
        memcpy(h->event_id, env->id, sizeof(h->event_id));
        h->type = type;
        h->version = t.version;
        h->envelope = text;
    }
    return changed || new_version ? TK_APPLY_OK : TK_APPLY_SKIP;
}

/* History rows are final once folded (the first of a (ticket, version) wins): each write COPYs
 * the pending ones; the view rows go once, with the last write. */
static int view_fold_write(void *state, tk_tx_t *tx, bool final, void *ud, tk_err_t *err)
{
    (void)ud;
    fold_t *f = state;
    char num[24];
    int rc = 0;
    tk_copy_t *c = NULL;
    if (f->npending > 0) {
        if ((c = tk_copy_begin(tx, "ticket_history", "ticket_id, version, event_id, type, envelope",
                               err)) == NULL)
            return err ? err->code : TK_EUNAVAIL;
        for (size_t i = 0; i < f->npending && rc == 0; i++) {
            const fold_history_t *h = &f->pending[i];
            snprintf(num, sizeof(num), "%lld", (long long)h->version);
            const char *row[] = {h->ticket_id, num, h->event_id, h->type, h->envelope};
            rc = tk_copy_row(c, 5, row, err);
        }
        int erc = tk_copy_end(c, NULL, rc == 0 ? err : NULL);
        if (rc == 0)
            rc = erc;
        for (size_t i = 0; i < f->npending; i++)
            free(f->pending[i].envelope);
        f->npending = 0;
        if (rc != 0)
            return rc;
    }
    size_t nviews = tk_fold_keys_count(f->tickets);
    if (!final || nviews == 0)
        return 0;
    if ((c = tk_copy_begin(tx, "ticket_view",
                           "id, title, price_cents, user_id, order_id, version, created_at",
                           err)) == NULL)
        return err ? err->code : TK_EUNAVAIL;
    for (size_t i = 0; i < nviews && rc == 0; i++) {
        const fold_view_t *v = &f->views[i];
        char cents[24];
        snprintf(cents, sizeof(cents), "%lld", (long long)v->price_cents);
        snprintf(num, sizeof(num), "%lld", (long long)v->version);
        const char *row[] = {
            v->id, v->title,     cents, v->user_id, v->order_id[0] ? v->order_id : NULL,
            num,   v->created_at};
        rc = tk_copy_row(c, 7, row, err);
    }
    int erc = tk_copy_end(c, NULL, rc == 0 ? err : NULL);
    return rc != 0 ? rc : erc;
}

static const tk_projector_fold_t view_fold = {
    .begin = view_fold_begin,
    .prepare = view_fold_prepare,
    .release = view_fold_release,
    .add = view_fold_add,
    .write = view_fold_write,
    .end = view_fold_end,
};

static const char *const view_topics[] = {EV_TOPIC_TICKETS, NULL};
static const char *const view_tables[] = {"ticket_view", "ticket_history", NULL};

const tk_projector_spec_t tk_tickets_view_projector = {
    .context = "tickets",
    .name = "ticket_view",
    .topics = view_topics,
    .apply = view_apply,
    .apply_set = view_apply_set,
    .idempotent = true, /* version-gated upsert + history ON CONFLICT DO NOTHING */
    .tables = view_tables,
    .fold = &view_fold,
};
