"""Capture against real S3 emulators: every test using ``s3`` runs on moto and
on LocalStack. Request counts prove which listing call was used and that a
folder never costs one request per object."""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path
from typing import Any

import pytest

from refstore.capture import capture, iter_capture
from refstore.errors import (
    BucketNotFoundError,
    LimitExceededError,
    ObjectNotFoundError,
    VersionNotFoundError,
)
from refstore.manifest import ManifestEntry
from refstore.providers.s3 import S3Provider
from refstore.uri import ObjectRef, parse_uri
from tests import emulators
from tests.conftest import LockedBucket, S3Env, setup_client_for

BIG = 1200


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def paths(captured: list[tuple[str, Any]]) -> list[str]:
    return [path for path, _ in captured]


def fill(env: S3Env, bucket: str, keys: list[str]) -> None:
    emulators.put_objects(env.client, bucket, [(key, key.encode()) for key in keys])


# one object


def test_single_object(s3: S3Env) -> None:
    bucket = s3.make_bucket()
    put = s3.put(bucket, "data/file.csv", b"a,b\n")

    captured = capture(parse_uri(f"s3://{bucket}/data/file.csv"), s3.provider)

    ((path, info),) = captured
    assert path == "file.csv"
    assert (info.etag, info.size, info.version_id) == (
        md5(b"a,b\n"),
        4,
        put["VersionId"],
    )
    assert s3.provider.requests.snapshot() == {"HeadObject": 1}


def test_pinned_old_version_records_that_version(s3: S3Env) -> None:
    bucket = s3.make_bucket()
    first = s3.put(bucket, "model.bin", b"v1")
    s3.put(bucket, "model.bin", b"version two")
    ref = parse_uri(f"s3://{bucket}/model.bin?versionId={first['VersionId']}")

    ((path, info),) = capture(ref, s3.provider)
    entry = ManifestEntry.from_info(path, info)

    assert (info.etag, info.size) == (md5(b"v1"), 2)
    assert entry.extra["versionID"] == first["VersionId"]
    assert entry.ref == f"s3://{bucket}/model.bin"


def test_pinned_version_gone(s3: S3Env) -> None:
    bucket = s3.make_bucket()
    first = s3.put(bucket, "model.bin", b"v1")
    s3.put(bucket, "model.bin", b"v2")
    s3.client.delete_object(
        Bucket=bucket, Key="model.bin", VersionId=first["VersionId"]
    )
    ref = parse_uri(f"s3://{bucket}/model.bin?versionId={first['VersionId']}")

    with pytest.raises(VersionNotFoundError):
        capture(ref, s3.provider)


def test_object_wins_over_folder_of_the_same_name(s3: S3Env) -> None:
    bucket = s3.make_bucket()
    fill(s3, bucket, ["data", "data/inner.txt"])

    captured = capture(parse_uri(f"s3://{bucket}/data"), s3.provider)

    assert paths(captured) == ["data"]


# folders


def test_prefix(s3: S3Env) -> None:
    bucket = s3.make_bucket()
    fill(s3, bucket, ["data/a.csv", "data/sub/b.csv", "other/c.csv"])

    captured = capture(parse_uri(f"s3://{bucket}/data/"), s3.provider)

    assert paths(captured) == ["a.csv", "sub/b.csv"]
    by_path = dict(captured)
    assert by_path["sub/b.csv"].etag == md5(b"data/sub/b.csv")
    assert by_path["sub/b.csv"].ref.key == "data/sub/b.csv"
    assert all(info.version_id for _, info in captured)
    assert s3.provider.requests.snapshot() == {
        "GetBucketVersioning": 1,
        "ListObjectVersions": 1,
    }


@pytest.mark.parametrize(
    "written",
    [pytest.param("data", id="no-slash"), pytest.param("data/", id="slash")],
)
def test_sibling_prefix_is_not_captured(s3: S3Env, written: str) -> None:
    bucket = s3.make_bucket()
    fill(s3, bucket, ["data/a.csv", "data2/x.csv", "data.csv", "dataset/y.csv"])

    captured = capture(parse_uri(f"s3://{bucket}/{written}"), s3.provider)

    assert paths(captured) == ["a.csv"]


def test_whole_bucket(s3: S3Env) -> None:
    bucket = s3.make_bucket()
    fill(s3, bucket, ["top.txt", "data/a.csv"])

    captured = capture(parse_uri(f"s3://{bucket}/"), s3.provider)

    assert paths(captured) == ["data/a.csv", "top.txt"]


def test_overwritten_object_captures_latest_version(s3: S3Env) -> None:
    bucket = s3.make_bucket()
    s3.put(bucket, "data/k.txt", b"first")
    latest = s3.put(bucket, "data/k.txt", b"second and last")

    ((path, info),) = capture(parse_uri(f"s3://{bucket}/data/"), s3.provider)

    assert path == "k.txt"
    assert (info.version_id, info.etag, info.size) == (
        latest["VersionId"],
        md5(b"second and last"),
        15,
    )


def test_deleted_object_is_not_captured(s3: S3Env) -> None:
    bucket = s3.make_bucket()
    fill(s3, bucket, ["data/kept.txt", "data/deleted.txt"])
    s3.client.delete_object(Bucket=bucket, Key="data/deleted.txt")

    captured = capture(parse_uri(f"s3://{bucket}/data/"), s3.provider)

    assert paths(captured) == ["kept.txt"]


def test_folder_markers_skipped_and_empty_objects_kept(s3: S3Env) -> None:
    bucket = s3.make_bucket()
    for key, body in [
        ("data/", b""),
        ("data/sub/", b""),
        ("data/empty.txt", b""),
        ("data/sub/x", b"x"),
    ]:
        s3.put(bucket, key, body)

    captured = capture(parse_uri(f"s3://{bucket}/data/"), s3.provider)

    assert paths(captured) == ["empty.txt", "sub/x"]
    assert dict(captured)["empty.txt"].size == 0


def test_unicode_and_space_keys(s3: S3Env) -> None:
    bucket = s3.make_bucket()
    keys = ["données/été 2024.csv", "données/日本語/ファイル.bin", "données/a b+c.txt"]
    fill(s3, bucket, keys)

    captured = capture(parse_uri(f"s3://{bucket}/données"), s3.provider)

    assert sorted(paths(captured)) == [
        "a b+c.txt",
        "été 2024.csv",
        "日本語/ファイル.bin",
    ]


def test_multipart_object_keeps_its_etag(s3: S3Env) -> None:
    bucket = s3.make_bucket()
    parts = [b"p" * (5 * 1024 * 1024), b"q"]
    upload = s3.client.create_multipart_upload(Bucket=bucket, Key="data/big.bin")
    done = []
    for number, body in enumerate(parts, start=1):
        answer = s3.client.upload_part(
            Bucket=bucket,
            Key="data/big.bin",
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=body,
        )
        done.append({"PartNumber": number, "ETag": answer["ETag"]})
    s3.client.complete_multipart_upload(
        Bucket=bucket,
        Key="data/big.bin",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": done},
    )

    ((path, info),) = capture(parse_uri(f"s3://{bucket}/data/"), s3.provider)
    entry = ManifestEntry.from_info(path, info)

    assert info.etag is not None
    assert re.fullmatch(r"[0-9a-f]{32}-2", info.etag)
    assert "md5" not in info.checksums
    assert entry.extra["etagIsMd5"] is False


def test_neither_object_nor_folder(s3: S3Env) -> None:
    bucket = s3.make_bucket()
    s3.put(bucket, "data2/x")

    with pytest.raises(ObjectNotFoundError, match="neither an object"):
        capture(parse_uri(f"s3://{bucket}/data"), s3.provider)


@pytest.mark.parametrize(
    "key", [pytest.param("data/", id="prefix"), pytest.param("data", id="object")]
)
def test_missing_bucket(s3: S3Env, key: str) -> None:
    with pytest.raises(BucketNotFoundError, match="refstore-no-such-bucket"):
        capture(parse_uri(f"s3://refstore-no-such-bucket/{key}"), s3.provider)


# versioning states


def test_unversioned_bucket_uses_list_objects_v2(
    s3: S3Env, caplog: pytest.LogCaptureFixture
) -> None:
    bucket = s3.make_bucket(None)
    fill(s3, bucket, ["data/a", "data/b"])

    with caplog.at_level(logging.WARNING, logger="refstore.capture"):
        captured = capture(parse_uri(f"s3://{bucket}/data/"), s3.provider)

    assert paths(captured) == ["a", "b"]
    assert all(info.version_id is None for _, info in captured)
    assert s3.provider.requests.snapshot() == {
        "GetBucketVersioning": 1,
        "ListObjectsV2": 1,
    }
    assert "versioning is off" in caplog.text


def test_suspended_versioning(s3: S3Env, caplog: pytest.LogCaptureFixture) -> None:
    bucket = s3.make_bucket("Enabled")
    before = s3.put(bucket, "data/before.txt", b"versioned")
    s3.client.put_bucket_versioning(
        Bucket=bucket, VersioningConfiguration={"Status": "Suspended"}
    )
    s3.put(bucket, "data/during.txt", b"null version")

    with caplog.at_level(logging.WARNING, logger="refstore.capture"):
        captured = dict(capture(parse_uri(f"s3://{bucket}/data/"), s3.provider))

    assert captured["before.txt"].version_id == before["VersionId"]
    assert captured["during.txt"].version_id is None
    assert captured["during.txt"].etag == md5(b"null version")
    assert s3.provider.requests.snapshot()["ListObjectVersions"] == 1
    assert "versioning is suspended" in caplog.text


def test_unknown_versioning_falls_back_to_latest_listing(
    moto_locked: LockedBucket, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The reader may list objects, but neither read the versioning state nor
    # list versions: a policy that exists in the wild.
    settings = moto_locked.settings(
        tmp_path, moto_locked.reader_key, moto_locked.reader_secret
    )
    provider = S3Provider(settings)
    ref = ObjectRef("s3", moto_locked.bucket, "data/")

    with caplog.at_level(logging.WARNING, logger="refstore.capture"):
        captured = capture(ref, provider)
    provider.close()

    assert paths(captured) == ["a.txt", "b.txt"]
    assert all(info.version_id is None for _, info in captured)
    assert provider.requests.snapshot() == {
        "GetBucketVersioning": 1,
        "ListObjectVersions": 1,
        "ListObjectsV2": 1,
    }
    assert "cannot list object versions" in caplog.text


# size limits and pagination


@pytest.fixture(scope="module")
def big_bucket(s3_server: emulators.Emulator, _setup_clients: dict[str, Any]) -> str:
    """A versioned bucket with BIG objects under data/ (more than one page)."""
    client = setup_client_for(s3_server, _setup_clients)
    bucket = emulators.make_bucket(client, "Enabled", prefix="big")
    keys = [f"data/{index:05d}.txt" for index in range(BIG)]
    emulators.put_objects(client, bucket, [(key, b"x") for key in keys], workers=24)
    return bucket


def test_more_than_one_page(s3: S3Env, big_bucket: str) -> None:
    captured = capture(parse_uri(f"s3://{big_bucket}/data/"), s3.provider)

    assert len(captured) == BIG
    assert paths(captured)[0] == "00000.txt"
    assert paths(captured)[-1] == f"{BIG - 1:05d}.txt"
    assert s3.provider.requests.snapshot() == {
        "GetBucketVersioning": 1,
        "ListObjectVersions": 2,
    }


@pytest.mark.parametrize(
    ("limit", "fits"),
    [
        pytest.param(3, False, id="over-limit"),
        pytest.param(4, True, id="at-limit"),
    ],
)
def test_max_objects(s3: S3Env, limit: int, fits: bool) -> None:
    bucket = s3.make_bucket()
    fill(s3, bucket, [f"data/{n}" for n in range(4)])
    ref = parse_uri(f"s3://{bucket}/data")

    if fits:
        assert len(capture(ref, s3.provider, max_objects=limit)) == 4
        return
    message = rf"s3://{bucket}/data/ holds more than 3 objects; raise max_objects"
    with pytest.raises(LimitExceededError, match=message):
        capture(ref, s3.provider, max_objects=limit)


def test_iter_capture_is_lazy_and_logs_a_summary(
    s3: S3Env, caplog: pytest.LogCaptureFixture
) -> None:
    bucket = s3.make_bucket()
    fill(s3, bucket, ["data/a", "data/bb", "data/ccc"])
    entries = iter_capture(parse_uri(f"s3://{bucket}/data/"), s3.provider)

    assert s3.provider.requests.total() == 0
    with caplog.at_level(logging.INFO, logger="refstore.capture"):
        captured = list(entries)

    assert paths(captured) == ["a", "bb", "ccc"]
    (line,) = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    source = re.escape(f"s3://{bucket}/data/")
    pattern = rf"captured 3 objects \(21 bytes\) from {source} in 2 requests, \d+\.\d s"
    assert re.fullmatch(pattern, line)
