"""The demo program that `flask rewards seed-demo` (and so `make run`) sets up."""

import random
from datetime import timedelta

import shortuuid
from sqlalchemy import select

from rewards.attribution.clicks import hash_ip, insert_clicks
from rewards.attribution.purchases import NewConversion, record_conversion, request_hash
from rewards.attribution.signups import attribute_signup
from rewards.extensions import db
from rewards.ledger.holds import release_due
from rewards.models import Account, Program, utcnow
from rewards.payouts.proposals import propose
from rewards.people.accounts import create_account
from rewards.people.codes import primary_code
from rewards.people.customers import find_or_add_customer
from rewards.people.programs import create_program
from rewards.policies.versions import publish

PASSWORD = "tulip-harbor-42"  # noqa: S105 - the demo's published password
LOGINS = [
    ("admin@demo.example", "admin", "Ada Admin"),
    ("coordinator@demo.example", "coordinator", "Cora Coordinator"),
    ("marketing@demo.example", "marketing", "Max Marketing"),
    ("maria@demo.example", "customer", "Maria Lopez"),
    ("tom@demo.example", "customer", "Tom Becker"),
]
FRIENDS = """Ana Silva, Ben Okafor, Chloe Martin, Dev Patel, Elena Rossi, Farah Haddad,
Gus Lindqvist, Hana Sato, Ivan Petrov, Jade Wong, Kofi Mensah, Lena Fischer, Mateo Cruz,
Nora Byrne, Omar Aziz, Priya Nair, Quinn Hale, Rosa Diaz, Sami Virtanen, Tara Quinn,
Umar Sheikh, Vera Novak, Wes Carter, Yuki Tanaka""".replace("\n", " ").split(", ")
POLICY = {
    "currency": "usd", "hold_days": 14, "purchases": "all", "min_purchase": 1000,
    "referrer": {"percent_bps": 1000, "cap": 2500},
    "milestones": [{"at": 3, "bonus": 1000}],
    "friend": {"fixed": 500},
}
HOSTS = ["mail.google.com", "t.co", "www.linkedin.com", "web.whatsapp.com", None]
CHANNELS = ["email", "x", "linkedin", "whatsapp", None]


def seed_demo(rng: random.Random | None = None) -> tuple[bool, list[tuple[str, str, str]]]:
    """Make the demo once. Returns (made now?, the logins)."""
    logins = [(email, role, PASSWORD) for email, role, _ in LOGINS]
    if db.session.scalar(select(Program.id).filter_by(slug="demo")):
        return False, logins
    rng = rng or random.Random(2026)  # noqa: S311 - demo data, not secrets
    program = create_program(
        "demo", name="Harbor Coffee Club", currency="usd", window_days=30,
        landing_headline="Your friend thinks you'll love Harbor Coffee",
        landing_offer="Sign up through this invitation and get $10 off your first bag; "
                      "your friend earns 10% of your first order.",
    )
    publish(program, POLICY)
    for email, role, name in LOGINS:
        if not db.session.scalar(select(Account.id).filter_by(email=email)):
            create_account(email, PASSWORD, role, name)
    referrers = [db.session.scalar(select(Account).filter_by(email=email)).customer
                 for email, role, _ in LOGINS if role == "customer"]
    now = utcnow()
    for index, name in enumerate(FRIENDS):
        referrer = referrers[index % len(referrers)] if index < 19 else None
        _friend_story(program, rng, now, index, name, referrer)
    db.session.commit()
    release_due()
    db.session.commit()
    propose(program)  # payouts awaiting the coordinator's approval
    return True, logins


def _demo_email(index: int, first: str) -> str:
    """One friend signs up with a throwaway address, so the demo has a flagged referral."""
    return f"{first}@mailinator.com" if index == 1 else f"{first}@friends.example"


def _friend_story(program, rng, now, index, name, referrer) -> None:
    """Clicks, then maybe a signup, then maybe purchases, spread over the last 60 days."""
    first = name.split()[0].lower()
    clicked_at = now - timedelta(days=rng.randint(3, 59), hours=rng.randint(0, 23))
    visitor = shortuuid.uuid()
    if referrer is not None:
        code = primary_code(referrer)
        clicks = []
        for n in range(rng.randint(1, 4)):
            channel = rng.randrange(len(CHANNELS))
            clicks.append({
                "uid": shortuuid.uuid(), "program_id": program.id, "code_id": code.id,
                "referrer_id": referrer.id, "visitor_id": visitor,
                "ip_hash": hash_ip(f"203.0.113.{index}"), "user_agent": "Mozilla/5.0 (demo)",
                "referrer_host": HOSTS[channel], "channel": CHANNELS[channel],
                "created_at": clicked_at + timedelta(hours=n),
            })
        insert_clicks(clicks)
    if index % 5 == 4:
        return  # clicked, never signed up
    signed_up_at = clicked_at + timedelta(hours=rng.randint(5, 30))
    customer, _ = find_or_add_customer(program, f"demo-{index + 1:03d}",
                                       _demo_email(index, first), name)
    attribute_signup(program, customer, source="api", visitor_id=visitor, at=signed_up_at)
    db.session.commit()
    if index % 3 == 2:
        return  # signed up, has not bought yet
    for n in range(rng.randint(1, 2)):
        occurred = min(signed_up_at + timedelta(days=rng.randint(0, 20) + 20 * n), now)
        data = NewConversion(order_id=f"demo-order-{index + 1:03d}-{n + 1}",
                             amount=rng.choice([2400, 3600, 4800, 7200, 12000]),
                             currency="usd", occurred_at=occurred,
                             external_id=customer.external_id)
        record_conversion(program, data, source="api", digest=request_hash(vars(data)))
