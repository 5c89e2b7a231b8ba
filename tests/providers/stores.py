"""The conformance suite's view of a real store: arrange data, then test.

Every provider proves itself by passing the same tests
(``tests/providers/test_conformance.py``) through a :class:`Store` for its
real emulator or server. A Store arranges data with the store's own SDK or
protocol (never with the provider under test) and says, through its
capability flags, which cases the emulator can express; a case it cannot
express is skipped with the Store's reason.

Some capabilities came later and are optional: a Store without them can
express the case. The suite reads every capability through
:func:`capability`, and the optional facts through :func:`checksums` and
:func:`page_size`.
"""

from __future__ import annotations

from typing import Protocol

from refstore.config import Settings
from refstore.providers.base import Provider
from refstore.uri import ObjectRef


class Store(Protocol):
    """One real store behind one provider, as the conformance suite sees it."""

    #: readable test id: "moto", "localstack", "gcs", "azurite", "http", ...
    name: str
    #: the refstore settings a user would have for this store
    settings: Settings
    #: the provider under test, built from ``settings``
    provider: Provider

    #: Capabilities. Each is None when the store can express the case, or a
    #: sentence saying why it cannot (the skip reason).
    no_versions: str | None  # cannot pin or read old versions
    no_version_listing: str | None  # scan(versions=True) is not real
    no_listing: str | None  # cannot list a prefix at all (plain HTTP)
    no_denied_access: str | None  # cannot answer "access denied"
    no_missing_bucket: str | None  # has no notion of a missing bucket

    def make_bucket(self) -> str:
        """A new, empty, uniquely named bucket (versioned where possible)."""
        ...

    def ref(self, bucket: str, key: str, version: str | None = None) -> ObjectRef:
        """The reference a user would write for ``key`` in ``bucket``."""
        ...

    def put(self, bucket: str, key: str, body: bytes) -> ObjectRef:
        """Write one object; return its reference, pinned when versions exist."""
        ...

    def put_many(self, bucket: str, objects: dict[str, bytes]) -> None:
        """Write many objects quickly (a thread pool or a bulk call)."""
        ...

    def delete(self, bucket: str, key: str) -> None:
        """Delete the live object (a delete marker where versions exist)."""
        ...

    def delete_version(self, ref: ObjectRef) -> None:
        """Delete one pinned version for good."""
        ...

    def missing_bucket(self) -> str:
        """The name of a bucket that does not exist."""
        ...

    def denied_ref(self) -> ObjectRef:
        """A reference the provider's credentials may not read."""
        ...


class OptionalStoreFacts(Protocol):
    """What a Store may also declare; absent means the default given here."""

    #: None, or why a changed object cannot be refused on read: the store
    #: records no ETag (memory://). Default None.
    no_etag: str | None
    #: checksum algorithms that stat records for a plain write ("md5", ...);
    #: each must match the bytes. Default: none required.
    checksums: tuple[str, ...]
    #: objects per listing page, where the store pages (S3: 1000); None when
    #: one call lists everything. Default None.
    page_size: int | None


def capability(store: Store, name: str) -> str | None:
    """The reason ``store`` cannot express a case, or None when it can."""
    reason = getattr(store, name, None)
    return None if reason is None else str(reason)


def checksums(store: Store) -> tuple[str, ...]:
    """The checksum algorithms ``store`` promises for a plain write."""
    return tuple(getattr(store, "checksums", ()))


def page_size(store: Store) -> int | None:
    """Objects per listing page of ``store``, None when it does not page."""
    size = getattr(store, "page_size", None)
    return None if size is None else int(size)
