"""Benchmark: the refstore service on PostgreSQL.

Starts ``refstore serve`` as a separate process on a fresh PostgreSQL
schema and measures, from 50 concurrent clients (aiohttp, one event loop):

* resolve-alias: ``GET .../versions/best``, requests/s and p50/p99 latency;
* log-version: the whole log protocol of the library (ask which blobs are
  missing, upload the manifest, record the version with an idempotency
  key), logs/s and p50/p99 latency per log;

then, on a second fresh service process, logs a 100 000-entry manifest
through the library (:class:`refstore.catalog.http.HttpCatalog`) and reads
it back (download and parse), reporting seconds and the service's peak
resident memory (VmHWM). Run from the repository root::

    .venv/bin/python -m benchmarks.service
    .venv/bin/python -m benchmarks.service --clients 50 --seconds 10 --entries 100000
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import io
import json
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from refstore.catalog.base import NewVersion
from refstore.catalog.http import HttpCatalog
from refstore.config import Settings
from refstore.manifest import ManifestEntry, read_stored, write_stored
from tests.service import ADMIN_TOKEN, free_port, start_process, stop_process

PROJECT = "/api/v1/projects/bench/p"
DEFAULT_DB = os.environ.get(
    "REFSTORE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@dataclasses.dataclass
class Latencies:
    name: str
    seconds: float
    samples: list[float]
    errors: int

    def row(self) -> dict[str, Any]:
        ordered = sorted(self.samples)
        return {
            "operation": self.name,
            "requests": len(ordered),
            "per_second": round(len(ordered) / self.seconds, 1),
            "p50_ms": round(1000 * statistics.median(ordered), 2),
            "p99_ms": round(1000 * ordered[int(0.99 * (len(ordered) - 1))], 2),
            "errors": self.errors,
        }


@contextlib.contextmanager
def fresh_schema(db_url: str) -> Iterator[str]:
    libpq = make_url(db_url).set(drivername="postgresql").render_as_string(False)
    schema = f"refstore_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(libpq, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    url = make_url(db_url).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq, autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema))
            )


@contextlib.contextmanager
def service(db_url: str, root: Path) -> Iterator[tuple[str, int]]:
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    process = start_process(db_url, root / "blobs", port, root / "serve.log")
    try:
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        stop_process(process)


def manifest(entries: list[ManifestEntry]) -> tuple[bytes, str]:
    """A stored manifest's bytes and its digest."""
    buffer = io.BytesIO()
    digest, _ = write_stored(sorted(entries, key=lambda e: e.path), buffer)
    return buffer.getvalue(), digest


def reference(index: int, tag: str) -> ManifestEntry:
    key = f"data/{tag}/part-{index:07d}.parquet"
    etag = hashlib.md5(key.encode()).hexdigest()
    return ManifestEntry(
        path=key,
        digest=etag,
        ref=f"s3://bench-bucket/{key}",
        size=1000 + index,
        extra={"etag": etag, "versionID": uuid.uuid4().hex},
    )


# -- the load phases ----------------------------------------------------------


async def load(
    clients: int,
    seconds: float,
    work: Callable[[aiohttp.ClientSession, int], Awaitable[None]],
) -> tuple[list[float], int, float]:
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    connector = aiohttp.TCPConnector(limit=clients)
    samples: list[float] = []
    errors = 0
    deadline = time.monotonic() + seconds

    async def client(session: aiohttp.ClientSession, number: int) -> None:
        nonlocal errors
        count = 0
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                await work(session, number * 1_000_000 + count)
            except (aiohttp.ClientError, AssertionError):
                errors += 1
                continue
            samples.append(time.monotonic() - started)
            count += 1

    started = time.monotonic()
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
        await asyncio.gather(*(client(session, n) for n in range(clients)))
    return samples, errors, time.monotonic() - started


def resolve_alias(base: str) -> Callable[[aiohttp.ClientSession, int], Awaitable[None]]:
    async def work(session: aiohttp.ClientSession, _: int) -> None:
        async with session.get(f"{base}{PROJECT}/artifacts/data/versions/best") as got:
            assert got.status == 200
            await got.read()

    return work


def log_version(base: str) -> Callable[[aiohttp.ClientSession, int], Awaitable[None]]:
    async def work(session: aiohttp.ClientSession, number: int) -> None:
        data, digest = manifest([reference(number, "log")])
        blob = hashlib.sha256(data).hexdigest()
        async with session.post(
            f"{base}{PROJECT}/blobs/missing", json={"digests": [blob]}
        ) as answer:
            missing = (await answer.json())["missing"]
        for each in missing:
            async with session.put(f"{base}{PROJECT}/blobs/{each}", data=data) as put:
                assert put.status == 201
        body = {
            "type": "dataset",
            "digest": digest,
            "manifest_blob": blob,
            "entry_count": 1,
            "total_size": 1000 + number,
            "aliases": ["best"],
        }
        # One artifact per client: versions of one artifact are serialised
        # by design (its row is locked while a number is taken).
        async with session.post(
            f"{base}{PROJECT}/artifacts/logged-{number // 1_000_000}/versions",
            json=body,
            headers={"Idempotency-Key": uuid.uuid4().hex},
        ) as logged:
            assert logged.status == 200

    return work


def seed(base: str, home: Path) -> None:
    catalog = catalog_at(base, home)
    try:
        log_manifest(catalog, [reference(0, "seed")], "data", aliases=("best",))
    finally:
        catalog.close()


def catalog_at(base: str, home: Path) -> HttpCatalog:
    return HttpCatalog.from_settings(Settings(home=home, url=base, token=ADMIN_TOKEN))


def log_manifest(
    catalog: HttpCatalog,
    entries: list[ManifestEntry],
    name: str,
    aliases: tuple[str, ...] = (),
) -> None:
    data, digest = manifest(entries)
    with catalog.blobs.writer() as blob:
        blob.write(data)
    new = NewVersion(
        project="bench/p",
        name=name,
        type="dataset",
        digest=digest,
        manifest_blob=blob.digest,
        entry_count=len(entries),
        total_size=sum(e.size or 0 for e in entries),
        aliases=aliases,
    )
    catalog.log_version(new)


# -- the big manifest -----------------------------------------------------------


def peak_rss_mib(pid: int) -> tuple[float, float]:
    """(current, peak) resident memory of a process, in MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) / 1024, int(
        fields["VmHWM"].split()[0]
    ) / 1024


def big_manifest(base: str, pid: int, root: Path, entries: int) -> dict[str, Any]:
    rows = [reference(i, "big") for i in range(entries)]
    idle = peak_rss_mib(pid)
    writer = catalog_at(base, root / "writer")
    started = time.monotonic()
    log_manifest(writer, rows, "big")
    logged = time.monotonic() - started
    writer.close()
    reader = catalog_at(base, root / "reader")
    started = time.monotonic()
    record = reader.get_version("bench/p", "big", "latest")
    with reader.blobs.open(record.manifest_blob) as stream:
        count = sum(1 for _ in read_stored(stream))
    fetched = time.monotonic() - started
    reader.close()
    assert count == entries
    current, peak = peak_rss_mib(pid)
    return {
        "entries": entries,
        "log_seconds": round(logged, 2),
        "fetch_seconds": round(fetched, 2),
        "service_rss_idle_mib": round(idle[0], 1),
        "service_rss_after_mib": round(current, 1),
        "service_peak_rss_mib": round(peak, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--db", default=DEFAULT_DB, help="a PostgreSQL URL")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--json", action="store_true", help="print JSON")
    options = parser.parse_args()

    results: dict[str, Any] = {"clients": options.clients}
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        with fresh_schema(options.db) as db, service(db, root / "load") as (base, _):
            seed(base, root / "seed")
            rows = []
            for name, work in [
                ("resolve-alias", resolve_alias),
                ("log-version", log_version),
            ]:
                samples, errors, took = asyncio.run(
                    load(options.clients, options.seconds, work(base))
                )
                rows.append(Latencies(name, took, samples, errors).row())
            results["load"] = rows
        with fresh_schema(options.db) as db, service(db, root / "big") as (base, pid):
            results["manifest"] = big_manifest(base, pid, root, options.entries)
    if options.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{options.clients} concurrent clients, one service process, PostgreSQL")
    for row in results["load"]:
        print(
            f"  {row['operation']:<14} {row['per_second']:>8} /s   p50 "
            f"{row['p50_ms']:>7} ms   p99 {row['p99_ms']:>7} ms   "
            f"({row['requests']} done, {row['errors']} errors)"
        )
    big = results["manifest"]
    print(
        f"{big['entries']} entries: log {big['log_seconds']} s, fetch "
        f"{big['fetch_seconds']} s; service RSS {big['service_rss_idle_mib']} MiB "
        f"idle, peak {big['service_peak_rss_mib']} MiB"
    )


if __name__ == "__main__":
    main()
