"""Commands that look after the catalog: ``lineage``, ``alias``, ``ttl``, ``gc``.

:mod:`refstore.cli` adds them to the ``refstore`` group. Like every command,
they parse, call :class:`refstore.Api` and render; exit codes are those of
:data:`refstore.cli_output.EXIT_CODES`.
"""

from __future__ import annotations

from typing import Any

import click

from refstore.api import Api
from refstore.artifact import Artifact
from refstore.cli_output import EXIT_CODES, handle_errors, human_size, print_json
from refstore.lineage import FORMATS
from refstore.ttl import format_policy, parse_default, parse_duration, parse_policy

__all__ = ["COMMANDS"]


@click.command(epilog=EXIT_CODES)
@click.argument("path")
@click.option(
    "--depth",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="How many runs to follow upstream and downstream.",
)
@click.option(
    "--format",
    "format_",
    type=click.Choice(FORMATS),
    default="text",
    show_default=True,
    help="text, json, Graphviz dot or Mermaid.",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@handle_errors
def lineage(path: str, depth: int, format_: str, as_json: bool) -> None:
    """Show the runs and versions around PROJECT/NAME:ALIAS, up and down.

    Up: the run that logged the version, the versions it used, the runs that
    logged those. Down: the runs that used it, the versions they logged.
    """
    graph = Api().lineage(path, depth)
    click.echo(graph.render("json" if as_json else format_))


@click.group(epilog=EXIT_CODES)
def alias() -> None:
    """Add, move and remove aliases (unique within an artifact).

    PATH names a version: PROJECT/NAME:vN or PROJECT/NAME:ALIAS. 'latest'
    always names the newest version and is not set by hand.
    """


def _alias_result(artifact: Artifact, message: str, as_json: bool) -> None:
    if as_json:
        print_json({"artifact": artifact.qualified_name, "aliases": artifact.aliases})
        return
    click.echo(f"{message}; aliases now: {', '.join(artifact.aliases) or '(none)'}")


@alias.command("add")
@click.argument("path")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def alias_add(path: str, name: str, as_json: bool) -> None:
    """Give the version at PATH the alias NAME (refused if it names another)."""
    artifact = Api().add_alias(path, name)
    _alias_result(artifact, f"{name} names {artifact.qualified_name}", as_json)


@alias.command("move")
@click.argument("path")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def alias_move(path: str, name: str, as_json: bool) -> None:
    """Point the alias NAME at the version at PATH, wherever it was."""
    artifact = Api().move_alias(path, name)
    _alias_result(artifact, f"{name} moved to {artifact.qualified_name}", as_json)


@alias.command("remove")
@click.argument("path")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def alias_remove(path: str, name: str, as_json: bool) -> None:
    """Remove the alias NAME from the version at PATH."""
    artifact = Api().remove_alias(path, name)
    _alias_result(artifact, f"removed {name} from {artifact.qualified_name}", as_json)


@click.group(epilog=EXIT_CODES)
def ttl() -> None:
    """Set and show time-to-live policies.

    TARGET is a project (ENTITY/PROJECT: the default TTL of the versions that
    inherit it) or a version (ENTITY/PROJECT/NAME:vN or :ALIAS). Expired
    versions vanish from every query at once; `refstore gc` deletes them.
    """


@ttl.command("set")
@click.argument("target")
@click.argument("duration")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def ttl_set(target: str, duration: str, as_json: bool) -> None:
    """Set the TTL of TARGET: a duration (90d, 12h, 1w2d), none or inherit."""
    api = Api()
    if ":" not in target:
        api.set_project_ttl(target, parse_default(duration))
        _show_project(api, target, as_json)
        return
    artifact = api.artifact(target)
    artifact.ttl = parse_policy(duration)
    artifact.save()
    _show_version(artifact, as_json)


@ttl.command("show")
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def ttl_show(target: str, as_json: bool) -> None:
    """Show the TTL of TARGET (a project or a version)."""
    api = Api()
    if ":" not in target:
        _show_project(api, target, as_json)
    else:
        _show_version(api.artifact(target), as_json)


def _show_project(api: Api, project: str, as_json: bool) -> None:
    default = api.project_ttl(project)
    shown = format_policy(default)
    if as_json:
        print_json({"project": project, "default_ttl": shown})
    else:
        click.echo(f"default TTL of {project}: {shown}")


def _show_version(artifact: Artifact, as_json: bool) -> None:
    expires = artifact.expires_at.isoformat() if artifact.expires_at else None
    data = {
        "artifact": artifact.qualified_name,
        "ttl": format_policy(artifact.ttl),
        "expires_at": expires,
    }
    if as_json:
        print_json(data)
    else:
        click.echo(
            f"{data['artifact']}: ttl {data['ttl']}, "
            + (f"expires at {expires}" if expires else "kept forever")
        )


@click.command(epilog=EXIT_CODES)
@click.option("--dry-run", is_flag=True, help="List what would go; delete nothing.")
@click.option(
    "--grace",
    default="1h",
    show_default=True,
    help="Spare blob-store files younger than this (0 spares none).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def gc(dry_run: bool, grace: str, as_json: bool) -> None:
    """Delete expired versions and the blob-store files no version needs.

    Only the catalog and refstore's own blob store change. Objects in your
    buckets are never touched: references are only ever read.
    """
    report = Api().gc(dry_run=dry_run, grace=parse_duration(grace, allow_zero=True))
    data: dict[str, Any] = {
        "dry_run": report.dry_run,
        "versions": [record.path for record in report.versions],
        "blobs": report.blobs,
        "freed_bytes": report.freed_bytes,
        "indexed_versions": report.indexed_versions,
        "manifests_read": report.manifests_read,
    }
    if as_json:
        print_json(data)
        return
    verb = "would delete" if dry_run else "deleted"
    if report.indexed_versions:
        click.echo(
            f"indexed the blob-store files of {report.indexed_versions} versions "
            "logged before the index (read once; later runs need not)"
        )
    for path in data["versions"]:
        click.echo(f"{verb} expired {path}")
    click.echo(
        f"{verb} {len(report.versions)} expired versions and {len(report.blobs)} "
        f"blob-store files ({human_size(report.freed_bytes)})"
    )


COMMANDS: list[click.Command] = [lineage, alias, ttl, gc]
