"""Benchmark: verifying an artifact with refstore vs one HEAD per entry.

Starts an emulator (moto by default) and records two artifacts in a versioned
bucket:

* dense: N entries (10 000) under ``data/``, 100 per folder, as a folder
  capture records them;
* sparse: M entries (1 000), each alone in its own folder under ``picks/``;
* flat: F entries (20 000) in the one folder ``flat/``.

For dense and sparse, in the same run: refstore's ``verify`` (its plan lists
the dense prefix and looks the sparse entries up), then the baseline, a
thread pool of HeadObject calls, one per entry, with the same concurrency.
For flat: one unsharded ``verify``, then ``--shards`` shards one after
another, as parallel CI jobs would run them; each shard lists its own key
range of the folder. Each run gets a fresh provider, so the request counts
are its own. Run from the repository root::

    .venv/bin/python -m benchmarks.verify                      # moto
    .venv/bin/python -m benchmarks.verify --entries 50000 --emulator localstack
    .venv/bin/python -m benchmarks.verify --layouts flat --flat 20000 --shards 4
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import tempfile
import time
from pathlib import Path

from refstore.capture import capture
from refstore.config import Settings
from refstore.manifest import Manifest, ManifestEntry
from refstore.providers import Providers
from refstore.providers.s3 import S3Provider
from refstore.uri import ObjectRef
from refstore.verify import Status, verify
from tests import emulators


@dataclasses.dataclass(frozen=True)
class Run:
    method: str
    entries: int
    ok: int
    seconds: float
    requests: dict[str, int]

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    @property
    def per_1000(self) -> float:
        return 1000 * self.total_requests / max(self.entries, 1)


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
    parser.add_argument("--entries", type=int, default=10_000, help="dense (10000)")
    parser.add_argument("--sparse", type=int, default=1000, help="sparse (1000)")
    parser.add_argument("--flat", type=int, default=20_000, help="flat (20000)")
    parser.add_argument("--shards", type=int, default=4, help="for flat (4)")
    parser.add_argument(
        "--layouts",
        default="dense,sparse,flat",
        help="which to run, separated by commas (dense,sparse,flat)",
    )
    parser.add_argument("--jobs", type=int, default=16, help="concurrency (16)")
    parser.add_argument(
        "--emulator", choices=["moto", "localstack"], default="moto", help="(moto)"
    )
    return parser.parse_args()


def _benchmark(
    server: emulators.Emulator, workdir: Path, args: argparse.Namespace
) -> None:
    settings = Settings(
        home=workdir / "home",
        stores={
            "s3": {"endpoint_url": server.endpoint_url, "region": emulators.REGION}
        },
    )
    layouts = {
        "dense": [f"data/{n // 100:04d}/{n:07d}.bin" for n in range(args.entries)],
        "sparse": [f"picks/{n:05d}/pick.bin" for n in range(args.sparse)],
        "flat": [f"flat/{n:07d}.bin" for n in range(args.flat)],
    }
    chosen = [name.strip() for name in args.layouts.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(layouts))
    if unknown:
        raise SystemExit(f"unknown layouts {unknown}: choose from {sorted(layouts)}")
    bucket = _fill_bucket(server, [key for name in chosen for key in layouts[name]])
    results = []
    for name, prefix in (("dense", "data/"), ("sparse", "picks/")):
        if name not in chosen:
            continue
        entries = _record(settings, ObjectRef("s3", bucket, prefix))
        fast = _verify(settings, entries, args.jobs)
        naive = _heads(settings, entries, args.jobs)
        _check(name, len(entries), fast, naive)
        results.append((name, fast, naive))
    if results:
        _report(server.name, args, results)
    if "flat" in chosen:
        entries = _record(settings, ObjectRef("s3", bucket, "flat/"))
        whole = _verify(settings, entries, args.jobs)
        shards = [
            _verify(settings, entries, args.jobs, f"{i}/{args.shards}")
            for i in range(1, args.shards + 1)
        ]
        _check_shards(len(entries), whole, shards)
        _report_shards(server.name, args, whole, shards)


def _fill_bucket(server: emulators.Emulator, keys: list[str]) -> str:
    client = emulators.setup_client(server.endpoint_url)
    started = time.perf_counter()
    bucket = emulators.make_bucket(client, "Enabled", prefix="bench")
    emulators.put_objects(client, bucket, [(k, k.encode()) for k in keys], 32)
    client.close()
    print(
        f"setup: {len(keys)} objects into s3://{bucket}/ on {server.name} "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return bucket


def _record(settings: Settings, prefix: ObjectRef) -> list[ManifestEntry]:
    provider = S3Provider(settings)
    try:
        return [ManifestEntry.from_info(p, i) for p, i in capture(prefix, provider)]
    finally:
        provider.close()


def _verify(
    settings: Settings,
    entries: list[ManifestEntry],
    jobs: int,
    shard: str | None = None,
) -> Run:
    providers = Providers(settings)
    try:
        report = verify(Manifest(entries), providers=providers, jobs=jobs, shard=shard)
    finally:
        providers.close()
    ok = report.counts[Status.OK]
    method = "refstore verify" if shard is None else f"shard {shard}"
    return Run(method, report.total, ok, report.seconds, report.requests)


def _heads(settings: Settings, entries: list[ManifestEntry], jobs: int) -> Run:
    provider = S3Provider(settings)

    def same(entry: ManifestEntry) -> bool:
        info = provider.stat(entry.object_ref())
        return info.etag == entry.etag and info.size == entry.size

    try:
        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            ok = sum(pool.map(same, entries))
        seconds = time.perf_counter() - started
    finally:
        provider.close()
    return Run(
        "HeadObject each", len(entries), ok, seconds, provider.requests.snapshot()
    )


def _check(name: str, expected: int, *runs: Run) -> None:
    for run in runs:
        if (run.entries, run.ok) != (expected, expected):
            raise SystemExit(
                f"{name}: {run.method} found {run.ok} of {expected} entries ok"
            )


def _check_shards(expected: int, whole: Run, shards: list[Run]) -> None:
    _check("flat", expected, whole)
    found = sum(run.ok for run in shards)
    if found != expected or sum(run.entries for run in shards) != expected:
        raise SystemExit(f"flat: the shards found {found} of {expected} entries ok")


def _report_shards(
    emulator: str, args: argparse.Namespace, whole: Run, shards: list[Run]
) -> None:
    print(
        f"\nflat folder of {whole.entries} objects, versioned bucket on {emulator}; "
        f"{args.shards} shards run one after another; {args.jobs} concurrent "
        "requests each\n"
    )
    header = f"{'run':<16}{'entries':>8}{'seconds':>9}{'requests':>10}  by operation"
    print(header)
    print("-" * len(header))
    for run in (whole, *shards):
        operations = ", ".join(f"{op} {n}" for op, n in sorted(run.requests.items()))
        print(
            f"{run.method:<16}{run.entries:>8}{run.seconds:>9.2f}"
            f"{run.total_requests:>10}  {operations}"
        )
    slowest = max(run.seconds for run in shards)
    requests = sum(run.total_requests for run in shards)
    print(
        f"\nshards together: {requests} requests ({whole.total_requests} unsharded); "
        f"the slowest shard took {slowest:.2f} s, {whole.seconds / slowest:.1f}x "
        "faster than one unsharded run"
    )


def _report(
    emulator: str, args: argparse.Namespace, results: list[tuple[str, Run, Run]]
) -> None:
    print(f"\nversioned bucket on {emulator}; {args.jobs} concurrent requests\n")
    header = (
        f"{'layout':<8}{'entries':>8}  {'method':<17}{'seconds':>8}{'requests':>10}"
        f"{'req/1000':>10}  by operation"
    )
    print(header)
    print("-" * len(header))
    for name, fast, naive in results:
        for run in (fast, naive):
            operations = ", ".join(
                f"{op} {n}" for op, n in sorted(run.requests.items())
            )
            print(
                f"{name:<8}{run.entries:>8}  {run.method:<17}{run.seconds:>8.2f}"
                f"{run.total_requests:>10}{run.per_1000:>10.1f}  {operations}"
            )
    print()
    for name, fast, naive in results:
        fewer = naive.total_requests / max(fast.total_requests, 1)
        faster = naive.seconds / fast.seconds
        print(
            f"{name}: refstore sent {fewer:.1f}x fewer requests and took "
            f"{1 / faster:.2f}x the baseline's time ({faster:.1f}x faster)"
        )


if __name__ == "__main__":
    main()
