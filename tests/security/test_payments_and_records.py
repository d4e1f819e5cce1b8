"""Issue 11, money and records: items 4, 8, 13 and 14, black-box.

  item 4   "charge, then time out": the first payment gets 503 although Stripe charged; the retry
           with a NEW card token (a new Idempotency-Key) keeps that charge and makes no second one.
           A Stripe webhook signed with the endpoint's secret settles a lost charge; a wrong, a
           missing or a stale signature gets 400 in the contract's format.
  item 8   the owner edits the price while order:created is still on its way to tickets: the
           order shows, and Stripe is asked for, the price the order was created with.
  item 13  undecodable records on the scheduler's topic go to expiration.deadletter
           (tk_expiration_dead_letters) and later records still expire orders; an outbox row
           Kafka refuses for good is dead-lettered (`ticketing dead-letters list`,
           tk_relay_dead_letters) and the relay goes on with the rows behind it.
  item 14  SIGTERM in the middle of a load ends `serve` and `relay` cleanly within a bound, and
           the log level (TK_LOG_LEVEL) is honoured on every thread.

Stripe is the fault-injecting fake of tests/support/fake_stripe.h run as a process
(SECURITY_FAKE_STRIPE, started by run.sh): its /__fake/ endpoints set its faults and tell what it
received and created. Kafka and the databases are the topology's own (its env.sh is exported).
"""

import hashlib
import hmac
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import uuid

import pytest
import requests

from conftest import TIMEOUT, error_messages, eventually, signup

FAKE = os.environ.get("SECURITY_FAKE_STRIPE", "").rstrip("/")
WHSEC = os.environ.get("SECURITY_STRIPE_WEBHOOK_SECRET", "")
PI = "/v1/payment_intents"
ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def need_fake():
    if not FAKE:
        pytest.skip("SECURITY_FAKE_STRIPE not set (tests/security/run.sh starts tk_fake_stripe)")


def fake_state():
    r = requests.get(f"{FAKE}/__fake/state", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def charge_timeout(ms):
    r = requests.post(f"{FAKE}/__fake/charge_timeout", data={"ms": str(ms)}, timeout=10)
    assert r.status_code == 200, r.text


def executed_intents(order_id, state=None):
    """The PaymentIntent requests Stripe executed for @order_id (replays and refusals excluded)."""
    state = state or fake_state()
    return [q for q in state["requests"]
            if q["path"] == PI and not q["replayed"] and q["status"] == 200
            and q["form"].get("metadata[order_id]") == order_id]


def intents_of(order_id):
    """The PaymentIntent objects the fake made for @order_id: [(id, {"refunded", "object"})]."""
    return [(k, v) for k, v in fake_state()["intents"].items()
            if v["object"]["metadata"].get("order_id") == order_id]


def new_ticket(seller, base_url, price, title="sec money"):
    r = seller.post(f"{base_url}/api/tickets", json={"title": title, "price": price},
                    timeout=TIMEOUT)
    assert r.status_code == 201, r.text
    return r.json()


def new_order(buyer, base_url, ticket_id):
    """POST /api/orders, again while the orders context has not seen the ticket yet (404)."""
    def place():
        r = buyer.post(f"{base_url}/api/orders", json={"ticketId": ticket_id}, timeout=TIMEOUT)
        if r.status_code == 404:
            return None
        assert r.status_code == 201, r.text
        return r.json()
    return eventually(place, "the order placed (ticket in the orders replica)")


def pay(buyer, base_url, order_id, token):
    """POST /api/payments; again while the payments context has not seen the order yet (404:
    its replica follows order:created through Kafka, late on a loaded machine)."""
    def attempt():
        r = buyer.post(f"{base_url}/api/payments", json={"token": token, "orderId": order_id},
                       timeout=TIMEOUT)
        return None if r.status_code == 404 else [r]  # a Response of 4xx/5xx is falsy
    return eventually(attempt, f"order {order_id} known to payments")[0]


def get_order(buyer, base_url, order_id):
    r = buyer.get(f"{base_url}/api/orders/{order_id}", timeout=TIMEOUT)
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture
def seller(base_url):
    s = requests.Session()
    s.me = signup(s, base_url=base_url)
    return s


# ---------------------------------------------------------------- item 4: no double charge

RETRIES = 5


def test_retry_with_a_new_token_after_a_lost_charge_never_charges_twice(base_url, seller):
    """Stripe charges, its answer comes 3 s late (the servers wait 1 s): 503. The client retries
    with another single-use token: the recorded attempt is reconciled first (PaymentIntent
    search), so the retry answers 201 with the first charge and Stripe makes no second one."""
    need_fake()
    orders = []
    for i in range(RETRIES):
        buyer = requests.Session()
        signup(buyer, base_url=base_url)
        t = new_ticket(seller, base_url, 30 + i)
        orders.append((buyer, new_order(buyer, base_url, t["id"])["id"]))
    charge_timeout(3000)
    try:
        for i, (buyer, oid) in enumerate(orders):
            first = pay(buyer, base_url, oid, f"tok_first_{i}_{uuid.uuid4().hex[:8]}")
            assert first.status_code == 503, first.text
            assert error_messages(first)
            assert int(first.headers.get("Retry-After", "1")) >= 1
            retry = pay(buyer, base_url, oid, f"tok_retry_{i}_{uuid.uuid4().hex[:8]}")
            assert retry.status_code == 201, retry.text
    finally:
        charge_timeout(0)
    state = fake_state()
    for buyer, oid in orders:
        made = executed_intents(oid, state)
        assert len(made) == 1, (oid, made)  # the lost charge, and nothing for the retry
        kept = [v for k, v in state["intents"].items()
                if v["object"]["metadata"].get("order_id") == oid]
        assert [v["refunded"] for v in kept] == [False], kept
        eventually(lambda: get_order(buyer, base_url, oid)["status"] == "complete",
                   f"order {oid} complete")


def sign(body, secret, t=None):
    t = int(time.time()) if t is None else t
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def post_webhook(base_url, body, signature):
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return requests.post(f"{base_url}/api/payments/webhook", data=body, headers=headers,
                         timeout=TIMEOUT)


def event(kind, intent):
    return json.dumps({"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": kind,
                       "data": {"object": intent}}).encode()


def test_signed_webhook_settles_a_lost_charge_and_bad_signatures_are_refused(base_url, seller):
    need_fake()
    if not WHSEC:
        pytest.skip("SECURITY_STRIPE_WEBHOOK_SECRET not set")
    buyer = requests.Session()
    signup(buyer, base_url=base_url)
    oid = new_order(buyer, base_url, new_ticket(seller, base_url, 44)["id"])["id"]
    charge_timeout(3000)
    try:
        r = pay(buyer, base_url, oid, f"tok_lost_{uuid.uuid4().hex[:8]}")
        assert r.status_code == 503, r.text
    finally:
        charge_timeout(0)
    [(pi_id, pi)] = intents_of(oid)
    body = event("payment_intent.succeeded", pi["object"])

    # Refused, in the contract's format, and nothing settled: wrong secret, none, too old.
    for sig, message in ((sign(body, "whsec_not_ours"), "Invalid signature"),
                         (None, "Invalid signature"),
                         ("t=abc,v1=00", "Invalid signature"),
                         (sign(body, WHSEC, int(time.time()) - 3600),
                          "Signature timestamp too old")):
        r = post_webhook(base_url, body, sig)
        assert r.status_code == 400, (sig, r.status_code, r.text)
        assert error_messages(r) == [message], r.text
    # A signature over other bytes does not carry to this body.
    other = event("payment_intent.succeeded", dict(pi["object"], amount=1))
    r = post_webhook(base_url, other, sign(body, WHSEC))
    assert r.status_code == 400 and error_messages(r) == ["Invalid signature"], r.text

    # Stripe's signed word: the lost charge becomes the order's payment, before any worker
    # would have looked (pending attempts are reconciled by the worker after 15 s).
    t0 = time.monotonic()
    r = post_webhook(base_url, body, sign(body, WHSEC))
    assert r.status_code == 200, r.text
    again = pay(buyer, base_url, oid, f"tok_after_{uuid.uuid4().hex[:8]}")
    assert time.monotonic() - t0 < 10
    assert again.status_code == 400 and error_messages(again) == ["Order already paid"], again.text
    assert len(executed_intents(oid)) == 1
    assert [p["refunded"] for _, p in intents_of(oid)] == [False]
    # Delivered twice (Stripe redelivers): harmless.
    assert post_webhook(base_url, body, sign(body, WHSEC)).status_code == 200
    eventually(lambda: get_order(buyer, base_url, oid)["status"] == "complete", "order complete")


# ---------------------------------------------------------------- item 8: price at creation

def test_order_keeps_and_charges_the_price_it_was_created_with(base_url, seller):
    """The owner's edit races order:created to the tickets context: when it wins (200), the
    replica's price moves, the order's must not. Tried a few times: the edit must win at least
    once, else the race was not exercised."""
    need_fake()
    raced = 0
    for i in range(6):
        buyer = requests.Session()
        signup(buyer, base_url=base_url)
        t = new_ticket(seller, base_url, 20, f"sec price {i}")
        order = new_order(buyer, base_url, t["id"])
        edit = seller.put(f"{base_url}/api/tickets/{t['id']}",
                          json={"title": f"sec price {i}", "price": 99}, timeout=TIMEOUT)
        assert edit.status_code in (200, 400), edit.text  # 400: order:created came first
        assert order["ticket"].get("price") in (None, 20), order
        if edit.status_code != 200:
            continue
        raced += 1
        # The edit reached the orders context's replica (ticket:updated)...
        eventually(lambda: seller.get(f"{base_url}/api/tickets/{t['id']}",
                                      timeout=TIMEOUT).json().get("price") == 99,
                   "the edit in the tickets read model")
        time.sleep(1)  # ... and had the time to reach every orders projection too
        assert get_order(buyer, base_url, order["id"])["ticket"]["price"] == 20
        r = pay(buyer, base_url, order["id"], f"tok_price_{uuid.uuid4().hex[:8]}")
        if r.status_code == 400 and error_messages(r) == ["Order has expired"]:
            continue  # the edit cancelled nothing; the window ran out on a slow machine
        assert r.status_code == 201, r.text
        [charge] = executed_intents(order["id"])
        assert charge["form"]["amount"] == "2000", charge["form"]
        assert get_order(buyer, base_url, order["id"])["ticket"]["price"] == 20
        if raced >= 2:
            break
    assert raced >= 1, "the price edit never beat order:created to tickets: race not exercised"


# ---------------------------------------------------------------- item 13: poison records

def metric(service, name, labels=""):
    """The value of metric @name{@labels} on @service's /metrics, or None."""
    text = requests.get(f"{service}/metrics", timeout=10).text
    m = re.search(r"^" + re.escape(name + (("{" + labels + "}") if labels else "")) +
                  r" (\d+)$", text, re.M)
    return int(m.group(1)) if m else None


def kafka_tool(*args, stdin=None, timeout=120):
    return subprocess.run(["bash", os.path.join(ROOT, "scripts", "kafka.sh"), *args], input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def test_undecodable_expiration_records_are_dead_lettered_and_later_ones_flow(base_url, seller,
                                                                            service_url):
    if os.environ.get("TOPOLOGY_ISOLATED") != "1":
        pytest.skip("writes garbage onto the broker's topics: only on an isolated topology")
    svc = service_url("orders")
    eventually(lambda: metric(svc, "tk_expiration_dead_letters") is not None,
               "tk_expiration_dead_letters on /metrics", 30)
    before = metric(svc, "tk_expiration_dead_letters")
    # 64 keys: every partition of expiration.delay gets some poison.
    n = 64
    lines = "".join(f"sec-poison-{uuid.uuid4().hex}|not a delay record {i} {{\n"
                    for i in range(n))
    p = kafka_tool("console-producer", "--topic", "expiration.delay", "--property",
                   "parse.key=true", "--property", "key.separator=|", stdin=lines)
    assert p.returncode == 0, p.stderr[-2000:]
    eventually(lambda: (metric(svc, "tk_expiration_dead_letters") or 0) >= before + n,
               f"{n} more records in expiration.deadletter", 60)
    # The scheduler stayed up and still expires orders behind the poison.
    buyer = requests.Session()
    signup(buyer, base_url=base_url)
    oid = new_order(buyer, base_url, new_ticket(seller, base_url, 12)["id"])["id"]
    window = int(os.environ.get("EXPIRATION_WINDOW_SECONDS", "30"))
    eventually(lambda: get_order(buyer, base_url, oid)["status"] == "cancelled",
               "the order behind the poison expired", window + 60, interval=1)


def psql(database_url, sql):
    pg = os.environ.get("TK_PG_BIN", "")
    exe = os.path.join(pg, "psql") if pg else "psql"
    r = subprocess.run([exe, "-qAtX", "-v", "ON_ERROR_STOP=1", database_url, "-c", sql],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_outbox_row_kafka_refuses_is_dead_lettered_and_the_relay_goes_on(base_url, seller,
                                                                       service_url, ticketing_bin):
    db = os.environ.get("DATABASE_URL_TICKETS")
    if os.environ.get("TOPOLOGY_ISOLATED") != "1" or not db:
        pytest.skip("writes into the outbox: only on an isolated topology (DATABASE_URL_TICKETS)")
    svc = service_url("tickets")
    key = f"sec-refused-{uuid.uuid4().hex}"
    # 1.2 MB: over the broker's and the producer's message size limit, refused for good.
    psql(db, f"INSERT INTO outbox (topic, key, payload) VALUES ('tickets', '{key}', "
             f"repeat('x', 1200 * 1024))")
    behind = new_ticket(seller, base_url, 15, "sec behind the refused row")
    # The relay went on: the ticket created after the refused row reaches the read model.
    eventually(lambda: requests.get(f"{base_url}/api/tickets/{behind['id']}",
                                    timeout=TIMEOUT).status_code == 200,
               "the ticket behind the refused row is published", 60)
    assert psql(db, f"SELECT count(*) FROM outbox WHERE key = '{key}'") == "0"
    listed = subprocess.run([ticketing_bin, "dead-letters", "list", "--context", "tickets"],
                            capture_output=True, text=True, timeout=60)
    mine = [line for line in listed.stdout.splitlines() if "relay" in line and "refused" in line]
    assert mine, listed.stdout + listed.stderr
    eventually(lambda: (metric(svc, "tk_relay_dead_letters", 'context="tickets"') or 0) >= 1,
               "tk_relay_dead_letters{context=\"tickets\"} on /metrics", 30)


# ---------------------------------------------------------------- item 14: stop and log level

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigterm_under_load_stops_serve_and_relay_cleanly(base_url, ticketing_bin, tmp_path):
    """bg_stop and the log level are read by every thread: SIGTERM while 8 clients hammer a
    server ends it (exit 0) within a bound, a standby relay too, and TK_LOG_LEVEL=warn holds on
    every thread (no info line, while the load makes hundreds of access lines at info)."""
    port = free_port()
    env = dict(os.environ, PORT=str(port), TK_LOG_LEVEL="warn")
    serve_log = tmp_path / "serve.log"
    relay_log = tmp_path / "relay.log"
    with open(serve_log, "wb") as so, open(relay_log, "wb") as ro:
        serve = subprocess.Popen([ticketing_bin, "serve", "tickets"], env=env, stdout=so,
                                 stderr=subprocess.STDOUT)
        relay = subprocess.Popen([ticketing_bin, "relay", "tickets"],
                                 env=dict(os.environ, TK_LOG_LEVEL="info"), stdout=ro,
                                 stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            eventually(lambda: requests.get(f"{url}/readyz", timeout=2).ok, "serve ready", 60)
            stop = threading.Event()
            done = []
            s = requests.Session()
            signup(s, base_url=base_url)

            def load(i):
                n = 0
                while not stop.is_set():
                    try:
                        if n % 4 == 0:
                            s.post(f"{url}/api/tickets", json={"title": f"load {i}",
                                                               "price": 5}, timeout=10)
                        else:
                            requests.get(f"{url}/api/tickets?limit=5", timeout=10)
                        n += 1
                    except requests.RequestException:
                        pass  # the server going away under us is the point
                done.append(n)

            threads = [threading.Thread(target=load, args=(i,)) for i in range(8)]
            for t in threads:
                t.start()
            time.sleep(3)
            t0 = time.monotonic()
            serve.send_signal(signal.SIGTERM)
            relay.send_signal(signal.SIGTERM)
            rc_serve = serve.wait(timeout=30)
            rc_relay = relay.wait(timeout=30)
            took = time.monotonic() - t0
            stop.set()
            for t in threads:
                t.join(20)
        finally:
            for p in (serve, relay):
                if p.poll() is None:
                    p.kill()
                    p.wait()
    assert sum(done) > 50, done  # there was a load to stop
    assert rc_serve == 0 and rc_relay == 0, (rc_serve, rc_relay, serve_log.read_text()[-2000:])
    assert took < 15, took
    lines = [json.loads(l) for l in serve_log.read_bytes().splitlines() if l.startswith(b"{")]
    assert all(l["level"] in ("warn", "error") for l in lines), lines[:5]
    relay_lines = relay_log.read_text()
    assert '"level":"info"' in relay_lines, relay_lines[-2000:]  # the other level, honoured too
    for text in (serve_log.read_text(), relay_lines):
        assert "AddressSanitizer" not in text and "ThreadSanitizer" not in text, text[-4000:]
