"""Run value filters as SQL conditions, for SQLite and PostgreSQL.

Each :class:`~refstore.catalog.run_filters.Lookup` becomes one condition on
the run's JSON column that holds exactly when Python's ``==`` would (see
:mod:`refstore.catalog.run_filters`), or, for the values SQL cannot compare
that way, a condition every match meets (the JSON type), which Python then
completes. Keys and values travel as bound parameters, never as SQL text.

SQLite looks a value up by a JSON path, ``$."optimizer"."lr"``, whose labels
are written as the stored JSON spells its keys: SQLAlchemy stores JSON with
non-ASCII characters escaped, and SQLite before 3.45 compares labels byte for
byte. PostgreSQL follows one ``->`` per key with a text operand, which reads
dicts only (an integer operand would index a list, which Python never does),
and compares ``jsonb``, whose numbers compare by value (``1 = 1.0``).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import ColumnElement, Text, and_, cast, func, literal, or_
from sqlalchemy.dialects.postgresql import JSONB

from refstore.catalog.run_filters import Lookup

__all__ = ["condition"]

# JSON types whose values Python may find equal to a number or a boolean.
_SQLITE_NUMBERS = ("integer", "real", "true", "false")


def condition(dialect: str, column: Any, lookup: Lookup) -> ColumnElement[bool]:
    """The condition ``lookup`` puts on ``column`` (a JSON column of runs)."""
    if dialect == "postgresql":
        return _postgres(column, lookup)
    return _sqlite(column, lookup)


# -- SQLite -----------------------------------------------------------------


def _sqlite(column: Any, lookup: Lookup) -> ColumnElement[bool]:
    path = "$" + "".join(f'."{json.dumps(key)[1:-1]}"' for key in lookup.keys)
    kind = func.json_type(column, path)
    value = lookup.value
    if not lookup.in_sql:
        return kind.in_(_sqlite_kinds(value))
    if value is None:
        return kind == "null"
    found = func.json_extract(column, path)
    if isinstance(value, str):
        return and_(kind == "text", found == value)
    # json_extract reads true as 1 and false as 0, as Python compares them.
    return and_(kind.in_(_SQLITE_NUMBERS), found == value)


def _sqlite_kinds(value: Any) -> tuple[str, ...]:
    container = _container(value)
    return ("integer", "real") if container is None else (container,)


def _container(value: Any) -> str | None:
    """The JSON type of a list or dict (both engines name them alike)."""
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return None


# -- PostgreSQL -------------------------------------------------------------


def _postgres(column: Any, lookup: Lookup) -> ColumnElement[bool]:
    node = column
    for key in lookup.keys:
        node = node.op("->", return_type=JSONB)(cast(key, Text))
    value = lookup.value
    if not lookup.in_sql:
        return func.jsonb_typeof(node) == _postgres_kind(value)
    return or_(*(node == literal(equal, JSONB) for equal in _equal_values(value)))


def _postgres_kind(value: Any) -> str:
    return _container(value) or "number"


def _equal_values(value: Any) -> list[Any]:
    """Every value ``jsonb`` must equal where Python's ``==`` holds."""
    # True == 1 == 1.0 and False == 0 == -0.0 in Python; jsonb tells booleans
    # from numbers, and compares numbers by value.
    if isinstance(value, bool):
        return [value, int(value)]
    if isinstance(value, int | float) and value in (0, 1):
        return [value, bool(value)]
    return [value]
