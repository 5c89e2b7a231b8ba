"""How large downloads are split: the halving rules, and what idle workers get.

The transfers themselves run against real emulators in ``test_fetch.py``,
``test_fetch_resume.py`` and ``providers/test_fetch_stores.py``; here the
splitting is driven by hand, with tasks collected instead of run.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable
from pathlib import Path

from refstore.manifest import ManifestEntry
from refstore.ranges import SplitDownload, Splitter
from refstore.transfer import FileSink, PartPolicy

PART = 1000


def _download(
    tmp_path: Path,
    size: int,
    splitter: Splitter,
    name: str = "big.bin",
    done: Callable[[int | None, Exception | None], None] = lambda n, e: None,
) -> tuple[SplitDownload, list[Callable[[], None]]]:
    """A download of ``size`` bytes, started, its read tasks held back."""
    entry = ManifestEntry(
        path=name,
        digest="d",
        ref=f"s3://bucket-a/{name}",
        size=size,
        extra={"versionID": "v1", "md5": hashlib.md5(b"x").hexdigest()},
    )
    sink = FileSink(tmp_path / name)
    download = SplitDownload(
        None,  # type: ignore[arg-type] - nothing is read here
        entry,
        sink,
        PartPolicy(threshold=2 * PART, size=PART),
        splitter=splitter,
        progress=None,
        done=done,
    )
    tasks: list[Callable[[], None]] = []
    download.start(tasks.append)
    return download, tasks


def test_a_fresh_download_is_one_range(tmp_path: Path) -> None:
    download, tasks = _download(tmp_path, 10 * PART, Splitter())

    assert download.ranges() == [(0, 10 * PART)]
    assert len(tasks) == 1


def test_idle_workers_halve_the_largest_range_down_to_the_minimum(
    tmp_path: Path,
) -> None:
    splitter = Splitter()
    download, _ = _download(tmp_path, 10 * PART, splitter)

    stolen = 0
    while splitter.steal() is not None:
        stolen += 1

    ranges = download.ranges()
    # 10 halves into 5 + 5, each into 2.5 + 2.5, each into 1.25 + 1.25; a
    # range of 1.25 parts is not split again, as that would leave pieces
    # under one part.
    assert stolen == 7
    assert [end - start for start, end in ranges] == [1250] * 8
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    assert (ranges[0][0], ranges[-1][1]) == (0, 10 * PART)


def test_a_range_under_twice_the_minimum_is_never_split(tmp_path: Path) -> None:
    splitter = Splitter()
    download, _ = _download(tmp_path, 2 * PART - 1, splitter)

    assert splitter.steal() is None
    assert download.ranges() == [(0, 2 * PART - 1)]


def test_the_largest_download_is_split_first(tmp_path: Path) -> None:
    splitter = Splitter()
    small, _ = _download(tmp_path, 3 * PART, splitter, "small.bin")
    large, _ = _download(tmp_path, 9 * PART, splitter, "large.bin")

    assert splitter.steal() is not None

    assert small.ranges() == [(0, 3 * PART)]
    assert large.ranges() == [(0, 4500), (4500, 9 * PART)]


def test_a_failed_download_gives_nothing_to_split(tmp_path: Path) -> None:
    splitter = Splitter()
    outcomes: list[tuple[int | None, Exception | None]] = []
    _, tasks = _download(
        tmp_path, 10 * PART, splitter, done=lambda n, e: outcomes.append((n, e))
    )

    tasks[0]()  # the stand-in provider cannot read: the range fails

    [(size, error)] = outcomes
    assert size is None
    assert isinstance(error, AttributeError)
    assert splitter.steal() is None
    assert list(tmp_path.iterdir()) == []
