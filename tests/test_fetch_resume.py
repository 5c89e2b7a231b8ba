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
from refstore.fetch import PartPolicy, fetch
from tests.emulators import REPO, put_objects
from tests.helpers import Workspace, files_under

PROJECT = "acme/resume"
PART = 64 * 1024

_FETCHER = """
import sys
from pathlib import Path
from refstore.cache import FetchCache
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


def _gets_for(ws: Workspace, art: Artifact, root: Path) -> int:
    s3 = ws.context.providers.for_scheme("s3")
    before = s3.requests.snapshot().get("GetObject", 0)
    fetch(
        art.manifest,
        root,
        providers=ws.context.providers,
        blobs=ws.context.blobs,
        cache=FetchCache.from_settings(ws.settings),
        parts=PartPolicy(threshold=2 * PART, size=PART),
    )
    return s3.requests.snapshot().get("GetObject", 0) - before


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

    gets = _gets_for(ws, art, tmp_path / "out")

    assert gets == len(objects) - done
    assert files_under(tmp_path / "out") == objects


def test_a_killed_parted_download_resumes_with_the_parts_it_lacks(
    ws: Workspace, tmp_path: Path
) -> None:
    body = os.urandom(64 * PART)
    art = _logged(ws, {"big.bin": body})
    key = FetchCache.key_of(art.manifest.entries["big.bin"])
    assert key is not None
    sidecar = ws.settings.fetch_cache_dir / "tmp" / key[:2] / f"{key}.part.json"

    def parts_done() -> list[int]:
        try:
            return list(json.loads(sidecar.read_text())["done"])
        except (OSError, ValueError):
            return []

    _kill_when(ws, art, tmp_path / "out", lambda: len(parts_done()) >= 8)
    done = len(parts_done())
    assert done < 64

    gets = _gets_for(ws, art, tmp_path / "out")

    assert gets == 64 - done
    assert (tmp_path / "out" / "big.bin").read_bytes() == body
    assert not sidecar.exists()
