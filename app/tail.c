/*
 * tail.c - `ticketing events tail` (DESIGN.md section 2): print the records of event topics as
 * JSON lines, one per record, for people (| jq) and scripts:
 *
 *   {"topic":"tickets","partition":3,"offset":41,"key":"<id>","timestamp":"2026-...Z",
 *    "headers":{"ce_type":"ticket:created",...},"event":{<the envelope, byte for byte>}}
 *
 * A value that is not JSON is printed as a string ("event":"..."), and one that is not a valid
 * event envelope gets an "error" member with the decoder's message, so poison records are seen
 * rather than hidden. The envelope is spliced in as the broker holds it (not re-encoded), so what
 * tail shows is exactly what kcat shows.
 *
 * It reads with a throw-away consumer group that never joins (partitions are assigned) and never
 * commits, so it disturbs no projector. "From now" is resolved to each partition's high watermark
 * before the ready line goes to stderr: a record produced after that line is always printed.
 * Filters: --type (the ce_type header, else the envelope's type; repeatable, any may match) and
 * --key (exact). Ctrl-C or --max N stops it.
 */
#include "app.h"
#include "ev_catalog.h"
#include "ev_envelope.h"
#include "tk/ids.h"
#include "tk/kafka.h"
#include "tk/mem.h"
#include "tk/pg.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ARGS 16

typedef struct tail_opts {
    const char *topics[MAX_ARGS + 1];
    const char *types[MAX_ARGS + 1];
    int ntopics, ntypes;
    const char *key;
    bool from_beginning;
    long max; /* 0 = until Ctrl-C */
} tail_opts_t;

static void usage(FILE *out)
{
    fprintf(out, "usage: ticketing events tail [--topic T]... [--type X]... [--key K] "
                 "[--from-beginning] [--max N]\n"
                 "  topics default to users, tickets, orders, payments, expirations\n");
}

/* A JSON string of bytes that may not be UTF-8 (then "\\x<hex>"). Owned reference. */
static json_t *bytes_json(const void *data, size_t len)
{
    json_t *s = json_stringn(data, len);
    if (s != NULL)
        return s;
    char *hex = tk_pg_bytea_hex(data, len); /* not UTF-8: shown as bytea would be */
    s = json_stringn(hex, len * 2 + 2);
    free(hex);
    return s;
}

static json_t *headers_json(const rd_kafka_message_t *m)
{
    json_t *h = json_object();
    rd_kafka_headers_t *hdrs = NULL;
    if (rd_kafka_message_headers(m, &hdrs) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return h;
    const char *name = NULL;
    const void *value = NULL;
    size_t size = 0;
    for (size_t i = 0;
         rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; i++)
        json_object_set_new(h, name, value ? bytes_json(value, size) : json_null());
    return h;
}

/* The event type of m: its ce_type header, else the envelope's "type" (parsed is m's value as
 * JSON or NULL). Borrowed from m or parsed; "" when none. */
static const char *type_of(const rd_kafka_message_t *m, const json_t *parsed, char *buf,
                           size_t size)
{
    rd_kafka_headers_t *hdrs = NULL;
    const void *v = NULL;
    size_t len = 0;
    if (rd_kafka_message_headers(m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        rd_kafka_header_get_last(hdrs, TK_KAFKA_H_TYPE, &v, &len) == RD_KAFKA_RESP_ERR_NO_ERROR &&
        v != NULL) {
        snprintf(buf, size, "%.*s", (int)len, (const char *)v);
        return buf;
    }
    const char *t = json_string_value(json_object_get(parsed, "type"));
    return t ? t : "";
}

static bool wanted(const tail_opts_t *o, const rd_kafka_message_t *m, const json_t *parsed)
{
    if (o->key != NULL &&
        (m->key == NULL || m->key_len != strlen(o->key) || memcmp(m->key, o->key, m->key_len) != 0))
        return false;
    if (o->ntypes == 0)
        return true;
    char buf[128];
    const char *type = type_of(m, parsed, buf, sizeof(buf));
    for (int i = 0; i < o->ntypes; i++)
        if (strcmp(type, o->types[i]) == 0)
            return true;
    return false;
}

/* Print m as one JSON line. */
static void print_record(const rd_kafka_message_t *m, const json_t *parsed)
{
    json_t *line = json_object();
    json_object_set_new(line, "topic", json_string(rd_kafka_topic_name(m->rkt)));
    json_object_set_new(line, "partition", json_integer(m->partition));
    json_object_set_new(line, "offset", json_integer(m->offset));
    json_object_set_new(line, "key", m->key ? bytes_json(m->key, m->key_len) : json_null());
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(m, &tstype);
    if (ts >= 0) {
        char when[TK_TIME_LEN + 1];
        tk_time_format(ts, when);
        json_object_set_new(line, "timestamp", json_string(when));
    } else {
        json_object_set_new(line, "timestamp", json_null());
    }
    json_object_set_new(line, "headers", headers_json(m));

    ev_envelope_t env;
    tk_err_t derr = {0};
    if (ev_envelope_decode(m->payload, m->len, &env, &derr) == 0)
        ev_envelope_release(&env);
    else
        json_object_set_new(line, "error", json_string(derr.message));

    /* The value: spliced in raw when it is one line of JSON, so the bytes are the broker's. */
    bool raw = parsed != NULL && memchr(m->payload, '\n', m->len) == NULL &&
               memchr(m->payload, '\r', m->len) == NULL;
    if (!raw)
        json_object_set_new(line, "event",
                            parsed ? json_deep_copy(parsed)
                                   : bytes_json(m->payload ? m->payload : "", m->len));
    char *text = json_dumps(line, JSON_COMPACT);
    json_decref(line);
    if (text == NULL)
        return;
    if (raw) {
        size_t n = strlen(text);
        text[n - 1] = '\0'; /* drop the closing brace */
        printf("%s,\"event\":%.*s}\n", text, (int)m->len, (const char *)m->payload);
    } else {
        printf("%s\n", text);
    }
    fflush(stdout);
    free(text);
}

static int parse_args(int argc, char **argv, tail_opts_t *o)
{
    memset(o, 0, sizeof(*o));
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--from-beginning") == 0) {
            o->from_beginning = true;
        } else if (strcmp(a, "--topic") == 0 && v && o->ntopics < MAX_ARGS) {
            o->topics[o->ntopics++] = v;
            i++;
        } else if (strcmp(a, "--type") == 0 && v && o->ntypes < MAX_ARGS) {
            o->types[o->ntypes++] = v;
            i++;
        } else if (strcmp(a, "--key") == 0 && v) {
            o->key = v;
            i++;
        } else if (strcmp(a, "--max") == 0 && v && atol(v) > 0) {
            o->max = atol(v);
            i++;
        } else {
            fprintf(stderr, "ticketing events tail: bad argument '%s'\n", a);
            return -1;
        }
    }
    if (o->ntopics == 0) {
        const char *defaults[] = {EV_TOPIC_USERS, EV_TOPIC_TICKETS, EV_TOPIC_ORDERS,
                                  EV_TOPIC_PAYMENTS, EV_TOPIC_EXPIRATIONS};
        for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
            o->topics[o->ntopics++] = defaults[i];
    }
    return 0;
}

/* Assign every partition of the topics at its start or its current end. */
static int assign_all(rd_kafka_t *rk, const tail_opts_t *o, int *nparts)
{
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(32);
    int rc = 0;
    for (int i = 0; i < o->ntopics && rc == 0; i++) {
        rd_kafka_topic_t *t = rd_kafka_topic_new(rk, o->topics[i], NULL);
        const struct rd_kafka_metadata *md = NULL;
        rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, t, &md, 10000);
        if (e != RD_KAFKA_RESP_ERR_NO_ERROR || md->topic_cnt != 1 ||
            md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) {
            fprintf(stderr, "ticketing events tail: topic %s: %s\n", o->topics[i],
                    e != RD_KAFKA_RESP_ERR_NO_ERROR ? rd_kafka_err2str(e)
                    : md->topic_cnt == 1            ? rd_kafka_err2str(md->topics[0].err)
                                                    : "unknown");
            rc = -1;
        }
        for (int p = 0; rc == 0 && p < md->topics[0].partition_cnt; p++) {
            int64_t lo = 0, hi = RD_KAFKA_OFFSET_END;
            if (!o->from_beginning &&
                (e = rd_kafka_query_watermark_offsets(rk, o->topics[i], p, &lo, &hi, 10000)) !=
                    RD_KAFKA_RESP_ERR_NO_ERROR) {
                fprintf(stderr, "ticketing events tail: %s/%d: %s\n", o->topics[i], p,
                        rd_kafka_err2str(e));
                rc = -1;
                break;
            }
            rd_kafka_topic_partition_list_add(l, o->topics[i], p)->offset =
                o->from_beginning ? RD_KAFKA_OFFSET_BEGINNING : hi;
        }
        if (md != NULL)
            rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(t);
    }
    if (rc == 0 && rd_kafka_assign(rk, l) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fprintf(stderr, "ticketing events tail: assign failed\n");
        rc = -1;
    }
    *nparts = l->cnt;
    rd_kafka_topic_partition_list_destroy(l);
    return rc;
}

static int tail(const tail_opts_t *o)
{
    char group[64], id[TK_UUID_LEN + 1];
    tk_uuid_new(id);
    snprintf(group, sizeof(group), "tail.%s", id);
    tk_err_t err = {0};
    rd_kafka_t *rk = tk_kafka_consumer_new(group, &err);
    if (rk == NULL) {
        fprintf(stderr, "ticketing events tail: %s\n", err.message);
        return 1;
    }
    int nparts = 0, rc = 0;
    if (assign_all(rk, o, &nparts) != 0) {
        rc = 1;
        goto out;
    }
    fprintf(stderr, "ticketing events tail: reading %d partitions of %d topic(s) from %s\n", nparts,
            o->ntopics, o->from_beginning ? "the beginning" : "now");
    long printed = 0;
    while (!tk_app_stop && (o->max == 0 || printed < o->max)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 200);
        if (m == NULL)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
            json_t *parsed = m->payload ? json_loadb(m->payload, m->len, 0, NULL) : NULL;
            if (wanted(o, m, parsed)) {
                print_record(m, parsed);
                printed++;
            }
            json_decref(parsed);
        }
        rd_kafka_message_destroy(m);
    }
out:
    rd_kafka_consumer_close(rk);
    rd_kafka_destroy(rk);
    return rc;
}

int tk_app_events(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "tail") != 0) {
        usage(stderr);
        return 2;
    }
    tail_opts_t o;
    if (parse_args(argc, argv, &o) != 0) {
        usage(stderr);
        return 2;
    }
    return tail(&o);
}
