"""Fetch: download the exact object versions a manifest pins into a folder.

The fetch is planned before anything is written: every entry path is checked
to stay inside the destination (no absolute paths, no ``..``, no symlinked
folder leading out), so a hostile manifest writes nothing at all. Then the
entries are transferred concurrently. Each file is written to a temporary
name beside its target, checked against every checksum the entry has, and
renamed into place, so a target is either complete and verified or absent.
Files already present with the right content are skipped.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import hashlib
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO, Protocol

from refstore.blobs import BlobStore
from refstore.errors import FetchError, IntegrityError, RefstoreError, UnsafePathError
from refstore.manifest import ManifestEntry, ObjectInfo, check_entry_path
from refstore.providers.base import Provider
from refstore.uri import ObjectRef, parse_uri

__all__ = ["FetchResult", "default_jobs", "fetch", "plan"]

log = logging.getLogger(__name__)
_CHUNK = 1024 * 1024
_HEX64 = frozenset("0123456789abcdef")

ProgressCallback = Callable[[ManifestEntry, int], None]


class ProviderSource(Protocol):
    def for_ref(self, ref: ObjectRef) -> Provider: ...


@dataclasses.dataclass(frozen=True)
class FetchResult:
    """What a fetch did."""

    root: Path
    fetched: int
    skipped: int
    bytes_fetched: int
    seconds: float


def default_jobs() -> int:
    """Transfers are I/O bound: several per core keep the store busy."""
    return min(64, (os.cpu_count() or 1) * 8)


def fetch(
    entries: Iterable[ManifestEntry],
    root: Path,
    *,
    providers: ProviderSource,
    blobs: BlobStore,
    jobs: int | None = None,
    progress: ProgressCallback | None = None,
) -> FetchResult:
    """Fetch every entry into ``root``; raise FetchError if any failed."""
    started = time.monotonic()
    root = Path(root).absolute()
    targets = plan(entries, root)
    root.mkdir(parents=True, exist_ok=True)
    fetcher = _Fetcher(providers, blobs)
    outcomes = _run(fetcher, targets, jobs or default_jobs(), progress)
    result = _summarise(root, outcomes, targets, time.monotonic() - started)
    log.info(
        "fetched %d entries (%d bytes), skipped %d present, into %s in %.2f s",
        result.fetched,
        result.bytes_fetched,
        result.skipped,
        root,
        result.seconds,
    )
    return result


def plan(
    entries: Iterable[ManifestEntry], root: Path
) -> list[tuple[ManifestEntry, Path]]:
    """Map entries to target files, refusing any that would land outside root."""
    resolved_root = root.resolve()
    targets: list[tuple[ManifestEntry, Path]] = []
    files: set[str] = set()
    folders: set[str] = set()
    for entry in entries:
        relative = check_entry_path(entry.path)
        _check_no_clash(relative, files, folders)
        target = root / relative
        if not target.resolve().is_relative_to(resolved_root):
            raise UnsafePathError(
                f"manifest path {entry.path!r} leads outside {root} through a "
                "symbolic link; remove the link or fetch into an empty folder"
            )
        targets.append((entry, target))
    return targets


def _check_no_clash(relative: str, files: set[str], folders: set[str]) -> None:
    parents = relative.split("/")[:-1]
    prefixes = ["/".join(parents[: i + 1]) for i in range(len(parents))]
    if relative in files:
        raise UnsafePathError(
            f"two manifest paths name the same file {relative!r}; rename one"
        )
    clash = relative in folders or any(p in files for p in prefixes)
    if clash:
        raise UnsafePathError(
            f"manifest path {relative!r} is both a file and a folder in this "
            "artifact; rename one of the entries"
        )
    files.add(relative)
    folders.update(prefixes)


_Outcome = tuple[ManifestEntry, int | None, RefstoreError | None]


def _run(
    fetcher: _Fetcher,
    targets: list[tuple[ManifestEntry, Path]],
    jobs: int,
    progress: ProgressCallback | None,
) -> list[_Outcome]:
    outcomes: list[_Outcome] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(fetcher.fetch_one, e, t): e for e, t in targets}
        for future in concurrent.futures.as_completed(futures):
            entry = futures[future]
            try:
                written = future.result()
            except RefstoreError as exc:
                log.debug("fetch of %s failed: %s", entry.path, exc)
                outcomes.append((entry, None, exc))
                continue
            outcomes.append((entry, written, None))
            if progress is not None:
                progress(entry, entry.size or 0)
    return outcomes


def _summarise(
    root: Path,
    outcomes: list[_Outcome],
    targets: list[tuple[ManifestEntry, Path]],
    seconds: float,
) -> FetchResult:
    failures = [(e.path, err) for e, _, err in outcomes if err is not None]
    if failures:
        failures.sort(key=lambda failure: failure[0])
        shown = "; ".join(f"{path}: {err}" for path, err in failures[:5])
        more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
        raise FetchError(
            f"{len(failures)} of {len(targets)} entries could not be fetched "
            f"into {root}: {shown}{more}",
            failures,
        )
    written = [w for _, w, _ in outcomes if w is not None]
    return FetchResult(
        root=root,
        fetched=len(written),
        skipped=len(outcomes) - len(written),
        bytes_fetched=sum(written),
        seconds=seconds,
    )


class _Fetcher:
    """Fetches one entry at a time; safe to share between threads."""

    def __init__(self, providers: ProviderSource, blobs: BlobStore) -> None:
        self._providers = providers
        self._blobs = blobs

    def fetch_one(self, entry: ManifestEntry, target: Path) -> int | None:
        """Fetch one entry; return the bytes written, None when skipped."""
        checks = _Checks.for_entry(entry)
        if checks.matches_file(target):
            return None
        target.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(self._open(entry)) as source:
            return _write_atomically(source, target, checks, entry)

    def _open(self, entry: ManifestEntry) -> BinaryIO:
        if not entry.is_reference:
            return self._blobs.open(entry.digest)
        ref = entry.object_ref()
        provider = self._providers.for_ref(ref)
        etag = entry.etag if entry.checksummed else None
        info = ObjectInfo(ref=ref, size=entry.size or 0, etag=etag)
        return provider.read(info)


@dataclasses.dataclass(frozen=True)
class _Checks:
    """Everything a file's bytes can be checked against."""

    size: int | None
    md5: str | None
    sha256: str | None

    @classmethod
    def for_entry(cls, entry: ManifestEntry) -> _Checks:
        md5 = entry.extra.get("md5")
        if md5 is None and entry.etag_is_md5:
            md5 = entry.etag
        sha256 = entry.extra.get("sha256")
        if not entry.is_reference:
            sha256 = entry.digest
        return cls(
            size=entry.size,
            md5=md5 if _is_hex(md5, 32) else None,
            sha256=sha256 if _is_hex(sha256, 64) else None,
        )

    @property
    def has_checksum(self) -> bool:
        return self.md5 is not None or self.sha256 is not None

    def matches_file(self, path: Path) -> bool:
        """True when ``path`` already holds exactly the expected bytes."""
        if not self.has_checksum or not path.is_file() or path.is_symlink():
            return False
        if self.size is not None and path.stat().st_size != self.size:
            return False
        hashers = self.hashers()
        with path.open("rb") as stream:
            while chunk := stream.read(_CHUNK):
                for hasher in hashers.values():
                    hasher.update(chunk)
        return not self.mismatches(hashers, None)

    def hashers(self) -> dict[str, hashlib._Hash]:
        hashers = {}
        if self.md5 is not None:
            hashers["md5"] = hashlib.md5(usedforsecurity=False)
        if self.sha256 is not None:
            hashers["sha256"] = hashlib.sha256()
        return hashers

    def mismatches(
        self, hashers: dict[str, hashlib._Hash], size: int | None
    ) -> list[str]:
        problems = []
        if size is not None and self.size is not None and size != self.size:
            problems.append(f"size {size} != recorded {self.size}")
        for name, hasher in hashers.items():
            expected = getattr(self, name)
            if hasher.hexdigest() != expected:
                problems.append(f"{name} {hasher.hexdigest()} != recorded {expected}")
        return problems


def _write_atomically(
    source: BinaryIO, target: Path, checks: _Checks, entry: ManifestEntry
) -> int:
    # The temporary name can never be mistaken for a target: entry paths
    # cannot end in this suffix's random part, and a crash leaves only it.
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.refstore-part")
    hashers = checks.hashers()
    size = 0
    try:
        with tmp.open("xb") as out:
            while chunk := source.read(_CHUNK):
                out.write(chunk)
                size += len(chunk)
                for hasher in hashers.values():
                    hasher.update(chunk)
        problems = checks.mismatches(hashers, size)
        if problems:
            raise IntegrityError(
                f"{_origin(entry)} does not match its record ({'; '.join(problems)}); "
                "the stored object changed or was corrupted: verify the artifact"
            )
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return size


def _origin(entry: ManifestEntry) -> str:
    if entry.ref is None:
        return f"copied file {entry.path!r}"
    return str(parse_uri(entry.ref).with_version(entry.version_id))


def _is_hex(value: object, length: int) -> bool:
    return isinstance(value, str) and len(value) == length and set(value) <= _HEX64
