from flask import Blueprint

bp = Blueprint("public", __name__)

from rewards.web.public import views  # noqa: E402,F401
