"""What GET /r/<code> answers for a known code, decided once for both ways it is served.

`RedirectLane` (redirect.py) serves the answer ahead of Flask and the `public.follow` view
(views.py) serves it when the lane hands a request on; each only writes it out, to WSGI or
as a Flask response. Unknown codes are the view's alone.
"""

from dataclasses import dataclass
from urllib.parse import parse_qsl

from flask import Flask, Request

from rewards.attribution.clicks import new_visitor_id, record_click
from rewards.people.codes import CodeEntry, lookup
from rewards.urls import host_of
from rewards.web.visitor import read_visitor_id, visitor_cookie

LANDING_URLS_KEPT = 50_000
_landing_urls: dict[tuple[object, str, str], str] = {}


@dataclass(frozen=True, slots=True)
class ReferralAnswer:
    """A 302 to `location`, with `headers` (the visitor cookie, Vary) besides Location."""

    location: str
    headers: tuple[tuple[str, str], ...]


def referral_answer(app: Flask, environ, code: str) -> ReferralAnswer | None:
    """The answer to GET /r/<code>, its click recorded; None for an unknown code.

    The click is recorded last, so an answer that raised recorded nothing and may be
    tried again.
    """
    entry = lookup(code)
    if entry is None:
        return None
    request = None
    if "HTTP_COOKIE" in environ:  # most first visits send none: no request to build
        request = app.request_class(environ, populate_request=False)
    visitor_id = (request is not None and read_visitor_id(request)) or new_visitor_id()
    location = entry.destination_for(visitor_id) or _landing_url(app, environ, entry.code)
    headers = (
        ("Set-Cookie", visitor_cookie(visitor_id, entry.window_days)),
        ("Vary", "Cookie"),  # the answer depends on the visitor's cookies
    )
    if _signed_in_customer(app, request) != entry.customer_id:  # not a referrer's own click
        _record_visit(entry, environ, visitor_id)
    return ReferralAnswer(location, headers)


def _signed_in_customer(app: Flask, request: Request | None) -> int | None:
    """The signed-in customer, read from the session cookie only when there is one."""
    interface = app.session_interface
    if request is None or interface.get_cookie_name(app) not in request.cookies:
        return None
    session = interface.open_session(app, request)
    return session.get("customer_id") if session is not None else None


def _landing_url(app: Flask, environ, code: str) -> str:
    """url_for("public.landing", code=code): a path that depends on SCRIPT_NAME only."""
    key = (app.url_map, environ.get("SCRIPT_NAME", ""), code)
    url = _landing_urls.get(key)
    if url is None:
        if len(_landing_urls) >= LANDING_URLS_KEPT:
            _landing_urls.clear()
        adapter = app.url_map.bind_to_environ(environ)
        url = _landing_urls[key] = adapter.build("public.landing", {"code": code})
    return url


def _record_visit(entry: CodeEntry, environ, visitor_id: str) -> None:
    """Record the click, read straight from the WSGI environ as werkzeug's Request reads it."""
    referrer = environ.get("HTTP_REFERER")
    record_click(
        entry,
        visitor_id=visitor_id,
        ip=environ.get("REMOTE_ADDR"),
        user_agent=environ.get("HTTP_USER_AGENT"),
        referrer_host=host_of(referrer) if referrer else None,
        channel=query_param(environ, "s"),
    )


def query_param(environ, key: str) -> str | None:
    """The first value of `key` in the query string, as `request.args.get(key)` gives it."""
    query = environ.get("QUERY_STRING", "").encode("latin-1").decode(errors="replace")
    return next((v for k, v in parse_qsl(query, keep_blank_values=True) if k == key), None)
