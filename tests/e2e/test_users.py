"""Accounts through the ingress: two users sign up, see themselves, sign out and in again
(ORIGINAL-TESTS A1-A12 in black-box form, end to end), and user:registered reaches Kafka."""

import uuid

from support import Client, error_message


def test_two_users_sign_up_and_see_themselves(new_user, event_log):
    alice, bob = new_user(), new_user()
    assert alice.id != bob.id
    for u in (alice, bob):
        r = u.get("/api/users/currentuser")
        assert r.status_code == 200
        me = r.json()["currentUser"]
        assert me["id"] == u.id and me["email"] == u.email and isinstance(me["iat"], int)
    anonymous = Client()
    assert anonymous.get("/api/users/currentuser").json() == {"currentUser": None}
    if event_log is not None:
        for u in (alice, bob):
            env = event_log.expect("user:registered", u.id)
            assert env["data"] == {"id": u.id, "email": u.email}
            assert env["source"] == "ticketing/users"


def test_sign_up_rules_sign_out_and_in(new_user):
    alice = new_user()
    again = Client().post("/api/users/signup", {"email": alice.email, "password": "other"})
    assert again.status_code == 400 and error_message(again) == "Email in use"
    for body in ({"email": "alskdflaskjfd", "password": "secret"},
                 {"email": f"{uuid.uuid4().hex}@example.com", "password": "p"},
                 {"password": "secret"}, {"email": "a@example.com"}):
        r = Client().post("/api/users/signup", body)
        assert r.status_code == 400, body

    r = alice.post("/api/users/signout")
    assert r.status_code == 200 and r.json() == {}
    assert r.headers["set-cookie"].startswith(
        "session=; path=/; expires=Thu, 01 Jan 1970 00:00:00 GMT; httponly")
    assert alice.get("/api/users/currentuser").json() == {"currentUser": None}

    wrong = alice.post("/api/users/signin", {"email": alice.email, "password": "wrong"})
    assert wrong.status_code == 400 and error_message(wrong) == "Invalid credentials"
    r = alice.post("/api/users/signin", {"email": alice.email, "password": "secret"})
    assert r.status_code == 200 and r.json() == {"id": alice.id, "email": alice.email}
    assert alice.get("/api/users/currentuser").json()["currentUser"]["id"] == alice.id
