"""Commands that bring data to this machine: ``fetch`` and ``cache``.

:mod:`refstore.cli` adds them to the ``refstore`` group. Like every command,
they parse, call the API and render; the fetch shows its progress (bytes,
objects, throughput, ETA) on standard error when that is a terminal.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from refstore.api import Api
from refstore.cache import FetchCache
from refstore.cli_output import EXIT_CODES, handle_errors, human_size, print_json
from refstore.config import Settings, parse_size
from refstore.errors import ConfigError
from refstore.fetch import FetchResult
from refstore.progress import ProgressSnapshot, TransferProgress

__all__ = ["COMMANDS", "progress_line"]

_REFRESH_SECONDS = 0.25


@click.command(epilog=EXIT_CODES)
@click.argument("path")
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder to fetch into [default: ./artifacts/NAME:VERSION].",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    help="Concurrent transfers [default: 8 per core, at most 64].",
)
@click.option(
    "--path-prefix",
    help="Fetch only the entries whose path starts with this.",
)
@click.option(
    "--skip-missing",
    is_flag=True,
    help="Skip (and list) entries whose object or version is gone.",
)
@click.option("--no-cache", is_flag=True, help="Bypass the fetch cache.")
@click.option(
    "--copy",
    is_flag=True,
    help="Copy from the cache instead of hard-linking (writable files).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def fetch(
    path: str,
    output: Path | None,
    jobs: int | None,
    path_prefix: str | None,
    skip_missing: bool,
    no_cache: bool,
    copy: bool,
    as_json: bool,
) -> None:
    """Fetch the exact object versions of PROJECT/NAME:ALIAS into a folder.

    Objects come from the fetch cache (REFSTORE_CACHE_DIR) when it holds
    them, hard-linked (read-only) unless --copy; otherwise from their stores,
    checked against every recorded checksum. Run it again after an
    interruption: it transfers only what is missing.
    """
    artifact = Api().artifact(path)
    progress = TransferProgress()
    with _shown(progress):
        result = artifact.fetch(
            output,
            jobs=jobs,
            path_prefix=path_prefix,
            skip_missing=skip_missing,
            cache=not no_cache,
            link=not copy,
            progress=progress,
        )
    if as_json:
        print_json({"artifact": artifact.qualified_name, **_result_dict(result)})
        return
    for missing, reason in result.missing:
        click.echo(f"skipped {missing}: {reason}", err=True)
    click.echo(_summary(result))


def _result_dict(result: FetchResult) -> dict[str, Any]:
    return {
        "root": str(result.root),
        "fetched": result.fetched,
        "from_cache": result.from_cache,
        "skipped": result.skipped,
        "missing": [{"path": p, "reason": r} for p, r in result.missing],
        "bytes": result.bytes_fetched,
        "seconds": round(result.seconds, 3),
    }


def _summary(result: FetchResult) -> str:
    parts = [
        f"fetched {result.fetched} objects ({human_size(result.bytes_fetched)})",
        f"{result.from_cache} from the cache",
        f"kept {result.skipped} already present",
    ]
    if result.missing:
        parts.append(f"skipped {len(result.missing)} missing")
    return f"{', '.join(parts)}; into {result.root}"


@contextlib.contextmanager
def _shown(progress: TransferProgress) -> Iterator[None]:
    """Redraw the progress line on a terminal until the block ends."""
    if not sys.stderr.isatty():
        yield
        return
    stop = threading.Event()

    def draw() -> None:
        while not stop.wait(_REFRESH_SECONDS):
            _paint(progress, newline=False)

    painter = threading.Thread(target=draw, name="refstore-progress", daemon=True)
    painter.start()
    try:
        yield
    finally:
        stop.set()
        painter.join()
        _paint(progress, newline=True)


def _paint(progress: TransferProgress, *, newline: bool) -> None:
    # Back to the start of the line, draw, clear what a longer line left.
    line = progress_line(progress.snapshot())
    click.echo(f"\r{line}\x1b[K", nl=newline, err=True)


def progress_line(snapshot: ProgressSnapshot) -> str:
    """``fetching 1.2 GiB / 3.4 GiB, 120/500 objects, 85.3 MiB/s, ETA 0:26``."""
    eta = snapshot.eta_seconds
    shown_eta = "--:--" if eta is None else _clock(eta)
    return (
        f"fetching {human_size(snapshot.bytes_done)} / "
        f"{human_size(snapshot.bytes_total)}, "
        f"{snapshot.objects_done}/{snapshot.objects_total} objects, "
        f"{human_size(int(snapshot.bytes_per_second))}/s, ETA {shown_eta}"
    )


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@click.group(epilog=EXIT_CODES)
def cache() -> None:
    """Look after the fetch cache shared by every artifact.

    It lives in REFSTORE_CACHE_DIR (default: REFSTORE_HOME/cache). Its size
    limit comes from REFSTORE_CACHE_MAX_BYTES or [cache] max_size in
    config.toml; fetches evict the least recently used objects beyond it.
    """


@cache.command("info", epilog=EXIT_CODES)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def cache_info(as_json: bool) -> None:
    """Show where the cache is, how much it holds, and its limit."""
    usage = FetchCache.from_settings(Settings.from_env()).usage()
    data = {
        "root": str(usage.root),
        "objects": usage.objects,
        "bytes": usage.bytes,
        "max_bytes": usage.max_bytes,
        "partial_downloads": usage.partial,
    }
    if as_json:
        print_json(data)
        return
    limit = "none" if usage.max_bytes is None else human_size(usage.max_bytes)
    click.echo(f"{'cache':>18}: {usage.root}")
    click.echo(f"{'objects':>18}: {usage.objects} ({human_size(usage.bytes)})")
    click.echo(f"{'limit':>18}: {limit}")
    click.echo(f"{'partial downloads':>18}: {usage.partial}")


@cache.command("prune", epilog=EXIT_CODES)
@click.option(
    "--max-size",
    help="Keep at most this much (e.g. 20GiB, 500MB, 0) [default: the limit].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@handle_errors
def cache_prune(max_size: str | None, as_json: bool) -> None:
    """Evict the least recently used objects down to a size.

    Files already fetched into folders stay there: eviction removes the
    cache's own link to them only.
    """
    fetch_cache = FetchCache.from_settings(Settings.from_env())
    limit = None if max_size is None else parse_size(max_size, "--max-size")
    if limit is None and fetch_cache.max_bytes is None:
        raise ConfigError(
            "the cache has no size limit: give --max-size, or set "
            "REFSTORE_CACHE_MAX_BYTES or [cache] max_size in config.toml"
        )
    result = fetch_cache.prune(limit)
    if as_json:
        print_json(
            {
                "removed": result.removed,
                "freed": result.freed,
                "kept": result.kept,
                "kept_bytes": result.kept_bytes,
                "stale_parts": result.stale_parts,
            }
        )
        return
    click.echo(
        f"removed {result.removed} objects ({human_size(result.freed)}); "
        f"kept {result.kept} ({human_size(result.kept_bytes)})"
    )


COMMANDS = [fetch, cache]
