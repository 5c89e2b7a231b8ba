"""Transfers: the bytes of one object version into one local file, checked.

A transfer writes into a *sink*: a temporary file beside the target, or a
part file in the fetch cache. Nothing else ever sees a sink's file until its
bytes passed every check (:class:`~refstore.checksums.Checks`); then the
sink commits it by an atomic rename. A failed check deletes the file.

Small objects stream in one read, hashed on the way. Objects of at least
``PartPolicy.threshold`` bytes are read in ranged parts, in parallel, each a
read of the pinned version, written at its offset into one preallocated
file; the whole file is hashed once when the last part is in. A part file in
the cache remembers its finished parts in a sidecar (``.part.json``), so an
interrupted download resumes with the parts it lacks; the final check covers
the resumed bytes as well.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import errno
import functools
import json
import logging
import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, Protocol

from refstore.cache import FetchCache, Reservation
from refstore.checksums import Checks
from refstore.errors import IntegrityError, ObjectNotFoundError, RefstoreError
from refstore.manifest import ManifestEntry, ObjectInfo
from refstore.progress import TransferProgress
from refstore.providers.base import Provider
from refstore.uri import parse_uri

__all__ = [
    "CacheSink",
    "FileSink",
    "PartPolicy",
    "PartedDownload",
    "Sink",
    "entry_info",
    "origin",
    "stream_into",
]

log = logging.getLogger(__name__)

DEFAULT_PART_THRESHOLD = 64 * 1024 * 1024
DEFAULT_PART_SIZE = 16 * 1024 * 1024
_CHUNK = 1024 * 1024
# The filesystem cannot preallocate: the file is extended instead.
_NO_FALLOCATE = frozenset({errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP})

Done = Callable[[int | None, Exception | None], None]
Submit = Callable[[Callable[[], None]], object]


@dataclasses.dataclass(frozen=True)
class PartPolicy:
    """When and how to split a download into ranged parts."""

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

    def spans(self, size: int) -> list[tuple[int, int]]:
        return [(at, min(at + self.size, size)) for at in range(0, size, self.size)]


def entry_info(entry: ManifestEntry) -> ObjectInfo:
    """What a provider needs to read exactly the version an entry pins."""
    ref = entry.object_ref()
    etag = entry.etag if entry.checksummed else None
    return ObjectInfo(
        ref=ref,
        size=entry.size or 0,
        etag=etag,
        last_modified=_recorded_time(entry.extra.get("lastModified")),
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
    record of the finished ranged parts (``read_parts``/``write_parts``).
    """

    fd: int
    path: Path
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
        self.path = reservation.part
        self.fresh = reservation.fresh
        self.cached: Path | None = None

    def read_parts(self) -> dict[str, object]:
        if not self.reservation.may_have_sidecar:
            return {}
        return _read_sidecar(self.reservation.sidecar)

    def write_parts(self, record: dict[str, object]) -> None:
        _write_sidecar(self.reservation.sidecar, record)
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
    while chunk := source.read(_CHUNK):
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


class PartedDownload:
    """One large object in ranged parts, run on a shared pool of workers.

    ``start`` submits the parts it still lacks and returns. Parts are hashed
    in order as they become contiguous, by whichever worker finds the next
    one complete, so hashing overlaps the transfer instead of following it.
    The worker that settles the last part hashes what is left, checks the
    whole file, commits the sink and calls ``done(bytes transferred, None)``,
    or ``done(None, error)``.
    """

    def __init__(
        self,
        provider: Provider,
        entry: ManifestEntry,
        sink: Sink,
        policy: PartPolicy,
        progress: TransferProgress | None,
        done: Done,
    ) -> None:
        self._provider = provider
        self._entry = entry
        self._info = entry_info(entry)
        self._sink = sink
        self._size = entry.size or 0
        self._policy = policy
        self._progress = progress
        self._done = done
        self._checks = Checks.for_entry(entry)
        self._hashers = self._checks.hashers()
        self._spans = policy.spans(self._size)
        self._lock = threading.Lock()
        self._hashing = threading.Lock()
        self._finished: set[int] = set()
        self._next_hashed = 0
        self._pending = 0
        self._transferred = 0
        self._error: Exception | None = None

    def start(self, submit: Submit) -> None:
        self._finished = self._resume()
        missing = [i for i in range(len(self._spans)) if i not in self._finished]
        if self._progress is not None:
            self._progress.add_bytes(self._size - sum(self._span(i) for i in missing))
        if self._finished:
            log.debug(
                "resuming %s: %d of %d parts already here",
                self._entry.path,
                len(self._finished),
                len(self._spans),
            )
        self._pending = len(missing)
        if not missing:
            self._finish()
        for index in missing:
            submit(functools.partial(self._run_part, index))

    def _span(self, index: int) -> int:
        start, end = self._spans[index]
        return end - start

    def _resume(self) -> set[int]:
        """Parts a previous, interrupted download left complete.

        Parts are recorded without an fsync: only an entry whose checksums
        cover the whole file resumes, so bytes a power cut lost fail that
        check instead of passing for the object.
        """
        layout = {"size": self._size, "part_size": self._policy.size}
        recorded = self._sink.read_parts()
        if self._checks.has_checksum and recorded.get("layout") == layout:
            done = recorded.get("done")
            indices = done if isinstance(done, list) else []
            return {
                i for i in indices if isinstance(i, int) and 0 <= i < len(self._spans)
            }
        if not self._sink.fresh:
            os.ftruncate(self._sink.fd, 0)
        _preallocate(self._sink.fd, self._size)
        self._sink.write_parts({"layout": layout, "done": []})
        return set()

    def _run_part(self, index: int) -> None:
        try:
            if self._error is None:
                self._write_part(index)
                self._hash_ready(wait=False)
        except Exception as exc:  # noqa: BLE001 - handed to done() by _settle
            with self._lock:
                self._error = self._error or exc
        self._settle()

    def _write_part(self, index: int) -> None:
        start, end = self._spans[index]
        written = 0
        with contextlib.closing(
            self._provider.read(self._info, start=start, end=end)
        ) as source:
            while written < end - start and (chunk := source.read(_CHUNK)):
                chunk = chunk[: end - start - written]
                os.pwrite(self._sink.fd, chunk, start + written)
                written += len(chunk)
                if self._progress is not None:
                    self._progress.add_bytes(len(chunk))
        if written != end - start:
            raise IntegrityError(
                f"{origin(self._entry)} ended after {start + written} bytes, but "
                f"{self._size} were recorded: the stored object changed"
            )
        self._record(index, written)

    def _record(self, index: int, written: int) -> None:
        with self._lock:
            self._finished.add(index)
            self._transferred += written
            record: dict[str, object] = {
                "layout": {"size": self._size, "part_size": self._policy.size},
                "done": sorted(self._finished),
            }
            self._sink.write_parts(record)

    def _hash_ready(self, *, wait: bool) -> None:
        """Hash the parts that are complete and next in order.

        One worker hashes at a time; the others go back to transferring
        (``wait=False``), and the last one waits to hash what is left.
        """
        if not self._hashing.acquire(blocking=wait):
            return
        try:
            while True:
                with self._lock:
                    index = self._next_hashed
                    if index not in self._finished:
                        return
                self._hash_span(*self._spans[index])
                self._next_hashed = index + 1
        finally:
            self._hashing.release()

    def _hash_span(self, start: int, end: int) -> None:
        while start < end:
            chunk = os.pread(self._sink.fd, min(_CHUNK, end - start), start)
            if not chunk:
                break
            for hasher in self._hashers.values():
                hasher.update(chunk)
            start += len(chunk)

    def _settle(self) -> None:
        with self._lock:
            self._pending -= 1
            last = self._pending == 0
        if last:
            self._finish()

    def _finish(self) -> None:
        error = self._error
        if error is None:
            try:
                self._check_and_commit()
            except Exception as exc:  # noqa: BLE001 - handed to done()
                error = exc
        if error is not None:
            self._sink.abandon(resumable=_resumable(error))
            self._done(None, error)
            return
        self._done(self._transferred, None)

    def _check_and_commit(self) -> None:
        self._hash_ready(wait=True)
        size = os.fstat(self._sink.fd).st_size
        if self._next_hashed != len(self._spans):
            raise IntegrityError(f"{origin(self._entry)}: parts are missing")
        problems = self._checks.mismatches(self._hashers, size)
        if problems:
            raise mismatch(self._entry, problems)
        self._sink.commit()


def _resumable(error: Exception) -> bool:
    # Parts of a version that is gone, or bytes that failed a check, are
    # worth nothing; anything else (a dropped connection) may be resumed.
    return isinstance(error, RefstoreError) and not isinstance(
        error, ObjectNotFoundError | IntegrityError
    )


def _preallocate(fd: int, size: int) -> None:
    # Reserve the space now: a full disk fails here, not in the last part.
    try:
        os.posix_fallocate(fd, 0, size)
    except AttributeError:  # not on this platform
        os.ftruncate(fd, size)
    except OSError as exc:
        if exc.errno not in _NO_FALLOCATE:
            raise
        os.ftruncate(fd, size)


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
