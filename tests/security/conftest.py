"""Shared fixtures and helpers of the black-box security suite (tests/security/run.sh).

Every test_*.py here talks to a running system only: through the ingress (fixture `base_url`,
env SECURITY_BASE_URL) as a browser would, or to one service's own port (`service_url(ctx)`,
env SECURITY_SERVICE_<CTX>) for protocol-level cases that the ingress would absorb. Raw-socket
helpers (`raw_exchange`, `raw_connect`) send exact bytes. Limits the processes were started with
are in the environment (run.sh exports them), so a test reads its bound instead of guessing it.
"""

import json
import os
import pathlib
import socket
import sys
import time
import urllib.parse
import uuid

import pytest
import requests

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "support"))
import tk_polling  # noqa: E402  (tests/support: shared with tests/e2e)

BASE_URL = os.environ.get("SECURITY_BASE_URL", "http://127.0.0.1:8080").rstrip("/")
LOG_DIR = pathlib.Path(os.environ.get("SECURITY_LOG_DIR", ""))
TICKETING = os.environ.get("SECURITY_TICKETING_BIN") or None
TIMEOUT = float(os.environ.get("SECURITY_TIMEOUT", "30"))


def limit(name, default=None):
    """The integer value of a limit the processes were started with (run.sh exports them)."""
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def eventually(fn, what, timeout=TIMEOUT, interval=0.1):
    """tk_polling.eventually with this suite's deadline (SECURITY_TIMEOUT) by default."""
    return tk_polling.eventually(fn, what, timeout, interval)


def signup(session, email=None, password="secret-pass", base_url=BASE_URL):
    """Sign a new user up with @session (a requests.Session, which keeps the cookie).
    Returns the user's JSON ({id, email}); fails the test on anything but 201."""
    email = email or f"sec-{uuid.uuid4().hex[:12]}@example.com"
    r = session.post(f"{base_url}/api/users/signup", json={"email": email, "password": password},
                     timeout=15)
    assert r.status_code == 201, (r.status_code, r.text)
    return r.json()


def error_messages(response):
    """The messages of a contract error body {"errors":[{"message":..}]} (fails otherwise)."""
    body = response.json()
    assert isinstance(body.get("errors"), list) and body["errors"], body
    return [e["message"] for e in body["errors"]]


def raw_connect(url, timeout=10):
    """A TCP connection to the host:port of @url."""
    u = urllib.parse.urlparse(url)
    s = socket.create_connection((u.hostname, u.port or 80), timeout=timeout)
    return s


def raw_read(sock, timeout=5.0):
    """Read until the peer closes, a complete response (by Content-Length) or the timeout."""
    sock.settimeout(0.2)
    data = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            break
        if not chunk:
            break
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length" and len(body) >= int(value):
                    return data
    return data


def raw_exchange(url, payload, timeout=5.0):
    """Send @payload (bytes) on a new connection to @url's host, return what comes back."""
    with raw_connect(url) as s:
        s.sendall(payload)
        return raw_read(s, timeout)


def status_of(raw):
    """The status code of a raw HTTP/1.x response, or None."""
    line = raw.split(b"\r\n", 1)[0].split()
    if len(line) >= 2 and line[0].startswith(b"HTTP/1."):
        return int(line[1])
    return None


def role_log_lines(role):
    """The lines of a topology role's log (e.g. "serve-tickets"); [] when logs are not local."""
    path = LOG_DIR / f"{role}.log"
    if not LOG_DIR.name or not path.exists():
        return []
    return path.read_bytes().splitlines()


@pytest.fixture(scope="session")
def base_url():
    """The ingress, as a browser sees the system."""
    return BASE_URL


@pytest.fixture(scope="session")
def service_url():
    """service_url("tickets") -> the base URL of that context's own server (not the ingress)."""

    def of(context):
        url = os.environ.get(f"SECURITY_SERVICE_{context.upper()}")
        if not url:
            pytest.skip(f"SECURITY_SERVICE_{context.upper()} not set (tests/security/run.sh sets it)")
        return url.rstrip("/")

    return of


@pytest.fixture(name="signup")
def _signup_fixture():
    """The signup(session, email=None, password=...) helper as a fixture."""
    return signup


@pytest.fixture
def user(base_url):
    """A signed-up user: a requests.Session with its session cookie, and .me = {id, email}."""
    s = requests.Session()
    s.me = signup(s, base_url=base_url)
    return s


@pytest.fixture(scope="session")
def ticketing_bin():
    """The ticketing binary, for tests that start a process of their own."""
    if TICKETING is None:
        pytest.skip("SECURITY_TICKETING_BIN not set")
    return TICKETING


def json_lines_ok(lines):
    """The lines that are not one JSON object each (a log line must always be one)."""
    bad = []
    for line in lines:
        if not line.strip() or not line.startswith(b"{"):
            continue  # a library's own stderr text (e.g. a sanitizer) is not ours to parse
        try:
            if not isinstance(json.loads(line), dict):
                bad.append(line)
        except ValueError:
            bad.append(line)
    return bad
