"""Through the real page in Chromium: a marketing user opens the dashboard on the demo data,
the charts are drawn, a shorter range shows other numbers, and a CSV download holds the
page's totals. Screenshots go to tests/artifacts/."""

import csv
import io
import re
from decimal import Decimal

import pytest

from rewards.demo import PASSWORD, seed_demo

from .browser import chromium, live_server, screenshot, sign_in, site_app

pytestmark = pytest.mark.browser

# Every chart drawn, with at least one non-zero number, and pixels on its canvas.
CHARTS = """() => Array.from(document.querySelectorAll("canvas[data-chart]")).map((canvas) => {
  const chart = window.Chart && window.Chart.getChart(canvas);
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) { if (pixels[i]) { painted += 1; } }
  return {
    key: canvas.dataset.chart,
    drawn: Boolean(chart),
    nonzero: chart ? chart.data.datasets.some((set) => set.data.some((v) => v > 0)) : false,
    painted: painted,
    visible: canvas.getBoundingClientRect().height > 0,
  };
})"""


@pytest.fixture
def site(tmp_path):
    app, port = site_app(tmp_path)
    with app.app_context():
        made, _ = seed_demo()
        assert made
    with live_server(app, port) as url:
        yield url


def number(text: str) -> int:
    return int(text.replace(",", "").removeprefix("about ").strip())


def minor(text: str) -> int:
    return int(Decimal(re.sub(r"[^\d.\-]", "", text)) * 100)


def figures(page) -> dict:
    cells = {key: page.inner_text(f"[data-testid={key}]").strip()
             for key in ("stat-clicks", "stat-referred-signups", "stat-purchases")}
    for key in ("purchases", "new-customers", "revenue", "refunded", "net-revenue",
                "reward-cost"):
        cells[f"usd-{key}"] = page.inner_text(f"[data-testid=usd-{key}]").strip()
    return cells


def assert_charts_drawn(page) -> list[str]:
    page.wait_for_function(
        "() => document.querySelectorAll('canvas[data-chart]').length > 0 && "
        "document.querySelectorAll('canvas[data-chart]:not([data-drawn])').length === 0")
    page.wait_for_timeout(600)  # let the entry animation finish before reading pixels
    charts = page.evaluate(CHARTS)
    for chart in charts:
        assert chart["drawn"] and chart["visible"], chart
        assert chart["nonzero"], chart
        assert chart["painted"] > 500, chart
    # Drawn charts fold their tables away; the numbers stay on the page.
    assert page.locator("details[data-chart-numbers][open]").count() == 0
    return [chart["key"] for chart in charts]


def download(page, testid: str) -> list[dict]:
    with page.expect_download() as info:
        page.click(f"[data-testid={testid}]")
    path = info.value.path()
    with open(path, encoding="utf-8") as handle:
        return list(csv.DictReader(io.StringIO(handle.read())))


def test_marketing_user_reads_the_dashboard(site):
    url = site
    problems = []
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900},
                                      accept_downloads=True)

        def watched(page):
            # Script errors and CSP refusals; not the favicon's 404 or the bad range's 400.
            page.on("console", lambda message: message.type == "error" and not message.text
                    .startswith("Failed to load resource") and problems.append(message.text))
            page.on("pageerror", lambda error: problems.append(str(error)))
            return page

        page = watched(context.new_page())
        sign_in(page, url, "marketing@demo.example", PASSWORD)
        page.wait_for_url(f"{url}/marketing")

        # 90 days: every chart is drawn from the seeded data.
        page.click("[data-testid=preset-90]")
        page.wait_for_url(f"{url}/marketing?range=90")
        keys = assert_charts_drawn(page)
        assert {"daily", "revenue-usd", "funnel", "top-purchases", "top-revenue-usd", "hosts",
                "channels"} <= set(keys)
        quarter = figures(page)
        assert number(quarter["stat-clicks"]) > 0 and number(quarter["usd-purchases"]) > 0
        screenshot(page, "dashboard-90-days")

        # 7 days: other numbers. The demo's clicks are 3 to 59 days old.
        page.click("[data-testid=preset-7]")
        page.wait_for_url(f"{url}/marketing?range=7")
        assert page.get_attribute("[data-testid=preset-7]", "aria-current") == "page"
        week = figures(page)
        assert number(week["stat-clicks"]) < number(quarter["stat-clicks"])
        assert week != quarter
        assert page.locator("[data-testid=daily] tbody tr").count() == 7
        screenshot(page, "dashboard-7-days")

        # The CSVs hold the page's totals.
        rows = download(page, "csv-currencies")
        usd, = (row for row in rows if row["currency"] == "USD")
        assert int(usd["purchases"]) == number(week["usd-purchases"])
        assert int(usd["new_customers"]) == number(week["usd-new-customers"])
        for key in ("revenue", "refunded", "net_revenue", "reward_cost"):
            assert int(Decimal(usd[key]) * 100) == minor(week[f"usd-{key.replace('_', '-')}"])
        daily = download(page, "csv-daily")
        assert len(daily) == 7
        assert sum(int(row["clicks"]) for row in daily) == number(week["stat-clicks"])
        assert sum(int(row["purchases"]) for row in daily) == number(week["stat-purchases"])

        # A custom range through the form, and the numbers behind a chart.
        # (The demo's latest purchases are today's.)
        page.goto(f"{url}/marketing?range=90")
        today = page.input_value("#f-end")
        page.fill("#f-start", today)
        page.click("[data-testid=custom-form] button[type=submit]")
        page.wait_for_url(f"{url}/marketing?range=custom&start={today}&end={today}")
        assert page.locator("[data-testid=daily] tbody tr").count() == 1
        assert number(page.inner_text("[data-testid=stat-purchases]")) > 0
        page.goto(f"{url}/marketing?range=30")
        assert_charts_drawn(page)
        page.click("[data-testid=numbers-funnel] summary")
        assert page.locator("[data-testid=funnel]").is_visible()
        screenshot(page, "dashboard-30-days-funnel-numbers")

        # A bad range is refused with its reason.
        response = page.goto(f"{url}/marketing?range=13")
        assert response.status == 400
        assert "The range must be 7, 30 or 90 days" in page.inner_text("[data-testid=scope-error]")
        screenshot(page, "dashboard-bad-range")

        # A phone-sized screen.
        phone = watched(context.new_page())
        phone.set_viewport_size({"width": 390, "height": 844})
        phone.goto(f"{url}/marketing?range=90")
        assert_charts_drawn(phone)
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, width
        screenshot(phone, "dashboard-phone")
        context.close()

    assert problems == [], problems
