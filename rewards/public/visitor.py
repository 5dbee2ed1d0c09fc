"""The attribution cookie: a signed, HttpOnly, SameSite=Lax first-party visitor id."""

from flask import Request, Response, current_app
from itsdangerous import BadSignature, URLSafeSerializer

COOKIE = "rv"


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="visitor-id")


def read_visitor_id(request: Request) -> str | None:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        value = _serializer().loads(raw)
    except BadSignature:
        return None
    return value if isinstance(value, str) and 0 < len(value) <= 32 else None


def set_visitor_cookie(response: Response, visitor_id: str, days: int) -> None:
    response.set_cookie(
        COOKIE,
        _serializer().dumps(visitor_id),
        max_age=days * 86400,
        httponly=True,
        samesite="Lax",
        secure=current_app.config["SESSION_COOKIE_SECURE"],
    )
