"""Read your own writes (DESIGN.md section 6), driven over HTTP: concurrent clients each run
pairs of a command and an immediate query of its effect, and every answer is checked for the
client's own write. Used by test_read_your_writes.py and by bench/ryw/run.sh.

A pair's latency runs from the command's response to the query's response: what the client
waits, beyond the command, to see its write. Half the clients carry the consistency token the
browser way (the tk-consistency cookie), half the API way (the X-Consistency-Token header sent
back, no cookie). With tokens=False the clients drop the token: the same load, reading without
waiting (the baseline: how often a plain read misses the write, and how long a read takes).
"""

import base64
import hashlib
import hmac
import os
import struct
import threading
import time
import uuid

import requests

from support import BASE_URL

HEADER = "X-Consistency-Token"
COOKIE = "tk-consistency"
STALE = "X-Consistency-Stale"
SETUP_TIMEOUT = 20.0
CYCLES_PER_USER = 30  # then a new user: its order list stays short (a page)  # a replica catching up before an order or a payment can be placed


def percentile(values, p):
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100.0 * (len(s) - 1))))]


def summary(values):
    return {"n": len(values), "p50": percentile(values, 50), "p90": percentile(values, 90),
            "p99": percentile(values, 99), "max": max(values) if values else float("nan")}


def make_token(entries, key, fmt=1):
    """A token as backbone/consistency.c writes it: entries are (kind, uuid, version, issued_s)."""
    raw = bytes([fmt, len(entries)])
    for kind, ident, version, issued in entries:
        raw += kind.encode() + uuid.UUID(ident).bytes + struct.pack(">II", version, issued)
    mac = hmac.new(key.encode(), b"ticketing consistency token v1\0" + raw, hashlib.sha256)
    return base64.urlsafe_b64encode(raw + mac.digest()[:16]).decode().rstrip("=")


class Results:
    def __init__(self):
        self.lock = threading.Lock()
        self.latency = {}  # kind -> [ms]
        self.misses = []  # (kind, detail)
        self.stale = 0
        self.raced = 0  # a payment that lost to the order's expiration: not the client's effect
        self.skipped = 0  # of those, refused (400): no pair to check
        self.pairs = 0

    def record(self, kind, ms, ok, detail, stale):
        with self.lock:
            self.pairs += 1
            self.latency.setdefault(kind, []).append(ms)
            if not ok:
                self.misses.append((kind, detail))
            if stale:
                self.stale += 1

    def all_latencies(self):
        return [v for vs in self.latency.values() for v in vs]


class RywClient:
    """One user: a session, and its token carried by cookie or by header."""

    def __init__(self, via_header, tokens):
        self.http = requests.Session()
        self.via_header = via_header
        self.tokens = tokens
        self.token = None
        self.email = f"ryw-{uuid.uuid4().hex[:16]}@example.com"

    def _send(self, method, path, body=None):
        headers = {}
        if self.tokens and self.via_header and self.token:
            headers[HEADER] = self.token
        r = self.http.request(method, BASE_URL + path, json=body, headers=headers, timeout=30)
        if 200 <= r.status_code < 300 and r.headers.get(HEADER):
            self.token = r.headers[HEADER]
        if self.via_header or not self.tokens:
            for ck in list(self.http.cookies):
                if ck.name == COOKIE:
                    self.http.cookies.clear(ck.domain, ck.path, ck.name)
        return r

    def command(self, method, path, body=None):
        return self._send(method, path, body)

    def query(self, path):
        return self._send("GET", path)


class Driver:
    """Runs `total` pairs over `clients` concurrent users."""

    def __init__(self, total, clients, tokens=True):
        self.total = total
        self.clients = clients
        self.tokens = tokens
        self.res = Results()
        self._next = 0
        self._lock = threading.Lock()
        self.errors = []

    def _take(self):
        with self._lock:
            if self._next >= self.total:
                return False
            self._next += 1
            return True

    def _pair(self, c, kind, command, query, check):
        """command() -> response (2xx); then the query at once; check(cmd, q) -> (ok, detail)."""
        cmd = command()
        t0 = time.monotonic()
        q = c.query(query(cmd)) if callable(query) else c.query(query)
        ms = (time.monotonic() - t0) * 1000.0
        ok, detail = check(cmd, q)
        self.res.record(kind, ms, ok, detail, q.headers.get(STALE) == "true")
        return cmd, q

    def _retry(self, fn, done):
        """Setup steps that depend on another context's replica: retried, not measured."""
        deadline = time.monotonic() + SETUP_TIMEOUT
        while True:
            r = fn()
            if done(r) or time.monotonic() >= deadline:
                return r
            time.sleep(0.02)

    def _client(self, idx):
        c = RywClient(via_header=idx % 2 == 1, tokens=self.tokens)
        try:
            self._run(c)
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.errors.append(repr(e))

    def _run(self, c):
        if not self._take():
            return
        # Sign-up -> currentuser.
        def signup():
            r = c.command("POST", "/api/users/signup", {"email": c.email, "password": "secret"})
            assert r.status_code == 201, r.text
            return r
        self._pair(c, "signup>currentuser", signup, "/api/users/currentuser",
                   lambda cmd, q: (q.status_code == 200 and (q.json().get("currentUser") or {})
                                   .get("id") == cmd.json()["id"], q.text[:200]))
        tickets = []
        n = 0
        while True:
            if n == 2:
                # Sign out, then sign-in -> currentuser.
                if not self._take():
                    return
                assert c.command("POST", "/api/users/signout").status_code == 200

                def signin():
                    r = c.command("POST", "/api/users/signin",
                                  {"email": c.email, "password": "secret"})
                    assert r.status_code == 200, r.text
                    return r
                self._pair(c, "signin>currentuser", signin, "/api/users/currentuser",
                           lambda cmd, q: (q.status_code == 200 and (
                               q.json().get("currentUser") or {}).get("id") == cmd.json()["id"],
                               q.text[:200]))
            if n >= CYCLES_PER_USER:
                return
            n += 1
            prev_ticket = tickets[-1] if tickets else None
            # POST /api/tickets -> GET /api/tickets/:id, or the list page after the previous one.
            if not self._take():
                return
            title = f"ryw {uuid.uuid4().hex[:8]}"

            def create():
                r = c.command("POST", "/api/tickets", {"title": title, "price": 10})
                assert r.status_code == 201, r.text
                return r
            if prev_ticket is None or n % 2 == 0:
                cmd, _ = self._pair(
                    c, "ticket create>show", create, lambda cmd: f"/api/tickets/{cmd.json()['id']}",
                    lambda cmd, q: (q.status_code == 200 and q.json()["title"] == title,
                                    f"{q.status_code} {q.text[:120]}"))
            else:
                cursor = prev_ticket
                cmd, _ = self._pair(
                    c, "ticket create>list", create, f"/api/tickets?cursor={cursor}&limit=100",
                    lambda cmd, q: (q.status_code == 200 and any(
                        t["id"] == cmd.json()["id"] for t in q.json()), f"{q.status_code}"))
            ticket = cmd.json()["id"]
            tickets.append(ticket)

            # PUT /api/tickets/:id -> GET /api/tickets/:id (or the list).
            if not self._take():
                return
            new_title = title + " v2"

            def update():
                r = c.command("PUT", f"/api/tickets/{ticket}", {"title": new_title, "price": 11})
                assert r.status_code == 200, r.text
                return r
            if n % 3 == 0 and prev_ticket is not None:
                self._pair(c, "ticket update>list", update,
                           f"/api/tickets?cursor={prev_ticket}&limit=100",
                           lambda cmd, q: (q.status_code == 200 and any(
                               t["id"] == ticket and t["title"] == new_title for t in q.json()),
                               f"{q.status_code}"))
            else:
                self._pair(c, "ticket update>show", update, f"/api/tickets/{ticket}",
                           lambda cmd, q: (q.status_code == 200 and q.json()["title"] == new_title
                                           and q.json()["version"] >= cmd.json()["version"],
                                           f"{q.status_code} {q.text[:120]}"))

            # POST /api/orders (once orders knows the ticket) -> GET /api/orders/:id or the list.
            if not self._take():
                return
            holder = {}

            def place():
                r = self._retry(lambda: c.command("POST", "/api/orders", {"ticketId": ticket}),
                                lambda r: r.status_code != 404)
                assert r.status_code == 201, r.text
                holder["order"] = r.json()["id"]
                return r
            if n % 2 == 0:
                self._pair(c, "order create>show", place, lambda cmd: f"/api/orders/{cmd.json()['id']}",
                           lambda cmd, q: (q.status_code == 200 and q.json()["id"] == cmd.json()["id"],
                                           f"{q.status_code} {q.text[:120]}"))
            else:
                self._pair(c, "order create>list", place, "/api/orders",
                           lambda cmd, q: (q.status_code == 200 and any(
                               o["id"] == cmd.json()["id"] for o in q.json()), f"{q.status_code}"))
            order = holder["order"]

            if not self._take():
                return
            if n % 2 == 1:
                # DELETE /api/orders/:id -> GET /api/orders/:id (or the list) says cancelled.
                def cancel():
                    r = c.command("DELETE", f"/api/orders/{order}")
                    assert r.status_code == 204, r.text
                    return r
                if n % 4 == 1:
                    self._pair(c, "order cancel>show", cancel, f"/api/orders/{order}",
                               lambda cmd, q: (q.status_code == 200 and
                                               q.json()["status"] == "cancelled", q.text[:160]))
                else:
                    self._pair(c, "order cancel>list", cancel, "/api/orders",
                               lambda cmd, q: (q.status_code == 200 and any(
                                   o["id"] == order and o["status"] == "cancelled"
                                   for o in q.json()), "not cancelled in the list"))
            else:
                # POST /api/payments (once payments knows the order) -> the owner's GET of the
                # order shows the payment's effect.
                pay = self._retry(
                    lambda: c.command("POST", "/api/payments", {"orderId": order, "token": "tok_visa"}),
                    lambda r: r.status_code != 404)
                if pay.status_code != 201:
                    with self.res.lock:  # the order expired first: no write of ours to see
                        self.res.raced += 1
                        self.res.skipped += 1
                    continue
                t0 = time.monotonic()
                q = c.query(f"/api/orders/{order}")
                ms = (time.monotonic() - t0) * 1000.0
                status = q.json().get("status") if q.status_code == 200 else None
                if status == "cancelled":
                    with self.res.lock:
                        self.res.raced += 1  # expiration won the race: refunded, not our write
                self.res.record("payment>order status", ms, status in ("complete", "cancelled"),
                                f"{q.status_code} {q.text[:160]}", q.headers.get(STALE) == "true")

    def run(self):
        threads = [threading.Thread(target=self._client_loop, args=(i,), daemon=True)
                   for i in range(self.clients)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.seconds = time.monotonic() - t0
        return self.res

    def _client_loop(self, idx):
        # A client runs until the pairs are all taken; a new user every ~200 pairs keeps lists
        # short.
        while True:
            with self._lock:
                if self._next >= self.total:
                    return
            self._client(idx)
            if self.errors:
                return


class Observer:
    """Another client, without a token: GET of one ticket in a loop, latencies recorded."""

    def __init__(self, ticket_id):
        self.path = f"/api/tickets/{ticket_id}"
        self.latency = []
        self.stale = 0
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        http = requests.Session()
        while not self._stop.is_set():
            t0 = time.monotonic()
            r = http.get(BASE_URL + self.path, timeout=30)
            self.latency.append((time.monotonic() - t0) * 1000.0)
            if r.status_code != 200:
                self.failed += 1
            if r.headers.get(STALE):
                self.stale += 1
            time.sleep(0.005)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def seed_ticket():
    """A ticket everybody can read (the observer's)."""
    s = requests.Session()
    email = f"ryw-seed-{uuid.uuid4().hex[:12]}@example.com"
    assert s.post(BASE_URL + "/api/users/signup", json={"email": email, "password": "secret"}).status_code == 201
    r = s.post(BASE_URL + "/api/tickets", json={"title": "observed", "price": 5})
    assert r.status_code == 201
    ticket = r.json()["id"]
    r = s.get(BASE_URL + f"/api/tickets/{ticket}")  # the cookie: waits until it is there
    assert r.status_code == 200, r.text
    return ticket


def env_int(name, default):
    v = os.environ.get(name)
    return int(v) if v else default
