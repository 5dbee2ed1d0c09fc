"""The unmatched sales inbox: purchases no rule tied to a referrer, with suggestions, and
attribution by hand (a suggested referrer, or one keyed in by code or name)."""

from flask import flash, redirect, render_template, request, url_for
from sqlalchemy import select

from rewards.attribution import unmatched as inbox
from rewards.errors import NotFound
from rewards.extensions import db
from rewards.models import Conversion, Customer, Program
from rewards.web.coordinator import bp
from rewards.web.coordinator.common import attempt, me


@bp.get("/unmatched")
def unmatched():
    program_id = request.args.get("program", type=int)
    rows = [(c, inbox.suggestions(c)) for c in inbox.unmatched(program_id)]
    programs = db.session.scalars(select(Program).order_by(Program.id)).all()
    return render_template("coordinator/unmatched.html", rows=rows, programs=programs,
                           program_id=program_id, total=inbox.count_unmatched(program_id))


def _referrer(conversion: Conversion) -> Customer:
    """The suggested referrer picked (`referrer_id`), else the one keyed in (`referrer`)."""
    picked = request.form.get("referrer_id", "")
    if picked.isdigit():
        return db.session.get(Customer, int(picked)) or _missing()
    program = db.session.get(Program, conversion.program_id)
    return inbox.find_referrer(program, request.form.get("referrer", ""))


def _missing():
    raise NotFound("That customer no longer exists.")


def _attribute(conversion_id: int) -> Conversion:
    conversion = db.session.get(Conversion, conversion_id)
    if conversion is None:
        raise NotFound(f"No purchase #{conversion_id}.")
    return inbox.attribute_by_hand(conversion_id, referrer=_referrer(conversion),
                                   note=request.form.get("note", ""), account=me())


@bp.post("/unmatched/<int:conversion_id>/attribute")
def unmatched_attribute(conversion_id: int):
    conversion, error = attempt(_attribute, conversion_id)
    if error:
        flash(error.message, "error")
    else:
        referrer = db.session.get(Customer, conversion.referrer_id)
        flash(f"Purchase {conversion.order_id} is now attributed to "
              f"{referrer.name or referrer.external_id or f'customer #{referrer.id}'}; "
              "its rewards follow.", "success")
    return redirect(url_for("coordinator.unmatched",
                            program=request.args.get("program", type=int)))

