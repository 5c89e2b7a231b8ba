"""Fetch: download the exact object versions a manifest pins into a folder.

The fetch is planned before anything is written (:mod:`refstore.fetch_plan`):
every entry path must stay inside the destination, so a hostile manifest
writes nothing at all. Then each distinct object version is served once, on
a pool of ``jobs`` workers:

1. a file already in the destination with the right content is kept;
2. else a verified copy in the fetch cache (:mod:`refstore.cache`) is
   hard-linked (or copied) into place;
3. else the object is downloaded (:mod:`refstore.transfer`): in one read,
   or when large in ranges that idle workers split off (:mod:`refstore.ranges`),
   into the cache when the entry can be cached (else beside its target),
   checked against every checksum the entry has, and renamed into place.

Groups start largest first, so large objects overlap with the many small
ones instead of trailing after them.

A target is therefore either complete and verified or absent, and an
interrupted fetch, run again, transfers only what it lacks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO, Protocol

from refstore.blobs import BlobStore
from refstore.cache import CacheMissError, FetchCache, link_into
from refstore.checksums import Checks
from refstore.errors import (
    FetchError,
    ObjectNotFoundError,
    RefstoreError,
    UnsafePathError,
)
from refstore.fetch_plan import Group, Target, group_targets, plan
from refstore.manifest import ManifestEntry
from refstore.progress import TransferProgress
from refstore.providers.base import Provider
from refstore.ranges import SplitDownload, Splitter
from refstore.transfer import (
    CacheSink,
    FileSink,
    PartPolicy,
    Sink,
    entry_info,
    stream_into,
)
from refstore.uri import ObjectRef
from refstore.workers import Workers

__all__ = ["FetchResult", "PartPolicy", "default_jobs", "fetch", "plan"]

log = logging.getLogger(__name__)

# A group whose object another process is downloading waits this long
# before it looks again, without holding a worker meanwhile.
_BUSY_RETRY = 0.05


class ProviderSource(Protocol):
    def for_ref(self, ref: ObjectRef) -> Provider: ...


@dataclasses.dataclass(frozen=True)
class FetchResult:
    """What a fetch did.

    ``fetched``: objects downloaded from their stores (``bytes_fetched``
    bytes); ``from_cache``: put in place from the fetch cache; ``skipped``:
    already present with the right content; ``missing``: (path, reason) of
    the entries skipped because their object or version is gone
    (``skip_missing``).
    """

    root: Path
    fetched: int
    skipped: int
    bytes_fetched: int
    seconds: float
    from_cache: int = 0
    missing: tuple[tuple[str, str], ...] = ()


def default_jobs() -> int:
    """Transfers are I/O bound: several per core keep the store busy."""
    return min(64, (os.cpu_count() or 1) * 8)


@dataclasses.dataclass(frozen=True)
class _Options:
    skip_missing: bool
    link: bool
    parts: PartPolicy


def fetch(
    entries: Iterable[ManifestEntry],
    root: Path,
    *,
    providers: ProviderSource,
    blobs: BlobStore,
    cache: FetchCache | None = None,
    jobs: int | None = None,
    path_prefix: str | None = None,
    skip_missing: bool = False,
    link: bool = True,
    parts: PartPolicy | None = None,
    progress: TransferProgress | None = None,
) -> FetchResult:
    """Fetch every entry into ``root``; raise FetchError if any failed.

    ``path_prefix`` fetches only the entries whose path starts with it.
    ``skip_missing`` skips (and reports) entries whose object or pinned
    version is gone instead of failing. ``link=False`` copies from the cache
    instead of hard-linking. ``parts`` says when objects are split into
    ranged parts.
    """
    started = time.monotonic()
    root = Path(root).absolute()
    selected = [e for e in entries if e.path.startswith(path_prefix or "")]
    targets = plan(selected, root)
    if path_prefix and not targets:
        log.warning("no entry path starts with %r: nothing to fetch", path_prefix)
    root.mkdir(parents=True, exist_ok=True)
    groups = group_targets(targets, cache)
    if progress is not None:
        progress.start(len(targets), sum(t.entry.size or 0 for t in targets))
    options = _Options(skip_missing, link, parts or PartPolicy())
    run = _Run(providers, blobs, cache, root, options, progress)
    outcomes = run.execute(groups, jobs or default_jobs())
    if cache is not None and cache.max_bytes is not None and run.placed:
        cache.prune()
    result = _summarise(root, outcomes, time.monotonic() - started)
    _log_result(result)
    return result


@dataclasses.dataclass(frozen=True)
class _Outcome:
    path: str
    kind: str  # fetched, cached, present, missing or failed
    size: int = 0
    error: Exception | None = None
    #: bytes of a kept or cached object, which no transfer counted
    uncounted: int = 0


class _Run:
    """One fetch on a pool of workers; each group reports its outcomes once."""

    def __init__(
        self,
        providers: ProviderSource,
        blobs: BlobStore,
        cache: FetchCache | None,
        root: Path,
        options: _Options,
        progress: TransferProgress | None,
    ) -> None:
        self._providers = providers
        self._blobs = blobs
        self._cache = cache
        self._root = root.resolve()
        self._options = options
        self._progress = progress
        self._lock = threading.Lock()
        self._outcomes: list[_Outcome] = []
        self._reported = 0
        self._folders: set[Path] = set()
        self._splitter = Splitter()
        self._workers: Workers | None = None
        self.placed = False

    def execute(self, groups: list[Group], jobs: int) -> list[_Outcome]:
        self._workers = Workers(jobs, "refstore-fetch", idle=self._splitter.steal)
        self._splitter.wake = self._workers.wake
        self._workers.run(functools.partial(self._serve_group, g) for g in groups)
        if self._reported != len(groups):
            raise RuntimeError(
                f"{len(groups) - self._reported} of {len(groups)} downloads "
                "ended without an outcome"
            )
        return self._outcomes

    def _serve_group(self, group: Group) -> None:
        try:
            self._serve(group)
        except Exception as exc:  # noqa: BLE001 - reported as this group's outcome
            self._report([self._failure(t, exc) for t in group.targets])

    def _serve(self, group: Group) -> None:
        cached = None
        if self._cache is not None and group.key is not None:
            cached = self._cache.lookup(group.key, group.entry.size)
        present, needed = self._split_present(group, cached)
        if not needed:
            self._report(present)
        elif cached is not None:
            self._report(present + self._link_all(cached, needed, None))
        elif self._cache is not None and group.key is not None:
            self._download_to_cache(group, present, needed)
        else:
            self._download_to_file(group.targets[0])

    def _split_present(
        self, group: Group, cached: str | None
    ) -> tuple[list[_Outcome], list[Target]]:
        present, needed = [], []
        for target in group.targets:
            if self._is_present(target, cached):
                present.append(_present(target, "present"))
            else:
                needed.append(target)
        return present, needed

    def _is_present(self, target: Target, cached: str | None) -> bool:
        if not target.may_exist:
            return False
        if cached is not None:
            # A file that is not the cached one is replaced by a link to it:
            # cheaper than reading it to compare.
            return FetchCache.is_linked(cached, target.path)
        try:
            found = target.path.lstat()
        except FileNotFoundError:
            return False
        checks = Checks.for_entry(target.entry)
        if not checks.has_checksum or not stat.S_ISREG(found.st_mode):
            return False
        if checks.size is not None and found.st_size != checks.size:
            return False
        return not checks.check_file(target.path)

    def _download_to_cache(
        self, group: Group, present: list[_Outcome], needed: list[Target]
    ) -> None:
        assert self._cache is not None
        assert group.key is not None
        # Not looked up again once reserved: a download another process
        # finished in the moment between the lookup and the reservation is
        # repeated, which is rare and harmless (both copies are verified, and
        # the later one replaces the earlier in the cache).
        reservation = self._cache.reserve(group.key)
        if reservation is None:
            self._retry_later(group)
            return
        sink = CacheSink(self._cache, group.key, reservation)

        def done(size: int | None, error: Exception | None) -> None:
            if error is not None:
                self._report(present + [self._failure(t, error) for t in needed])
                return
            assert sink.cached is not None
            self.placed = True
            self._report(present + self._link_all(sink.cached, needed, size))

        self._download(group.entry, sink, done)

    def _retry_later(self, group: Group) -> None:
        assert self._workers is not None
        time.sleep(_BUSY_RETRY)
        self._workers.add(functools.partial(self._serve_group, group))

    def _download_to_file(self, target: Target) -> None:
        self._prepare_folder(target.path)
        sink = FileSink(target.path)

        def done(size: int | None, error: Exception | None) -> None:
            if error is not None:
                self._report([self._failure(target, error)])
            else:
                self._report([_Outcome(target.entry.path, "fetched", size or 0)])

        self._download(target.entry, sink, done)

    def _download(
        self,
        entry: ManifestEntry,
        sink: Sink,
        done: Callable[[int | None, Exception | None], None],
    ) -> None:
        """Fill ``sink`` with the entry's bytes, then call ``done`` (maybe later)."""
        opener: Callable[[], BinaryIO]
        if entry.is_reference:
            info = entry_info(entry)
            provider = self._providers.for_ref(info.ref)
            if self._options.parts.splits(provider, entry.size):
                assert self._workers is not None
                parted = SplitDownload(
                    provider,
                    entry,
                    sink,
                    self._options.parts,
                    splitter=self._splitter,
                    progress=self._progress,
                    done=done,
                )
                try:
                    parted.start(self._workers.add)
                except Exception as exc:  # noqa: BLE001 - handed to done()
                    sink.abandon(resumable=False)
                    done(None, exc)
                return
            opener = functools.partial(provider.read, info)
        else:
            opener = functools.partial(self._blobs.open, entry.digest)
        try:
            with contextlib.closing(opener()) as source:
                size = stream_into(
                    source, sink, Checks.for_entry(entry), self._progress, entry
                )
            sink.commit()
        except Exception as exc:  # noqa: BLE001 - handed to done()
            sink.abandon(resumable=False)
            done(None, exc)
            return
        done(size, None)

    def _link_all(
        self, cached: str, targets: list[Target], fetched: int | None
    ) -> list[_Outcome]:
        """Link ``cached`` to every target; the first was ``fetched`` bytes."""
        outcomes = []
        for index, target in enumerate(targets):
            try:
                self._prepare_folder(target.path)
                link_into(cached, target.path, link=self._options.link)
            except (OSError, CacheMissError, UnsafePathError) as exc:
                outcomes.append(self._failure(target, exc))
                continue
            if fetched is not None and index == 0:
                outcomes.append(_Outcome(target.entry.path, "fetched", fetched))
            else:
                outcomes.append(_present(target, "cached"))
        return outcomes

    def _prepare_folder(self, path: Path) -> None:
        # Checked again at write time: a folder replaced by a symbolic link
        # after planning must not lead the write out of the destination.
        folder = path.parent
        if folder in self._folders:
            return
        folder.mkdir(parents=True, exist_ok=True)
        if not folder.resolve().is_relative_to(self._root):
            raise UnsafePathError(
                f"{folder} leads outside {self._root} through a symbolic link "
                "made after the fetch was planned; nothing was written there"
            )
        self._folders.add(folder)

    def _failure(self, target: Target, error: Exception) -> _Outcome:
        if self._options.skip_missing and isinstance(error, ObjectNotFoundError):
            return _Outcome(target.entry.path, "missing", 0, error)
        return _Outcome(target.entry.path, "failed", 0, error)

    def _report(self, outcomes: list[_Outcome]) -> None:
        if self._progress is not None:
            for outcome in outcomes:
                self._progress.object_done(outcome.uncounted)
        with self._lock:
            self._outcomes.extend(outcomes)
            self._reported += 1


def _present(target: Target, kind: str) -> _Outcome:
    return _Outcome(target.entry.path, kind, uncounted=target.entry.size or 0)


def _summarise(root: Path, outcomes: list[_Outcome], seconds: float) -> FetchResult:
    failures = sorted(
        (o.path, _as_refstore_error(o.path, o.error))
        for o in outcomes
        if o.kind == "failed" and o.error is not None
    )
    if failures:
        shown = "; ".join(f"{path}: {err}" for path, err in failures[:5])
        more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
        raise FetchError(
            f"{len(failures)} of {len(outcomes)} entries could not be fetched "
            f"into {root}: {shown}{more}",
            failures,
        )
    kinds = [o.kind for o in outcomes]
    return FetchResult(
        root=root,
        fetched=kinds.count("fetched"),
        skipped=kinds.count("present"),
        bytes_fetched=sum(o.size for o in outcomes if o.kind == "fetched"),
        seconds=seconds,
        from_cache=kinds.count("cached"),
        missing=tuple(
            sorted((o.path, str(o.error)) for o in outcomes if o.kind == "missing")
        ),
    )


def _as_refstore_error(path: str, error: Exception | None) -> RefstoreError:
    if isinstance(error, RefstoreError):
        return error
    if isinstance(error, OSError | CacheMissError):
        return RefstoreError(f"cannot write {path!r} here: {error}")
    # Anything else is a bug in refstore; it must not pass for a failed entry.
    raise RuntimeError(f"fetching {path!r} failed unexpectedly") from error


def _log_result(result: FetchResult) -> None:
    rate = result.bytes_fetched / result.seconds / 1e6 if result.seconds else 0.0
    log.info(
        "fetched %d objects (%d bytes, %.1f MB/s) from their stores, %d from the "
        "cache, kept %d present, skipped %d missing, into %s in %.2f s",
        result.fetched,
        result.bytes_fetched,
        rate,
        result.from_cache,
        result.skipped,
        len(result.missing),
        result.root,
        result.seconds,
    )
    if result.missing:
        log.warning(
            "skipped %d entries whose object or version is gone, e.g. %s: %s",
            len(result.missing),
            *result.missing[0],
        )
