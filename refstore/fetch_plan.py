"""The plan of a fetch: which file each entry becomes, refused if unsafe.

Every entry path is checked before anything is written, so a hostile
manifest writes nothing at all. Refused on every platform: absolute paths
(``/x``, ``\\\\server\\share``, ``C:\\x``, ``C:x``), backslashes, NUL, ``..``
and names made of dots and spaces only (Windows reads ``.. `` and ``...`` as
``..``), and paths that lead through a symbolic link out of the destination.
On Windows also: colons (alternate data streams), reserved device names
(``CON``, ``NUL``, ``COM1``, ...), characters Windows forbids in names, and
names ending in a dot or a space (Windows drops those, so two entries could
name one file). Where names are case-insensitive (Windows, macOS) two paths
that differ only in case are one file and are refused as a clash.
"""

from __future__ import annotations

import dataclasses
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path

from refstore.cache import FetchCache
from refstore.errors import UnsafePathError
from refstore.manifest import ManifestEntry, check_entry_path

__all__ = ["Group", "Target", "check_local_path", "group_targets", "plan"]

WINDOWS = os.name == "nt"
CASE_INSENSITIVE = WINDOWS or sys.platform == "darwin"
_RESERVED = re.compile(r"(CON|PRN|AUX|NUL|COM[0-9¹²³]|LPT[0-9¹²³])(\..*)?", re.I)
_WINDOWS_FORBIDDEN = re.compile(r'[<>:"|?*\x00-\x1f]')


@dataclasses.dataclass(frozen=True)
class Target:
    """One entry and the file it becomes.

    ``may_exist`` is False when the file's folder did not exist at planning
    time: then there is nothing to compare or replace, and the fetch skips
    looking (on a fresh fetch, for every file).
    """

    entry: ManifestEntry
    path: Path
    may_exist: bool = True


@dataclasses.dataclass(frozen=True)
class Group:
    """Targets with the same content: one download (or cache hit) serves all."""

    key: str | None
    targets: tuple[Target, ...]

    @property
    def entry(self) -> ManifestEntry:
        return self.targets[0].entry

    @property
    def size(self) -> int:
        return self.entry.size or 0


def plan(
    entries: Iterable[ManifestEntry],
    root: Path,
    *,
    windows: bool = WINDOWS,
    case_insensitive: bool = CASE_INSENSITIVE,
) -> list[Target]:
    """Map entries to target files, refusing any that would land outside root."""
    places = _Folders(root)
    targets: list[Target] = []
    files: set[str] = set()
    folders: set[str] = set()
    for entry in entries:
        relative = check_entry_path(entry.path)
        check_local_path(relative, windows=windows)
        _check_no_clash(relative, files, folders, case_insensitive)
        target = root / relative
        inside, folder_exists = places.inspect(target, relative)
        if not inside:
            raise UnsafePathError(
                f"manifest path {entry.path!r} leads outside {root} through a "
                "symbolic link; remove the link or fetch into an empty folder"
            )
        targets.append(Target(entry, target, may_exist=folder_exists))
    return targets


class _Folders:
    """Whether paths under ``root`` stay inside it once symbolic links resolve.

    Each folder is resolved once: entries share few folders, and resolving
    every path walks every component of it (100,000 entries took seconds).
    The file itself is looked at only when its folder exists, in case it is
    a link.
    """

    def __init__(self, root: Path) -> None:
        self._root = root.resolve()
        # folder relative to the root -> (inside the root, exists)
        self._seen: dict[str, tuple[bool, bool]] = {}

    def inspect(self, path: Path, relative: str) -> tuple[bool, bool]:
        """Whether ``path`` resolves inside the root, and whether its folder exists."""
        folder = relative.rpartition("/")[0]
        found = self._seen.get(folder)
        if found is None:
            resolved = path.parent.resolve()
            found = (resolved.is_relative_to(self._root), resolved.is_dir())
            self._seen[folder] = found
        inside, exists = found
        if inside and exists and path.is_symlink():
            inside = path.resolve().is_relative_to(self._root)
        return inside, exists


def check_local_path(relative: str, *, windows: bool = WINDOWS) -> None:
    """Refuse a normalised entry path that the local filesystem would misread."""
    for name in relative.split("/"):
        problem = _name_problem(name, windows)
        if problem is not None:
            raise UnsafePathError(
                f"manifest path {relative!r} cannot be written safely: the name "
                f"{name!r} {problem}; rename the entry"
            )


def _name_problem(name: str, windows: bool) -> str | None:
    if not name.strip(". "):
        return "is made of dots and spaces only, which Windows reads as '..'"
    if not windows:
        return None
    if _WINDOWS_FORBIDDEN.search(name):
        return "has a character Windows forbids in names (or a stream colon)"
    if name[-1] in ". ":
        return "ends in a dot or a space, which Windows drops"
    if _RESERVED.fullmatch(name.rstrip(". ")):
        return "is a Windows device name"
    return None


def _check_no_clash(
    relative: str, files: set[str], folders: set[str], case_insensitive: bool
) -> None:
    key = relative.casefold() if case_insensitive else relative
    parents = key.split("/")[:-1]
    prefixes = ["/".join(parents[: i + 1]) for i in range(len(parents))]
    if key in files:
        raise UnsafePathError(
            f"two manifest paths name the same file {relative!r}; rename one"
        )
    clash = key in folders or any(p in files for p in prefixes)
    if clash:
        raise UnsafePathError(
            f"manifest path {relative!r} is both a file and a folder in this "
            "artifact; rename one of the entries"
        )
    files.add(key)
    folders.update(prefixes)


def group_targets(targets: list[Target], cache: FetchCache | None) -> list[Group]:
    """One group per distinct content, largest first.

    Entries that pin the same object version share a group, so one download
    serves them all. Large objects go first: their ranged parts then overlap
    with the many small transfers instead of trailing after them.
    """
    keyed: dict[str, list[Target]] = {}
    groups: list[Group] = []
    for target in targets:
        key = None if cache is None else FetchCache.key_of(target.entry)
        if key is None:
            groups.append(Group(None, (target,)))
        else:
            keyed.setdefault(key, []).append(target)
    groups.extend(Group(key, tuple(found)) for key, found in keyed.items())
    groups.sort(key=lambda group: group.size, reverse=True)
    return groups
