"""The verifier's judgements: one status per entry, and per-bucket warnings.

Built on the provider contract only. An entry is judged from what a store
says about its key:

* a reference with a version pin: the pinned version present with the
  recorded ETag and size is ``ok`` when it is still the live version and
  ``update-available`` when a newer version or a delete marker replaced it;
  absent while the key has a live version, ``version-gone``; absent with no
  live version, ``missing``;
* a reference without a pin: the live object with the recorded ETag and size
  is ``ok``, another one ``changed``, none ``missing``;
* a copied file: ``ok`` when the blob store holds its sha256 (and, with
  ``hash_files``, its bytes still hash to it), else ``missing``;
  ``unverifiable`` when no blob store is at hand (a manifest file);
* ``unverifiable`` without a request: references recorded with
  ``checksum=False``, or with neither version nor ETag.

Listings are joined by key and version (:class:`ListingJoin`). An entry
absent from a listing is judged gone only when the listing ran to its end
and the provider promises that it shows noncurrent versions
(``lists_noncurrent_versions``); otherwise it is looked up before anything
is declared gone. Point lookups (:func:`check_lookup`) stat the live object
first, so that an untouched pinned entry costs one request.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
import logging
from collections.abc import Callable, Iterable

from refstore.blobs import BlobStore
from refstore.errors import (
    AccessDeniedError,
    BucketNotFoundError,
    CredentialsError,
    EndpointError,
    IntegrityError,
    ManifestError,
    ObjectNotFoundError,
    StoreError,
)
from refstore.manifest import ManifestEntry, ObjectInfo
from refstore.providers.base import (
    LifecycleRule,
    Provider,
    Versioning,
    lifecycle_rules,
)
from refstore.uri import ObjectRef

__all__ = [
    "EntryResult",
    "ListingJoin",
    "Status",
    "bucket_warnings",
    "check_local",
    "check_lookup",
    "unverifiable_reason",
]

log = logging.getLogger(__name__)


class Status(enum.StrEnum):
    """What verification found for one entry."""

    OK = "ok"
    CHANGED = "changed"
    VERSION_GONE = "version-gone"
    MISSING = "missing"
    UNVERIFIABLE = "unverifiable"
    UPDATE_AVAILABLE = "update-available"
    ERROR = "error"  # the store would not answer for this entry


@dataclasses.dataclass(frozen=True, slots=True)
class EntryResult:
    """One entry's status; ``reason`` says why it is not ``ok``.

    ``via`` names how it was checked: ``listing``, ``lookup``, ``blob store``
    or ``none`` (no request).
    """

    path: str
    status: Status
    ref: str | None
    reason: str = ""
    via: str = "none"

    def to_dict(self) -> dict[str, str | None]:
        return {
            "path": self.path,
            "status": str(self.status),
            "ref": self.ref,
            "reason": self.reason,
            "via": self.via,
        }


# Errors that say the store cannot be used at all: they stop verification
# (exit 2) instead of marking entries one by one.
FATAL = (CredentialsError, EndpointError)


def pinned_uri(entry: ManifestEntry) -> str | None:
    if entry.ref is None:
        return None
    return entry.object_ref().uri


def unverifiable_reason(entry: ManifestEntry) -> str | None:
    """Why a reference cannot be checked at all, or None if it can."""
    if not entry.is_reference:
        return None
    if not entry.checksummed:
        return "recorded with checksum=False: nothing to compare against"
    if entry.version_id is None and _recorded_etag(entry) is None:
        return "recorded without a version or an ETag: nothing to compare against"
    return None


def result(
    entry: ManifestEntry, status: Status, reason: str = "", via: str = "none"
) -> EntryResult:
    return EntryResult(entry.path, status, pinned_uri(entry), reason, via)


def check_local(
    entry: ManifestEntry, blobs: BlobStore | None, *, hash_files: bool
) -> EntryResult:
    """A copied file: is its content in the blob store (and intact)?"""
    if blobs is None:
        return result(
            entry,
            Status.UNVERIFIABLE,
            "a copied file: only the blob store of a logged artifact holds it",
        )
    try:
        present = blobs.has(entry.digest)
    except ManifestError:
        return result(
            entry, Status.UNVERIFIABLE, "a copied file without a sha256 digest"
        )
    if not present:
        return result(
            entry, Status.MISSING, f"not in the blob store at {blobs.root}", "blobs"
        )
    if hash_files:
        try:
            blobs.verify(entry.digest)
        except IntegrityError as exc:
            return result(entry, Status.CHANGED, str(exc), "blobs")
    return result(entry, Status.OK, via="blobs")


def compare(entry: ManifestEntry, info: ObjectInfo) -> tuple[Status, str]:
    """OK, CHANGED (with the differences) or UNVERIFIABLE."""
    recorded = _recorded_etag(entry)
    problems = []
    if recorded is not None and info.etag is not None and info.etag != recorded:
        problems.append(f"ETag {info.etag}, recorded {recorded}")
    if entry.size is not None and info.size != entry.size:
        problems.append(f"size {info.size}, recorded {entry.size}")
    if problems:
        return Status.CHANGED, "; ".join(problems)
    if entry.version_id is None and (recorded is None or info.etag is None):
        return Status.UNVERIFIABLE, "the store reports no ETag to compare"
    return Status.OK, ""


def _recorded_etag(entry: ManifestEntry) -> str | None:
    etag = entry.etag
    return None if etag is None else etag.strip('"')


# -- point lookups -------------------------------------------------------


def check_lookup(entry: ManifestEntry, provider: Provider) -> EntryResult:
    """Judge one reference with stat calls; fatal store errors propagate."""
    try:
        status, reason = _looked_up(entry, entry.object_ref(), provider)
    except BucketNotFoundError as exc:
        status, reason = Status.MISSING, str(exc)
    except FATAL:
        raise
    except StoreError as exc:
        status, reason = Status.ERROR, str(exc)
    return result(entry, status, reason, "lookup")


def _looked_up(
    entry: ManifestEntry, ref: ObjectRef, provider: Provider
) -> tuple[Status, str]:
    live = _stat_or_none(provider, ref.with_version(None))
    if ref.version is None:
        if live is None:
            return Status.MISSING, f"no object at {ref}"
        return compare(entry, live)
    if live is not None and live.version_id == ref.version:
        return compare(entry, live)
    pinned = _stat_or_none(provider, ref)
    if pinned is None:
        return _absent(ref, live)
    status, reason = compare(entry, pinned)
    if status is not Status.OK:
        return status, reason
    return Status.UPDATE_AVAILABLE, _replaced_by(live)


def _stat_or_none(provider: Provider, ref: ObjectRef) -> ObjectInfo | None:
    try:
        return provider.stat(ref)
    except ObjectNotFoundError:
        return None


def _absent(ref: ObjectRef, live: ObjectInfo | None) -> tuple[Status, str]:
    """The pinned version is gone; does the key still hold a live object?"""
    if live is not None and not live.is_delete_marker:
        reason = (
            f"the pinned version {ref.version} no longer exists (deleted, or "
            "expired by a lifecycle rule); the live version is "
            f"{live.version_id or 'unversioned'}"
        )
        return Status.VERSION_GONE, reason
    return Status.MISSING, f"no object at {ref.unpinned_uri}, pinned version gone"


def _replaced_by(live: ObjectInfo | None) -> str:
    if live is None or live.is_delete_marker:
        return (
            "the object was deleted (its latest version is a delete marker); "
            "the pinned version is still stored"
        )
    if live.version_id is None:
        return f"the live object is newer (ETag {live.etag}); the pinned one is kept"
    return f"the live version is {live.version_id}; the pinned version is kept"


# -- listings ------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class _Seen:
    """What a listing showed of one key: its latest item, the pinned versions."""

    wanted: collections.Counter[str]  # pinned version: entries pinning it
    unpinned: int = 0  # entries of this key without a pin
    listed: bool = False
    latest: ObjectInfo | None = None
    found: dict[str, ObjectInfo] = dataclasses.field(default_factory=dict)


class ListingJoin:
    """Entries of one listing unit, joined with the listing by key and version.

    ``settled`` turns True once every entry's own object version was seen:
    nothing later in the listing can change a verdict then, so the rest of a
    listing wider than the artifact need not be read.
    """

    def __init__(self, entries: Iterable[ManifestEntry]) -> None:
        self.entries: dict[str, list[ManifestEntry]] = {}
        self._seen: dict[str, _Seen] = {}
        self._waiting = 0
        for entry in entries:
            key = entry.object_ref().key
            self.entries.setdefault(key, []).append(entry)
            seen = self._seen.setdefault(key, _Seen(collections.Counter()))
            if entry.version_id is None:
                seen.unpinned += 1
            else:
                seen.wanted[entry.version_id] += 1
            self._waiting += 1
        self.scanned = 0
        self.matched = 0

    @property
    def settled(self) -> bool:
        return self._waiting == 0

    def observe(self, info: ObjectInfo) -> None:
        """Take one listed object version (or delete marker) into account."""
        self.scanned += 1
        seen = self._seen.get(info.ref.key)
        if seen is None:
            return
        if not seen.listed:
            seen.listed = True
            self.matched += 1
        if info.is_latest and seen.latest is None:
            self._waiting -= seen.unpinned
            seen.latest = info
        version = info.version_id
        if version is not None and version in seen.wanted and version not in seen.found:
            self._waiting -= seen.wanted[version]
            seen.found[version] = info

    def judge(
        self, *, conclusive_absence: bool
    ) -> tuple[list[EntryResult], list[ManifestEntry]]:
        """Results, and the entries a listing cannot settle (to look up).

        ``conclusive_absence``: the listing ran to its end and shows every
        version, so what it did not show does not exist.
        """
        results: list[EntryResult] = []
        unsettled: list[ManifestEntry] = []
        for key, entries in self.entries.items():
            seen = self._seen[key]
            for entry in entries:
                judged = _judge_listed(entry, seen, conclusive_absence)
                if judged is None:
                    unsettled.append(entry)
                else:
                    results.append(result(entry, *judged, "listing"))
        return results, unsettled


def _judge_listed(
    entry: ManifestEntry, seen: _Seen, conclusive_absence: bool
) -> tuple[Status, str] | None:
    version = entry.version_id
    latest = seen.latest
    if version is None:
        if latest is not None and latest.is_delete_marker:
            return Status.MISSING, "deleted (its latest version is a delete marker)"
        if latest is not None:
            return compare(entry, latest)
        return (Status.MISSING, "no such object") if conclusive_absence else None
    found = seen.found.get(version)
    if found is not None and not found.is_delete_marker:
        status, reason = compare(entry, found)
        if status is not Status.OK or found.is_latest:
            return status, reason
        return Status.UPDATE_AVAILABLE, _replaced_by(latest)
    if not conclusive_absence:
        return None
    return _absent(entry.object_ref(), latest)


# -- per-bucket warnings ----------------------------------------------------


def bucket_warnings(
    provider: Provider,
    bucket: ObjectRef,
    touches: Callable[[str], bool],
    shown_prefix: str,
) -> list[str]:
    """Versioning and lifecycle warnings for the bucket of ``bucket``.

    ``touches(prefix)`` says whether the artifact has entries under a key
    prefix; ``shown_prefix`` is the artifact's own prefix in this bucket, named
    in messages about rules that cover more than the artifact.
    """
    try:
        state = provider.versioning(bucket)
        rules, denied = _lifecycle_or_denied(provider, bucket)
    except BucketNotFoundError:
        log.info("%s does not exist: its entries are missing", bucket.location)
        return []
    warnings = _versioning_warnings(bucket, state)
    if denied:
        warnings.append(
            f"could not read the lifecycle rules of {bucket.location} (access "
            "denied): pinned versions may be expiring unnoticed"
        )
    for rule in rules:
        if touches(rule.prefix):
            covers_artifact = shown_prefix.startswith(rule.prefix)
            where = bucket.child(shown_prefix if covers_artifact else rule.prefix)
            warnings.extend(_lifecycle_warnings(where, rule))
    log.info(
        "checked %s: versioning %s, %s lifecycle rules",
        bucket.location,
        state.value,
        "unreadable" if denied else len(rules),
    )
    return warnings


def _lifecycle_or_denied(
    provider: Provider, bucket: ObjectRef
) -> tuple[list[LifecycleRule], bool]:
    """The bucket's lifecycle rules (none where unreadable), and whether denied."""
    try:
        return lifecycle_rules(provider, bucket) or [], False
    except AccessDeniedError:
        return [], True


def _versioning_warnings(bucket: ObjectRef, state: Versioning) -> list[str]:
    if state is Versioning.SUSPENDED:
        warning = (
            f"versioning is suspended on {bucket.location}: new writes replace "
            "objects in place, so objects recorded without a version can be "
            "overwritten; enable versioning"
        )
    elif state is Versioning.OFF:
        warning = (
            f"versioning is off on {bucket.location}: an overwrite or delete "
            "loses a recorded object for good; enable versioning so that "
            "refstore can pin object versions"
        )
    else:
        return []
    return [warning]


def _lifecycle_warnings(where: ObjectRef, rule: LifecycleRule) -> list[str]:
    name = f"lifecycle rule {rule.rule_id!r}" if rule.rule_id else "a lifecycle rule"
    may = "may " if rule.filtered else ""
    warnings = []
    if rule.noncurrent_days is not None:
        kept = ""
        if rule.keeps_newer:
            kept = f", except the newest {rule.keeps_newer} of each object"
        warnings.append(
            f"pinned versions under {where} {may}expire after "
            f"{rule.noncurrent_days} days once replaced or deleted{kept} ({name})"
        )
    if rule.current_days is not None:
        warnings.append(
            f"objects under {where} {may}expire {rule.current_days} days after "
            f"they are written ({name})"
        )
    return warnings
