"""Issue 11 item 3: sign-in throttling per account and per client address, 429 + Retry-After
in the contract's error format, counted in the auth database (shared by every `serve auth`).

The defaults are assumed: SIGNIN_ACCOUNT_LIMIT=10 per 900 s, SIGNIN_ADDRESS_LIMIT=30 per 300 s
(the topology sets neither); the tests read them from the same variables when set."""
import os
from concurrent.futures import ThreadPoolExecutor

from _auth_helpers import (assert_contract_error, fresh_address, fresh_email, signin, signup)

ACCOUNT_LIMIT = int(os.environ.get("SIGNIN_ACCOUNT_LIMIT", "10"))
ACCOUNT_WINDOW = int(os.environ.get("SIGNIN_ACCOUNT_WINDOW_SECONDS", "900"))
ADDRESS_LIMIT = int(os.environ.get("SIGNIN_ADDRESS_LIMIT", "30"))
ADDRESS_WINDOW = int(os.environ.get("SIGNIN_ADDRESS_WINDOW_SECONDS", "300"))


def assert_throttled(r, window):
    assert_contract_error(r, 429, "Too many failed sign-ins")
    retry = int(r.headers["Retry-After"])
    assert 1 <= retry <= window
    assert "set-cookie" not in {k.lower() for k in r.headers}


def test_account_is_throttled_from_any_address():
    _, email, _ = signup()
    for _ in range(ACCOUNT_LIMIT):
        r = signin(email, "wrong-password", client=fresh_address())
        assert_contract_error(r, 400, "Invalid credentials")
    r = signin(email, "wrong-password", client=fresh_address())
    assert_throttled(r, ACCOUNT_WINDOW)
    # Locked for the window, even with the right password: no scrypt is spent on it.
    r = signin(email, "password", client=fresh_address())
    assert_throttled(r, ACCOUNT_WINDOW)


def test_address_is_throttled_across_accounts():
    client, other = fresh_address(), fresh_address()
    for _ in range(ADDRESS_LIMIT):
        r = signin(fresh_email(), "password", client=client)
        assert_contract_error(r, 400, "Invalid credentials")
    assert_throttled(signin(fresh_email(), "password", client=client), ADDRESS_WINDOW)
    # Another address is not affected.
    assert_contract_error(signin(fresh_email(), "password", client=other), 400,
                          "Invalid credentials")


def test_limit_is_exact_under_concurrency():
    """Concurrent failures for one account (what several `serve auth` processes would see):
    exactly ACCOUNT_LIMIT get through to a password check, the rest get 429."""
    email = fresh_email()
    n = ACCOUNT_LIMIT + 8
    with ThreadPoolExecutor(max_workers=n) as pool:
        codes = list(pool.map(lambda _: signin(email, "pw", client=fresh_address()).status_code,
                              range(n)))
    assert codes.count(400) == ACCOUNT_LIMIT, codes
    assert codes.count(429) == n - ACCOUNT_LIMIT, codes


def test_successes_are_not_counted():
    _, email, _ = signup()
    for _ in range(ACCOUNT_LIMIT + 2):
        assert signin(email, "password", client=fresh_address()).status_code == 200
