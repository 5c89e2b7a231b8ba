"""``refstore project delete`` and ``refstore project rename``.

They work on any catalog, embedded or at a service (where they need the
rights to manage the project); :mod:`refstore.cli_service` adds them to its
``project`` group. Exit codes are those of
:data:`refstore.cli_output.EXIT_CODES`.
"""

from __future__ import annotations

import sys

import click

from refstore.api import Api
from refstore.catalog.base import ProjectDeletion
from refstore.catalog.wire import project_deletion_to_wire, project_to_wire
from refstore.cli_output import EXIT_CODES, handle_errors, print_json
from refstore.errors import RefstoreError

__all__ = ["project_delete", "project_rename"]


@click.command("delete", epilog=EXIT_CODES)
@click.argument("path")
@click.option("--yes", is_flag=True, help="Delete without asking for confirmation.")
@click.option("--dry-run", is_flag=True, help="Count what would go; delete nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def project_delete(path: str, yes: bool, dry_run: bool, as_json: bool) -> None:
    """Delete ENTITY/PROJECT and everything in it, for good.

    Its artifacts, versions, aliases, runs, sweeps and lineage go, and so
    do the records of other projects' runs having used its versions (those
    runs stay). Without --yes you are asked to type ENTITY/PROJECT; without
    a terminal to ask on, --yes is required. The blob-store files it alone
    needed go at the next `refstore gc`; objects in your buckets are never
    touched.
    """
    api = Api()
    if dry_run or not yes:
        preview = api.delete_project(path, dry_run=True)
        if dry_run:
            _show_deletion(preview, as_json)
            return
        _confirm(preview)
    _show_deletion(api.delete_project(path), as_json)


@click.command("rename", epilog=EXIT_CODES)
@click.argument("path")
@click.argument("new")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def project_rename(path: str, new: str, as_json: bool) -> None:
    """Rename ENTITY/PROJECT to NEW_ENTITY/NEW_PROJECT, with all it holds.

    Another entity moves the project (at a service: you must be a member of
    it). Artifacts, aliases, runs and lineage follow at once; the old path
    stops existing, and runs still writing to it fail.
    """
    record = Api().rename_project(path, new)
    if as_json:
        print_json(project_to_wire(record))
    else:
        click.echo(f"renamed {path.strip('/')} to {record.path}")


def _interactive() -> bool:
    return sys.stdin.isatty()


def _confirm(preview: ProjectDeletion) -> None:
    project = preview.project
    if not _interactive():
        raise RefstoreError(
            f"not deleting {project}: there is no terminal to confirm on; pass "
            "--yes to delete it, or --dry-run to see what would go"
        )
    click.echo(f"this deletes {_summary(preview)}", err=True)
    typed = click.prompt(f"type {project} to delete it", err=True, default="")
    if typed.strip() != project:
        raise RefstoreError(f"you typed {typed.strip()!r}: {project} was not deleted")


def _show_deletion(report: ProjectDeletion, as_json: bool) -> None:
    if as_json:
        print_json(project_deletion_to_wire(report))
        return
    verb = "would delete" if report.dry_run else "deleted"
    click.echo(f"{verb} {_summary(report)}")
    if not report.dry_run:
        click.echo("blob-store files no other version needs go at `refstore gc`")


def _summary(report: ProjectDeletion) -> str:
    counts = ", ".join(
        _plural(count, noun)
        for count, noun in (
            (report.artifacts, "artifact"),
            (report.versions, "version"),
            (report.runs, "run"),
            (report.sweeps, "sweep"),
            (report.lineage_edges, "lineage edge"),
        )
    )
    uses = report.cross_project_uses
    foreign = f"; {_plural(uses, 'use')} of its versions by other projects' runs"
    return f"{report.project}: {counts}{foreign if uses else ''}"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"
