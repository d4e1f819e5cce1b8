"""Helpers of the e2e suite: an HTTP client per user, polling with deadlines, a reader of
Server-Sent Events, and a tail of every event topic that validates each record against
schemas/events/.

The suite talks to the system only through the ingress, E2E_BASE_URL (default
http://127.0.0.1:8080: scripts/topology.sh, or a docker compose deployment). Kafka and replay
checks need the `ticketing` binary and the deployment's KAFKA_BROKERS / DATABASE_URL* in the
environment (tests/e2e/run.sh sources var/topology/env.sh and sets E2E_TICKETING_BIN); without
E2E_TICKETING_BIN they are skipped, so the same suite runs against any deployment by base URL.

Eventual consistency: reads follow commands through Kafka, so every read of an effect is polled
until a deadline (E2E_TIMEOUT, 30 s), never slept for.
"""

import json
import os
import pathlib
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid

import jsonschema
import requests

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "support"))
import tk_polling  # noqa: E402  (tests/support: shared with tests/security)

BASE_URL = os.environ.get("E2E_BASE_URL", "http://127.0.0.1:8080").rstrip("/")
TICKETING = os.environ.get("E2E_TICKETING_BIN") or None
TIMEOUT = float(os.environ.get("E2E_TIMEOUT", "30"))

# DESIGN.md section 3: the topic of each event type.
TOPIC_OF = {
    "user:registered": "users",
    "ticket:created": "tickets",
    "ticket:updated": "tickets",
    "order:created": "orders",
    "order:cancelled": "orders",
    "order:completed": "orders",
    "expiration:complete": "expirations",
    "payment:created": "payments",
    "payment:refunded": "payments",
    "payment:expired": "payments",
}


def eventually(fn, what, timeout=TIMEOUT, interval=0.1):
    """tk_polling.eventually with this suite's deadline (E2E_TIMEOUT) by default."""
    return tk_polling.eventually(fn, what, timeout, interval)


class Client:
    """One browser: a cookie jar and the ingress's base URL."""

    def __init__(self):
        self.http = requests.Session()
        self.id = None
        self.email = None

    def request(self, method, path, **kw):
        kw.setdefault("timeout", 15)
        return self.http.request(method, BASE_URL + path, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.request("POST", path, json=body, **kw)

    def put(self, path, body=None, **kw):
        return self.request("PUT", path, json=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    def signup(self):
        self.email = f"e2e-{uuid.uuid4().hex[:16]}@example.com"
        r = self.post("/api/users/signup", {"email": self.email, "password": "secret"})
        assert r.status_code == 201, r.text
        assert r.json()["email"] == self.email
        assert self.http.cookies.get("session"), "sign-up set no session cookie"
        self.id = r.json()["id"]
        return self


def error_message(r):
    return r.json()["errors"][0]["message"]


class SseReader:
    """GET /api/orders/<id>/events in a thread: the events arrive on a queue as they come."""

    def __init__(self, client, order_id, timeout=TIMEOUT + 30):
        self.events = queue.Queue()
        self.status = None
        self.content_type = None
        self.closed = threading.Event()
        self.opened = threading.Event()
        self._resp = client.get(f"/api/orders/{order_id}/events", stream=True, timeout=timeout)
        self.status = self._resp.status_code
        self.content_type = self._resp.headers.get("content-type", "")
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        name, data = None, []
        try:
            for line in self._resp.iter_lines(decode_unicode=True):
                if line is None:
                    continue
                if line == "":
                    if data:
                        self.events.put((name or "message", json.loads("\n".join(data))))
                    name, data = None, []
                elif line.startswith(":"):
                    continue
                elif line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
        except requests.RequestException:
            pass
        finally:
            self.closed.set()

    def next(self, name, timeout=TIMEOUT):
        """The data of the next event called name (others are skipped); fails at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                ev, data = self.events.get(timeout=max(0.05, min(left, 0.5)))
                if ev == name:
                    return data
                continue
            except queue.Empty:
                pass
            if self.closed.is_set() and self.events.empty():
                raise AssertionError(f"the stream ended before a '{name}' event")
            if left <= 0:
                raise AssertionError(f"no '{name}' event within {timeout:.0f} s")

    def wait_closed(self, timeout=TIMEOUT):
        assert self.closed.wait(timeout), f"the server did not end the stream within {timeout} s"

    def close(self):
        self._resp.close()


# ---- the event log ---------------------------------------------------------------------------


def _load_schema(rel):
    path = REPO / rel
    if not path.is_file():
        return None
    return json.loads(path.read_text())


class EventLog:
    """`ticketing events tail` from now on: every record of the event topics, each validated
    against the envelope schema and the schema its dataschema names."""

    def __init__(self, binary):
        self.records = []
        self.invalid = []
        self._cond = threading.Condition()
        self._envelope = jsonschema.Draft202012Validator(
            _load_schema("schemas/events/envelope.v1.json"),
            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
        )
        self._schemas = {}
        self._proc = subprocess.Popen(
            [binary, "events", "tail"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        ready = self._proc.stderr.readline()  # "... reading N partitions ... from now"
        if "reading" not in ready:
            self._proc.kill()
            raise RuntimeError(f"ticketing events tail did not start: {ready}")
        self._stderr = threading.Thread(target=self._proc.stderr.read, daemon=True)
        self._stderr.start()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def problems(self, rec):
        """What is wrong with one tail record (empty when it is a valid event)."""
        env = rec.get("event")
        if "error" in rec or not isinstance(env, dict):
            return [f"undecodable: {rec.get('error')}"]
        out = [f"envelope: {e.message}" for e in self._envelope.iter_errors(env)]
        if out:
            return out
        rel = env["dataschema"]
        if rel not in self._schemas:
            schema = _load_schema(rel)
            self._schemas[rel] = schema and jsonschema.Draft202012Validator(
                schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
            )
        v = self._schemas[rel]
        if v is None:
            return [f"dataschema {rel} does not exist"]
        out += [f"data: {e.message}" for e in v.iter_errors(env["data"])]
        if rec.get("key") != env["subject"]:
            out.append(f"key {rec.get('key')} is not the subject {env['subject']}")
        if rec.get("topic") != TOPIC_OF.get(env["type"]):
            out.append(f"{env['type']} on topic {rec.get('topic')}")
        if (rec.get("headers") or {}).get("ce_type") != env["type"]:
            out.append(f"header ce_type {(rec.get('headers') or {}).get('ce_type')}")
        return out

    def _read(self):
        for line in self._proc.stdout:
            try:
                rec = json.loads(line)
            except ValueError:
                rec = {"error": "not JSON", "event": line}
            bad = self.problems(rec)
            with self._cond:
                self.records.append(rec)
                if bad:
                    self.invalid.append((rec, bad))
                self._cond.notify_all()

    def expect(self, type_, subject, timeout=TIMEOUT, where=None):
        """The envelope of the first event of type_ about subject (and where(env)), waiting."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for rec in self.records:
                    env = rec.get("event")
                    if (
                        isinstance(env, dict)
                        and env.get("type") == type_
                        and env.get("subject") == subject
                        and (where is None or where(env))
                    ):
                        bad = self.problems(rec)
                        assert not bad, f"{type_} {subject} is invalid: {bad}"
                        return env
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {type_} for {subject} on Kafka within {timeout} s")
                self._cond.wait(min(left, 0.5))

    def about(self, subject):
        with self._cond:
            return [r["event"] for r in self.records
                    if isinstance(r.get("event"), dict) and r["event"].get("subject") == subject]

    def close(self):
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()




# ---- the system's own view: `ticketing status --json` ----------------------------------------


def status():
    """`ticketing status --json` of the deployment (needs E2E_TICKETING_BIN and its env)."""
    out = subprocess.run([TICKETING, "status", "--json"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def settled(what="the system is settled"):
    """Wait until every projector has consumed its topics to the end, every outbox is empty and
    no expiration is pending: every effect of what happened so far has been applied. Returns the
    last status."""

    def quiet():
        s = status()
        busy = [f"{p['context']}.{p['projection']} lag {p['lag']}" for p in s["projectors"]
                if p.get("inTable", True) and p["lag"] != 0]
        busy += [f"{d['context']} outbox {d['outboxDepth']}" for d in s["databases"]
                 if d["outboxDepth"] != 0]
        if s.get("expiration", {}).get("pending", 0) != 0:
            busy.append(f"{s['expiration']['pending']} expirations pending")
        assert not busy, ", ".join(busy)
        return s

    return eventually(quiet, what, timeout=TIMEOUT + 30, interval=0.25)
