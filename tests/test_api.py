"""The JSON API: customers, signups and conversions with their attribution reasons."""

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from rewards.extensions import db
from rewards.models import Click, Conversion, Customer, Referral, Signup


def count(app, model) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def add_referrer(api, external_id="ref-1", email="ref@example.com", name="Rita Ref"):
    response = api.post("/customers", {"external_id": external_id, "email": email,
                                       "name": name})
    assert response.status_code in (200, 201), response.json
    return response.json


def add_click(app, code: str, visitor_id: str, days_ago: float):
    """A click as the redirect records it, backdated."""
    with app.app_context():
        from rewards.models import ReferralCode

        row = db.session.scalar(select(ReferralCode).filter_by(code_key=code.lower()))
        db.session.add(Click(uid=f"u-{visitor_id}-{days_ago}", program_id=row.program_id,
                             code_id=row.id, referrer_id=row.customer_id, visitor_id=visitor_id,
                             created_at=datetime.now(UTC) - timedelta(days=days_ago)))
        db.session.commit()


class TestAuthentication:
    def test_missing_key_is_401_with_the_error_shape(self, client, program):
        response = client.post("/api/v1/customers", json={})
        assert response.status_code == 401
        assert response.json["error"]["code"] == "unauthorized"
        assert "Bearer" in response.json["error"]["message"]

    def test_wrong_key_is_401(self, client, api_key):
        response = client.get("/api/v1/conversions/x",
                              headers={"Authorization": "Bearer rk_not-a-key"})
        assert response.status_code == 401
        assert response.json["error"]["message"] == "The API key is not valid."

    def test_key_in_query_string_is_refused_even_when_valid(self, client, api_key):
        response = client.get(f"/api/v1/conversions/x?api_key={api_key}")
        assert response.status_code == 400
        assert response.json["error"]["code"] == "key_in_query"

    def test_only_the_hash_of_a_key_is_stored(self, app, api_key):
        from rewards.models import ApiKey

        with app.app_context():
            stored = db.session.scalar(select(ApiKey))
        assert api_key not in (stored.key_hash, stored.prefix)
        assert len(stored.key_hash) == 64


class TestCustomers:
    def test_create_then_existing(self, api):
        first = api.post("/customers", {"external_id": "c-1", "email": "Ann@Example.com",
                                        "name": "Ann"})
        assert first.status_code == 201
        assert first.json["referral_url"] == f"http://rewards.test/r/{first.json['referral_code']}"
        again = api.post("/customers", {"external_id": "c-1", "email": "ann@example.com"})
        assert again.status_code == 200
        assert again.json["referral_code"] == first.json["referral_code"]

    def test_code_is_eight_unambiguous_characters(self, api):
        code = add_referrer(api)["referral_code"]
        assert len(code) == 8
        assert not set(code) & set("01OIL")

    def test_show_counts_and_balances(self, api):
        add_referrer(api)
        response = api.get("/customers/ref-1")
        assert response.status_code == 200
        assert response.json["counts"] == {"clicks": 0, "signups": 0, "purchases": 0}
        assert response.json["balances"] == {}

    def test_unknown_customer_is_404(self, api):
        response = api.get("/customers/nobody")
        assert response.status_code == 404
        assert response.json["error"]["field"] == "external_id"

    @pytest.mark.parametrize("body, field", [
        ({"email": "a@example.com"}, "external_id"),
        ({"external_id": "x", "email": "not-an-email"}, "email"),
        ({"external_id": 5, "email": "a@example.com"}, "external_id"),
        ({"external_id": "x", "email": "a@example.com", "colour": "red"}, "colour"),
        ({"external_id": "x", "email": "a@example.com", "program": "nope"}, "program"),
    ])
    def test_bad_input_is_4xx_and_writes_nothing(self, app, api, body, field):
        response = api.post("/customers", body)
        assert 400 <= response.status_code < 500
        assert response.json["error"]["field"] == field
        assert count(app, Customer) == 0

    def test_not_json_is_400(self, client, api):
        response = client.post("/api/v1/customers", data="nope", headers=api.headers,
                               content_type="application/json")
        assert response.status_code == 400
        assert response.json["error"]["code"] == "invalid_json"


class TestSignups:
    def test_attributed_by_code(self, app, api):
        code = add_referrer(api)["referral_code"]
        response = api.post("/signups", {"email": "friend@example.com", "external_id": "f-1",
                                         "referral_code": code.lower()})
        assert response.status_code == 201
        assert response.json["attributed"] is True
        assert response.json["referrer_external_id"] == "ref-1"
        assert response.json["reason"] == (
            f"Attributed: the referral code {code} of customer ref-1 was given.")
        assert count(app, Referral) == 1

    def test_repeat_signup_answers_the_first(self, app, api):
        code = add_referrer(api)["referral_code"]
        first = api.post("/signups", {"email": "f@example.com", "referral_code": code})
        again = api.post("/signups", {"email": "F@example.com"})
        assert again.status_code == 200
        assert again.json == first.json
        assert count(app, Signup) == 1

    def test_attributed_by_visitor_last_click(self, app, api):
        first = add_referrer(api, "ref-1", "one@example.com")["referral_code"]
        last = add_referrer(api, "ref-2", "two@example.com")["referral_code"]
        add_click(app, first, "visitor-a", days_ago=5)
        add_click(app, last, "visitor-a", days_ago=2)
        response = api.post("/signups", {"email": "f@example.com", "visitor_id": "visitor-a"})
        assert response.json["referrer_external_id"] == "ref-2"
        assert response.json["reason"] == (
            f"Attributed: the visitor's last click on {last} of customer ref-2 was "
            "2 days ago, within the 30-day window.")

    def test_first_click_programs_credit_the_first(self, app, api):
        from rewards.models import Program

        with app.app_context():
            db.session.scalar(select(Program)).attribution = "first"
            db.session.commit()
        first = add_referrer(api, "ref-1", "one@example.com")["referral_code"]
        last = add_referrer(api, "ref-2", "two@example.com")["referral_code"]
        add_click(app, first, "visitor-a", days_ago=5)
        add_click(app, last, "visitor-a", days_ago=2)
        response = api.post("/signups", {"email": "f@example.com", "visitor_id": "visitor-a"})
        assert response.json["referrer_external_id"] == "ref-1"
        assert "first click" in response.json["reason"]

    def test_click_outside_the_window_is_refused_with_the_numbers(self, app, api):
        code = add_referrer(api)["referral_code"]
        add_click(app, code, "visitor-b", days_ago=41.2)
        response = api.post("/signups", {"email": "f@example.com", "visitor_id": "visitor-b"})
        assert response.json["attributed"] is False
        assert response.json["referral_id"] is None
        assert response.json["reason"] == (
            "Not attributed: the last click was 41 days ago and the window is 30 days.")

    def test_nothing_matched(self, api, program):
        response = api.post("/signups", {"email": "f@example.com"})
        assert response.status_code == 201
        assert response.json["reason"] == "Not attributed: no click, code or signup matched."

    def test_unknown_code_says_so(self, api, program):
        response = api.post("/signups", {"email": "f@example.com", "referral_code": "NOPE1234"})
        assert response.json["reason"] == (
            "Not attributed: the referral code NOPE1234 does not exist in this program.")

    def test_own_code_is_self_referral(self, app, api):
        code = add_referrer(api, "ref-1", "Same@Example.com")["referral_code"]
        response = api.post("/signups", {"email": "same@example.COM", "external_id": "other",
                                         "referral_code": code})
        assert response.status_code in (201, 409)
        assert count(app, Referral) == 0


class TestConversions:
    def order(self, **extra):
        body = {"order_id": "o-1", "external_id": "f-1", "email": "f@example.com",
                "amount": 12000, "currency": "usd"}
        return body | extra

    def test_attributed_through_the_earlier_signup(self, app, api):
        code = add_referrer(api)["referral_code"]
        api.post("/signups", {"email": "f@example.com", "external_id": "f-1",
                              "referral_code": code})
        response = api.post("/conversions", self.order())
        assert response.status_code == 201
        body = response.json
        assert body["attributed"] is True
        assert body["matched_by"] == "signup"
        assert body["referrer_external_id"] == "ref-1"
        assert body["reason"].startswith("Attributed: the buyer was referred by customer ref-1")
        assert body["rewards"] == []
        with app.app_context():
            stored = db.session.scalar(select(Conversion))
            assert (stored.amount, stored.currency) == (12000, "usd")
            assert stored.processed_at is not None  # the follow-up job ran inline

    def test_same_body_replays_the_same_answer(self, app, api, program):
        first = api.post("/conversions", self.order())
        again = api.post("/conversions", self.order())
        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json == first.json
        assert count(app, Conversion) == 1

    def test_same_order_different_body_is_409(self, app, api, program):
        api.post("/conversions", self.order())
        response = api.post("/conversions", self.order(amount=999))
        assert response.status_code == 409
        assert response.json["error"]["field"] == "order_id"
        with app.app_context():
            assert db.session.scalar(select(Conversion.amount)) == 12000

    def test_get_returns_the_same_shape(self, api, program):
        created = api.post("/conversions", self.order()).json
        assert api.get("/conversions/o-1").json == created
        assert api.get("/conversions/missing").status_code == 404

    def test_explicit_code_on_a_purchase(self, api):
        code = add_referrer(api)["referral_code"]
        response = api.post("/conversions", self.order(referral_code=code))
        assert response.json["matched_by"] == "code"

    def test_buyer_using_their_own_code_is_not_attributed(self, api):
        code = add_referrer(api, "ref-1", "buyer@example.com")["referral_code"]
        response = api.post("/conversions", self.order(external_id="ref-1",
                                                        email="buyer@example.com",
                                                        referral_code=code))
        assert response.status_code == 201
        assert response.json["attributed"] is False
        assert response.json["reason"] == (
            f"Not attributed: the referral code {code} belongs to the buyer.")

    @pytest.mark.parametrize("change, field", [
        ({"amount": 12.5}, "amount"),
        ({"amount": "12000"}, "amount"),
        ({"amount": 0}, "amount"),
        ({"amount": -5}, "amount"),
        ({"amount": True}, "amount"),
        ({"currency": "USD"}, "currency"),
        ({"currency": "dollars"}, "currency"),
        ({"order_id": ""}, "order_id"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"occurred_at": "2026-01-01T10:00:00"}, "occurred_at"),
        ({"occurred_at": "2999-01-01T10:00:00+00:00"}, "occurred_at"),
        ({"external_id": None, "email": None}, "external_id"),
    ])
    def test_bad_input_is_4xx_and_writes_nothing(self, app, api, program, change, field):
        response = api.post("/conversions", self.order(**change))
        assert 400 <= response.status_code < 500, response.json
        assert response.json["error"]["field"] == field
        assert count(app, Conversion) == 0
        assert count(app, Customer) == 0

    def test_occurred_at_with_offset_is_kept_in_utc(self, app, api, program):
        response = api.post("/conversions", self.order(occurred_at="2026-01-01T10:00:00-05:00"))
        assert response.json["occurred_at"] == "2026-01-01T15:00:00+00:00"
