"""Benchmark: fetching an artifact with refstore vs raw GETs, on the S3 emulator.

Fills a versioned bucket with N small objects and a few large ones, captures
them as refstore would, then measures in the same run:

* raw GETs: boto3 GetObject of every object version (body read and dropped)
  from a thread pool of ``--jobs`` threads: the store's limit, no
  bookkeeping;
* raw GETs into files: the same, each body written to a new file: the limit
  for anything that lands the bytes on disk (this machine's disk included);
* refstore cold: ``fetch()`` into an empty folder with an empty cache (large
  objects in ranged parts, every checksum checked, atomic writes, cached);
* refstore warm: ``fetch()`` into another empty folder from the warm cache.

The first three run in every round, in a rotating order; each reports its
median round, and its share of raw is the median of the per-round ratios
(rounds measured side by side drift together on a noisy machine). "CPU" is
the benchmark process's (user + system), "emulator CPU" the emulator's over
the same span: on a machine of two cores they share, every CPU second the
client spends is one the emulator cannot, so both are shown.

``--pin`` runs the emulator on the last CPU and the benchmark on the others,
as a store runs on machines of its own; without it they share every CPU.
``--scratch`` says where the files land: by default ``.bench/`` in the
checkout, on the disk a user's own folders are on. Creating a file costs
very different amounts from one filesystem, and even one folder, to the next
(on the machine of the README's figures: about 0.05 ms under the checkout,
0.1-0.5 ms in /var/tmp, 0.5-1 ms in /tmp), and every method here creates
one per object. Run from the repository root::

    .venv/bin/python -m benchmarks.fetch                  # 2000 x 64 KiB + 3 x 64 MiB
    .venv/bin/python -m benchmarks.fetch --pin --scratch /tmp
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
import statistics
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


RAW = "raw GETs"
FILES = "raw GETs into files"
COLD = "refstore cold"
WARM = "refstore warm cache"


@dataclasses.dataclass(frozen=True)
class Sample:
    """One method in one round."""

    seconds: float
    cpu: float
    emulator_cpu: float
    requests: int


@dataclasses.dataclass(frozen=True)
class Result:
    """One method over every round it ran in."""

    name: str
    samples: list[Sample]
    objects: int
    size: int
    #: median of raw's seconds / this method's seconds, round by round
    share_of_raw: float | None
    share_of_files: float | None

    @property
    def seconds(self) -> float:
        return statistics.median(s.seconds for s in self.samples)

    @property
    def cpu(self) -> float:
        return statistics.median(s.cpu for s in self.samples)

    @property
    def emulator_cpu(self) -> float:
        return statistics.median(s.emulator_cpu for s in self.samples)

    @property
    def requests(self) -> int:
        return self.samples[0].requests


def main() -> None:
    args = _arguments()
    logging.basicConfig(level=logging.WARNING)
    args.scratch.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory(prefix="refstore-bench-", dir=args.scratch) as tmp,
        _s3(args.emulator, Path(tmp), pin=args.pin) as (env, server),
    ):
        _benchmark(env, server, Path(tmp), args)


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
    parser.add_argument("--rounds", type=int, default=5, help="rounds (5)")
    parser.add_argument(
        "--emulator", choices=["moto", "localstack"], default="moto", help="(moto)"
    )
    parser.add_argument(
        "--pin", action="store_true", help="emulator on the last CPU, us on the rest"
    )
    parser.add_argument(
        "--scratch",
        type=Path,
        default=emulators.REPO / ".bench",
        help="where files land (.bench/ in the checkout)",
    )
    return parser.parse_args()


@contextlib.contextmanager
def _s3(
    emulator: str, workdir: Path, *, pin: bool
) -> Iterator[tuple[S3Env, emulators.Emulator]]:
    clients: dict[str, Any] = {}
    with (
        emulators.isolated_aws_env(workdir),
        emulators.start_emulator(emulator, workdir / "emulator") as server,
    ):
        if pin:
            _pin(server.process.pid)
        env = make_s3_env(server, workdir / "home", clients)
        try:
            yield env, server
        finally:
            env.provider.close()
            for client in clients.values():
                client.close()


def _pin(emulator_pid: int) -> None:
    """The emulator (every thread of it) on the last CPU, this process elsewhere.

    Called before this process starts any thread, so that its threads inherit
    the setting; the emulator's threads started later inherit theirs too.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        raise SystemExit("--pin needs two CPUs or more")
    for task in Path(f"/proc/{emulator_pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), {cpus[-1]})
    os.sched_setaffinity(0, set(cpus[:-1]))
    print(f"pinned: emulator on CPU {cpus[-1]}, benchmark on CPU {cpus[:-1]}")


def _process_cpu(pid: int) -> float:
    """User + system seconds of process ``pid`` (every thread) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    # utime and stime are the 14th and 15th fields; the text after ")" starts
    # with the 3rd.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _benchmark(
    env: S3Env, server: emulators.Emulator, scratch: Path, args: argparse.Namespace
) -> None:
    pid = server.process.pid
    entries = _fill(env, args)
    policy = PartPolicy(threshold=args.part_mib * 2 * MIB, size=args.part_mib * MIB)

    def method(name: str, round_: int) -> Callable[[], int]:
        work = scratch / f"round-{round_}"
        if name == RAW:
            return lambda: _raw(env, entries, None, args)
        if name == FILES:
            return lambda: _raw(env, entries, work / "files", args)
        return lambda: _refstore(env, entries, work, "cold", args, policy)

    names = [RAW, FILES, COLD]
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    for round_ in range(args.rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(_measure(name, pid, method(name, round_)))
    warm = _measure(
        WARM,
        pid,
        lambda: _refstore(env, entries, scratch / "round-0", "warm", args, policy),
    )
    samples[WARM] = [warm]
    _report(args, scratch, entries, samples)


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


def _measure(name: str, emulator_pid: int, work: Callable[[], int]) -> Sample:
    cpu = time.process_time()
    emulator_cpu = _process_cpu(emulator_pid)
    started = time.perf_counter()
    requests = work()
    sample = Sample(
        time.perf_counter() - started,
        time.process_time() - cpu,
        _process_cpu(emulator_pid) - emulator_cpu,
        requests,
    )
    print(
        f"  {name}: {sample.seconds:.2f} s, CPU {sample.cpu:.2f} s, emulator CPU "
        f"{sample.emulator_cpu:.2f} s, {requests} requests"
    )
    return sample


def _raw(
    env: S3Env,
    entries: list[ManifestEntry],
    folder: Path | None,
    args: argparse.Namespace,
) -> int:
    """GET every object version; write each body to a new file in ``folder``."""
    client = emulators.setup_client(env.endpoint_url)
    client.meta.config.max_pool_connections = args.jobs
    if folder is not None:
        folder.mkdir(parents=True)

    def get(numbered: tuple[int, ManifestEntry]) -> None:
        number, entry = numbered
        ref = entry.object_ref()
        body = client.get_object(Bucket=ref.bucket, Key=ref.key, VersionId=ref.version)
        stream = body["Body"]
        if folder is None:
            while stream.read(MIB):
                pass
            return
        with (folder / f"{number:07d}").open("xb") as out:
            while chunk := stream.read(MIB):
                out.write(chunk)

    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        list(pool.map(get, enumerate(entries)))
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


def _report(
    args: argparse.Namespace,
    scratch: Path,
    entries: list[ManifestEntry],
    samples: dict[str, list[Sample]],
) -> None:
    size = sum(entry.size or 0 for entry in entries)
    results = [
        Result(
            name,
            found,
            len(entries),
            size,
            _share(samples[RAW], found),
            _share(samples[FILES], found),
        )
        for name, found in samples.items()
    ]
    print(
        f"\n{len(entries)} objects, {size / 1e6:.0f} MB, {args.jobs} workers, "
        f"median of {args.rounds} rounds, {args.emulator}"
        f"{', pinned' if args.pin else ''}, files in {scratch.parent}"
    )
    print(
        f"{'method':<22}{'s':>8}{'MB/s':>9}{'objects/s':>11}{'CPU s':>8}"
        f"{'emu CPU':>9}{'requests':>10}{'vs raw':>8}{'vs files':>10}"
    )
    for result in results:
        print(
            f"{result.name:<22}{result.seconds:>8.2f}"
            f"{result.size / result.seconds / 1e6:>9.1f}"
            f"{result.objects / result.seconds:>11.1f}{result.cpu:>8.2f}"
            f"{result.emulator_cpu:>9.2f}"
            f"{result.requests:>10}{_percent(result.share_of_raw):>8}"
            f"{_percent(result.share_of_files):>10}"
        )


def _share(baseline: list[Sample], samples: list[Sample]) -> float | None:
    """Median of baseline / method seconds over the rounds both ran in."""
    if len(samples) != len(baseline):
        return None  # the warm fetch runs once, after the rounds
    return statistics.median(
        base.seconds / sample.seconds
        for base, sample in zip(baseline, samples, strict=True)
    )


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.0%}"


if __name__ == "__main__":
    main()
