"""The blobs each version needs, through the service: recorded from what it read."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import time
from collections.abc import Iterator
from pathlib import Path

import refstore
from refstore.catalog.served import ManifestLimits
from refstore.config import Settings
from refstore.context import Context
from refstore.gc import collect
from tests.catalog.blob_index import flags_of, index_of, new_version, old_needed
from tests.server.support import request, sha256, store_file
from tests.service import ADMIN_TOKEN, RunningService


@contextlib.contextmanager
def client(service: RunningService, home: Path, token: str) -> Iterator[Context]:
    context = Context(Settings(home=home, url=service.url, token=token))
    try:
        yield context
    finally:
        context.close()


def test_a_version_logged_through_the_service_records_its_files(
    service: RunningService, tmp_path: Path
) -> None:
    token = service.user("ida", "idx")
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"w" * 1000)
    config = tmp_path / "config.json"
    config.write_text("{}")
    with client(service, tmp_path / "home", token) as context:
        artifact = refstore.Artifact("model", "model", context=context)
        artifact.add_file(weights)
        artifact.add_file(config)
        artifact.save(project="idx/p")
        path = artifact.qualified_name

    manifest = service.catalog.get_version("idx/p", "model", "v0").manifest_blob
    files = {sha256(b"w" * 1000), sha256(b"{}")}
    assert index_of(service.catalog.url)[path] == {manifest, *files}
    assert flags_of(service.catalog.url)[path] is True


def test_the_service_records_the_files_it_read_not_the_ones_claimed(
    service: RunningService,
) -> None:
    catalog = service.catalog
    new = new_version(catalog.blobs, "claimed", [b"needed"], project="idx/q")
    catalog.add_project_blobs("idx/q", [new.manifest_blob, *(new.files or ())])
    lying = dataclasses.replace(new, files=frozenset({sha256(b"something else")}))

    record = catalog.log_checked(lying, None, ManifestLimits())[0]

    recorded = index_of(catalog.url)[record.path]
    assert recorded == {new.manifest_blob, sha256(b"needed")}


def test_a_log_request_cannot_name_the_files(service: RunningService) -> None:
    catalog = service.catalog
    new = new_version(catalog.blobs, "raw", [b"raw file"], project="idx/r")
    catalog.add_project_blobs("idx/r", [new.manifest_blob, *(new.files or ())])
    body = {
        "type": new.type,
        "digest": new.digest,
        "manifest_blob": new.manifest_blob,
        "entry_count": new.entry_count,
        "total_size": new.total_size,
        "files": [],
    }

    answer = request(
        service.url,
        "POST",
        "/api/v1/projects/idx/r/artifacts/data/versions",
        token=ADMIN_TOKEN,
        body=body,
    )

    assert answer.status == 400, answer.body
    assert "files" in answer.body.decode()


def test_gc_at_the_service_reads_no_manifest(
    service: RunningService, tmp_path: Path
) -> None:
    catalog = service.catalog
    token = service.user("gil", "idx-gc")
    shared, only_old = tmp_path / "shared.bin", tmp_path / "old.bin"
    shared.write_bytes(b"shared by both")
    only_old.write_bytes(b"only in v0")
    with client(service, tmp_path / "home", token) as context:
        for files in ([shared, only_old], [shared]):
            artifact = refstore.Artifact("data", "dataset", context=context)
            for file in files:
                artifact.add_file(file)
            artifact.save(project="idx-gc/p")
    old_manifest = catalog.get_version("idx-gc/p", "data", "v0").manifest_blob
    catalog.delete_version("idx-gc/p", "data", 0)
    expected = set(catalog.blobs) - old_needed(catalog)

    with client(service, tmp_path / "admin", ADMIN_TOKEN) as context:
        report = refstore.Api(context=context).gc(grace=datetime.timedelta(0))

    assert set(report.blobs) == expected
    assert {old_manifest, sha256(b"only in v0")} <= expected
    assert sha256(b"shared by both") not in expected
    assert (report.indexed_versions, report.manifests_read) == (0, 0)


def test_a_blob_reported_present_is_spared_by_the_next_gc(
    service: RunningService,
) -> None:
    # A client told a blob is present uploads nothing and logs its version a
    # moment later; a gc in between must not take the old, unneeded blob.
    catalog = service.catalog
    asked = store_file(catalog, "idx/s", b"asked about")
    other = store_file(catalog, "idx/s", b"not asked about")
    long_ago = time.time() - 2 * 24 * 3600
    for digest in (asked, other):
        os.utime(catalog.blobs.path(digest), (long_ago, long_ago))

    assert catalog.missing_blobs("idx/s", [asked]) == []
    report = collect(
        catalog,
        now=datetime.datetime.now(datetime.UTC),
        grace=datetime.timedelta(hours=1),
    )

    assert report.blobs == [other]
    assert catalog.blobs.has(asked)
    assert not catalog.blobs.has(other)
