"""The marketing dashboard's CSV exports: the tables equal `report(scope)`, the raw rows are
the range's and the program's, no full email leaves, and the files stream."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import insert, select, update

from rewards.analytics import exports as marketing_exports
from rewards.analytics import rollups
from rewards.analytics.dashboard import REWARD_STATUSES, Scope, report
from rewards.extensions import db
from rewards.models import Conversion, Customer, Program, Referral, Reward, utcnow
from rewards.money import exponent
from rewards.people.programs import create_program
from rewards.policies.versions import publish

from .test_ledger import make_due, pay_all

POLICY = {"hold_days": 30, "purchases": "all",
          "referrer": {"percent_bps": 1000, "cap": 1000}, "friend": {"fixed": 500}}
TABLES = ("daily", "funnel", "currencies", "rewards", "top-purchases", "top-revenue", "hosts",
          "channels")
EVIL_NAME = '=HYPERLINK("http://evil.example","x")'


def today():
    return utcnow().date()


def at(day, hour=12, minute=0, second=0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def read_csv(response) -> list[dict]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def minor(cell: str, currency: str) -> int:
    """A CSV amount back in minor units, refusing anything but an exact decimal."""
    assert re.fullmatch(r"-?\d+(\.\d+)?", cell), cell
    value = Decimal(cell).scaleb(exponent(currency))
    assert value == value.to_integral_value(), cell
    return int(value)


def signup(api, code, external_id, email, name, program=None):
    body = {"email": email, "external_id": external_id, "name": name, "referral_code": code}
    response = api.post("/signups", body | ({"program": program} if program else {}))
    assert response.status_code == 201, response.json


def buy(api, order_id, external_id, amount, currency, when, program=None):
    body = {"order_id": order_id, "external_id": external_id, "amount": amount,
            "currency": currency, "occurred_at": iso(when)}
    response = api.post("/conversions", body | ({"program": program} if program else {}))
    assert response.status_code == 201, response.json
    return response.json


@pytest.fixture
def world(app, client, api, program):
    """Two programs in two currencies, a week of purchases, refunds before and after payment,
    clicks, and purchases just outside the range."""
    with app.app_context():
        publish(db.session.get(Program, program), POLICY | {"currency": "usd"})
        club = create_program("club", name="Club", currency="eur")
        publish(club, POLICY | {"currency": "eur"})
    start, end = today() - timedelta(days=6), today()
    rita = api.post("/customers", {"external_id": "ref-1", "email": "rita@example.com",
                                   "name": "Rita Ref"}).json["referral_code"]
    signup(api, rita, "f-1", "fay@example.com", "Fay Friend")
    signup(api, rita, "f-2", "evil@example.com", EVIL_NAME)
    buy(api, "o-1", "f-1", 12000, "usd", at(start + timedelta(days=1)))
    make_due(app)
    pay_all(app)
    assert api.post("/refunds", {"order_id": "o-1", "amount": 6000}).status_code == 200  # clawback
    buy(api, "o-2", "f-2", 5000, "usd", at(start + timedelta(days=2)))
    assert api.post("/refunds", {"order_id": "o-2", "amount": 2500}).status_code == 200  # reversal
    buy(api, "o-3", "stranger", 3000, "usd", at(start + timedelta(days=3)))  # not referred
    # Just outside the range, on both sides.
    buy(api, "o-before", "f-1", 7000, "usd", at(start, 0) - timedelta(seconds=1))
    with app.app_context():
        # A purchase "tomorrow" cannot come through the API; the service takes it.
        later = Conversion(program_id=program, source="api", order_id="o-after",
                           customer_id=db.session.scalar(
                               select(Customer.id).filter_by(external_id="f-2")),
                           amount=2000, currency="usd", occurred_at=at(end + timedelta(days=1), 0),
                           reason="test", request_hash="x")
        db.session.add(later)
        db.session.commit()
    # The club, in euros.
    bob = api.post("/customers", {"external_id": "ref-2", "email": "bob@example.com",
                                  "name": "Bob Club", "program": "club"}).json["referral_code"]
    signup(api, bob, "f-3", "cleo@example.com", "Cleo", program="club")
    buy(api, "c-1", "f-3", 9900, "eur", at(start + timedelta(days=4)), program="club")
    # Clicks: one from a newsletter by email, one with neither host nor channel.
    client.get(f"/r/{rita}?s=email", headers={"Referer": "https://news.example.com/post"})
    client.get(f"/r/{rita}")
    client.get(f"/r/{bob}?s=x")
    return {"start": start, "end": end, "club": club_id(app), "shop": program}


def club_id(app) -> int:
    with app.app_context():
        return db.session.scalar(select(Program.id).filter_by(slug="club"))


@pytest.fixture
def marketing(as_role):
    return as_role("marketing")


def query(world, program=None, start=None, end=None) -> str:
    start, end = start or world["start"], end or world["end"]
    args = f"range=custom&start={start}&end={end}"
    return args + (f"&program={program}" if program else "")


def expected(app, program_ids, start, end) -> dict:
    with app.app_context():
        rollups.refresh()
        return report(Scope(program_ids, start, end))


# --- Tables --------------------------------------------------------------------------------

def check_tables(app, client, world, program_ids, slug):
    """Each table's rows, read back, are the report's figures."""
    figures = expected(app, program_ids, world["start"], world["end"])
    args = query(world, slug)
    get = lambda name: read_csv(client.get(f"/marketing/export/{name}.csv?{args}"))  # noqa: E731

    daily = get("daily")
    currencies = sorted({c for point in figures["series"] for c in point["revenue"]})
    assert list(daily[0]) == ["day", "clicks", "signups", "referred_signups", "purchases",
                              *(f"revenue_{c}" for c in currencies)]
    assert [row["day"] for row in daily] == [p["day"].isoformat() for p in figures["series"]]
    for row, point in zip(daily, figures["series"], strict=True):
        assert [int(row[k]) for k in ("clicks", "signups", "referred_signups", "purchases")] \
            == [point[k] for k in ("clicks", "signups", "referred_signups", "purchases")]
        for currency in currencies:
            assert minor(row[f"revenue_{currency}"], currency) == point["revenue"].get(
                currency, 0)

    assert [(r["step"], int(r["count"])) for r in get("funnel")] == figures["funnel"]

    rows = get("currencies")
    assert [r["currency"] for r in rows] == [c["currency"].upper() for c in figures["currencies"]]
    for row, want in zip(rows, figures["currencies"], strict=True):
        cur = want["currency"]
        assert int(row["purchases"]) == want["purchases"]
        assert int(row["new_customers"]) == want["new_customers"]
        for key in ("revenue", "refunded", "net_revenue", "reward_cost"):
            assert minor(row[key], cur) == want[key], key
        assert (minor(row["cost_per_customer"], cur) if row["cost_per_customer"] else None) \
            == want["cost_per_customer"]
        if want["return_on_spend"] is None:
            assert row["return_on_spend"] == ""
        else:
            assert Decimal(row["return_on_spend"]) == pytest.approx(
                Decimal(repr(want["return_on_spend"])), abs=Decimal("0.00005"))

    rows = get("rewards")
    for want in figures["currencies"]:
        cur, cost = want["currency"], want["rewards"]
        lines = {r["status"]: r for r in rows if r["currency"] == cur.upper()}
        assert list(lines) == [*REWARD_STATUSES, "reversed_by_refunds", "clawed_back",
                               "total_cost"]
        for status in REWARD_STATUSES:
            line = cost["statuses"][status] if cost else {"rewards": 0, "amount": 0}
            assert (int(lines[status]["rewards"]), minor(lines[status]["amount"], cur)) == (
                line["rewards"], line["amount"])
        assert minor(lines["reversed_by_refunds"]["amount"], cur) == (
            cost["reversed"] if cost else 0)
        assert minor(lines["clawed_back"]["amount"], cur) == (cost["clawed_back"] if cost else 0)
        assert minor(lines["total_cost"]["amount"], cur) == want["reward_cost"]

    assert [(int(r["rank"]), int(r["referrer_id"]), r["name"].removeprefix("'"),
             int(r["purchases"])) for r in get("top-purchases")] == [
        (n, line["referrer_id"], line["name"], line["purchases"])
        for n, line in enumerate(figures["top"]["by_purchases"], 1)]
    assert [(r["currency"], int(r["rank"]), int(r["referrer_id"]), r["name"],
             int(r["purchases"]), minor(r["revenue"], r["currency"].lower()))
            for r in get("top-revenue")] == [
        (cur.upper(), n, line["referrer_id"], line["name"], line["purchases"], line["revenue"])
        for cur, lines in sorted(figures["top"]["by_revenue"].items())
        for n, line in enumerate(lines, 1)]

    hosts = {r["host"]: int(r["clicks"]) for r in get("hosts")}
    assert sum(hosts.values()) == figures["totals"]["clicks"]
    assert hosts == {("(other)" if h["host"] is None else h["host"] or "(none)"): h["clicks"]
                     for h in figures["sources"]["hosts"]}
    channels = {r["channel"]: int(r["clicks"]) for r in get("channels")}
    assert channels == {(c["channel"] or "(none)"): c["clicks"]
                        for c in figures["sources"]["channels"]}
    return figures


def test_every_table_equals_the_report_for_all_programs(app, world, marketing):
    figures = check_tables(app, marketing, world, None, None)
    # What the figures are, by hand: two currencies kept apart, the range's purchases only.
    by = {row["currency"]: row for row in figures["currencies"]}
    assert set(by) == {"usd", "eur"}
    assert (by["usd"]["purchases"], by["usd"]["revenue"], by["usd"]["refunded"]) == (
        2, 17000, 8500)
    assert (by["eur"]["purchases"], by["eur"]["revenue"]) == (1, 9900)
    usd = by["usd"]["rewards"]
    assert usd["clawed_back"] == 750 and usd["reversed"] == 500  # 50% of o-1, o-2 paid/not
    assert figures["totals"]["clicks"] == 3
    daily = read_csv(marketing.get(f"/marketing/export/daily.csv?{query(world)}"))
    assert len(daily) == 7
    assert daily[1]["revenue_usd"] == "60.00" and daily[2]["revenue_usd"] == "25.00"
    assert daily[3]["revenue_usd"] == "0.00"  # o-3 was not referred
    assert daily[4]["revenue_eur"] == "99.00" and daily[0]["revenue_eur"] == "0.00"
    currencies = read_csv(marketing.get(f"/marketing/export/currencies.csv?{query(world)}"))
    assert [(r["currency"], r["revenue"], r["net_revenue"]) for r in currencies] == [
        ("EUR", "99.00", "99.00"), ("USD", "170.00", "85.00")]
    channels = read_csv(marketing.get(f"/marketing/export/channels.csv?{query(world)}"))
    assert {r["channel"]: r["clicks"] for r in channels} == {"email": "1", "(none)": "1",
                                                            "x": "1"}


def test_tables_for_one_program_hold_only_its_figures(app, world, marketing):
    figures = check_tables(app, marketing, world, (world["club"],), "club")
    assert [row["currency"] for row in figures["currencies"]] == ["eur"]
    daily = read_csv(marketing.get(f"/marketing/export/daily.csv?{query(world, 'club')}"))
    assert "revenue_usd" not in daily[0] and sum(int(r["clicks"]) for r in daily) == 1
    top = read_csv(marketing.get(f"/marketing/export/top-revenue.csv?{query(world, 'club')}"))
    assert [(r["currency"], r["revenue"]) for r in top] == [("EUR", "99.00")]
    check_tables(app, marketing, world, (world["shop"],), "shop")


def test_a_range_without_any_activity_exports_empty_tables(app, world, marketing):
    start = world["start"] - timedelta(days=30)
    args = query(world, start=start, end=start + timedelta(days=1))
    daily = read_csv(marketing.get(f"/marketing/export/daily.csv?{args}"))
    assert [(r["day"], r["clicks"], r["purchases"]) for r in daily] == [
        (start.isoformat(), "0", "0"), ((start + timedelta(days=1)).isoformat(), "0", "0")]
    assert read_csv(marketing.get(f"/marketing/export/currencies.csv?{args}")) == []
    assert marketing.get(f"/marketing/export/top-revenue.csv?{args}").get_data(
        as_text=True) == "currency,rank,referrer_id,name,purchases,revenue\r\n"


def test_headers_name_the_file_and_forbid_caching(world, marketing):
    response = marketing.get(f"/marketing/export/top-purchases.csv?{query(world, 'club')}")
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="dashboard-top-purchases-club-{world["start"]}-'
        f'{world["end"]}.csv"')
    response = marketing.get(f"/marketing/export/raw/referrals.csv?{query(world)}")
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="referrals-all-{world["start"]}-{world["end"]}.csv"')
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    # The dashboard's preset ranges work too.
    assert marketing.get("/marketing/export/funnel.csv?range=7").status_code == 200
    assert marketing.get("/marketing/export/raw/purchases.csv").status_code == 200


# --- Raw rows ------------------------------------------------------------------------------

def test_raw_purchases_are_the_range_referred_or_not(world, marketing):
    rows = read_csv(marketing.get(f"/marketing/export/raw/purchases.csv?{query(world)}"))
    assert list(rows[0]) == list(marketing_exports.PURCHASES_HEADER)
    assert [r["order_id"] for r in rows] == ["o-1", "o-2", "o-3", "c-1"]
    o1, _, o3, c1 = rows
    assert (o1["program"], o1["amount"], o1["refunded"], o1["currency"], o1["matched_by"],
            o1["source"]) == ("shop", "120.00", "60.00", "USD", "signup", "api")
    assert o1["occurred_at"] == f"{world['start'] + timedelta(days=1)}T12:00:00Z"
    assert o1["referrer_id"] and o3["referrer_id"] == "" and o3["matched_by"] == ""
    assert (c1["program"], c1["amount"], c1["currency"]) == ("club", "99.00", "EUR")
    only_club = read_csv(marketing.get(
        f"/marketing/export/raw/purchases.csv?{query(world, 'club')}"))
    assert [r["order_id"] for r in only_club] == ["c-1"]
    # The day before the range holds o-before (23:59:59); the day after, o-after (00:00:00).
    before = world["start"] - timedelta(days=1)
    rows = read_csv(marketing.get(
        f"/marketing/export/raw/purchases.csv?{query(world, start=before, end=before)}"))
    assert [r["order_id"] for r in rows] == ["o-before"]
    after = world["end"] + timedelta(days=1)
    rows = read_csv(marketing.get(
        f"/marketing/export/raw/purchases.csv?{query(world, start=after, end=after)}"))
    assert [r["order_id"] for r in rows] == ["o-after"]


def test_raw_rewards_are_those_of_the_range_purchases(app, world, marketing):
    rows = read_csv(marketing.get(f"/marketing/export/raw/rewards.csv?{query(world)}"))
    assert list(rows[0]) == list(marketing_exports.REWARDS_HEADER)
    with app.app_context():
        want = db.session.scalars(
            select(Reward).where(Reward.occurred_at >= rollups.day_start(world["start"]),
                                 Reward.occurred_at < rollups.day_start(
                                     world["end"] + timedelta(days=1)))
            .order_by(Reward.occurred_at, Reward.id)).all()
        assert [int(r["id"]) for r in rows] == [reward.id for reward in want]
        assert len(rows) == 6  # o-1, o-2 and c-1: a referrer's and a friend's reward each
        for row, reward in zip(rows, want, strict=True):
            assert (minor(row["amount"], reward.currency), minor(row["reversed"], reward.currency),
                    minor(row["net"], reward.currency), row["status"], row["role"],
                    row["currency"], int(row["beneficiary_id"]), row["policy_version"],
                    row["explanation"]) == (
                reward.amount, reward.reversed_amount, reward.net_amount, reward.status,
                reward.role, reward.currency.upper(), reward.customer_id, "1",
                reward.explanation)
    referrer_o2 = next(r for r in rows if r["role"] == "referrer" and r["amount"] == "5.00")
    assert (referrer_o2["reversed"], referrer_o2["net"], referrer_o2["beneficiary_name"]) == (
        "2.50", "2.50", "Rita R.")
    club = read_csv(marketing.get(f"/marketing/export/raw/rewards.csv?{query(world, 'club')}"))
    assert {r["program"] for r in club} == {"club"} and len(club) == 2


def test_raw_referrals_mask_emails_and_respect_the_range(app, world, marketing):
    rows = read_csv(marketing.get(f"/marketing/export/raw/referrals.csv?{query(world)}"))
    assert list(rows[0]) == list(marketing_exports.REFERRALS_HEADER)
    assert [(r["program"], r["referrer_name"], r["friend_name"], r["friend_email"],
             r["matched_by"]) for r in rows] == [
        ("shop", "Rita R.", "Fay F.", "f***@example.com", "code"),
        ("shop", "Rita R.", "'" + EVIL_NAME, "e***@example.com", "code"),
        ("club", "Bob C.", "Cleo", "c***@example.com", "code")]
    assert rows[0]["reason"].startswith("Attributed")
    # Moved to just before the range, the first referral leaves it.
    with app.app_context():
        first = db.session.scalar(select(Referral).order_by(Referral.id))
        first.created_at = rollups.day_start(world["start"]) - timedelta(microseconds=1)
        db.session.commit()
    rows = read_csv(marketing.get(f"/marketing/export/raw/referrals.csv?{query(world)}"))
    assert [r["friend_name"] for r in rows] == ["'" + EVIL_NAME, "Cleo"]
    rows = read_csv(marketing.get(
        f"/marketing/export/raw/referrals.csv?{query(world, 'shop')}"))
    assert [r["friend_name"] for r in rows] == ["'" + EVIL_NAME]


def test_no_export_carries_a_full_email_full_name_or_device_data(app, world, marketing):
    with app.app_context():
        db.session.execute(update(Conversion).values(card_fingerprint="fp_secret_card"))
        db.session.commit()
    names = [f"{table}.csv" for table in TABLES] + [
        f"raw/{kind}.csv" for kind in marketing_exports.RAW]
    for name in names:
        body = marketing.get(f"/marketing/export/{name}?{query(world)}").get_data(as_text=True)
        for email in re.findall(r"[\w.+*-]+@[\w.-]+", body):
            assert "***@" in email, (name, email)
        assert "fp_secret_card" not in body and "Mozilla" not in body
        for full in ("rita@", "fay@", "evil@", "bob@", "cleo@", "Rita Ref", "Fay Friend",
                     "Bob Club"):
            assert full not in body, (name, full)


def test_cells_cannot_run_as_formulas_but_numbers_stay_numbers(world, marketing):
    body = marketing.get(f"/marketing/export/raw/referrals.csv?{query(world)}").get_data(
        as_text=True)
    assert '"\'=HYPERLINK(""http://evil.example"",""x"")"' in body
    from rewards.web.downloads import safe_cell

    assert safe_cell(Decimal("-2.50")) == "-2.50" and safe_cell(-3) == "-3"
    assert safe_cell("-2.50") == "'-2.50"  # text is text, whatever it looks like


# --- Streaming -----------------------------------------------------------------------------

def test_raw_exports_stream_many_rows_in_pieces(app, world, marketing, monkeypatch):
    with app.app_context():
        customer = db.session.scalar(select(Customer.id).filter_by(external_id="stranger"))
        moment = at(world["start"] + timedelta(days=5))
        db.session.execute(insert(Conversion), [
            {"program_id": world["shop"], "source": "bulk", "order_id": f"bulk-{n:05d}",
             "customer_id": customer, "amount": 100 + n, "currency": "usd",
             "occurred_at": moment, "reason": "bulk", "request_hash": "x",
             "refunded_amount": 0, "created_at": moment}
            for n in range(2500)])
        db.session.commit()
    batches = []
    real = marketing_exports.purchases

    def spy(scope, batch=marketing_exports.BATCH):
        batches.append(batch)
        return real(scope, batch)

    monkeypatch.setitem(marketing_exports.RAW, "purchases",
                        (marketing_exports.PURCHASES_HEADER, spy))
    response = marketing.get(f"/marketing/export/raw/purchases.csv?{query(world)}",
                             buffered=False)
    assert response.status_code == 200 and response.is_streamed
    assert batches == []  # the header is sent before the database is read
    chunks = list(response.response)
    response.close()
    assert batches == [marketing_exports.BATCH]
    assert len(chunks) > 5, len(chunks)
    rows = list(csv.DictReader(io.StringIO(b"".join(chunks).decode())))
    assert len(rows) == 2500 + 4
    assert rows[3]["order_id"] == "c-1" and rows[-1]["order_id"] == "bulk-02499"


def test_the_queries_use_yield_per(app, world):
    with app.app_context():
        scope = Scope(None, world["start"], world["end"])
        for kind, (_, rows) in marketing_exports.RAW.items():
            generator = rows(scope, batch=2)
            assert iter(generator) is generator, kind  # a generator, not a list
            assert len(list(generator)) >= 3, kind


# --- Who, and what goes wrong ---------------------------------------------------------------

@pytest.mark.parametrize("path", ["/marketing/export/daily.csv",
                                  "/marketing/export/raw/rewards.csv"])
def test_only_marketing_and_admin_may_export(app, program, as_role, path):
    for role, status in (("marketing", 200), ("admin", 200), ("coordinator", 403),
                         ("customer", 403)):
        response = as_role(role).get(path)
        assert response.status_code == status, role
        if status == 200:
            assert response.headers["Content-Type"].startswith("text/csv")
    response = app.test_client().get(path)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_unknown_tables_and_kinds_are_404_with_a_message(program, marketing):
    for path in ("/marketing/export/everything.csv", "/marketing/export/raw/payouts.csv",
                 "/marketing/export/raw/daily.csv"):
        response = marketing.get(path)
        assert response.status_code == 404, path
        assert response.headers["Content-Type"].startswith("text/plain")
        assert "There is no such" in response.get_data(as_text=True)


@pytest.mark.parametrize(("args", "message"), [
    ("range=custom&start=2026-02-01&end=2026-01-01",
     "The end date must be on or after the start date."),
    ("range=custom&start=yesterday&end=2026-01-01", "The start date must be a date like"),
    ("range=12", "The range must be 7, 30 or 90 days, or custom."),
    ("program=nope", "There is no program 'nope'."),
])
def test_a_bad_range_is_400_with_the_reason(program, marketing, args, message):
    for path in ("/marketing/export/currencies.csv", "/marketing/export/raw/purchases.csv"):
        response = marketing.get(f"{path}?{args}")
        assert response.status_code == 400, path
        assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
        assert message in response.get_data(as_text=True)


def test_raw_exports_are_in_the_audit_log_and_table_exports_are_not(app, world, marketing):
    from rewards.models import Account, AuditEntry

    assert marketing.get(f"/marketing/export/daily.csv?{query(world)}").status_code == 200
    response = marketing.get(f"/marketing/export/raw/purchases.csv?{query(world, 'club')}")
    assert response.status_code == 200
    response.get_data()
    with app.app_context():
        entries = db.session.execute(
            select(Account.role, AuditEntry.action, AuditEntry.subject, AuditEntry.note)
            .join(Account, Account.id == AuditEntry.account_id)
            .where(AuditEntry.action == "download")).all()
    assert entries == [("marketing", "download", "purchases.csv", query(world, "club"))]
