"""bench/cookies.py N [USER_ID]: N session cookies for the benchmarks, one per line
("session=<base64 of {"jwt": ...}>", as the auth context sets them), each an HS256 JWT signed with
JWT_KEY from the environment (scripts/env.sh exports it). Each cookie gets a fresh user id, or
USER_ID when given. The benchmarks sign their own sessions so that no sign-up (scrypt) runs inside
a measurement."""
import base64
import hashlib
import hmac
import json
import os
import sys
import time
import uuid


def b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def cookie(key: bytes, user_id: str) -> str:
    header = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64url(json.dumps({"id": user_id, "email": "bench@test.com",
                                "iat": int(time.time())}).encode())
    signed = header + b"." + claims
    jwt = (signed + b"." + b64url(hmac.new(key, signed, hashlib.sha256).digest())).decode()
    return "session=" + base64.b64encode(json.dumps({"jwt": jwt}).encode()).decode()


def main() -> None:
    key = os.environ["JWT_KEY"].encode()
    count = int(sys.argv[1])
    for _ in range(count):
        print(cookie(key, sys.argv[2] if len(sys.argv) > 2 else str(uuid.uuid4())))


if __name__ == "__main__":
    main()
