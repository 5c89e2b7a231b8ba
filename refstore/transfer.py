"""Transfers: the bytes of one object version into one local file, checked.

A transfer writes into a *sink*: a temporary file beside the target, or a
part file in the fetch cache. Nothing else ever sees a sink's file until its
bytes passed every check (:class:`~refstore.checksums.Checks`); then the
sink commits it by an atomic rename. A failed check deletes the file.

Objects stream in one read, hashed on the way (:func:`stream_into`). Objects
of at least ``PartPolicy.threshold`` bytes are read in ranges that idle
workers may split (:mod:`refstore.ranges`); a part file in the cache keeps
their progress in a sidecar (``.part.json``) so that they resume.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
import logging
import os
import uuid
from pathlib import Path
from typing import BinaryIO, Protocol

from refstore.cache import FetchCache, Reservation
from refstore.checksums import Checks, recorded_checksums
from refstore.errors import IntegrityError
from refstore.manifest import ManifestEntry, ObjectInfo
from refstore.progress import TransferProgress
from refstore.providers.base import Provider
from refstore.uri import parse_uri

__all__ = [
    "CHUNK",
    "CacheSink",
    "FileSink",
    "PartPolicy",
    "Sink",
    "entry_info",
    "mismatch",
    "origin",
    "stream_into",
]

log = logging.getLogger(__name__)

DEFAULT_PART_SIZE = 16 * 1024 * 1024
DEFAULT_PART_THRESHOLD = 2 * DEFAULT_PART_SIZE
CHUNK = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class PartPolicy:
    """Which downloads may be split into ranged reads, and how finely.

    Objects of ``threshold`` bytes or more are read in ranges that idle
    workers split; a split never leaves a range under ``size`` bytes, and a
    resumable download records its progress every ``size`` bytes.
    """

    threshold: int = DEFAULT_PART_THRESHOLD
    size: int = DEFAULT_PART_SIZE

    def __post_init__(self) -> None:
        if self.size < 1 or self.threshold < 1:
            raise ValueError("part size and threshold must be 1 byte or more")

    def splits(self, provider: Provider, size: int | None) -> bool:
        # A store whose ranged reads cost a whole read (local files are
        # hashed whole for each) says so with parallel_ranges = False.
        ranged = getattr(provider, "parallel_ranges", True) is not False
        # Parts are written at their offsets with pwrite, which Windows lacks.
        positional = hasattr(os, "pwrite")
        return ranged and positional and size is not None and size >= self.threshold


def entry_info(entry: ManifestEntry) -> ObjectInfo:
    """What a provider needs to read exactly the version an entry pins.

    ``checksums`` holds what the fetch checks the bytes against, so that a
    provider need not have the store check them a second time.
    """
    ref = entry.object_ref()
    etag = entry.etag if entry.checksummed else None
    return ObjectInfo(
        ref=ref,
        size=entry.size or 0,
        etag=etag,
        last_modified=_recorded_time(entry.extra.get("lastModified")),
        checksums=recorded_checksums(entry) if entry.checksummed else {},
    )


def _recorded_time(value: object) -> datetime.datetime | None:
    if not isinstance(value, str):
        return None
    with contextlib.suppress(ValueError):
        return datetime.datetime.fromisoformat(value)
    return None


def origin(entry: ManifestEntry) -> str:
    """The entry's source, for messages."""
    if entry.ref is None:
        return f"copied file {entry.path!r}"
    return str(parse_uri(entry.ref).with_version(entry.version_id))


class Sink(Protocol):
    """Where one download's bytes go before they are known to be right.

    ``fresh``: the file is new and empty. A sink that can resume keeps a
    record of the byte ranges written so far (``read_parts``/``write_parts``).
    """

    fd: int
    fresh: bool

    def read_parts(self) -> dict[str, object]:
        """The parts record an interrupted download left ({} when none)."""
        ...

    def write_parts(self, record: dict[str, object]) -> None:
        """Remember which parts are complete (nothing, when not resumable)."""
        ...

    def commit(self) -> None:
        """The bytes passed every check: make them the result."""
        ...

    def abandon(self, resumable: bool) -> None:
        """The download failed; keep its file only when ``resumable``."""
        ...


class FileSink:
    """A temporary file beside the target, renamed onto it when verified."""

    fresh = True

    def __init__(self, target: Path) -> None:
        # The random part keeps concurrent fetches into one folder apart;
        # a crash leaves only a dot-file that no entry can be mistaken for.
        self.target = target
        self.path = target.with_name(f".{target.name}.{uuid.uuid4().hex}.refstore-part")
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)

    def read_parts(self) -> dict[str, object]:
        return {}

    def write_parts(self, record: dict[str, object]) -> None:
        pass  # a file beside the target is never resumed

    def commit(self) -> None:
        os.close(self.fd)
        self.fd = -1
        self.path.replace(self.target)

    def abandon(self, resumable: bool) -> None:
        self._close()
        self.path.unlink(missing_ok=True)

    def _close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class CacheSink:
    """A part file in the fetch cache, locked; moved into the cache when verified."""

    def __init__(self, cache: FetchCache, key: str, reservation: Reservation) -> None:
        self.cache = cache
        self.key = key
        self.reservation = reservation
        self.fd = reservation.fd
        self.fresh = reservation.fresh
        self.cached: str | None = None

    def read_parts(self) -> dict[str, object]:
        if not self.reservation.may_have_sidecar:
            return {}
        return _read_sidecar(Path(self.reservation.sidecar))

    def write_parts(self, record: dict[str, object]) -> None:
        _write_sidecar(Path(self.reservation.sidecar), record)
        self.reservation.sidecar_written = True

    def commit(self) -> None:
        self.cached = self.cache.place(self.reservation, self.key)
        self.reservation.close()

    def abandon(self, resumable: bool) -> None:
        if not resumable:
            self.reservation.discard()
        self.reservation.close()


def stream_into(
    source: BinaryIO,
    sink: Sink,
    checks: Checks,
    progress: TransferProgress | None,
    entry: ManifestEntry,
) -> int:
    """Write all of ``source`` into ``sink`` from its start; hash and check it."""
    hashers = checks.hashers()
    size = 0
    if not sink.fresh:
        os.ftruncate(sink.fd, 0)
    while chunk := source.read(CHUNK):
        _write_all(sink.fd, chunk)
        for hasher in hashers.values():
            hasher.update(chunk)
        size += len(chunk)
        if progress is not None:
            progress.add_bytes(len(chunk))
    problems = checks.mismatches(hashers, size)
    if problems:
        raise mismatch(entry, problems)
    return size


def _write_all(fd: int, data: bytes) -> None:
    # Straight to the descriptor: a file object around it costs a system
    # call of its own per object.
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def mismatch(entry: ManifestEntry, problems: list[str]) -> IntegrityError:
    return IntegrityError(
        f"{origin(entry)} does not match its record ({'; '.join(problems)}); "
        "the stored object changed or was corrupted: verify the artifact"
    )


def _read_sidecar(path: Path) -> dict[str, object]:
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _write_sidecar(path: Path, record: dict[str, object]) -> None:
    tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}")
    tmp.write_text(json.dumps(record), encoding="utf-8")
    tmp.replace(path)
