"""Many processes writing one catalog: no duplicate or missing versions."""

from __future__ import annotations

from pathlib import Path

from refstore.blobs import BlobStore
from refstore.catalog.migrations import head_revision
from refstore.catalog.sql import SqlCatalog, current_revision
from tests.catalog.support import NAME, PROJECT, log_many, open_and_log, run_workers

WORKERS = 8
VERSIONS_EACH = 10


def test_concurrent_writers_take_every_number_once(
    catalog: SqlCatalog, catalog_url: str, tmp_path: Path
) -> None:
    logged = run_workers(
        log_many, WORKERS, catalog_url, tmp_path / "blobs", VERSIONS_EACH
    )

    records = catalog.list_versions(PROJECT, NAME)
    assert [r.version for r in records] == list(range(WORKERS * VERSIONS_EACH))
    assert sorted(v for vs in logged.values() for v in vs) == list(range(80))
    aliases = {a: r.version for r in records for a in r.aliases}
    for worker, versions in logged.items():
        # Each worker's last alias move must have survived the others' writes.
        assert aliases[f"worker-{worker}"] == max(versions)
    assert aliases["shared"] == aliases["latest"] == WORKERS * VERSIONS_EACH - 1


def test_processes_opening_a_new_catalog_at_once(
    catalog_url: str, tmp_path: Path
) -> None:
    workers = 4

    logged = run_workers(open_and_log, workers, catalog_url, tmp_path / "blobs")

    assert sorted(v for vs in logged.values() for v in vs) == list(range(workers))
    assert current_revision(catalog_url) == head_revision()
    with SqlCatalog(catalog_url, BlobStore(tmp_path / "blobs")) as catalog:
        assert len(catalog.list_versions(PROJECT, NAME)) == workers
