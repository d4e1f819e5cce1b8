/*
 * page.c - ?limit and ?cursor of the list endpoints (tk/page.h). Whether a cursor names a known
 * item is the query's business (it owns the table); here only its shape is checked.
 */
#include "tk/page.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "tk/cfg.h"

static void reply_bad_query(tk_http_req_t *req, const char *field, const char *message)
{
    json_t *errors = json_array();
    tk_http_errors_add(errors, field, message);
    tk_http_reply_errors(req, 400, errors);
}

bool tk_page_or_respond(tk_http_req_t *req, tk_page_t *out)
{
    int max = tk_cfg()->list_max_limit;
    long n = tk_cfg()->list_default_limit;
    out->cursor[0] = '\0';
    const char *v = tk_http_query(req, "limit");
    if (v != NULL) {
        char *end = NULL;
        errno = 0;
        n = strtol(v, &end, 10);
        if (errno != 0 || end == v || *end != '\0' || n < 1 || n > max) {
            char message[80];
            snprintf(message, sizeof(message), "limit must be an integer between 1 and %d", max);
            reply_bad_query(req, "limit", message);
            return false;
        }
    }
    snprintf(out->limit, sizeof(out->limit), "%ld", n);
    if ((v = tk_http_query(req, "cursor")) != NULL) {
        if (!tk_uuid_valid(v)) {
            reply_bad_query(req, "cursor", "Invalid cursor");
            return false;
        }
        snprintf(out->cursor, sizeof(out->cursor), "%s", v);
    }
    return true;
}
