"""Polling with a deadline, shared by the Python suites (tests/e2e/support.py, and through it
tests/chaos; tests/security/conftest.py). Each suite passes its own deadline (E2E_TIMEOUT,
SECURITY_TIMEOUT): reads follow commands through Kafka, so an effect is polled for, never slept
for.
"""

import time

import requests


def eventually(fn, what, timeout, interval=0.1):
    """Call fn until it returns a truthy value (returned) or the deadline passes (fails).
    An AssertionError or a request error counts as "not yet"; the last one is in the failure."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = fn()
            if value:
                return value
            last = value
        except (AssertionError, requests.RequestException) as e:
            last = e
        if time.monotonic() >= deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what} (last: {last!r})")
        time.sleep(interval)
