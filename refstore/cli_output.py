"""What every ``refstore`` command shares: exit codes, errors, JSON and tables.

The commands live in :mod:`refstore.cli` and, for lineage, aliases, TTLs and
gc, in :mod:`refstore.cli_catalog`; both render through these helpers so
that every command fails, prints JSON and lays out tables the same way.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterator
from typing import Any, ParamSpec, TypeVar

import click

from refstore.errors import RefstoreError

__all__ = ["EXIT_CODES", "handle_errors", "human_size", "print_json", "print_table"]

P = ParamSpec("P")
R = TypeVar("R")

EXIT_CODES = """\b
Exit codes:
  0  success
  1  the data does not match its record (drift, checksum mismatch)
  2  refstore could not do what was asked (bad input, not found, no access)
"""


def handle_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn refstore and file-system errors into one line and their exit code."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (RefstoreError, OSError) as exc:
            if click.get_current_context().find_root().params.get("debug"):
                raise
            click.secho(f"error: {exc}", fg="red", err=True)
            sys.exit(exc.exit_code if isinstance(exc, RefstoreError) else 2)

    return wrapper


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def print_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        click.echo("(nothing)")
        return
    columns = list(rows[0])
    cells = [[_cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    for line in _table_lines(columns, cells, widths):
        click.echo(line.rstrip())


def _table_lines(
    columns: list[str], cells: list[list[str]], widths: list[int]
) -> Iterator[str]:
    yield "  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))
    for row in cells:
        yield "  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True))


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
