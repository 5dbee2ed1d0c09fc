from flask import abort, current_app, flash, redirect, render_template, request, url_for

from rewards.attribution.signups import register_customer
from rewards.errors import ServiceError
from rewards.extensions import db, limiter
from rewards.models import Customer, Program, ReferralCode
from rewards.people.codes import default_destination
from rewards.people.programs import default_program
from rewards.web.auth.views import REGISTERED
from rewards.web.public import bp
from rewards.web.public.forms import CodeForm, FriendSignupForm
from rewards.web.public.referral import referral_answer
from rewards.web.visitor import read_visitor_id


@bp.get("/")
def home():
    return render_template("public/home.html", program=default_program(), form=CodeForm())


@bp.get("/go")
def go():
    """Where the 'I have a code' form lands: off to the code's link."""
    form = CodeForm(request.args)
    if not form.validate():
        flash("Type the referral code you were given.", "error")
        return redirect(url_for("public.home"))
    return redirect(url_for("public.follow", code=form.code.data.strip()))


@bp.get("/r/<code>")
def follow(code: str):
    """The referral redirect, when RedirectLane (redirect.py) hands the request on."""
    answer = referral_answer(current_app._get_current_object(), request.environ, code)
    if answer is None:
        return redirect(default_destination() or url_for("public.home"))
    response = redirect(answer.location)
    response.headers.extend(answer.headers)
    return response


def _code_or_404(code: str) -> tuple[ReferralCode, Program, Customer]:
    row = db.session.scalar(
        db.select(ReferralCode).filter_by(code_key=code.lower(), active=True)
    )
    if row is None:
        abort(404)
    return row, row.program, row.customer


@bp.route("/join/<code>", methods=["GET", "POST"])
@limiter.limit("20 per hour", methods=["POST"])
def landing(code: str):
    """The friend's landing page: who invited them, the offer, and a signup form."""
    referral_code, program, referrer = _code_or_404(code)
    form = FriendSignupForm()
    if form.validate_on_submit():
        from rewards.attribution.clicks import hash_ip

        visitor_id = read_visitor_id(request)
        try:
            # The click is the better evidence; the code stands in when there was none.
            register_customer(program, email=form.email.data, password=form.password.data,
                              name=form.name.data, visitor_id=visitor_id,
                              referral_code=None if visitor_id else referral_code.code,
                              ip_hash=hash_ip(request.remote_addr))
        except ServiceError as error:
            form.password.errors.append(error.message)
        else:
            flash(REGISTERED, "success")
            return redirect(url_for("auth.login"))
    status = 422 if form.errors else 200
    return render_template("public/landing.html", form=form, program=program,
                           referrer=referrer, code=referral_code), status
