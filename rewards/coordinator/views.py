from flask import render_template

from ..services.stats import recent_conversions
from . import bp


@bp.get("")
def home():
    return render_template("coordinator/home.html", conversions=recent_conversions(30))
