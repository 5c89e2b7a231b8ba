"""Capture: the object versions a reference names, right now.

Shared by every provider; built on the provider primitives only. A reference
is captured as:

* one object (``s3://b/data/x.csv``, pinned or not): one stat, path = the
  key's last segment. An unpinned name with no object behind it is read as a
  folder: ``s3://b/data`` means ``data/``, never ``data2/``;
* a folder (``s3://b/data/``, or a whole bucket ``s3://b/``): one listing,
  paginated, never one request per object. In a bucket that keeps (or may
  keep) versions, the versioned listing gives each object's version id; the
  latest version of each key is kept and deleted keys (latest version a
  delete marker) are left out. Paths are keys relative to the folder; folder
  marker objects (keys ending in ``/``) are skipped, empty objects kept.

A store that cannot list (plain HTTP) serves every reference as one object,
whatever its path looks like: one stat, and a missing object is an
ObjectNotFoundError rather than a listing attempt.

Nothing is truncated: a folder with more objects than ``max_objects`` raises
LimitExceededError naming the limit (a single object is never limited).
"""

from __future__ import annotations

import logging
import operator
import posixpath
import time
from collections.abc import Iterator

from refstore.errors import AccessDeniedError, LimitExceededError, ObjectNotFoundError
from refstore.manifest import ObjectInfo
from refstore.providers.base import Provider, Versioning, lists_prefixes
from refstore.uri import ObjectRef

__all__ = ["capture", "iter_capture"]

log = logging.getLogger(__name__)

Captured = tuple[str, ObjectInfo]


def capture(
    ref: ObjectRef, provider: Provider, *, max_objects: int | None = None
) -> list[Captured]:
    """Every object ``ref`` names, as (relative path, info), sorted by path."""
    return sorted(
        iter_capture(ref, provider, max_objects=max_objects),
        key=operator.itemgetter(0),
    )


def iter_capture(
    ref: ObjectRef, provider: Provider, *, max_objects: int | None = None
) -> Iterator[Captured]:
    """Yield (relative path, info) for every object ``ref`` names, lazily.

    Objects come in the store's listing order (S3: key order). The INFO
    summary line is logged once the iterator is exhausted.
    """
    summary = _Summary(provider)
    for path, info in _captured(ref, provider, max_objects):
        summary.add(info)
        yield path, info
    summary.log(ref)


def _captured(
    ref: ObjectRef, provider: Provider, max_objects: int | None
) -> Iterator[Captured]:
    if not lists_prefixes(provider):
        yield _single_object(ref, provider)
        return
    if ref.is_prefix:
        yield from _folder(ref, provider, max_objects)
        return
    info = _object_or_none(ref, provider)
    if info is not None:
        _warn_if_unpinned(info)
        yield posixpath.basename(ref.key), info
        return
    found = False
    for entry in _folder(ref.as_prefix(), provider, max_objects):
        found = True
        yield entry
    if not found:
        raise ObjectNotFoundError(
            f"neither an object {ref} nor a folder {ref.as_prefix()} exists; "
            "check the key, or end it with / to name a folder"
        )


def _single_object(ref: ObjectRef, provider: Provider) -> Captured:
    info = provider.stat(ref)
    _warn_if_unpinned(info)
    return posixpath.basename(ref.key.rstrip("/")) or ref.bucket, info


def _object_or_none(ref: ObjectRef, provider: Provider) -> ObjectInfo | None:
    if ref.version is not None:
        return provider.stat(ref)
    try:
        return provider.stat(ref)
    except ObjectNotFoundError:
        log.debug("no object at %s; looking for the folder %s", ref, ref.as_prefix())
        return None


def _folder(
    prefix: ObjectRef, provider: Provider, max_objects: int | None
) -> Iterator[Captured]:
    objects = _latest_objects(prefix, provider)
    files = (info for info in objects if not info.ref.key.endswith("/"))
    for count, info in enumerate(files, start=1):
        if max_objects is not None and count > max_objects:
            raise LimitExceededError(
                f"{prefix} holds more than {max_objects} objects; raise "
                "max_objects or reference a narrower prefix"
            )
        yield info.ref.key[len(prefix.key) :], info


def _latest_objects(prefix: ObjectRef, provider: Provider) -> Iterator[ObjectInfo]:
    state = provider.versioning(prefix)
    _warn_about_versioning(prefix, state)
    if state is Versioning.OFF:
        return provider.scan(prefix)
    listing = provider.scan(prefix, versions=True)
    if state is Versioning.UNKNOWN:
        listing = _or_unversioned(prefix, provider, listing)
    # A versioned listing holds every version of every key; only the latest
    # of each is captured, and a key whose latest is a delete marker is gone.
    return (info for info in listing if info.is_latest and not info.is_delete_marker)


def _or_unversioned(
    prefix: ObjectRef, provider: Provider, listing: Iterator[ObjectInfo]
) -> Iterator[ObjectInfo]:
    # Some policies allow listing objects but not their versions; the first
    # page tells, before anything has been yielded.
    try:
        first = next(listing, None)
    except AccessDeniedError:
        log.warning(
            "cannot list object versions under %s (access denied); listing "
            "the latest objects instead, so no version ids are recorded and "
            "the objects may be overwritten",
            prefix,
        )
        yield from provider.scan(prefix)
        return
    if first is not None:
        yield first
        yield from listing


def _warn_about_versioning(prefix: ObjectRef, state: Versioning) -> None:
    if state is Versioning.SUSPENDED:
        log.warning(
            "Bucket versioning is suspended on %s; pinned versions may be "
            "overwritten. Enable versioning or record with checksum=False.",
            prefix.location,
        )
    elif state is Versioning.OFF:
        log.warning(
            "Bucket versioning is off on %s; objects are recorded without a "
            "version and may be overwritten. Enable versioning to pin them.",
            prefix.location,
        )


def _warn_if_unpinned(info: ObjectInfo) -> None:
    if info.version_id is None:
        log.warning(
            "%s has no object version (the store keeps none, or bucket "
            "versioning is off or suspended); it is recorded by its ETag and "
            "may be overwritten",
            info.ref,
        )


class _Summary:
    """Counts, bytes, requests and time of one capture, for its INFO line."""

    def __init__(self, provider: Provider) -> None:
        self._provider = provider
        self._requests_before = provider.requests.total()
        self._started = time.monotonic()
        self.count = 0
        self.size = 0

    def add(self, info: ObjectInfo) -> None:
        self.count += 1
        self.size += info.size

    def log(self, ref: ObjectRef) -> None:
        requests = self._provider.requests.total() - self._requests_before
        log.info(
            "captured %d objects (%d bytes) from %s in %d requests, %.1f s",
            self.count,
            self.size,
            ref,
            requests,
            time.monotonic() - self._started,
        )
