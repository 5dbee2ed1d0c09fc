"""Hypothesis state machines that run against the app on a SQLite database of their own."""

from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

from rewards.extensions import db

from .conftest import empty_tables, make_app, reset_schema


def machine_app():
    """A SQLite app with the schema, for one module's machines (tables emptied per run).

    In memory: a machine commits after nearly every step, and a file would wait on the disk
    for each commit."""
    app = make_app("sqlite://")
    reset_schema(app)
    return app


def run_machine(machine: type["AppMachine"], app, *, cases_per_100: int, steps: int) -> None:
    """Run `machine` on `app`: `cases_per_100` cases for every 100 examples the Hypothesis
    profile gives a test (a case of many steps costs many examples), at least one."""
    machine.app = app
    cases = max(1, settings.default.max_examples * cases_per_100 // 100)
    run_state_machine_as_test(machine, settings=settings(
        max_examples=cases, stateful_step_count=steps, deadline=None,
        suppress_health_check=[HealthCheck.too_slow]))


class AppMachine(RuleBasedStateMachine):
    """Each run starts on empty tables inside the app's context (`enter`) and leaves it."""

    app = None

    def enter(self) -> None:
        empty_tables(self.app)
        self.ctx = self.app.app_context()
        self.ctx.push()

    def teardown(self):
        db.session.remove()
        self.ctx.pop()
