"""Verification plans: which entries to check by listing a prefix, which alone.

A plan is computed from the manifest alone, before any request is sent.

Pass one over the manifest (:class:`Census`) keeps counts only: for every
bucket, how many entries lie under each folder prefix of their keys, at every
depth. Memory grows with the number of distinct folders, not of entries.

Then, per bucket, a cost model picks folder prefixes to list
(:func:`make_plan`). Costs are in point lookups: one stat is 1, one listing
page (``page_size`` objects) is ``page_weight``, because a listing page costs
about ten times a HEAD, in price and in latency. A listing also returns the
objects the artifact does not hold, which the manifest cannot show, so the
model assumes:

* a folder holding at least ``dense_min`` entries directly was captured
  whole: it holds those objects and no others;
* a folder holding fewer was picked from: it may hold a page of other
  objects.

Bottom-up over each bucket's folder tree, a prefix is listed when that is
strictly cheaper than looking up its own entries one by one plus the best
plan for each subfolder; ties go to the deeper, narrower prefixes. Dense
folders thus merge into their parent (``data/0000/`` ... ``data/0099/`` with
100 entries each become one listing of ``data/``: about one page per 1000
entries), while scattered entries are looked up one by one. Providers that
cannot list (plain HTTP) get lookups only. The verifier guards the model at
run time: a listing that stops paying for itself is abandoned for lookups.

Shards (``--shard I/N``) split the work deterministically, and every shard
computes the same plan from the same manifest. Listing units are sorted by
bucket and prefix and cut into N contiguous runs of about equal entry
counts, so that no two shards list the same prefix; a prefix holding more
than 1/N of the entries is split into its subfolders when that costs at most
``shard_margin`` (25 %) more, so that big artifacts spread over the shards.
A prefix still larger than 1/N (one flat folder, or subfolders too big
themselves) is cut into key ranges when its store can start a listing after
a key (``lists_from_key``): one more pass over the manifest collects the keys
of such prefixes only, and cuts them, sorted, into contiguous ranges of about
equal entry counts, none larger than 1/N. The shard of a range lists from the
last key of the range before it (``start_after``) and stops after its own
last key, so that the shards together read about one listing of the prefix.
Entries looked up one by one, and those that need no request, go to the shard
``crc32(path) % N``. Together the shards cover every entry exactly once.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import math
import re
import zlib
from collections.abc import Callable, Iterable, Iterator

from refstore.errors import ConfigError
from refstore.uri import ObjectRef

__all__ = [
    "Census",
    "KeySource",
    "ListingUnit",
    "Plan",
    "Planning",
    "Shard",
    "make_plan",
]

_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclasses.dataclass(frozen=True)
class Shard:
    """Part ``index`` (1-based) of ``count`` equal parts of one verification."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 1 <= self.index <= self.count:
            raise ConfigError(
                f"shard {self.index}/{self.count} does not exist: write I/N "
                "with 1 <= I <= N, for example 1/4"
            )

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"2/4"`` is the second of four shards."""
        match = _SHARD.fullmatch(text)
        if match is None:
            raise ConfigError(
                f"{text!r} is not a shard: write I/N (I from 1 to N), e.g. 1/4"
            )
        return cls(int(match[1]), int(match[2]))

    def owns(self, path: str) -> bool:
        """Whether the entry at ``path`` (if not listed) belongs to this shard."""
        return zlib.crc32(path.encode()) % self.count == self.index - 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


WHOLE = Shard(1, 1)


@dataclasses.dataclass(frozen=True)
class Planning:
    """The cost model's constants (see the module documentation)."""

    page_size: int = 1000
    page_weight: float = 10.0
    dense_min: int = 8
    shard_margin: float = 1.25

    def pages(self, objects: int) -> int:
        return max(1, math.ceil(objects / self.page_size))

    def listing_budget(self, matched: int) -> float:
        """Objects a listing may scan while having matched ``matched`` keys.

        Two pages of grace, then the listing must find an entry per
        ``page_size / page_weight`` objects, the rate at which it costs what
        the lookups it replaces would.
        """
        if self.page_weight <= 0:
            return math.inf
        return 2 * self.page_size + matched * self.page_size / self.page_weight


@dataclasses.dataclass(frozen=True)
class ListingUnit:
    """One prefix checked with one listing; ``shard`` is 0-based.

    A key range of the prefix lists only keys after ``start_after`` (None:
    from the first) up to and including ``end`` (None: to the last).
    """

    prefix: ObjectRef
    entries: int
    versions: bool
    pages: int
    shard: int = 0
    start_after: str | None = None
    end: str | None = None

    def __str__(self) -> str:
        after = "" if self.start_after is None else f" after {self.start_after!r}"
        through = "" if self.end is None else f" through {self.end!r}"
        keys = f" keys{after}{through}" if after or through else ""
        return f"{self.prefix}{keys}"

    def is_past(self, key: str) -> bool:
        """Whether ``key`` comes after this unit's last key."""
        return self.end is not None and key > self.end


@dataclasses.dataclass(frozen=True)
class KeySource:
    """What cutting a prefix into key ranges needs from the verifier.

    ``lists_from_key(prefix)``: whether the prefix's store starts a listing
    after a key; ``references()``: the manifest's references, streamed anew.
    """

    lists_from_key: Callable[[ObjectRef], bool]
    references: Callable[[], Iterable[ObjectRef]]


@dataclasses.dataclass(slots=True)
class _Folder:
    entries: int = 0  # under this prefix, at any depth
    direct: int = 0  # directly in this folder
    pinned: int = 0  # under this prefix, with a version pin
    mine: int = 0  # directly here, and owned by this shard if looked up


@dataclasses.dataclass
class _Bucket:
    ref: ObjectRef  # the bucket itself, key ""
    folders: dict[str, _Folder]


class Census:
    """Pass one: entries per folder prefix of each bucket, counts only."""

    def __init__(self, shard: Shard = WHOLE) -> None:
        self.shard = shard
        self.buckets: dict[str, _Bucket] = {}
        self.others = 0  # entries of this shard that need no store request

    def add_reference(self, ref: ObjectRef, path: str) -> None:
        bucket = self.buckets.get(ref.location)
        if bucket is None:
            bucket = self.buckets[ref.location] = _Bucket(ref.child(""), {})
        folders = bucket.folders
        for prefix in folder_prefixes(ref.key):
            folder = folders.get(prefix)
            if folder is None:
                folder = folders[prefix] = _Folder()
            folder.entries += 1
            folder.pinned += ref.version is not None
        leaf = folders[_parent(ref.key)]
        leaf.direct += 1
        leaf.mine += self.shard.owns(path)

    def add_other(self, path: str) -> None:
        self.others += self.shard.owns(path)

    @property
    def references(self) -> int:
        return sum(b.folders[""].entries for b in self.buckets.values())

    def touches(self, location: str, prefix: str) -> bool:
        """Whether some entry's key may start with ``prefix``.

        Counts hold no keys: a prefix that ends inside a folder name (``a/im``)
        may match the folder's direct entries, and is taken to.
        """
        folders = self.buckets[location].folders
        parent = folders.get(prefix[: prefix.rfind("/") + 1])
        if parent is not None and parent.direct > 0:
            return True
        return any(name.startswith(prefix) for name in folders)

    def common_prefix(self, location: str) -> str:
        """The deepest folder that holds every entry of the bucket."""
        folders = self.buckets[location].folders
        prefix = ""
        while folders[prefix].direct == 0:
            depth = prefix.count("/") + 1
            below = [
                name
                for name in folders
                if name.startswith(prefix) and name.count("/") == depth
            ]
            if len(below) != 1:
                break
            prefix = below[0]
        return prefix


def folder_prefixes(key: str) -> list[str]:
    """Every folder prefix of ``key``, shallowest first: "", "a/", "a/b/"."""
    body = key[:-1]
    return [""] + [key[: i + 1] for i, char in enumerate(body) if char == "/"]


def _parent(prefix: str) -> str:
    return prefix[: prefix.rfind("/", 0, len(prefix) - 1) + 1]


class _Ranges:
    """The listing units of one prefix: the whole prefix, or key ranges."""

    def __init__(self) -> None:
        self.units: list[ListingUnit] = []
        self.ends: list[str] = []  # the last key of every range but the last

    def add(self, unit: ListingUnit) -> None:
        """Add the next unit, in key order."""
        if unit.start_after is not None:
            self.ends.append(unit.start_after)
        self.units.append(unit)

    def find(self, key: str) -> ListingUnit:
        return self.units[bisect.bisect_left(self.ends, key)]


class Plan:
    """The listing units of every bucket, and who checks what."""

    def __init__(self, census: Census, units: list[ListingUnit]) -> None:
        self.shard = census.shard
        self._units: dict[str, dict[str, _Ranges]] = {}
        for unit in units:
            prefixes = self._units.setdefault(unit.prefix.location, {})
            prefixes.setdefault(unit.prefix.key, _Ranges()).add(unit)
        self.owned = [u for u in units if u.shard == self.shard.index - 1]
        self.listed = sum(unit.entries for unit in self.owned)
        lookups = _lookups_by_bucket(census, self._units)
        self.lookups = sum(lookups.values())
        self.others = census.others
        touched = {u.prefix.location for u in self.owned}
        touched.update(location for location, n in lookups.items() if n)
        #: the buckets this shard sends requests to, by location
        self.buckets = {
            location: census.buckets[location].ref for location in sorted(touched)
        }

    @property
    def total(self) -> int:
        """Entries this shard reports on."""
        return self.listed + self.lookups + self.others

    @property
    def pages(self) -> int:
        return sum(unit.pages for unit in self.owned)

    def unit_for(self, ref: ObjectRef) -> ListingUnit | None:
        """The listing unit that covers ``ref``, whichever shard owns it."""
        units = self._units.get(ref.location)
        if not units:
            return None
        for prefix in reversed(folder_prefixes(ref.key)):
            ranges = units.get(prefix)
            if ranges is not None:
                return ranges.find(ref.key)
        return None

    def owns(self, unit: ListingUnit) -> bool:
        return unit.shard == self.shard.index - 1

    def describe(self) -> str:
        shown = ", ".join(
            f"{unit} ({unit.entries} entries, pages: ~{unit.pages})"
            for unit in self.owned[:3]
        )
        more = f" and {len(self.owned) - 3} more" if len(self.owned) > 3 else ""
        listings = f": {shown}{more}" if self.owned else ""
        return (
            f"{len(self.owned)} listings for {self.listed} entries{listings}; "
            f"{self.lookups} point lookups; {self.others} entries need no request"
        )


def _lookups_by_bucket(
    census: Census, units: dict[str, dict[str, _Ranges]]
) -> dict[str, int]:
    """Entries this shard looks up one by one, per bucket."""
    lookups = {}
    for location, bucket in census.buckets.items():
        listed = units.get(location, {})
        lookups[location] = sum(
            folder.mine
            for prefix, folder in bucket.folders.items()
            # folder_prefixes of a key in the folder: the folder and its parents
            if not any(p in listed for p in folder_prefixes(prefix + "-"))
        )
    return lookups


def make_plan(
    census: Census,
    can_list: Callable[[ObjectRef], bool],
    planning: Planning | None = None,
    keys: KeySource | None = None,
) -> Plan:
    """Choose the listing units of every bucket, and assign them to shards.

    With ``keys``, a prefix larger than a shard's share is cut into key
    ranges where its store allows; without, it is listed by one shard.
    """
    planning = planning or Planning()
    shard = census.shard
    max_unit = None
    if shard.count > 1:
        max_unit = math.ceil(census.references / shard.count)
    units: list[ListingUnit] = []
    for location in sorted(census.buckets):
        bucket = census.buckets[location]
        if can_list(bucket.ref):
            units.extend(_bucket_units(bucket, planning, max_unit))
    if max_unit is not None and keys is not None:
        units = _cut_by_key(units, max_unit, keys)
    return Plan(census, _assign(units, shard.count))


def _bucket_units(
    bucket: _Bucket, planning: Planning, max_unit: int | None
) -> list[ListingUnit]:
    folders = bucket.folders
    children: dict[str, list[str]] = {}
    for prefix in folders:
        if prefix:
            children.setdefault(_parent(prefix), []).append(prefix)
    listed = _choose_listings(folders, children, planning, max_unit)
    return [
        ListingUnit(
            prefix=bucket.ref.child(prefix),
            entries=folders[prefix].entries,
            versions=folders[prefix].pinned > 0,
            pages=planning.pages(estimate),
        )
        for prefix, estimate in _top_listings(listed, children)
    ]


def _choose_listings(
    folders: dict[str, _Folder],
    children: dict[str, list[str]],
    planning: Planning,
    max_unit: int | None,
) -> dict[str, int]:
    """Bottom-up costs; the prefixes worth listing, with estimated objects."""
    objects: dict[str, int] = {}
    best: dict[str, float] = {}
    listed: dict[str, int] = {}
    # Children are longer than their parent: longest first is bottom-up.
    for prefix in sorted(folders, key=len, reverse=True):
        folder = folders[prefix]
        kids = children.get(prefix, [])
        objects[prefix] = _assumed_objects(folder, planning) + sum(
            objects[kid] for kid in kids
        )
        split = folder.direct + sum(best[kid] for kid in kids)
        listing = planning.page_weight * planning.pages(objects[prefix])
        # A listing larger than a shard's share runs on one shard alone; its
        # subfolders can spread over several, if that costs little more.
        oversized = max_unit is not None and folder.entries > max_unit
        margin = planning.shard_margin if oversized else 1.0
        if listing * margin < split:
            best[prefix] = listing
            listed[prefix] = objects[prefix]
        else:
            best[prefix] = split
    return listed


def _assumed_objects(folder: _Folder, planning: Planning) -> int:
    if folder.direct == 0 or folder.direct >= planning.dense_min:
        return folder.direct
    return max(folder.direct, planning.page_size)


def _top_listings(
    listed: dict[str, int], children: dict[str, list[str]]
) -> Iterator[tuple[str, int]]:
    """The listed prefixes not inside another listed prefix, in key order."""
    stack = [""]
    while stack:
        prefix = stack.pop()
        if prefix in listed:
            yield prefix, listed[prefix]
            continue
        stack.extend(sorted(children.get(prefix, []), reverse=True))


def _cut_by_key(
    units: list[ListingUnit], max_unit: int, keys: KeySource
) -> list[ListingUnit]:
    """Units larger than ``max_unit`` entries, cut into key ranges if possible."""
    oversized = [
        unit
        for unit in units
        if unit.entries > max_unit and keys.lists_from_key(unit.prefix)
    ]
    if not oversized:
        return units
    found = _keys_under(oversized, keys.references())
    cut: list[ListingUnit] = []
    for unit in units:
        if unit in found:
            parts = math.ceil(unit.entries / max_unit)
            cut.extend(key_ranges(unit, found[unit], parts))
        else:
            cut.append(unit)
    return cut


def _keys_under(
    units: list[ListingUnit], references: Iterable[ObjectRef]
) -> dict[ListingUnit, list[str]]:
    """The entries' keys under each unit's prefix (prefixes do not nest)."""
    by_location: dict[str, list[ListingUnit]] = {}
    for unit in units:
        by_location.setdefault(unit.prefix.location, []).append(unit)
    found: dict[ListingUnit, list[str]] = {unit: [] for unit in units}
    for ref in references:
        for unit in by_location.get(ref.location, ()):
            if ref.key.startswith(unit.prefix.key):
                found[unit].append(ref.key)
                break
    return found


def key_ranges(unit: ListingUnit, keys: list[str], parts: int) -> list[ListingUnit]:
    """``unit`` cut into at most ``parts`` key ranges of about equal entries.

    ``keys`` are the entries' keys under the prefix, in any order, a key
    once per entry. Entries of one key stay in one range; the first range
    starts at the prefix's first key and the last one ends at its last, so
    that every key under the prefix falls in exactly one range.
    """
    keys = sorted(keys)
    bounds: list[str | None] = [None, *_range_ends(keys, parts), None]
    ranges = []
    before = 0
    for start_after, end in itertools.pairwise(bounds):
        upto = len(keys) if end is None else bisect.bisect_right(keys, end)
        entries = upto - before
        ranges.append(
            dataclasses.replace(
                unit,
                entries=entries,
                # each range may read one page that its neighbour reads too
                pages=max(1, math.ceil(unit.pages * entries / max(unit.entries, 1))),
                start_after=start_after,
                end=end,
            )
        )
        before = upto
    return ranges


def _range_ends(keys: list[str], parts: int) -> list[str]:
    """The last key of each range but the last; ``keys`` sorted.

    Each range aims at an equal share of the entries not yet in a range, so
    that a run of equal keys that overfills one range shrinks the next ones.
    """
    ends: list[str] = []
    start = 0
    for left in range(parts, 1, -1):
        at = max(start + 1, start + round((len(keys) - start) / left))
        if at >= len(keys):
            break
        end = keys[at - 1]
        start = bisect.bisect_right(keys, end)
        if start >= len(keys):
            break  # the last range would be empty
        ends.append(end)
    return ends


def _assign(units: list[ListingUnit], count: int) -> list[ListingUnit]:
    """Cut the units, in bucket and key order, into ``count`` contiguous runs."""
    total = sum(unit.entries for unit in units)
    assigned = []
    before = 0
    for unit in units:
        middle = before + unit.entries / 2
        shard = min(count - 1, int(middle * count / total)) if total else 0
        assigned.append(dataclasses.replace(unit, shard=shard))
        before += unit.entries
    return assigned
