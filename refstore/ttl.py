"""Time-to-live policies of artifact versions, and durations written as text.

A version's policy is a :class:`datetime.timedelta` (it expires that long
after it was logged), ``None`` (it is kept forever) or :data:`INHERIT` (it
follows its project's default TTL, and is kept forever while the project has
none). Drafts start with :data:`INHERIT`. Parsing is pure.
"""

from __future__ import annotations

import datetime
import enum
import re
from typing import Final, Literal, TypeAlias

from refstore.errors import RefstoreError

__all__ = [
    "INHERIT",
    "Inherit",
    "TtlPolicy",
    "check_ttl",
    "expires_at",
    "format_duration",
    "format_policy",
    "parse_default",
    "parse_duration",
    "parse_policy",
    "seconds",
]


class Inherit(enum.Enum):
    """The marker type of :data:`INHERIT` (an enum, so it pickles as itself)."""

    INHERIT = "inherit"

    def __repr__(self) -> str:
        return "refstore.INHERIT"


INHERIT: Final = Inherit.INHERIT
"""A version that follows its project's default TTL."""

TtlPolicy: TypeAlias = datetime.timedelta | Literal[Inherit.INHERIT] | None

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PART = re.compile(r"([0-9]+)([smhdw])")
_FOREVER = frozenset({"none", "never", "forever"})


def check_ttl(value: object) -> TtlPolicy:
    """``value`` as a policy; a TTL must be a positive whole number of seconds."""
    if value is None or value is INHERIT:
        return value
    if not isinstance(value, datetime.timedelta):
        raise RefstoreError(
            f"{value!r} is not a TTL: use a datetime.timedelta, None (keep "
            "forever) or refstore.INHERIT (the project's default)"
        )
    if value.total_seconds() < 1:
        raise RefstoreError(
            f"a TTL of {value} is too short: use at least one second, or None "
            "to keep the version forever"
        )
    return datetime.timedelta(seconds=int(value.total_seconds()))


def seconds(ttl: datetime.timedelta | None) -> int | None:
    return None if ttl is None else int(ttl.total_seconds())


def expires_at(
    created_at: datetime.datetime,
    policy: TtlPolicy,
    project_default: datetime.timedelta | None,
) -> datetime.datetime | None:
    """When a version logged at ``created_at`` expires under ``policy``."""
    ttl = project_default if policy is INHERIT else policy
    return None if ttl is None else created_at + ttl


def parse_duration(text: str, *, allow_zero: bool = False) -> datetime.timedelta:
    """``90d``, ``12h``, ``1w2d``, ``3600s`` or ``45m`` as a timedelta."""
    compact = text.strip().lower().replace(" ", "")
    if allow_zero and compact == "0":
        return datetime.timedelta(0)
    parts = _PART.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise RefstoreError(
            f"{text!r} is not a duration: write a number and a unit (s, m, h, d, "
            "w), e.g. 90d, 12h or 1w2d"
        )
    total = sum(int(number) * _UNITS[unit] for number, unit in parts)
    if allow_zero and total == 0:
        return datetime.timedelta(0)
    ttl = check_ttl(datetime.timedelta(seconds=total))
    assert isinstance(ttl, datetime.timedelta)
    return ttl


def parse_policy(text: str) -> TtlPolicy:
    """A duration, ``none`` (keep forever) or ``inherit`` (the project's)."""
    if text.strip().lower() == INHERIT.value:
        return INHERIT
    return parse_default(text)


def parse_default(text: str) -> datetime.timedelta | None:
    """A project's default TTL: a duration, or ``none`` (keep forever)."""
    word = text.strip().lower()
    if word in _FOREVER:
        return None
    if word == INHERIT.value:
        raise RefstoreError(
            "a project's default TTL cannot be 'inherit': give a duration such "
            "as 90d, or none"
        )
    return parse_duration(text)


def format_duration(ttl: datetime.timedelta) -> str:
    """``ttl`` as :func:`parse_duration` reads it: days, hours, minutes, seconds.

    No weeks: "30d" reads better than "4w2d".
    """
    remaining = int(ttl.total_seconds())
    parts = []
    for unit, size in sorted(_UNITS.items(), key=lambda item: -item[1])[1:]:
        count, remaining = divmod(remaining, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts) or "0s"


def format_policy(policy: TtlPolicy) -> str:
    if policy is None:
        return "none"
    if policy is INHERIT:
        return INHERIT.value
    return format_duration(policy)
