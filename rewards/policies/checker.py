"""Walking a JSON document and collecting located errors ("<path>: <message>").

Nothing here knows a policy's keys: `Checker` checks objects, lists and whole numbers and
records every problem it finds, so the parser can report them all at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def join(path: str, key: object) -> str:
    """The path of `key` inside `path`; keys of the document itself (at "policy") stand alone."""
    return f"{path}.{key}" if path != "policy" else str(key)


class Checker:
    """Collects located errors while walking the document."""

    __slots__ = ("errors",)

    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def obj(self, value: Any, path: str, keys: tuple[str, ...]) -> dict | None:
        """The value as a dict (unknown keys reported), or None after an error."""
        if not isinstance(value, dict):
            self.error(path, "must be a JSON object")
            return None
        for key in value:
            if key not in keys:
                self.error(join(path, key), "unknown key")
        return value

    def objects(self, value: Any, path: str, most: int,
                keys: tuple[str, ...]) -> Iterator[tuple[int, str, dict]]:
        """(index, path, object) for each JSON object in the list at `path` ("tiers").

        Reports a value that is not a list, more than `most` items ("must have at most 20
        tiers": the path names the items) and each item that is not an object. Lazy, so
        the caller's errors about an item come in document order with these.
        """
        if not isinstance(value, list):
            self.error(path, "must be a list")
            return
        if len(value) > most:
            self.error(path, f"must have at most {most} {path}")
        for index, item in enumerate(value):
            item_path = f"{path}[{index}]"
            data = self.obj(item, item_path, keys)
            if data is not None:
                yield index, item_path, data

    def has(self, data: dict, path: str, key: str) -> bool:
        """True when `data` holds `key`; otherwise reports `path.key` as required."""
        if key in data:
            return True
        self.error(join(path, key), "is required")
        return False

    def integer(self, value: Any, path: str, low: int, high: int | None = None, *,
                amount: bool = False) -> int | None:
        """An int (never a bool, never a float) within [low, high], or None after an error."""
        if type(value) is not int:
            self.error(path, "must be a whole number of minor units" if amount
                       else "must be a whole number")
            return None
        if high is None:
            if value < low:
                self.error(path, f"must be at least {low}")
                return None
        elif not low <= value <= high:
            self.error(path, f"must be between {low} and {high}")
            return None
        return value
