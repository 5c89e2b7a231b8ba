"""Large objects: one ranged read each, split while it runs by idle workers.

A large object starts as a single read of every byte it still lacks. When a
worker has nothing else to do, it takes the far half of the largest range
still being read (:class:`Splitter`): that reader stops at the new boundary,
and the worker reads the rest with a ranged request of its own at the same
pinned version. An object is therefore read in parallel exactly when
connections would otherwise sit idle: a model fetched on its own is spread
over every worker at once, while in an artifact of many objects a large one
costs one request, like the rest, and never an extra ranged read that the
store has to serve.

Bytes are written at their offsets (``pwrite``) into one preallocated file
and hashed in order: the reader at the front of the object hashes what it
reads as it reads it, and whoever finds the next bytes written reads them
back to hash them. The worker that settles the last range checks the whole
file, commits the sink and calls ``done``.

A part file in the cache records the byte ranges written so far in its
sidecar, every ``PartPolicy.size`` bytes and whenever a range ends, so an
interrupted download resumes with the ranges it lacks; the final check
covers the resumed bytes as well.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import logging
import os
import threading
from collections.abc import Callable, Iterable

from refstore.checksums import Checks
from refstore.errors import IntegrityError, ObjectNotFoundError, RefstoreError
from refstore.manifest import ManifestEntry
from refstore.progress import TransferProgress
from refstore.providers.base import Provider
from refstore.transfer import CHUNK, PartPolicy, Sink, entry_info, mismatch, origin

__all__ = ["Done", "SplitDownload", "Splitter"]

log = logging.getLogger(__name__)

Done = Callable[[int | None, Exception | None], None]
Task = Callable[[], None]
Submit = Callable[[Task], object]
Interval = tuple[int, int]

# The filesystem cannot preallocate: the file is extended instead.
_NO_FALLOCATE = frozenset({errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP})


class Splitter:
    """The downloads in progress that idle workers may split.

    ``steal`` is the worker pool's idle hook; ``wake`` (the pool's) is called
    whenever a download arrives, so that workers already asleep look again.
    """

    def __init__(self, wake: Callable[[], None] = lambda: None) -> None:
        self._lock = threading.Lock()
        self._downloads: set[SplitDownload] = set()
        self.wake = wake

    def add(self, download: SplitDownload) -> None:
        with self._lock:
            self._downloads.add(download)
        self.wake()

    def discard(self, download: SplitDownload) -> None:
        with self._lock:
            self._downloads.discard(download)

    def steal(self) -> Task | None:
        """A task reading the far half of the largest range left, or None."""
        with self._lock:
            downloads = list(self._downloads)
        by_size = sorted(downloads, key=SplitDownload.splittable, reverse=True)
        for download in by_size:
            task = download.steal()
            if task is not None:
                return task
        return None


@dataclasses.dataclass(eq=False)
class _Range:
    """Bytes [start, end) of the object, read by one request.

    ``end`` moves down when a worker takes the far part; ``reached`` is the
    offset the reader has claimed (read from the store, about to be
    written), ``written`` the offset written so far.
    """

    start: int
    end: int
    reached: int = -1
    written: int = -1
    active: bool = True

    def __post_init__(self) -> None:
        self.reached = self.written = self.start

    @property
    def left(self) -> int:
        return self.end - self.reached if self.active else 0


class SplitDownload:
    """One large object, read in ranges on a shared pool of workers."""

    def __init__(
        self,
        provider: Provider,
        entry: ManifestEntry,
        sink: Sink,
        policy: PartPolicy,
        *,
        splitter: Splitter,
        progress: TransferProgress | None,
        done: Done,
    ) -> None:
        self._provider = provider
        self._entry = entry
        self._info = entry_info(entry)
        self._sink = sink
        self._size = entry.size or 0
        self._policy = policy
        self._splitter = splitter
        self._progress = progress
        self._done = done
        self._checks = Checks.for_entry(entry)
        self._hashers = self._checks.hashers()
        self._lock = threading.Lock()
        self._hashing = threading.Lock()
        self._recording = threading.Lock()
        self._ranges: list[_Range] = []
        self._hashed = 0
        self._pending = 0
        self._transferred = 0
        self._error: Exception | None = None

    def start(self, submit: Submit) -> None:
        """Submit a read of every range the file lacks; finish if it lacks none."""
        done = self._resume()
        gaps = _gaps(done, self._size)
        self._ranges = [_finished(a, b) for a, b in done] + [_Range(*g) for g in gaps]
        if self._progress is not None:
            self._progress.add_bytes(sum(b - a for a, b in done))
        if done:
            log.debug(
                "resuming %s: %d of %d bytes already here",
                self._entry.path,
                sum(b - a for a, b in done),
                self._size,
            )
        self._pending = len(gaps)
        if not gaps:
            self._finish()
            return
        self._splitter.add(self)
        for found in self._ranges:
            if found.active:
                submit(functools.partial(self._run, found))

    def ranges(self) -> list[Interval]:
        """The [start, end) ranges the object is read in, as they stand now."""
        with self._lock:
            return sorted((found.start, found.end) for found in self._ranges)

    def splittable(self) -> int:
        """Bytes left in the largest range still being read."""
        with self._lock:
            return max((found.left for found in self._ranges), default=0)

    def steal(self) -> Task | None:
        """Cut the largest range in two; a task reading the far part, or None."""
        with self._lock:
            if self._error is not None or not self._ranges:
                return None
            largest = max(self._ranges, key=lambda found: found.left)
            if largest.left < 2 * self._policy.size:
                return None
            cut = largest.reached + largest.left // 2
            taken = _Range(cut, largest.end)
            largest.end = cut
            self._ranges.append(taken)
            self._pending += 1
        log.debug(
            "%s: reading bytes %d-%d in parallel", self._entry.path, *_span(taken)
        )
        self._splitter.wake()
        return functools.partial(self._run, taken)

    def _resume(self) -> list[Interval]:
        """Byte ranges a previous, interrupted download left written.

        Ranges are recorded without an fsync: only an entry whose checksums
        cover the whole file resumes, so bytes a power cut lost fail that
        check instead of passing for the object.
        """
        recorded = self._sink.read_parts()
        if self._checks.has_checksum and recorded.get("layout") == self._layout():
            return _intervals(recorded.get("done"), self._size)
        if not self._sink.fresh:
            os.ftruncate(self._sink.fd, 0)
        _preallocate(self._sink.fd, self._size)
        if recorded:
            self._sink.write_parts({"layout": self._layout(), "done": []})
        return []

    def _layout(self) -> dict[str, object]:
        return {"size": self._size}

    def _run(self, found: _Range) -> None:
        try:
            if self._error is None:
                self._read(found)
        except Exception as exc:  # noqa: BLE001 - handed to done() by _settle
            with self._lock:
                self._error = self._error or exc
        self._settle(found)

    def _read(self, found: _Range) -> None:
        with self._lock:
            start, end = found.reached, found.end
        if start >= end:
            return  # every byte of it was taken before its request went out
        with contextlib.closing(
            self._provider.read(self._info, start=start, end=end)
        ) as source:
            recorded = start
            while (want := self._claimable(found)) > 0:
                chunk = source.read(min(CHUNK, want))
                if not chunk:
                    break
                self._write(found, chunk)
                if found.written - recorded >= self._policy.size:
                    self._record()
                    recorded = found.written
        if found.written < found.end:
            raise IntegrityError(
                f"{origin(self._entry)} ended after {found.written} bytes, but "
                f"{self._size} were recorded: the stored object changed"
            )

    def _claimable(self, found: _Range) -> int:
        """Bytes the reader of ``found`` may still read (0: stop)."""
        if self._error is not None:
            return 0
        with self._lock:
            return found.end - found.reached

    def _write(self, found: _Range, chunk: bytes) -> None:
        with self._lock:
            # The far part may have been taken while this chunk was on its way.
            at = found.reached
            take = min(len(chunk), found.end - at)
            found.reached = at + take
            self._transferred += take
        data = chunk if take == len(chunk) else chunk[:take]
        view = memoryview(data)
        offset = at
        while offset < at + take:
            offset += os.pwrite(self._sink.fd, view[offset - at :], offset)
            # Only this range's reader moves ``written``; readers of the
            # hashing side see it once the bytes are in the file.
            found.written = offset
        if self._progress is not None:
            self._progress.add_bytes(take)
        self._hash_front(at, data)

    def _hash_front(self, at: int, chunk: bytes) -> None:
        """Hash ``chunk`` now if it is next in order, then what follows it."""
        if not self._hashing.acquire(blocking=False):
            return
        try:
            if at == self._hashed:
                for hasher in self._hashers.values():
                    hasher.update(chunk)
                self._hashed += len(chunk)
            self._hash_written()
        finally:
            self._hashing.release()

    def _hash_written(self) -> None:
        """Read back and hash the bytes written next after the hashed ones."""
        while (upto := self._written_from(self._hashed)) > self._hashed:
            while self._hashed < upto:
                chunk = os.pread(
                    self._sink.fd, min(CHUNK, upto - self._hashed), self._hashed
                )
                if not chunk:
                    return
                for hasher in self._hashers.values():
                    hasher.update(chunk)
                self._hashed += len(chunk)

    def _written_from(self, offset: int) -> int:
        with self._lock:
            for found in self._ranges:
                if found.start <= offset < found.written:
                    return found.written
        return offset

    def _record(self) -> None:
        # One writer at a time, each with the state as of its own turn, so a
        # later record is never replaced by an earlier one.
        with self._recording:
            with self._lock:
                written = [(r.start, r.written) for r in self._ranges]
            done = _merged(w for w in written if w[1] > w[0])
            self._sink.write_parts({"layout": self._layout(), "done": done})

    def _settle(self, found: _Range) -> None:
        if self._error is None:
            self._record()
        with self._lock:
            found.active = False
            self._pending -= 1
            last = self._pending == 0
        if last:
            self._finish()

    def _finish(self) -> None:
        self._splitter.discard(self)
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
        with self._hashing:
            self._hash_written()
        if self._hashed != self._size:
            raise IntegrityError(f"{origin(self._entry)}: bytes are missing")
        problems = self._checks.mismatches(self._hashers, self._hashed)
        if problems:
            raise mismatch(self._entry, problems)
        self._sink.commit()


def _finished(start: int, end: int) -> _Range:
    found = _Range(start, end, active=False)
    found.reached = found.written = end
    return found


def _span(found: _Range) -> Interval:
    return found.start, found.end - 1


def _intervals(value: object, size: int) -> list[Interval]:
    """Valid, merged [start, end) pairs from a sidecar record."""
    if not isinstance(value, list):
        return []
    pairs = (
        (item[0], item[1])
        for item in value
        if isinstance(item, list)
        and len(item) == 2
        and all(isinstance(n, int) and not isinstance(n, bool) for n in item)
    )
    return _merged(pair for pair in pairs if 0 <= pair[0] < pair[1] <= size)


def _merged(intervals: Iterable[Interval]) -> list[Interval]:
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def _gaps(done: list[Interval], size: int) -> list[Interval]:
    """What [0, size) holds beyond the merged intervals ``done``."""
    gaps, at = [], 0
    for start, end in done:
        if start > at:
            gaps.append((at, start))
        at = end
    if at < size:
        gaps.append((at, size))
    return gaps


def _resumable(error: Exception) -> bool:
    # Ranges of a version that is gone, or bytes that failed a check, are
    # worth nothing; anything else (a dropped connection) may be resumed.
    return isinstance(error, RefstoreError) and not isinstance(
        error, ObjectNotFoundError | IntegrityError
    )


def _preallocate(fd: int, size: int) -> None:
    # Reserve the space now: a full disk fails here, not in the last range.
    try:
        os.posix_fallocate(fd, 0, size)
    except AttributeError:  # not on this platform
        os.ftruncate(fd, size)
    except OSError as exc:
        if exc.errno not in _NO_FALLOCATE:
            raise
        os.ftruncate(fd, size)
