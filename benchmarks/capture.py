"""Benchmark: capturing objects with refstore vs one stat per object.

Fills a store with N small objects under ``data/`` through the conformance
suite's Store for it (``tests/providers/store_*.py``), then measures in the
same run:

* refstore: ``capture()`` as ``add_reference`` calls it: one capture of the
  folder where the store lists (S3: GetBucketVersioning and the paginated
  ListObjectVersions; file/memory: one find), one capture per URL where it
  cannot (HTTP);
* the naive baseline: list (where the store can), then one stat per object
  on a thread pool, to be generous to it.

Each method gets a fresh provider built from the same settings, so request
counts are its own. Providers: ``s3`` (on ``--emulator`` moto or
LocalStack), ``gcs`` (fake-gcs-server), ``azure`` (Azurite), ``http`` (the
aiohttp test server), ``file`` (a temporary
folder; its capture hashes every file), ``memory``. Run from the repository
root::

    .venv/bin/python -m benchmarks.capture                      # 5000 objects, moto
    .venv/bin/python -m benchmarks.capture --objects 20000 --emulator localstack
    .venv/bin/python -m benchmarks.capture --provider http --objects 2000
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import dataclasses
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from refstore.capture import capture
from refstore.manifest import ObjectInfo
from refstore.providers.base import Provider, lists_prefixes
from refstore.uri import ObjectRef
from tests import emulators
from tests.providers.stores import Store

_Work = Callable[[Provider], list[ObjectInfo]]


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
    # Each unversioned object captured alone (every HTTP URL) warns that it may
    # be overwritten; thousands of those lines would bury the figures.
    logging.getLogger("refstore.capture").setLevel(logging.ERROR)
    with (
        tempfile.TemporaryDirectory(prefix="refstore-bench-") as scratch,
        _store(args, Path(scratch)) as store,
    ):
        _benchmark(store, args)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=5000, help="objects (5000)")
    parser.add_argument(
        "--provider",
        choices=["s3", "gcs", "azure", "http", "file", "memory"],
        default="s3",
        help="(s3)",
    )
    parser.add_argument(
        "--emulator",
        choices=["moto", "localstack"],
        default="moto",
        help="S3 emulator (moto)",
    )
    parser.add_argument(
        "--head-workers", type=int, default=16, help="baseline stat threads (16)"
    )
    return parser.parse_args()


@contextlib.contextmanager
def _store(args: argparse.Namespace, workdir: Path) -> Iterator[Store]:
    home = workdir / "home"
    if args.provider == "s3":
        with _s3_store(args.emulator, workdir) as store:
            yield store
    elif args.provider == "gcs":
        with _gcs_store(workdir) as store:
            yield store
    elif args.provider == "azure":
        with _azurite_store(workdir) as store:
            yield store
    elif args.provider == "http":
        from tests.providers.store_http import HttpServer, HttpStore

        server = HttpServer().start()
        try:
            yield HttpStore(server, home)
        finally:
            server.stop()
    elif args.provider == "file":
        from tests.providers.store_fsspec import FileStore

        (workdir / "files").mkdir()
        yield FileStore(workdir / "files", home)
    else:
        from tests.providers.store_fsspec import MemoryStore

        yield MemoryStore(home)


@contextlib.contextmanager
def _s3_store(emulator: str, workdir: Path) -> Iterator[Store]:
    from tests.conftest import make_s3_env
    from tests.providers.store_s3 import S3Store

    clients: dict[str, Any] = {}
    with emulators.isolated_aws_env(workdir):
        server = emulators.start_emulator(emulator, workdir / "emulator")
        with server:
            env = make_s3_env(server, workdir / "home", clients)
            yield S3Store(env)
            env.provider.close()
            for client in clients.values():
                client.close()


@contextlib.contextmanager
def _gcs_store(workdir: Path) -> Iterator[Store]:
    from refstore.providers.gcs import GcsProvider
    from tests.providers.store_gcs import GcsStore, gcs_settings, setup_client

    with emulators.start_fake_gcs(workdir / "emulator") as server:
        settings = gcs_settings(workdir / "home", server.endpoint_url)
        provider = GcsProvider(settings)
        client = setup_client(server.endpoint_url)
        try:
            yield GcsStore(server.endpoint_url, client, settings, provider)
        finally:
            provider.close()
            client.close()


@contextlib.contextmanager
def _azurite_store(workdir: Path) -> Iterator[Store]:
    from tests.providers.store_azure import AzuriteSetup, AzuriteStore, start_azurite

    with start_azurite(workdir / "emulator") as server:
        setup = AzuriteSetup(server.endpoint_url)
        store = AzuriteStore(setup, workdir / "home")
        try:
            yield store
        finally:
            store.close()
            setup.client.close()


def _benchmark(store: Store, args: argparse.Namespace) -> None:
    bucket = _fill(store, args.objects)
    keys = [f"data/{n // 100:04d}/{n:07d}.bin" for n in range(args.objects)]
    refs = [store.ref(bucket, key) for key in keys]
    prefix = store.ref(bucket, "data/")
    refstore_run = _measure(
        "refstore capture", store, lambda p: _capture(p, prefix, refs)
    )
    naive_run = _measure(
        _baseline_name(store),
        store,
        lambda p: _list_then_stat(p, prefix, refs, args.head_workers),
    )
    _check(args.objects, refstore_run, naive_run)
    _report(store.name, args, refstore_run, naive_run)


def _fill(store: Store, count: int) -> str:
    started = time.perf_counter()
    bucket = store.make_bucket()
    objects = {f"data/{n // 100:04d}/{n:07d}.bin": b"%d" % n for n in range(count)}
    store.put_many(bucket, objects)
    print(
        f"setup: {count} objects into {store.ref(bucket, 'data/')} on {store.name} "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return bucket


def _measure(name: str, store: Store, work: _Work) -> Run:
    # A fresh provider per method: its request counts are that method's own.
    provider: Provider = type(store.provider)(store.settings)
    try:
        started = time.perf_counter()
        infos = work(provider)
        seconds = time.perf_counter() - started
    finally:
        close = getattr(provider, "close", None)
        if callable(close):
            close()
    etags = {info.ref.key: info.etag for info in infos}
    return Run(name, etags, seconds, provider.requests.snapshot())


def _capture(
    provider: Provider, prefix: ObjectRef, refs: list[ObjectRef]
) -> list[ObjectInfo]:
    if lists_prefixes(provider):
        return [info for _, info in capture(prefix, provider)]
    # Without a listing every URL is its own reference, captured in turn.
    return [info for ref in refs for _, info in capture(ref, provider)]


def _baseline_name(store: Store) -> str:
    if lists_prefixes(store.provider):
        return "list + stat each"
    return "stat each (no listing)"


def _list_then_stat(
    provider: Provider, prefix: ObjectRef, refs: list[ObjectRef], workers: int
) -> list[ObjectInfo]:
    if lists_prefixes(provider):
        refs = [info.ref for info in provider.scan(prefix)]
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(provider.stat, refs))


def _check(expected: int, *runs: Run) -> None:
    for run in runs:
        if len(run.etags) != expected:
            raise SystemExit(f"{run.name} found {len(run.etags)} of {expected} objects")
    if runs[0].etags != runs[1].etags:
        raise SystemExit("the two methods disagree about the objects' ETags")


def _report(store: str, args: argparse.Namespace, fast: Run, naive: Run) -> None:
    print(
        f"\n{args.objects} objects on {store}; baseline stats on "
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
