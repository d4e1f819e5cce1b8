/*
 * fold.h - what a projection's fold (tk_projector_fold_t, projector.h) uses to rebuild its tables
 * at the speed of the log (DESIGN.md section 6, `ticketing replay`): a set of fixed-size keys in
 * memory (which event of a key came first, which state is the latest) and a COPY writer that
 * loads rows in bulk instead of one statement per row.
 */
#ifndef TK_FOLD_H
#define TK_FOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tk/err.h"
#include "tk/tx.h"

/* ---- a set of keys --------------------------------------------------------------------------- */

/* Keys of one fixed size, each given a dense index (0, 1, 2, ... in order of addition), so that
 * the caller keeps its values in an array of its own. */
typedef struct tk_fold_keys tk_fold_keys_t;

/**
 * @brief An empty set of keys of @p key_len bytes (1..64).
 * @return the set (aborts when out of memory). Ownership: owned, free with tk_fold_keys_free.
 * Thread: one at a time.
 */
tk_fold_keys_t *tk_fold_keys_new(size_t key_len);

/** @brief The index of @p key (key_len bytes, borrowed), or -1 when absent. */
int64_t tk_fold_keys_find(const tk_fold_keys_t *k, const void *key);

/**
 * @brief Add @p key (borrowed, copied) unless present.
 * @param added may be NULL; set to true when the key was new.
 * @return its index: the number of keys before it when new.
 */
int64_t tk_fold_keys_add(tk_fold_keys_t *k, const void *key, bool *added);

/** @brief The number of keys. */
size_t tk_fold_keys_count(const tk_fold_keys_t *k);

/** @brief Free. Accepts NULL. */
void tk_fold_keys_free(tk_fold_keys_t *k);

/* ---- COPY ------------------------------------------------------------------------------------ */

/* One COPY ... FROM STDIN (text format) in progress on a transaction's connection. */
typedef struct tk_copy tk_copy_t;

/**
 * @brief Start COPY @p table (@p columns) FROM STDIN inside the open transaction of @p tx. No
 *        other statement may run on it until tk_copy_end.
 * @param table, columns borrowed, spliced into the SQL: trusted identifiers only ("ticket_view",
 *        "id, title, version").
 * @return the writer; NULL with TK_EUNAVAIL (connection) or the statement's error mapped.
 * Ownership: owned, released by tk_copy_end (always call it, also after a failed row).
 * Thread: the transaction's.
 */
tk_copy_t *tk_copy_begin(tk_tx_t *tx, const char *table, const char *columns, tk_err_t *err);

/**
 * @brief Append one row of @p n values in their text form (NULL = SQL NULL), escaped for the
 *        COPY text format. Buffered: sent in large chunks.
 * @param values borrowed. @return 0, or TK_EUNAVAIL when the connection failed.
 */
int tk_copy_row(tk_copy_t *c, int n, const char *const *values, tk_err_t *err);

/**
 * @brief Send the rest, end the COPY and wait for its result. Frees @p c in every case (NULL
 *        accepted: returns 0).
 * @param rows may be NULL; receives the number of rows the server loaded.
 * @return 0, or the server's error (a constraint, a bad value) mapped to a TK_E*.
 */
int tk_copy_end(tk_copy_t *c, int64_t *rows, tk_err_t *err);

#endif
