"""Verify: prove that every entry of a manifest still names its recorded object.

:func:`verify` streams the manifest twice and never holds it whole:

1. **Plan.** One pass counts entries per bucket and folder prefix
   (:mod:`refstore.verify_plan`); the plan decides, from those counts alone,
   which prefixes to check with one listing and which entries to look up one
   by one, and logs its choice at INFO. A sharded plan that cuts a prefix
   into key ranges reads the manifest once more, keeping the keys of that
   prefix only.
2. **Check.** A second pass routes each entry: lookups go to a thread pool
   at once; entries of a listed prefix wait until the prefix is complete
   (manifests are in path order, so prefixes complete one after another),
   then one listing of the prefix is joined with them by key and version
   (:mod:`refstore.verify_checks`). The listing itself is streamed. At most
   ``BUFFER_LIMIT`` entries wait at any time: past it, the fullest prefix is
   listed for what it has so far, and listed again for the rest.

Memory thus grows with the number of distinct folders and with the problems
found, not with the number of entries; pass ``keep_ok=True`` to keep every
entry's result (the CLI does for ``--all``), or ``on_result`` to stream them.

Per bucket the verifier also warns when versioning is suspended or off and
when lifecycle rules expire versions under the artifact's prefixes.

:meth:`VerifyReport.exit_code` is what the CLI exits with: 0 when nothing in
``fail_on`` was found (by default changed, version-gone, missing), 1 when
something was, 2 when some entries could not be checked (status ``error``).
Errors that stop verification altogether (rejected credentials, an
unreachable endpoint) are raised, and exit 2 too.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

from refstore.blobs import BlobStore
from refstore.context import Context
from refstore.errors import (
    BucketNotFoundError,
    ConfigError,
    InvalidReferenceError,
    MissingDependencyError,
    StoreError,
)
from refstore.fetch import default_jobs
from refstore.manifest import (
    Manifest,
    ManifestEntry,
    ObjectInfo,
    iter_json,
    read_stored,
)
from refstore.providers.base import (
    Provider,
    lists_from_key,
    lists_noncurrent_versions,
    lists_prefixes,
)
from refstore.uri import ObjectRef
from refstore.verify_checks import (
    FATAL,
    EntryResult,
    ListingJoin,
    Status,
    bucket_warnings,
    check_local,
    check_lookup,
    result,
    unverifiable_reason,
)
from refstore.verify_plan import (
    Census,
    KeySource,
    ListingUnit,
    Plan,
    Planning,
    Shard,
    make_plan,
)

__all__ = [
    "DEFAULT_FAIL_ON",
    "EntryResult",
    "Planning",
    "Shard",
    "Status",
    "VerifyReport",
    "manifest_file_entries",
    "parse_statuses",
    "stored_entries",
    "verify",
    "verify_manifest_file",
]

log = logging.getLogger(__name__)

DEFAULT_FAIL_ON = frozenset({Status.CHANGED, Status.VERSION_GONE, Status.MISSING})
BUFFER_LIMIT = 100_000
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

EntryStream = Callable[[], Iterator[ManifestEntry]]
ProgressCallback = Callable[[int, int], None]
ResultCallback = Callable[[EntryResult], None]


class ProviderSource(Protocol):
    """Where providers come from (:class:`refstore.providers.Providers`)."""

    def for_ref(self, ref: ObjectRef) -> Provider: ...

    @property
    def requests(self) -> dict[str, int]: ...


@dataclasses.dataclass(frozen=True)
class PlanSummary:
    """What the plan chose for this run (this shard's part of it)."""

    listings: int
    listed: int
    pages: int
    lookups: int
    others: int

    @classmethod
    def of(cls, plan: Plan) -> PlanSummary:
        return cls(len(plan.owned), plan.listed, plan.pages, plan.lookups, plan.others)


@dataclasses.dataclass
class VerifyReport:
    """The outcome of one verification.

    ``results`` holds every entry's result when the run kept them
    (``complete``), else only those that are not ``ok``; ``counts`` always
    counts every entry. ``requests`` are the requests sent, by operation.
    """

    source: str
    counts: dict[Status, int]
    results: list[EntryResult]
    warnings: list[str]
    requests: dict[str, int]
    seconds: float
    plan: PlanSummary
    shard: Shard | None = None
    complete: bool = False

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def problems(self) -> list[EntryResult]:
        return [r for r in self.results if r.status is not Status.OK]

    def exit_code(self, fail_on: frozenset[Status] = DEFAULT_FAIL_ON) -> int:
        """0 all fine, 1 a status in ``fail_on`` was found, 2 entries unchecked."""
        if any(self.counts[status] for status in fail_on):
            return 1
        if self.counts[Status.ERROR]:
            return 2
        return 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "shard": None if self.shard is None else str(self.shard),
            "total": self.total,
            "counts": {str(status): n for status, n in self.counts.items()},
            "warnings": self.warnings,
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "plan": dataclasses.asdict(self.plan),
            "complete": self.complete,
            "results": [r.to_dict() for r in self.results],
        }


def parse_statuses(text: str) -> frozenset[Status]:
    """``"changed,missing"`` as statuses; ConfigError names a bad one."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    known = {str(status): status for status in Status}
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise ConfigError(
            f"{text!r} is not a list of statuses: use one or more of "
            f"{', '.join(known)}, separated by commas"
        )
    return frozenset(known[name] for name in names)


def stored_entries(blobs: BlobStore, digest: str) -> EntryStream:
    """The entries of a manifest in the blob store, streamed on each call."""

    def entries() -> Iterator[ManifestEntry]:
        with blobs.open(digest) as stream:
            yield from read_stored(stream)

    return entries


def manifest_file_entries(path: str | Path) -> EntryStream:
    """The entries of a manifest file: W&B-style JSON or refstore's stored form."""

    def entries() -> Iterator[ManifestEntry]:
        with Path(path).open("rb") as stream:
            stored = stream.read(4) == _ZSTD_MAGIC
            stream.seek(0)
            yield from read_stored(stream) if stored else iter_json(stream)

    return entries


def verify_manifest_file(
    path: str | Path,
    *,
    context: Context | None = None,
    jobs: int | None = None,
    shard: Shard | str | None = None,
    keep_ok: bool = False,
    progress: ProgressCallback | None = None,
    on_result: ResultCallback | None = None,
) -> VerifyReport:
    """Verify a manifest file (refstore's or a W&B ``wandb_manifest.json``).

    Copied files in it are ``unverifiable``: no blob store holds them here.
    """
    context = context or Context.current()
    return verify(
        manifest_file_entries(path),
        providers=context.providers,
        source=str(path),
        jobs=jobs,
        shard=shard,
        keep_ok=keep_ok,
        progress=progress,
        on_result=on_result,
    )


def verify(
    entries: Manifest | EntryStream,
    *,
    providers: ProviderSource,
    blobs: BlobStore | None = None,
    source: str = "manifest",
    jobs: int | None = None,
    shard: Shard | str | None = None,
    keep_ok: bool = False,
    hash_files: bool = False,
    progress: ProgressCallback | None = None,
    on_result: ResultCallback | None = None,
    planning: Planning | None = None,
) -> VerifyReport:
    """Check every entry of ``entries`` (this shard's part) against its store.

    ``entries`` is a Manifest or a callable that streams the entries anew on
    each call. ``blobs`` is where copied files live (None: they are
    ``unverifiable``); ``hash_files`` re-hashes them too. ``progress(done,
    total)`` and ``on_result(result)`` are called from the calling thread.
    """
    started = time.monotonic()
    stream = _stream_of(entries)
    part = Shard.parse(shard) if isinstance(shard, str) else shard
    requests_before = providers.requests
    kinds = _Kinds(providers)
    census = _survey(stream(), kinds, part or Shard(1, 1))
    keys = KeySource(_key_start_test(providers), lambda: _references(stream(), kinds))
    plan = make_plan(census, _listing_test(providers), planning, keys)
    log.info("verify plan for %s%s: %s", source, _shard_note(part), plan.describe())

    collector = _Collector(plan.total, keep_ok, on_result, progress)
    job = _Job(providers, blobs, plan, kinds, planning or Planning(), hash_files, jobs)
    warnings = _Run(job, collector).execute(stream(), census)

    report = VerifyReport(
        source=source,
        counts=collector.counts,
        results=sorted(collector.results, key=lambda r: r.path),
        warnings=warnings,
        requests=_difference(providers.requests, requests_before),
        seconds=time.monotonic() - started,
        plan=PlanSummary.of(plan),
        shard=part,
        complete=keep_ok,
    )
    _log_summary(report)
    return report


def _stream_of(entries: Manifest | EntryStream) -> EntryStream:
    if isinstance(entries, Manifest):
        manifest = entries
        return lambda: iter(manifest)
    return entries


def _listing_test(providers: ProviderSource) -> Callable[[ObjectRef], bool]:
    return lambda ref: lists_prefixes(providers.for_ref(ref))


def _key_start_test(providers: ProviderSource) -> Callable[[ObjectRef], bool]:
    return lambda ref: lists_from_key(providers.for_ref(ref))


def _references(entries: Iterator[ManifestEntry], kinds: _Kinds) -> Iterator[ObjectRef]:
    """The references that pass one counted, for the planner's key ranges."""
    for entry in entries:
        ref = kinds.of(entry).ref
        if ref is not None:
            yield ref


def _shard_note(shard: Shard | None) -> str:
    return "" if shard is None else f" (shard {shard})"


def _difference(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    changed = {op: n - before.get(op, 0) for op, n in after.items()}
    return {op: n for op, n in sorted(changed.items()) if n}


def _log_summary(report: VerifyReport) -> None:
    counts = ", ".join(f"{n} {status}" for status, n in report.counts.items() if n)
    log.info(
        "verified %d entries of %s%s in %.1f s with %d requests: %s",
        report.total,
        report.source,
        _shard_note(report.shard),
        report.seconds,
        sum(report.requests.values()),
        counts or "nothing to check",
    )


# -- pass one -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Kind:
    """How an entry is checked: by a request (``ref``) or without one."""

    ref: ObjectRef | None = None
    status: Status | None = None
    reason: str = ""


class _Kinds:
    """Classifies entries; both passes must agree, so both ask here."""

    def __init__(self, providers: ProviderSource) -> None:
        self._providers = providers
        self._unusable: dict[str, str | None] = {}

    def of(self, entry: ManifestEntry) -> _Kind:
        if entry.ref is None:
            return _Kind()
        reason = unverifiable_reason(entry)
        if reason is not None:
            return _Kind(status=Status.UNVERIFIABLE, reason=reason)
        try:
            ref = entry.object_ref()
        except InvalidReferenceError as exc:
            return _Kind(status=Status.ERROR, reason=str(exc))
        problem = self._provider_problem(ref)
        if problem is not None:
            return _Kind(status=Status.ERROR, reason=problem)
        return _Kind(ref=ref)

    def _provider_problem(self, ref: ObjectRef) -> str | None:
        if ref.scheme not in self._unusable:
            try:
                self._providers.for_ref(ref)
                self._unusable[ref.scheme] = None
            except (InvalidReferenceError, MissingDependencyError) as exc:
                self._unusable[ref.scheme] = str(exc)
        return self._unusable[ref.scheme]


def _survey(entries: Iterator[ManifestEntry], kinds: _Kinds, shard: Shard) -> Census:
    census = Census(shard)
    for entry in entries:
        ref = kinds.of(entry).ref
        if ref is None:
            census.add_other(entry.path)
        else:
            census.add_reference(ref, entry.path)
    return census


# -- pass two ---------------------------------------------------------------


class _Collector:
    """Counts, kept results, callbacks; used from the calling thread only."""

    def __init__(
        self,
        total: int,
        keep_ok: bool,
        on_result: ResultCallback | None,
        progress: ProgressCallback | None,
    ) -> None:
        self.total = total
        self.counts = dict.fromkeys(Status, 0)
        self.results: list[EntryResult] = []
        self._keep_ok = keep_ok
        self._on_result = on_result
        self._progress = progress
        self._done = 0

    def add(self, entry_result: EntryResult) -> None:
        self.counts[entry_result.status] += 1
        if self._keep_ok or entry_result.status is not Status.OK:
            self.results.append(entry_result)
        if self._on_result is not None:
            self._on_result(entry_result)
        self._done += 1
        if self._progress is not None:
            self._progress(self._done, self.total)


@dataclasses.dataclass
class _Outcome:
    """What a task found: results, and entries still to look up."""

    results: list[EntryResult]
    unsettled: list[ManifestEntry] = dataclasses.field(default_factory=list)


_Task = Callable[[], _Outcome]


@dataclasses.dataclass(frozen=True)
class _Job:
    """What pass two works with."""

    providers: ProviderSource
    blobs: BlobStore | None
    plan: Plan
    kinds: _Kinds
    planning: Planning
    hash_files: bool
    jobs: int | None


class _Run:
    """Pass two: route entries to tasks, collect their outcomes."""

    def __init__(self, job: _Job, collector: _Collector) -> None:
        self._providers = job.providers
        self._blobs = job.blobs
        self._plan = job.plan
        self._kinds = job.kinds
        self._planning = job.planning
        self._hash_files = job.hash_files
        self._collector = collector
        self._buffers: dict[ListingUnit, list[ManifestEntry]] = {}
        self._waiting: dict[ListingUnit, int] = {}
        self._buffered = 0
        self._pending: set[concurrent.futures.Future[_Outcome]] = set()
        self._followups: collections.deque[ManifestEntry] = collections.deque()
        workers = job.jobs or default_jobs()
        # A bounded window of tasks keeps memory flat however long the manifest.
        self._window = 4 * workers
        self._pool = concurrent.futures.ThreadPoolExecutor(
            workers, thread_name_prefix="refstore-verify"
        )

    def execute(self, entries: Iterator[ManifestEntry], census: Census) -> list[str]:
        """Check every entry of this shard; return the buckets' warnings."""
        try:
            checks = self._check_buckets(census)
            for entry in entries:
                self._route(entry)
                self._submit_followups()
            for unit in list(self._buffers):
                self._dispatch(unit)
            self._drain()
            warnings = [w for check in checks for w in check.result()]
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
        return warnings

    def _check_buckets(
        self, census: Census
    ) -> list[concurrent.futures.Future[list[str]]]:
        return [
            self._pool.submit(
                bucket_warnings,
                self._providers.for_ref(bucket),
                bucket,
                functools.partial(census.touches, location),
                census.common_prefix(location),
            )
            for location, bucket in self._plan.buckets.items()
        ]

    def _route(self, entry: ManifestEntry) -> None:
        kind = self._kinds.of(entry)
        if kind.ref is None:
            if self._plan.shard.owns(entry.path):
                self._settle_locally(entry, kind)
            return
        unit = self._plan.unit_for(kind.ref)
        if unit is None:
            if self._plan.shard.owns(entry.path):
                self._submit(self._lookup_task(entry))
        elif self._plan.owns(unit):
            self._wait_for_unit(unit, entry)

    def _settle_locally(self, entry: ManifestEntry, kind: _Kind) -> None:
        if kind.status is not None:
            self._collector.add(result(entry, kind.status, kind.reason))
        elif self._hash_files:
            self._submit(lambda: _Outcome([self._local(entry)]))
        else:
            self._collector.add(self._local(entry))

    def _local(self, entry: ManifestEntry) -> EntryResult:
        return check_local(entry, self._blobs, hash_files=self._hash_files)

    def _lookup_task(self, entry: ManifestEntry) -> _Task:
        provider = self._providers.for_ref(entry.object_ref())
        return lambda: _Outcome([check_lookup(entry, provider)])

    def _wait_for_unit(self, unit: ListingUnit, entry: ManifestEntry) -> None:
        self._buffers.setdefault(unit, []).append(entry)
        self._buffered += 1
        waiting = self._waiting.get(unit, unit.entries) - 1
        self._waiting[unit] = waiting
        if waiting <= 0:
            self._dispatch(unit)
        elif self._buffered > BUFFER_LIMIT:
            fullest = max(self._buffers, key=lambda u: len(self._buffers[u]))
            log.debug("buffer full: listing %s for part of its entries", fullest)
            self._dispatch(fullest)

    def _dispatch(self, unit: ListingUnit) -> None:
        entries = self._buffers.pop(unit)
        self._buffered -= len(entries)
        provider = self._providers.for_ref(unit.prefix)
        self._submit(lambda: _list_unit(provider, unit, entries, self._planning))

    def _submit(self, task: _Task) -> None:
        while len(self._pending) >= self._window:
            self._collect()
        self._pending.add(self._pool.submit(task))

    def _submit_followups(self) -> None:
        while self._followups:
            self._submit(self._lookup_task(self._followups.popleft()))

    def _collect(self) -> None:
        done, self._pending = concurrent.futures.wait(
            self._pending, return_when=concurrent.futures.FIRST_COMPLETED
        )
        for future in done:
            outcome = future.result()  # re-raises what stops verification
            for entry_result in outcome.results:
                self._collector.add(entry_result)
            self._followups.extend(outcome.unsettled)

    def _drain(self) -> None:
        while self._pending or self._followups:
            self._submit_followups()
            if self._pending:
                self._collect()


def _list_unit(
    provider: Provider,
    unit: ListingUnit,
    entries: list[ManifestEntry],
    planning: Planning,
) -> _Outcome:
    """One listing of ``unit.prefix``, joined with ``entries``."""
    started = time.monotonic()
    join = ListingJoin(entries)
    try:
        complete = _scan(provider, unit, join, planning)
    except BucketNotFoundError as exc:
        gone = [result(e, Status.MISSING, str(exc), "listing") for e in entries]
        return _Outcome(gone)
    conclusive = complete and lists_noncurrent_versions(provider)
    results, unsettled = join.judge(conclusive_absence=conclusive)
    log.info(
        "listed %s for %d entries: %d objects scanned, %d entries settled, "
        "%d left to look up, in %.1f s",
        unit,
        len(entries),
        join.scanned,
        len(results),
        len(unsettled),
        time.monotonic() - started,
    )
    return _Outcome(results, unsettled)


def _scan(
    provider: Provider, unit: ListingUnit, join: ListingJoin, planning: Planning
) -> bool:
    """Feed the listing to ``join``; False when it was cut short.

    Stopping once every entry is settled is complete: what follows cannot
    change a verdict, and a listing wider than the artifact ends early. So is
    stopping at the first key past a key range: listings are in key order.
    """
    listing = _listing(provider, unit)
    try:
        for info in listing:
            if unit.is_past(info.ref.key):
                return True
            join.observe(info)
            if join.settled:
                return True
            if join.scanned > planning.listing_budget(join.matched):
                log.info(
                    "stopped listing %s after %d objects that matched only %d "
                    "of its entries' keys; looking the rest up",
                    unit,
                    join.scanned,
                    join.matched,
                )
                return False
    except (BucketNotFoundError, *FATAL):
        raise
    except StoreError as exc:
        log.warning("cannot list %s (%s); looking its entries up", unit, exc)
        return False
    finally:
        # A listing left early holds a connection until it is closed.
        close = getattr(listing, "close", None)
        if callable(close):
            close()
    return True


def _listing(provider: Provider, unit: ListingUnit) -> Iterator[ObjectInfo]:
    if unit.start_after is None:
        # Providers without key ranges need not know the keyword.
        return provider.scan(unit.prefix, versions=unit.versions)
    return provider.scan(
        unit.prefix, versions=unit.versions, start_after=unit.start_after
    )
