from flask import render_template, request

from ..services.stats import program_summary, top_referrers
from . import bp

RANGES = (7, 30, 90)


@bp.get("")
def home():
    days = request.args.get("days", type=int)
    days = days if days in RANGES else 30
    return render_template("marketing/home.html", summary=program_summary(days),
                           ranges=RANGES, top=top_referrers(10))
