"""A content-addressed store for the bytes refstore keeps itself.

Copied files (``Artifact.add_file``) and stored manifests live here, each
under the sha256 of its bytes, so the same bytes are kept once however many
artifacts hold them. Writes go to a temporary file in the store and are
renamed into place, so a blob is either complete or absent.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from refstore.errors import IntegrityError, ManifestError, NotFoundError

__all__ = ["BlobStore", "BlobWriter"]

log = logging.getLogger(__name__)
_CHUNK = 1024 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")


class BlobWriter:
    """A file being written into the store; ``digest`` is set when it closes."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._hasher = hashlib.sha256()
        self.size = 0
        self.digest = ""

    def write(self, data: bytes) -> int:
        self._hasher.update(data)
        self.size += len(data)
        return self._stream.write(data)

    def flush(self) -> None:
        self._stream.flush()

    def _finish(self) -> str:
        self.digest = self._hasher.hexdigest()
        return self.digest


class BlobStore:
    """Blobs under ``root/sha256/ab/cdef...``."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, digest: str) -> Path:
        # Digests arrive from manifests, which may be imported: one such as
        # "../../etc/passwd" must not name a file outside the store.
        if _SHA256.fullmatch(digest) is None:
            raise ManifestError(
                f"{digest!r} is not a blob digest (64 lowercase hex digits of a "
                "sha256); the manifest entry or catalog record naming it is corrupt"
            )
        return self.root / "sha256" / digest[:2] / digest[2:]

    def has(self, digest: str) -> bool:
        return self.path(digest).is_file()

    def hold(self, digest: str) -> bool:
        """Whether the blob is here; if so, make gc spare it for its grace period.

        A client told a blob is present does not upload it again, and logs a
        version naming it a moment later: an old blob no version needs yet
        must not be collected in between. A fresh mtime makes it young again.
        """
        try:
            os.utime(self.path(digest))
        except FileNotFoundError:
            return False
        return True

    @contextlib.contextmanager
    def writer(self) -> Iterator[BlobWriter]:
        """Write a new blob; it is stored under its digest when the block ends."""
        tmp_dir = self.root / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="blob-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as stream:
                blob = BlobWriter(stream)
                yield blob
                # Durable before it becomes visible: a crash must not leave a
                # blob whose name promises bytes it does not hold.
                stream.flush()
                os.fsync(stream.fileno())
            # mkstemp creates 0600; blobs are shared read-only content.
            tmp.chmod(0o644)
            self._commit(tmp, blob._finish())
        finally:
            tmp.unlink(missing_ok=True)

    def put_stream(self, stream: BinaryIO) -> tuple[str, int]:
        """Store everything ``stream`` yields; return (sha256, size)."""
        with self.writer() as blob:
            while chunk := stream.read(_CHUNK):
                blob.write(chunk)
        return blob.digest, blob.size

    def put_file(self, source: Path) -> tuple[str, int]:
        """Copy a local file into the store; return (sha256, size)."""
        with Path(source).open("rb") as stream:
            digest, size = self.put_stream(stream)
        log.debug("stored %s as blob %s (%d bytes)", source, digest, size)
        return digest, size

    def open(self, digest: str) -> BinaryIO:
        try:
            return self.path(digest).open("rb")
        except FileNotFoundError as exc:
            raise NotFoundError(
                f"blob {digest} is not in the blob store at {self.root}; the "
                "refstore home may have been moved or pruned"
            ) from exc

    def verify(self, digest: str) -> None:
        """Raise IntegrityError when the stored bytes no longer hash to ``digest``."""
        hasher = hashlib.sha256()
        with self.open(digest) as stream:
            while chunk := stream.read(_CHUNK):
                hasher.update(chunk)
        if hasher.hexdigest() != digest:
            raise IntegrityError(
                f"blob {digest} in {self.root} is corrupt; delete it and log the "
                "file again"
            )

    def delete(self, digest: str) -> bool:
        path = self.path(digest)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True

    def __iter__(self) -> Iterator[str]:
        base = self.root / "sha256"
        if not base.is_dir():
            return
        for folder in sorted(base.iterdir()):
            if not folder.is_dir():
                continue
            for blob in sorted(folder.iterdir()):
                digest = folder.name + blob.name
                if _SHA256.fullmatch(digest) and blob.is_file():
                    yield digest

    def _commit(self, tmp: Path, digest: str) -> None:
        final = self.path(digest)
        if final.is_file():
            # A fresh mtime tells gc, which spares young blobs, that a version
            # being logged needs these bytes again.
            with contextlib.suppress(OSError):
                os.utime(final)
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp.replace(final)

    def copy_to(self, digest: str, target: Path) -> None:
        """Copy a blob to ``target`` (the caller makes the write atomic)."""
        with self.open(digest) as source, Path(target).open("wb") as out:
            shutil.copyfileobj(source, out, _CHUNK)
