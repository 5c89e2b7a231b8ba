"""The fetch cache: verified object versions, shared by every artifact.

An object version is cached under a key made of its reference, version, ETag
and size, never of its size alone; an entry without a version or a strong
ETag is never cached (nothing pins its bytes). Layout under the cache root::

    objects/ab/abcdef...        one read-only file per object version
    tmp/a/abcdef....part        a download in progress (the lock, and its bytes)
    tmp/a/abcdef....part.json   which ranged parts of it are complete

Part files are spread over 16 folders: creating a file holds its folder's
lock, and concurrent downloads into one folder queue on it (measured: 16
workers creating 2000 files took 1.9 s in one folder, 1.1 s in 16 and 1.2 s
in 256). Sixteen folders spread the writers as well as 256 would, and a new
cache creates 240 folders fewer, which costs more than it sounds where the
filesystem makes each new inode expensive.

Several processes may share a cache. A download holds an exclusive lock on
its part file (``flock``), so one process downloads a key while the others
wait and then find it cached; files enter ``objects/`` by an atomic rename,
so a cached file is always complete and verified. There is no index to
corrupt: the files are the index, and each file's access time is the
least-recently-used clock (set explicitly on every use, so mount options
such as ``noatime`` do not matter).

Fetching links a cached file into the destination (a hard link, or a copy
across devices). Cached files are read-only, so a link in a destination
folder is read-only too: a program must replace such a file, not write into
it. Eviction unlinks the cache's name only; destination folders keep their
links.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import hashlib
import json
import logging
import os
import shutil
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from refstore.config import Settings
from refstore.manifest import ManifestEntry

fcntl: Any
try:
    import fcntl
except ImportError:  # Windows: no flock; downloads are not shared or resumed
    fcntl = None

__all__ = ["CacheUsage", "FetchCache", "PruneResult", "Reservation"]

log = logging.getLogger(__name__)

READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
# A part file untouched this long belongs to a fetch that will not come back.
STALE_PART_SECONDS = 24 * 3600
# Hard links are impossible here: another device, or a filesystem without them.
_NO_LINK = frozenset(
    {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EOPNOTSUPP}
)


class CacheMissError(Exception):
    """A cached file vanished (evicted by another process) before its use."""


@dataclasses.dataclass(frozen=True)
class CacheUsage:
    """What the cache holds."""

    root: Path
    objects: int
    bytes: int
    max_bytes: int | None
    partial: int


@dataclasses.dataclass(frozen=True)
class PruneResult:
    """What a prune removed and what it kept."""

    removed: int
    freed: int
    kept: int
    kept_bytes: int
    stale_parts: int


@dataclasses.dataclass
class Reservation:
    """The right to download one key: its part file, open and locked.

    ``fresh``: the part file was empty when locked, so no earlier download
    left bytes or a sidecar behind. ``sidecar_written``: this download wrote
    the sidecar. Together they spare a fresh download the system calls that
    would clean up after an earlier one.
    """

    fd: int
    part: str
    fresh: bool = False
    sidecar_written: bool = False

    @property
    def sidecar(self) -> str:
        return self.part + ".json"

    @property
    def may_have_sidecar(self) -> bool:
        return self.sidecar_written or not self.fresh

    def discard(self) -> None:
        """Remove the part file and its sidecar (the download is not resumable)."""
        if self.may_have_sidecar:
            _unlink(self.sidecar)
        _unlink(self.part)

    def close(self) -> None:
        """Release the lock; without locks (Windows) nothing is resumable."""
        if self.fd < 0:
            return
        os.close(self.fd)
        self.fd = -1
        if fcntl is None:
            self.discard()


class FetchCache:
    """Object versions fetched before, under ``root``, at most ``max_bytes``."""

    def __init__(self, root: Path, max_bytes: int | None = None) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._objects = self.root / "objects"
        self._tmp = self.root / "tmp"
        # Folders known to exist: a mkdir per object costs more than its write.
        self._folders: set[str] = set()

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchCache:
        """The cache the settings name (REFSTORE_CACHE_DIR), with their limit."""
        return cls(settings.fetch_cache_dir, settings.cache_max_bytes)

    @staticmethod
    def key_of(entry: ManifestEntry) -> str | None:
        """The cache key of a reference entry; None when nothing pins its bytes."""
        if not entry.is_reference or not entry.checksummed or entry.size is None:
            return None
        etag = entry.etag
        if etag is not None and etag.startswith("W/"):
            etag = None  # a weak ETag names equivalent content, not bytes
        if entry.version_id is None and etag is None:
            return None
        pin = [entry.ref, entry.version_id, etag, entry.size]
        return hashlib.sha256(json.dumps(pin).encode()).hexdigest()

    def path(self, key: str) -> Path:
        return Path(self._file(key))

    @staticmethod
    def _folder(base: Path, key: str, width: int = 2) -> str:
        # Plain strings on the per-object path: building Path objects cost
        # more than the system calls they name.
        return f"{base}{os.sep}{key[:width]}"

    def _file(self, key: str) -> str:
        return f"{self._folder(self._objects, key)}{os.sep}{key}"

    def lookup(self, key: str, size: int | None) -> str | None:
        """The cached file for ``key`` (marked as just used), or None."""
        file = self._file(key)
        try:
            found = os.stat(file)
        except FileNotFoundError:
            return None
        changed = size is not None and found.st_size != size
        if changed or not _has_mark(found, key):
            log.warning(
                "removing %s from the cache: it was written to through a link",
                file,
            )
            _unlink(file)
            return None
        _touch(file, found)
        return file

    @staticmethod
    def is_linked(cached: str, target: Path) -> bool:
        """Whether ``target`` is a hard link to the cached file ``cached``."""
        try:
            return os.path.samestat(os.stat(cached), target.lstat())
        except FileNotFoundError:
            return False

    def reserve(self, key: str) -> Reservation | None:
        """Lock the download of ``key``; None while another download holds it.

        The caller closes the reservation when the download ended either way.
        Never waiting for the lock keeps two processes that each hold a key
        the other wants from waiting for each other forever.
        """
        folder = self._folder(self._tmp, key, width=1)
        self._ensure(folder)
        if fcntl is None:
            part = f"{folder}{os.sep}{key}.{uuid.uuid4().hex}.part"
            fd = os.open(part, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            fresh = True
        else:
            part = f"{folder}{os.sep}{key}.part"
            found = _open_locked(part)
            if found is None:
                return None
            fd, fresh = found
        return Reservation(fd, part, fresh=fresh)

    def place(self, reservation: Reservation, key: str) -> str:
        """Move a verified download into the cache, read-only; return its path."""
        self._ensure(self._folder(self._objects, key))
        file = self._file(key)
        os.chmod(reservation.part, READ_ONLY)
        if reservation.may_have_sidecar:
            _unlink(reservation.sidecar)
        os.replace(reservation.part, file)
        os.utime(file, ns=(time.time_ns(), _marked_now(key)))
        return file

    def _ensure(self, folder: str) -> None:
        if folder not in self._folders:
            Path(folder).mkdir(parents=True, exist_ok=True)
            self._folders.add(folder)

    def usage(self) -> CacheUsage:
        files = list(self._files())
        partial = len(list(self._parts()))
        return CacheUsage(
            root=self.root,
            objects=len(files),
            bytes=sum(size for _, size, _ in files),
            max_bytes=self.max_bytes,
            partial=partial,
        )

    def prune(self, max_bytes: int | None = None) -> PruneResult:
        """Evict least recently used files until at most ``max_bytes`` remain.

        Without ``max_bytes``, the cache's own limit applies (None: keep all).
        Part files of downloads abandoned a day ago go too.
        """
        limit = self.max_bytes if max_bytes is None else max_bytes
        started = time.monotonic()
        files = sorted(self._files())
        total = sum(size for _, size, _ in files)
        removed = freed = 0
        for _, size, path in files:
            if limit is None or total <= limit:
                break
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
                removed += 1
                freed += size
            total -= size
        stale = self._remove_stale_parts()
        log.info(
            "pruned the cache %s: removed %d objects (%d bytes) and %d stale "
            "parts, kept %d objects (%d bytes) in %.2f s",
            self.root,
            removed,
            freed,
            stale,
            len(files) - removed,
            total,
            time.monotonic() - started,
        )
        return PruneResult(removed, freed, len(files) - removed, total, stale)

    def _files(self) -> Iterator[tuple[int, int, Path]]:
        """(last use, size, path) of every cached file."""
        if not self._objects.is_dir():
            return
        for folder in os.scandir(self._objects):
            if not folder.is_dir(follow_symlinks=False):
                continue
            for item in os.scandir(folder.path):
                with contextlib.suppress(FileNotFoundError):
                    found = item.stat(follow_symlinks=False)
                    yield found.st_atime_ns, found.st_size, Path(item.path)

    def _parts(self) -> Iterator[Path]:
        """Part files of downloads in progress or abandoned."""
        if self._tmp.is_dir():
            yield from self._tmp.glob("*/*.part")

    def _remove_stale_parts(self) -> int:
        if fcntl is None or not self._tmp.is_dir():
            return 0
        removed = 0
        deadline = time.time() - STALE_PART_SECONDS
        for part in self._parts():
            with contextlib.suppress(FileNotFoundError):
                if part.stat().st_mtime < deadline and _discard_if_free(part):
                    removed += 1
        return removed


def link_into(cached: str, target: Path, *, link: bool = True) -> bool:
    """Put ``cached`` at ``target`` atomically; True if hard-linked, False copied.

    Raises CacheMissError when ``cached`` vanished meanwhile.
    """
    if link and _link_new(cached, target):
        return True
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.refstore-part")
    try:
        linked = link and _hard_link(cached, tmp)
        if not linked:
            _copy(cached, tmp)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return linked


def _link_new(cached: str, target: Path) -> bool:
    """Link ``cached`` as ``target`` when no such file exists yet (one call)."""
    try:
        os.link(cached, target)
    except FileNotFoundError as exc:
        if not target.parent.is_dir():
            raise
        raise CacheMissError(str(cached)) from exc
    except OSError:
        # There is a file to replace, or no hard links here: the general way.
        return False
    return True


def _hard_link(cached: str, tmp: Path) -> bool:
    try:
        os.link(cached, tmp)
    except FileNotFoundError as exc:
        raise CacheMissError(str(cached)) from exc
    except OSError as exc:
        if exc.errno not in _NO_LINK:
            raise
        log.debug("cannot hard-link %s (%s); copying", cached, exc)
        return False
    return True


def _copy(cached: str, tmp: Path) -> None:
    try:
        shutil.copyfile(cached, tmp)
    except FileNotFoundError as exc:
        if os.path.exists(cached):
            raise
        raise CacheMissError(str(cached)) from exc


# A cached file's modification time carries a mark: its nanoseconds derive
# from the key. Writing through any hard link of the file (as root, whom the
# read-only mode does not stop) sets a new time, and with it other
# nanoseconds, so a lookup can tell that the bytes were changed in place. A
# filesystem that keeps whole seconds only keeps no mark; there the check is
# skipped.
_SECOND = 1_000_000_000


def _mark(key: str) -> int:
    return int(key[:8], 16) % (_SECOND - 1) + 1


def _marked_now(key: str) -> int:
    return time.time_ns() // _SECOND * _SECOND + _mark(key)


def _has_mark(found: os.stat_result, key: str) -> bool:
    fraction = found.st_mtime_ns % _SECOND
    return fraction == 0 or fraction == _mark(key)


def _touch(path: str | Path, found: os.stat_result) -> None:
    # The access time is the LRU clock; the modification time stays.
    with contextlib.suppress(OSError):
        os.utime(path, ns=(time.time_ns(), found.st_mtime_ns))


def _open_locked(part: str) -> tuple[int, bool] | None:
    """Open and lock ``part``: (fd, whether it is empty), or None while locked."""
    while True:
        try:
            fd = os.open(part, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            found = _open_existing_locked(part)
            if found == _MOVED:
                continue  # placed in the cache meanwhile: start a new part
            return None if found is None else (found, _is_empty(found))
        # Created here, so no other download can have renamed it; only a
        # process that opened it in between may hold its lock already.
        if _lock(fd):
            return fd, True
        os.close(fd)
        return None


_MOVED = -1


def _open_existing_locked(part: str) -> int | None:
    """Lock an existing part: its fd, None while locked, _MOVED when it went."""
    try:
        fd = os.open(part, os.O_RDWR)
    except FileNotFoundError:
        return _MOVED
    if not _lock(fd):
        os.close(fd)
        return None
    try:
        current = os.stat(part)
    except FileNotFoundError:
        current = None
    # The holder before us may have renamed its part into the cache.
    if current is not None and os.path.samestat(os.fstat(fd), current):
        return fd
    os.close(fd)
    return _MOVED


def _lock(fd: int) -> bool:
    assert fcntl is not None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _is_empty(fd: int) -> bool:
    return os.fstat(fd).st_size == 0


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _discard_if_free(part: Path) -> bool:
    assert fcntl is not None
    fd = os.open(part, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        part.with_name(part.name + ".json").unlink(missing_ok=True)
        part.unlink(missing_ok=True)
        return True
    finally:
        os.close(fd)
