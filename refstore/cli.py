"""The ``refstore`` command line.

Every command parses its input, calls the Python API and renders the result;
no business logic lives here. Data goes to standard output (as JSON with
``--json``), progress and messages to standard error.

Exit codes: 0 success; 1 the data does not match its record (drift, a
checksum mismatch); 2 refstore could not do what was asked (bad input,
something missing, no access, nothing reachable). ``diff --exit-code``
exits 1 when the versions differ, as ``git diff`` does. Errors print as one
line; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from refstore import (
    __version__,
    cli_catalog,
    cli_fetch,
    cli_runs,
    cli_service,
    cli_versions,
)
from refstore.api import Api
from refstore.artifact import Artifact
from refstore.cli_output import EXIT_CODES
from refstore.cli_output import handle_errors as _handle_errors
from refstore.cli_output import human_size as _human_size
from refstore.cli_output import print_json as _print_json
from refstore.cli_output import print_table as _print_table
from refstore.manifest import ManifestEntry
from refstore.report import JUnitWriter, render_json, render_text
from refstore.uri import is_reference
from refstore.verify import (
    ProgressCallback,
    ResultCallback,
    Shard,
    VerifyReport,
    parse_statuses,
    verify_manifest_file,
)


@click.group(epilog=EXIT_CODES)
@click.version_option(__version__, prog_name="refstore")
@click.option("-v", "--verbose", is_flag=True, help="Log each remote operation.")
@click.option("--debug", is_flag=True, help="Log everything; show tracebacks.")
def main(verbose: bool, debug: bool) -> None:
    """Track datasets and models that live in object stores, by reference."""
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not debug:
        # The SDKs' own chatter is for debugging refstore, not for users.
        for noisy in ("botocore", "boto3", "urllib3", "alembic"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


@main.command(epilog=EXIT_CODES)
@click.argument("project")
@click.argument("name")
@click.argument("items", nargs=-1, required=True)
@click.option("--type", "type_", required=True, help="Artifact type, e.g. dataset.")
@click.option("--alias", "aliases", multiple=True, help="Alias to set (repeatable).")
@click.option("--description", help="What this artifact holds.")
@click.option("--metadata", help="Metadata as a JSON object.")
@click.option(
    "--max-objects",
    type=click.IntRange(min=1),
    help="Fail if a referenced prefix holds more objects than this.",
)
@click.option(
    "--no-checksum",
    is_flag=True,
    help="Record the URIs alone, without contacting the stores.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@_handle_errors
def log(
    project: str,
    name: str,
    items: Sequence[str],
    type_: str,
    aliases: Sequence[str],
    description: str | None,
    metadata: str | None,
    max_objects: int | None,
    no_checksum: bool,
    as_json: bool,
) -> None:
    """Log a new version of NAME in PROJECT from references and local files.

    Each ITEM is a reference (s3://bucket/prefix/, s3://bucket/key?versionId=ID)
    or a local file or folder, which is copied into refstore's blob store.
    """
    artifact = Artifact(
        name, type_, description=description, metadata=_parse_metadata(metadata)
    )
    for item in items:
        _add_item(artifact, item, checksum=not no_checksum, max_objects=max_objects)
    artifact.save(project=project, aliases=aliases)
    if as_json:
        _print_json(_version_dict(artifact))
        return
    verb = "logged" if artifact.created_new_version else "unchanged, already logged as"
    click.echo(
        f"{verb} {artifact.qualified_name} ({artifact.entry_count} entries, "
        f"{_human_size(artifact.size)}); aliases: {', '.join(artifact.aliases)}"
    )


def _add_item(
    artifact: Artifact, item: str, *, checksum: bool, max_objects: int | None
) -> None:
    if is_reference(item):
        counter = _Counter(item)
        artifact.add_reference(
            item, checksum=checksum, max_objects=max_objects, progress=counter
        )
        counter.finish()
        return
    path = Path(item)
    if path.is_dir():
        artifact.add_dir(path)
    elif path.is_file():
        artifact.add_file(path)
    else:
        raise click.BadParameter(
            f"{item!r} is neither a reference URI nor an existing file or folder"
        )


class _Counter:
    """Shows how many objects a long capture has listed so far, on a terminal."""

    def __init__(self, label: str) -> None:
        self._label = label
        self._shown = False

    def __call__(self, count: int) -> None:
        if sys.stderr.isatty():
            click.echo(
                f"\rcapturing {self._label}: {count} objects", nl=False, err=True
            )
            self._shown = True

    def finish(self) -> None:
        if self._shown:
            click.echo(err=True)


def _parse_metadata(text: str | None) -> dict[str, Any]:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"--metadata is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise click.BadParameter('--metadata must be a JSON object, e.g. {"k": 1}')
    return value


@main.command(epilog=EXIT_CODES)
@click.argument("path", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@_handle_errors
def ls(path: str | None, as_json: bool) -> None:
    """List projects, the artifacts of PROJECT, or the versions of PROJECT/NAME."""
    api = Api()
    rows: list[dict[str, Any]]
    if path is None:
        rows = [
            {"project": p.path, "created": p.created_at.isoformat()}
            for p in api.projects()
        ]
    elif path.strip("/").count("/") < 2 and ":" not in path:
        rows = [
            {
                "name": a.name,
                "type": a.type,
                "versions": a.version_count,
                "latest": None if a.latest_version is None else f"v{a.latest_version}",
            }
            for a in api.artifact_collections(path)
        ]
    else:
        rows = [_version_row(a) for a in api.artifact_versions(path)]
    if as_json:
        _print_json(rows)
    else:
        _print_table(rows)


@main.command(epilog=EXIT_CODES)
@click.argument("path")
@click.option("--json", "as_json", is_flag=True, help="Print the version as JSON.")
@click.option(
    "--manifest",
    "as_manifest",
    is_flag=True,
    help="Print the manifest as W&B-compatible JSON.",
)
@click.option(
    "--limit",
    default=20,
    show_default=True,
    help="Entries to list in the text view (0: all).",
)
@_handle_errors
def show(path: str, as_json: bool, as_manifest: bool, limit: int) -> None:
    """Show one artifact version: PROJECT/NAME:ALIAS or :vN."""
    artifact = Api().artifact(path)
    if as_manifest:
        artifact.manifest.write_json(sys.stdout)
        return
    if as_json:
        data = _version_dict(artifact)
        data["entries"] = {e.path: e.to_dict() for e in artifact.manifest}
        _print_json(data)
        return
    for key, value in _version_dict(artifact).items():
        click.echo(f"{key:>12}: {value}")
    entries = artifact.manifest.sorted_entries()
    shown = entries if limit == 0 else entries[:limit]
    _print_table([_entry_row(e) for e in shown])
    if len(shown) < len(entries):
        click.echo(f"... and {len(entries) - len(shown)} more (--limit 0 shows all)")


VERIFY_EXIT_CODES = """\b
Exit codes:
  0  every entry checked; none has a --fail-on status
  1  some entry has a --fail-on status (default: changed, version-gone,
     missing): the data drifted from its record
  2  verification could not run, or some entries could not be checked
     (status error): credentials, network, access denied, bad input
"""


@main.command(epilog=VERIFY_EXIT_CODES)
@click.argument("target")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option(
    "--junit",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a JUnit XML report to this file (one test case per entry).",
)
@click.option(
    "--fail-on",
    default="changed,version-gone,missing",
    show_default=True,
    help="Statuses that make the command exit 1, separated by commas.",
)
@click.option(
    "--shard",
    help=(
        "Verify part I of N (e.g. 2/4), for parallel CI jobs. A folder larger "
        "than 1/N is split by subfolder, or by key range where the store lists "
        "from a key (S3, GCS, file, memory)."
    ),
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    help="Concurrent requests [default: 8 per core, at most 64].",
)
@click.option("--all", "show_all", is_flag=True, help="List ok entries too.")
@_handle_errors
def verify(
    target: str,
    as_json: bool,
    junit: Path | None,
    fail_on: str,
    shard: str | None,
    jobs: int | None,
    show_all: bool,
) -> None:
    """Check that the objects TARGET pins are still there and unchanged.

    TARGET is PROJECT/NAME:ALIAS (or :vN), or a manifest file: refstore's
    JSON or a W&B wandb_manifest.json. Nothing is downloaded: prefixes
    dense with entries are checked with one listing, scattered entries one
    by one. Each entry gets a status: ok, changed, version-gone, missing,
    unverifiable, update-available (a newer version exists; information
    only) or error. --shard I/N splits the entries so that N jobs together
    check each exactly once; a flat folder of S3 or GCS objects is split by
    key range, each job listing its own part of it.
    """
    statuses = parse_statuses(fail_on)
    part = None if shard is None else Shard.parse(shard)
    with contextlib.ExitStack() as stack:
        writer = None
        if junit is not None:
            writer = stack.enter_context(JUnitWriter(junit, target, statuses))
        bar = stack.enter_context(_ProgressBar("verifying"))
        report = _verify_target(
            target,
            jobs=jobs,
            shard=part,
            keep_ok=show_all,
            progress=bar.update,
            on_result=None if writer is None else writer.add,
        )
        if writer is not None:
            writer.finish(report)
    if as_json:
        click.echo(render_json(report))
    else:
        click.echo(render_text(report, show_all=show_all), nl=False)
    sys.exit(report.exit_code(statuses))


def _verify_target(
    target: str,
    *,
    jobs: int | None,
    shard: Shard | None,
    keep_ok: bool,
    progress: ProgressCallback,
    on_result: ResultCallback | None,
) -> VerifyReport:
    options: dict[str, Any] = {
        "jobs": jobs,
        "shard": shard,
        "keep_ok": keep_ok,
        "progress": progress,
        "on_result": on_result,
    }
    if Path(target).is_file():
        return verify_manifest_file(target, **options)
    return Api().artifact(target).verify(**options)


class _ProgressBar(contextlib.AbstractContextManager["_ProgressBar"]):
    """A progress bar on stderr, drawn once the total is known."""

    def __init__(self, label: str) -> None:
        self._label = label
        self._bar: Any = None

    def update(self, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = click.progressbar(
                length=total,
                label=self._label,
                file=sys.stderr,
                update_min_steps=max(1, total // 200),
            )
            self._bar.__enter__()
        self._bar.update(1)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


@main.command(epilog=EXIT_CODES)
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the demo's catalog here [default: a temporary folder].",
)
@_handle_errors
def demo(home: Path | None) -> None:
    """Run refstore end to end against an embedded S3 emulator."""
    from refstore.demo import run_demo

    run_demo(home, echo=click.echo)


# -- rendering -----------------------------------------------------------


def _version_dict(artifact: Artifact) -> dict[str, Any]:
    return {
        "artifact": artifact.qualified_name,
        "type": artifact.type,
        "version": artifact.version,
        "aliases": artifact.aliases,
        "description": artifact.description,
        "metadata": artifact.metadata,
        "entries": artifact.entry_count,
        "size": artifact.size,
        "digest": artifact.digest,
        "created": artifact.created_at.isoformat() if artifact.created_at else None,
    }


def _version_row(artifact: Artifact) -> dict[str, Any]:
    return {
        "version": artifact.version,
        "aliases": ",".join(artifact.aliases),
        "entries": artifact.entry_count,
        "size": artifact.size,
        "digest": artifact.digest[:12],
        "created": artifact.created_at.isoformat() if artifact.created_at else None,
    }


def _entry_row(entry: ManifestEntry) -> dict[str, Any]:
    return {
        "path": entry.path,
        "size": entry.size,
        "ref": entry.ref or "(copied file)",
        "version": entry.version_id or "",
        "digest": entry.digest,
    }


# lineage, alias, ttl and gc live in refstore.cli_catalog; fetch and cache
# in refstore.cli_fetch; runs and sweep in refstore.cli_runs; serve, db, login
# and accounts in refstore.cli_service; diff and delete in
# refstore.cli_versions.
for _command in [
    *cli_catalog.COMMANDS,
    *cli_fetch.COMMANDS,
    *cli_runs.COMMANDS,
    *cli_service.COMMANDS,
    *cli_versions.COMMANDS,
]:
    main.add_command(_command)


if __name__ == "__main__":
    main()
