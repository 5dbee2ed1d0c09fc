"""The referral redirect, GET /r/<code>: the busiest route, answered ahead of Flask.

DESIGN.md ("Hot paths") asks that it cost about what a bare Flask redirect costs. Flask's
request cycle does work a redirect has no use for: the hooks of Flask-Login, Flask-WTF and
Flask-Limiter, opening and saving the session, building headers through werkzeug's Headers.

So `RedirectLane`, a WSGI middleware around the app, writes the answer that
`referral_answer` (referral.py) decides for a known code straight to WSGI, in an app
context, with the security headers and werkzeug's little HTML body that Flask would add.
Everything else goes on to Flask: other methods, unknown codes, and a request whose answer
failed (its click could not be recorded), which the `public.follow` view tries again
inside the request cycle. A request hook added to the app later does not run here.
"""

import logging
from html import escape

from flask import Flask
from werkzeug.wsgi import get_path_info

from rewards.web.public.referral import ReferralAnswer, referral_answer

log = logging.getLogger(__name__)
PREFIX = "/r/"
# werkzeug.utils.redirect's body, for clients that do not follow the Location.
BODY = (
    "<!doctype html>\n<html lang=en>\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n"
    '<p>You should be redirected automatically to the target URL: <a href="{0}">{0}</a>. '
    "If not, click the link.\n"
)


class RedirectLane:
    """WSGI middleware answering GET /r/<code> without Flask's request cycle."""

    def __init__(self, app: Flask, wsgi_app):
        self.app = app
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        code = _code_in(environ)
        if code is not None:
            with self.app.app_context():
                answer = self._answer(environ, code)
            if answer is not None:
                return self._found(start_response, answer)
        return self.wsgi_app(environ, start_response)

    def _answer(self, environ, code: str) -> ReferralAnswer | None:
        """The known code's answer; None to let Flask answer."""
        try:
            return referral_answer(self.app, environ, code)
        except Exception:
            log.warning("the referral redirect failed; answering through Flask", exc_info=True)
            return None

    def _found(self, start_response, answer: ReferralAnswer):
        body = BODY.format(escape(answer.location)).encode()
        start_response("302 FOUND", [
            ("Content-Type", "text/html; charset=utf-8"),
            ("Content-Length", str(len(body))),
            ("Location", answer.location),
            *answer.headers,
            *self.app.extensions["rewards.security_headers"],
        ])
        return [body]


def _code_in(environ) -> str | None:
    """The code of a GET /r/<code>, matched as the `public.follow` route matches it."""
    if environ.get("REQUEST_METHOD") != "GET":
        return None
    path = get_path_info(environ)
    if not path.startswith(PREFIX):
        return None
    code = path[len(PREFIX):]
    return code if code and "/" not in code else None
