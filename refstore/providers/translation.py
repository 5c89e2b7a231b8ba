"""Error translation by table: the first rule that matches a failure wins.

Each provider describes what its store answered in its own small failure
record and lists (matches, build) rules in the order they must be tried;
this module holds the one loop that applies them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from refstore.errors import RefstoreError

__all__ = ["Rules", "apply_rules"]

F = TypeVar("F")

Rules = Sequence[tuple[Callable[[F], bool], Callable[[F], RefstoreError]]]


def apply_rules(
    failure: F, rules: Rules[F], fallback: Callable[[F], RefstoreError]
) -> RefstoreError:
    """The error of the first rule matching ``failure``, else ``fallback``'s."""
    for matches, build in rules:
        if matches(failure):
            return build(failure)
    return fallback(failure)
