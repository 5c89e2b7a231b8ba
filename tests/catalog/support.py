"""Helpers of the catalog tests, importable by worker processes (spawn)."""

from __future__ import annotations

import hashlib
import multiprocessing
import traceback
from collections.abc import Callable
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

from refstore.blobs import BlobStore
from refstore.catalog.base import NewVersion
from refstore.catalog.sql import SqlCatalog

PROJECT = "acme/vision"
NAME = "furniture"

Outcome = tuple[int, list[int] | None, str | None]


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def new_version(
    content: str,
    *,
    name: str = NAME,
    type_: str = "dataset",
    aliases: tuple[str, ...] = (),
    **fields: Any,
) -> NewVersion:
    """A version whose manifest digest is derived from ``content``."""
    return NewVersion(
        project=PROJECT,
        name=name,
        type=type_,
        digest=sha(content),
        manifest_blob=sha("blob " + content),
        entry_count=len(content),
        total_size=10 * len(content),
        aliases=aliases,
        **fields,
    )


def run_workers(
    target: Callable[..., None], workers: int, *args: Any
) -> dict[int, list[int]]:
    """Run ``target(barrier, results, worker, *args)`` in separate processes.

    The processes are spawned, not forked, so that each opens its own
    database connections as an independent refstore process would. They meet
    at a barrier before the part that races.
    """
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(workers)
    results: Queue[Outcome] = context.Queue()
    processes = [
        context.Process(target=target, args=(barrier, results, worker, *args))
        for worker in range(workers)
    ]
    for process in processes:
        process.start()
    try:
        outcomes = [results.get(timeout=120) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
            process.close()
        results.close()
        results.join_thread()
    errors = [error for _, _, error in outcomes if error is not None]
    assert not errors, "\n".join(errors)
    return {worker: logged or [] for worker, logged, _ in outcomes}


def log_many(
    barrier: Barrier,
    results: Queue[Outcome],
    worker: int,
    url: str,
    blob_dir: Path,
    count: int,
) -> None:
    """Log ``count`` distinct versions, moving this worker's alias and a shared one."""
    try:
        with SqlCatalog(url, BlobStore(blob_dir)) as catalog:
            barrier.wait(timeout=60)
            logged = []
            for index in range(count):
                record, created = catalog.log_version(
                    new_version(
                        f"worker {worker} version {index}",
                        aliases=(f"worker-{worker}", "shared"),
                    )
                )
                assert created
                logged.append(record.version)
        results.put((worker, logged, None))
    except Exception:  # noqa: BLE001 (the parent reports every failure)
        results.put((worker, None, traceback.format_exc()))


def open_and_log(
    barrier: Barrier, results: Queue[Outcome], worker: int, url: str, blob_dir: Path
) -> None:
    """Open a catalog that may have no schema yet, at once with the others."""
    try:
        barrier.wait(timeout=60)
        with SqlCatalog(url, BlobStore(blob_dir)) as catalog:
            record, _ = catalog.log_version(new_version(f"opener {worker}"))
        results.put((worker, [record.version], None))
    except Exception:  # noqa: BLE001 (the parent reports every failure)
        results.put((worker, None, traceback.format_exc()))
