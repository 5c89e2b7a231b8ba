"""Garbage collection: expired versions, and blobs no live version needs.

``collect`` deletes every version whose TTL has run out from the catalog,
then deletes the blob-store files (stored manifests and copied files) that
no remaining version needs. It never touches the objects that references
point at: those live in the users' buckets, and refstore only reads them.

The SQL catalog records the blobs each version needs when it is logged
(:class:`BlobIndex`), so what to keep is one query. Versions logged before
that record existed are indexed first, each manifest read once; catalogs
without an index fall back to reading every live manifest
(:func:`needed_by_reading`), which is also how old versions are indexed.

A blob is spared while it is younger than ``grace``: a version being
logged right now writes its blobs before the catalog records it, and
storing bytes the store already holds refreshes their age.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from refstore.blobs import BlobStore
from refstore.catalog.base import Catalog, GcReport
from refstore.manifest import read_stored

__all__ = [
    "DEFAULT_GRACE",
    "BlobIndex",
    "GcReport",
    "RemoteCollector",
    "collect",
    "copied_files",
    "needed_by_reading",
]

log = logging.getLogger(__name__)

DEFAULT_GRACE = datetime.timedelta(hours=1)


@runtime_checkable
class RemoteCollector(Protocol):
    """A catalog whose blobs live at a service, which collects them itself."""

    def collect_garbage(self, *, dry_run: bool, grace: datetime.timedelta) -> GcReport:
        """The collection as the service reports it."""
        ...


@runtime_checkable
class BlobIndex(Protocol):
    """A catalog that records which blobs each version needs (the SQL catalog)."""

    def unindexed_manifests(self) -> dict[int, str]:
        """Live versions whose needed blobs are not all recorded: id -> manifest."""
        ...

    def index_blobs(self, version_id: int, digests: Iterable[str]) -> bool:
        """Record every blob the version needs; False if it went meanwhile."""
        ...

    def needed_blobs(self) -> set[str]:
        """Every blob a live version needs, as recorded."""
        ...


def collect(
    catalog: Catalog,
    *,
    now: datetime.datetime,
    dry_run: bool = False,
    grace: datetime.timedelta = DEFAULT_GRACE,
) -> GcReport:
    """Delete expired versions and unneeded blobs (``dry_run``: only list them).

    A dry run deletes nothing, but does index old versions: the index is
    derived from the manifests and changes no answer.
    """
    if isinstance(catalog, RemoteCollector):
        return catalog.collect_garbage(dry_run=dry_run, grace=grace)
    started = time.monotonic()
    expired = catalog.expired_versions() if dry_run else catalog.delete_expired()
    if isinstance(catalog, BlobIndex):
        needed, indexed, reads = _needed_by_index(catalog, catalog.blobs)
    else:
        needed, reads = needed_by_reading(catalog.blobs, catalog.live_manifest_blobs())
        indexed = 0
    garbage, freed = _garbage(catalog.blobs, needed, now - grace)
    if not dry_run:
        for digest in garbage:
            catalog.blobs.delete(digest)
    log.info(
        "gc%s: %d expired versions, %d blobs (%d bytes), %d manifests read, in %.2f s",
        " (dry run)" if dry_run else "",
        len(expired),
        len(garbage),
        freed,
        reads,
        time.monotonic() - started,
    )
    return GcReport(expired, garbage, freed, dry_run, indexed, reads)


def _needed_by_index(index: BlobIndex, blobs: BlobStore) -> tuple[set[str], int, int]:
    """What live versions need, old ones indexed first: (needed, indexed, reads)."""
    pending = index.unindexed_manifests()
    if not pending:
        return index.needed_blobs(), 0, 0
    started = time.monotonic()
    indexed = 0
    # Versions of different artifacts may hold the same manifest: read it once.
    read: dict[str, set[str] | None] = {}
    for version_id, manifest in pending.items():
        if manifest not in read:
            read[manifest] = copied_files(blobs, manifest)
        files = read[manifest]
        if files is None:
            # Its files are unknown, as they were to gc before the index: it
            # stays unindexed and is tried again next time.
            continue
        indexed += index.index_blobs(version_id, {manifest, *files})
    reads = sum(files is not None for files in read.values())
    log.info(
        "gc indexed the blobs of %d of %d versions logged before the index "
        "(%d manifests read) in %.2f s",
        indexed,
        len(pending),
        reads,
        time.monotonic() - started,
    )
    return index.needed_blobs(), indexed, reads


def needed_by_reading(
    blobs: BlobStore, manifests: Iterable[str]
) -> tuple[set[str], int]:
    """The manifests and the copied files they name, reading each: (needed, reads).

    What gc did before the blob index; catalogs without one still do.
    """
    needed = set(manifests)
    reads = 0
    for manifest in sorted(needed):
        files = copied_files(blobs, manifest)
        if files is not None:
            needed.update(files)
            reads += 1
    return needed, reads


def copied_files(blobs: BlobStore, manifest: str) -> set[str] | None:
    """The sha256 of every copied file a stored manifest names; None if it is gone."""
    if not blobs.has(manifest):
        log.warning("the manifest blob %s is missing from %s", manifest, blobs.root)
        return None
    with blobs.open(manifest) as stream:
        # References are someone else's objects; only copied files (no ref)
        # live in the blob store, under their sha256.
        return {entry.digest for entry in read_stored(stream) if entry.ref is None}


def _garbage(
    blobs: BlobStore, needed: set[str], cutoff: datetime.datetime
) -> tuple[list[str], int]:
    garbage, freed = [], 0
    for digest in blobs:
        if digest in needed:
            continue
        stat = blobs.path(digest).stat()
        modified = datetime.datetime.fromtimestamp(stat.st_mtime, datetime.UTC)
        if modified <= cutoff:
            garbage.append(digest)
            freed += stat.st_size
    return garbage, freed
