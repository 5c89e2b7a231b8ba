"""TTL policies and durations written as text (pure)."""

from __future__ import annotations

import datetime
import pickle

import pytest

from refstore.errors import RefstoreError
from refstore.ttl import (
    INHERIT,
    check_ttl,
    expires_at,
    format_duration,
    format_policy,
    parse_default,
    parse_duration,
    parse_policy,
)

T = datetime.timedelta


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("90d", T(days=90), id="days"),
        pytest.param("12h", T(hours=12), id="hours"),
        pytest.param("1w2d", T(days=9), id="weeks-and-days"),
        pytest.param(" 1H 30M ", T(minutes=90), id="spaces-and-case"),
        pytest.param("3600s", T(hours=1), id="seconds"),
    ],
)
def test_durations(text: str, expected: datetime.timedelta) -> None:
    assert parse_duration(text) == expected
    assert parse_duration(format_duration(expected)) == expected


@pytest.mark.parametrize("text", ["", "90", "d", "1y", "-1d", "1.5d", "0s"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(RefstoreError):
        parse_duration(text)


def test_zero_only_when_allowed() -> None:
    assert parse_duration("0", allow_zero=True) == T(0)
    assert parse_duration("0s", allow_zero=True) == T(0)


def test_policies() -> None:
    assert parse_policy("inherit") is INHERIT
    assert parse_policy("none") is None
    assert parse_policy("never") is None
    assert parse_policy("2d") == T(days=2)
    assert parse_default("forever") is None
    with pytest.raises(RefstoreError, match="cannot be 'inherit'"):
        parse_default("inherit")
    assert [format_policy(p) for p in (None, INHERIT, T(days=30))] == [
        "none",
        "inherit",
        "30d",
    ]


def test_check_ttl() -> None:
    assert check_ttl(T(seconds=90.7)) == T(seconds=90)
    assert check_ttl(INHERIT) is INHERIT
    with pytest.raises(RefstoreError, match="not a TTL"):
        check_ttl(30)
    with pytest.raises(RefstoreError, match="too short"):
        check_ttl(T(milliseconds=10))


def test_expiry() -> None:
    start = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)

    assert expires_at(start, T(days=1), None) == start + T(days=1)
    assert expires_at(start, INHERIT, T(days=2)) == start + T(days=2)
    assert expires_at(start, INHERIT, None) is None
    assert expires_at(start, None, T(days=2)) is None


def test_inherit_is_a_singleton_that_pickles() -> None:
    assert pickle.loads(pickle.dumps(INHERIT)) is INHERIT
    assert repr(INHERIT) == "refstore.INHERIT"
