"""Helpers of the service tests: raw HTTP requests and seeded catalogs."""

from __future__ import annotations

import dataclasses
import hashlib
import http.client
import json
import urllib.parse
from typing import IO, Any, cast

from refstore.blobs import BlobStore
from refstore.catalog.base import NewVersion
from refstore.catalog.served import ManifestLimits, ServedCatalog
from refstore.manifest import ManifestEntry, write_stored


@dataclasses.dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def request(
    url: str,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: Any = None,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One request on a fresh connection; any status is returned, not raised."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    payload = raw
    if body is not None:
        payload = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    try:
        connection.request(method, path, body=payload, headers=sent)
        response = connection.getresponse()
        return Answer(response.status, dict(response.headers), response.read())
    finally:
        connection.close()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def store_file(catalog: ServedCatalog, project: str, data: bytes) -> str:
    """Put bytes in the service's blob store, held by ``project``."""
    with catalog.blobs.writer() as blob:
        blob.write(data)
    catalog.add_project_blobs(project, [blob.digest])
    return blob.digest


def stored_manifest(
    blobs: BlobStore, entries: list[ManifestEntry]
) -> tuple[str, str, int, int]:
    """Write a manifest; return (manifest blob, digest, count, total size)."""
    with blobs.writer() as blob:
        digest, count = write_stored(
            sorted(entries, key=lambda e: e.path), cast(IO[bytes], blob)
        )
    return blob.digest, digest, count, sum(e.size or 0 for e in entries)


def reference(path: str, key: str) -> ManifestEntry:
    ref = f"s3://bucket/{key}"
    return ManifestEntry(path=path, digest=sha256(key.encode())[:32], ref=ref, size=1)


def new_version(
    catalog: ServedCatalog,
    project: str,
    name: str,
    content: str,
    **fields: Any,
) -> NewVersion:
    """A version whose manifest (one reference) is stored and held by ``project``."""
    blob, digest, count, size = stored_manifest(
        catalog.blobs, [reference("file.txt", content)]
    )
    catalog.add_project_blobs(project, [blob])
    return NewVersion(
        project=project,
        name=name,
        type="dataset",
        digest=digest,
        manifest_blob=blob,
        entry_count=count,
        total_size=size,
        **fields,
    )


def log(
    catalog: ServedCatalog, project: str, name: str, content: str, **fields: Any
) -> Any:
    new = new_version(catalog, project, name, content, **fields)
    record, _ = catalog.log_checked(new, None, ManifestLimits())
    return record
