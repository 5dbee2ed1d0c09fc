"""GET /r/<code>: the click, the attribution cookie, the destination, no open redirect."""

from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from rewards.extensions import db
from rewards.models import Click, Customer, Program
from rewards.people.codes import primary_code
from rewards.people.customers import find_or_add_customer
from rewards.people.programs import update_program
from rewards.web.visitor import COOKIE

from .conftest import PASSWORD, login


@pytest.fixture
def code(app, program):
    with app.app_context():
        customer, _ = find_or_add_customer(db.session.get(Program, program), "ref-1",
                                           "ref@example.com", "Rita Ref")
        db.session.commit()
        return primary_code(customer).code


def clicks(app) -> list[Click]:
    with app.app_context():
        return db.session.scalars(select(Click).order_by(Click.id)).all()


def set_destination(app, program_id, url, domain=None):
    with app.app_context():
        update_program(db.session.get(Program, program_id), destination_url=url,
                       allowed_domain=domain)


def test_click_is_recorded_and_goes_to_the_landing_page(app, client, code):
    response = client.get(f"/r/{code}?s=whatsapp", headers={
        "User-Agent": "Mozilla/5.0 Test", "Referer": "https://web.whatsapp.com/chat"})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/join/{code}"
    [click] = clicks(app)
    assert click.user_agent == "Mozilla/5.0 Test"
    assert click.referrer_host == "web.whatsapp.com"
    assert click.channel == "whatsapp"
    assert click.ip_hash and "127.0.0.1" not in click.ip_hash
    assert len(click.visitor_id) >= 20


def test_cookie_is_signed_httponly_lax_and_lasts_the_window(client, code):
    response = client.get(f"/r/{code}")
    cookie = next(c for c in response.headers.getlist("Set-Cookie") if c.startswith(COOKIE))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Max-Age=2592000" in cookie  # 30 days
    value = cookie.split(";")[0].split("=", 1)[1]
    assert "." in value  # value.signature


def test_the_same_visitor_keeps_its_id(app, client, code):
    client.get(f"/r/{code}")
    client.get(f"/r/{code.lower()}")
    first, second = clicks(app)
    assert first.visitor_id == second.visitor_id


def test_a_tampered_cookie_is_ignored(app, client, code):
    client.set_cookie(COOKIE, "forged-visitor.bad-signature")
    client.get(f"/r/{code}")
    [click] = clicks(app)
    assert click.visitor_id != "forged-visitor"


def test_destination_gets_the_visitor_id(app, client, code, program):
    set_destination(app, program, "https://shop.example/welcome?src=ref")
    response = client.get(f"/r/{code}")
    location = urlsplit(response.headers["Location"])
    assert (location.scheme, location.netloc, location.path) == (
        "https", "shop.example", "/welcome")
    query = parse_qs(location.query)
    assert query["src"] == ["ref"]
    assert query["visitor_id"] == [clicks(app)[0].visitor_id]


def test_unknown_code_goes_to_the_default_page_without_attribution(app, client, program):
    response = client.get("/r/NOSUCHCODE")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert clicks(app) == []
    assert COOKIE not in response.headers.get("Set-Cookie", "")


def test_unknown_code_goes_to_the_default_programs_destination(app, client, program):
    set_destination(app, program, "https://shop.example/")
    assert client.get("/r/NOSUCHCODE").headers["Location"] == "https://shop.example/"


def test_a_referrers_own_click_is_not_counted(app, code):
    with app.app_context():
        from rewards.people.accounts import create_account

        create_account("ref@example.com", PASSWORD, "customer", "Rita Ref")
        owner = db.session.scalar(select(Customer).filter_by(email="ref@example.com"))
        assert primary_code(owner).code == code
    client = app.test_client()
    login(client, "ref@example.com")
    assert client.get(f"/r/{code}").status_code == 302
    assert clicks(app) == []


@pytest.mark.parametrize("destination", [
    "//evil.example/",
    "javascript:alert(1)",
    "https://evil.example/",
    "https://shop.example.evil.example/",
    "https://shop.example@evil.example/",
    "https://evilshop.example/",
    "https:/\\evil.example",
    "ftp://shop.example/",
    "data:text/html,hi",
])
def test_destinations_off_the_allowed_domain_are_refused(app, program, destination):
    with app.app_context():
        from rewards.errors import ServiceError

        with pytest.raises(ServiceError) as refused:
            update_program(db.session.get(Program, program), destination_url=destination,
                           allowed_domain="shop.example")
        assert refused.value.field == "destination_url"


def test_a_destination_stored_off_domain_is_not_followed(app, client, code, program):
    """Even if a bad destination got into the database, the redirect does not use it."""
    with app.app_context():
        row = db.session.get(Program, program)
        row.destination_url, row.allowed_domain = "https://evil.example/", "shop.example"
        db.session.commit()
    response = client.get(f"/r/{code}")
    assert response.headers["Location"] == f"/join/{code}"


def test_subdomains_of_the_allowed_domain_are_fine(app, client, code, program):
    set_destination(app, program, "https://www.shop.example/", "shop.example")
    assert client.get(f"/r/{code}").headers["Location"].startswith("https://www.shop.example/")
