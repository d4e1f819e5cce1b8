/*
 * page.h - the bounded lists of the REST contract (DESIGN.md section 9): GET /api/tickets and
 * GET /api/orders keep the original's bare JSON array but return at most LIST_DEFAULT_LIMIT
 * items (100) unless `?limit=N` (1..LIST_MAX_LIMIT, 1000) says otherwise; `?cursor=<id>` starts
 * after the item with that id (keyset pagination: the next page's cursor is the last id of the
 * current one, and a page shorter than the limit is the last).
 */
#ifndef TK_PAGE_H
#define TK_PAGE_H

#include <stdbool.h>

#include "tk/http.h"
#include "tk/ids.h"

typedef struct tk_page {
    char limit[16];               /* decimal text, for a query parameter */
    char cursor[TK_UUID_LEN + 1]; /* "" when absent */
} tk_page_t;

/**
 * @brief Read ?limit and ?cursor of @p req into @p out (copied).
 * @return true; false after replying 400 (field limit: not an integer in range; field cursor:
 *         not a UUID, 'Invalid cursor').
 */
bool tk_page_or_respond(tk_http_req_t *req, tk_page_t *out);

#endif
