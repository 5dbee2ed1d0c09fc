"""Daily rollups: marks written with each change, refreshes racing writers on a real
database, the rebuild command, the visitor sketches and the referrer tallies."""

import threading
from collections import Counter
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from rewards.analytics import rollups, sketches, tallies
from rewards.attribution.clicks import insert_clicks
from rewards.extensions import db
from rewards.models import Program, utcnow
from rewards.models.rollups import DailyTraffic, RollupMark
from rewards.people.codes import primary_code
from rewards.people.customers import find_or_add_customer

from .test_rollups_property import expected_rollups, stored_rollups

WRITERS = 4
CLICKS_EACH = 40


def referrer_code(app, program_id):
    with app.app_context():
        program = db.session.get(Program, program_id)
        referrer, _ = find_or_add_customer(program, "r-1", "r1@example.com")
        code = primary_code(referrer)
        db.session.commit()
        return referrer.id, code.id


def click_row(program_id, referrer_id, code_id, uid, at, visitor="v1"):
    return {"uid": uid, "program_id": program_id, "code_id": code_id,
            "referrer_id": referrer_id, "visitor_id": visitor, "ip_hash": None,
            "user_agent": None, "referrer_host": "t.co", "channel": "x", "created_at": at}


def test_refreshes_racing_writers_leave_rollups_equal_to_a_recount(app, program):
    referrer_id, code_id = referrer_code(app, program)
    now = utcnow()
    errors: list[BaseException] = []
    done = threading.Event()

    def writer(n):
        try:
            with app.app_context():
                for i in range(CLICKS_EACH):
                    at = now - timedelta(days=i % 3, minutes=n)
                    insert_clicks([click_row(program, referrer_id, code_id, f"w{n}-{i}", at,
                                             visitor=f"v{n}-{i % 7}")])
                    db.session.commit()
        except BaseException as error:  # surfaced below
            errors.append(error)

    def refresher():
        try:
            with app.app_context():
                while not done.is_set():
                    rollups.refresh()
                    db.session.remove()
        except BaseException as error:
            errors.append(error)

    writers = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    refreshers = [threading.Thread(target=refresher) for _ in range(2)]
    for thread in writers + refreshers:
        thread.start()
    for thread in writers:
        thread.join(timeout=120)
    done.set()
    for thread in refreshers:
        thread.join(timeout=120)
    assert errors == []
    with app.app_context():
        rollups.refresh()
        assert stored_rollups() == expected_rollups()
        assert db.session.scalar(select(func.sum(DailyTraffic.clicks))) == WRITERS * CLICKS_EACH
        assert db.session.scalar(select(func.count(RollupMark.id))) == 0


def test_a_click_marks_its_day_and_the_refresh_counts_it(app, program):
    referrer_id, code_id = referrer_code(app, program)
    yesterday = utcnow() - timedelta(days=1)
    with app.app_context():
        insert_clicks([click_row(program, referrer_id, code_id, "c1", yesterday)])
        db.session.commit()
        assert db.session.execute(select(RollupMark.program_id, RollupMark.day)).all() == [
            (program, yesterday.date())]
        assert rollups.refresh() == 1
        row = db.session.scalar(select(DailyTraffic))
        assert (row.day, row.clicks, sketches.count([row.visitors])) == (yesterday.date(), 1, 1)
        assert rollups.refresh() == 0


def cli(app, *args):
    return app.test_cli_runner().invoke(args=["rewards", *args])


def test_rebuild_rollups_command_recounts_with_progress(app, program):
    referrer_id, code_id = referrer_code(app, program)
    now = utcnow()
    with app.app_context():
        insert_clicks([click_row(program, referrer_id, code_id, f"c{n}", now - timedelta(days=n))
                       for n in range(40)])
        db.session.commit()
        # Rollups gone stale by hand: the rebuild must not trust them or the marks.
        db.session.execute(RollupMark.__table__.delete())
        db.session.commit()
    result = cli(app, "rebuild-rollups")
    assert result.exit_code == 0, result.output
    assert "Recounting months" in result.stderr
    assert "Rollups rebuilt: 40 days in 1 program(s)." in result.stdout
    with app.app_context():
        assert stored_rollups() == expected_rollups()
        assert db.session.scalar(select(func.count()).select_from(DailyTraffic)) == 40


def test_rebuild_rollups_refuses_an_unknown_program(app, program):
    result = cli(app, "rebuild-rollups", "--program", "nope")
    assert result.exit_code == 1
    assert "No program with the slug 'nope'." in result.stderr


@pytest.mark.parametrize("n", [0, 1, 17, 60, 250, 800])
def test_small_visitor_counts_are_off_by_two_at_most(n):
    assert abs(sketches.count([sketches.sketch(f"visitor-{i}" for i in range(n))]) - n) <= 2


def test_large_visitor_counts_are_close_and_merging_is_a_union():
    days = [sketches.sketch(f"visitor-{i}" for i in range(start, start + 20_000))
            for start in range(0, 100_000, 10_000)]  # ten overlapping days
    assert abs(sketches.count(days) - 110_000) / 110_000 < 0.05
    whole = sketches.sketch(f"visitor-{i}" for i in range(110_000))
    assert bytes(sketches.merge(days)) == whole


# A day's tally: distinct referrer ids (some far apart), purchases, net revenue (minor units).
day_tallies = st.lists(
    st.dictionaries(st.integers(1, 2**40), st.tuples(st.integers(1, 50),
                                                     st.integers(0, 10**12)), max_size=8),
    max_size=6)


@given(day_tallies)
def test_tallies_sum_exactly_per_referrer_over_any_days(days):
    packed = [tallies.pack((r, n, amount) for r, (n, amount) in day.items()) for day in days]
    purchases, revenue = Counter(), Counter()
    for day in days:
        for referrer, (n, amount) in day.items():
            purchases[referrer] += n
            revenue[referrer] += amount
    table = tallies.combine(tallies.unpack(tally) for tally in packed)
    assert table.T.tolist() == [[r, purchases[r], revenue[r]] for r in sorted(purchases)]


@given(day_tallies, st.integers(0, 12))
def test_ranking_takes_the_highest_and_breaks_ties_by_lower_id(days, limit):
    table = tallies.combine(tallies.unpack(tallies.pack((r, n, a) for r, (n, a) in d.items()))
                            for d in days)
    rows = [tuple(column) for column in table.T.tolist()]
    assert tallies.ranked(table, 2, limit) == sorted(rows, key=lambda r: (-r[2], r[0]))[:limit]
    assert tallies.ranked(table[:2], 1, limit) == sorted(
        ((r, n) for r, n, _ in rows), key=lambda r: (-r[1], r[0]))[:limit]
