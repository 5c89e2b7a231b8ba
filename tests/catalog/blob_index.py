"""Helpers of the blob index tests: stored manifests with copied files, the index."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
from collections.abc import Sequence
from typing import IO, Any, cast

import pytest
import sqlalchemy as sa

from refstore.blobs import BlobStore
from refstore.catalog.base import NewVersion
from refstore.catalog.engine import open_engine
from refstore.catalog.sql import SqlCatalog
from refstore.gc import GcReport, collect, needed_by_reading
from refstore.manifest import ManifestEntry, write_stored
from tests.catalog.support import NAME, PROJECT

NO_GRACE = datetime.timedelta(0)


def put(blobs: BlobStore, data: bytes) -> str:
    with blobs.writer() as blob:
        blob.write(data)
    return blob.digest


def new_version(
    blobs: BlobStore,
    content: str,
    files: Sequence[bytes] = (),
    *,
    project: str = PROJECT,
    name: str = NAME,
    noted: bool = True,
    **fields: Any,
) -> NewVersion:
    """A version with two references and ``files`` copied, all in ``blobs``.

    ``noted``: the writer passes the copied files' digests, as the library does.
    """
    digests = [put(blobs, data) for data in files]
    entries = [
        ManifestEntry(
            path=f"{content}/ref-{index}",
            digest=hashlib.md5(f"{content} {index}".encode()).hexdigest(),
            ref=f"s3://bucket/{content}/{index}",
            size=1,
        )
        for index in range(2)
    ]
    entries += [
        ManifestEntry(path=f"{content}/file-{index}", digest=digest, size=10)
        for index, digest in enumerate(digests)
    ]
    with blobs.writer() as blob:
        ordered = sorted(entries, key=lambda e: e.path)
        digest, count = write_stored(ordered, cast(IO[bytes], blob))
    return NewVersion(
        project=project,
        name=name,
        type="dataset",
        digest=digest,
        manifest_blob=blob.digest,
        entry_count=count,
        total_size=sum(e.size or 0 for e in entries),
        files=frozenset(digests) if noted else None,
        **fields,
    )


def index_of(url: str) -> dict[str, set[str]]:
    """The recorded blobs of each version, by ``project/name:vN``."""
    found: dict[str, set[str]] = {}
    for path, _, digest in _rows(url):
        if digest is not None:
            found.setdefault(path, set()).add(digest)
    return found


def flags_of(url: str) -> dict[str, bool]:
    """``blobs_indexed`` of each version, by ``project/name:vN``."""
    return {path: indexed for path, indexed, _ in _rows(url)}


def _rows(url: str) -> list[tuple[str, bool, str | None]]:
    query = sa.text(
        "SELECT p.entity, p.name AS project, a.name, v.version, v.blobs_indexed, "
        "b.digest FROM versions v JOIN artifacts a ON a.id = v.artifact_id "
        "JOIN projects p ON p.id = a.project_id "
        "LEFT JOIN version_blobs b ON b.version_id = v.id"
    )
    engine, _ = open_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(query).all()
    finally:
        engine.dispose()
    return [
        (
            f"{r.entity}/{r.project}/{r.name}:v{r.version}",
            bool(r.blobs_indexed),
            r.digest,
        )
        for r in rows
    ]


def old_needed(catalog: SqlCatalog) -> set[str]:
    """What gc kept before the index: read every live manifest."""
    needed, _ = needed_by_reading(catalog.blobs, catalog.live_manifest_blobs())
    return needed


def gc(catalog: SqlCatalog, *, dry_run: bool = False) -> GcReport:
    # The catalog clock (2030) is ahead of the blobs' times: no grace needed.
    now = catalog._now()
    return collect(catalog, now=now, dry_run=dry_run, grace=NO_GRACE)


@dataclasses.dataclass
class Reads:
    """Counts the blobs opened for reading (gc opens only manifests)."""

    opened: list[str] = dataclasses.field(default_factory=list)


def count_reads(monkeypatch: pytest.MonkeyPatch, blobs: BlobStore) -> Reads:
    reads = Reads()
    opener = blobs.open

    def counting(digest: str) -> Any:
        reads.opened.append(digest)
        return opener(digest)

    monkeypatch.setattr(blobs, "open", counting)
    return reads
