/*
 * http_metrics.c - GET /metrics: the server's own counters (responses by status class, time
 * spent, in flight, event streams, connections, requests refused at a bound), then the text of
 * each source registered with tk_http_metrics, in registration order.
 *
 * The route runs inline on the loop thread, so it reads atomics only, and each source returns a
 * text sampled elsewhere (a context's gauges, the application's Kafka and database figures).
 */
#include "http_int.h"

#include "tk/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void tk_http_metrics(tk_http_server_t *srv, tk_http_metrics_fn *fn, void *ud)
{
    if (srv->nmetrics == MAX_METRICS)
        abort(); /* a programming error caught at start-up */
    srv->metrics[srv->nmetrics++] = (struct metrics_source){fn, ud};
}

void tk_http__metrics(tk_http_req_t *r)
{
    tk_http_server_t *srv = r->srv;
    size_t cap = 0, len = 0;
    char *text = tk_mem_grow(NULL, &cap, 4096, 1);
    int n = snprintf(text, cap,
                     "# HELP tk_http_requests_total HTTP responses by status class.\n"
                     "# TYPE tk_http_requests_total counter\n");
    len = (size_t)n;
    for (int c = 1; c <= 5; c++)
        len +=
            (size_t)snprintf(text + len, cap - len, "tk_http_requests_total{class=\"%dxx\"} %ld\n",
                             c, atomic_load(&srv->requests_total[c]));
    len += (size_t)snprintf(text + len, cap - len,
                            "# HELP tk_http_request_duration_ms_sum Total time spent on requests.\n"
                            "# TYPE tk_http_request_duration_ms_sum counter\n"
                            "tk_http_request_duration_ms_sum %ld\n"
                            "# HELP tk_http_in_flight Requests being served.\n"
                            "# TYPE tk_http_in_flight gauge\n"
                            "tk_http_in_flight %ld\n"
                            "# HELP tk_http_event_streams Open server-sent event streams.\n"
                            "# TYPE tk_http_event_streams gauge\n"
                            "tk_http_event_streams %ld\n"
                            "# HELP tk_http_connections Open client connections.\n"
                            "# TYPE tk_http_connections gauge\n"
                            "tk_http_connections %ld\n"
                            "# HELP tk_http_rejected_total Requests refused at a bound (429/503).\n"
                            "# TYPE tk_http_rejected_total counter\n"
                            "tk_http_rejected_total %ld\n",
                            atomic_load(&srv->duration_ms_sum), atomic_load(&srv->in_flight),
                            atomic_load(&srv->sse_open), atomic_load(&srv->conns_open),
                            atomic_load(&srv->rejected_total));
    for (size_t i = 0; i < srv->nmetrics; i++) {
        char *more = srv->metrics[i].fn(srv->metrics[i].ud);
        size_t mlen = more != NULL ? strlen(more) : 0;
        text = tk_mem_grow(text, &cap, len + mlen + 1, 1);
        memcpy(text + len, more != NULL ? more : "", mlen + 1);
        len += mlen;
        free(more);
    }
    tk_http__set_body(r, 200, "text/plain; version=0.0.4", text, len);
}
