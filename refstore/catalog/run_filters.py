"""Filters on runs' config and summary values: checked, then decided.

A :class:`~refstore.catalog.base.ValueFilter` names a value by a dotted key
(``config.optimizer.lr``) and holds when the run holds an equal value there,
equal as Python compares: ``1 == 1.0 == True``, ``"1"`` differs, ``None``
matches a key holding null but not a missing key. Dots only reach into
dicts, never into lists. Filter values are taken as JSON holds them (a tuple
is a list), so that a catalog behind a service answers exactly as an
embedded one.

The SQL catalog decides strings, booleans, null and numbers up to 2**53 in
the database (:mod:`refstore.catalog.sql_run_filters`). Lists, dicts and
larger numbers it narrows there to the runs holding a value of the right
JSON type, and decides here with :func:`matches`: JSON in the database
compares a list's ``1`` and ``true`` as different, and PostgreSQL compares
the decimal text of large numbers where Python compares binary values.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from refstore.catalog.base import RunRecord, ValueFilter
from refstore.errors import CatalogError

__all__ = ["FIELDS", "MISSING", "Lookup", "lookups", "matches", "value_at"]

FIELDS = ("config", "summary")
MISSING: Any = object()
# Every integer up to here is also a float: below it the database's number
# comparisons agree with Python's.
_EXACT = 2**53


@dataclasses.dataclass(frozen=True)
class Lookup:
    """A checked :class:`ValueFilter`: the column, its keys, the JSON value."""

    key: str  # as the filter named it, for messages
    column: str  # "config" or "summary"
    keys: tuple[str, ...]
    value: Any

    @property
    def in_sql(self) -> bool:
        """Whether SQL decides this filter alone, without :func:`matches`."""
        value = self.value
        if isinstance(value, list | dict):
            return False
        if isinstance(value, int | float) and not isinstance(value, bool):
            return abs(value) < _EXACT
        return True


def lookups(filters: Iterable[ValueFilter]) -> list[Lookup]:
    """Each filter checked; CatalogError names one that cannot be looked up."""
    return [_lookup(item) for item in filters]


def _lookup(item: ValueFilter) -> Lookup:
    head, dot, rest = str(item.key).partition(".")
    if head not in FIELDS or not dot or not rest:
        raise CatalogError(
            f"{item.key!r} is not a run value to filter on: use config.KEY or "
            "summary.KEY (dots reach into nested dicts, e.g. config.optimizer.lr)"
        )
    keys = tuple(rest.split("."))
    for key in keys:
        _check_key(item.key, key)
    return Lookup(item.key, head, keys, _as_json(item))


def _check_key(name: str, key: str) -> None:
    # A JSON path in SQLite cannot quote a label holding a double quote, and
    # PostgreSQL text cannot hold NUL; refuse what the database cannot look up.
    if '"' in key or "\x00" in key:
        raise CatalogError(
            f"the filter key {name!r} holds a double quote or a NUL character, "
            "which the catalog cannot look up; filter on another key, or list "
            "the runs and compare in Python"
        )
    try:
        key.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise CatalogError(
            f"the filter key {name!r} is not valid Unicode text; use text keys"
        ) from exc


def _as_json(item: ValueFilter) -> Any:
    try:
        return json.loads(json.dumps(item.value, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise CatalogError(
            f"the value of the filter {item.key} cannot be compared: {exc}; use "
            "strings, finite numbers, booleans, None, lists and dicts"
        ) from exc


def value_at(values: Mapping[str, Any], keys: Sequence[str]) -> Any:
    """The value under ``keys`` in nested dicts; :data:`MISSING` when absent."""
    value: Any = values
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            return MISSING
        value = value[key]
    return value


def matches(record: RunRecord, found: Iterable[Lookup]) -> bool:
    """Whether the run holds every value, compared in Python."""
    for lookup in found:
        values = record.config if lookup.column == "config" else record.summary
        if value_at(values, lookup.keys) != lookup.value:
            return False
    return True
