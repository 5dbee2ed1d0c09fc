"""Replaying a draft policy over recent purchases, writing nothing."""

import json

from flask import abort, render_template
from flask_wtf import FlaskForm
from wtforms import IntegerField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange

from rewards.errors import ServiceError
from rewards.extensions import db
from rewards.models import Program
from rewards.policies.replay import simulate
from rewards.policies.versions import InvalidPolicy, current_version
from rewards.web.admin import bp

MAX_DOCUMENT = 20_000  # characters; a policy document is a few hundred


class SimulateForm(FlaskForm):
    document = TextAreaField(
        "Draft policy (JSON)", validators=[DataRequired(), Length(max=MAX_DOCUMENT)],
        description="The whole document, as it would be published. Nothing is saved.",
    )
    days = IntegerField("Replay the last", default=30,
                        validators=[InputRequired(), NumberRange(1, 365)],
                        description="Days of purchases, 1 to 365.")


def starter_document(program: Program) -> dict:
    """What the editor starts from when nothing is published yet."""
    return {
        "currency": program.currency,
        "hold_days": 30,
        "purchases": "first",
        "referrer": {"percent_bps": 1000, "cap": 5000},
        "friend": {"fixed": 500},
    }


@bp.route("/programs/<int:program_id>/simulate", methods=["GET", "POST"],
          endpoint="simulate")
def simulate_page(program_id: int):
    program = db.session.get(Program, program_id) or abort(404)
    version = current_version(program.id)
    form = SimulateForm()
    if not form.is_submitted():
        document = json.loads(version.document) if version else starter_document(program)
        form.document.data = json.dumps(document, indent=2)
    result = None
    policy_errors: list[str] = []
    if form.validate_on_submit():
        try:
            document = json.loads(form.document.data)
        except ValueError as error:
            form.document.errors.append(f"This is not JSON: {error}.")
        else:
            try:
                result = simulate(program, document, form.days.data)
            except InvalidPolicy as invalid:
                policy_errors = invalid.errors
            except ServiceError as error:
                getattr(form, error.field or "document", form.document).errors.append(
                    error.message)
    status = 422 if form.errors or policy_errors else 200
    return render_template("admin/simulate.html", program=program, form=form, result=result,
                           policy_errors=policy_errors, version=version), status
