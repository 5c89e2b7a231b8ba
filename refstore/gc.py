"""Garbage collection: expired versions, and blobs no live version needs.

``collect`` deletes every version whose TTL has run out from the catalog,
then deletes the blob-store files (stored manifests and copied files) that
no remaining version needs. It never touches the objects that references
point at: those live in the users' buckets, and refstore only reads them.

A blob is spared while it is younger than ``grace``: a version being
logged right now writes its blobs before the catalog records it, and
storing bytes the store already holds refreshes their age.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import time
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from refstore.blobs import BlobStore
from refstore.catalog.base import Catalog, VersionRecord
from refstore.manifest import read_stored

__all__ = ["DEFAULT_GRACE", "GcReport", "RemoteCollector", "collect"]

log = logging.getLogger(__name__)

DEFAULT_GRACE = datetime.timedelta(hours=1)


@runtime_checkable
class RemoteCollector(Protocol):
    """A catalog whose blobs live at a service, which collects them itself."""

    def collect_garbage(
        self, *, dry_run: bool, grace: datetime.timedelta
    ) -> tuple[list[VersionRecord], list[str], int]:
        """Expired versions, blobs and freed bytes, as the service reports them."""
        ...


@dataclasses.dataclass(frozen=True)
class GcReport:
    """What a collection deleted (or, dry, would delete)."""

    versions: list[VersionRecord]
    blobs: list[str]
    freed_bytes: int
    dry_run: bool


def collect(
    catalog: Catalog,
    *,
    now: datetime.datetime,
    dry_run: bool = False,
    grace: datetime.timedelta = DEFAULT_GRACE,
) -> GcReport:
    """Delete expired versions and unneeded blobs (``dry_run``: only list them)."""
    if isinstance(catalog, RemoteCollector):
        versions, blobs, freed = catalog.collect_garbage(dry_run=dry_run, grace=grace)
        return GcReport(versions, blobs, freed, dry_run)
    started = time.monotonic()
    expired = catalog.expired_versions() if dry_run else catalog.delete_expired()
    needed = _needed_blobs(catalog.blobs, catalog.live_manifest_blobs())
    garbage, freed = _garbage(catalog.blobs, needed, now - grace)
    if not dry_run:
        for digest in garbage:
            catalog.blobs.delete(digest)
    log.info(
        "gc%s: %d expired versions, %d blobs (%d bytes) in %.2f s",
        " (dry run)" if dry_run else "",
        len(expired),
        len(garbage),
        freed,
        time.monotonic() - started,
    )
    return GcReport(expired, garbage, freed, dry_run)


def _needed_blobs(blobs: BlobStore, manifests: Iterable[str]) -> set[str]:
    """The manifests, and the copied files their entries name."""
    needed = set(manifests)
    for manifest in sorted(needed):
        if not blobs.has(manifest):
            log.warning("the manifest blob %s is missing from %s", manifest, blobs.root)
            continue
        with blobs.open(manifest) as stream:
            # References are someone else's objects; only copied files (no
            # ref) live in the blob store, under their sha256.
            needed.update(
                entry.digest for entry in read_stored(stream) if not entry.ref
            )
    return needed


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
