"""Reading and checking JSON bodies; every problem names its field."""

import re
from datetime import UTC, datetime, timedelta

from flask import request

from rewards.errors import ServiceError
from rewards.models import utcnow

CURRENCY_RE = re.compile(r"^[a-z]{3}$")
MAX_AMOUNT = 10**12  # ten billion in a two-decimal currency: more is a mistake


def body() -> dict:
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ServiceError("The body must be a JSON object.", code="invalid_json")
    return data


def text(data: dict, name: str, *, required: bool = False, max_length: int = 128):
    value = data.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise ServiceError(f"{name} is required.", field=name, code="missing")
        return None
    if not isinstance(value, str):
        raise ServiceError(f"{name} must be a string.", field=name)
    value = value.strip()
    if len(value) > max_length:
        raise ServiceError(f"{name} must be at most {max_length} characters.", field=name)
    return value


def email(data: dict, name: str = "email", *, required: bool = False):
    value = text(data, name, required=required, max_length=254)
    if value is not None and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value):
        raise ServiceError(f"{name} is not a valid email address.", field=name)
    return value.lower() if value else None


def amount(data: dict, name: str = "amount") -> int:
    value = data.get(name)
    if value is None:
        raise ServiceError(f"{name} is required.", field=name, code="missing")
    if not isinstance(value, int) or isinstance(value, bool):
        raise ServiceError(f"{name} must be an integer in minor units (cents for usd, yen "
                           "for jpy).", field=name)
    if not 0 < value <= MAX_AMOUNT:
        raise ServiceError(f"{name} must be between 1 and {MAX_AMOUNT}.", field=name)
    return value


def currency(data: dict, name: str = "currency") -> str:
    value = text(data, name, required=True, max_length=3)
    if not CURRENCY_RE.match(value):
        raise ServiceError(f"{name} must be a three-letter lowercase ISO code such as usd.",
                           field=name)
    return value


def timestamp(data: dict, name: str = "occurred_at") -> datetime:
    value = text(data, name, max_length=40)
    if value is None:
        return utcnow()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ServiceError(f"{name} must be an ISO 8601 time.", field=name) from None
    if parsed.tzinfo is None:
        raise ServiceError(f"{name} must carry a UTC offset, such as +00:00.", field=name)
    parsed = parsed.astimezone(UTC)
    if parsed > utcnow() + timedelta(minutes=5):
        raise ServiceError(f"{name} is in the future.", field=name)
    return parsed


def no_unknown(data: dict, allowed: set[str]) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ServiceError(f"Unknown field: {unknown[0]}.", field=unknown[0],
                           code="unknown_field")
