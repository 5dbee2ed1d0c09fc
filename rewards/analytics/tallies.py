"""Per-referrer tallies: one program day's referred purchases and net revenue per referrer,
packed in a single value, so ranking referrers over a range of days costs one small read
per day rather than one row per referrer and day (which grows with the business).

A tally is three little-endian int64 rows of equal length: referrer ids in increasing
order, their purchases, their net revenue in minor units. Sums stay exact integers.
"""

from collections.abc import Iterable

import numpy as np

_INT = np.dtype("<i8")


def pack(rows: Iterable[tuple[int, int, int]]) -> bytes:
    """(referrer id, purchases, net revenue) of distinct referrers, as one tally."""
    table = np.array(sorted(rows), dtype=_INT).reshape(-1, 3)
    return table.T.tobytes()


def unpack(tally: bytes) -> np.ndarray:
    """The tally as a (3, referrers) array: ids, purchases, net revenue."""
    return np.frombuffer(tally, dtype=_INT).reshape(3, -1)


def combine(tables: Iterable[np.ndarray]) -> np.ndarray:
    """Tables whose first row is referrer ids, summed per referrer (ids in order)."""
    tables = list(tables)
    if not tables:
        return np.zeros((3, 0), dtype=_INT)
    joined = np.concatenate(tables, axis=1)
    joined = joined[:, np.argsort(joined[0], kind="stable")]
    ids = joined[0]
    if not ids.size:
        return joined
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    return np.vstack([ids[starts], np.add.reduceat(joined[1:], starts, axis=1)])


def ranked(table: np.ndarray, row: int, limit: int) -> list[tuple[int, ...]]:
    """The table's columns with the highest values in `row` (ties: lower id first), as
    tuples of Python ints."""
    order = np.lexsort((table[0], -table[row]))[:limit]
    return [tuple(int(value) for value in table[:, column]) for column in order]
