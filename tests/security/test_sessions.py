"""Issue 11 item 12: sessions have a default lifetime (24 h), cookies are SameSite=Lax, and
sign-out revokes the session in every service (not only in the browser)."""
import time

import requests

from _auth_helpers import TIMEOUT, base_url, get, jwt_claims, post, session_token, signup


def test_cookie_is_samesite_lax_httponly():
    r = requests.post(base_url() + "/api/users/signup",
                      json={"email": "lax" + str(time.time_ns()) + "@test.com",
                            "password": "password"}, timeout=TIMEOUT)
    assert r.status_code == 201
    cookie = r.headers["Set-Cookie"].lower()
    assert "samesite=lax" in cookie and "httponly" in cookie and "path=/" in cookie


def test_token_expires_in_24_hours_and_has_an_id():
    s, _, _ = signup()
    claims = jwt_claims(s.cookies["session"])
    assert claims["exp"] - claims["iat"] == 86400
    assert len(claims["jti"]) == 36


def test_signout_revokes_the_session_everywhere():
    s, email, uid = signup()
    stolen = {"session": s.cookies["session"]}
    bearer = {"Authorization": "Bearer " + session_token(s.cookies["session"])}
    assert get("/api/users/currentuser", cookies=stolen).json()["currentUser"]["id"] == uid
    r = requests.post(base_url() + "/api/tickets", json={"title": "t", "price": 5},
                      cookies=stolen, timeout=TIMEOUT)
    assert r.status_code == 201, r.text

    r = post("/api/users/signout", session=s)
    assert r.status_code == 200
    # The old token, replayed by cookie or as a bearer token, is anonymous in every service.
    assert get("/api/users/currentuser", cookies=stolen).json() == {"currentUser": None}
    assert get("/api/users/currentuser", headers=bearer).json() == {"currentUser": None}
    r = requests.post(base_url() + "/api/tickets", json={"title": "t", "price": 5},
                      cookies=stolen, timeout=TIMEOUT)
    assert r.status_code == 401
    assert get("/api/orders", cookies=stolen).status_code == 401
    assert get("/api/orders", headers=bearer).status_code == 401
    r = requests.post(base_url() + "/api/payments", json={"token": "tok_visa",
                      "orderId": "00000000-0000-4000-8000-000000000000"}, cookies=stolen,
                      timeout=TIMEOUT)
    assert r.status_code == 401


def test_other_sessions_of_the_user_survive_a_signout():
    s1, email, uid = signup()
    s2 = requests.Session()
    assert post("/api/users/signin", {"email": email, "password": "password"},
                session=s2).status_code == 200
    assert post("/api/users/signout", session=s1).status_code == 200
    assert get("/api/users/currentuser", session=s2).json()["currentUser"]["id"] == uid

