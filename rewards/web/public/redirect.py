"""The referral redirect, GET /r/<code>: the busiest route, answered ahead of Flask.

DESIGN.md ("Hot paths") asks that it cost about what a bare Flask redirect costs, and
bench/redirect.py measures that. Through Flask's request cycle it did several times the
work of a bare redirect, most of it useless to a redirect: the hooks of Flask-Login,
Flask-WTF and Flask-Limiter, opening and saving the session, building the answer's
headers through werkzeug's general-purpose Headers, twice.

So `RedirectLane`, a WSGI middleware around the app, answers GET /r/<code> for a known
code itself, in an app context: the same steps as the `public.follow` view, and the
same answer (302, Location, visitor cookie, `Vary: Cookie`, the security headers and
werkzeug's little HTML body), written straight to WSGI. Everything else goes on to
Flask: other methods, unknown codes, and a request whose click could not be recorded,
which the view then tries again inside the request cycle (rendering the error if it
fails again). A request hook added to the app later does not run on the lane's answers.
"""

import logging
from html import escape
from urllib.parse import parse_qsl

from flask import Flask, Request
from werkzeug.wsgi import get_path_info

from rewards.attribution.clicks import new_visitor_id, record_click
from rewards.people.codes import CodeEntry, lookup
from rewards.urls import host_of
from rewards.web.visitor import read_visitor_id, visitor_cookie

log = logging.getLogger(__name__)
PREFIX = "/r/"
LANDING_URLS_KEPT = 50_000
# werkzeug.utils.redirect's body, for clients that do not follow the Location.
BODY = (
    "<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n"
    '<p>You should be redirected automatically to the target URL: <a href="{0}">{0}</a>. '
    "If not, click the link.\n"
)


def visitor_of(request: Request | None) -> str:
    """The id in the visitor's valid cookie, or a new one (no request: no cookies)."""
    return (request is not None and read_visitor_id(request)) or new_visitor_id()


def record_visit(entry: CodeEntry, environ, visitor_id: str) -> None:
    """Record the click, read straight from the WSGI environ as werkzeug's Request reads it."""
    referrer = environ.get("HTTP_REFERER")
    record_click(
        entry,
        visitor_id=visitor_id,
        ip=environ.get("REMOTE_ADDR"),
        user_agent=environ.get("HTTP_USER_AGENT"),
        referrer_host=host_of(referrer) if referrer else None,
        channel=_query_param(environ, "s"),
    )


def _query_param(environ, key: str) -> str | None:
    """The first value of `key` in the query string, as `request.args.get(key)` gives it."""
    query = environ.get("QUERY_STRING", "").encode("latin-1").decode(errors="replace")
    return next((v for k, v in parse_qsl(query, keep_blank_values=True) if k == key), None)


class RedirectLane:
    """WSGI middleware answering GET /r/<code> without Flask's request cycle."""

    def __init__(self, app: Flask, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app
        self._landing_urls: dict[tuple[str, str], str] = {}

    def __call__(self, environ, start_response):
        code = _code_in(environ)
        if code is not None:
            with self.app.app_context():
                answer = self._answer(environ, code)
            if answer is not None:
                return _found(start_response, *answer)
        return self.wsgi_app(environ, start_response)

    def _answer(self, environ, code: str) -> tuple[str, list[tuple[str, str]]] | None:
        """Where to send the visitor and the other headers; None to let Flask answer."""
        try:
            entry = lookup(code)
            if entry is None:
                return None  # the view knows where unknown codes go
            # Most first visits send no cookie: nothing to parse, no request to build.
            request = self.app.request_class(environ) if "HTTP_COOKIE" in environ else None
            visitor_id = visitor_of(request)
            location = entry.destination_for(visitor_id) or self._landing_url(environ, entry)
            headers = [
                ("Set-Cookie", visitor_cookie(visitor_id, entry.window_days)),
                ("Vary", "Cookie"),  # as Flask adds it for a session that was read
                *self.app.extensions["rewards.security_headers"],
            ]
            if self._customer_id(request) != entry.customer_id:  # not a referrer's own click
                record_visit(entry, environ, visitor_id)  # last: nothing recorded twice
        except Exception:
            log.warning("the referral redirect failed; answering through Flask", exc_info=True)
            return None
        return location, headers

    def _customer_id(self, request: Request | None) -> int | None:
        """The signed-in customer, read from the session cookie only when there is one."""
        interface = self.app.session_interface
        if request is None or interface.get_cookie_name(self.app) not in request.cookies:
            return None
        session = interface.open_session(self.app, request)
        return session.get("customer_id") if session is not None else None

    def _landing_url(self, environ, entry: CodeEntry) -> str:
        """url_for("public.landing", code=...): a path that depends on SCRIPT_NAME only."""
        key = (environ.get("SCRIPT_NAME", ""), entry.code)
        url = self._landing_urls.get(key)
        if url is None:
            if len(self._landing_urls) >= LANDING_URLS_KEPT:
                self._landing_urls.clear()
            adapter = self.app.url_map.bind_to_environ(environ)
            url = self._landing_urls[key] = adapter.build("public.landing", {"code": entry.code})
        return url


def _code_in(environ) -> str | None:
    """The code of a GET /r/<code>, matched as the `public.follow` route matches it."""
    if environ.get("REQUEST_METHOD") != "GET":
        return None
    path = get_path_info(environ)
    if not path.startswith(PREFIX):
        return None
    code = path[len(PREFIX):]
    return code if code and "/" not in code else None


def _found(start_response, location: str, headers: list[tuple[str, str]]):
    body = BODY.format(escape(location)).encode()
    start_response("302 FOUND", [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(len(body))),
        ("Location", location),
        *headers,
    ])
    return [body]
