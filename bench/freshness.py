#!/usr/bin/env python3
"""bench/freshness.py - read-model freshness under an open-loop command load (bench/run.sh).

    freshness.py BASE_URL COOKIE RATE SECONDS OUT.json

POST /api/tickets at RATE per second for SECONDS, each on a schedule (open loop: a late request
counts from its scheduled time, so a stall is not hidden). For each 2xx, GET /api/tickets/:id is
sent at once with the POST's X-Consistency-Token: the server parks it until the tickets view has
the ticket (woken by the projector's notification) and answers then, so freshness = that 200 -
the POST's 2xx, measured without polls that would load the server they measure. An answer marked
X-Consistency-Stale (not visible within the server's bound) or without a token falls back to
polling (every 1 ms at first, then every 5 % of the wait so far, at most 20 ms). Writes the
percentiles (and every sample) to OUT.json. Standard library only.
"""
import http.client
import json
import sys
import threading
import time
import urllib.parse


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100.0 * len(xs)))]


def main():
    base, cookie, rate, secs, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
    u = urllib.parse.urlparse(base)
    total = int(rate * secs)
    lock = threading.Lock()
    state = {"next": 0}
    cmd_ms, fresh_ms, errors, late_timeouts = [], [], [0], [0]
    t0 = time.monotonic() + 0.5
    headers = {"content-type": "application/json", "cookie": cookie}

    def worker():
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
        while True:
            with lock:
                k = state["next"]
                state["next"] += 1
            if k >= total:
                return
            due = t0 + k / rate
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            try:
                conn.request("POST", "/api/tickets", body=json.dumps({"title": "fresh %d" % k, "price": 10}), headers=headers)
                r = conn.getresponse()
                body = r.read()
                done = time.monotonic()
                if r.status // 100 != 2:
                    errors[0] += 1
                    continue
                tid = json.loads(body)["id"]
                token = r.getheader("X-Consistency-Token")
                cmd_ms.append((done - due) * 1000.0)
                while True:
                    get_headers = {"cookie": cookie}
                    if token:
                        get_headers["X-Consistency-Token"] = token
                    conn.request("GET", "/api/tickets/" + tid, headers=get_headers)
                    g = conn.getresponse()
                    g.read()
                    seen = time.monotonic()
                    if g.status == 200 and g.getheader("X-Consistency-Stale") != "true":
                        fresh_ms.append((seen - done) * 1000.0)
                        break
                    token = None  # stale: the server's wait is over, poll from here on
                    if seen - done > 10.0:
                        late_timeouts[0] += 1
                        fresh_ms.append(10000.0)
                        break
                    # Resolution about 5 % of the wait: frequent polls would load the server.
                    time.sleep(min(0.02, max(0.001, (seen - done) * 0.05)))
            except Exception:  # noqa: BLE001 - a failed request is counted, not fatal
                errors[0] += 1
                conn.close()
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(48)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    res = {
        "rate": rate, "seconds": secs, "sent": total, "ok": len(cmd_ms), "errors": errors[0],
        "not_visible_10s": late_timeouts[0],
        "cmd_p50_ms": pct(cmd_ms, 50), "cmd_p99_ms": pct(cmd_ms, 99),
        "fresh_p50_ms": pct(fresh_ms, 50), "fresh_p90_ms": pct(fresh_ms, 90),
        "fresh_p99_ms": pct(fresh_ms, 99), "fresh_p999_ms": pct(fresh_ms, 99.9),
        "fresh_samples_ms": fresh_ms,
    }
    with open(out, "w") as f:
        json.dump(res, f)


if __name__ == "__main__":
    main()
