"""Editors of one version in many threads at once: merged or refused, never lost."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from refstore.blobs import BlobStore
from refstore.catalog.base import LoadedFields, VersionEdit, VersionRecord
from refstore.catalog.sql import SqlCatalog
from refstore.errors import ConflictError
from tests.catalog.support import NAME, PROJECT, new_version

WRITERS = 8


def loaded_fields(record: VersionRecord) -> LoadedFields:
    return LoadedFields(record.description, record.metadata, record.tags, record.ttl)


def edit_of(record: VersionRecord, **changes: object) -> VersionEdit:
    fields: dict[str, object] = {
        "description": record.description,
        "metadata": record.metadata,
        "tags": record.tags,
        "ttl": record.ttl,
        "loaded": loaded_fields(record),
    }
    fields.update(changes)
    return VersionEdit(**fields)  # type: ignore[arg-type]


def race(
    catalog_url: str, blobs: Path, edit: Callable[[int, VersionRecord], VersionEdit]
) -> list[str]:
    """Each writer loads v0 in its own catalog, then all save at once.

    Returns "saved" or "conflict" per writer.
    """
    barrier = threading.Barrier(WRITERS)

    def write(worker: int) -> str:
        with SqlCatalog(catalog_url, BlobStore(blobs)) as catalog:
            record = catalog.get_version(PROJECT, NAME, "v0")
            barrier.wait(timeout=30)
            try:
                catalog.update_version(PROJECT, NAME, 0, edit(worker, record))
            except ConflictError:
                return "conflict"
            return "saved"

    with concurrent.futures.ThreadPoolExecutor(WRITERS) as pool:
        return list(pool.map(write, range(WRITERS)))


def test_every_concurrently_added_tag_survives(
    catalog: SqlCatalog, catalog_url: str, tmp_path: Path
) -> None:
    catalog.log_version(new_version("v0", tags=("base",)))

    def add_tag(worker: int, record: VersionRecord) -> VersionEdit:
        return edit_of(record, tags=(*record.tags, f"tag-{worker}"))

    outcomes = race(catalog_url, tmp_path / "blobs", add_tag)

    assert outcomes == ["saved"] * WRITERS
    tags = catalog.get_version(PROJECT, NAME, "v0").tags
    assert tags == tuple(sorted(["base", *(f"tag-{w}" for w in range(WRITERS))]))


def test_one_of_many_concurrent_description_edits_wins(
    catalog: SqlCatalog, catalog_url: str, tmp_path: Path
) -> None:
    catalog.log_version(new_version("v0", description="first"))

    def describe(worker: int, record: VersionRecord) -> VersionEdit:
        return edit_of(record, description=f"by {worker}")

    outcomes = race(catalog_url, tmp_path / "blobs", describe)

    assert sorted(outcomes) == ["conflict"] * (WRITERS - 1) + ["saved"]
    winner = outcomes.index("saved")
    assert catalog.get_version(PROJECT, NAME, "v0").description == f"by {winner}"


@pytest.mark.parametrize(
    "loaded",
    [pytest.param(True, id="compare-and-set"), pytest.param(False, id="forced")],
)
def test_an_edit_leaves_aliases_it_did_not_name(
    catalog: SqlCatalog, loaded: bool
) -> None:
    catalog.log_version(new_version("v0"))
    record = catalog.get_version(PROJECT, NAME, "v0")
    catalog.set_alias(PROJECT, NAME, "prod", 0)

    edit = edit_of(record, description="edited", add_aliases=("staging",))
    if not loaded:
        edit = dataclasses.replace(edit, loaded=None)
    edited = catalog.update_version(PROJECT, NAME, 0, edit)

    assert edited.aliases == ("latest", "prod", "staging")
    assert edited.description == "edited"
