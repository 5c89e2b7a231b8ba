"""What changed between two manifests, path by path.

Pure: two :class:`~refstore.manifest.Manifest` objects in, a
:class:`ManifestDiff` out. Each manifest is read once through its dict of
entries, so a diff of manifests with a million entries takes one pass over
each; only the differences are sorted. The result stays compact: paths whose
entry did not change are counted, not listed.

Each path of either manifest is one of:

* added: only in the new manifest;
* removed: only in the old one;
* changed: in both, pinning other content; :attr:`EntryChange.fields` says
  what differs (see :data:`FIELDS`);
* moved: a removed path whose pinned object (same reference, object version
  and digest) sits at an added path of the new manifest; the pair is listed
  once, as moved, and neither as added nor as removed;
* unchanged: in both, with the same reference, object version, digest and
  size. These are the fields the manifest digest covers, so two entries that
  differ only in extra metadata (a checksum a store reported later) pin the
  same bytes and count as unchanged.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from refstore.manifest import Manifest, ManifestEntry

__all__ = ["FIELDS", "EntryChange", "EntryMove", "ManifestDiff", "diff_manifests"]

REF = "ref"
VERSION = "version"
ETAG = "etag"
SHA256 = "sha256"
SIZE = "size"
#: What can differ between two entries of one path, in the order reported:
#: the reference URI (``ref``; a copied file has none), the object version,
#: a reference's digest (``etag``: its ETag, or the store's checksum where it
#: has no ETag), a copied file's content digest (``sha256``) and the size.
FIELDS = (REF, VERSION, ETAG, SHA256, SIZE)

# The pinned object an entry stands for: reference, object version, digest.
_ObjectKey = tuple[str | None, str | None, str]


@dataclasses.dataclass(frozen=True, slots=True)
class EntryChange:
    """One path in both manifests, pinning other content in the new one."""

    old: ManifestEntry
    new: ManifestEntry
    fields: tuple[str, ...]

    @property
    def path(self) -> str:
        return self.new.path

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "fields": list(self.fields),
            "old": self.old.to_dict(),
            "new": self.new.to_dict(),
        }


@dataclasses.dataclass(frozen=True, slots=True)
class EntryMove:
    """One pinned object that left ``old.path`` for ``new.path``."""

    old: ManifestEntry
    new: ManifestEntry

    def to_dict(self) -> dict[str, Any]:
        return {"from": self.old.path, "to": self.new.path, **self.new.to_dict()}


@dataclasses.dataclass(frozen=True, slots=True)
class ManifestDiff:
    """The differences between an old and a new manifest, each list by path."""

    added: tuple[ManifestEntry, ...] = ()
    removed: tuple[ManifestEntry, ...] = ()
    changed: tuple[EntryChange, ...] = ()
    moved: tuple[EntryMove, ...] = ()
    unchanged_count: int = 0

    @property
    def is_empty(self) -> bool:
        """True when both manifests pin the same content at the same paths."""
        return not (self.added or self.removed or self.changed or self.moved)

    @property
    def differing_paths(self) -> int:
        """Paths whose entry differs; a move counts both of its paths."""
        return (
            len(self.added)
            + len(self.removed)
            + len(self.changed)
            + 2 * len(self.moved)
        )

    def counts(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "removed": len(self.removed),
            "changed": len(self.changed),
            "moved": len(self.moved),
            "unchanged": self.unchanged_count,
        }

    def to_dict(self) -> dict[str, Any]:
        """The whole diff as JSON-ready data: counts, then each list by path."""
        return {
            "counts": self.counts(),
            "added": [_entry_dict(entry) for entry in self.added],
            "removed": [_entry_dict(entry) for entry in self.removed],
            "changed": [change.to_dict() for change in self.changed],
            "moved": [move.to_dict() for move in self.moved],
        }

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


def diff_manifests(old: Manifest, new: Manifest) -> ManifestDiff:
    """What changed from ``old`` to ``new``."""
    old_entries, new_entries = old.entries, new.entries
    removed = _by_path(e for path, e in old_entries.items() if path not in new_entries)
    added = _by_path(e for path, e in new_entries.items() if path not in old_entries)
    changed, unchanged = _compare_common(old_entries, new_entries)

    moved = _pair_moves(removed, added)
    if moved:
        gone = {id(move.old) for move in moved} | {id(move.new) for move in moved}
        removed = tuple(entry for entry in removed if id(entry) not in gone)
        added = tuple(entry for entry in added if id(entry) not in gone)

    return ManifestDiff(
        added=added,
        removed=removed,
        changed=tuple(sorted(changed, key=lambda change: change.path)),
        moved=tuple(sorted(moved, key=lambda move: move.new.path)),
        unchanged_count=unchanged,
    )


def _changed_fields(old: ManifestEntry, new: ManifestEntry) -> tuple[str, ...]:
    """The :data:`FIELDS` in which two entries of one path differ."""
    fields = []
    if old.ref != new.ref:
        fields.append(REF)
    if old.version_id != new.version_id:
        fields.append(VERSION)
    if old.digest != new.digest:
        copied = old.ref is None and new.ref is None
        fields.append(SHA256 if copied else ETAG)
    if old.size != new.size:
        fields.append(SIZE)
    return tuple(fields)


def _compare_common(
    old_entries: Mapping[str, ManifestEntry], new_entries: Mapping[str, ManifestEntry]
) -> tuple[list[EntryChange], int]:
    changed = []
    unchanged = 0
    for path, old_entry in old_entries.items():
        new_entry = new_entries.get(path)
        if new_entry is None:
            continue
        # Equal entries are the common case; the field checks run only for
        # the rest, some of which differ in extra metadata alone.
        fields = () if new_entry == old_entry else _changed_fields(old_entry, new_entry)
        if fields:
            changed.append(EntryChange(old_entry, new_entry, fields))
        else:
            unchanged += 1
    return changed, unchanged


def _pair_moves(
    removed: Sequence[ManifestEntry], added: Sequence[ManifestEntry]
) -> list[EntryMove]:
    """Pair removed and added paths (each in path order) that pin one object.

    One object removed from (or added at) several paths pairs as often as it
    can, first paths first; the paths left over stay removed or added.
    """
    arrivals: dict[_ObjectKey, list[ManifestEntry]] = {}
    for entry in reversed(added):  # so that pop() hands out the first path
        arrivals.setdefault(_object_key(entry), []).append(entry)
    moves = []
    for entry in removed:
        targets = arrivals.get(_object_key(entry))
        if targets:
            moves.append(EntryMove(entry, targets.pop()))
    return moves


def _object_key(entry: ManifestEntry) -> _ObjectKey:
    return entry.ref, entry.version_id, entry.digest


def _by_path(entries: Iterable[ManifestEntry]) -> tuple[ManifestEntry, ...]:
    return tuple(sorted(entries, key=lambda entry: entry.path))


def _entry_dict(entry: ManifestEntry) -> dict[str, Any]:
    return {"path": entry.path, **entry.to_dict()}
