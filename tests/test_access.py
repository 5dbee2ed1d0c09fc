"""Every route in the URL map, walked as every role: each sees only its own pages."""

import pytest
from flask import url_for

from .conftest import login

ROLES = ("admin", "coordinator", "marketing", "customer")
# Who may use each area. Public and API areas are checked separately below.
AREAS = {
    "admin": {"admin"},
    "coordinator": {"coordinator"},
    "marketing": {"marketing", "admin"},
    "portal": {"customer"},
}
PUBLIC = {"public", "auth", "webhooks"}  # webhooks: authenticated by Stripe's signature
# Path arguments that must name something real for the route to do its work; others get
# "x" (or 1), which may answer 404 to the roles allowed in.
SAMPLES = {"table": "daily", "kind": "referrals"}


def routes(app) -> list[tuple[str, str, str, str]]:
    """(area, method, path, endpoint) for every rule, with sample values for its arguments.

    Built before any request is made: a request context left open would share `g`
    (and Flask-Login's cached user) with the client's requests.
    """
    found = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            if rule.endpoint == "static":
                continue
            args = {
                name: 1 if type(converter).__name__ == "IntegerConverter"
                else SAMPLES.get(name, "x")
                for name, converter in rule._converters.items()
            }
            path = url_for(rule.endpoint, **args)
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                found.append((rule.endpoint.split(".")[0], method, path, rule.endpoint))
    return found


def call(client, method, path):
    return client.open(path, method=method, data={})


@pytest.fixture
def clients(app, make_user):
    signed_in = {}
    for role in ROLES:
        client = app.test_client()
        assert login(client, make_user(role)).status_code == 302
        signed_in[role] = client
    signed_in[None] = app.test_client()
    return signed_in


def test_every_route_belongs_to_a_known_area(app):
    unknown = {endpoint for area, _, _, endpoint in routes(app)
               if area not in AREAS and area not in PUBLIC and area != "api"}
    assert unknown == set(), "classify these routes in tests/test_access.py"


def test_staff_and_portal_pages_refuse_everyone_else(app, program, clients, monkeypatch):
    # Logins are done; switch CSRF off so POST routes reach the role check.
    monkeypatch.setitem(app.config, "WTF_CSRF_ENABLED", False)
    checked = 0
    for area, method, path, endpoint in routes(app):
        if area not in AREAS:
            continue
        anonymous = call(clients[None], method, path)
        assert anonymous.status_code == 302, (endpoint, anonymous.status_code)
        assert anonymous.headers["Location"].startswith("/login?next=")
        for role in ROLES:
            response = call(clients[role], method, path)
            if role in AREAS[area]:
                assert response.status_code not in (401, 403), (endpoint, role)
                assert not response.headers.get("Location", "").startswith("/login")
            else:
                assert response.status_code == 403, (endpoint, role, response.status_code)
        checked += 1
    assert checked >= 8


def test_api_routes_refuse_sessions_without_a_key(app, program, clients):
    for area, method, path, endpoint in routes(app):
        if area != "api":
            continue
        for role in (None, *ROLES):
            response = clients[role].open(path, method=method, json={})
            assert response.status_code == 401, (endpoint, role)
            assert response.json["error"]["code"] == "unauthorized"


def test_public_pages_open_to_anonymous(app, program, clients):
    for area, method, path, endpoint in routes(app):
        if area in PUBLIC and method == "GET":
            response = clients[None].get(path)
            assert response.status_code in (200, 302, 404), endpoint
            assert response.status_code != 500
