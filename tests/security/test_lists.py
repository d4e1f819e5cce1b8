"""Issue 11 item 11: bounded lists (bare arrays, at most LIST_DEFAULT_LIMIT=100 without ?limit,
?limit up to LIST_MAX_LIMIT=1000) and a cap on open orders per user (ORDERS_OPEN_MAX=10: 429 +
Retry-After)."""
import os
import time
from concurrent.futures import ThreadPoolExecutor

from _auth_helpers import assert_contract_error, get, post, signup

DEFAULT_LIMIT = int(os.environ.get("LIST_DEFAULT_LIMIT", "100"))
MAX_LIMIT = int(os.environ.get("LIST_MAX_LIMIT", "1000"))
OPEN_MAX = int(os.environ.get("ORDERS_OPEN_MAX", "10"))


def create_tickets(session, n, title="bounded"):
    ids = []
    for i in range(n):
        r = post("/api/tickets", {"title": f"{title} {i}", "price": 10}, session=session)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids


def wait_for(predicate, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def test_ticket_list_is_bounded_and_bare():
    seller, _, _ = signup()
    # Enough unreserved tickets that an unbounded list would exceed the default limit.
    have = len(get("/api/tickets?limit=%d" % MAX_LIMIT).json())
    if have <= DEFAULT_LIMIT:
        ids = create_tickets(seller, DEFAULT_LIMIT + 1 - have)
        wait_for(lambda: any(t["id"] == ids[-1] for t in
                             get("/api/tickets?limit=%d" % MAX_LIMIT).json()))
    r = get("/api/tickets")
    assert r.status_code == 200
    assert isinstance(r.json(), list) and len(r.json()) == DEFAULT_LIMIT
    assert len(get("/api/tickets?limit=%d" % MAX_LIMIT).json()) > DEFAULT_LIMIT
    assert_contract_error(get("/api/tickets?limit=%d" % (MAX_LIMIT + 1)), 400, "limit")


def test_order_list_pages_and_open_orders_are_capped():
    """The topology's reservation window is short (5 s), so the orders are placed at once:
    of OPEN_MAX + 1 concurrent POSTs by one buyer exactly OPEN_MAX are accepted."""
    seller, _, _ = signup()
    buyer, _, _ = signup()
    ids = create_tickets(seller, OPEN_MAX + 1, "capped")
    for tid in ids:  # in the tickets read model, so the orders replica is about there too
        wait_for(lambda: get("/api/tickets/" + tid).status_code == 200)
    results = {}
    pending = list(ids)
    deadline = time.time() + 30
    while pending and time.time() < deadline:
        with ThreadPoolExecutor(max_workers=len(pending)) as pool:
            rs = list(pool.map(lambda t: post("/api/orders", {"ticketId": t}, session=buyer),
                               pending))
        for tid, r in zip(pending, rs):
            results[tid] = r
        pending = [t for t in pending if results[t].status_code == 404]
        time.sleep(0.2)
    codes = sorted(r.status_code for r in results.values())
    assert codes == [201] * OPEN_MAX + [429], codes
    refused = next(t for t, r in results.items() if r.status_code == 429)
    r = results[refused]
    assert_contract_error(r, 429, "Too many open orders")
    assert int(r.headers["Retry-After"]) >= 1
    # Another user may still order that ticket.
    other, _, _ = signup()
    assert post("/api/orders", {"ticketId": refused}, session=other).status_code == 201

    # GET /api/orders: a bare array, paged with limit and cursor in creation order.
    placed = wait_for(lambda: (lambda a: a if len(a) == OPEN_MAX else None)(
        get("/api/orders", session=buyer).json()))
    page = get("/api/orders?limit=3", session=buyer).json()
    assert [o["id"] for o in page] == [o["id"] for o in placed[:3]]
    rest = get("/api/orders?cursor=%s" % page[-1]["id"], session=buyer).json()
    assert [o["id"] for o in rest] == [o["id"] for o in placed[3:]]
    assert_contract_error(get("/api/orders?limit=0", session=buyer), 400, "limit")
    assert_contract_error(get("/api/orders?cursor=%s" % page[0]["id"], session=other), 400,
                          "Invalid cursor")
