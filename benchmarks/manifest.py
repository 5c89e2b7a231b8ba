"""How long a large manifest takes to build, store, load and digest, and its memory.

    .venv/bin/python benchmarks/manifest.py                 # 1 000 000 entries
    .venv/bin/python benchmarks/manifest.py --entries 100000 --no-tracemalloc

Each step reports wall time, the peak of Python allocations during the step
(tracemalloc; it slows the run down two to three times, so compare timings
with --no-tracemalloc) and the process's peak resident size so far
(ru_maxrss, which never goes down). The entries look like a versioned S3
prefix: an ETag, a VersionId and a size each.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import resource
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

from refstore.blobs import BlobStore
from refstore.manifest import (
    Manifest,
    ManifestEntry,
    digest_entries,
    read_stored,
    write_stored,
)

MIB = 1024 * 1024


@dataclasses.dataclass
class Step:
    name: str
    seconds: float = 0.0
    peak_bytes: int | None = None


def entries(count: int) -> Iterator[ManifestEntry]:
    for index in range(count):
        etag = f"{index * 2654435761 % 2**128:032x}"
        path = f"images/{index // 1000:04d}/{index:08d}.jpg"
        yield ManifestEntry(
            path=path,
            digest=etag,
            ref=f"s3://acme-datasets/furniture/{path}",
            size=50_000 + index % 10_000,
            extra={"etag": etag, "versionID": f"3HL4kqtJlcpXroDTDmJ{index:013d}"},
        )


@contextlib.contextmanager
def measured(step: Step, trace: bool) -> Iterator[None]:
    if trace:
        tracemalloc.reset_peak()
    start = time.perf_counter()
    yield
    step.seconds = time.perf_counter() - start
    if trace:
        step.peak_bytes = tracemalloc.get_traced_memory()[1]


def max_rss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024  # Linux reports KiB


def report(step: Step) -> None:
    peak = "-" if step.peak_bytes is None else f"{step.peak_bytes / MIB:,.0f} MiB"
    print(
        f"{step.name:<28} {step.seconds:8.2f} s   peak {peak:>10}   "
        f"max rss {max_rss_bytes() / MIB:,.0f} MiB"
    )


def run(count: int, trace: bool, folder: Path) -> None:
    blobs = BlobStore(folder)
    if trace:
        tracemalloc.start()
    print(f"{count:,} entries; blob store in {folder}")

    step = Step("build Manifest")
    with measured(step, trace):
        manifest = Manifest(entries(count))
    report(step)

    step = Step("store (sort + write_stored)")
    with measured(step, trace), blobs.writer() as blob:
        stored_digest, written = write_stored(manifest.sorted_entries(), blob)
    report(step)
    assert written == count
    del manifest

    step = Step("load (read_stored)")
    with measured(step, trace), blobs.open(blob.digest) as stream:
        loaded = Manifest(read_stored(stream))
    report(step)

    step = Step("digest (Manifest.digest)")
    with measured(step, trace):
        digest = loaded.digest()
    report(step)
    assert digest == stored_digest, "the digest differs from the stored one"
    del loaded

    step = Step("stream digest, no Manifest")
    with measured(step, trace), blobs.open(blob.digest) as stream:
        streamed = digest_entries(read_stored(stream))
    report(step)
    assert streamed == stored_digest

    print(
        f"stored size {blob.size / MIB:,.1f} MiB "
        f"({blob.size / count:.1f} bytes per entry, zstd level 3)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument(
        "--no-tracemalloc",
        dest="trace",
        action="store_false",
        help="time without tracemalloc's overhead (no per-step peaks)",
    )
    parser.add_argument("--dir", type=Path, help="blob store folder [a temporary one]")
    args = parser.parse_args()
    if args.dir is not None:
        run(args.entries, args.trace, args.dir)
        return
    with tempfile.TemporaryDirectory(prefix="refstore-bench-") as folder:
        run(args.entries, args.trace, Path(folder))


if __name__ == "__main__":
    main()
