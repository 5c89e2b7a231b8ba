"""Filesystems fsspec knows: ``file://``, ``memory://`` and every protocol that no
dedicated provider serves (ftp, sftp, hdfs, webdav, ...).

References have no bucket: ``ObjectRef(scheme, "", key)`` with the key being
everything after ``scheme://``. So ``file:///data/x.csv`` has the key
``/data/x.csv``; file references must be absolute, since a relative path
would name another file in every working directory. ``memory://b/x`` has
the key ``b/x``. Keys that the provider yields keep the form of the
reference they came from. Options for a protocol (``[stores.sftp]`` in the
refstore config) are fsspec's storage options for it.

What a stat records:

* local files are hashed: the sha256 of the bytes (hex) is both the ETag and
  the ``sha256`` checksum, with the size and the modification time
  (``last_modified``, and ``extra["mtime"]``). A content hash as ETag makes
  verification and conditional reads work as for any store: a changed file
  has another ETag, a touched but unchanged one keeps its ETag;
* other protocols: what ``info()`` returns: an ETag, checksums (md5,
  sha256, crc32c), and a version or generation in
  ``extra["objectVersion"]`` (recorded, not pinned: reads go through fsspec
  without it). When none of them exists a WARNING says that nothing pins
  the content.

A scan is one ``find()`` of the folder (fsspec pages internally where the
protocol does), yielded in key order; folders are not objects, and there are
no versions, so ``versions=True`` yields the same objects. Capturing a local
folder reads every file once to hash it.

A read of a local file with a recorded ETag hashes the bytes as they stream;
a difference raises IntegrityError at the end, before the reader sees the
end of the stream (a byte range hashes the whole file first). For other
protocols the ETag ``info()`` reports is compared before the file is opened.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime
import hashlib
import io
import logging
import threading
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar

import fsspec.core
from fsspec.implementations.local import (
    LocalFileSystem,
)

from refstore.config import Settings
from refstore.errors import (
    AccessDeniedError,
    ConfigError,
    EndpointError,
    IntegrityError,
    InvalidReferenceError,
    ObjectNotFoundError,
    RefstoreError,
    StoreError,
)
from refstore.manifest import ObjectInfo
from refstore.providers.base import RequestCounter, Versioning
from refstore.uri import ObjectRef

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["FsspecProvider", "translate_error"]

log = logging.getLogger(__name__)

READ_BUFFER = 1024 * 1024

# info() keys across fsspec implementations (s3fs, gcsfs, adlfs, hf, ...).
_ETAG_KEYS = ("ETag", "etag", "e_tag")
_VERSION_KEYS = ("VersionId", "version_id", "generation", "version")
_TIME_KEYS = ("mtime", "LastModified", "last_modified", "updated", "created")
# key -> (checksum name, encoding of the value)
_CHECKSUM_KEYS = {
    "md5": ("md5", "hex"),
    "md5Hash": ("md5", "base64"),
    "sha256": ("sha256", "hex"),
    "crc32c": ("crc32c", "raw"),
}
_HEX_LENGTHS = {"md5": 32, "sha256": 64}


class FsspecProvider:
    """Any fsspec filesystem, without versions; local files pinned by sha256."""

    schemes: ClassVar[tuple[str, ...]] = ("file", "memory")
    # No versions exist, so one find shows every version there is: a file
    # absent from it is gone.
    lists_noncurrent_versions: ClassVar[bool] = True
    # A ranged read of a local file hashes the whole file first, and other
    # protocols ask info() each time: parallel parts would cost more.
    parallel_ranges: ClassVar[bool] = False
    # One find lists everything at once: starting after a key only skips
    # keys, and costs no request more.
    lists_from_key: ClassVar[bool] = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.requests = RequestCounter()
        self._lock = threading.Lock()

    def stat(self, ref: ObjectRef) -> ObjectInfo:
        _check_unpinned(ref)
        fs, path = self._locate(ref)
        with _translated(ref):
            self.requests.add("info")
            detail: Mapping[str, Any] = fs.info(path)
            if detail.get("type") != "file":
                raise ObjectNotFoundError(f"{ref} is a folder, not an object")
            info = _object_info(fs, ref, path, detail)
        if not _pins_content(info):
            log.warning(
                "%s has no ETag, version or checksum: nothing pins its content, "
                "so a change of the same size goes unnoticed",
                ref,
            )
        return info

    def scan(
        self,
        prefix: ObjectRef,
        *,
        versions: bool = False,
        start_after: str | None = None,
    ) -> Iterator[ObjectInfo]:
        folder = prefix.key[: prefix.key.rfind("/") + 1]
        fs, base = self._locate(prefix.child(folder))
        listing = self._scan(fs, prefix, folder, base.rstrip("/"))
        if start_after is None:
            return listing
        return (info for info in listing if info.ref.key > start_after)

    def read(
        self, info: ObjectInfo, *, start: int = 0, end: int | None = None
    ) -> BinaryIO:
        if start < 0:
            raise ValueError(f"start must be 0 or more, not {start}")
        _check_unpinned(info.ref)
        if end is not None and end <= start:
            return io.BytesIO(b"")
        fs, path = self._locate(info.ref)
        whole = not start and end is None
        with _translated(info.ref):
            expected = self._etag_to_stream(fs, info, path, whole)
            self.requests.add("open")
            stream = fs.open(path, "rb")
            if start:
                stream.seek(start)
        limit = None if end is None else end - start
        raw = _Stream(stream, info, limit, expected)
        return io.BufferedReader(raw, buffer_size=READ_BUFFER)

    def versioning(self, ref: ObjectRef) -> Versioning:
        return Versioning.OFF

    def _scan(
        self, fs: Any, prefix: ObjectRef, folder: str, base: str
    ) -> Iterator[ObjectInfo]:
        stem = prefix.key[len(folder) :]
        with _translated(prefix):
            self.requests.add("find")
            found: Mapping[str, Mapping[str, Any]] = fs.find(
                base or "/", detail=True, withdirs=False
            )
        unpinned = 0
        for name in sorted(found):
            relative = _relative(name, base)
            if not relative or not relative.startswith(stem):
                continue
            ref = prefix.child(folder + relative)
            with _translated(ref):
                info = _object_info(fs, ref, name, found[name])
            unpinned += not _pins_content(info)
            yield info
        if unpinned:
            log.warning(
                "%d objects under %s have no ETag, version or checksum: nothing "
                "pins their content",
                unpinned,
                prefix,
            )

    def _etag_to_stream(
        self, fs: Any, info: ObjectInfo, path: str, whole: bool
    ) -> str | None:
        """Check the recorded ETag now, or return it to check while streaming."""
        if info.etag is None:
            return None
        if _is_local(fs) and whole:
            return info.etag
        if _is_local(fs):
            current: str | None = _sha256(fs, path)
        else:
            self.requests.add("info")
            current = _etag(fs.info(path))
        if current != info.etag:
            raise _changed(info, current)
        return None

    def _locate(self, ref: ObjectRef) -> tuple[Any, str]:
        options = self.settings.store_options(ref)
        try:
            fs, path = fsspec.core.url_to_fs(ref.unpinned_uri, **options)
        except ValueError as exc:
            raise InvalidReferenceError(
                f"refstore cannot open {ref}: {exc}; no provider serves {ref.scheme}://"
            ) from exc
        except ImportError as exc:
            raise ConfigError(
                f"fsspec needs another package for {ref.scheme}:// references: {exc}"
            ) from exc
        if _is_local(fs) and not ref.key.startswith("/"):
            raise InvalidReferenceError(
                f"{ref}: file references need an absolute path, for example "
                f"file:///data/{ref.key}"
            )
        return fs, path


def _check_unpinned(ref: ObjectRef) -> None:
    if ref.version is not None:
        raise InvalidReferenceError(
            f"{ref}: {ref.scheme}:// files have no versions; remove the version pin"
        )


def _is_local(fs: Any) -> bool:
    return isinstance(fs, LocalFileSystem)


def _relative(name: str, base: str) -> str:
    if base and not name.startswith(base + "/"):
        return ""
    return name[len(base) :].lstrip("/")


def _pins_content(info: ObjectInfo) -> bool:
    return bool(info.etag or info.checksums or info.extra.get("objectVersion"))


def _changed(info: ObjectInfo, current: str | None) -> IntegrityError:
    now = f"ETag {current}" if current else "no ETag"
    return IntegrityError(
        f"{info.ref} changed since it was recorded: it has {now}, not the "
        f"recorded {info.etag}; record the artifact again"
    )


# Normalisation: what fsspec says, as ObjectInfo fields.


def _object_info(
    fs: Any, ref: ObjectRef, path: str, detail: Mapping[str, Any]
) -> ObjectInfo:
    if _is_local(fs):
        return _local_info(fs, ref, path, detail)
    extra: dict[str, Any] = {}
    version = next((detail[k] for k in _VERSION_KEYS if detail.get(k)), None)
    if version is not None:
        extra["objectVersion"] = str(version)
    return ObjectInfo(
        ref=ref,
        size=int(detail.get("size") or 0),
        etag=_etag(detail),
        last_modified=_modified(detail),
        checksums=_checksums(detail),
        extra=extra,
    )


def _local_info(
    fs: Any, ref: ObjectRef, path: str, detail: Mapping[str, Any]
) -> ObjectInfo:
    sha256 = _sha256(fs, path)
    modified = _modified(detail)
    extra = {} if modified is None else {"mtime": modified.isoformat()}
    return ObjectInfo(
        ref=ref,
        size=int(detail["size"]),
        etag=sha256,
        last_modified=modified,
        checksums={"sha256": sha256},
        extra=extra,
    )


def _sha256(fs: Any, path: str) -> str:
    with fs.open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def _etag(detail: Mapping[str, Any]) -> str | None:
    value = next((detail[k] for k in _ETAG_KEYS if detail.get(k)), None)
    if value is None:
        return None
    return str(value).strip().strip('"') or None


def _modified(detail: Mapping[str, Any]) -> datetime.datetime | None:
    value = next((detail[k] for k in _TIME_KEYS if detail.get(k)), None)
    if isinstance(value, datetime.datetime):
        stamp = value if value.tzinfo else value.replace(tzinfo=datetime.UTC)
        return stamp.astimezone(datetime.UTC)
    if isinstance(value, int | float):
        return datetime.datetime.fromtimestamp(value, datetime.UTC)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return _modified({"mtime": datetime.datetime.fromisoformat(value)})
    return None


def _checksums(detail: Mapping[str, Any]) -> dict[str, str]:
    checksums: dict[str, str] = {}
    for key, (name, encoding) in _CHECKSUM_KEYS.items():
        value = detail.get(key)
        normal = None if not isinstance(value, str) else _normal(value, encoding)
        if normal is not None and (name not in _HEX_LENGTHS or _is_hex(normal, name)):
            checksums.setdefault(name, normal)
    return checksums


def _normal(value: str, encoding: str) -> str | None:
    if encoding == "base64":
        try:
            return base64.b64decode(value, validate=True).hex()
        except (binascii.Error, ValueError):
            return None
    return value.lower() if encoding == "hex" else value


def _is_hex(value: str, name: str) -> bool:
    return len(value) == _HEX_LENGTHS[name] and all(
        char in "0123456789abcdef" for char in value
    )


class _Stream(io.RawIOBase):
    """An open fsspec file: a byte range, an ETag checked at the end, errors
    translated."""

    def __init__(
        self, stream: Any, info: ObjectInfo, limit: int | None, sha256: str | None
    ) -> None:
        super().__init__()
        self._stream = stream
        self._info = info
        self._left = limit
        self._expected = sha256
        self._hash = hashlib.sha256() if sha256 is not None else None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        wanted = len(view) if self._left is None else min(len(view), self._left)
        if wanted == 0:
            return 0
        with _translated(self._info.ref):
            data: bytes = self._stream.read(wanted)
        if self._hash is not None:
            self._hash.update(data)
            if not data:
                self._check_digest()
        view[: len(data)] = data
        if self._left is not None:
            self._left -= len(data)
        return len(data)

    def _check_digest(self) -> None:
        assert self._hash is not None
        digest = self._hash.hexdigest()
        if digest != self._expected:
            raise _changed(self._info, digest)

    def close(self) -> None:
        if not self.closed:
            self._stream.close()
        super().close()


# Error translation: every filesystem failure becomes a refstore error here.


@contextlib.contextmanager
def _translated(ref: ObjectRef) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise translate_error(exc, ref) from exc


def translate_error(exc: OSError, ref: ObjectRef) -> RefstoreError:
    """The refstore error for a filesystem failure concerning ``ref``."""
    if isinstance(exc, FileNotFoundError | NotADirectoryError):
        return ObjectNotFoundError(f"no object at {ref}; check the path")
    if isinstance(exc, IsADirectoryError):
        return ObjectNotFoundError(f"{ref} is a folder, not an object")
    if isinstance(exc, PermissionError):
        return AccessDeniedError(
            f"access denied: {ref} may not be read by this user ({exc.strerror})"
        )
    if isinstance(exc, ConnectionError | TimeoutError):
        return EndpointError(f"cannot reach the store of {ref}: {exc}")
    return StoreError(f"{ref.scheme}:// request for {ref} failed: {exc}")
