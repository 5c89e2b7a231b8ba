"""Benchmark: gc by the blob index against reading every live manifest.

Logs N versions (200) of one artifact into a SQL catalog, each manifest of
M entries (20 000): references, plus F copied files (200) drawn from a pool
of blobs (2 000) that the versions share. G blobs (1 000) no version names
are the garbage. The versions are logged without their files, as versions
logged before the index (revision 0005) are, so the same catalog measures,
in one run and each as a dry run over the same blob store:

* the baseline: gc as it was, reading every live manifest for its copied
  files (:func:`refstore.gc.needed_by_reading`);
* the first gc after upgrading, which reads each manifest once to index it;
* gc by the index: one query, no manifest read.

Each reports seconds, manifests read and the blobs it would delete (the same
set for all three, or the run fails). Run from the repository root::

    .venv/bin/python -m benchmarks.gc
    .venv/bin/python -m benchmarks.gc --versions 50 --entries 100000
    .venv/bin/python -m benchmarks.gc --db postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO, cast

from refstore.blobs import BlobStore
from refstore.catalog.base import Catalog, NewVersion, VersionRecord
from refstore.catalog.sql import SqlCatalog
from refstore.gc import GcReport, collect
from refstore.manifest import ManifestEntry, write_stored

NO_GRACE = datetime.timedelta(0)


class CountingBlobs(BlobStore):
    """A blob store that counts the blobs opened for reading (gc: manifests)."""

    opened = 0

    def open(self, digest: str) -> BinaryIO:
        self.opened += 1
        return super().open(digest)


class WithoutIndex:
    """The catalog as gc saw it before the blob index: only its live manifests."""

    def __init__(self, catalog: SqlCatalog) -> None:
        self._catalog = catalog
        self.blobs = catalog.blobs

    def expired_versions(self) -> list[VersionRecord]:
        return self._catalog.expired_versions()

    def delete_expired(self) -> list[VersionRecord]:
        return self._catalog.delete_expired()

    def live_manifest_blobs(self) -> set[str]:
        return self._catalog.live_manifest_blobs()


@dataclasses.dataclass(frozen=True)
class Run:
    method: str
    seconds: float
    report: GcReport


def main() -> None:
    args = _arguments()
    with tempfile.TemporaryDirectory(prefix="refstore-bench-") as scratch:
        root = Path(scratch)
        with _database(args.db, root) as url:
            blobs = CountingBlobs(root / "blobs")
            with SqlCatalog(url, blobs) as catalog:
                garbage = _fill(catalog, blobs, args)
                runs = _measure(catalog, blobs)
    _check(garbage, runs)
    _report(args, runs)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=200, help="(200)")
    parser.add_argument("--entries", type=int, default=20_000, help="each (20000)")
    parser.add_argument("--files", type=int, default=200, help="copied, each (200)")
    parser.add_argument("--pool", type=int, default=2000, help="file blobs (2000)")
    parser.add_argument("--garbage", type=int, default=1000, help="blobs (1000)")
    parser.add_argument("--db", default=None, help="postgresql://... (SQLite)")
    args = parser.parse_args()
    if not 0 < args.files <= min(args.entries, args.pool):
        parser.error("--files must be between 1 and --entries and --pool")
    return args


@contextlib.contextmanager
def _database(db: str | None, root: Path) -> Iterator[str]:
    if db is None:
        yield f"sqlite:///{root / 'catalog.db'}"
        return
    from benchmarks.service import fresh_schema

    with fresh_schema(db) as url:
        yield url


# -- setup ------------------------------------------------------------------


def _fill(catalog: SqlCatalog, blobs: BlobStore, args: argparse.Namespace) -> set[str]:
    """Log the versions; return the digests of the garbage blobs."""
    started = time.perf_counter()
    pool = [_put(blobs, f"file {n}".encode()) for n in range(args.pool)]
    garbage = {_put(blobs, f"garbage {n}".encode()) for n in range(args.garbage)}
    for version in range(args.versions):
        catalog.log_version(_new_version(blobs, version, pool, args))
    print(
        f"setup: {args.versions} versions of {args.entries} entries "
        f"({args.files} copied files each, from {args.pool} blobs), "
        f"{args.garbage} garbage blobs, in {time.perf_counter() - started:.1f} s"
    )
    return garbage


def _put(blobs: BlobStore, data: bytes) -> str:
    with blobs.writer() as blob:
        blob.write(data)
    return blob.digest


def _new_version(
    blobs: BlobStore, version: int, pool: list[str], args: argparse.Namespace
) -> NewVersion:
    with blobs.writer() as blob:
        entries = _entries(version, pool, args)
        digest, count = write_stored(entries, cast(IO[bytes], blob))
    return NewVersion(
        project="bench/gc",
        name="data",
        type="dataset",
        digest=digest,
        manifest_blob=blob.digest,
        entry_count=count,
        total_size=0,
        # Logged as before the index: gc finds the files by reading.
        files=None,
    )


def _entries(version: int, pool: list[str], args: argparse.Namespace) -> Iterator[Any]:
    """References under data/, then copied files under files/: path order."""
    for n in range(args.entries - args.files):
        etag = f"{(n + version) * 2654435761 % 2**128:032x}"
        path = f"data/{n // 1000:04d}/{n:08d}.jpg"
        yield ManifestEntry(
            path=path,
            digest=etag,
            ref=f"s3://acme-datasets/furniture/{path}",
            size=50_000 + n % 10_000,
            extra={"etag": etag, "versionID": f"v{version:05d}{n:013d}"},
        )
    for n in range(args.files):
        digest = pool[(version * args.files + n) % len(pool)]
        yield ManifestEntry(path=f"files/{n:06d}.bin", digest=digest, size=10)


# -- measuring --------------------------------------------------------------


def _measure(catalog: SqlCatalog, blobs: CountingBlobs) -> list[Run]:
    baseline = cast(Catalog, WithoutIndex(catalog))
    return [
        _timed("read every manifest (before)", baseline, blobs),
        _timed("first gc after upgrading", catalog, blobs),
        _timed("gc by the index", catalog, blobs),
    ]


def _timed(method: str, catalog: Catalog, blobs: CountingBlobs) -> Run:
    blobs.opened = 0
    started = time.perf_counter()
    now = datetime.datetime.now(datetime.UTC)
    report = collect(catalog, now=now, dry_run=True, grace=NO_GRACE)
    seconds = time.perf_counter() - started
    if report.manifests_read != blobs.opened:
        raise SystemExit(
            f"{method}: gc says it read {report.manifests_read} manifests, "
            f"the blob store opened {blobs.opened}"
        )
    return Run(method, seconds, report)


def _check(garbage: set[str], runs: list[Run]) -> None:
    for run in runs:
        if set(run.report.blobs) != garbage:
            raise SystemExit(
                f"{run.method} would delete {len(run.report.blobs)} blobs, not the "
                f"{len(garbage)} garbage blobs: the methods disagree"
            )


def _report(args: argparse.Namespace, runs: list[Run]) -> None:
    print(
        f"\n{args.versions} versions x {args.entries} entries, "
        f"{args.db.split('://')[0] if args.db else 'sqlite'} catalog\n"
    )
    header = (
        f"{'method':<30}{'seconds':>9}{'manifests read':>16}"
        f"{'indexed':>9}{'to delete':>11}"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        report = run.report
        print(
            f"{run.method:<30}{run.seconds:>9.2f}{report.manifests_read:>16}"
            f"{report.indexed_versions:>9}{len(report.blobs):>11}"
        )
    baseline, first, indexed = runs
    print(
        f"\ngc by the index took {indexed.seconds / baseline.seconds:.1%} of the "
        f"baseline's time ({baseline.seconds / indexed.seconds:.0f}x faster); the "
        f"one-off indexing took {first.seconds / baseline.seconds:.2f}x the baseline"
    )


if __name__ == "__main__":
    main()
