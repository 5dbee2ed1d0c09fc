"""A fresh database for one bench run: a temporary SQLite file, or a scratch database
created on a PostgreSQL server and dropped afterwards."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from config import database_url

# Databases a bench never creates or drops: the server's own, and CI's.
RESERVED_DATABASES = {"postgres", "template0", "template1", "test", "test_b", "test_c",
                      "test_d", "test_e"}


class ScratchDatabase:
    """`bench_<name>` on the PostgreSQL server at `server_url`, or `<name>.db` in a
    temporary directory when there is none; dropped by `drop()` unless `keep`."""

    def __init__(self, server_url: str | None, name: str, keep: bool):
        self.keep = keep
        self.directory = None
        if server_url is None:
            self.backend = "sqlite"
            self.directory = tempfile.mkdtemp(prefix=f"bench-{name}-")
            self.path = os.path.join(self.directory, f"{name}.db")
            self.url = f"sqlite:///{self.path}"
            return
        self.backend = "postgresql"
        self.name = f"bench_{name}"
        if self.name in RESERVED_DATABASES:
            raise SystemExit(f"refusing to use the database {self.name}")
        server = make_url(database_url(server_url))
        self.admin_url = server.set(drivername="postgresql",
                                    database=server.database or "postgres")
        self.url = server.set(database=self.name).render_as_string(hide_password=False)
        self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self._admin(f'CREATE DATABASE "{self.name}"')

    def _admin(self, statement: str) -> None:
        import psycopg

        url = self.admin_url.render_as_string(hide_password=False)
        with psycopg.connect(url, autocommit=True) as connection:
            connection.execute(statement)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection of its own for a bulk load, apart from the app's pool."""
        engine = create_engine(self.url, poolclass=NullPool)
        try:
            with engine.connect() as connection:
                if self.backend == "sqlite":
                    connection.exec_driver_sql("PRAGMA synchronous=OFF")  # this connection only
                yield connection
        finally:
            engine.dispose()

    def after_load(self, tables: list[str]) -> None:
        """PostgreSQL: move the id sequences of `tables` past the loaded ids and ANALYZE,
        as autovacuum would shortly after a large load."""
        if self.backend != "postgresql":
            return
        with self.connect() as connection:
            for table in tables:
                connection.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # noqa: S608
                    f"(SELECT max(id) FROM {table}))")
            connection.exec_driver_sql("ANALYZE")
            connection.commit()

    def where(self) -> str:
        return self.path if self.backend == "sqlite" else self.url

    def drop(self) -> None:
        if self.keep:
            print(f"  kept: {self.where()}")
            return
        if self.backend == "sqlite":
            shutil.rmtree(self.directory, ignore_errors=True)
        else:
            self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
