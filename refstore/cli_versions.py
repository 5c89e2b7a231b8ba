"""Commands on single versions: ``diff`` two of them, ``delete`` one.

:mod:`refstore.cli` adds them to the ``refstore`` group. Like every command,
they parse, call :class:`refstore.Api` and render; ``delete`` exits with the
codes of :data:`refstore.cli_output.EXIT_CODES`, ``diff`` with its own
(:data:`DIFF_EXIT_CODES`, git diff's convention for ``--exit-code``).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import click

from refstore.api import Api
from refstore.artifact import Artifact
from refstore.cli_output import EXIT_CODES, handle_errors, human_size, print_json
from refstore.errors import ConflictError, InvalidReferenceError, RefstoreError
from refstore.manifest import Manifest, ManifestEntry
from refstore.manifest_diff import (
    REF,
    SIZE,
    VERSION,
    EntryChange,
    ManifestDiff,
    diff_manifests,
)
from refstore.names import LATEST
from refstore.verify import manifest_file_entries

__all__ = ["COMMANDS", "DIFF_EXIT_CODES"]

DIFF_EXIT_CODES = """\b
Exit codes:
  0  compared (without --exit-code, also when they differ)
  1  with --exit-code: OLD and NEW differ (git diff's convention)
  2  refstore could not compare them (bad input, not found, no access)
"""

# Version ids and digests are long and random; a prefix tells them apart.
_SHORT = 8


@dataclasses.dataclass(frozen=True)
class _Side:
    """One side of a diff: what to call it, its manifest, its artifact if any."""

    label: str
    manifest: Manifest
    artifact: Artifact | None = None


@click.command(epilog=DIFF_EXIT_CODES)
@click.argument("old")
@click.argument("new")
@click.option("--json", "as_json", is_flag=True, help="Print the diff as JSON.")
@click.option("--stat", is_flag=True, help="Print only the counts.")
@click.option(
    "--exit-code", "exit_code", is_flag=True, help="Exit 1 when OLD and NEW differ."
)
@handle_errors
def diff(old: str, new: str, as_json: bool, stat: bool, exit_code: bool) -> None:
    """Show what changed from OLD to NEW, path by path.

    OLD and NEW are versions (ENTITY/PROJECT/NAME:vN or :ALIAS) or manifest
    files (refstore's JSON or a W&B wandb_manifest.json). A bare :vN or
    :ALIAS as NEW means another version of OLD's artifact. Each differing
    path prints as A (added), D (removed), M (changed, and in what: ref,
    version, etag, sha256, size) or R (moved: the same pinned object at
    another path), then a line of counts. Only the manifests are read; no
    object store is contacted.
    """
    api = Api()
    before = _side(api, old)
    after = _sibling(api, new, before) if new.startswith(":") else _side(api, new)
    result = diff_manifests(before.manifest, after.manifest)
    if as_json:
        _print_diff_json(before, after, result, stat)
    else:
        _print_diff_text(result, stat)
    if exit_code and not result.is_empty:
        sys.exit(1)


@click.command(epilog=EXIT_CODES)
@click.argument("path")
@click.option(
    "--delete-aliases",
    is_flag=True,
    help="Delete the version with its aliases (else refused while it has any).",
)
@click.option("--yes", is_flag=True, help="Delete without asking for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def delete(path: str, delete_aliases: bool, yes: bool, as_json: bool) -> None:
    """Delete one version: ENTITY/PROJECT/NAME:vN or :ALIAS.

    A version that aliases other than latest name is refused unless
    --delete-aliases, which deletes them with it. latest moves to the newest
    remaining version; the runs that logged or used it stay, without their
    record of it. Without --yes you are asked to confirm; without a terminal
    to ask on, --yes is required. The blob-store files only it needed (its
    manifest, copied files) go at the next `refstore gc`; objects in your
    buckets are never touched.
    """
    artifact = Api().artifact(_version_path(path))
    held = _held_aliases(artifact)
    # The catalog refuses this too; checking first spares the user a
    # confirmation for a delete that cannot happen.
    if held and not delete_aliases:
        raise ConflictError(
            f"{artifact.qualified_name} still has the aliases {', '.join(held)}; "
            "move or remove them first (`refstore alias`), or pass "
            "--delete-aliases to delete them with it"
        )
    if not yes:
        _confirm(artifact)
    artifact.delete(delete_aliases=delete_aliases)
    _show_deletion(artifact, held, as_json)


# -- diff ------------------------------------------------------------------


def _side(api: Api, target: str) -> _Side:
    if Path(target).is_file():
        return _Side(target, Manifest(manifest_file_entries(target)()))
    artifact = api.artifact(target)
    return _Side(artifact.qualified_name, artifact.manifest, artifact)


def _sibling(api: Api, selector: str, base: _Side) -> _Side:
    """Another version of ``base``'s artifact, named by ``:vN`` or ``:ALIAS``."""
    if base.artifact is None:
        raise InvalidReferenceError(
            f"{selector!r} names a version of OLD's artifact, but OLD "
            f"({base.label}) is a manifest file; write NEW in full, "
            "ENTITY/PROJECT/NAME:ALIAS"
        )
    artifact = base.artifact
    return _side(api, f"{artifact.project}/{artifact.name}{selector}")


def _print_diff_text(result: ManifestDiff, stat: bool) -> None:
    if not stat:
        for line in _name_status(result):
            click.echo(line)
    click.echo(_summary(result))


def _print_diff_json(
    before: _Side, after: _Side, result: ManifestDiff, stat: bool
) -> None:
    data = {"old": before.label, "new": after.label}
    print_json(data | ({"counts": result.counts()} if stat else result.to_dict()))


def _name_status(result: ManifestDiff) -> list[str]:
    """One line per differing path, like ``git diff --name-status``, by path."""
    lines = [
        *((entry.path, f"A {entry.path}") for entry in result.added),
        *((entry.path, f"D {entry.path}") for entry in result.removed),
        *((c.path, f"M {c.path}  {_describe(c)}") for c in result.changed),
        *((m.new.path, f"R {m.old.path} → {m.new.path}") for m in result.moved),
    ]
    return [line for _, line in sorted(lines)]


def _describe(change: EntryChange) -> str:
    return ", ".join(
        f"{field} {_value(change.old, field)} → {_value(change.new, field)}"
        for field in change.fields
    )


def _value(entry: ManifestEntry, field: str) -> str:
    if field == REF:
        return entry.ref or "(copied file)"
    if field == VERSION:
        return _short(entry.version_id) if entry.version_id else "(none)"
    if field == SIZE:
        return "(unknown)" if entry.size is None else str(entry.size)
    return _short(entry.digest)


def _short(value: str) -> str:
    return value if len(value) <= _SHORT + 1 else value[:_SHORT] + "…"


def _summary(result: ManifestDiff) -> str:
    return ", ".join(f"{count} {kind}" for kind, count in result.counts().items())


# -- delete ----------------------------------------------------------------


def _version_path(path: str) -> str:
    # Deleting what a bare name resolves to (latest) is too easy to get wrong.
    if ":" not in path:
        raise InvalidReferenceError(
            f"{path!r} names no version: write the one to delete in full, "
            "ENTITY/PROJECT/NAME:vN or :ALIAS (`refstore ls` lists them)"
        )
    return path


def _held_aliases(artifact: Artifact) -> list[str]:
    return [alias for alias in artifact.aliases if alias != LATEST]


def _interactive() -> bool:
    return sys.stdin.isatty()


def _confirm(artifact: Artifact) -> None:
    name = artifact.qualified_name
    if not _interactive():
        raise RefstoreError(
            f"not deleting {name}: there is no terminal to confirm on; pass "
            "--yes to delete it"
        )
    aliases = ", ".join(artifact.aliases) or "none"
    question = (
        f"delete {name} (aliases: {aliases}; {artifact.entry_count} entries, "
        f"{human_size(artifact.size)})?"
    )
    if not click.confirm(question, default=False, err=True):
        raise RefstoreError(f"{name} was not deleted")


def _show_deletion(artifact: Artifact, held: list[str], as_json: bool) -> None:
    was_latest = LATEST in artifact.aliases
    if as_json:
        print_json(
            {
                "deleted": artifact.qualified_name,
                "entries": artifact.entry_count,
                "deleted_aliases": held,
                "was_latest": was_latest,
            }
        )
        return
    with_aliases = f" and its aliases {', '.join(held)}" if held else ""
    click.echo(
        f"deleted {artifact.qualified_name} ({artifact.entry_count} entries)"
        f"{with_aliases}"
    )
    if was_latest:
        click.echo("latest now names the newest remaining version, if any")
    click.echo("blob-store files no other version needs go at `refstore gc`")


COMMANDS: list[click.Command] = [diff, delete]
