"""Client processes for the service's concurrency tests (importable by spawn)."""

from __future__ import annotations

import traceback
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

import refstore
from refstore.config import Settings
from refstore.context import Context
from tests.catalog.support import Outcome

PROJECT = "acme/vision"
NAME = "furniture"


def log_versions(
    barrier: Barrier,
    results: Queue[Outcome],
    worker: int,
    urls: list[str],
    token: str,
    home: Path,
    count: int,
) -> None:
    """Log ``count`` versions through one of the services, moving two aliases."""
    try:
        url = urls[worker % len(urls)]
        context = Context(
            Settings(home=home / f"worker-{worker}", url=url, token=token)
        )
        logged = []
        barrier.wait(timeout=60)
        for index in range(count):
            artifact = refstore.Artifact(NAME, "dataset", context=context)
            artifact.add_reference(f"s3://bucket/w{worker}/v{index}", checksum=False)
            artifact.save(project=PROJECT, aliases=["shared", f"worker-{worker}"])
            assert artifact.created_new_version
            logged.append(int(str(artifact.version)[1:]))
        context.close()
        results.put((worker, logged, None))
    except Exception:  # noqa: BLE001 (the parent reports every failure)
        results.put((worker, None, traceback.format_exc()))
