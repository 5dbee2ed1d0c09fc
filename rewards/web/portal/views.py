"""The portal's home (link, code, QR, share buttons, counts, rewards, balances)."""

from urllib.parse import quote

from flask import Response, render_template
from flask_login import current_user
from sqlalchemy import select

from rewards.analytics.stats import customer_counts
from rewards.extensions import db
from rewards.models import Balance, Referral, Reward
from rewards.payouts.methods import LABELS as METHOD_LABELS
from rewards.people.codes import primary_code, qr_svg, referral_url
from rewards.web.portal import bp


def _share_links(url: str, program_name: str) -> list[tuple[str, str, str]]:
    """(channel, label, href). Each link tags the channel so clicks show where they came from."""
    text = f"Join me at {program_name}: "

    def tagged(channel: str) -> str:
        return quote(f"{url}?s={channel}", safe="")

    return [
        ("email", "Email",
         f"mailto:?subject={quote(f'An invitation to {program_name}')}"
         f"&body={quote(text)}{tagged('email')}"),
        ("x", "X", f"https://twitter.com/intent/tweet?text={quote(text)}&url={tagged('x')}"),
        ("whatsapp", "WhatsApp", f"https://wa.me/?text={quote(text)}{tagged('whatsapp')}"),
        ("linkedin", "LinkedIn",
         f"https://www.linkedin.com/sharing/share-offsite/?url={tagged('linkedin')}"),
    ]


def _my_link() -> tuple[str, str]:
    code = primary_code(current_user.customer)
    return code.code, referral_url(code.code)


@bp.get("")
def home():
    customer = current_user.customer
    code, url = _my_link()
    friends = db.session.scalars(
        select(Referral).filter_by(referrer_id=customer.id)
        .order_by(Referral.created_at.desc()).limit(20)
    ).all()
    rewards = db.session.scalars(
        select(Reward).filter_by(customer_id=customer.id)
        .order_by(Reward.created_at.desc(), Reward.id.desc()).limit(50)
    ).all()
    balances = db.session.scalars(
        select(Balance).filter_by(customer_id=customer.id).order_by(Balance.currency)
    ).all()
    return render_template(
        "portal/home.html",
        customer=customer,
        rewards=rewards,
        balances=balances,
        code=code,
        url=url,
        counts=customer_counts(customer),
        shares=_share_links(url, customer.program.name),
        friends=friends,
        method_labels=METHOD_LABELS,
    )


@bp.get("/qr.svg")
def qr():
    _, url = _my_link()
    response = Response(qr_svg(f"{url}?s=qr"), mimetype="image/svg+xml")
    response.headers["Cache-Control"] = "private, max-age=3600"
    return response
