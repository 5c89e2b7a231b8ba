"""``refstore demo``: the whole story against an embedded S3 emulator.

It needs no cloud account: moto's S3 server runs in this process on a free
local port, and the demo's catalog lives in a temporary folder unless one is
given. The demo plays the user: it fills a versioned bucket, logs it, changes
the bucket behind the artifact's back, logs again, and fetches the first
version to show that refstore hands back exactly the original bytes.
"""

from __future__ import annotations

import contextlib
import logging
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from refstore.api import Api
from refstore.artifact import Artifact
from refstore.config import Settings
from refstore.context import Context
from refstore.errors import IntegrityError, MissingDependencyError
from refstore.manifest_diff import ManifestDiff

__all__ = ["run_demo"]

BUCKET = "refstore-demo"
PREFIX = "furniture/"
PROJECT = "demo/vision"
_CREDENTIALS = {"aws_access_key_id": "demo", "aws_secret_access_key": "demo"}

Echo = Callable[[str], None]


def run_demo(home: Path | None, echo: Echo) -> None:
    """Run the demo, reporting each step through ``echo``."""
    with _demo_home(home) as root, _embedded_s3() as endpoint:
        settings = Settings(home=root).with_store(
            "s3", endpoint_url=endpoint, region="us-east-1", **_CREDENTIALS
        )
        context = Context(settings)
        try:
            _run_steps(context, endpoint, root, echo)
        finally:
            context.close()


def _run_steps(context: Context, endpoint: str, root: Path, echo: Echo) -> None:
    client = _client(endpoint)
    echo(f"1. started an S3 emulator at {endpoint}; catalog in {context.settings.home}")

    original = _fill_bucket(client)
    echo(
        f"2. created versioned bucket s3://{BUCKET} with {len(original)} objects "
        f"under {PREFIX}"
    )

    v0 = _log(context, ["raw"])
    echo(
        f"3. logged {v0.qualified_name}: {v0.entry_count} references pinned to "
        f"their S3 versions, nothing copied"
    )

    changed = _change_bucket(client)
    echo(f"4. changed the bucket behind the artifact's back: {changed}")

    v1 = _log(context, [])
    echo(
        f"5. logged {v1.qualified_name}: {v1.entry_count} references "
        f"(aliases {', '.join(v1.aliases)})"
    )

    _show_fetch(context, root, original, echo)


def _log(context: Context, aliases: list[str]) -> Artifact:
    artifact = Artifact(
        "furniture",
        "dataset",
        context=context,
        description="Furniture images and labels (demo)",
        metadata={"source": f"s3://{BUCKET}/{PREFIX}"},
    )
    artifact.add_reference(f"s3://{BUCKET}/{PREFIX}")
    return artifact.save(project=PROJECT, aliases=aliases)


def _show_fetch(
    context: Context, root: Path, original: dict[str, bytes], echo: Echo
) -> None:
    api = Api(context.settings)
    v0 = api.artifact(f"{PROJECT}/furniture:raw")
    folder = v0.download(root / "fetched-v0")
    fetched = {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file()
    }
    if fetched != original:
        raise IntegrityError(
            f"the demo fetched {v0.qualified_name} into {folder}, but its bytes "
            "differ from what was uploaded; this is a refstore bug"
        )
    echo(
        f"6. fetched {v0.qualified_name} (alias 'raw') into {folder}: all "
        f"{len(fetched)} files match the original bytes, although the bucket "
        "has changed since"
    )
    latest = api.artifact(f"{PROJECT}/furniture:latest")
    echo(
        f"7. {latest.qualified_name} is 'latest'; its manifest differs from v0 in "
        f"{_differences(v0.diff(latest))} (refstore diff {v0.qualified_name} "
        ":latest)"
    )
    echo(
        "With --home DIR the catalog stays: REFSTORE_HOME=DIR refstore ls "
        "demo/vision/furniture"
    )
    api.context.close()


def _differences(diff: ManifestDiff) -> str:
    counts = ", ".join(
        f"{count} {kind}"
        for kind, count in diff.counts().items()
        if kind != "unchanged"
    )
    return f"{diff.differing_paths} paths: {counts}"


def _fill_bucket(client: Any) -> dict[str, bytes]:
    client.create_bucket(Bucket=BUCKET)
    client.put_bucket_versioning(
        Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"}
    )
    files = {f"images/chair-{i:03d}.jpg": _fake_image(i) for i in range(8)}
    files["labels.csv"] = b"file,label\n" + b"".join(
        f"images/chair-{i:03d}.jpg,chair\n".encode() for i in range(8)
    )
    for path, data in files.items():
        client.put_object(Bucket=BUCKET, Key=PREFIX + path, Body=data)
    return files


def _change_bucket(client: Any) -> str:
    client.put_object(
        Bucket=BUCKET, Key=PREFIX + "labels.csv", Body=b"file,label\nrelabelled,sofa\n"
    )
    client.delete_object(Bucket=BUCKET, Key=PREFIX + "images/chair-000.jpg")
    client.put_object(
        Bucket=BUCKET, Key=PREFIX + "images/sofa-000.jpg", Body=_fake_image(100)
    )
    return "overwrote labels.csv, deleted chair-000.jpg, added sofa-000.jpg"


def _fake_image(seed: int) -> bytes:
    return bytes((seed * 31 + i * 7) % 256 for i in range(2048 + seed))


def _client(endpoint: str) -> Any:
    import boto3

    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=_CREDENTIALS["aws_access_key_id"],
        aws_secret_access_key=_CREDENTIALS["aws_secret_access_key"],
    )


@contextlib.contextmanager
def _demo_home(home: Path | None) -> Iterator[Path]:
    if home is not None:
        home.mkdir(parents=True, exist_ok=True)
        yield home
        return
    with tempfile.TemporaryDirectory(prefix="refstore-demo-") as tmp:
        yield Path(tmp)


@contextlib.contextmanager
def _embedded_s3() -> Iterator[str]:
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        raise MissingDependencyError("demo", "the demo's embedded S3 emulator") from exc
    # werkzeug logs every request at INFO through its own handler.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()
