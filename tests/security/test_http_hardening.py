"""Issue 11, the HTTP/platform layer: items 1, 2, 5, 6, 7, 9 and 10, and issue 19 item 2.

  item 1   HTTP/2 refused (prior knowledge, h2c), a stream reset mid-request harmless
  item 2   a flood of abandoned slow requests does not starve anyone; full queue -> 503 + Retry-After
  item 5   event streams per order, per user and in total (429/503 + Retry-After); connection bound
  item 6   a declared Content-Length over 1 MiB -> 413 at once, before any body byte
  item 7   a body with a NUL byte -> 400 (parsed with its full length)
  item 9   log lines stay one JSON object each, whatever the path and X-Request-Id; ids bounded
  item 10  /readyz of a server whose database never answers turns red within the connect timeout
  19.2     `ticketing run` answers /readyz from probes of its databases and broker
  item 14  (atomics): see test_payments_and_records.py (SIGTERM under load, the log level).
The C tests (tests/unit/test_http_limits.c, test_http_body.c, test_log.c,
tests/integration/test_pg_bounds.c) prove the same bounds one by one, under ASan in CI.
"""

import json
import os
import re
import socket
import struct
import subprocess
import threading
import time
import uuid

import pytest
import requests

from conftest import (eventually, error_messages, limit, raw_connect, raw_exchange, raw_read,
                      role_log_lines, json_lines_ok, signup, status_of)

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# ---------------------------------------------------------------- item 1: HTTP/2

def h2_frames(path):
    """The HTTP/2 preface, empty SETTINGS, HEADERS of GET path (HPACK literals), RST_STREAM."""
    block = bytes([0x82, 0x86, 0x44, len(path)]) + path.encode() + bytes([0x41, 1]) + b"t"
    frames = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    frames += struct.pack(">I", 0)[1:] + bytes([4, 0]) + struct.pack(">I", 0)
    frames += struct.pack(">I", len(block))[1:] + bytes([1, 5]) + struct.pack(">I", 1) + block
    frames += struct.pack(">I", 4)[1:] + bytes([3, 0]) + struct.pack(">I", 1) + struct.pack(">I", 8)
    return frames


@pytest.mark.parametrize("context", ["auth", "tickets", "orders", "payments"])
def test_http2_prior_knowledge_is_refused(service_url, context):
    url = service_url(context)
    raw = raw_exchange(url, h2_frames("/api/users/currentuser"), timeout=5)
    assert status_of(raw) == 400, raw[:200]
    assert requests.get(f"{url}/healthz", timeout=5).status_code == 200


def test_h2c_upgrade_is_not_taken(service_url):
    url = service_url("tickets")
    raw = raw_exchange(url, b"GET /api/tickets HTTP/1.1\r\nHost: t\r\n"
                            b"Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                            b"HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n", timeout=5)
    assert status_of(raw) == 200, raw[:200]


def test_stream_resets_while_requests_wait_for_workers(service_url):
    """Many resets of requests that would queue for a worker: the server stays up (the
    topology's stop scans the logs for sanitizer reports when the binary has ASan)."""
    url = service_url("auth")
    for _ in range(50):
        with raw_connect(url) as s:
            s.sendall(h2_frames("/api/users/currentuser"))
    assert requests.get(f"{url}/healthz", timeout=5).status_code == 200


# ---------------------------------------------------------------- item 2: bounded work

def test_abandoned_slow_requests_do_not_starve_other_contexts(base_url, service_url):
    """Sign-ups (scrypt) whose clients leave at once: other contexts answer at once, and the
    auth context itself recovers within seconds (its queued abandoned work is dropped)."""
    auth = service_url("auth")
    for i in range(200):
        body = json.dumps({"email": f"flood-{uuid.uuid4().hex[:10]}@example.com",
                           "password": "secret-pass"}).encode()
        with raw_connect(auth) as s:
            s.sendall(b"POST /api/users/signup HTTP/1.1\r\nHost: t\r\n"
                      b"Content-Type: application/json\r\nContent-Length: "
                      + str(len(body)).encode() + b"\r\n\r\n" + body)
    t0 = time.monotonic()
    assert requests.get(f"{base_url}/api/tickets", timeout=10).status_code == 200
    assert time.monotonic() - t0 < 2.0
    # The auth context itself: busy answers (503 + Retry-After) at most for a few seconds, while
    # the abandoned requests still queued are dropped unrun.
    t0 = time.monotonic()
    eventually(lambda: requests.get(f"{base_url}/api/users/currentuser", timeout=10).status_code
               == 200, "auth answers again", timeout=8, interval=0.2)
    assert time.monotonic() - t0 < 8.0


def test_a_full_queue_answers_503_with_retry_after(service_url):
    """More concurrent sign-ups than workers + HTTP_QUEUE_MAX: the excess gets 503 +
    Retry-After in the contract's format, never a hang or another 5xx."""
    qmax = limit("HTTP_QUEUE_MAX")
    if qmax is None or qmax > 64:
        pytest.skip("needs the small HTTP_QUEUE_MAX of tests/security/run.sh")
    auth = service_url("auth")
    n = qmax + 64
    results = [None] * n

    def one(i):
        try:
            results[i] = requests.post(f"{auth}/api/users/signup", timeout=60, json={
                "email": f"burst-{uuid.uuid4().hex[:10]}@example.com", "password": "secret-pass"})
        except requests.RequestException as e:
            results[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    statuses = [r.status_code if isinstance(r, requests.Response) else repr(r) for r in results]
    assert all(s in (201, 429, 503) for s in statuses), statuses
    busy = [r for r in results if isinstance(r, requests.Response) and r.status_code == 503]
    assert busy, statuses
    for r in busy:
        assert int(r.headers["Retry-After"]) >= 1
        assert error_messages(r)


# ---------------------------------------------------------------- items 6, 7: bodies

@pytest.mark.parametrize("context,path", [("auth", "/api/users/signup"),
                                          ("tickets", "/api/tickets")])
def test_declared_length_over_1mib_is_refused_before_the_body(service_url, context, path):
    url = service_url(context)
    t0 = time.monotonic()
    raw = raw_exchange(url, f"POST {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json"
                            f"\r\nContent-Length: {2 * 1024 * 1024}\r\n\r\n".encode(), timeout=5)
    assert status_of(raw) == 413, raw[:300]
    assert time.monotonic() - t0 < 3.0
    body = raw.partition(b"\r\n\r\n")[2]
    assert json.loads(body)["errors"][0]["message"]


def test_body_with_a_nul_byte_is_a_400(base_url):
    body = b'{"email":"nul\x00@example.com","password":"secret-pass"}'
    r = requests.post(f"{base_url}/api/users/signup", data=body, timeout=10,
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    assert error_messages(r)


# ---------------------------------------------------------------- item 5: event streams

def place_order(session, base_url):
    r = session.post(f"{base_url}/api/tickets", json={"title": "concert", "price": 20}, timeout=15)
    assert r.status_code == 201, r.text
    ticket = r.json()["id"]

    def order():
        o = session.post(f"{base_url}/api/orders", json={"ticketId": ticket}, timeout=15)
        return o.json()["id"] if o.status_code == 201 else None

    oid = eventually(order, "the ticket replicated to orders")
    eventually(lambda: session.get(f"{base_url}/api/orders/{oid}", timeout=15).status_code == 200,
               "the order in the orders read model")
    return oid


def open_stream(session, base_url, order_id):
    """GET the order's event stream; returns the response (streaming; close it)."""
    return session.get(f"{base_url}/api/orders/{order_id}/events", stream=True, timeout=15)


def test_event_streams_are_bounded(base_url):
    per_order = limit("SSE_MAX_STREAMS_PER_ORDER")
    per_user = limit("SSE_MAX_STREAMS_PER_USER")
    total = limit("SSE_MAX_STREAMS")
    if None in (per_order, per_user, total) or total > 16 or per_user >= total:
        pytest.skip("needs the small stream limits of tests/security/run.sh")
    open_streams = []
    try:
        alice = requests.Session()
        signup(alice)
        orders = [place_order(alice, base_url)
                  for _ in range((per_user + per_order - 1) // per_order + 1)]
        # Per order: the bound, then 429 with Retry-After.
        for _ in range(per_order):
            r = open_stream(alice, base_url, orders[0])
            assert r.status_code == 200, r.text
            open_streams.append(r)
        r = open_stream(alice, base_url, orders[0])
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1, r.text
        assert error_messages(r)
        # Per user: fill up to the bound over other orders, then 429.
        k = 1
        while len(open_streams) < per_user:
            r = open_stream(alice, base_url, orders[k])
            assert r.status_code == 200, r.text
            open_streams.append(r)
            if sum(1 for s in open_streams if orders[k] in s.url) == per_order:
                k += 1
        r = open_stream(alice, base_url, orders[k])
        assert r.status_code == 429 and int(r.headers["Retry-After"]) >= 1, r.text
        # In total: other users fill the server, then 503.
        while len(open_streams) < total:
            other = requests.Session()
            signup(other)
            oid = place_order(other, base_url)
            for _ in range(min(per_order, total - len(open_streams))):
                r = open_stream(other, base_url, oid)
                assert r.status_code == 200, r.text
                open_streams.append(r)
        late = requests.Session()
        signup(late)
        oid = place_order(late, base_url)
        r = open_stream(late, base_url, oid)
        assert r.status_code == 503 and int(r.headers["Retry-After"]) >= 1, r.text
        # Closing streams frees their places (a countdown event a second finds them gone).
        for s in open_streams:
            s.close()
        open_streams.clear()

        def opens():
            s = open_stream(late, base_url, oid)
            if s.status_code == 200:
                open_streams.append(s)
                return True
            s.close()
            return False

        eventually(opens, "a stream after the others closed", timeout=20, interval=0.5)
    finally:
        for s in open_streams:
            s.close()


def test_connections_are_bounded(service_url):
    cap = limit("HTTP_MAX_CONNECTIONS")
    if cap is None or cap > 200:
        pytest.skip("needs the small HTTP_MAX_CONNECTIONS of tests/security/run.sh")
    url = service_url("tickets")
    idle = []
    try:
        for _ in range(cap):
            idle.append(raw_connect(url))
        time.sleep(0.5)
        with raw_connect(url) as extra:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            assert raw_read(extra, timeout=1.0) == b""  # waits in the backlog
            for s in idle:
                s.close()
            idle.clear()
            assert status_of(raw_read(extra, timeout=5.0)) == 200
    finally:
        for s in idle:
            s.close()


# ---------------------------------------------------------------- item 9: log injection

def test_log_lines_stay_json_whatever_the_client_sends(service_url):
    url = service_url("tickets")
    marker = uuid.uuid4().hex
    path = f'/api/nope-{marker}"}},"forged":1,"x":"\\'.encode() + b"\xc3\x28"
    raw = raw_exchange(url, b"GET " + path + b" HTTP/1.1\r\nHost: t\r\n"
                       b'X-Request-Id: abc"},"forged":2,"y":"\r\n\r\n')
    assert status_of(raw) == 404, raw[:200]
    rid = re.search(rb"(?i)x-request-id: ([^\r]*)", raw).group(1).decode()
    assert UUID_RE.match(rid), rid  # an unsafe client id is replaced, not echoed
    raw = raw_exchange(url, b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Request-Id: "
                       + b"a" * 300 + b"\r\n\r\n")
    rid = re.search(rb"(?i)x-request-id: ([^\r]*)", raw).group(1).decode()
    assert len(rid) <= 64
    lines = role_log_lines("serve-tickets")
    if not lines:
        pytest.skip("the topology's logs are not local (SECURITY_LOG_DIR)")
    mine = eventually(lambda: [l for l in role_log_lines("serve-tickets") if marker.encode() in l],
                      "the access line of the request", timeout=5)
    assert json_lines_ok(role_log_lines("serve-tickets")) == []
    for line in mine:
        entry = json.loads(line)
        assert "forged" not in entry
        assert marker in entry["path"]


# ---------------------------------------------------------------- item 10, 19.2: readiness

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_process(ticketing_bin, args, env_over):
    env = dict(os.environ)
    env.update(env_over)
    port = free_port()
    env["PORT"] = str(port)
    p = subprocess.Popen([ticketing_bin, *args], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    return p, f"http://127.0.0.1:{port}"


def stop_process(p):
    p.terminate()
    try:
        p.wait(timeout=20)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    err = p.stderr.read().decode(errors="replace")
    assert "ERROR: AddressSanitizer" not in err and "runtime error:" not in err, err[-4000:]


def readyz(url):
    r = requests.get(f"{url}/readyz", timeout=20)
    return r


def test_readyz_turns_red_when_the_database_never_answers(ticketing_bin):
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(16)  # accepts TCP in the kernel, never answers PostgreSQL's handshake
    db = f"postgresql://postgres@127.0.0.1:{hole.getsockname()[1]}/x"
    p, url = start_process(ticketing_bin, ["serve", "orders"],
                           {"DATABASE_URL_ORDERS": db, "PG_CONNECT_TIMEOUT_S": "1"})
    try:
        eventually(lambda: requests.get(f"{url}/healthz", timeout=2).ok, "serve orders up", 30)
        t0 = time.monotonic()
        r = readyz(url)
        assert r.status_code == 503, r.text
        assert time.monotonic() - t0 < 8
        assert r.json()["checks"]["db_orders"] != "ok"
    finally:
        stop_process(p)
        hole.close()


def test_run_probes_its_databases_and_broker(ticketing_bin):
    """`ticketing run` used to answer {"status":"ready","checks":{}} whatever was down."""
    over = {"KAFKA_BROKERS": "127.0.0.1:1", "PG_CONNECT_TIMEOUT_S": "1"}
    for ctx in ("AUTH", "TICKETS", "ORDERS", "PAYMENTS", "EXPIRATION"):
        over[f"DATABASE_URL_{ctx}"] = "postgresql://postgres@127.0.0.1:1/x"
    p, url = start_process(ticketing_bin, ["run"], over)
    try:
        eventually(lambda: requests.get(f"{url}/healthz", timeout=2).ok, "run up", 30)
        r = readyz(url)
        assert r.status_code == 503, r.text
        checks = r.json()["checks"]
        for name in ("db_auth", "db_tickets", "db_orders", "db_payments", "kafka"):
            assert name in checks and checks[name] != "ok", checks
    finally:
        stop_process(p)
