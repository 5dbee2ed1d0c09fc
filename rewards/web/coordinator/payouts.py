"""The payout queue, one payout's evidence, the actions on them, and the payouts CSV."""

from flask import abort, flash, render_template, request, url_for

from rewards.audit.log import record_download
from rewards.extensions import db
from rewards.fraud import signals as fraud
from rewards.models import PAYOUT_METHODS, Program, utcnow
from rewards.payouts import evidence as payout_evidence
from rewards.payouts import proposals
from rewards.payouts import queue as payout_queue
from rewards.payouts.export import EXPORT_HEADER, export_rows
from rewards.payouts.queue import STATUS_CHOICES, QueueFilters
from rewards.web.coordinator import actions, bp
from rewards.web.coordinator.common import attempt, back_to, filters_from_query, me, queue_url
from rewards.web.downloads import csv_response


@bp.get("/payouts")
def payouts():
    filters = filters_from_query(QueueFilters)
    page = payout_queue.queue(filters, request.args.get("page", 1, type=int))
    return render_template("coordinator/payouts.html", filters=filters, result=page,
                           programs=payout_queue.programs(), statuses=STATUS_CHOICES,
                           methods=PAYOUT_METHODS, row_reasons=payout_queue.ROW_REASONS,
                           here=request.full_path.rstrip("?"))


@bp.get("/payouts.csv")
def payouts_csv():
    filters = QueueFilters.from_args(request.args)
    name = f"payouts-{utcnow():%Y%m%d-%H%M%S}.csv"
    record_download(me(), "payouts.csv", request.query_string.decode())
    return csv_response(name, EXPORT_HEADER, lambda: export_rows(filters))


def _selected_ids() -> list[int]:
    ids = []
    for value in request.form.getlist("payout_id"):
        if value.isdigit() and int(value) not in ids:
            ids.append(int(value))
    return ids


@bp.post("/payouts/batch")
def payouts_batch():
    ids = _selected_ids()
    action = request.form.get("action")
    if action not in ("approve", "reject"):
        flash("Choose Approve selected or Reject selected.", "error")
    elif not ids:
        flash("Select at least one payout first.", "error")
    for payout_id in ids if action in ("approve", "reject") else []:
        if action == "approve":
            outcome = actions.approve(payout_id)
        else:
            outcome = actions.reject(payout_id, request.form.get("reason", ""),
                                     request.form.get("rewards_to", ""))
        flash(outcome.message, outcome.category)
        if outcome.bad_input:
            break
    return back_to(queue_url())


@bp.get("/payouts/<int:payout_id>")
def payout(payout_id: int):
    found = payout_evidence.detail(payout_id) or abort(404)
    return render_template("coordinator/payout.html", d=found, me=me(),
                           kinds=fraud.KIND_NAMES, here=request.full_path.rstrip("?"))


def _told(outcome, payout_id: int):
    """Say how the action went, and go back to where it was asked from (else the payout)."""
    flash(outcome.message, outcome.category)
    return back_to(url_for("coordinator.payout", payout_id=payout_id))


@bp.post("/payouts/<int:payout_id>/approve")
def payout_approve(payout_id: int):
    return _told(actions.approve(payout_id), payout_id)


@bp.post("/payouts/<int:payout_id>/reject")
def payout_reject(payout_id: int):
    return _told(actions.reject(payout_id, request.form.get("reason", ""),
                                request.form.get("rewards_to", "")), payout_id)


@bp.post("/payouts/<int:payout_id>/retry")
def payout_retry(payout_id: int):
    return _told(actions.retry(payout_id), payout_id)


@bp.post("/payouts/<int:payout_id>/mark-paid")
def payout_mark_paid(payout_id: int):
    return _told(actions.mark_paid(payout_id, request.form.get("reference", "")), payout_id)


@bp.post("/programs/<int:program_id>/propose")
def propose(program_id: int):
    program = db.session.get(Program, program_id) or abort(404)
    made, error = attempt(lambda: proposals.propose(program, account=me()))
    if error:
        flash(error.message, "error")
    elif made:
        count = len(made)
        flash(f"Proposed {count} payout{'s' if count != 1 else ''} for {program.name}: "
              f"{', '.join(f'#{p.id}' for p in made)}.", "success")
    else:
        flash(f"No new payouts for {program.name}: nobody has available rewards above the "
              "minimum without a payout already waiting.", "info")
    return back_to(queue_url())
