"""Sign-in, registration, passwords and the login rate limit."""

import pytest
from sqlalchemy import select

from rewards.extensions import db
from rewards.models import Account, ReferralCode, Signup
from rewards.people.passwords import password_problem

from .conftest import PASSWORD, csrf_token, login


def register(client, email, password=PASSWORD, name="Nina New"):
    token = csrf_token(client, "/signup")
    return client.post("/signup", data={"name": name, "email": email, "password": password,
                                        "csrf_token": token})


class TestLogin:
    def test_each_role_lands_on_its_home(self, app, make_user):
        for role, home in [("admin", "/admin"), ("coordinator", "/coordinator"),
                           ("marketing", "/marketing"), ("customer", "/portal")]:
            client = app.test_client()
            assert login(client, make_user(role)).headers["Location"] == home

    def test_wrong_password_and_unknown_email_read_the_same(self, app, make_user):
        email = make_user("customer")
        wrong = login(app.test_client(), email, "wrong-password-123")
        unknown = login(app.test_client(), "nobody@example.com", "wrong-password-123")
        assert wrong.status_code == unknown.status_code == 401
        for response in (wrong, unknown):
            assert "Email or password is incorrect." in response.get_data(as_text=True)

    def test_sixth_failed_try_in_a_minute_is_429(self, app, make_user):
        email = make_user("customer")
        client = app.test_client()
        statuses = [login(client, email, f"wrong-password-{n}").status_code for n in range(6)]
        assert statuses == [401] * 5 + [429]

    def test_successful_logins_do_not_use_up_the_limit(self, app, make_user):
        email = make_user("customer")
        client = app.test_client()
        for _ in range(7):
            assert login(client, email).status_code == 302
            client.post("/logout", data={"csrf_token": csrf_token(client, "/portal")})

    @pytest.mark.parametrize("target, expected", [
        ("/admin/customers", "/admin/customers"),
        ("https://evil.example/", "/admin"),
        ("//evil.example/", "/admin"),
        ("/\\evil.example", "/admin"),
        ("javascript:alert(1)", "/admin"),
        ("http:/evil.example", "/admin"),
    ])
    def test_next_only_goes_to_this_site(self, app, make_user, target, expected):
        email = make_user("admin")
        client = app.test_client()
        token = csrf_token(client, "/login")
        response = client.post("/login", data={"email": email, "password": PASSWORD,
                                               "csrf_token": token, "next": target})
        assert response.headers["Location"] == expected

    def test_logout_is_a_post_that_ends_the_session(self, as_role):
        client = as_role("customer")
        assert client.get("/logout").status_code == 405
        client.post("/logout", data={"csrf_token": csrf_token(client, "/portal")})
        assert client.get("/portal").status_code == 302

    def test_session_cookie_is_httponly_and_lax(self, app, make_user):
        response = login(app.test_client(), make_user("customer"))
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


class TestRegistration:
    def test_new_customer_gets_a_code_at_once(self, app, client, program):
        response = register(client, "Nina@Example.com")
        assert response.status_code == 302
        with app.app_context():
            account = db.session.scalar(select(Account).filter_by(email="nina@example.com"))
            assert account.role == "customer"
            # scrypt outside the tests: tests/test_passwords.py
            assert account.password_hash.startswith(app.config["PASSWORD_HASH_METHOD"] + "$")
            assert PASSWORD not in account.password_hash
            code = db.session.scalar(select(ReferralCode).filter_by(
                customer_id=account.customer_id))
            assert len(code.code) == 8
            assert db.session.scalar(select(Signup).filter_by(
                customer_id=account.customer_id)).source == "web"
        page = login(app.test_client(), "nina@example.com")
        assert page.headers["Location"] == "/portal"

    def test_existing_email_gets_the_same_answer_and_changes_nothing(self, app, client,
                                                                     make_user):
        email = make_user("customer")
        fresh = register(app.test_client(), "someone-new@example.com")
        taken = register(client, email, password="another-long-passphrase")
        assert fresh.status_code == taken.status_code == 302
        assert fresh.headers["Location"] == taken.headers["Location"]
        follow_fresh = app.test_client()
        assert login(follow_fresh, email).status_code == 302  # old password still works

    @pytest.mark.parametrize("password, message", [
        ("short", "Field must be between 10 and 200 characters long."),
        ("password123", "This password is too common; choose another."),
        ("qwertyuiop", "This password is too common; choose another."),
        ("aaaaaaaaaaaa", "This password is too common; choose another."),
    ])
    def test_weak_passwords_are_refused(self, app, client, program, password, message):
        response = register(client, "weak@example.com", password=password)
        assert response.status_code == 422
        assert message in response.get_data(as_text=True)
        with app.app_context():
            assert db.session.scalar(select(Account).filter_by(email="weak@example.com")) is None


def test_password_rules():
    assert password_problem("correct-horse-battery") is None
    assert password_problem("maria.lopez-2026", "maria.lopez@example.com") is not None
    assert password_problem("x" * 201) is not None


def test_login_still_works_when_the_limits_store_is_down(tmp_path):
    from rewards.extensions import limiter

    from .conftest import make_app, reset_schema

    app = make_app(f"sqlite:///{tmp_path / 'down.db'}",
                   RATELIMIT_STORAGE_URI="redis://127.0.0.1:1/0")
    reset_schema(app)
    with app.app_context():
        from rewards.people.accounts import create_account
        from rewards.people.programs import create_program

        create_program("p", name="P", currency="usd")
        create_account("c@example.com", PASSWORD, "customer", "C")
    try:
        assert login(app.test_client(), "c@example.com").status_code == 302
    finally:
        make_app("sqlite://")  # the limiter is shared: give it back in-memory storage
        limiter.reset()
