"""The pages people see: landing, portal, staff homes, errors and headers."""

import re

import pytest
from sqlalchemy import select

from config import ProductionConfig
from rewards import create_app
from rewards.extensions import db
from rewards.models import Account, Program, Referral, ReferralCode
from rewards.people.codes import primary_code

from .conftest import PASSWORD, csrf_token, login


@pytest.fixture
def referrer(app, program, make_user):
    """A customer login with a code: (client, code)."""
    email = make_user("customer", email="maria@example.com", name="Maria Lopez")
    client = app.test_client()
    login(client, email)
    with app.app_context():
        account = db.session.scalar(select(Account).filter_by(email=email))
        return client, primary_code(account.customer).code


def text_of(response) -> str:
    return response.get_data(as_text=True)


def test_friend_lands_signs_up_and_counts_for_the_referrer(app, referrer, as_role):
    portal, code = referrer
    friend = app.test_client()
    landing = friend.get(friend.get(f"/r/{code}").headers["Location"])
    page = text_of(landing)
    assert "Maria invited you" in page
    assert "Get $10 off your first order." in page
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    response = friend.post(f"/join/{code}", data={
        "name": "Fred Friend", "email": "fred@example.com", "password": "harbor-maple-river",
        "csrf_token": token})
    assert response.status_code == 302
    with app.app_context():
        referral = db.session.scalar(select(Referral))
        assert referral.matched_by == "visitor"
        assert referral.friend.email == "fred@example.com"
    home = text_of(portal.get("/portal"))
    assert re.search(r'data-testid="count-clicks"[^>]*>\s*1\s*<', home)
    assert re.search(r'data-testid="count-signups"[^>]*>\s*1\s*<', home)
    assert "f***@example.com" in home
    admin_home = text_of(as_role("admin").get("/admin"))
    for key, value in (("clicks", 1), ("signups", 1), ("referred-signups", 1),
                       ("purchases", 0)):
        assert re.search(rf'data-testid="summary-{key}"[^>]*>\s*{value}\s*<', admin_home), key


def test_landing_page_for_an_unknown_code_is_404(client, program):
    response = client.get("/join/NOPE")
    assert response.status_code == 404
    assert "There is nothing at this address." in text_of(response)


def test_portal_shows_link_code_qr_and_share_links(app, referrer):
    client, code = referrer
    page = text_of(client.get("/portal"))
    assert f"http://rewards.test/r/{code}" in page
    assert code in page
    assert 'src="/portal/qr.svg"' in page
    for host in ("mailto:", "twitter.com/intent/tweet", "wa.me", "linkedin.com/sharing"):
        assert host in page
    qr = client.get("/portal/qr.svg")
    assert qr.mimetype == "image/svg+xml"
    assert qr.data.startswith(b"<svg")


@pytest.mark.parametrize("role, heading", [
    ("admin", "Programs"), ("coordinator", "Referred purchases"), ("marketing", "Link clicks"),
])
def test_each_staff_role_has_a_home(as_role, role, heading):
    response = as_role(role).get(f"/{role}")
    assert response.status_code == 200
    assert heading in text_of(response)


def test_admin_sets_a_vanity_code(app, as_role, referrer):
    admin = as_role("admin")
    with app.app_context():
        customer_id = db.session.scalar(select(ReferralCode.customer_id))

    def set_code(code):
        token = csrf_token(admin, "/admin/customers")
        return admin.post(f"/admin/customers/{customer_id}/code",
                          data={"code": code, "csrf_token": token}, follow_redirects=True)

    assert "now shares the code Maria-2026" in text_of(set_code("Maria-2026"))
    assert "reserved" in text_of(set_code("admin"))
    assert "letters, digits or dashes" in text_of(set_code("no spaces!"))
    with app.app_context():
        codes = db.session.scalars(select(ReferralCode.code).where(
            ReferralCode.customer_id == customer_id)).all()
    assert "Maria-2026" in codes and "admin" not in codes
    # the old code keeps working
    assert app.test_client().get(f"/r/{referrer[1]}").headers["Location"].startswith("/join/")
    assert app.test_client().get("/r/MARIA-2026").headers["Location"] == "/join/Maria-2026"


def test_vanity_codes_are_unique_ignoring_case(app, as_role, make_user, referrer):
    from rewards.errors import Conflict
    from rewards.models import Customer
    from rewards.people.codes import set_vanity_code

    with app.app_context():
        first, = db.session.scalars(select(Customer)).all()
        set_vanity_code(first, "Summer-Sale")
        other = Customer(program_id=first.program_id, email="o@example.com")
        db.session.add(other)
        db.session.commit()
        with pytest.raises(Conflict):
            set_vanity_code(other, "SUMMER-sale")


def test_admin_edits_a_program(app, as_role, program):
    admin = as_role("admin")
    token = csrf_token(admin, f"/admin/programs/{program}")
    response = admin.post(f"/admin/programs/{program}", data={
        "csrf_token": token, "name": "Shop Club", "window_days": "45", "attribution": "first",
        "landing_headline": "Hi", "landing_offer": "Free shipping",
        "destination_url": "https://evil.example/", "allowed_domain": "shop.example"})
    assert response.status_code == 422
    assert "allowed domain" in text_of(response)
    with app.app_context():
        assert db.session.get(Program, program).window_days == 30  # nothing half-written


def test_security_headers(client, program):
    response = client.get("/login")
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert "Strict-Transport-Security" not in response.headers


def test_production_refuses_to_start_without_a_secret_key(monkeypatch):
    monkeypatch.setattr(ProductionConfig, "SECRET_KEY", None)
    with pytest.raises(RuntimeError, match="SECRET_KEY"):
        create_app(ProductionConfig)


def test_production_sends_hsts_and_secure_cookies(tmp_path):
    app = create_app(ProductionConfig, {"SECRET_KEY": "k" * 32,
                                        "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path}/p.db"})
    response = app.test_client().get("/login", base_url="https://rewards.example")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")
    assert "Secure" in response.headers["Set-Cookie"]


def test_error_pages(sqlite_app):
    @sqlite_app.get("/boom")
    def boom():
        raise RuntimeError("kaboom")

    sqlite_app.config["PROPAGATE_EXCEPTIONS"] = False
    client = sqlite_app.test_client()
    missing = client.get("/no/such/page")
    assert missing.status_code == 404 and "There is nothing at this address." in text_of(missing)
    broken = client.get("/boom")
    assert broken.status_code == 500 and "Something went wrong on our side." in text_of(broken)
    assert "kaboom" not in text_of(broken)
    api_missing = client.get("/api/v1/nothing")
    assert api_missing.json["error"]["code"] in ("not_found", "unauthorized")


def test_user_text_is_escaped(app, as_role, program):
    from rewards.people.customers import find_or_add_customer

    with app.app_context():
        find_or_add_customer(db.session.get(Program, program), "x-1", "x@example.com",
                             "<script>alert(1)</script>")
        db.session.commit()
    page = text_of(as_role("admin").get("/admin/customers"))
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page


def test_a_password_is_never_echoed(client, program):
    token = csrf_token(client, "/login")
    page = text_of(client.post("/login", data={"email": "a@example.com",
                                               "password": "secret-words-here",
                                               "csrf_token": token}))
    assert "secret-words-here" not in page
    assert PASSWORD not in page
