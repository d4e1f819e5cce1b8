"""Fixtures of the e2e suite (the helpers live in support.py)."""

import pytest

from support import TICKETING, Client, EventLog


@pytest.fixture
def new_user():
    """A factory of signed-up users, each with its own cookie jar."""
    return lambda: Client().signup()


@pytest.fixture(scope="session")
def event_log():
    """The session's tail of every event topic, or None when E2E_TICKETING_BIN is not set
    (a deployment whose Kafka this machine cannot reach): tests then check HTTP only."""
    if TICKETING is None:
        yield None
        return
    log = EventLog(TICKETING)
    yield log
    log.close()


@pytest.fixture
def events(event_log):
    """The event log; skips the test when there is none."""
    if event_log is None:
        pytest.skip("E2E_TICKETING_BIN not set: Kafka checks need `ticketing events tail`")
    return event_log


@pytest.fixture(scope="session", autouse=True)
def _tail_from_the_start(event_log):
    """Start the event log before the first test, so it sees every event of the run."""
    return event_log
