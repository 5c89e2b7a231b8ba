"""The provider contract: the few primitives every object store implements.

A provider serves one or more URI schemes. It translates its SDK's answers
into :class:`~refstore.manifest.ObjectInfo` and its SDK's errors into
:mod:`refstore.errors`, and nothing else: prefix capture, verification plans
and transfers are shared code built on these primitives.

Every provider counts the requests it sends, by operation name, in
``requests``; benchmarks and tests read those counts.
"""

from __future__ import annotations

import collections
import enum
import threading
from collections.abc import Iterator
from typing import BinaryIO, ClassVar, Protocol, runtime_checkable

from refstore.manifest import ObjectInfo
from refstore.uri import ObjectRef

__all__ = ["Provider", "RequestCounter", "Versioning"]


class Versioning(enum.Enum):
    """Whether a bucket keeps old object versions."""

    ENABLED = "enabled"
    SUSPENDED = "suspended"
    OFF = "off"
    UNKNOWN = "unknown"


class RequestCounter:
    """Thread-safe counts of requests sent, by operation name."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: collections.Counter[str] = collections.Counter()

    def add(self, operation: str, count: int = 1) -> None:
        with self._lock:
            self._counts[operation] += count

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def total(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


@runtime_checkable
class Provider(Protocol):
    """One object store, behind refstore's contract."""

    schemes: ClassVar[tuple[str, ...]]
    requests: RequestCounter

    def stat(self, ref: ObjectRef) -> ObjectInfo:
        """Describe one object; at ``ref.version`` when the ref is pinned.

        Raises ObjectNotFoundError (VersionNotFoundError for a pinned version
        that is gone), BucketNotFoundError, AccessDeniedError, ...
        """
        ...

    def scan(
        self, prefix: ObjectRef, *, versions: bool = False
    ) -> Iterator[ObjectInfo]:
        """Yield every object whose key starts with ``prefix.key``, lazily.

        Paginated with the store's listing call, never one request per
        object. ``versions=True`` yields every version, delete markers
        included, with ``is_latest`` and ``is_delete_marker`` set.
        """
        ...

    def read(
        self, info: ObjectInfo, *, start: int = 0, end: int | None = None
    ) -> BinaryIO:
        """Open the exact object version in ``info`` for reading.

        With ``info.version_id`` set, that version is read. Without one, the
        read is conditional on ``info.etag`` when there is one, and a changed
        object raises IntegrityError instead of returning other bytes.
        ``start``/``end`` select the byte range ``[start, end)``.
        """
        ...

    def versioning(self, ref: ObjectRef) -> Versioning:
        """Whether the bucket of ``ref`` keeps old versions."""
        ...
