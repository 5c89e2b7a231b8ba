"""The blob store of a catalog served by a refstore service.

Writes stay local: ``writer``, ``put_file`` and ``put_stream`` store into the
local blob store (under ``REFSTORE_HOME``), which is the staging area;
:meth:`refstore.catalog.http.HttpCatalog.log_version` then uploads what the
new version needs, to its project, skipping what the project already holds.
Reads come from the local store when it has the bytes, and are otherwise
downloaded into it first and checked against their sha256, so the local
store doubles as a cache of manifests and copied files.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from refstore.blobs import BlobStore, BlobWriter
from refstore.catalog.http_transport import Transport
from refstore.errors import IntegrityError

__all__ = ["ServiceBlobs"]


class ServiceBlobs(BlobStore):
    """A local blob store in front of a service's."""

    def __init__(self, root: Path, transport: Transport) -> None:
        super().__init__(root)
        self._transport = transport

    def has(self, digest: str) -> bool:
        if super().has(digest):
            return True
        return self._transport.exists(_remote(digest))

    def has_local(self, digest: str) -> bool:
        return super().has(digest)

    def open(self, digest: str) -> BinaryIO:
        if not super().has(digest):
            self._download(digest)
        return super().open(digest)

    def _download(self, digest: str) -> None:
        self.path(digest)  # refuses anything but a sha256 before any request
        stored: list[str] = []

        @contextlib.contextmanager
        def sink() -> Iterator[BlobWriter]:
            with self.writer() as blob:
                yield blob
            stored.append(blob.digest)

        self._transport.download(_remote(digest), sink)
        if stored[-1] != digest:
            raise IntegrityError(
                f"the refstore service at {self._transport.url} sent bytes that "
                f"hash to {stored[-1]} for the blob {digest}"
            )


def _remote(digest: str) -> str:
    return f"/api/v1/blobs/{digest}"
