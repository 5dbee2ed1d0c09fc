"""Sign-in (rate-limited), sign-out, and a customer's signup; where each role lands."""

from flask import current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from rewards.attribution.clicks import hash_ip, new_visitor_id
from rewards.attribution.signups import register_customer
from rewards.errors import ServiceError
from rewards.extensions import db, limiter, login_manager
from rewards.fraud.signals import remember_browser
from rewards.models import Account
from rewards.people.accounts import authenticate
from rewards.people.programs import default_program, get_program
from rewards.urls import is_local_path
from rewards.web.auth import bp
from rewards.web.auth.forms import LoginForm, LogoutForm, SignupForm
from rewards.web.visitor import read_visitor_id, set_visitor_cookie

HOMES = {
    "admin": "admin.home",
    "coordinator": "coordinator.home",
    "marketing": "marketing.home",
    "customer": "portal.home",
}
REGISTERED = "Your account is ready if this email was new. Sign in to see your referral link."


@login_manager.user_loader
def load_account(account_id: str):
    return db.session.get(Account, int(account_id)) if account_id.isdigit() else None


login_manager.login_view = "auth.login"
login_manager.login_message = "Sign in to continue."
login_manager.session_protection = "basic"


def home_for(account: Account) -> str:
    return url_for(HOMES[account.role])


def _login_email_key() -> str:
    return "login-email:" + (request.form.get("email") or "").strip().lower()


def _failed(response) -> bool:
    return response.status_code == 401


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT"], methods=["POST"], deduct_when=_failed)
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT"], methods=["POST"],
               deduct_when=_failed, key_func=_login_email_key)
def login():
    target = request.values.get("next")
    form = LoginForm()
    if form.validate_on_submit():
        account = authenticate(form.email.data, form.password.data)
        if account is not None:
            session.clear()  # a fresh session on login: no fixation
            login_user(account)
            session["customer_id"] = account.customer_id
            response = redirect(target if is_local_path(target) else home_for(account))
            if account.customer_id is not None:
                _remember_browser(account.customer_id, response)
            return response
        flash("Email or password is incorrect.", "error")
        return render_template("auth/login.html", form=form, next=target), 401
    if current_user.is_authenticated and request.method == "GET":
        return redirect(home_for(current_user))
    return render_template("auth/login.html", form=form, next=target)


def _remember_browser(customer_id: int, response) -> None:
    """Note the browser (and network) a customer signs in from, so that a 'friend' signing
    up from them is flagged; a browser without a visitor id gets one."""
    visitor_id = read_visitor_id(request)
    if visitor_id is None:
        visitor_id = new_visitor_id()
        program = default_program()
        set_visitor_cookie(response, visitor_id, program.window_days if program else 30)
    remember_browser(customer_id, visitor_id, hash_ip(request.remote_addr))


@bp.post("/logout")
@login_required
def logout():
    if LogoutForm().validate_on_submit():
        logout_user()
        session.clear()
        flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/signup", methods=["GET", "POST"])
@limiter.limit("20 per hour", methods=["POST"])
def signup():
    form = SignupForm()
    if form.validate_on_submit():
        try:
            register_customer(get_program(None), email=form.email.data,
                              password=form.password.data, name=form.name.data)
        except ServiceError as error:
            form.password.errors.append(error.message)
            return render_template("auth/signup.html", form=form), 422
        flash(REGISTERED, "success")
        return redirect(url_for("auth.login"))
    status = 422 if form.errors else 200
    return render_template("auth/signup.html", form=form), status
