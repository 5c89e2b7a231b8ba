"""The provider contract: the few primitives every object store implements.

A provider serves one or more URI schemes. It translates its SDK's answers
into :class:`~refstore.manifest.ObjectInfo` and its SDK's errors into
:mod:`refstore.errors`, and nothing else: prefix capture, verification plans
and transfers are shared code built on these primitives.

Every provider counts the requests it sends, by operation name, in
``requests``; benchmarks and tests read those counts.

A store that cannot list a prefix (plain HTTP) says so with the class
attribute ``lists_prefixes = False``; shared code asks :func:`lists_prefixes`
before it plans a listing. The attribute is optional: a provider without it
lists.

A store whose versioned listing shows every noncurrent version and delete
marker says so with ``lists_noncurrent_versions = True``; only then may
shared code read "absent from the listing" as "gone" (see
:func:`lists_noncurrent_versions`). Some emulators list live objects only.

A store whose listing can start after a given key, in the store's own
listing request (S3 ``KeyMarker``/``StartAfter``, GCS ``startOffset``), says
so with ``lists_from_key = True``; only then do verification shards split one
flat folder by key range (see :func:`lists_from_key`). Every provider honours
``scan(start_after=...)``; without the attribute it may do so by skipping keys.

A store whose ranged reads cost as much as a whole read says so with
``parallel_ranges = False``; the fetcher then reads large objects in one
piece instead of in parallel ranged parts (:mod:`refstore.transfer`).

A provider that can read a bucket's lifecycle rules also implements
:class:`LifecycleProvider`; the verifier warns about rules that expire pinned
versions. Providers without it still conform to :class:`Provider`.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import threading
from collections.abc import Iterator
from typing import BinaryIO, ClassVar, Protocol, runtime_checkable

from refstore.manifest import ObjectInfo
from refstore.uri import ObjectRef

__all__ = [
    "LifecycleProvider",
    "LifecycleRule",
    "Provider",
    "RequestCounter",
    "Versioning",
    "lifecycle_rules",
    "lists_from_key",
    "lists_noncurrent_versions",
    "lists_prefixes",
]


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
        self,
        prefix: ObjectRef,
        *,
        versions: bool = False,
        start_after: str | None = None,
    ) -> Iterator[ObjectInfo]:
        """Yield every object whose key starts with ``prefix.key``, lazily.

        Paginated with the store's listing call, never one request per
        object, and in key order (the versions of one key together), so that
        a caller may stop at the first key past a range and fetch no further
        page. ``versions=True`` yields every version, delete markers
        included, with ``is_latest`` and ``is_delete_marker`` set.
        ``start_after`` (a full key) yields only keys strictly greater, every
        version of them.
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


def lists_prefixes(provider: Provider) -> bool:
    """Whether ``provider.scan`` can list a prefix (False for plain HTTP)."""
    return getattr(provider, "lists_prefixes", True) is not False


def lists_from_key(provider: Provider) -> bool:
    """Whether ``scan(start_after=...)`` starts the store's listing at the key.

    Opt-in (``lists_from_key = True`` on the provider class): a provider
    without it may read the keys before ``start_after`` and skip them, which
    costs as much as listing them.
    """
    return getattr(provider, "lists_from_key", False) is True


def lists_noncurrent_versions(provider: Provider) -> bool:
    """Whether ``scan(versions=True)`` shows every version, delete markers too.

    Opt-in (``lists_noncurrent_versions = True`` on the provider class): a
    provider that does not promise it gets every absence confirmed by stat.
    """
    return getattr(provider, "lists_noncurrent_versions", False) is True


@dataclasses.dataclass(frozen=True)
class LifecycleRule:
    """One enabled lifecycle rule that deletes objects or object versions.

    ``prefix`` is the key prefix the rule applies to ("" for the whole bucket);
    ``noncurrent_days``: versions are deleted this many days after they stop
    being current; ``current_days``: current objects expire this many days
    after creation; ``keeps_newer``: that many newer noncurrent versions are
    spared; ``filtered``: the rule also filters by tags or object size, so it
    may spare some objects under the prefix.
    """

    prefix: str
    noncurrent_days: int | None = None
    current_days: int | None = None
    keeps_newer: int | None = None
    filtered: bool = False
    rule_id: str | None = None


@runtime_checkable
class LifecycleProvider(Protocol):
    """Optional: a provider that can read a bucket's lifecycle rules."""

    def lifecycle(self, ref: ObjectRef) -> list[LifecycleRule]:
        """The enabled rules of the bucket of ``ref`` that delete data.

        No configuration is an empty list; a configuration the credentials
        may not read raises AccessDeniedError.
        """
        ...


def lifecycle_rules(provider: Provider, ref: ObjectRef) -> list[LifecycleRule] | None:
    """The lifecycle rules of the bucket of ``ref``; None if unreadable here."""
    if not isinstance(provider, LifecycleProvider):
        return None
    return provider.lifecycle(ref)
