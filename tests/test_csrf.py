"""CSRF: every POST route refuses a request without a token, and every form carries one."""

import re

from .conftest import login
from .test_access import AREAS, routes

FORM_RE = re.compile(r"<form\b[^>]*>.*?</form>", re.S | re.I)


def allowed_client(app, make_user, area):
    if area not in AREAS:
        return app.test_client()
    client = app.test_client()
    login(client, make_user(sorted(AREAS[area])[0]))
    return client


def test_every_post_without_a_token_is_refused(app, program, make_user):
    posts = [(area, path, endpoint) for area, method, path, endpoint in routes(app)
             # The API (Bearer keys) and webhooks (Stripe's signature) are CSRF-exempt.
             if method == "POST" and area not in ("api", "webhooks")]
    assert len(posts) >= 5
    for area, path, endpoint in posts:
        client = allowed_client(app, make_user, area)
        response = client.post(path, data={"email": "a@example.com", "password": "x" * 12,
                                           "name": "A", "code": "NEWCODE"})
        assert response.status_code == 400, endpoint
        assert "The form expired or was not sent from this site" in response.get_data(
            as_text=True), endpoint


def test_every_post_form_on_every_page_carries_a_token(app, program, make_user):
    from rewards.extensions import db
    from rewards.models import Program
    from rewards.people.customers import find_or_add_customer

    with app.app_context():
        find_or_add_customer(db.session.get(Program, program), "c-1", "c1@example.com", "Cy")
        db.session.commit()
        from rewards.models import Customer
        from rewards.people.codes import primary_code

        code = primary_code(db.session.query(Customer).first()).code
    pages = [(area, path) for area, method, path, _ in routes(app)
             if method == "GET" and area != "api" and "x" not in path.split("/")]
    pages.append(("public", f"/join/{code}"))
    forms_seen = 0
    for area, path in pages:
        client = allowed_client(app, make_user, area)
        html = client.get(path).get_data(as_text=True)
        for form in FORM_RE.findall(html):
            if re.search(r'method="post"', form, re.I):
                forms_seen += 1
                assert 'name="csrf_token"' in form, (path, form[:200])
    assert forms_seen >= 6
