from flask import render_template

from ..services.payout_queue import home_counts
from ..services.stats import recent_conversions
from . import bp


@bp.get("")
def home():
    return render_template("coordinator/home.html", counts=home_counts(),
                           conversions=recent_conversions(30))
