"""Worker processes that move aliases at once (importable by spawn)."""

from __future__ import annotations

import random
import traceback
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path

from refstore.blobs import BlobStore
from refstore.catalog.sql import SqlCatalog
from refstore.errors import ConflictError
from tests.catalog.support import NAME, PROJECT, Outcome, new_version

START_VERSIONS = 5
ROUNDS = 8
LOG_EVERY = 4


def move_aliases(
    barrier: Barrier, results: Queue[Outcome], worker: int, url: str, blob_dir: Path
) -> None:
    """Move a shared alias and this worker's own, log now and then, claim one.

    Reports [last shared target, last own target, 1 if the claim won].
    """
    try:
        rng = random.Random(worker)
        with SqlCatalog(url, BlobStore(blob_dir)) as catalog:
            barrier.wait(timeout=60)
            claimed = _claim(catalog, worker)
            shared = own = -1
            for index in range(ROUNDS):
                if index % LOG_EVERY == LOG_EVERY - 1:
                    catalog.log_version(new_version(f"worker {worker} round {index}"))
                shared = rng.randrange(START_VERSIONS)
                catalog.set_alias(PROJECT, NAME, "shared", shared)
                own = rng.randrange(START_VERSIONS)
                catalog.set_alias(PROJECT, NAME, f"worker-{worker}", own)
        results.put((worker, [shared, own, claimed], None))
    except Exception:  # noqa: BLE001 (the parent reports every failure)
        results.put((worker, None, traceback.format_exc()))


def _claim(catalog: SqlCatalog, worker: int) -> int:
    """Add the alias "claimed" to this worker's version unless another has it."""
    try:
        catalog.set_alias(PROJECT, NAME, "claimed", worker, move=False)
    except ConflictError:
        return 0
    return 1
