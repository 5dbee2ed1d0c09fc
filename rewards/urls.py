"""Checks that keep every redirect on a host we mean to send people to."""

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_FORBIDDEN_CHARS = set("\\\r\n\t\x00 ")


def host_of(url: str) -> str | None:
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return (parts.hostname or "").lower().rstrip(".") or None


def is_allowed_destination(url: str | None, allowed_domain: str | None) -> bool:
    """An absolute http(s) URL on the allowed domain or one of its subdomains, nothing else.

    Refuses scheme-relative (`//evil.example`), `javascript:`, credentials in the URL
    (`https://shop.example@evil.example`) and backslash or whitespace tricks.
    """
    if not url or not allowed_domain or _FORBIDDEN_CHARS & set(url):
        return False
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a malformed port
    except ValueError:
        return False
    del port
    if parts.scheme not in ("http", "https") or parts.username or parts.password:
        return False
    host = (parts.hostname or "").lower().rstrip(".")
    allowed = allowed_domain.lower().strip().rstrip(".")
    return bool(host) and (host == allowed or host.endswith("." + allowed))


def is_local_path(target: str | None) -> bool:
    """A path on this site, safe to use as `next` after login."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return False
    if _FORBIDDEN_CHARS & set(target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def split_at_query_param(url: str, key: str) -> tuple[str, str]:
    """`url` cut where the value of `key` goes, so the redirect parses a destination once.

    `before + quote_plus(value) + after` is the URL with `key=value` as its last query
    parameter, any earlier `key` removed, and the fragment kept.
    """
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != key]
    query.append((key, ""))
    before = urlunsplit(parts._replace(query=urlencode(query), fragment=""))
    return before, f"#{parts.fragment}" if parts.fragment else ""
