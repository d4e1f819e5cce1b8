/*
 * bench_expiration.c - the expiration scheduler under N pending expirations (default 100,000)
 * spread over a due window (default 60 s), on private topics of the real broker.
 *
 *   1. enqueue N order:created whose expiresAt are spread evenly over [start, start + window],
 *      start = now + lead (so that everything is pending before the first one is due);
 *   2. start the scheduler in a child process (the test harness's re-exec of /proc/self/exe),
 *      time its intake (first to last delay record on the broker) and read its peak memory
 *      (VmHWM) once the backlog is in; stop it (SIGTERM);
 *   3. start a second scheduler, which finds all N pending: read its VmRSS just before the first
 *      is due, consume expirations and take each order's lateness = the time its first
 *      expiration:complete reached this consumer - its dueAt (and the scheduler-side lateness
 *      from the envelope's time), then its VmHWM. Splitting the run keeps the memory of taking a
 *      backlog in (librdkafka's bounded fetch and produce queues) apart from the memory of
 *      holding N pending expirations, which is what must not grow with N.
 *
 * Prints key=value lines for bench/expiration/run.sh, which adds the ceiling (Kafka's own
 * ProducerPerformance on records of the same size) and the table.
 *
 * usage: bench_expiration [N] [window_s] [lead_s]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_expiration_util.h"
#include "tk_test.h"
#include "tk/cfg.h"
#include "tk/ids.h"
#include "tk/kafka.h"
#include "tk/mem.h"

struct order {
    char id[TK_UUID_LEN + 1];
    int64_t due;
};

static int by_id(const void *a, const void *b)
{
    return strcmp(((const struct order *)a)->id, ((const struct order *)b)->id);
}

static int by_value(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* A /proc/<pid>/status field in kB, -1 when absent. */
static long proc_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = strlen(field);
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            kb = strtol(line + n + 1, NULL, 10);
    fclose(f);
    return kb;
}

/* Records on all partitions of @p topic (sum of end offsets). */
static int64_t topic_end(rd_kafka_t *rk, const char *topic, int partitions)
{
    int64_t sum = 0;
    for (int p = 0; p < partitions; p++) {
        int64_t lo = 0, hi = 0;
        if (rd_kafka_query_watermark_offsets(rk, topic, p, &lo, &hi, 5000) == 0)
            sum += hi;
    }
    return sum;
}

static int64_t pct(const int64_t *sorted, size_t n, double q)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return sorted[i < n ? i : n - 1];
}

int main(int argc, char **argv)
{
    xt_child_main(argc, argv);
    long n = argc > 1 ? strtol(argv[1], NULL, 10) : 100000;
    long window_s = argc > 2 ? strtol(argv[2], NULL, 10) : 60;
    long lead_s = argc > 3 ? strtol(argv[3], NULL, 10) : 20;
    if (n <= 0 || window_s < 0 || lead_s <= 0) {
        fprintf(stderr, "usage: bench_expiration [N] [window_s] [lead_s]\n");
        return 2;
    }
    tk_err_t err = {0};
    if (tk_cfg_load(TK_CFG_NEED_KAFKA, &err) != 0) {
        fprintf(stderr, "bench_expiration: %s\n", err.message);
        return 2;
    }
    int partitions = tk_cfg()->kafka_partitions;
    xt_names_t names;
    xt_create(&names, partitions);

    /* 1. N pending orders, in due order as real orders arrive. */
    struct order *orders = tk_mem_alloc(sizeof(*orders) * (size_t)n);
    int64_t start = tk_now_ms() + lead_s * 1000;
    rd_kafka_t *prod = tk_test_producer();
    int64_t t0 = tk_mono_ms();
    for (long i = 0; i < n; i++) {
        xt_uuid(orders[i].id);
        orders[i].due = start + (int64_t)((double)i * (double)window_s * 1000.0 / (double)n);
        xt_publish_order_created(prod, names.orders, orders[i].id, orders[i].due, NULL);
    }
    xt_producer_free(prod);
    int64_t enqueue_ms = tk_mono_ms() - t0;

    /* The size of one delay record, for the ceiling's --record-size. */
    char rec[TK_EXPIRATION_RECORD_MAX];
    tk_expiration_record_t r = {.due_ms = start};
    snprintf(r.order_id, sizeof(r.order_id), "%.36s", orders[0].id);
    int record_bytes = tk_expiration_record_encode(&r, rec, sizeof(rec), NULL);

    /* 2. A first scheduler takes the backlog in: intake throughput and the memory it needs. */
    tk_expiration_opts_t opts = xt_opts(&names);
    xt_collector_t *col = xt_collector_new(names.expirations);
    pid_t child = xt_child_start(&names);
    rd_kafka_t *meta = tk_test_producer();
    int64_t first = 0, last = 0, give_up = tk_mono_ms() + lead_s * 1000 + 120000;
    while (tk_mono_ms() < give_up) {
        int64_t end = topic_end(meta, names.delay, partitions);
        if (end > 0 && first == 0)
            first = tk_mono_ms();
        if (end >= n) {
            last = tk_mono_ms();
            break;
        }
        usleep(10 * 1000);
    }
    rd_kafka_destroy(meta);
    double intake_rate = last > first ? (double)n * 1000.0 / (double)(last - first) : 0;
    tk_expiration_status_t st = {0};
    while (tk_mono_ms() < give_up &&
           (tk_expiration_status_opts(&opts, &st, &err) != 0 || st.intake_lag != 0))
        usleep(100 * 1000);
    long intake_hwm_kb = proc_kb(child, "VmHWM");
    kill(child, SIGTERM);
    int status = 0;
    waitpid(child, &status, 0);
    int exit_a = WIFEXITED(status) ? WEXITSTATUS(status) : -1;

    /* 3. A second scheduler starts with all N pending: its memory and the lateness it achieves. */
    child = xt_child_start(&names);
    while (tk_now_ms() < start - 300)
        usleep(10 * 1000);
    bool all_pending_before_due = tk_now_ms() < start;
    tk_expiration_status_opts(&opts, &st, &err);
    long rss_pending_kb = proc_kb(child, "VmRSS");
    int64_t collect_end = tk_mono_ms() + (start - tk_now_ms()) + window_s * 1000 + 120000;
    char rss_trace[4096] = "";
    size_t trace_len = 0;
    while (xt_distinct(col) < (size_t)n && tk_mono_ms() < collect_end) {
        xt_collect(col, (size_t)n, 2000);
        if (trace_len < sizeof(rss_trace) - 32)
            trace_len += (size_t)snprintf(rss_trace + trace_len, sizeof(rss_trace) - trace_len,
                                          "%s%ld", trace_len ? "," : "", proc_kb(child, "VmRSS"));
    }
    long hwm_kb = proc_kb(child, "VmHWM");
    kill(child, SIGTERM);
    waitpid(child, &status, 0);
    int exit_b = WIFEXITED(status) ? WEXITSTATUS(status) : -1;

    qsort(orders, (size_t)n, sizeof(*orders), by_id);
    size_t got = 0;
    const xt_fired_t *all = xt_collected(col, &got);
    int64_t *late_consumer = tk_mem_alloc(sizeof(int64_t) * (size_t)n);
    int64_t *late_sched = tk_mem_alloc(sizeof(int64_t) * (size_t)n);
    size_t m = 0, early = 0, invalid = 0;
    for (size_t i = 0; i < got; i++) {
        struct order key;
        snprintf(key.id, sizeof(key.id), "%.36s", all[i].order_id);
        struct order *o = bsearch(&key, orders, (size_t)n, sizeof(*orders), by_id);
        if (o == NULL || !all[i].valid) {
            invalid++;
            continue;
        }
        if (all[i].time_ms < o->due)
            early++;
        if (xt_find(col, o->id) != &all[i])
            continue; /* a duplicate: lateness counts the first one */
        late_consumer[m] = all[i].seen_ms - o->due;
        late_sched[m] = all[i].time_ms - o->due;
        m++;
    }
    qsort(late_consumer, m, sizeof(int64_t), by_value);
    qsort(late_sched, m, sizeof(int64_t), by_value);

    printf("pending=%ld\n", n);
    printf("window_s=%ld\n", window_s);
    printf("partitions=%d\n", partitions);
    printf("record_bytes=%d\n", record_bytes);
    printf("enqueue_ms=%lld\n", (long long)enqueue_ms);
    printf("intake_per_s=%.0f\n", intake_rate);
    printf("all_pending_before_first_due=%s\n", all_pending_before_due ? "yes" : "no");
    printf("expired=%zu\n", m);
    printf("duplicates=%zu\n", got - m - invalid);
    printf("invalid=%zu\n", invalid);
    printf("early=%zu\n", early);
    printf("lateness_p50_ms=%lld\n", (long long)pct(late_consumer, m, 0.50));
    printf("lateness_p99_ms=%lld\n", (long long)pct(late_consumer, m, 0.99));
    printf("lateness_max_ms=%lld\n", (long long)(m ? late_consumer[m - 1] : 0));
    printf("sched_lateness_p50_ms=%lld\n", (long long)pct(late_sched, m, 0.50));
    printf("sched_lateness_p99_ms=%lld\n", (long long)pct(late_sched, m, 0.99));
    printf("pending_seen=%lld\n", (long long)st.pending);
    printf("intake_peak_rss_kb=%ld\n", intake_hwm_kb);
    printf("rss_all_pending_kb=%ld\n", rss_pending_kb);
    printf("rss_peak_kb=%ld\n", hwm_kb);
    printf("rss_every_2s_kb=%s\n", rss_trace);
    printf("child_exit=%d,%d\n", exit_a, exit_b);

    free(late_consumer);
    free(late_sched);
    free(orders);
    xt_collector_free(col);
    xt_delete(&names);
    return m == (size_t)n && early == 0 && invalid == 0 ? 0 : 1;
}
