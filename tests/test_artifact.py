"""Artifacts end to end on S3 (moto over HTTP), embedded and through the service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from refstore.errors import (
    ConflictError,
    IntegrityError,
    NotFoundError,
    ObjectNotFoundError,
    RefstoreError,
    UnsafePathError,
)
from tests.helpers import Workspace, files_under
from tests.service import workspace

PROJECT = "acme/vision"


@pytest.fixture
def ws(moto_s3: Any, tmp_path: Path, catalog_mode: str) -> Iterator[Workspace]:
    with workspace(catalog_mode, moto_s3, tmp_path) as opened:
        yield opened


@pytest.fixture
def bucket(ws: Workspace) -> str:
    name = ws.s3.make_bucket()
    for i in range(3):
        ws.put(name, f"data/part-{i}.csv", f"a,b\n{i},{i}\n".encode())
    ws.put(name, "data2/other.csv", b"not in data/")
    return name


def test_log_prefix_and_load_it_back(ws: Workspace, bucket: str) -> None:
    art = ws.artifact("table", metadata={"source": "unit"}, description="three parts")
    art.add_reference(f"s3://{bucket}/data/")
    art.save(project=PROJECT, aliases=["raw"])

    loaded = ws.api.artifact(f"{PROJECT}/table:raw")

    assert (loaded.version, loaded.type, loaded.name) == ("v0", "dataset", "table")
    assert sorted(loaded.aliases) == ["latest", "raw"]
    assert loaded.metadata == {"source": "unit"}
    assert loaded.description == "three parts"
    assert sorted(loaded.manifest.entries) == [f"part-{i}.csv" for i in range(3)]
    entry = loaded.manifest.entries["part-0.csv"]
    assert entry.ref == f"s3://{bucket}/data/part-0.csv"
    assert entry.version_id
    assert entry.etag == entry.digest
    assert entry.size == len(b"a,b\n0,0\n")


def test_name_places_references_under_a_folder(ws: Workspace, bucket: str) -> None:
    art = ws.artifact()
    art.add_reference(f"s3://{bucket}/data", name="inputs")
    art.add_reference(f"s3://{bucket}/data2/other.csv", name="extra.csv")

    assert sorted(art.manifest.entries) == [
        "extra.csv",
        "inputs/part-0.csv",
        "inputs/part-1.csv",
        "inputs/part-2.csv",
    ]


def test_identical_log_creates_no_version(ws: Workspace, bucket: str) -> None:
    first = ws.artifact()
    first.add_reference(f"s3://{bucket}/data/")
    first.save(project=PROJECT)
    again = ws.artifact()
    again.add_reference(f"s3://{bucket}/data/")
    again.save(project=PROJECT, aliases=["best"])

    assert again.version == "v0"
    assert again.created_new_version is False
    assert [a.version for a in ws.api.artifact_versions(f"{PROJECT}/data")] == ["v0"]
    assert "best" in ws.api.artifact(f"{PROJECT}/data:v0").aliases


def test_overwrite_makes_a_new_version_and_v0_keeps_its_pin(
    ws: Workspace, bucket: str
) -> None:
    v0 = ws.artifact()
    v0.add_reference(f"s3://{bucket}/data/")
    v0.save(project=PROJECT)
    ws.put(bucket, "data/part-1.csv", b"changed\n")
    v1 = ws.artifact()
    v1.add_reference(f"s3://{bucket}/data/")
    v1.save(project=PROJECT)

    old = ws.api.artifact(f"{PROJECT}/data:v0").manifest.entries["part-1.csv"]
    new = ws.api.artifact(f"{PROJECT}/data:latest").manifest.entries["part-1.csv"]
    assert v1.version == "v1"
    assert old.version_id != new.version_id
    assert old.etag != new.etag


def test_files_are_copied_and_fetched_back(
    ws: Workspace, bucket: str, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    (source / "conf").mkdir(parents=True)
    (source / "prepare.py").write_text("print('prepare')\n")
    (source / "conf" / "a.yaml").write_text("a: 1\n")
    art = ws.artifact("code", "code")
    art.add_dir(source)
    art.add_reference(f"s3://{bucket}/data/part-0.csv")
    art.save(project=PROJECT)
    (source / "prepare.py").write_text("changed after logging\n")

    folder = ws.api.artifact(f"{PROJECT}/code:v0").download(tmp_path / "out")

    assert files_under(folder) == {
        "conf/a.yaml": b"a: 1\n",
        "prepare.py": b"print('prepare')\n",
        "part-0.csv": b"a,b\n0,0\n",
    }


def test_a_file_changed_between_add_and_save_is_refused(
    ws: Workspace, tmp_path: Path
) -> None:
    source = tmp_path / "config.json"
    source.write_text("{}")
    art = ws.artifact()
    art.add_file(source)
    source.write_text('{"changed": true}')

    with pytest.raises(IntegrityError, match="changed after it was added"):
        art.save(project=PROJECT)


def test_checksum_false_records_the_uri_without_contacting_the_store(
    ws: Workspace,
) -> None:
    art = ws.artifact()
    art.add_reference("s3://no-such-bucket-anywhere/data.csv", checksum=False)

    entry = art.manifest.entries["data.csv"]
    assert entry.digest == entry.ref == "s3://no-such-bucket-anywhere/data.csv"
    assert entry.checksummed is False
    assert ws.context.providers.for_scheme("s3").requests.total() == 0


def test_missing_object_and_folder_is_an_error(ws: Workspace, bucket: str) -> None:
    with pytest.raises(ObjectNotFoundError):
        ws.artifact().add_reference(f"s3://{bucket}/nothing-here")


def test_logged_artifacts_are_immutable(ws: Workspace, bucket: str) -> None:
    art = ws.artifact()
    art.add_reference(f"s3://{bucket}/data/")
    art.save(project=PROJECT)

    with pytest.raises(ConflictError, match="cannot change"):
        art.add_reference(f"s3://{bucket}/data2/")


def test_a_key_that_climbs_out_is_refused_when_added(
    ws: Workspace, bucket: str
) -> None:
    ws.put(bucket, "evil/../../escape.txt", b"x")

    with pytest.raises(UnsafePathError):
        ws.artifact().add_reference(f"s3://{bucket}/evil/")


def test_save_needs_a_project(ws: Workspace, bucket: str) -> None:
    art = ws.artifact()
    art.add_reference(f"s3://{bucket}/data/")

    with pytest.raises(RefstoreError, match="REFSTORE_PROJECT"):
        art.save()


def test_unknown_alias_says_what_exists(ws: Workspace, bucket: str) -> None:
    art = ws.artifact()
    art.add_reference(f"s3://{bucket}/data/")
    art.save(project=PROJECT)

    with pytest.raises(NotFoundError, match="best"):
        ws.api.artifact(f"{PROJECT}/data:best")
