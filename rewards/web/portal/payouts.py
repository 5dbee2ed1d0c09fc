"""How the customer gets paid, and their payouts so far."""

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from rewards.errors import ServiceError
from rewards.models import PAYOUT_METHODS
from rewards.payouts import methods as payout_methods
from rewards.web.portal import bp

RETURN_NOTES = {
    "return": ("Thanks. Stripe is checking your details; this page says \"ready\" once "
               "Stripe confirms your account can receive money."),
    "return-other": ("Thanks. Stripe is checking your details. Once this page says "
                     "\"ready\", choose Stripe Connect to be paid through it."),
    "refresh": ("The Stripe setup link expired. Press \"Continue Stripe setup\" to get a "
                "fresh one."),
}
CHOSEN = {
    "connect": "From now on you are paid through Stripe Connect.",
    "store_credit": "From now on your rewards are paid as store credit.",
    "manual": "From now on the business pays you directly.",
}


def _customer():
    return current_user.customer


def _note(customer, stripe: str) -> str | None:
    """What to say when Stripe sends the customer back (?stripe=return or refresh)."""
    if stripe == "return" and customer.payout_method != "connect":
        stripe = "return-other"
    return RETURN_NOTES.get(stripe)


@bp.get("/payouts")
def payouts():
    customer = _customer()
    rows = payout_methods.history(customer)
    return render_template(
        "portal/payouts.html",
        customer=customer,
        options=payout_methods.options(customer),
        labels=payout_methods.LABELS,
        payouts=[(row, payout_methods.plain_failure(row)) for row in rows],
        note=_note(customer, request.args.get("stripe", "")),
    )


@bp.post("/payouts/method")
def choose_payout_method():
    method = request.form.get("method", "")
    if method not in PAYOUT_METHODS:
        abort(400)
    try:
        payout_methods.choose_method(_customer(), method)
    except ServiceError as error:
        flash(error.message, "error")
    else:
        flash(CHOSEN[method], "success")
    return redirect(url_for("portal.payouts"))


@bp.post("/payouts/connect")
def connect_onboarding():
    try:
        url = payout_methods.start_connect_onboarding(_customer())
    except ServiceError as error:
        flash(error.message, "error")
        return redirect(url_for("portal.payouts"))
    return redirect(url, code=303)
