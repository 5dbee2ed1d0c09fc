"""Reward policy pages: the draft editor, preview, publishing and version history."""

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from werkzeug.routing import BuildError

from rewards.errors import ServiceError
from rewards.extensions import db
from rewards.models import Program
from rewards.money import major_units
from rewards.policies import drafts
from rewards.policies.versions import InvalidPolicy, current_version, history
from rewards.web.admin import bp
from rewards.web.admin.forms import PolicyDraftForm, PolicyPreviewForm

ACTIONS = ("save", "publish", "preview")


def _program(program_id: int) -> Program:
    return db.session.get(Program, program_id) or abort(404)


def _simulate_url(program_id: int) -> str:
    """The replay endpoint (rewards/admin/simulate.py), by its path until it exists."""
    try:
        return url_for("admin.simulate", program_id=program_id)
    except BuildError:
        return f"/admin/programs/{program_id}/simulate"


def _problems(count: int) -> str:
    return f"{count} problem{'' if count == 1 else 's'}"


@bp.route("/programs/<int:program_id>/policy", methods=["GET", "POST"])
def policy(program_id: int):
    program = _program(program_id)
    saved = drafts.get_draft(program)
    form = PolicyDraftForm(document=saved.text)
    example = major_units(drafts.EXAMPLE_AMOUNT, program.currency)
    preview_form = PolicyPreviewForm(amount=example)
    preview_form.amount.description = f"In {program.currency.upper()}, like {example}."
    status, errors, result = 200, None, None

    if request.method == "POST":
        action = request.form.get("action")
        if action not in ACTIONS:
            abort(400)
        account = current_user._get_current_object()
        text = form.document.data or ""
        if not form.validate():
            status, errors = 422, [f"policy: {message}" for message in form.document.errors]
        elif action == "save":
            problems = drafts.save_draft(program, text, account)
            if problems:
                flash(f"Draft saved, with {_problems(len(problems))} to fix before "
                      "publishing.", "info")
            else:
                flash("Draft saved. It is valid and ready to publish.", "success")
            return redirect(url_for("admin.policy", program_id=program.id))
        elif action == "publish":
            try:
                version = drafts.publish_draft(program, text, account)
            except InvalidPolicy as invalid:
                db.session.rollback()
                status, errors = 422, invalid.errors
                flash(f"Nothing was published: the draft has {_problems(len(errors))}. "
                      "It was saved as it is.", "error")
            except drafts.Unchanged as unchanged:
                flash(unchanged.message, "info")
                return redirect(url_for("admin.policy", program_id=program.id))
            except ServiceError as error:
                db.session.rollback()
                status = error.status
                flash(error.message, "error")
            else:
                flash(f"Published version {version.version}.", "success")
                return redirect(url_for("admin.policy", program_id=program.id))
        else:
            status, errors, result = _preview(program, text, preview_form)

    text = form.document.data or ""
    cautions = []
    if errors is None:
        errors, cautions = drafts.review(program, text)
    saved = drafts.get_draft(program)
    current = current_version(program.id)
    return render_template(
        "admin/policy.html",
        program=program,
        form=form,
        preview_form=preview_form,
        text=text,
        saved=saved,
        unsaved=request.method == "POST" and drafts.clean(text) != saved.text,
        problems=[drafts.split_error(message) for message in errors],
        cautions=[drafts.split_error(message) for message in cautions],
        current=current,
        current_text=drafts.pretty_version(current) if current else "",
        same_as_current=drafts.matches_version(program, text, current),
        next_number=(current.version if current else 0) + 1,
        result=result,
        simulate_url=_simulate_url(program.id),
    ), status


def _preview(program: Program, text: str, form: PolicyPreviewForm):
    """(status, errors or None, Preview or None) for the preview button."""
    valid = form.validate()
    try:
        amount = drafts.parse_amount(form.amount.data, program.currency)
    except ServiceError as error:
        amount = None
        if not form.amount.errors:
            form.amount.errors.append(error.message)
    if not valid or amount is None:
        return 422, None, None
    try:
        result = drafts.preview(program, text, amount, form.purchase.data == "first",
                                form.rewarded_friends.data)
    except InvalidPolicy as invalid:
        form.form_errors.append("Fix the draft's problems to preview it.")
        return 422, invalid.errors, None
    except ServiceError as error:
        (getattr(form, error.field).errors if error.field in form else form.form_errors).append(
            error.message)
        return 422, None, None
    return 200, None, result


@bp.get("/programs/<int:program_id>/policy/versions")
def policy_versions(program_id: int):
    program = _program(program_id)
    versions = [(version, drafts.pretty_version(version)) for version in history(program.id)]
    return render_template("admin/policy_versions.html", program=program, versions=versions)
