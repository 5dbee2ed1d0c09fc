"""Helpers shared by the coordinator views: the signed-in account, safe returns, and
turning each service outcome into a message."""

from flask import flash, redirect, request, url_for
from flask_login import current_user

from rewards.errors import ServiceError
from rewards.extensions import db
from rewards.models import Account
from rewards.urls import is_local_path


def me() -> Account:
    return current_user._get_current_object()


def back_to(default: str):
    """Redirect to the form's `back` (a coordinator page), else to `default`."""
    target = request.form.get("back") or ""
    if is_local_path(target) and target.startswith("/coordinator"):
        return redirect(target)
    return redirect(default)


def queue_url() -> str:
    return url_for("coordinator.payouts")


def attempt(action, *args) -> tuple[object | None, ServiceError | None]:
    """Run one service action; a refusal rolls back and is returned, not raised."""
    try:
        return action(*args), None
    except ServiceError as error:
        db.session.rollback()
        return None, error


def filters_from_query(kind):
    """`kind.from_args(request.args)`, each value it had to drop said in a message."""
    filters = kind.from_args(request.args)
    for message in filters.errors:
        flash(message, "error")
    return filters
