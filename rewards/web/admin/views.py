"""The admin's home, programs and customers (vanity codes)."""

from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, or_, select

from rewards.analytics.stats import program_summary
from rewards.errors import ServiceError
from rewards.extensions import db
from rewards.models import ApiKey, Customer, Program, ReferralCode
from rewards.people.codes import set_vanity_code
from rewards.people.programs import EDITABLE, update_program
from rewards.web.admin import bp
from rewards.web.admin.forms import ProgramForm, VanityCodeForm, to_major

PAGE = 50


@bp.get("")
def home():
    programs = db.session.scalars(select(Program).order_by(Program.id)).all()
    keys = db.session.scalars(select(ApiKey).order_by(ApiKey.created_at.desc())).all()
    customers = db.session.scalar(select(func.count(Customer.id)))
    return render_template("admin/home.html", programs=programs, keys=keys,
                           customers=customers, summary=program_summary(30))


@bp.route("/programs/<int:program_id>", methods=["GET", "POST"])
def program(program_id: int):
    program = db.session.get(Program, program_id) or abort(404)
    current = {name: getattr(program, name) for name in EDITABLE} | {
        "payout_minimum": to_major(program.payout_minimum, program.currency),
        "second_approval_above": to_major(program.second_approval_above, program.currency),
    }
    form = ProgramForm(data=current, currency=program.currency)
    if form.validate_on_submit():
        values = {name: form[name].data for name in EDITABLE} | form.payout_amounts()
        try:
            update_program(program, account=current_user._get_current_object(), **values)
        except ServiceError as error:
            db.session.rollback()
            form[error.field if error.field in form else "name"].errors.append(error.message)
        else:
            flash(f"Saved {program.name}.", "success")
            return redirect(url_for("admin.program", program_id=program.id))
    status = 422 if form.errors else 200
    return render_template("admin/program.html", program=program, form=form), status


@bp.get("/customers")
def customers():
    query = (request.args.get("q") or "").strip()
    stmt = select(Customer).order_by(Customer.created_at.desc()).limit(PAGE)
    if query:
        like = f"%{query.lower()}%"
        stmt = stmt.where(or_(Customer.email.like(like), func.lower(Customer.name).like(like),
                              Customer.external_id == query))
    rows = db.session.scalars(stmt).all()
    codes = {
        code.customer_id: code.code
        for code in db.session.scalars(
            select(ReferralCode).where(ReferralCode.customer_id.in_([c.id for c in rows]),
                                       ReferralCode.is_primary.is_(True))
        )
    }
    return render_template("admin/customers.html", customers=rows, codes=codes, q=query,
                           form=VanityCodeForm())


@bp.post("/customers/<int:customer_id>/code")
def vanity_code(customer_id: int):
    customer = db.session.get(Customer, customer_id) or abort(404)
    form = VanityCodeForm()
    if not form.validate_on_submit():
        flash("Give a code of 3 to 32 characters.", "error")
    else:
        try:
            row = set_vanity_code(customer, form.code.data)
        except ServiceError as error:
            flash(error.message, "error")
        else:
            flash(f"Customer #{customer.id} now shares the code {row.code}.", "success")
    return redirect(url_for("admin.customers", q=request.args.get("q") or None))
