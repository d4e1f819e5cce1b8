"""Small helpers shared by the auth-hardening security tests (issue 11 items 3, 11, 12).

Self-contained on purpose: only `requests` and the env SECURITY_BASE_URL (the ingress of a
running topology, e.g. http://127.0.0.1:8080). The topology trusts its loopback nginx
(TRUSTED_PROXIES=127.0.0.1), and nginx appends the peer to X-Forwarded-For, so a test that sends
`X-Forwarded-For: <addr>` is seen as a client at <addr>: each test takes fresh addresses and
fresh emails, so the tests never share a throttling counter.
"""
import base64
import json
import os
import random
import uuid

import requests

TIMEOUT = 60


def base_url():
    url = os.environ.get("SECURITY_BASE_URL")
    if not url:
        import pytest

        pytest.skip("SECURITY_BASE_URL is not set (the ingress of a running topology)")
    return url.rstrip("/")


def fresh_email():
    return f"sec{uuid.uuid4().hex[:16]}@test.com"


def fresh_address():
    """A random address in 10.0.0.0/8: no other test (or rerun) shares its counter."""
    return "10.%d.%d.%d" % (random.randrange(256), random.randrange(256), random.randrange(1, 255))


def post(path, body=None, client=None, session=None, cookies=None):
    headers = {"X-Forwarded-For": client} if client else {}
    s = session or requests
    return s.post(base_url() + path, json=body if body is not None else {}, headers=headers,
                  cookies=cookies, timeout=TIMEOUT)


def get(path, session=None, cookies=None, headers=None):
    s = session or requests
    return s.get(base_url() + path, cookies=cookies, headers=headers or {}, timeout=TIMEOUT)


def signup(email=None, password="password", client=None):
    """A fresh signed-in user: (requests.Session with the cookie, email, user id)."""
    email = email or fresh_email()
    s = requests.Session()
    r = post("/api/users/signup", {"email": email, "password": password}, client=client,
             session=s)
    assert r.status_code == 201, r.text
    return s, email, r.json()["id"]


def signin(email, password, client=None, session=None):
    return post("/api/users/signin", {"email": email, "password": password}, client=client,
                session=session)


def assert_contract_error(r, status, contains):
    assert r.status_code == status, (r.status_code, r.text)
    body = r.json()
    assert isinstance(body.get("errors"), list) and body["errors"], body
    assert contains in body["errors"][0]["message"], body


def url(path):
    return base_url() + path


def session_token(session_cookie):
    """The JWT inside a `session` cookie value (base64 of {"jwt": ...})."""
    return json.loads(base64.b64decode(session_cookie))["jwt"]


def jwt_claims(session_cookie):
    """The claims of the JWT inside a `session` cookie value (base64 of {"jwt": ...})."""
    payload = session_token(session_cookie).split(".")[1]
    payload += "=" * (-len(payload) % 4)
    return json.loads(base64.urlsafe_b64decode(payload))
