"""GET /api/v1/payouts, and the Stripe customer id on POST /api/v1/customers."""

from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert, select

from rewards.extensions import db
from rewards.models import Customer, Payout, utcnow
from rewards.web.api.views import MAX_PAYOUTS

FIELDS = {"id", "customer", "amount", "currency", "status", "method", "reference",
          "created_at", "paid_at"}


@pytest.fixture
def customers(app, api):
    """{external id: customer id} for two customers made through the API."""
    made = {}
    for external_id in ("ref-1", "ref-2"):
        assert api.post("/customers", {"external_id": external_id,
                                       "email": f"{external_id}@example.com"}).status_code == 201
    with app.app_context():
        for row in db.session.scalars(select(Customer)):
            made[row.external_id] = row.id
    return made


def add_payout(app, customer_id, *, amount, status, method="manual", age_days=0, **values):
    with app.app_context():
        customer = db.session.get(Customer, customer_id)
        payout = Payout(program_id=customer.program_id, customer_id=customer_id,
                        currency="usd", gross=amount, netted=0, amount=amount, status=status,
                        method=method, created_at=utcnow() - timedelta(days=age_days),
                        **values)
        db.session.add(payout)
        db.session.commit()
        return payout.id


@pytest.fixture
def payouts(app, customers):
    """Three payouts: ref-1 paid by hand (oldest), ref-1 awaiting, ref-2 needing attention."""
    paid_at = utcnow() - timedelta(days=2)
    return {
        "paid": add_payout(app, customers["ref-1"], amount=2500, status="paid",
                           reference="BANK-77", age_days=3, paid_at=paid_at),
        "waiting": add_payout(app, customers["ref-1"], amount=1000,
                              status="awaiting_approval", age_days=1),
        "attention": add_payout(app, customers["ref-2"], amount=4000, method="connect",
                                status="needs_attention", failure_reason="onboarding"),
    }


def test_lists_payouts_newest_first_in_the_documented_shape(api, payouts):
    response = api.get("/payouts")
    assert response.status_code == 200
    items = response.json["payouts"]
    assert [item["id"] for item in items] == [payouts["attention"], payouts["waiting"],
                                              payouts["paid"]]
    for item in items:
        assert set(item) == FIELDS
    paid = items[2]
    assert {key: paid[key] for key in FIELDS - {"id", "created_at", "paid_at"}} == {
        "customer": "ref-1", "amount": 2500, "currency": "usd", "status": "paid",
        "method": "manual", "reference": "BANK-77"}
    for stamp in (paid["created_at"], paid["paid_at"]):
        assert datetime.fromisoformat(stamp).utcoffset() == timedelta(0)
    assert items[0]["paid_at"] is None and items[0]["reference"] is None
    assert (items[0]["customer"], items[0]["method"], items[0]["status"]) == (
        "ref-2", "connect", "needs_attention")
    assert "failure_reason" not in items[0]


def test_filters_by_status_and_customer(api, payouts):
    def ids(query):
        response = api.get(f"/payouts?{query}")
        assert response.status_code == 200, response.json
        return [item["id"] for item in response.json["payouts"]]

    assert ids("status=paid") == [payouts["paid"]]
    assert ids("status=needs_attention") == [payouts["attention"]]
    assert ids("status=rejected") == []
    assert ids("customer=ref-1") == [payouts["waiting"], payouts["paid"]]
    assert ids("customer=ref-1&status=awaiting_approval") == [payouts["waiting"]]
    assert ids("customer=ref-2&status=paid") == []
    assert ids("customer=nobody") == []
    assert ids("program=shop&customer=ref-2") == [payouts["attention"]]


@pytest.mark.parametrize("status", ["done", "", "PAID"])
def test_an_unknown_status_is_a_400_naming_the_field(api, payouts, status):
    response = api.get(f"/payouts?status={status}")
    assert response.status_code == 400
    error = response.json["error"]
    assert error["field"] == "status" and error["code"] == "invalid"
    assert "awaiting_approval" in error["message"]


def test_an_unknown_program_is_a_404(api, payouts):
    response = api.get("/payouts?program=nope")
    assert response.status_code == 404 and response.json["error"]["field"] == "program"


def test_only_with_an_api_key(client, payouts):
    response = client.get("/api/v1/payouts")
    assert response.status_code == 401
    assert response.json["error"]["code"] == "unauthorized"
    bad = client.get("/api/v1/payouts", headers={"Authorization": "Bearer rk_wrong"})
    assert bad.status_code == 401


def test_at_most_the_newest_500(app, api, customers):
    now = utcnow()
    with app.app_context():
        program_id = db.session.get(Customer, customers["ref-1"]).program_id
        db.session.execute(insert(Payout), [
            {"program_id": program_id, "customer_id": customers["ref-1"], "currency": "usd",
             "gross": 100 + n, "netted": 0, "amount": 100 + n, "method": "manual",
             "status": "paid", "created_at": now - timedelta(minutes=n)}
            for n in range(MAX_PAYOUTS + 5)])
        db.session.commit()
    items = api.get("/payouts").json["payouts"]
    assert MAX_PAYOUTS == 500 and len(items) == 500
    assert [item["amount"] for item in items] == [100 + n for n in range(500)]


def test_customers_take_a_stripe_customer_id(app, api, program):
    made = api.post("/customers", {"external_id": "c-1", "email": "c1@example.com",
                                   "stripe_customer_id": "cus_Abc123"})
    assert made.status_code == 201
    assert "stripe_customer_id" not in made.json
    again = api.post("/customers", {"external_id": "c-1", "email": "c1@example.com"})
    assert again.status_code == 200
    relinked = api.post("/customers", {"external_id": "c-1", "email": "c1@example.com",
                                       "stripe_customer_id": "cus_New456"})
    assert relinked.status_code == 200
    with app.app_context():
        assert db.session.scalar(select(Customer.stripe_customer_id)
                                 .filter_by(external_id="c-1")) == "cus_New456"
    for bad in ("acct_123", "cus_", "cus_12 3", 42, "cus_" + "x" * 80):
        response = api.post("/customers", {"external_id": "c-2", "email": "c2@example.com",
                                           "stripe_customer_id": bad})
        assert response.status_code == 400, bad
        assert response.json["error"]["field"] == "stripe_customer_id"
    with app.app_context():
        assert db.session.scalar(select(Customer.id).filter_by(external_id="c-2")) is None
