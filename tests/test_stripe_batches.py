"""Stripe events applied in batches: each event claimed by one transaction only (real
threads racing on SQLite and PostgreSQL), a failing event rolled back alone, a batch that
dies leaving its events for the next, and the webhook queueing one batch job at a time."""

import threading

import pytest
from redis.exceptions import RedisError
from rq import SimpleWorker
from sqlalchemy import func, select

from rewards import background
from rewards.background import get_queue
from rewards.extensions import db
from rewards.jobs import process_stripe_events, reward_purchases
from rewards.ledger.check import check_ledger
from rewards.models import Conversion, Customer, Program, Refund, Reward, StripeEvent
from rewards.stripe import batch as stripe_batch
from rewards.stripe import processing as stripe_processing
from rewards.stripe.inbox import QUEUED_KEY, process, process_received, store

from .conftest import make_app
from .stripe_kit import SECRETS, charge_refunded, checkout, deliver

THREADS = 4


def store_purchases(app, count: int, code: str | None = None, every: int = 3,
                    start: int = 0) -> set[str]:
    """`count` purchase events, each by its own buyer; every `every`-th one carries the
    referrer's code. Returns the order ids of the referred ones."""
    referred = set()
    with app.app_context():
        for n in range(start, start + count):
            fields = {}
            if code and n % every == 0:
                fields["client_reference_id"] = code
                referred.add(f"pi_{n}")
            assert store(checkout(f"evt_{n}", pi=f"pi_{n}", amount=1000 + n,
                                  email=f"buyer{n}@example.com", **fields)) is not None
    return referred


def events(app) -> list[tuple[str, str, str, int]]:
    with app.app_context():
        return [(e.event_id, e.status, e.outcome or "", e.attempts)
                for e in db.session.scalars(select(StripeEvent).order_by(StripeEvent.id))]


def count(app, model, *where) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model).where(*where))


def rewarded_orders(app) -> set[str]:
    with app.app_context():
        return set(db.session.scalars(
            select(Conversion.order_id).join(Reward, Reward.conversion_id == Conversion.id)))


def assert_each_recorded_once(app, orders: int, referred: set[str]) -> None:
    rows = events(app)
    assert len(rows) == orders
    for event_id, status, outcome, attempts in rows:
        assert (status, attempts) == ("processed", 0), (event_id, outcome)
        # Applied once: a second application would have found the purchase recorded.
        assert outcome.startswith("Recorded the purchase"), (event_id, outcome)
    assert count(app, Conversion, Conversion.source == "stripe") == orders
    assert rewarded_orders(app) == referred
    assert count(app, Reward) == len(referred)
    with app.app_context():
        assert check_ledger() == []


# --- one transaction, many events ----------------------------------------------------------

def test_a_batch_applies_every_received_event_once(app, referrer_code):
    referred = store_purchases(app, 12, referrer_code)
    with app.app_context():
        assert process_received() == 12
        assert process_received() == 0  # nothing left: the batch committed them all
    assert_each_recorded_once(app, 12, referred)
    with app.app_context():  # the rewards were computed in the same job, after the commit
        assert db.session.scalar(select(func.count()).where(
            Conversion.referrer_id.is_not(None), Conversion.processed_at.is_(None))) == 0


def test_racing_batches_claim_each_event_once(app, referrer_code):
    """Real threads, each claiming small batches until none is left: every event is claimed
    by exactly one transaction (the claims add up to the events), and applied once."""
    referred = store_purchases(app, 60, referrer_code)
    barrier = threading.Barrier(THREADS)
    claimed, errors = [], []

    def worker():
        total = 0
        with app.app_context():
            barrier.wait()
            try:
                while batch := process_received(limit=5):
                    total += batch
            except Exception as error:  # surfaced below
                errors.append(error)
            finally:
                db.session.remove()
        claimed.append(total)

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert len(claimed) == THREADS
    assert sum(claimed) == 60
    assert_each_recorded_once(app, 60, referred)


def test_events_another_transaction_holds_are_left_to_it(app, referrer_code, monkeypatch):
    """A batch that has claimed its events and is still applying them: another batch (and
    `process` of one of its events) claims none of them, and they are applied once."""
    referred = store_purchases(app, 6, referrer_code)
    claimed, entered, release = [], threading.Event(), threading.Event()
    handler = stripe_processing.HANDLERS["checkout.session.completed"]

    def slow(event, obj, batch):
        if threading.current_thread().name == "first":
            entered.set()
            assert release.wait(60)
        return handler(event, obj, batch)

    monkeypatch.setitem(stripe_processing.HANDLERS, "checkout.session.completed", slow)

    def run(name):
        with app.app_context():
            claimed.append((name, process_received()))
            db.session.remove()

    first = threading.Thread(target=run, args=("first",), name="first")
    first.start()
    assert entered.wait(60)
    second = threading.Thread(target=run, args=("second",), name="second")
    second.start()
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        # The rows are locked: skipped at once, while the first batch still holds them.
        second.join(timeout=60)
        assert not second.is_alive()
        with app.app_context():
            row_id = db.session.scalar(select(StripeEvent.id).order_by(StripeEvent.id))
            assert process(row_id) == "received"  # held by the first batch: left alone
            db.session.remove()
    release.set()  # on SQLite the second batch waits for the write lock until now
    first.join(timeout=60)
    second.join(timeout=60)
    assert sorted(claimed) == [("first", 6), ("second", 0)]
    assert_each_recorded_once(app, 6, referred)


# --- failures ------------------------------------------------------------------------------

def test_a_failing_event_is_rolled_back_alone(app, referrer_code):
    referred = store_purchases(app, 4, referrer_code, every=2)
    with app.app_context():
        store(checkout("evt_bad", pi="pi_bad", currency="dollars"))
        store({"id": "evt_empty", "type": "invoice.paid", "created": 1, "data": {}})
        assert process_received() == 6
    rows = {event_id: (status, outcome, attempts)
            for event_id, status, outcome, attempts in events(app)}
    assert rows["evt_bad"][0::2] == ("failed", 1)
    assert "currency" in rows["evt_bad"][1]
    assert rows["evt_empty"][0::2] == ("failed", 1)
    assert "no data object" in rows["evt_empty"][1]
    for n in range(4):
        assert rows[f"evt_{n}"][0::2] == ("processed", 0)
    assert count(app, Conversion) == 4
    assert rewarded_orders(app) == referred


def test_a_batch_that_dies_leaves_its_events_for_the_next(app, referrer_code, monkeypatch):
    """A worker killed mid-batch: the transaction is rolled back whole, nothing is applied
    or lost, and the next batch applies every event once."""
    referred = store_purchases(app, 5, referrer_code)
    handler = stripe_processing.HANDLERS["checkout.session.completed"]
    seen = []

    def dying(event, obj, batch):
        seen.append(event["id"])
        if len(seen) == 3:
            raise KeyboardInterrupt  # not an Exception: nothing catches it on the way out
        return handler(event, obj, batch)

    monkeypatch.setitem(stripe_processing.HANDLERS, "checkout.session.completed", dying)
    with app.app_context(), pytest.raises(KeyboardInterrupt):
        process_received()
    assert [row[1:] for row in events(app)] == [("received", "", 0)] * 5
    assert count(app, Conversion) == 0
    assert count(app, Customer) == 1  # the referrer alone
    monkeypatch.setitem(stripe_processing.HANDLERS, "checkout.session.completed", handler)
    with app.app_context():
        assert process_received() == 5
    assert_each_recorded_once(app, 5, referred)


# --- events that depend on one another, in one batch ---------------------------------------

def test_a_refund_before_its_purchase_in_the_same_batch(app, referrer_code):
    with app.app_context():
        store(charge_refunded("evt_r", pi="pi_1", amount=10000, refunded=4000))
        store(checkout("evt_p", pi="pi_1", client_reference_id=referrer_code))
        assert process_received() == 2
        conversion = db.session.scalar(select(Conversion))
        assert conversion.refunded_amount == 4000
        assert db.session.scalar(select(func.count(Refund.id))) == 1
        reward = db.session.scalar(select(Reward))
        assert (reward.amount, reward.reversed_amount) == (1000, 400)
        assert check_ledger() == []
    assert [row[1] for row in events(app)] == ["processed", "processed"]


def test_the_same_buyer_twice_and_the_same_order_twice_in_one_batch(app, referrer_code):
    with app.app_context():
        store(checkout("evt_1", pi="pi_1", email="twice@example.com"))
        store(checkout("evt_2", pi="pi_2", email="Twice@example.com"))
        again = checkout("evt_3", pi="pi_1", email="twice@example.com")
        again["type"] = "checkout.session.async_payment_succeeded"
        store(again)
        assert process_received() == 3
    outcomes = {row[0]: row[2] for row in events(app)}
    assert outcomes["evt_3"] == "The purchase pi_1 was already recorded."
    assert count(app, Conversion) == 2
    assert count(app, Customer, Customer.email == "twice@example.com") == 1


def test_a_purchase_recorded_after_the_batch_looked_is_found_not_doubled(app, referrer_code,
                                                                          monkeypatch):
    """The batch looks its purchases up once; one recorded by another transaction just
    after that collides on the unique order id, and the event, applied again, finds it."""
    with app.app_context():
        store(checkout("evt_1", pi="pi_1", email="a@example.com"))
        assert process_received() == 1
        store(checkout("evt_2", pi="pi_1", email="a@example.com"))
    looked_up = stripe_batch.prefetch

    def stale(rows, batch):
        looked_up(rows, batch)
        batch.recorded.clear()  # as if pi_1 had been committed just after the lookup

    monkeypatch.setattr(stripe_batch, "prefetch", stale)
    with app.app_context():
        assert process_received() == 1
    assert events(app)[1][1:] == ("processed", "The purchase pi_1 was already recorded.", 0)
    assert count(app, Conversion) == 1


def test_a_buyer_known_before_the_batch_is_found_not_added_again(app, referrer_code, api):
    api.post("/customers", {"external_id": "known", "email": "known@example.com"})
    with app.app_context():
        store(checkout("evt_1", pi="pi_1", email="Known@Example.com",
                       client_reference_id=referrer_code))
        store(checkout("evt_2", pi="pi_2", email="new@example.com"))
        assert process_received() == 2
        buyers = dict(db.session.execute(
            select(Conversion.order_id, Customer.external_id)
            .join(Customer, Customer.id == Conversion.customer_id)).all())
    assert buyers == {"pi_1": "known", "pi_2": None}
    assert count(app, Customer, Customer.email == "known@example.com") == 1
    assert count(app, Customer, Customer.email == "new@example.com") == 1
    assert rewarded_orders(app) == {"pi_1"}


def test_a_buyer_added_after_the_batch_looked_is_found_not_doubled(app, referrer_code, monkeypatch):
    """The batch looks its buyers' emails up once; a customer added by another transaction
    just after that collides on the unique (program, email), and the event, applied again,
    finds the customer and records the purchase as theirs."""
    with app.app_context():
        program = db.session.scalar(select(Program))
        db.session.add(Customer(program_id=program.id, external_id="late",
                                email="late@example.com"))
        db.session.commit()
        program_id = program.id
    looked_up = stripe_batch.prefetch

    def stale(rows, batch):
        looked_up(rows, batch)
        # As if the customer had been committed just after the lookup found no one.
        batch.absent_emails.add((program_id, "late@example.com"))

    monkeypatch.setattr(stripe_batch, "prefetch", stale)
    with app.app_context():
        store(checkout("evt_1", pi="pi_1", email="late@example.com",
                       client_reference_id=referrer_code))
        assert process_received() == 1
    assert events(app)[0][1] == "processed"
    assert count(app, Customer, Customer.email == "late@example.com") == 1
    with app.app_context():
        buyer = db.session.scalar(select(Customer.external_id).join(
            Conversion, Conversion.customer_id == Customer.id))
    assert buyer == "late"
    assert rewarded_orders(app) == {"pi_1"}


# --- the webhook and the worker, on Redis --------------------------------------------------

@pytest.fixture
def queued_app(app, redis_url):
    """The same database as `app`, with jobs going through Redis and webhooks on."""
    return make_app(app.config["SQLALCHEMY_DATABASE_URI"], REDIS_URL=redis_url,
                    STRIPE_WEBHOOK_SECRETS=list(SECRETS))


def queued_jobs(app) -> list[str]:
    with app.app_context():
        return [job.func_name for job in get_queue().jobs]


def run_worker(app) -> None:
    with app.app_context():
        SimpleWorker([get_queue()], connection=get_queue().connection).work(burst=True)


def test_the_webhook_queues_one_batch_job_at_a_time(app, referrer_code, queued_app):
    client = queued_app.test_client()
    for n in range(5):
        assert deliver(client, checkout(f"evt_{n}", pi=f"pi_{n}",
                                        email=f"b{n}@example.com")).status_code == 200
    assert queued_jobs(queued_app) == ["rewards.jobs.process_stripe_events"]
    assert count(app, Conversion) == 0  # stored and answered; the work waits for the job
    run_worker(queued_app)
    assert [row[1] for row in events(app)] == ["processed"] * 5
    # The job cleared the mark as it started: the next event queues the next job.
    with queued_app.app_context():
        assert not queued_app.extensions["rewards.redis"].exists(QUEUED_KEY)
    assert deliver(client, checkout("evt_9", pi="pi_9", client_reference_id=referrer_code)) \
        .status_code == 200
    assert queued_jobs(queued_app) == ["rewards.jobs.process_stripe_events"]
    run_worker(queued_app)
    assert count(app, Conversion) == 6
    assert rewarded_orders(app) == {"pi_9"}  # computed in the same run of the worker


def test_copies_of_the_batch_job_are_harmless(app, referrer_code, queued_app):
    referred = store_purchases(app, 8, referrer_code)
    with queued_app.app_context():
        jobs = [get_queue().enqueue(process_stripe_events) for _ in range(3)]
    run_worker(queued_app)
    with queued_app.app_context():
        assert [job.return_value(refresh=True) for job in jobs] == [8, 0, 0]
    assert_each_recorded_once(app, 8, referred)


def referred_ids(app, referred: set[str]) -> list[int]:
    with app.app_context():
        return list(db.session.scalars(select(Conversion.id).where(
            Conversion.order_id.in_(referred)).order_by(Conversion.id)))


def test_on_postgresql_a_batchs_rewards_are_a_job_of_their_own(app, referrer_code, queued_app):
    """So that a second worker process computes them while the batch job goes on."""
    referred = store_purchases(app, 7, referrer_code)  # pi_0, pi_3, pi_6
    with queued_app.app_context():
        assert process_stripe_events() == 7
        postgresql = db.session.get_bind().dialect.name == "postgresql"
        queued = [(job.func_name, job.args) for job in get_queue().jobs]
    if postgresql:
        assert rewarded_orders(app) == set()
        assert queued == [("rewards.jobs.reward_purchases", (referred_ids(app, referred),))]
        run_worker(queued_app)
    else:  # one writer at a time: the batch job computed them itself
        assert queued == []
    assert rewarded_orders(app) == referred
    with queued_app.app_context():
        assert reward_purchases(referred_ids(app, referred)) == 0  # safe twice
    assert count(app, Reward) == len(referred)


def test_redis_failing_at_the_hand_off_leaves_the_rewards_to_the_batch_job(
        app, referrer_code, queued_app, monkeypatch):
    class Down:
        def enqueue(self, *args, **kwargs):
            raise RedisError("connection refused")

    monkeypatch.setattr(background, "get_queue", Down)
    referred = store_purchases(app, 4, referrer_code)
    with queued_app.app_context():
        assert process_stripe_events() == 4
    assert rewarded_orders(app) == referred
    with app.app_context():
        assert check_ledger() == []
