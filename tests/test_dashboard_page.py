"""The marketing dashboard page: who sees it, that its figures are the data's, that the range
and program select them, that bad selections answer 400 with the reason, and that the charts'
data block holds the numbers of the tables next to them."""

import csv
import html
import io
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from html.parser import HTMLParser

import pytest
import shortuuid
from sqlalchemy import select

from rewards.attribution.clicks import insert_clicks
from rewards.extensions import db
from rewards.models import Program, ReferralCode, utcnow
from rewards.people.programs import create_program
from rewards.policies.versions import publish

from .conftest import login
from .test_ledger import make_due, pay_all

POLICY = {"hold_days": 30, "purchases": "all", "referrer": {"fixed": 1000}}


def today():
    return utcnow().date()


def at(day, hour=12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


def ok(response, status=(200, 201)):
    assert response.status_code in status, response.json
    return response.json


def old_click(app, code: str, when: datetime, visitor: str | None = None) -> None:
    """A click in the past, through the service the click worker uses."""
    with app.app_context():
        entry = db.session.scalar(select(ReferralCode).filter_by(code=code))
        insert_clicks([{"uid": shortuuid.uuid(), "program_id": entry.program_id,
                        "code_id": entry.id, "referrer_id": entry.customer_id,
                        "visitor_id": visitor or shortuuid.uuid(), "ip_hash": None,
                        "user_agent": "test", "referrer_host": "t.co", "channel": "x",
                        "created_at": when}])
        db.session.commit()


@pytest.fixture
def world(app, client, api, program):
    """Shop (USD): Rita referred Fay and Gus. Fay bought 20 days ago and 2 days ago (paid,
    then half refunded: a clawback); Gus bought yesterday (half refunded before payment: a
    reversal). Club (EUR): Bob referred Cleo, who bought 3 days ago. Every referrer earns
    10.00 per purchase. Clicks today on both programs, and one 20 days ago."""
    with app.app_context():
        publish(db.session.get(Program, program), POLICY | {"currency": "usd"})
        publish(create_program("club", name="Club", currency="eur"), POLICY | {"currency": "eur"})
    day = today()
    rita = ok(api.post("/customers", {"external_id": "ref-1", "email": "rita@example.com",
                                      "name": "Rita Ref"}))["referral_code"]
    for external_id, email, name in (("f-1", "fay@example.com", "Fay Friend"),
                                     ("f-2", "gus@example.com", "Gus Friend")):
        ok(api.post("/signups", {"external_id": external_id, "email": email, "name": name,
                                 "referral_code": rita}))

    def buy(order_id, external_id, amount, currency, when, **more):
        ok(api.post("/conversions", {
            "order_id": order_id, "external_id": external_id, "amount": amount,
            "currency": currency, "occurred_at": when.isoformat(), **more}))

    buy("o-old", "f-1", 8000, "usd", at(day - timedelta(days=20)), referral_code=rita)
    buy("o-1", "f-1", 12000, "usd", at(day - timedelta(days=2)))
    make_due(app)
    pay_all(app)
    ok(api.post("/refunds", {"order_id": "o-1", "amount": 6000}), (200,))  # clawback 5.00
    buy("o-2", "f-2", 5000, "usd", at(day - timedelta(days=1)))
    ok(api.post("/refunds", {"order_id": "o-2", "amount": 2500}), (200,))  # reversal 5.00
    bob = ok(api.post("/customers", {"external_id": "ref-2", "email": "bob@example.com",
                                     "name": "Bob Club", "program": "club"}))["referral_code"]
    ok(api.post("/signups", {"external_id": "f-3", "email": "cleo@example.com", "name": "Cleo",
                             "referral_code": bob, "program": "club"}))
    buy("c-1", "f-3", 9900, "eur", at(day - timedelta(days=3)), program="club")
    client.get(f"/r/{rita}?s=email", headers={"Referer": "https://news.example.com/post"})
    app.test_client().get(f"/r/{bob}?s=x")  # another visitor
    old_click(app, rita, at(day - timedelta(days=20)))
    return {"rita": rita, "bob": bob}


@pytest.fixture
def marketing(as_role):
    return as_role("marketing")


def page_of(response, status=200) -> str:
    assert response.status_code == status, response.status_code
    return response.get_data(as_text=True)


class _Marked(HTMLParser):
    """The text of the element marked with one data-testid, nested elements included."""

    def __init__(self, testid: str):
        super().__init__()
        self.testid, self.depth, self.found, self.text = testid, 0, False, []

    def handle_starttag(self, tag, attrs):
        if tag in ("br", "input", "img", "wbr"):
            return
        if self.depth:
            self.depth += 1
        elif dict(attrs).get("data-testid") == self.testid and not self.found:
            self.depth, self.found = 1, True

    def handle_endtag(self, tag):
        if self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.text.append(data)


def cell(page: str, testid: str) -> str:
    parser = _Marked(testid)
    parser.feed(page)
    assert parser.found, f"nothing marked {testid}"
    return " ".join("".join(parser.text).split())


def charts(page: str) -> dict:
    match = re.search(r'<script type="application/json" id="dashboard-charts">(.*?)</script>',
                      page, re.S)
    assert match, "no chart data block"
    return json.loads(match.group(1))


class _Tables(HTMLParser):
    """The body rows (cell texts) of each table, by its data-testid."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table = self._row = self._cell = None
        self._in_body = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("data-testid", ""), [])
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag == "tbody":
            self._in_body = False
        elif tag in ("td", "th") and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self._table.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def tables(page: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(page)
    return parser.tables


def count(text: str) -> int:
    return int(text.replace(",", ""))


def minor(text: str) -> int:
    """'$1,234.50' or '€99.00' in minor units (two-decimal currencies)."""
    number = re.sub(r"[^\d.\-]", "", text)
    return int(Decimal(number) * 100)


# --- Who sees it ---------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["marketing", "admin"])
def test_marketing_and_admin_see_the_dashboard(as_role, program, role):
    page = page_of(as_role(role).get("/marketing"))
    assert "<h1>Marketing dashboard</h1>" in page
    assert "Link clicks" in page
    assert 'aria-current="page">30 days</a>' in page


@pytest.mark.parametrize("role", ["coordinator", "customer"])
def test_other_roles_are_refused(as_role, program, role):
    assert as_role(role).get("/marketing").status_code == 403
    assert as_role(role).get("/marketing?range=7").status_code == 403


def test_anonymous_visitors_go_to_login(client, program):
    response = client.get("/marketing?range=7")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


# --- The figures ---------------------------------------------------------------------------

def test_the_last_7_days_across_programs(world, marketing):
    page = page_of(marketing.get("/marketing?range=7"))
    assert cell(page, "stat-clicks") == "2"
    assert cell(page, "stat-visitors") == "2"
    assert cell(page, "stat-referred-signups") == "3"
    assert cell(page, "stat-purchases") == "3"
    # USD: Fay's second purchase and Gus's first; only Gus is newly acquired.
    assert [cell(page, f"usd-{key}") for key in (
        "purchases", "new-customers", "revenue", "refunded", "net-revenue", "reward-cost",
        "cost-per-customer", "return-on-spend")] == [
        "2", "1", "$170.00", "$85.00", "$85.00", "$10.00", "$10.00", "8.5×"]
    # Reward cost: Fay's 10.00 paid less 5.00 clawed back, Gus's 10.00 less 5.00 reversed.
    assert cell(page, "rewards-usd-cost") == "$10.00"
    assert [cell(page, f"eur-{key}") for key in (
        "purchases", "new-customers", "revenue", "refunded", "net-revenue", "reward-cost",
        "cost-per-customer", "return-on-spend")] == [
        "1", "1", "€99.00", "€0.00", "€99.00", "€10.00", "€10.00", "9.9×"]
    # The signups came by code, not after a click; all three friends have bought since.
    assert cell(page, "stat-click-to-signup") == "0.0%"
    assert cell(page, "stat-signup-to-purchase") == "100.0%"


def test_currencies_are_shown_apart_and_never_summed(world, marketing):
    page = page_of(marketing.get("/marketing?range=7"))
    rows = tables(page)["currencies"]
    assert [row[0] for row in rows] == ["EUR", "USD"]
    # 170.00 + 99.00 and 85.00 + 99.00 and 10.00 + 10.00 appear nowhere.
    for summed in ("269.00", "184.00", "20.00"):
        assert summed not in page
    assert set(charts(page)) >= {"revenue-usd", "revenue-eur", "top-revenue-usd",
                                 "top-revenue-eur"}
    assert "Net revenue, USD" in page and "Net revenue, EUR" in page


def test_a_program_alone(world, marketing):
    shop = page_of(marketing.get("/marketing?range=7&program=shop"))
    assert "Shop Club · " in shop
    assert [row[0] for row in tables(shop)["currencies"]] == ["USD"]
    assert cell(shop, "stat-clicks") == "1"
    assert cell(shop, "stat-purchases") == "2"
    assert 'data-testid="eur-revenue"' not in shop
    club = page_of(marketing.get("/marketing?range=7&program=club"))
    assert [row[0] for row in tables(club)["currencies"]] == ["EUR"]
    assert cell(club, "stat-clicks") == "1"
    assert cell(club, "eur-revenue") == "€99.00"
    # The selection carries over: presets keep the program, the program form keeps the range.
    assert 'href="/marketing?range=90&amp;program=club"' in club or \
        'href="/marketing?program=club&amp;range=90"' in club
    assert '<input type="hidden" name="range" value="7">' in club
    assert '<option value="club" selected>Club</option>' in club


def test_the_range_selects_the_days(world, marketing):
    week = page_of(marketing.get("/marketing?range=7"))
    month = page_of(marketing.get("/marketing?range=30"))
    assert cell(week, "stat-clicks") == "2" and cell(month, "stat-clicks") == "3"
    assert [cell(month, f"usd-{key}") for key in (
        "purchases", "new-customers", "revenue", "refunded", "net-revenue", "reward-cost",
        "cost-per-customer")] == ["3", "2", "$250.00", "$85.00", "$165.00", "$20.00", "$10.00"]
    assert len(tables(week)["daily"]) == 7 and len(tables(month)["daily"]) == 30
    assert len(tables(page_of(marketing.get("/marketing?range=90")))["daily"]) == 90


def test_a_custom_range_leaves_out_what_falls_outside(world, marketing):
    start, end = today() - timedelta(days=25), today() - timedelta(days=15)
    page = page_of(marketing.get(f"/marketing?range=custom&start={start}&end={end}"))
    assert cell(page, "stat-clicks") == "1"
    assert cell(page, "stat-purchases") == "1"
    assert [row[0] for row in tables(page)["currencies"]] == ["USD"]
    assert cell(page, "usd-revenue") == "$80.00"
    assert cell(page, "usd-new-customers") == "1"
    assert len(tables(page)["daily"]) == 11
    assert f'name="start" value="{start}"' in page and f'name="end" value="{end}"' in page
    # No preset is current; the CSV links carry the same days.
    assert 'aria-current="page">' not in page.split('data-testid="presets"')[1].split("</nav>")[0]
    assert (f'/marketing/export/currencies.csv?range=custom&amp;start={start}&amp;end={end}'
            in page)
    # A single day works too.
    one = page_of(marketing.get(f"/marketing?range=custom&start={today()}&end={today()}"))
    assert len(tables(one)["daily"]) == 1


def test_the_top_figures_compare_with_the_days_just_before(world, marketing):
    # Yesterday and today: Gus's purchase, the two clicks and the three signups (made
    # today). The two days before: Cleo's and Fay's purchases, no clicks, no signups.
    start, end = today() - timedelta(days=1), today()
    page = page_of(marketing.get(f"/marketing?range=custom&start={start}&end={end}"))
    before = f"{today() - timedelta(days=3):%b %d} – {today() - timedelta(days=2):%b %d, %Y}"
    if (today() - timedelta(days=3)).year != (today() - timedelta(days=2)).year:
        before = (f"{today() - timedelta(days=3):%b %d, %Y} – "
                  f"{today() - timedelta(days=2):%b %d, %Y}")
    assert cell(page, "compared-with") == f"Changes are against the previous 2 days, {before}."
    assert cell(page, "stat-purchases") == "1"
    assert cell(page, "change-purchases") == "-50% on the previous period"
    assert 'title="Previous period: 2"' in page
    assert cell(page, "change-clicks") == "new on the previous period"
    assert cell(page, "change-referred-signups") == "new on the previous period"
    # No signups or clicks before: those rates have nothing to compare with.
    assert 'data-testid="change-click-to-signup"' not in page
    assert 'data-testid="change-signup-to-purchase"' not in page
    # The two days before that: Cleo's and Fay's purchases (2) against none before them.
    start, end = today() - timedelta(days=3), today() - timedelta(days=2)
    page = page_of(marketing.get(f"/marketing?range=custom&start={start}&end={end}"))
    assert cell(page, "change-purchases") == "new on the previous period"
    assert cell(page, "change-clicks") == "no change on the previous period"


@pytest.mark.parametrize("now, before, rate, shown", [
    (3, 2, False, ("up", "+50%")), (2, 3, False, ("down", "-33%")),
    (107, 100, False, ("up", "+7.0%")), (5, 5, False, ("same", "no change")),
    (4, 0, False, ("up", "new")), (0, 4, False, ("down", "-100%")),
    (0.25, 0.2, True, ("up", "+5.0 pts")), (0.1, 0.1004, True, ("same", "no change")),
    (None, 0.5, True, None), (0.5, None, True, None),
])
def test_a_change_reads_as_people_say_it(now, before, rate, shown):
    from rewards.web.marketing.views import change

    assert change(now, before, rate=rate) == shown


@pytest.mark.parametrize("query, message", [
    ("range=custom&start=2026-02-10&end=2026-02-01",
     "The end date must be on or after the start date."),
    ("range=custom&start=2026-02-30&end=2026-03-01", "The start date must be a date like"),
    ("range=custom&start=2026-02-01", "The end date must be a date like"),
    ("range=custom&start=2020-01-01&end=2026-01-01", "A range can cover at most"),
    ("program=nope", "There is no program 'nope'."),
    ("range=13", "The range must be 7, 30 or 90 days, or custom."),
    ("range=<script>", "The range must be 7, 30 or 90 days, or custom."),
])
def test_a_bad_selection_answers_400_with_the_reason(world, marketing, query, message):
    page = page_of(marketing.get(f"/marketing?{query}"), 400)
    assert message in html.unescape(cell(page, "scope-error"))
    assert "<script>" not in page.split("<main")[1]
    # The form is still there to pick again, and nothing else is shown.
    assert 'data-testid="custom-form"' in page
    assert 'id="dashboard-charts"' not in page
    assert 'data-testid="stat-clicks"' not in page


def test_an_empty_range_shows_empty_states(app, program, marketing):
    page = page_of(marketing.get("/marketing?range=7"))
    assert cell(page, "stat-clicks") == "0"
    assert cell(page, "stat-click-to-signup") == "—"
    assert "No referred purchases or rewards in this range." in page
    assert "No clicks, signups or purchases in this range." in page
    assert "No clicks in this range." in page
    assert "<canvas" not in page
    assert 'id="dashboard-charts"' in page  # harmless, and the page stays one template


def test_many_visitors_are_an_estimate(app, api, program, marketing):
    code = ok(api.post("/customers", {"external_id": "ref-1", "email": "rita@example.com"}))[
        "referral_code"]
    with app.app_context():
        entry = db.session.scalar(select(ReferralCode).filter_by(code=code))
        insert_clicks([{"uid": shortuuid.uuid(), "program_id": entry.program_id,
                        "code_id": entry.id, "referrer_id": entry.customer_id,
                        "visitor_id": f"visitor-{n}", "ip_hash": None, "user_agent": None,
                        "referrer_host": None, "channel": None, "created_at": utcnow()}
                       for n in range(400)])
        db.session.commit()
    page = page_of(marketing.get("/marketing?range=7"))
    assert cell(page, "stat-clicks") == "400"
    visitors = cell(page, "stat-visitors")
    assert visitors.startswith("about ")
    assert abs(count(visitors.removeprefix("about ")) - 400) <= 400 * 0.05


# --- Charts, tables and CSV links ----------------------------------------------------------

def test_the_chart_data_holds_the_numbers_of_the_tables(world, marketing):
    page = page_of(marketing.get("/marketing?range=30"))
    data, shown = charts(page), tables(page)
    daily = shown["daily"]
    clicks, referred, purchases = (data["daily"]["datasets"][n]["data"] for n in range(3))
    assert data["daily"]["labels"] == [
        (today() - timedelta(days=29 - n)).isoformat() for n in range(30)]
    assert clicks == [count(row[1]) for row in daily]
    assert referred == [count(row[3]) for row in daily]
    assert purchases == [count(row[4]) for row in daily]
    assert sum(clicks) == count(cell(page, "stat-clicks"))
    # The daily table's columns: day, clicks, signups, referred signups, purchases, EUR, USD.
    assert data["revenue-eur"]["money"] == {"currency": "eur", "exponent": 2}
    assert data["revenue-eur"]["datasets"][0]["data"] == [minor(row[5]) for row in daily]
    assert data["revenue-usd"]["datasets"][0]["data"] == [minor(row[6]) for row in daily]
    assert sum(data["revenue-usd"]["datasets"][0]["data"]) == minor(cell(page, "usd-net-revenue"))
    funnel = shown["funnel"]
    assert data["funnel"]["labels"] == [row[0] for row in funnel] == [
        "Clicks", "Unique visitors", "Referred signups", "Friends who bought"]
    assert data["funnel"]["datasets"][0]["data"] == [count(row[1]) for row in funnel]
    top = shown["top-purchases"]
    assert data["top-purchases"]["labels"] == [row[1] for row in top] == ["Rita R.", "Bob C."]
    assert data["top-purchases"]["datasets"][0]["data"] == [count(row[2]) for row in top] == [3, 1]
    usd = shown["top-revenue-usd"]
    assert data["top-revenue-usd"]["labels"] == [row[1] for row in usd] == ["Rita R."]
    assert data["top-revenue-usd"]["datasets"][0]["data"] == [minor(row[3]) for row in usd]
    for key in ("hosts", "channels"):
        rows = shown[key]
        assert data[key]["labels"] == [row[0] for row in rows]
        assert data[key]["datasets"][0]["data"] == [count(row[1]) for row in rows]
        assert sum(data[key]["datasets"][0]["data"]) == 3
    assert set(data["hosts"]["labels"]) == {"news.example.com", "Direct / unknown", "t.co"}
    assert set(data["channels"]["labels"]) == {"Email", "X"}
    # Every chart has its canvas, labelled, with its table.
    for key in data:
        assert re.search(rf'<canvas data-chart="{key}" role="img" aria-label="[^"]+"', page), key
    # Daily, funnel, top by purchases, top by revenue in USD and in EUR, hosts, channels.
    assert page.count("<summary>Show the numbers</summary>") == 7


def test_every_table_links_its_csv_with_the_same_totals(world, marketing):
    page = page_of(marketing.get("/marketing?range=7&program=shop"))
    for table in ("daily", "funnel", "currencies", "rewards", "top-purchases", "top-revenue",
                  "hosts", "channels"):
        assert f'href="/marketing/export/{table}.csv?program=shop&amp;range=7"' in page, table
    for kind in ("referrals", "purchases", "rewards"):
        assert f'href="/marketing/export/raw/{kind}.csv?program=shop&amp;range=7"' in page, kind
    href = html.unescape(re.search(r'href="([^"]+)"[^>]*data-testid="csv-currencies"',
                                   page).group(1))
    response = marketing.get(href)
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [row["currency"] for row in rows] == ["USD"]
    row = rows[0]
    assert int(row["purchases"]) == count(cell(page, "usd-purchases"))
    for key in ("revenue", "refunded", "net_revenue", "reward_cost"):
        assert int(Decimal(row[key]) * 100) == minor(cell(page, f"usd-{key.replace('_', '-')}"))


def test_the_page_has_no_inline_script(world, marketing):
    page = page_of(marketing.get("/marketing?range=30"))
    for tag in re.findall(r"<script[^>]*>", page):
        assert "src=" in tag or 'type="application/json"' in tag, tag
    assert "/static/vendor/chartjs/chart.umd.min.js" in page
    # The chart library is only loaded where there are charts.
    assert "chartjs" not in page_of(marketing.get("/marketing?range=13"), 400)


def test_the_dashboard_reads_fresh_rollups(app, client, api, program, marketing):
    code = ok(api.post("/customers", {"external_id": "ref-1", "email": "rita@example.com"}))[
        "referral_code"]
    before = count(cell(page_of(marketing.get("/marketing?range=7")), "stat-clicks"))
    client.get(f"/r/{code}")
    assert count(cell(page_of(marketing.get("/marketing?range=7")), "stat-clicks")) == before + 1


def test_a_demo_login_sees_the_demo(app, client):
    from rewards.demo import PASSWORD, seed_demo

    with app.app_context():
        seed_demo()
    assert login(client, "marketing@demo.example", PASSWORD).status_code == 302
    page = page_of(client.get("/marketing?range=90"))
    assert count(cell(page, "stat-clicks")) > 0
    assert count(cell(page, "usd-purchases")) > 0
    assert all(any(value for value in spec["datasets"][0]["data"])
               for spec in charts(page).values())
