"""Benchmark: fetching an artifact with refstore vs raw GETs, on the S3 emulator.

Fills a versioned bucket with N small objects and a few large ones, captures
them as refstore would, then measures in the same run:

* raw: boto3 GetObject of every object version (body read and dropped) from
  a thread pool of ``--jobs`` threads: the store's limit, no bookkeeping;
* refstore cold: ``fetch()`` into an empty folder with an empty cache (large
  objects in ranged parts, every checksum checked, atomic writes);
* refstore warm: ``fetch()`` into another empty folder from the warm cache.

Raw and cold alternate for ``--rounds`` rounds; each reports its best round.
Run from the repository root::

    .venv/bin/python -m benchmarks.fetch                  # 2000 x 64 KiB + 3 x 64 MiB
    .venv/bin/python -m benchmarks.fetch --small 500 --large 0
    .venv/bin/python -m benchmarks.fetch --emulator localstack --jobs 32
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from refstore.blobs import BlobStore
from refstore.cache import FetchCache
from refstore.capture import iter_capture
from refstore.fetch import PartPolicy, default_jobs, fetch
from refstore.manifest import ManifestEntry
from refstore.providers.s3 import S3Provider
from refstore.uri import ObjectRef
from tests import emulators
from tests.conftest import S3Env, make_s3_env
from tests.helpers import OneProvider

KIB = 1024
MIB = 1024 * KIB


@dataclasses.dataclass(frozen=True)
class Run:
    name: str
    seconds: float
    objects: int
    size: int
    requests: int

    @property
    def mb_per_second(self) -> float:
        return self.size / self.seconds / 1e6

    @property
    def objects_per_second(self) -> float:
        return self.objects / self.seconds


def main() -> None:
    args = _arguments()
    logging.basicConfig(level=logging.WARNING)
    with (
        tempfile.TemporaryDirectory(prefix="refstore-bench-") as scratch,
        _s3(args.emulator, Path(scratch)) as env,
    ):
        _benchmark(env, Path(scratch), args)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=2000, help="small objects")
    parser.add_argument("--small-kib", type=int, default=64, help="their KiB (64)")
    parser.add_argument("--large", type=int, default=3, help="large objects (3)")
    parser.add_argument("--large-mib", type=int, default=64, help="their MiB (64)")
    parser.add_argument("--part-mib", type=int, default=16, help="part size (16)")
    parser.add_argument(
        "--jobs", type=int, default=default_jobs(), help="workers for both methods"
    )
    parser.add_argument("--rounds", type=int, default=2, help="raw/cold rounds (2)")
    parser.add_argument(
        "--emulator", choices=["moto", "localstack"], default="moto", help="(moto)"
    )
    return parser.parse_args()


@contextlib.contextmanager
def _s3(emulator: str, workdir: Path) -> Iterator[S3Env]:
    clients: dict[str, Any] = {}
    with (
        emulators.isolated_aws_env(workdir),
        emulators.start_emulator(emulator, workdir / "emulator") as server,
    ):
        env = make_s3_env(server, workdir / "home", clients)
        try:
            yield env
        finally:
            env.provider.close()
            for client in clients.values():
                client.close()


def _benchmark(env: S3Env, scratch: Path, args: argparse.Namespace) -> None:
    entries = _fill(env, args)
    size = sum(entry.size or 0 for entry in entries)
    policy = PartPolicy(threshold=args.part_mib * 2 * MIB, size=args.part_mib * MIB)
    raws, colds = [], []
    for round_ in range(args.rounds):
        raws.append(
            _measure("raw boto3 GETs", entries, lambda: _raw(env, entries, args))
        )
        work = scratch / f"round-{round_}"
        colds.append(
            _measure(
                "refstore cold",
                entries,
                lambda work=work: _refstore(env, entries, work, "cold", args, policy),
            )
        )
    warm = _measure(
        "refstore warm cache",
        entries,
        lambda: _refstore(env, entries, scratch / "round-0", "warm", args, policy),
    )
    raw = min(raws, key=lambda run: run.seconds)
    best = min(colds, key=lambda run: run.seconds)
    _report(args, size, [raw, best, warm])


def _fill(env: S3Env, args: argparse.Namespace) -> list[ManifestEntry]:
    started = time.perf_counter()
    bucket = env.make_bucket()
    small = [
        (f"data/small/{n:06d}.bin", os.urandom(args.small_kib * KIB))
        for n in range(args.small)
    ]
    emulators.put_objects(env.client, bucket, small, workers=16)
    for n in range(args.large):
        env.put(bucket, f"data/large/{n:03d}.bin", os.urandom(args.large_mib * MIB))
    prefix = ObjectRef("s3", bucket, "data/")
    entries = [
        ManifestEntry.from_info(path, info)
        for path, info in iter_capture(prefix, env.provider)
    ]
    print(
        f"setup: {args.small} x {args.small_kib} KiB + {args.large} x "
        f"{args.large_mib} MiB into s3://{bucket}/data/ on {env.name} in "
        f"{time.perf_counter() - started:.1f} s; {args.jobs} workers"
    )
    return entries


def _measure(name: str, entries: list[ManifestEntry], work: Callable[[], int]) -> Run:
    started = time.perf_counter()
    requests = work()
    seconds = time.perf_counter() - started
    size = sum(entry.size or 0 for entry in entries)
    run = Run(name, seconds, len(entries), size, requests)
    print(f"  {name}: {seconds:.2f} s, {requests} requests")
    return run


def _raw(env: S3Env, entries: list[ManifestEntry], args: argparse.Namespace) -> int:
    client = emulators.setup_client(env.endpoint_url)
    client.meta.config.max_pool_connections = args.jobs

    def get(entry: ManifestEntry) -> None:
        ref = entry.object_ref()
        body = client.get_object(Bucket=ref.bucket, Key=ref.key, VersionId=ref.version)
        stream = body["Body"]
        while stream.read(MIB):
            pass

    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(get, entries))
    client.close()
    return len(entries)


def _refstore(
    env: S3Env,
    entries: list[ManifestEntry],
    work: Path,
    folder: str,
    args: argparse.Namespace,
    policy: PartPolicy,
) -> int:
    provider = S3Provider(env.settings)
    try:
        fetch(
            entries,
            work / folder,
            providers=OneProvider(provider),
            blobs=BlobStore(work / "blobs"),
            cache=FetchCache(work / "cache"),
            jobs=args.jobs,
            parts=policy,
        )
    finally:
        provider.close()
    return provider.requests.total()


def _report(args: argparse.Namespace, size: int, runs: list[Run]) -> None:
    raw = runs[0]
    print(f"\n{raw.objects} objects, {size / 1e6:.0f} MB, {args.jobs} workers")
    print(f"{'method':<22}{'s':>8}{'MB/s':>9}{'objects/s':>11}{'vs raw':>8}")
    for run in runs:
        ratio = raw.seconds / run.seconds
        print(
            f"{run.name:<22}{run.seconds:>8.2f}{run.mb_per_second:>9.1f}"
            f"{run.objects_per_second:>11.1f}{ratio:>8.0%}"
        )


if __name__ == "__main__":
    main()
