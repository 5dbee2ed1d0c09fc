"""Password rules and hashing (through Werkzeug, by the app's PASSWORD_HASH_METHOD)."""

from functools import cache

from flask import current_app
from werkzeug.security import check_password_hash, generate_password_hash

MIN_LENGTH = 10


@cache
def _common_passwords() -> frozenset[str]:
    # zxcvbn ships the 30,000 most common passwords from public breach corpora.
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"])


@cache
def _dummy_hash(method: str) -> str:
    """Checked against when the email is unknown, so that a miss costs as much as a hit."""
    return generate_password_hash("not-a-real-password", method=method)


def password_problem(password: str, email: str = "") -> str | None:
    """Why a password is refused, or None when it is acceptable."""
    if len(password) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters."
    if len(password) > 200:
        return "Use at most 200 characters."
    lowered = password.lower()
    if lowered in _common_passwords() or len(set(lowered)) < 4:
        return "This password is too common; choose another."
    local = email.split("@")[0].lower()
    if len(local) >= 4 and local in lowered:
        return "Do not use your email address in your password."
    return None


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def verify_password(password_hash: str | None, password: str) -> bool:
    """The hash's own method decides how it is checked, whatever the app hashes with now."""
    stored = password_hash or _dummy_hash(current_app.config["PASSWORD_HASH_METHOD"])
    return check_password_hash(stored, password) and bool(password_hash)
