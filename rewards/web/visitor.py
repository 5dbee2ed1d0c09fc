"""The attribution cookie: a signed, HttpOnly, SameSite=Lax first-party visitor id."""

import time
from functools import lru_cache

from flask import Request, Response, current_app
from itsdangerous import BadSignature, Signer, URLSafeSerializer
from itsdangerous.encoding import base64_encode
from werkzeug.http import dump_cookie

COOKIE = "rv"


@lru_cache(maxsize=4)
def _serializer_for(secret_key: str | bytes) -> URLSafeSerializer:
    return URLSafeSerializer(secret_key, salt="visitor-id")


@lru_cache(maxsize=4)
def _signer_for(secret_key: str | bytes) -> Signer:
    return _serializer_for(secret_key).make_signer()


def read_visitor_id(request: Request) -> str | None:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        value = _serializer_for(current_app.config["SECRET_KEY"]).loads(raw)
    except BadSignature:
        return None
    return value if isinstance(value, str) and 0 < len(value) <= 32 else None


def sign_visitor_id(visitor_id: str) -> str:
    """URLSafeSerializer(...).dumps(visitor_id), four times faster: without the zlib try.

    dumps compresses only when that is shorter, which a random id never is (either form
    loads). Every new visitor's redirect signs one.
    """
    secret_key = current_app.config["SECRET_KEY"]
    payload = base64_encode(_serializer_for(secret_key).serializer.dumps(visitor_id))
    return _signer_for(secret_key).sign(payload).decode("ascii")


def visitor_cookie(visitor_id: str, days: int) -> str:
    """The Set-Cookie header value carrying `visitor_id` for `days`, as dump_cookie writes it.

    Only the signed value changes from one visitor to the next, so the attributes after it
    (Expires is the costly one) are written once a second for each window length.
    """
    secure = current_app.config["SESSION_COOKIE_SECURE"]
    attributes = _cookie_attributes(days, secure, int(time.time()))
    # A signed id is base64url and dots: nothing dump_cookie would quote.
    return f"{COOKIE}={sign_visitor_id(visitor_id)}{attributes}"


@lru_cache(maxsize=16)
def _cookie_attributes(days: int, secure: bool, _second: int) -> str:
    """'; Expires=...; Max-Age=...; ...' for a cookie set during the second `_second`."""
    cookie = dump_cookie(COOKIE, "", max_age=days * 86400, httponly=True, samesite="Lax",
                         secure=secure)
    return cookie.removeprefix(f"{COOKIE}=")


def set_visitor_cookie(response: Response, visitor_id: str, days: int) -> None:
    response.headers.add("Set-Cookie", visitor_cookie(visitor_id, days))
