"""The system's own books, after the flows: every event the run put on Kafka is valid against
schemas/events/, nothing was dead-lettered, and every replayable projection rebuilt from the log
(`ticketing replay <context>.<projection>`: rebuild, compare with the live model, swap) is
identical to its live model; the live projectors go on writing into the swapped-in tables.

Needs E2E_TICKETING_BIN and the deployment's environment (tests/e2e/run.sh provides both);
skipped otherwise. Run after the other files (run.sh orders them) so it covers their events.
"""

import os
import subprocess
import uuid

import pytest

from support import TICKETING, Client, eventually, settled

needs_binary = pytest.mark.skipif(TICKETING is None, reason="E2E_TICKETING_BIN not set")


def replayable():
    if TICKETING is None:
        return []
    out = subprocess.run([TICKETING, "replay", "list"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    return [line.split("\t")[0] for line in out.stdout.splitlines() if line.strip()]


def test_every_event_on_kafka_is_valid(events):
    settled()
    assert events.records, "the tail saw no event at all"
    bad = [(r.get("topic"), r.get("offset"), problems) for r, problems in events.invalid]
    assert not bad, f"invalid records on Kafka: {bad[:5]}"


@needs_binary
@pytest.mark.skipif(os.environ.get("TOPOLOGY_ISOLATED") != "1",
                    reason="a shared stack holds other runs' deliberate poison events")
def test_nothing_was_dead_lettered():
    s = settled()
    dead = [f"{p['context']}.{p['projection']}: {p['deadLetters']}" for p in s["projectors"]
            if p["deadLetters"]]
    dead += [f"{d['context']}: {d['deadLetters']}" for d in s["databases"] if d["deadLetters"]]
    assert not dead, dead


@needs_binary
def test_replay_list_names_the_read_models():
    names = replayable()
    assert {"tickets.ticket_view", "orders.order_view", "orders.tickets_replica"} <= set(names)


@pytest.mark.parametrize("projection", replayable())
def test_replay_equals_the_live_model(projection):
    settled()
    out = subprocess.run([TICKETING, "replay", projection], capture_output=True, text=True,
                         timeout=180)
    report = out.stdout + out.stderr
    assert out.returncode == 0, report
    assert "DIFFERENT" not in out.stdout and "identical" in out.stdout, report
    assert "swapped" in out.stdout, report


@needs_binary
def test_live_projectors_continue_after_the_replays(new_user):
    seller = new_user()
    title = f"after replay {uuid.uuid4().hex[:8]}"
    r = seller.post("/api/tickets", {"title": title, "price": 3})
    assert r.status_code == 201
    t = r.json()
    eventually(lambda: Client().get(f"/api/tickets/{t['id']}").status_code == 200,
               "the swapped-in ticket_view gets new tickets")
    buyer = new_user()

    def ordered():
        r = buyer.post("/api/orders", {"ticketId": t["id"]})
        assert r.status_code in (201, 404), r.text
        return r.status_code == 201 and r.json()

    order = eventually(ordered, "the swapped-in tickets_replica gets new tickets")
    eventually(lambda: buyer.get(f"/api/orders/{order['id']}").status_code == 200,
               "the swapped-in order_view gets new orders")
