"""Manifests: what an artifact version holds, entry by entry.

Plain data, no I/O beyond the byte streams handed in. Three value types:

* :class:`ObjectInfo`: what a provider says about one object version.
* :class:`ManifestEntry`: one logical path of an artifact, either a reference
  to an object in a store (``ref`` set, ``digest`` = the ETag) or a file
  copied into the blob store (``ref`` None, ``digest`` = its sha256).
* :class:`Manifest`: the entries of one artifact version, keyed by path.

Two serialisations:

* the W&B-compatible JSON document (``version``, ``contents``) for import and
  export, written and read as a stream;
* refstore's storage form: zstd-compressed JSON lines, one header line and
  one line per entry in path order, so that a manifest of millions of entries
  can be streamed, digested and fetched without holding a parse tree.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import posixpath
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, Any

import zstandard

from refstore.errors import ManifestError, UnsafePathError
from refstore.uri import ObjectRef, parse_uri

__all__ = [
    "Manifest",
    "ManifestEntry",
    "ObjectInfo",
    "check_entry_path",
    "read_stored",
    "write_stored",
]

MANIFEST_VERSION = 1
STORAGE_FORMAT = "refstore-manifest"
_PLAIN_MD5 = re.compile(r"[0-9a-f]{32}")
# One encoder for every line: json.dumps with options builds a new one per call.
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_WINDOWS_DRIVE = re.compile(r"[A-Za-z]:")
_READ_CHUNK = 1 << 16


@dataclasses.dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One object version as a store describes it, normalised.

    ``ref`` carries bucket, key and (when the store has versions) the version
    id. ``etag`` has no quotes; multipart ETags keep their ``-N`` suffix.
    ``checksums`` maps an algorithm (``md5``, ``crc32c``, ``sha256``, ...) to
    the value the store returned, in the store's own encoding.
    """

    ref: ObjectRef
    size: int
    etag: str | None = None
    last_modified: datetime.datetime | None = None
    checksums: Mapping[str, str] = dataclasses.field(default_factory=dict)
    is_latest: bool = True
    is_delete_marker: bool = False
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def version_id(self) -> str | None:
        return self.ref.version

    @property
    def etag_is_md5(self) -> bool:
        """True when the ETag is a plain MD5 of the bytes (single-part).

        A provider that knows better (SSE-KMS objects have MD5-shaped ETags
        that are not MD5s) says so with ``extra["etagIsMd5"] = False``.
        """
        if self.extra.get("etagIsMd5") is False:
            return False
        return self.etag is not None and _PLAIN_MD5.fullmatch(self.etag) is not None


@dataclasses.dataclass(frozen=True, slots=True)
class ManifestEntry:
    """One path of an artifact version."""

    path: str
    digest: str
    ref: str | None = None
    size: int | None = None
    extra: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def is_reference(self) -> bool:
        return self.ref is not None

    @property
    def version_id(self) -> str | None:
        value = self.extra.get("versionID")
        return None if value is None else str(value)

    @property
    def etag(self) -> str | None:
        value = self.extra.get("etag")
        return None if value is None else str(value)

    @property
    def etag_is_md5(self) -> bool:
        """True when the recorded ETag is a plain MD5 of the bytes."""
        if self.extra.get("etagIsMd5") is False:
            return False
        etag = self.etag
        return etag is not None and _PLAIN_MD5.fullmatch(etag) is not None

    @property
    def checksummed(self) -> bool:
        """False for references recorded with ``checksum=False``."""
        return not (self.is_reference and self.digest == self.ref)

    @classmethod
    def from_info(cls, path: str, info: ObjectInfo) -> ManifestEntry:
        """The entry that pins ``info`` under ``path``."""
        extra: dict[str, Any] = {}
        if info.etag is not None:
            extra["etag"] = info.etag
        if info.version_id is not None:
            extra["versionID"] = info.version_id
        if info.etag is not None and not info.etag_is_md5:
            extra["etagIsMd5"] = False
        extra.update(sorted(info.checksums.items()))
        extra.update(info.extra)
        unpinned = info.ref.with_version(None).uri
        digest = info.etag or info.checksums.get("sha256") or unpinned
        return cls(path=path, digest=digest, ref=unpinned, size=info.size, extra=extra)

    def object_ref(self) -> ObjectRef:
        """The pinned reference this entry points at."""
        if self.ref is None:
            raise ManifestError(
                f"entry {self.path!r} is a copied file, not a reference"
            )
        return parse_uri(self.ref).with_version(self.version_id)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"digest": self.digest}
        if self.ref is not None:
            data["ref"] = self.ref
        if self.size is not None:
            data["size"] = self.size
        if self.extra:
            data["extra"] = dict(self.extra)
        return data

    @classmethod
    def from_dict(cls, path: str, data: Mapping[str, Any]) -> ManifestEntry:
        if not isinstance(data, Mapping):
            raise ManifestError(
                f"manifest entry {path!r} must be a JSON object, "
                f"not {type(data).__name__}"
            )
        extra = data.get("extra")
        if isinstance(extra, Mapping):
            extra = dict(extra)  # the entry must not share the caller's dict
        return _checked_entry(
            path, data.get("digest"), data.get("ref"), data.get("size"), extra
        )

    def digest_line(self) -> bytes:
        """The bytes this entry contributes to the manifest digest."""
        fields = [self.path, self.ref, self.digest, self.size, self.version_id]
        return _COMPACT.encode(fields).encode()


def _checked_entry(
    path: str, digest: Any, ref: Any, size: Any, extra: Any
) -> ManifestEntry:
    """An entry from decoded JSON values, or ManifestError naming the bad one."""
    if not isinstance(digest, str) or not digest:
        raise ManifestError(
            f"manifest entry {path!r} has no digest; every entry needs one"
        )
    # bool is an int subclass; JSON true is not a size.
    if size is not None and (type(size) is not int or size < 0):
        raise ManifestError(f"manifest entry {path!r} has invalid size {size!r}")
    if ref is not None and (not isinstance(ref, str) or not ref):
        raise ManifestError(f"manifest entry {path!r} has invalid ref {ref!r}")
    if extra is None:
        extra = {}
    if not isinstance(extra, Mapping):
        raise ManifestError(f"manifest entry {path!r} has invalid extra {extra!r}")
    return ManifestEntry(
        path=path,
        digest=digest,
        ref=ref,
        size=size,
        extra=_compact_extra(extra, digest),
    )


def _compact_extra(extra: Mapping[str, Any], digest: str) -> dict[str, Any]:
    # Millions of entries repeat the same few keys, and a reference's ETag is
    # also its digest: share those strings instead of keeping a copy per entry.
    return {
        sys.intern(key): digest if value == digest else value
        for key, value in extra.items()
    }


def check_entry_path(path: str) -> str:
    """Return ``path`` if it is a safe relative POSIX path, else raise.

    Safe means: not empty, not absolute on any platform, no ``..`` segment,
    no backslash (a separator on Windows), no NUL, and not the destination
    folder itself (``.``). The result is normalised (``a//b/./c`` is
    ``a/b/c``).
    """
    bad = (
        not path
        or path.startswith(("/", "\\"))
        or _WINDOWS_DRIVE.match(path) is not None
        or "\\" in path
        or "\x00" in path
        or ".." in path.split("/")
    )
    normal = "" if bad else posixpath.normpath(path)
    if normal in ("", "."):
        raise UnsafePathError(
            f"manifest path {path!r} does not name a file inside the destination "
            "folder; entry paths must be relative, without '..', drive letters "
            "or backslashes"
        )
    return normal


class Manifest:
    """The entries of one artifact version, keyed by path."""

    def __init__(self, entries: Iterable[ManifestEntry] = ()) -> None:
        self.entries: dict[str, ManifestEntry] = {}
        for entry in entries:
            self.add(entry)

    def add(self, entry: ManifestEntry) -> None:
        """Add an entry; the same path twice must mean the same content."""
        current = self.entries.get(entry.path)
        if current is not None and current.digest_line() != entry.digest_line():
            raise ManifestError(
                f"path {entry.path!r} is already in the manifest with other "
                f"content ({current.ref or current.digest}); give the new "
                "entry another name"
            )
        self.entries[entry.path] = entry

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self) -> Iterator[ManifestEntry]:
        return iter(self.entries.values())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Manifest):
            return NotImplemented
        return self.entries == other.entries

    __hash__ = None  # type: ignore[assignment]

    def sorted_entries(self) -> list[ManifestEntry]:
        return [self.entries[path] for path in sorted(self.entries)]

    @property
    def total_size(self) -> int:
        return sum(entry.size or 0 for entry in self.entries.values())

    def digest(self) -> str:
        """sha256 over path, ref, digest, size and version of every entry."""
        return digest_entries(self.sorted_entries())

    def to_dict(self) -> dict[str, Any]:
        """The W&B-compatible JSON document."""
        return {
            "version": MANIFEST_VERSION,
            "storagePolicy": "refstore",
            "storagePolicyConfig": {},
            "contents": {e.path: e.to_dict() for e in self.sorted_entries()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        contents = _contents_of(data)
        return cls(ManifestEntry.from_dict(path, e) for path, e in contents.items())

    def write_json(self, stream: IO[str]) -> None:
        """Write the W&B-compatible document entry by entry."""
        write_json(self.sorted_entries(), stream)

    @classmethod
    def read_json(cls, stream: IO[bytes]) -> Manifest:
        """Read a W&B-compatible document (refstore's or W&B's own)."""
        return cls(iter_json(stream))


def digest_entries(entries: Iterable[ManifestEntry]) -> str:
    """The manifest digest of entries already in path order."""
    hasher = hashlib.sha256(b"refstore-manifest-v1\n")
    for entry in entries:
        hasher.update(entry.digest_line())
        hasher.update(b"\n")
    return hasher.hexdigest()


def _contents_of(data: Mapping[str, Any]) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise ManifestError("a manifest must be a JSON object with 'contents'")
    _check_version(data.get("version"))
    contents = data.get("contents")
    if not isinstance(contents, Mapping):
        raise ManifestError("the manifest has no 'contents' object")
    return contents


def write_json(entries: Iterable[ManifestEntry], stream: IO[str]) -> None:
    """Stream the W&B-compatible document for ``entries``."""
    stream.write('{"version": 1, "storagePolicy": "refstore", ')
    stream.write('"storagePolicyConfig": {}, "contents": {')
    for index, entry in enumerate(entries):
        stream.write(",\n" if index else "\n")
        stream.write(json.dumps(entry.path, ensure_ascii=False))
        stream.write(": ")
        stream.write(json.dumps(entry.to_dict(), ensure_ascii=False))
    stream.write("\n}}\n")


def iter_json(stream: IO[bytes]) -> Iterator[ManifestEntry]:
    """Stream the entries of a W&B-compatible document without a parse tree."""
    import ijson

    try:
        yield from _entries_from_events(ijson.parse(stream, use_float=True))
    except ijson.JSONError as exc:
        # yajl draws the bad spot under a copy of the text, over several
        # lines; its first line says what is wrong.
        reason = (str(exc).strip().splitlines() or ["cut short"])[0]
        raise ManifestError(f"the manifest is not valid JSON: {reason}") from exc


def _entries_from_events(
    events: Iterator[tuple[str, str, Any]],
) -> Iterator[ManifestEntry]:
    from ijson.common import ObjectBuilder

    seen_version = seen_contents = False
    builder: Any = None
    path = ""
    depth = 0
    for prefix, event, value in events:
        if builder is None:
            if prefix == "version" and event in _SCALAR_EVENTS:
                _check_version(value)
                seen_version = True
            elif prefix == "contents" and event == "start_map":
                seen_contents = True
            elif prefix == "contents" and event == "map_key":
                builder, path, depth = ObjectBuilder(), value, 0
            continue
        builder.event(event, value)
        depth += event in ("start_map", "start_array")
        depth -= event in ("end_map", "end_array")
        if depth == 0:
            yield ManifestEntry.from_dict(path, builder.value)
            builder = None
    if not seen_contents:
        raise ManifestError("the manifest has no 'contents' object")
    if not seen_version:
        raise ManifestError("the manifest has no 'version'")


_SCALAR_EVENTS = frozenset({"number", "string", "boolean", "null"})


def _check_version(version: Any) -> None:
    # bool is an int subclass, and true == 1; only the integer 1 is version 1.
    if type(version) is not int or version != MANIFEST_VERSION:
        raise ManifestError(
            f"manifest version {version!r} is not supported; refstore reads "
            f"version {MANIFEST_VERSION} (refstore's and W&B's format)"
        )


def write_stored(
    entries: Iterable[ManifestEntry], stream: IO[bytes]
) -> tuple[str, int]:
    """Write entries (in path order) in storage form; return digest and count.

    The caller passes entries sorted by path; the digest is computed on the
    way so that the stored bytes and the recorded digest always agree.
    """
    hasher = hashlib.sha256(b"refstore-manifest-v1\n")
    count = 0
    previous: str | None = None
    compressor = zstandard.ZstdCompressor(level=3)
    with compressor.stream_writer(stream, closefd=False) as out:
        out.write(_header_line())
        for entry in entries:
            if previous is not None and entry.path <= previous:
                raise ManifestError(
                    f"entries must be written in path order: {entry.path!r} "
                    f"after {previous!r}"
                )
            previous = entry.path
            hasher.update(entry.digest_line())
            hasher.update(b"\n")
            out.write(_entry_line(entry))
            count += 1
    return hasher.hexdigest(), count


def read_stored(stream: IO[bytes]) -> Iterator[ManifestEntry]:
    """Stream the entries of a manifest in storage form, in path order.

    A stream that is cut short, corrupt or out of order raises ManifestError
    (possibly after the entries before the damage were yielded).
    """
    lines = _stored_lines(stream)
    _check_header(next(lines, b""))
    previous: str | None = None
    for line in lines:
        entry = _parse_entry_line(line)
        if previous is not None and entry.path <= previous:
            raise ManifestError(
                f"the stored manifest is corrupt: {entry.path!r} comes after "
                f"{previous!r}, entries must be in path order"
            )
        previous = entry.path
        yield entry


def _stored_lines(stream: IO[bytes]) -> Iterator[bytes]:
    # A decompressobj, not a stream_reader: only it says whether the zstd
    # frame ended, and a stream cut at a line boundary must not pass for a
    # shorter manifest.
    decompressor = zstandard.ZstdDecompressor().decompressobj()
    pending = b""
    while not decompressor.eof and (chunk := stream.read(_READ_CHUNK)):
        try:
            pending += decompressor.decompress(chunk)
        except zstandard.ZstdError as exc:
            raise ManifestError(f"the stored manifest is corrupt: {exc}") from exc
        *lines, pending = pending.split(b"\n")
        yield from lines
    if not decompressor.eof:
        raise ManifestError("the stored manifest is truncated: its data ends early")
    if pending:
        raise ManifestError("the stored manifest is corrupt: its last line is cut")
    if decompressor.unused_data or stream.read(1):
        raise ManifestError("the stored manifest is corrupt: data after its end")


def _header_line() -> bytes:
    header = {"format": STORAGE_FORMAT, "version": MANIFEST_VERSION}
    return json.dumps(header).encode() + b"\n"


def _check_header(line: bytes) -> None:
    try:
        header = json.loads(line)
    except ValueError as exc:
        raise ManifestError("the stored manifest has no header line") from exc
    if not isinstance(header, dict) or header.get("format") != STORAGE_FORMAT:
        raise ManifestError("the stored manifest is not in refstore's format")
    version = header.get("version")
    if type(version) is int and version > MANIFEST_VERSION:
        raise ManifestError(
            f"stored manifest version {version} is newer than this refstore "
            f"understands (version {MANIFEST_VERSION}); upgrade refstore"
        )
    if type(version) is not int or version != MANIFEST_VERSION:
        raise ManifestError(
            f"stored manifest version {version!r} is not supported; refstore "
            f"reads version {MANIFEST_VERSION}"
        )


def _entry_line(entry: ManifestEntry) -> bytes:
    fields = [entry.path, entry.digest, entry.ref, entry.size, dict(entry.extra)]
    line = _COMPACT.encode(fields)
    return line.encode() + b"\n"


def _parse_entry_line(line: bytes) -> ManifestEntry:
    try:
        fields = json.loads(line.decode())
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise ManifestError(f"the stored manifest has a corrupt line: {exc}") from exc
    if not isinstance(fields, list) or len(fields) != 5:
        raise ManifestError(
            f"the stored manifest has a corrupt line: {line[:200]!r} is not "
            "[path, digest, ref, size, extra]"
        )
    path, digest, ref, size, extra = fields
    if not isinstance(path, str):
        raise ManifestError(f"the stored manifest has an entry path {path!r}")
    return _checked_entry(path, digest, ref, size, extra)
