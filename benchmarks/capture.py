"""Benchmark: capturing a prefix with refstore vs listing + one HEAD per object.

Starts an emulator (moto by default), fills a versioned bucket with N small
objects under ``data/``, then measures in the same run:

* refstore: ``capture(s3://bucket/data/)``, i.e. GetBucketVersioning and the
  paginated ListObjectVersions;
* the naive baseline: ListObjectsV2, then HeadObject for every object (on a
  thread pool, to be generous to it).

Both go through the same S3Provider, so client settings and request counting
are identical. Run from the repository root::

    .venv/bin/python -m benchmarks.capture                      # 5000 objects, moto
    .venv/bin/python -m benchmarks.capture --objects 20000 --emulator localstack
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from refstore.capture import capture
from refstore.config import Settings
from refstore.manifest import ObjectInfo
from refstore.providers.s3 import S3Provider
from refstore.uri import ObjectRef
from tests import emulators

_Work = Callable[[S3Provider], list[ObjectInfo]]


@dataclasses.dataclass(frozen=True)
class Run:
    name: str
    etags: dict[str, str | None]
    seconds: float
    requests: dict[str, int]

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    @property
    def objects_per_second(self) -> float:
        return len(self.etags) / self.seconds

    @property
    def requests_per_1000(self) -> float:
        return 1000 * self.total_requests / max(len(self.etags), 1)


def main() -> None:
    args = _arguments()
    with tempfile.TemporaryDirectory(prefix="refstore-bench-") as scratch:
        workdir = Path(scratch)
        with emulators.isolated_aws_env(workdir):
            server = emulators.start_emulator(args.emulator, workdir / "emulator")
            with server:
                _benchmark(server, workdir, args)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=5000, help="objects (5000)")
    parser.add_argument(
        "--emulator", choices=["moto", "localstack"], default="moto", help="(moto)"
    )
    parser.add_argument(
        "--head-workers", type=int, default=16, help="baseline HEAD threads (16)"
    )
    return parser.parse_args()


def _benchmark(
    server: emulators.Emulator, workdir: Path, args: argparse.Namespace
) -> None:
    bucket = _fill_bucket(server, args.objects)
    prefix = ObjectRef("s3", bucket, "data/")
    settings = Settings(
        home=workdir / "home",
        stores={
            "s3": {"endpoint_url": server.endpoint_url, "region": emulators.REGION}
        },
    )
    refstore_run = _measure("refstore capture", settings, lambda p: _capture(p, prefix))
    naive_run = _measure(
        "ListObjectsV2 + HeadObject each",
        settings,
        lambda p: _list_then_head(p, prefix, args.head_workers),
    )
    _check(args.objects, refstore_run, naive_run)
    _report(server.name, args, refstore_run, naive_run)


def _fill_bucket(server: emulators.Emulator, count: int) -> str:
    client = emulators.setup_client(server.endpoint_url)
    started = time.perf_counter()
    bucket = emulators.make_bucket(client, "Enabled", prefix="bench")
    objects = [(f"data/{n // 100:04d}/{n:07d}.bin", b"%d" % n) for n in range(count)]
    emulators.put_objects(client, bucket, objects, workers=32)
    client.close()
    print(
        f"setup: {count} objects into s3://{bucket}/data/ on {server.name} "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return bucket


def _measure(name: str, settings: Settings, work: _Work) -> Run:
    provider = S3Provider(settings)
    try:
        started = time.perf_counter()
        infos = work(provider)
        seconds = time.perf_counter() - started
    finally:
        provider.close()
    etags = {info.ref.key: info.etag for info in infos}
    return Run(name, etags, seconds, provider.requests.snapshot())


def _capture(provider: S3Provider, prefix: ObjectRef) -> list[ObjectInfo]:
    return [info for _, info in capture(prefix, provider)]


def _list_then_head(
    provider: S3Provider, prefix: ObjectRef, workers: int
) -> list[ObjectInfo]:
    keys = [info.ref for info in provider.scan(prefix)]
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(provider.stat, keys))


def _check(expected: int, *runs: Run) -> None:
    for run in runs:
        if len(run.etags) != expected:
            raise SystemExit(f"{run.name} found {len(run.etags)} of {expected} objects")
    if runs[0].etags != runs[1].etags:
        raise SystemExit("the two methods disagree about the objects' ETags")


def _report(emulator: str, args: argparse.Namespace, fast: Run, naive: Run) -> None:
    print(
        f"\n{args.objects} objects, versioned bucket, {emulator}; baseline HEADs on "
        f"{args.head_workers} threads\n"
    )
    header = (
        f"{'method':<33}{'objects/s':>10}{'seconds':>9}{'requests':>10}"
        f"{'req/1000':>10}  by operation"
    )
    print(header)
    print("-" * len(header))
    for run in (fast, naive):
        operations = ", ".join(f"{op} {n}" for op, n in sorted(run.requests.items()))
        print(
            f"{run.name:<33}{run.objects_per_second:>10.0f}{run.seconds:>9.2f}"
            f"{run.total_requests:>10}{run.requests_per_1000:>10.1f}  {operations}"
        )
    speedup = naive.seconds / fast.seconds
    fewer = naive.total_requests / max(fast.total_requests, 1)
    print(f"\nrefstore: {speedup:.1f}x faster, {fewer:.0f}x fewer requests")


if __name__ == "__main__":
    main()
