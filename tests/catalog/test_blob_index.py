"""The blobs each version needs (version_blobs), and gc by that index.

On SQLite and PostgreSQL. Every gc here is checked against the old answer:
the manifests and copied files found by reading every live manifest.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import logging

import pytest
import sqlalchemy as sa

from refstore.blobs import BlobStore
from refstore.catalog import migrations
from refstore.catalog.sql import SqlCatalog, current_revision
from tests.catalog.blob_index import (
    count_reads,
    flags_of,
    gc,
    index_of,
    new_version,
    old_needed,
    put,
)
from tests.catalog.clock import ManualClock
from tests.catalog.migrating import migrate
from tests.catalog.migrating import open_connection as connection
from tests.catalog.support import NAME, PROJECT
from tests.catalog.support import new_version as fake_version

DAY = datetime.timedelta(days=1)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


V0 = f"{PROJECT}/{NAME}:v0"
V1 = f"{PROJECT}/{NAME}:v1"


def test_a_logged_version_records_the_blobs_it_needs(
    catalog: SqlCatalog, catalog_url: str
) -> None:
    new = new_version(catalog.blobs, "a", [b"weights", b"config"])

    catalog.log_version(new)

    assert new.files == {sha(b"weights"), sha(b"config")}
    assert index_of(catalog_url) == {V0: {new.manifest_blob, *new.files}}
    assert flags_of(catalog_url) == {V0: True}


def test_a_version_logged_without_its_files_is_not_indexed(
    catalog: SqlCatalog, catalog_url: str
) -> None:
    new = new_version(catalog.blobs, "a", [b"weights"], noted=False)

    catalog.log_version(new)

    assert index_of(catalog_url) == {V0: {new.manifest_blob}}
    assert flags_of(catalog_url) == {V0: False}


def test_logging_the_same_manifest_again_adds_nothing(
    catalog: SqlCatalog, catalog_url: str
) -> None:
    new = new_version(catalog.blobs, "a", [b"weights"])
    catalog.log_version(new)

    _, created = catalog.log_version(new)

    assert not created
    assert index_of(catalog_url) == {V0: {new.manifest_blob, *(new.files or ())}}


def test_gc_keeps_exactly_what_reading_every_manifest_keeps(
    timed_catalog: SqlCatalog, clock: ManualClock
) -> None:
    catalog, blobs = timed_catalog, timed_catalog.blobs
    kept = new_version(blobs, "kept", [b"shared", b"only kept"])
    expiring = new_version(blobs, "expiring", [b"shared", b"only expiring"], ttl=DAY)
    catalog.log_version(kept)
    catalog.log_version(new_version(blobs, "old", [b"only old"], noted=False))
    catalog.log_version(expiring)
    stray = put(blobs, b"uploaded, never logged")
    clock.advance(days=2)
    expected = set(blobs) - old_needed(catalog)

    dry = gc(catalog, dry_run=True)
    report = gc(catalog)

    assert set(dry.blobs) == expected
    assert set(report.blobs) == expected
    assert expected == {expiring.manifest_blob, sha(b"only expiring"), stray}
    # The version logged without its files was indexed by the dry run.
    assert (dry.indexed_versions, report.indexed_versions) == (1, 0)
    assert set(blobs) == old_needed(catalog)
    assert [r.path for r in report.versions] == [f"{PROJECT}/{NAME}:v2"]


def test_gc_after_deleting_versions_and_projects(
    timed_catalog: SqlCatalog, catalog_url: str
) -> None:
    catalog, blobs = timed_catalog, timed_catalog.blobs
    first = new_version(blobs, "first", [b"shared", b"only first"])
    second = new_version(blobs, "second", [b"shared", b"only second"])
    elsewhere = new_version(blobs, "other", [b"shared", b"only other"], project="x/y")
    for new in (first, second, elsewhere):
        catalog.log_version(new)
    catalog.delete_version(PROJECT, NAME, 0)
    catalog.delete_project("x/y")
    expected = set(blobs) - old_needed(catalog)

    report = gc(catalog)

    assert set(report.blobs) == expected
    assert expected == {
        first.manifest_blob,
        elsewhere.manifest_blob,
        sha(b"only first"),
        sha(b"only other"),
    }
    assert set(blobs) == {second.manifest_blob, *(second.files or ())}
    assert index_of(catalog_url) == {V1: set(blobs)}

    catalog.delete_project(PROJECT)

    assert index_of(catalog_url) == {}
    gc(catalog)
    assert list(blobs) == []


def test_gc_reads_no_manifest_once_versions_are_indexed(
    timed_catalog: SqlCatalog, monkeypatch: pytest.MonkeyPatch
) -> None:
    for content in ("a", "b", "c"):
        timed_catalog.log_version(new_version(timed_catalog.blobs, content, [b"f"]))
    reads = count_reads(monkeypatch, timed_catalog.blobs)

    report = gc(timed_catalog)

    assert (report.indexed_versions, report.manifests_read) == (0, 0)
    assert reads.opened == []
    assert report.blobs == []


def test_versions_logged_before_0005_are_indexed_once(
    catalog_url: str,
    blobs: BlobStore,
    clock: ManualClock,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    manifests = []
    with SqlCatalog(catalog_url, blobs, clock) as catalog:
        for content in ("a", "b", "c"):
            new = new_version(blobs, content, [b"shared", content.encode()])
            catalog.log_version(new)
            manifests.append(new.manifest_blob)
        recorded = index_of(catalog_url)
    with connection(catalog_url) as conn:
        migrate(conn, "0004", down=True)
    stray = put(blobs, b"stray")

    with SqlCatalog(catalog_url, blobs, clock) as catalog:
        assert flags_of(catalog_url) == dict.fromkeys(recorded, False)
        expected = set(blobs) - old_needed(catalog)
        reads = count_reads(monkeypatch, blobs)
        caplog.set_level(logging.INFO, logger="refstore.gc")
        first = gc(catalog)
        read_first = list(reads.opened)
        second = gc(catalog)

    assert set(first.blobs) == expected == {stray}
    assert (first.indexed_versions, first.manifests_read) == (3, 3)
    assert sorted(read_first) == sorted(manifests)
    assert (second.indexed_versions, second.manifests_read) == (0, 0)
    assert reads.opened == read_first  # nothing read the second time
    assert index_of(catalog_url) == recorded
    assert flags_of(catalog_url) == dict.fromkeys(recorded, True)
    assert any("indexed the blobs of 3 of 3" in m for m in caplog.messages)


def test_a_version_whose_manifest_is_gone_stays_unindexed(
    timed_catalog: SqlCatalog, catalog_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    # Its manifest blob was never stored.
    record, _ = timed_catalog.log_version(fake_version("lost"))
    stray = put(timed_catalog.blobs, b"stray")

    report = gc(timed_catalog)

    assert (report.indexed_versions, report.manifests_read) == (0, 0)
    assert report.blobs == [stray]
    assert flags_of(catalog_url) == {V0: False}
    assert any(record.manifest_blob in m for m in caplog.messages)


def test_indexing_a_deleted_version_does_nothing(
    catalog: SqlCatalog, catalog_url: str
) -> None:
    catalog.log_version(new_version(catalog.blobs, "a", [b"f"], noted=False))
    [version_id] = catalog.unindexed_manifests()
    catalog.delete_version(PROJECT, NAME, 0)

    assert catalog.index_blobs(version_id, ["0" * 64]) is False
    assert index_of(catalog_url) == {}


def test_0005_down_and_up_again_keeps_the_versions(
    catalog_url: str, blobs: BlobStore, clock: ManualClock
) -> None:
    with SqlCatalog(catalog_url, blobs, clock) as catalog:
        catalog.log_version(new_version(blobs, "a", [b"f"]))
    with connection(catalog_url) as conn:
        migrate(conn, "0004", down=True)
        with conn.begin():
            inspector = sa.inspect(conn)
            assert not inspector.has_table("version_blobs")
            columns = {c["name"] for c in inspector.get_columns("versions")}
        assert "blobs_indexed" not in columns
    assert current_revision(catalog_url) == "0004"

    with contextlib.closing(SqlCatalog(catalog_url, blobs, clock)) as catalog:
        assert current_revision(catalog_url) == migrations.HEAD
        assert [r.version for r in catalog.list_versions(PROJECT, NAME)] == [0]
        assert index_of(catalog_url) == {}
        assert flags_of(catalog_url) == {V0: False}
        catalog.log_version(new_version(blobs, "b", [b"g"]))

        assert flags_of(catalog_url) == {V0: False, V1: True}
