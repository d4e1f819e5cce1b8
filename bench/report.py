#!/usr/bin/env python3
"""bench/report.py RESULTS.tsv RESULTS.json - the table of bench/run.sh (stdout) and its JSON.

Each row: the figure, its value, the ceiling measured in the same run, the ratio, the target and
whether the target is met. A figure that could not be measured shows "n/a" and counts as missed.
"""
import json
import sys

raw = {}
for line in open(sys.argv[1]):
    k, _, v = line.rstrip("\n").partition("\t")
    raw[k] = v


def num(k):
    try:
        return float(raw.get(k, ""))
    except ValueError:
        return None


rows = []


def row(figure, value, unit, ceiling=None, ceiling_name="", ratio_min=None, target="", ok=None):
    ratio = value / ceiling if value is not None and ceiling else None
    if ok is None and ratio_min is not None:
        ok = ratio is not None and ratio >= ratio_min
    rows.append({"figure": figure, "value": value, "unit": unit, "ceiling": ceiling,
                 "ceiling_name": ceiling_name, "ratio": ratio, "target": target, "met": bool(ok)})


p99 = num("fresh_cmd_p99_ms")
row("POST /api/tickets accepted/s", num("post_tickets_accepted_per_s"), "req/s",
    num("pgbench_n_tps"), "pgbench -N, same clients", 0.8, ">= 0.8")
row("POST /api/tickets p99 at 50% of max", p99, "ms", None, "", None, "<= 20 ms",
    p99 is not None and p99 <= 20)
row("POST /api/orders accepted/s", num("post_orders_accepted_per_s"), "req/s",
    num("pgbench_n_tps"), "pgbench -N, same clients", 0.8, ">= 0.8")
row("GET /api/tickets/:id", num("get_ticket_rps"), "req/s", num("pgbench_get_ticket_tps"),
    "pgbench, same query", 0.8, ">= 0.8")
row("GET /api/orders", num("get_orders_rps"), "req/s", num("pgbench_get_orders_tps"),
    "pgbench, same query", 0.8, ">= 0.8")
for p, lim in (("50", 5), ("99", 50), ("999", 200)):
    v = num("fresh_fresh_p%s_ms" % p)
    row("freshness p%s (2xx -> visible)" % (p if p != "999" else "99.9"), v, "ms", None, "", None,
        "<= %d ms" % lim, v is not None and v <= lim)
row("live projector (tickets view), backlog", num("proj_live_per_s"), "events/s",
    num("kafka_consumer_per_s"), "ConsumerPerformance, same topic", None, ">= 20k/s",
    (num("proj_live_per_s") or 0) >= 20000)
row("outbox relay", num("relay_per_s"), "rows/s", num("kafka_producer_per_s"),
    "ProducerPerformance, acks=all, idempotent", 0.7, ">= 0.7, 0 skipped")
row("outbox relay rows skipped", num("relay_skipped"), "rows", None, "", None, "0",
    num("relay_skipped") == 0)
row("replay build rate", num("proj_replay_build_per_s"), "events/s", None, "", None,
    ">= 100k/s", (num("proj_replay_build_per_s") or 0) >= 100000)
ms = num("proj_replay_ms")
row("replay %s events: rebuild+verify+swap" % raw.get("proj_published", "?"),
    ms / 1000 if ms is not None else None, "s", None, "", None, "1M in <= 20 s",
    raw.get("proj_replay_swapped") == "1" and ms is not None and num("proj_published")
    and ms / 1000 <= 20 * num("proj_published") / 1e6)
for role in ("serve", "project", "relay"):
    for when in ("idle", "load"):
        v = num("rss_%s_%s_kb" % (when, role))
        row("RSS %s, %s" % (role, "idle" if when == "idle" else "peak under load"),
            v / 1024 if v is not None else None, "MB", None, "", None, "<= 32 MB",
            v is not None and v / 1024 <= 32)


def fmt(v, d=0):
    if v is None:
        return "n/a"
    return ("{:,.%df}" % d).format(v)


print()
print("| figure | value | ceiling (same run) | ratio | target | met |")
print("|---|---|---|---|---|---|")
for r in rows:
    d = 1 if r["unit"] in ("ms", "s", "MB") else 0
    ceil = "%s (%s)" % (fmt(r["ceiling"]), r["ceiling_name"]) if r["ceiling"] else "-"
    ratio = fmt(r["ratio"], 2) if r["ratio"] is not None else "-"
    print("| %s | %s %s | %s | %s | %s | %s |" % (r["figure"], fmt(r["value"], d), r["unit"], ceil,
                                                 ratio, r["target"], "yes" if r["met"] else "no"))
print()
if raw.get("fresh_sent"):
    print("freshness phase: %s POSTs at %s/s; %s accepted, %s shed with 429/503 and Retry-After, "
          "%s failed otherwise, %s accepted but not visible within 10 s (counted as 10 s)" % tuple(
              raw.get("fresh_" + k, "?") for k in ("sent", "rate", "ok", "shed", "errors",
                                                   "not_visible_10s")))
print("machine: %s; %s s per HTTP phase, %s connections, backlog %s events" % (
    raw.get("machine", "?"), raw.get("seconds", "?"), raw.get("connections", "?"), raw.get("events", "?")))
json.dump({"rows": rows, "raw": raw}, open(sys.argv[2], "w"), indent=1)
