"""Bearer tokens: JWTs, because the SDK reads the user name from the token's claims."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time

USER_CLAIM = "https://platform.neuromation.io/user"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(user: str, key: bytes | None = None) -> str:
    """An HS256 JWT naming ``user``; the key only makes each token unique and unguessable."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = {USER_CLAIM: user, "identity": user, "iat": int(time.time())}
    payload = _b64(json.dumps(claims).encode())
    signing_input = f"{header}.{payload}".encode()
    key = key if key is not None else secrets.token_bytes(32)
    signature = _b64(hmac.new(key, signing_input, hashlib.sha256).digest())
    return f"{header}.{payload}.{signature}"


def token_matches(given: str, expected: str) -> bool:
    # Header bytes that are not UTF-8 reach here as lone surrogates (aiohttp decodes headers
    # with surrogateescape): such a token is merely wrong, and must still encode.
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())
