/*
 * consistency.h - read your own writes (DESIGN.md section 6): a consistency token on every 2xx
 * command response, and queries that wait, bounded, until their read model covers the token.
 *
 * A token names aggregate versions: "ticket 0b1f... at version 3", "order 7c2e... at version 1".
 * A read model covers an entry when its row of that aggregate has at least that version; every
 * read model of ours keeps (id, version) per aggregate, so coverage is read from the read model
 * itself, in any process, with no state shared between the process that ran the command and the
 * one that serves the query. The projectors announce each commit with a PostgreSQL notification
 * (tk_tx__commit, after the projector's COMMIT), which wakes the waiting queries.
 *
 * The token is signed (HMAC-SHA256 with a key derived from JWT_KEY, truncated to 128 bits), so
 * a client can only send back entries the system issued; a bad, forged, expired or oversized
 * token is ignored (the query answers at once, never an error). Even a valid token costs at most
 * the bound (CONSISTENCY_WAIT_MS, default 2000), and a waiting query holds no worker thread.
 *
 * Wire format (then base64url without padding):
 *   u8 format (1) | u8 n (<= TK_CONSISTENCY_MAX_ENTRIES) |
 *   n * (u8 kind | 16 bytes uuid | u32 version BE | u32 issued unix seconds BE) | 16 bytes MAC
 */
#ifndef TK_CONSISTENCY_H
#define TK_CONSISTENCY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tk/err.h"
#include "tk/http.h"
#include "tk/ids.h"

/* The aggregate kinds a token can name. */
#define TK_CONSISTENCY_USER 'u'
#define TK_CONSISTENCY_TICKET 't'
#define TK_CONSISTENCY_ORDER 'o'

#define TK_CONSISTENCY_MAX_ENTRIES 8
/* Entries older than this are dropped: a read model that lags by a minute is broken, and
 * waiting for it would only slow every query of the client. Also the cookie's Max-Age. */
#define TK_CONSISTENCY_TTL_S 60
/* The longest valid token text (8 entries): 2 + 8 * 25 + 16 bytes in base64url. */
#define TK_CONSISTENCY_TOKEN_MAX 300
/* Requests parked at once in a process; past it a query answers at once, marked stale. */
#define TK_CONSISTENCY_MAX_PARKED 4096

/* The HTTP names: the token travels in this header (both ways) and this cookie (browsers);
 * a query answered past the bound carries TK_CONSISTENCY_STALE_HEADER: true. */
#define TK_CONSISTENCY_HEADER "x-consistency-token"
#define TK_CONSISTENCY_COOKIE "tk-consistency"
#define TK_CONSISTENCY_STALE_HEADER "x-consistency-stale"
/* The PostgreSQL channel of projector commits; the payload is the projection's name. */
#define TK_CONSISTENCY_CHANNEL "projection_applied"

typedef struct tk_consistency_entry {
    char kind; /* TK_CONSISTENCY_* */
    char id[TK_UUID_LEN + 1];
    int64_t version;  /* 0 .. UINT32_MAX */
    int64_t issued_s; /* unix seconds */
} tk_consistency_entry_t;

typedef struct tk_consistency_token {
    size_t n;
    tk_consistency_entry_t e[TK_CONSISTENCY_MAX_ENTRIES];
} tk_consistency_token_t;

/**
 * A read model a query reads: the aggregate kind it follows, where its rows live and which
 * projector writes it. @p table must have columns id (uuid) and version (integer). Constant
 * strings of the code, never input (they are pasted into SQL).
 */
typedef struct tk_consistency_model {
    char kind;
    const char *context;    /* its database */
    const char *table;      /* e.g. "ticket_view" */
    const char *projection; /* its projector's name in projection_offsets: the notification */
} tk_consistency_model_t;

/* ---- the token codec (pure; unit-tested) ---- */

/**
 * @brief Add (@p kind, @p id, @p version) issued at @p now_s: replaces an entry of the same
 *        aggregate with a lower version, and drops the oldest entry when full.
 * @param id borrowed UUID text (copied). @return 0, or TK_EINVAL for a bad kind, id or version.
 */
int tk_consistency_token_add(tk_consistency_token_t *t, char kind, const char *id, int64_t version,
                             int64_t now_s);

/**
 * @brief Encode and sign @p t with @p key into @p out (NUL-terminated base64url).
 * @param key borrowed secret (JWT_KEY). @return 0; TK_EINVAL when @p t is malformed.
 */
int tk_consistency_token_encode(const tk_consistency_token_t *t, const char *key,
                                char out[TK_CONSISTENCY_TOKEN_MAX + 1]);

/**
 * @brief Decode and verify @p len bytes of @p text. Entries older than TK_CONSISTENCY_TTL_S at
 *        @p now_s are dropped (the token stays valid).
 * @return 0 with @p out filled; TK_EINVAL (err says why) for anything else: too long, not
 *         base64url, an unknown format, a bad count or size, a wrong MAC, an entry issued more
 *         than a minute in the future or naming a malformed id. Never reads past @p len.
 */
int tk_consistency_token_decode(const char *text, size_t len, const char *key, int64_t now_s,
                                tk_consistency_token_t *out, tk_err_t *err);

/* ---- the HTTP side ---- */

/**
 * @brief After a command committed: add (@p kind, @p id, @p version) to the client's token (the
 *        request's header, else its cookie, when valid) and put the result on the response as
 *        the TK_CONSISTENCY_HEADER header and the TK_CONSISTENCY_COOKIE cookie. Call once, before
 *        the 2xx reply. @p version is the version the read models will show once they applied
 *        the command's effect (it may be one the write model has not reached yet, as for a
 *        payment, whose effect on the order comes later).
 * Thread: the request's handler.
 */
void tk_consistency_note(tk_http_req_t *req, char kind, const char *id, int64_t version);

/**
 * @brief At the start of a query handler (worker routes): make sure @p model covers the entries
 *        of the client's token that name its aggregates (only @p id's when not NULL).
 *
 * Without a token, or with a bad one, or with no entry for this model, or when the model covers
 * the token already: returns true at once, and the handler goes on. Otherwise the request is
 * parked (tk_http_park, no worker held) and false is returned: the handler must return without
 * replying. It runs again from the start once the model covers the token (a projector commit
 * notification woke the waiter and the versions are there), or once CONSISTENCY_WAIT_MS passed,
 * then with the TK_CONSISTENCY_STALE_HEADER header; either way this call then returns true.
 * A database error returns true: the handler meets it again and reports it.
 * Thread: a worker.
 */
bool tk_consistency_await(tk_http_req_t *req, const tk_consistency_model_t *model, const char *id);

/* ---- the waiter (tests; tk_consistency_await uses it) ---- */

/**
 * Called once per tk_consistency_wait: @p covered true when the model covered every condition,
 * false when the deadline passed first (or the waiter stopped). From the waiter's thread.
 */
typedef void tk_consistency_done_fn(void *arg, bool covered);

/**
 * @brief Wait, without blocking the caller, until @p model has every (id, version) of @p conds
 *        (entries of another kind are ignored), or @p wait_ms passed; then call @p done once.
 *        The process-wide waiter thread starts on first use. Conditions are checked once after
 *        the waiter LISTENs (no notification can be missed between the caller's check and this
 *        call), then on each notification of @p model's projection, and once at the deadline.
 * @param model borrowed, must outlive the wait (a static). @param conds copied.
 * @return 0; TK_EUNAVAIL when TK_CONSISTENCY_MAX_PARKED waits are pending (@p done not called).
 * Thread: any.
 */
int tk_consistency_wait(const tk_consistency_model_t *model, const tk_consistency_token_t *conds,
                        int wait_ms, tk_consistency_done_fn *done, void *arg);

/**
 * @brief Whether @p model covers every entry of @p conds of its kind, read on @p conn.
 * @return 1 covered, 0 not yet, or a negative TK_E* (a tk_pg error). Thread: the connection's.
 */
int tk_consistency_covered(PGconn *conn, const tk_consistency_model_t *model,
                           const tk_consistency_token_t *conds, tk_err_t *err);

/**
 * @brief Stop the waiter thread (finishing every pending wait with covered = false) and join it.
 *        For tests and shutdown; a later wait starts it again. Thread: any.
 */
void tk_consistency_shutdown(void);

#endif
