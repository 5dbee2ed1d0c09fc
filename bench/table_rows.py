"""Bulk inserts of synthetic rows through the models' own tables.

Rows are dicts keyed by column name. A key the table has not got raises at once
(SQLAlchemy would drop it without a word), a NOT NULL column left out with no default
fails in the database, and a column left out takes the model's default. Each value is
converted by its column's type as SQLAlchemy binds it; the rows then go to the driver in
bulk: PostgreSQL's COPY over the table's columns, SQLite's executemany of the Core
insert() compiled for them. (SQLAlchemy's own executemany builds each row's parameters
anew and made the dashboard's load a third slower.)
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy import Column, Connection, Table, insert


def table_of(model) -> Table:
    return model if isinstance(model, Table) else model.__table__


class TableRows:
    """Writes rows into tables on one connection, committing after each write."""

    def __init__(self, connection: Connection):
        if connection.dialect.name not in ("postgresql", "sqlite"):
            raise ValueError(f"no bulk load for {connection.dialect.name}")
        self.connection = connection
        self.dialect = connection.dialect
        self.counts: dict[str, int] = {}  # table name -> rows written

    def write(self, model, rows: list[dict]) -> None:
        """Insert `rows` (dicts with the same keys, column names of `model`'s table)."""
        if not rows:
            return
        table = table_of(model)
        unknown = set(rows[0]) - set(table.columns.keys())
        if unknown:
            raise KeyError(f"{table.name} has no column {', '.join(sorted(unknown))}")
        # The columns the rows give and those the model has a default for; any other is
        # left to the database (NULL, its server default or its sequence).
        columns = [column for column in table.columns
                   if column.key in rows[0] or column.default is not None]
        for column in columns:
            default = column.default
            if column.key not in rows[0] and not (default.is_scalar or default.is_callable):
                raise ValueError(f"{table.name}.{column.key}: give it, its default is SQL")
        values = self.values(columns, rows)
        if not self.connection.in_transaction():
            self.connection.begin()  # the driver does the writing: SQLAlchemy must commit
        driver = self.connection.connection.driver_connection
        if self.dialect.name == "postgresql":
            names = ", ".join(self.dialect.identifier_preparer.quote(c.name) for c in columns)
            cursor = driver.cursor()
            with cursor, cursor.copy(f"COPY {table.name} ({names}) FROM STDIN") as copy:
                for row in values:
                    copy.write_row(row)
        else:
            keys = [column.key for column in columns]
            statement = insert(table).compile(dialect=self.dialect, column_keys=keys)
            if list(statement.positiontup) != keys:
                raise ValueError(f"{table.name}: the insert's parameters are not {keys}")
            driver.executemany(str(statement), values)
        self.connection.commit()
        self.counts[table.name] = self.counts.get(table.name, 0) + len(rows)

    def values(self, columns: list[Column], rows: list[dict]) -> Iterator[list]:
        """Each row's values for `columns`, as Core would bind them: the row's own, or the
        model's default for a column the rows leave out."""
        fills = [(column.key, None if column.key in rows[0] else column.default)
                 for column in columns]
        processors = [(n, column.type.dialect_impl(self.dialect).bind_processor(self.dialect))
                      for n, column in enumerate(columns)]
        processors = [(n, processor) for n, processor in processors if processor is not None]
        for row in rows:
            # SQLAlchemy calls a callable default with the execution context.
            out = [row[key] if default is None else
                   default.arg(None) if default.is_callable else default.arg
                   for key, default in fills]
            for n, processor in processors:
                out[n] = processor(out[n])
            yield out
