"""Signing in and out, and a customer's own signup."""

from flask import Blueprint

bp = Blueprint("auth", __name__)

from rewards.web.auth import views  # noqa: E402,F401
