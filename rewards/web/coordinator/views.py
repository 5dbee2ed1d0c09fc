"""The coordinator's home: what waits on them."""

from flask import render_template

from rewards.analytics.stats import recent_conversions
from rewards.payouts.queue import home_counts
from rewards.web.coordinator import bp


@bp.get("")
def home():
    return render_template("coordinator/home.html", counts=home_counts(),
                           conversions=recent_conversions(30))
