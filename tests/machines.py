"""Hypothesis state machines that run against the app on a SQLite database of their own."""

from hypothesis.stateful import RuleBasedStateMachine

from rewards.extensions import db

from .conftest import empty_tables, make_app, reset_schema


def machine_app(tmp_path_factory, name: str):
    """A SQLite app with the schema, for one module's machines (tables emptied per run)."""
    app = make_app(f"sqlite:///{tmp_path_factory.mktemp(name) / f'{name}.db'}")
    reset_schema(app)
    return app


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
