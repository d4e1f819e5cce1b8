"""tests/cluster/chaos.py: the scale-out topology loses nothing while parts of it die.

Runs against a topology that tests/cluster/run.sh started (scripts/topology.sh start --isolated
--cluster --replicas 2: a 3-broker KRaft cluster, topics with replication factor 3 and
min.insync.replicas=2, two instances of every role behind nginx) and whose var/topology/env.sh it
sourced. Bounded load goes through the ingress the whole time (a few client threads, each
sign-up -> ticket -> two buyers racing for it -> two payments racing for the order, or a cancel,
or nothing so that it expires), while the test kills things in turn:

  broker    kill -9 the leader of the busiest `orders` partition; restart it later
  instances kill -9 one instance of every role; projectors: the survivor takes over after the
            session timeout; then the static-membership restart of the other instance (no
            rebalance); relays: the standby takes the lock; restart every killed one
  rolling   restart every instance in turn (SIGTERM, start, ready), while a reader GETs through
            nginx and must see no failure at all

Then, once everything settled, it checks on the log (kcat of every topic from the beginning) and
through the API:
  - every 2xx command's event is on Kafka exactly once (no record twice, no event id twice);
  - every read model equals a replay of the log (`ticketing replay P` says identical);
  - no ticket reserved twice (races give at most one 201; at most one live order per ticket),
    no order charged twice (at most one 201 and one payment:created per order);
  - no expiration lost or fired twice (exactly one expiration:complete per order:created, and
    every order neither paid nor cancelled by its owner ends cancelled);
  - no GET failed during the rolling restart.
Recovery times (leader election, broker restart, projector takeover, static rejoin, relay
failover, each rolling step) go to the report (CHAOS_REPORT, JSON) and to stdout.
Exit 0 when every check holds, 1 otherwise.
"""

import collections
import datetime
import json
import os
import pathlib
import random
import re
import subprocess
import sys
import threading
import time
import uuid

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "e2e"))
os.environ.setdefault("E2E_BASE_URL", os.environ.get("TOPOLOGY_INGRESS", ""))
import requests  # noqa: E402

from support import Client, eventually, settled  # noqa: E402

TICKETING = os.environ["E2E_TICKETING_BIN"]
TOPDIR = REPO / "var" / "topology"
TOPOLOGY = ["bash", str(REPO / "scripts" / "topology.sh")]
CLUSTER = ["bash", str(REPO / "scripts" / "cluster.sh")]
BROKERS = os.environ["KAFKA_BROKERS"]
WORKERS = int(os.environ.get("CHAOS_WORKERS", "3"))
PAUSE = float(os.environ.get("CHAOS_PAUSE", "0.05"))  # between a worker's rounds: bounds load
ROLES = ["serve-auth", "serve-tickets", "serve-orders", "serve-payments", "project-tickets",
         "project-orders", "project-payments", "relay-auth", "relay-tickets", "relay-orders",
         "relay-payments", "expire"]
TOPICS = ["users", "tickets", "orders", "payments", "expirations", "expiration.delay"]

failures = []
report = {"recovery_ms": {}, "rolling_restart_ms": {}, "counts": {}, "checks": {}}


def log(msg):
    print(f"chaos {time.strftime('%H:%M:%S')}: {msg}", flush=True)


def check(name, ok, detail=""):
    report["checks"][name] = {"ok": bool(ok), "detail": detail}
    log(f"{'PASS' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}")
    if not ok:
        failures.append(name)


def now_ms():
    return int(time.time() * 1000)


def run(cmd, timeout=180):
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {out.stdout[-800:]} {out.stderr[-800:]}")
    return out.stdout


# ---- load --------------------------------------------------------------------------------------


class Book:
    """What the load did, as the clients saw it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.users = []         # ids of 201 sign-ups
        self.tickets = []       # ids of 201 ticket creations
        self.orders = {}        # order id -> {"ticket":, "owner": Client, "fate":}
        self.payments = []      # (order id, payment id) of 201 payments
        self.cancelled = set()  # order ids of 204 cancels
        self.double_reserved = []
        self.double_charged = []
        self.errors = collections.Counter()

    def add(self, attr, value):
        with self.lock:
            getattr(self, attr).append(value)


book = Book()
stop_load = threading.Event()


def safe(fn, *a, **kw):
    """A request that may fail while things die: None on a connection error or a 5xx."""
    try:
        r = fn(*a, **kw)
    except requests.RequestException as e:
        book.errors[type(e).__name__] += 1
        return None
    if r.status_code >= 500:
        book.errors[str(r.status_code)] += 1
    return r


def signup():
    c = Client()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        c.email = f"chaos-{uuid.uuid4().hex[:16]}@example.com"
        r = safe(c.post, "/api/users/signup", {"email": c.email, "password": "secret"})
        if r is not None and r.status_code == 201:
            c.id = r.json()["id"]
            book.add("users", c.id)
            return c
        time.sleep(0.2)
    raise RuntimeError("no sign-up within 60 s")


def race(fns):
    """Run the callables at once; their results in order."""
    out = [None] * len(fns)

    def one(i):
        out[i] = fns[i]()

    ts = [threading.Thread(target=one, args=(i,)) for i in range(len(fns))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def round_(seller, buyers):
    r = safe(seller.post, "/api/tickets", {"title": f"chaos {uuid.uuid4().hex[:6]}", "price": 12})
    if r is None or r.status_code != 201:
        return
    ticket = r.json()["id"]
    book.add("tickets", ticket)
    # Two buyers race for the ticket until one gets it (404 while orders' replica lags).
    order, owner = None, None
    deadline = time.monotonic() + 30
    while order is None and time.monotonic() < deadline and not stop_load.is_set():
        res = race([lambda b=b: safe(b.post, "/api/orders", {"ticketId": ticket}) for b in buyers])
        won = [(b, x) for b, x in zip(buyers, res) if x is not None and x.status_code == 201]
        if len(won) > 1:
            book.add("double_reserved", (ticket, [x.json()["id"] for _, x in won]))
        for b, x in won:
            with book.lock:
                book.orders[x.json()["id"]] = {"ticket": ticket, "owner": b, "fate": "expire"}
        if won:
            owner, order = won[0][0], won[0][1].json()["id"]
            break
        if any(x is not None and x.status_code == 400 for x in res):
            return  # reserved by an attempt whose reply was lost: its order is still checked
        time.sleep(0.2)
    if order is None:
        return
    fate = random.random()
    if fate < 0.4:
        book.orders[order]["fate"] = "pay"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not stop_load.is_set():
            body = {"token": "tok_visa", "orderId": order}
            res = race([lambda: safe(owner.post, "/api/payments", body)] * 2)
            won = [x for x in res if x is not None and x.status_code == 201]
            if len(won) > 1:
                book.add("double_charged", (order, [x.json()["id"] for x in won]))
            for x in won:
                book.add("payments", (order, x.json()["id"]))
            if won or any(x is not None and x.status_code == 400 for x in res):
                break
            time.sleep(0.2)
    elif fate < 0.6:
        book.orders[order]["fate"] = "cancel"
        for _ in range(20):
            r = safe(owner.delete, f"/api/orders/{order}")
            if r is not None and r.status_code == 204:
                with book.lock:
                    book.cancelled.add(order)
                break
            if r is not None and r.status_code < 500 and r.status_code != 404:
                break
            time.sleep(0.2)


def worker():
    seller = signup()
    buyers = [signup(), signup()]
    while not stop_load.is_set():
        try:
            round_(seller, buyers)
        except Exception as e:  # a worker must not die quietly: count it, go on
            book.errors[f"worker {type(e).__name__}"] += 1
        time.sleep(PAUSE)


class Reader(threading.Thread):
    """GETs through nginx all the time; failures are counted per phase."""

    def __init__(self):
        super().__init__(daemon=True)
        self.phase = "load"
        self.results = collections.defaultdict(lambda: [0, 0])  # phase -> [ok, failed]
        self.failed = collections.defaultdict(list)
        self.client = None

    def run(self):
        self.client = signup()
        while not stop_load.is_set():
            paths = ["/api/tickets", "/api/users/currentuser", "/api/orders"]
            with book.lock:
                if book.tickets:
                    paths.append(f"/api/tickets/{random.choice(book.tickets[-50:])}")
            for p in paths:
                phase = self.phase
                try:
                    r = self.client.get(p, timeout=10)
                    ok = r.status_code == 200 or (p.startswith("/api/tickets/") and
                                                  r.status_code == 404)
                    why = f"{r.status_code} {p}"
                except requests.RequestException as e:
                    ok, why = False, f"{type(e).__name__} {p}"
                self.results[phase][0 if ok else 1] += 1
                if not ok:
                    self.failed[phase].append(why)
            time.sleep(0.02)


# ---- observation helpers -----------------------------------------------------------------------


def log_lines(instance):
    path = TOPDIR / f"{instance}.log"
    out = []
    if not path.exists():
        return out
    for line in path.read_text(errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        t = rec.get("time")
        if t:
            rec["ms"] = int(datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
                tzinfo=datetime.timezone.utc).timestamp() * 1000)
            out.append(rec)
    return out


def first_log_after(instance, t0, msg, timeout, **match):
    """ms of the first line of instance's log with msg (and fields) at or after t0."""
    def found():
        for rec in log_lines(instance):
            if rec["ms"] >= t0 and rec.get("msg") == msg and all(
                    rec.get(k) == v for k, v in match.items()):
                return rec["ms"]
        return None
    return eventually(found, f"'{msg}' {match} in {instance}'s log", timeout=timeout,
                      interval=0.05)


def metadata():
    out = run(["kcat", "-b", BROKERS, "-L", "-J", "-m", "3"], timeout=30)
    return json.loads(out)


def partition_info(topic):
    for t in metadata()["topics"]:
        if t["topic"] == topic:
            return {p["partition"]: p for p in t["partitions"]}
    return {}


def busiest_partition(topic):
    best, hw = 0, -1
    for p in partition_info(topic):
        out = subprocess.run(["kcat", "-b", BROKERS, "-Q", "-t", f"{topic}:{p}:-1"],
                             capture_output=True, text=True, timeout=30).stdout
        m = re.search(r"\[(\d+)\]\s+offset\s+(-?\d+)", out)
        n = int(m.group(2)) if m else -1
        if n > hw:
            best, hw = p, n
    return best


def topology(*args):
    return run(TOPOLOGY + list(args), timeout=120)


def cluster(*args):
    return run(CLUSTER + list(args), timeout=300)


def kill(instance):
    topology("kill", instance)


def restart(instance):
    t0 = now_ms()
    topology("restart", instance)
    return now_ms() - t0


def active_relay(ctx):
    """The instance of relay-<ctx> whose last state line says it is active."""
    for i in (1, 2):
        states = [r["msg"] for r in log_lines(f"relay-{ctx}.{i}")
                  if r.get("msg") in ("active", "standby: another relay holds the lock")]
        if states and states[-1] == "active":
            return i
    return None


# ---- phases ------------------------------------------------------------------------------------


def phase_broker():
    topic = "orders"
    part = busiest_partition(topic)
    leader = partition_info(topic)[part]["leader"]
    log(f"broker: killing node {leader}, leader of {topic}[{part}]")
    t0 = now_ms()
    cluster("kill-broker", str(leader))

    def new_leader():
        try:
            lead = partition_info(topic)[part]["leader"]
        except (RuntimeError, KeyError, ValueError, subprocess.TimeoutExpired):
            return None
        return lead if lead not in (leader, -1) else None

    lead = eventually(new_leader, "a new leader", timeout=60, interval=0.1)
    report["recovery_ms"]["leader_election"] = now_ms() - t0
    log(f"broker: node {lead} leads {topic}[{part}] after {now_ms() - t0} ms")
    time.sleep(8)  # load goes on with two brokers (min.insync.replicas=2 still met)
    t1 = now_ms()
    cluster("start-broker", str(leader))
    report["recovery_ms"]["broker_restart_to_registered"] = now_ms() - t1

    def full_isr():
        info = partition_info(topic)
        return all(len(p.get("isrs", [])) == 3 for p in info.values()) and info
    eventually(full_isr, "every orders partition back to 3 in-sync replicas", timeout=240,
               interval=0.5)
    report["recovery_ms"]["broker_restart_to_full_isr"] = now_ms() - t1


def phase_instances():
    # Projectors: kill instance 1 of each; instance 2 takes over once the session times out.
    t0 = now_ms()
    for ctx in ("tickets", "orders", "payments"):
        kill(f"project-{ctx}.1")
    log("instances: project-*.1 killed")
    took = first_log_after("project-orders.2", t0, "partitions assigned", 60,
                           group="orders.order_view", count=6)
    report["recovery_ms"]["projector_takeover"] = took - t0
    log(f"instances: project-orders.2 took all 6 partitions after {took - t0} ms")
    # Relays: kill the active one of each database; the standby takes the lock.
    for ctx in ("auth", "tickets", "orders", "payments"):
        act = active_relay(ctx)
        if act is None:
            check(f"relay-{ctx} has an active instance", False)
            continue
        other = 3 - act
        t1 = now_ms()
        kill(f"relay-{ctx}.{act}")
        got = first_log_after(f"relay-{ctx}.{other}", t1, "active", 30, context=ctx)
        report["recovery_ms"][f"relay_failover_{ctx}"] = got - t1
        log(f"instances: relay-{ctx}.{other} active {got - t1} ms after relay-{ctx}.{act} died")
        restart(f"relay-{ctx}.{act}")
    # The scheduler and the servers: kill instance 1 of each, let the load run, restart.
    kill("expire.1")
    for ctx in ("auth", "tickets", "orders", "payments"):
        kill(f"serve-{ctx}.1")
    log("instances: expire.1 and serve-*.1 killed")
    time.sleep(4)
    t2 = now_ms()
    restart("expire.1")
    first_log_after("expire.1", t2, "scheduler started", 30)
    for ctx in ("auth", "tickets", "orders", "payments"):
        restart(f"serve-{ctx}.1")
    # Projectors back: instance 1 rejoins (a rebalance gives it half the partitions again).
    for ctx in ("tickets", "orders", "payments"):
        restart(f"project-{ctx}.1")
    time.sleep(2)
    # Static membership: kill -9 and restart at once; the restarted member gets its partitions
    # back with no rebalance, far sooner than the 10 s session timeout.
    t3 = now_ms()
    kill("project-orders.2")
    restart("project-orders.2")
    back = first_log_after("project-orders.2", t3, "partitions assigned", 30,
                           group="orders.order_view")
    report["recovery_ms"]["projector_static_rejoin"] = back - t3
    log(f"instances: project-orders.2 killed, restarted and assigned again after {back - t3} ms")


def phase_rolling(reader):
    reader.phase = "rolling"
    time.sleep(0.5)
    for role in ROLES:
        for i in (1, 2):
            name = f"{role}.{i}"
            report["rolling_restart_ms"][name] = restart(name)
            if role.startswith("serve-"):
                time.sleep(1)  # nginx's fail_timeout: the restarted one is tried again first
    reader.phase = "after"


# ---- checks ------------------------------------------------------------------------------------


def dump_log():
    """Every committed record of every topic: (topic, partition, offset, key, envelope)."""
    recs = []
    for topic in TOPICS:
        # read_committed, as every consumer of ours: a relay's aborted batch is not an event.
        out = subprocess.run(["kcat", "-b", BROKERS, "-X", "isolation.level=read_committed", "-C",
                              "-t", topic, "-o", "beginning", "-e", "-q", "-J"],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        for line in out.stdout.splitlines():
            m = json.loads(line)
            try:
                env = json.loads(m.get("payload") or "null")
            except ValueError:
                env = None
            recs.append((topic, m["partition"], m["offset"], m.get("key"), env))
    return recs


def checks(reader):
    recs = dump_log()
    events = [(t, env) for t, _, _, _, env in recs if t != "expiration.delay"
              and isinstance(env, dict)]
    by_id = collections.Counter(env["id"] for _, env in events)
    dup_ids = [i for i, n in by_id.items() if n > 1]
    check("no event record on Kafka twice", not dup_ids, f"{len(dup_ids)} repeated event ids "
          f"{dup_ids[:3]}")
    versions = collections.defaultdict(set)
    for _, env in events:
        if env["type"] != "expiration:complete":
            versions[(env["type"], env["subject"], env.get("aggregateversion"))].add(env["id"])
    twice = [k for k, ids in versions.items() if len(ids) > 1]
    check("no event published twice under two ids", not twice, str(twice[:3]))

    of_type = collections.defaultdict(list)
    for _, env in events:
        of_type[env["type"]].append(env)
    subjects = {t: collections.Counter(e["subject"] for e in envs) for t, envs in of_type.items()}

    def once(kind, type_, ids):
        c = subjects.get(type_, collections.Counter())
        bad = [i for i in ids if c[i] != 1]
        check(f"every 2xx {kind} has its {type_} exactly once", not bad,
              f"{len(ids)} commands, {len(bad)} not once: {[(i, c[i]) for i in bad[:3]]}")

    once("sign-up", "user:registered", book.users)
    once("ticket", "ticket:created", book.tickets)
    once("order", "order:created", list(book.orders))
    paid = collections.Counter(e["data"]["orderId"] for e in of_type.get("payment:created", []))
    bad = [o for o, _ in book.payments if paid[o] != 1]
    check("every 2xx payment has its payment:created exactly once", not bad,
          f"{len(book.payments)} payments, bad {bad[:3]}")
    cancels = subjects.get("order:cancelled", collections.Counter())
    bad = [o for o in book.cancelled if cancels[o] != 1]
    check("every 2xx cancel has its order:cancelled exactly once", not bad, str(bad[:3]))

    # Reservations and charges.
    check("no race reserved a ticket twice", not book.double_reserved, str(book.double_reserved))
    check("no race charged an order twice", not book.double_charged, str(book.double_charged))
    twice_paid = [o for o, n in paid.items() if n > 1]
    check("at most one payment:created per order", not twice_paid, str(twice_paid[:3]))
    created = {e["subject"]: e["data"]["ticket"]["id"] for e in of_type.get("order:created", [])}
    completed = collections.Counter(created.get(e["subject"])
                                    for e in of_type.get("order:completed", []))
    check("at most one completed order per ticket", all(n <= 1 for n in completed.values()),
          str([t for t, n in completed.items() if n > 1][:3]))
    live = collections.Counter(t for o, t in created.items() if cancels[o] == 0)
    check("at most one live order per ticket", all(n <= 1 for n in live.values()),
          str([t for t, n in live.items() if n > 1][:3]))

    # Expirations: one expiration:complete per order:created, and nothing left reserved.
    fired = collections.Counter(e["data"]["orderId"] for e in of_type.get("expiration:complete", []))
    lost = [o for o in created if fired[o] == 0]
    doubled = [o for o in created if fired[o] > 1]
    check("no expiration lost", not lost, f"{len(created)} orders, lost {lost[:3]}")
    check("no expiration fired twice", not doubled, f"doubled {doubled[:3]}")
    wrong = []
    refunded = {e["data"]["orderId"] for e in of_type.get("payment:refunded", [])}
    for oid, o in list(book.orders.items()):
        r = o["owner"].get(f"/api/orders/{oid}")
        want = "complete" if paid[oid] and oid not in refunded else "cancelled"
        if r.status_code != 200 or r.json()["status"] != want:
            wrong.append((oid, r.status_code, r.text[:80], want))
    check("every order ends complete (paid) or cancelled (expired or cancelled)", not wrong,
          str(wrong[:3]))

    # GETs through nginx.
    for phase, (ok, bad) in reader.results.items():
        report["counts"][f"get_{phase}"] = {"ok": ok, "failed": bad}
    ok, bad = reader.results["rolling"]
    check("no GET failed through nginx during the rolling restart", ok > 0 and bad == 0,
          f"{ok} ok, {bad} failed {reader.failed['rolling'][:5]}")

    # Read models against the log.
    names = [ln.split("\t")[0] for ln in run([TICKETING, "replay", "list"]).splitlines()
             if ln.strip()]
    for name in names:
        out = subprocess.run([TICKETING, "replay", name], capture_output=True, text=True,
                             timeout=300)
        same = out.returncode == 0 and "identical" in out.stdout and "DIFFERENT" not in out.stdout
        check(f"read model {name} equals a replay of the log", same,
              "" if same else (out.stdout + out.stderr)[-600:])
    report["counts"].update({"users": len(book.users), "tickets": len(book.tickets),
                             "orders": len(book.orders), "payments": len(book.payments),
                             "cancels": len(book.cancelled), "records": len(recs),
                             "command_errors": dict(book.errors)})


def main():
    t_start = time.monotonic()
    report["started"] = datetime.datetime.now(datetime.timezone.utc).isoformat()
    reader = Reader()
    reader.start()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(WORKERS)]
    for t in threads:
        t.start()
    phases = {}
    try:
        time.sleep(8)
        for name, fn in (("broker", phase_broker), ("instances", phase_instances),
                         ("rolling", lambda: phase_rolling(reader))):
            t0 = time.monotonic()
            log(f"phase {name}")
            fn()
            phases[name] = round(time.monotonic() - t0, 1)
        time.sleep(3)
    except Exception as e:
        check("the phases ran", False, f"{type(e).__name__}: {e}")
    stop_load.set()
    for t in threads:
        t.join(60)
    reader.join(30)
    log("load stopped; waiting until everything settled")
    window = float(os.environ.get("EXPIRATION_WINDOW_SECONDS", "5"))
    time.sleep(window + 1)
    try:
        settled("projectors caught up, outboxes empty, no expiration pending")
    except AssertionError as e:
        check("the system settled after the load", False, str(e))
    checks(reader)
    report["phases_s"] = phases
    report["total_s"] = round(time.monotonic() - t_start, 1)
    report["failures"] = failures
    dest = os.environ.get("CHAOS_REPORT")
    if dest:
        pathlib.Path(dest).write_text(json.dumps(report, indent=2) + "\n")
    log("recovery times (ms): " + json.dumps(report["recovery_ms"]))
    log("rolling restart (ms per instance): " + json.dumps(report["rolling_restart_ms"]))
    log("counts: " + json.dumps(report["counts"]))
    log(f"{'FAILED: ' + ', '.join(failures) if failures else 'all checks passed'} "
        f"in {report['total_s']} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
