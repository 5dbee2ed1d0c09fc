"""The marketing dashboard: the figures of `services.dashboard.report` as tables and charts.

The view parses the selection, brings the rollups up to date and renders; everything the
page shows comes from the report. Charts are drawn by app.js (with the vendored Chart.js)
from a JSON data block holding the same numbers as the tables next to them.
"""

from flask import render_template, request

from rewards.analytics.dashboard import report
from rewards.analytics.rollups import refresh
from rewards.money import exponent
from rewards.web.marketing import bp
from rewards.web.marketing.ranges import PRESETS, BadScope, parse, programs

# The unique-visitor estimate is exact (or nearly) below this; above it the page says "about".
EXACT_VISITORS_BELOW = 250
CHANNELS = {"email": "Email", "x": "X", "whatsapp": "WhatsApp", "linkedin": "LinkedIn",
            "qr": "QR code", "copy": "Copied link", "": "No channel"}


def host_label(host: str | None) -> str:
    """A referring host as people read it: '' had none, None is the rest summed."""
    if host is None:
        return "Other hosts"
    return host or "Direct / unknown"


def channel_label(channel: str) -> str:
    return CHANNELS.get(channel, channel)


def change(now: float | None, before: float | None, *, rate: bool = False
           ) -> tuple[str, str] | None:
    """How a top card's figure moved since the previous period, as ("up", "down" or "same",
    the words): a percentage for counts, percentage points for rates. None when there is
    nothing to compare (a rate with no base on either side)."""
    if now is None or before is None:
        return None
    if rate:
        points = round((now - before) * 100, 1)
        return ("same", "no change") if not points else (
            "up" if points > 0 else "down", f"{points:+.1f} pts")
    if now == before:
        return "same", "no change"
    if not before:
        return "up", "new"
    percent = (now - before) / before * 100
    shown = f"{percent:+.1f}%" if abs(percent) < 10 else f"{percent:+.0f}%"
    return ("up" if now > before else "down"), shown


@bp.get("")
def home():
    try:
        selection = parse(request.args)
    except BadScope as error:
        form = {key: (request.args.get(key) or "").strip()
                for key in ("program", "range", "start", "end")}
        return render_template("marketing/dashboard.html", error=str(error), selection=None,
                               form=form, programs=programs(), presets=PRESETS), 400
    refresh()
    figures = report(selection.scope)
    scope = selection.scope
    form = {"program": selection.program.slug if selection.program else "",
            "range": str(selection.preset) if selection.preset else "custom",
            "start": scope.start.isoformat(), "end": scope.end.isoformat()}
    return render_template("marketing/dashboard.html", error=None, selection=selection,
                           form=form, programs=programs(), presets=PRESETS, report=figures,
                           charts=chart_data(figures),
                           exact_visitors_below=EXACT_VISITORS_BELOW, change=change,
                           host_label=host_label, channel_label=channel_label)


def _money(currency: str) -> dict:
    return {"currency": currency, "exponent": exponent(currency)}


def _bars(labels: list[str], label: str, values: list[int], **extra) -> dict:
    return {"type": "bar", "horizontal": True, "labels": labels,
            "datasets": [{"label": label, "data": values}], **extra}


def chart_data(figures: dict) -> dict:
    """Each chart's labels and numbers, keyed by the `data-chart` of its canvas. Amounts
    stay in minor units of one currency per chart; app.js formats them."""
    series = figures["series"]
    labels = [point["day"].isoformat() for point in series]
    charts = {
        "daily": {"type": "line", "labels": labels, "dates": True, "datasets": [
            {"label": "Clicks", "data": [p["clicks"] for p in series]},
            {"label": "Referred signups", "data": [p["referred_signups"] for p in series]},
            {"label": "Purchases", "data": [p["purchases"] for p in series]},
        ]},
        "funnel": _bars([step for step, _ in figures["funnel"]], "People",
                        [n for _, n in figures["funnel"]]),
        "top-purchases": _bars([r["name"] for r in figures["top"]["by_purchases"]],
                               "Purchases",
                               [r["purchases"] for r in figures["top"]["by_purchases"]]),
        "hosts": _bars([host_label(r["host"]) for r in figures["sources"]["hosts"]], "Clicks",
                       [r["clicks"] for r in figures["sources"]["hosts"]]),
        "channels": _bars([channel_label(r["channel"]) for r in figures["sources"]["channels"]],
                          "Clicks", [r["clicks"] for r in figures["sources"]["channels"]]),
    }
    for row in figures["currencies"]:
        currency = row["currency"]
        charts[f"revenue-{currency}"] = {
            "type": "bar", "labels": labels, "dates": True, "money": _money(currency),
            "datasets": [{"label": f"Net revenue ({currency.upper()})",
                          "data": [p["revenue"].get(currency, 0) for p in series]}]}
    for currency, rows in figures["top"]["by_revenue"].items():
        charts[f"top-revenue-{currency}"] = _bars(
            [r["name"] for r in rows], f"Net revenue ({currency.upper()})",
            [r["revenue"] for r in rows], money=_money(currency))
    return charts
