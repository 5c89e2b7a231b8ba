"""Resuming: a fetch killed mid-transfer, run again, sends only what it lacks.

The fetch runs in a subprocess (one worker, so that it is slow enough to be
caught mid-way), killed with SIGKILL once it is under way; what it left is
counted after its death, and the rerun in this process must send exactly the
requests for the rest.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from refstore.artifact import Artifact
from refstore.cache import FetchCache
from refstore.errors import FetchError
from refstore.fetch import PartPolicy, fetch
from tests.emulators import REPO, put_objects
from tests.helpers import Workspace, files_under

PROJECT = "acme/resume"
PART = 64 * 1024

_FETCHER = """
import sys
from pathlib import Path
from refstore.cache import FetchCache
from refstore.errors import FetchError
from refstore.config import Settings
from refstore.context import Context
from refstore.fetch import PartPolicy, fetch
from refstore.manifest import Manifest

with open(sys.argv[1], "rb") as stream:
    manifest = Manifest.read_json(stream)
context = Context(Settings.from_env())
fetch(
    manifest,
    Path(sys.argv[2]),
    providers=context.providers,
    blobs=context.blobs,
    cache=FetchCache.from_settings(context.settings),
    jobs=1,
    parts=PartPolicy(threshold=2 * int(sys.argv[3]), size=int(sys.argv[3])),
)
"""


@pytest.fixture
def ws(moto_s3: Any, tmp_path: Path) -> Iterator[Workspace]:
    home = tmp_path / "home"
    home.mkdir()
    endpoint = moto_s3.endpoint_url
    (home / "config.toml").write_text(
        f'[stores.s3]\nendpoint_url = "{endpoint}"\nregion = "us-east-1"\n'
    )
    workspace = Workspace(moto_s3, home)
    yield workspace
    workspace.close()


def _logged(ws: Workspace, objects: dict[str, bytes]) -> Artifact:
    bucket = ws.s3.make_bucket()
    put_objects(ws.s3.client, bucket, [(f"d/{k}", b) for k, b in objects.items()])
    art = ws.artifact()
    art.add_reference(f"s3://{bucket}/d/")
    art.save(project=PROJECT)
    return art


def _kill_when(
    ws: Workspace, art: Artifact, root: Path, under_way: Callable[[], bool]
) -> None:
    manifest = root.parent / "manifest.json"
    with manifest.open("w") as stream:
        art.manifest.write_json(stream)
    env = {**os.environ, "REFSTORE_HOME": str(ws.settings.home)}
    env.pop("REFSTORE_CACHE_DIR", None)
    command = [sys.executable, "-c", _FETCHER, str(manifest), str(root), str(PART)]
    worker = subprocess.Popen(command, cwd=REPO, env=env)
    try:
        deadline = time.monotonic() + 60
        while not under_way():
            assert worker.poll() is None, "the fetch ended before it was killed"
            assert time.monotonic() < deadline, "the fetch never got under way"
            time.sleep(0.002)
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()


def _fetch_again(ws: Workspace, art: Artifact, root: Path) -> list[tuple[int, int]]:
    """Fetch ``art`` into ``root`` here; the byte range of each GET it sent."""
    sent: list[Any] = []
    s3 = ws.context.providers.for_scheme("s3")
    client = s3._client(next(iter(art.manifest.entries.values())).object_ref())
    # Observes the requests; a before-send handler returning None changes nothing.
    client.meta.events.register(
        "before-send.s3.GetObject", lambda request, **_: sent.append(request)
    )
    fetch(
        art.manifest,
        root,
        providers=ws.context.providers,
        blobs=ws.context.blobs,
        cache=FetchCache.from_settings(ws.settings),
        parts=PartPolicy(threshold=2 * PART, size=PART),
    )
    return [_span(request) for request in sent]


def _span(request: Any) -> tuple[int, int]:
    """[start, end) of a GET's Range header; (0, -1) for a whole object."""
    header = request.headers.get("Range")
    if header is None:
        return (0, -1)
    first, _, last = header.decode().removeprefix("bytes=").partition("-")
    return (int(first), int(last) + 1)


def test_a_killed_fetch_resumes_with_the_objects_it_lacks(
    ws: Workspace, tmp_path: Path
) -> None:
    objects = {f"{i:03d}.bin": os.urandom(512) for i in range(200)}
    art = _logged(ws, objects)
    cached = ws.settings.fetch_cache_dir / "objects"

    def some_cached() -> bool:
        return cached.is_dir() and sum(1 for _ in cached.rglob("*")) >= 40

    _kill_when(ws, art, tmp_path / "out", some_cached)
    done = sum(1 for path in cached.rglob("*") if path.is_file())
    assert done < len(objects)

    gets = _fetch_again(ws, art, tmp_path / "out")

    assert len(gets) == len(objects) - done
    assert files_under(tmp_path / "out") == objects


def test_a_killed_ranged_download_resumes_with_the_bytes_it_lacks(
    ws: Workspace, tmp_path: Path
) -> None:
    size = 64 * PART
    body = os.urandom(size)
    art = _logged(ws, {"big.bin": body})
    key = FetchCache.key_of(art.manifest.entries["big.bin"])
    assert key is not None
    sidecar = ws.settings.fetch_cache_dir / "tmp" / key[:1] / f"{key}.part.json"

    def recorded() -> list[list[int]]:
        try:
            return list(json.loads(sidecar.read_text())["done"])
        except (OSError, ValueError):
            return []

    # One worker reads the object front to back, recording every PART bytes.
    _kill_when(ws, art, tmp_path / "out", lambda: _bytes(recorded()) >= 8 * PART)
    [[start, done]] = recorded()
    assert start == 0
    assert 8 * PART <= done < size

    gets = _fetch_again(ws, art, tmp_path / "out")

    assert gets, "the rest was never requested"
    assert min(first for first, _ in gets) == done
    assert all(done <= first < last <= size for first, last in gets)
    assert len(gets) <= (size - done) // PART
    assert (tmp_path / "out" / "big.bin").read_bytes() == body
    assert not sidecar.exists()


def _bytes(intervals: list[list[int]]) -> int:
    return sum(end - start for start, end in intervals)


def test_a_record_of_bytes_that_are_not_there_fails_the_check_and_is_dropped(
    ws: Workspace, tmp_path: Path
) -> None:
    # A part file whose record claims every byte, while the file holds zeros
    # (a power cut after the record was written, say): the resumed download
    # must fail its checksum rather than pass the zeros off as the object.
    size = 4 * PART
    body = os.urandom(size)
    art = _logged(ws, {"big.bin": body})
    key = FetchCache.key_of(art.manifest.entries["big.bin"])
    assert key is not None
    folder = ws.settings.fetch_cache_dir / "tmp" / key[:1]
    folder.mkdir(parents=True)
    (folder / f"{key}.part").write_bytes(bytes(size))
    record = {"layout": {"size": size}, "done": [[0, size]]}
    (folder / f"{key}.part.json").write_text(json.dumps(record))

    with pytest.raises(FetchError, match="md5"):
        _fetch_again(ws, art, tmp_path / "one")

    assert files_under(folder) == {}
    assert files_under(tmp_path / "one") == {}
    gets = _fetch_again(ws, art, tmp_path / "two")
    assert (tmp_path / "two" / "big.bin").read_bytes() == body
    assert min(first for first, _ in gets) == 0
