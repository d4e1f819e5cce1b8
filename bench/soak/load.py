"""Moderate steady load for the soak (bench/soak/run.sh): FLOWS_PER_S purchase flows per second
through BASE_URL - sign-up (one seller and one buyer per worker, reused), list a ticket, order it,
then pay (most), cancel, or let it expire - until DURATION seconds have passed. Prints one line
per minute: flows done, errors."""

import os
import sys
import threading
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "e2e"))
import support  # noqa: E402

RATE = float(os.environ.get("FLOWS_PER_S", "2"))
DURATION = float(os.environ["DURATION"])
WORKERS = 4
done = [0, 0]  # flows, errors
lock = threading.Lock()


def flow(seller, buyer, k):
    r = seller.post("/api/tickets", {"title": f"soak {k}", "price": 10 + k % 90})
    if r.status_code != 201:
        return False
    tid = r.json()["id"]
    deadline = time.monotonic() + 10
    while True:  # the ticket reaches orders' replica through Kafka
        r = buyer.post("/api/orders", {"ticketId": tid})
        if r.status_code == 201 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if r.status_code != 201:
        return False
    oid = r.json()["id"]
    if k % 10 < 7:
        for _ in range(50):
            r = buyer.post("/api/payments", {"token": "tok_visa", "orderId": oid})
            if r.status_code != 404:
                break
            time.sleep(0.1)
        return r.status_code == 201
    if k % 10 < 9:
        return buyer.delete(f"/api/orders/{oid}").status_code == 204
    return True  # left to expire


def worker(i, end):
    seller, buyer = support.Client().signup(), support.Client().signup()
    k = i
    period = WORKERS / RATE
    while time.monotonic() < end:
        t0 = time.monotonic()
        try:
            ok = flow(seller, buyer, k)
        except Exception:
            ok = False
        with lock:
            done[0] += 1
            done[1] += 0 if ok else 1
        k += WORKERS
        time.sleep(max(0.0, period - (time.monotonic() - t0)))


end = time.monotonic() + DURATION
threads = [threading.Thread(target=worker, args=(i, end), daemon=True) for i in range(WORKERS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(f"load: {done[0]} flows, {done[1]} failed", flush=True)
sys.exit(1 if done[0] == 0 or done[1] > done[0] // 100 else 0)
