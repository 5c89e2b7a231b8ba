"""What is S3's own in S3Provider, against real emulators: every test using
``s3`` runs on moto and on LocalStack. The contract every provider shares
(pins, deletes, ranges, odd keys, missing objects and buckets, listing cost)
is tested in ``test_conformance.py``, on these emulators too.

Credentials and access-denied tests run on a moto server that checks
signatures and IAM policies (``moto_locked``); neither emulator checks
credentials by default."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import re
from pathlib import Path
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig

from refstore.errors import (
    AccessDeniedError,
    BucketNotFoundError,
    CredentialsError,
    EndpointError,
    IntegrityError,
    ObjectNotFoundError,
    VersionNotFoundError,
)
from refstore.manifest import ManifestEntry, ObjectInfo
from refstore.providers.base import Provider, Versioning
from refstore.providers.s3 import S3Provider
from refstore.uri import ObjectRef
from tests import emulators
from tests.conftest import LockedBucket, S3Env

MIB = 1024 * 1024


def s3_ref(bucket: str, key: str, version: str | None = None) -> ObjectRef:
    return ObjectRef("s3", bucket, key, version)


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def read_all(provider: Provider, info: ObjectInfo, **span: int) -> bytes:
    with provider.read(info, **span) as stream:
        return stream.read()


def upload_in_two_parts(env: S3Env, bucket: str, key: str) -> bytes:
    """A two-part multipart upload (5 MiB + 10 bytes); returns the bytes."""
    parts = [b"a" * (5 * MIB), b"b" * 10]
    upload = env.client.create_multipart_upload(Bucket=bucket, Key=key)
    done = []
    for number, body in enumerate(parts, start=1):
        answer = env.client.upload_part(
            Bucket=bucket,
            Key=key,
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=body,
        )
        done.append({"PartNumber": number, "ETag": answer["ETag"]})
    env.client.complete_multipart_upload(
        Bucket=bucket,
        Key=key,
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": done},
    )
    return b"".join(parts)


def closed_port_url() -> str:
    return f"http://127.0.0.1:{emulators.free_port()}"


# stat


def test_stat_describes_the_latest_version(s3: S3Env) -> None:
    bucket = s3.make_bucket()
    put = s3.put(bucket, "data/hello.txt", b"hello", ChecksumAlgorithm="SHA256")

    info = s3.provider.stat(s3_ref(bucket, "data/hello.txt"))

    assert info.etag == md5(b"hello")
    assert info.size == 5
    assert info.version_id == put["VersionId"]
    assert info.checksums["md5"] == md5(b"hello")
    sha256 = base64.b64encode(hashlib.sha256(b"hello").digest()).decode()
    assert info.checksums["sha256"] == sha256
    assert info.last_modified is not None
    assert info.last_modified.utcoffset() is not None
    assert info.last_modified.utcoffset().total_seconds() == 0
    assert s3.provider.requests.snapshot() == {"HeadObject": 1}


def test_stat_multipart_etag_is_kept_and_not_taken_for_md5(s3: S3Env) -> None:
    bucket = s3.make_bucket()
    upload_in_two_parts(s3, bucket, "big.bin")

    info = s3.provider.stat(s3_ref(bucket, "big.bin"))

    assert info.etag is not None
    assert re.fullmatch(r"[0-9a-f]{32}-2", info.etag)
    assert "md5" not in info.checksums
    assert ManifestEntry.from_info("big.bin", info).extra["etagIsMd5"] is False


def test_stat_skips_composite_checksums_of_multipart_uploads(s3: S3Env) -> None:
    # boto3's transfer manager sends CRC32 per part; the object's CRC32 is
    # then a checksum of checksums (moto even omits its -N suffix), which a
    # fetch could never match against the bytes.
    bucket = s3.make_bucket()
    data = io.BytesIO(b"c" * (5 * MIB + 10))
    transfer = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    s3.client.upload_fileobj(data, bucket, "parts.bin", Config=transfer)

    info = s3.provider.stat(s3_ref(bucket, "parts.bin"))

    assert info.etag is not None
    assert info.etag.endswith("-2")
    assert "crc32" not in info.checksums
    assert "md5" not in info.checksums


def test_stat_sse_kms_etag_is_not_an_md5(moto_s3: S3Env) -> None:
    # moto only: LocalStack 4.13.1 in host mode cannot create the KMS key
    # that an SSE-KMS upload needs.
    bucket = moto_s3.make_bucket()
    moto_s3.put(bucket, "secret.txt", b"hello", ServerSideEncryption="aws:kms")

    info = moto_s3.provider.stat(s3_ref(bucket, "secret.txt"))

    assert "md5" not in info.checksums
    assert info.extra == {"etagIsMd5": False}
    assert ManifestEntry.from_info("secret.txt", info).extra["etagIsMd5"] is False


def test_missing_keys_probe_their_bucket_once(s3: S3Env) -> None:
    # A HEAD 404 has no error code; one GetBucketVersioning tells a missing
    # key from a missing bucket, and is not repeated for the same bucket.
    bucket = s3.make_bucket()

    for key in ("one", "two"):
        with pytest.raises(ObjectNotFoundError):
            s3.provider.stat(s3_ref(bucket, key))

    assert s3.provider.requests.snapshot() == {
        "HeadObject": 2,
        "GetBucketVersioning": 1,
    }


def test_stat_deleted_object_but_pinned_version_remains(s3: S3Env) -> None:
    bucket = s3.make_bucket()
    first = s3.put(bucket, "gone.txt", b"was here")
    s3.client.delete_object(Bucket=bucket, Key="gone.txt")

    with pytest.raises(ObjectNotFoundError, match="deleted"):
        s3.provider.stat(s3_ref(bucket, "gone.txt"))
    info = s3.provider.stat(s3_ref(bucket, "gone.txt", first["VersionId"]))

    assert info.etag == md5(b"was here")


@pytest.mark.parametrize("pin", ["deleted-version", "delete-marker", "unknown-id"])
def test_stat_pinned_version_gone(s3: S3Env, pin: str) -> None:
    bucket = s3.make_bucket()
    first = s3.put(bucket, "k.txt", b"one")
    s3.put(bucket, "k.txt", b"two")
    marker = s3.client.delete_object(Bucket=bucket, Key="k.txt")
    s3.client.delete_object(Bucket=bucket, Key="k.txt", VersionId=first["VersionId"])
    versions = {
        "deleted-version": first["VersionId"],
        "delete-marker": marker["VersionId"],
        "unknown-id": "3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrH",
    }

    with pytest.raises(VersionNotFoundError, match="no longer exists"):
        s3.provider.stat(s3_ref(bucket, "k.txt", versions[pin]))


# versioning


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        pytest.param("Enabled", Versioning.ENABLED, id="enabled"),
        pytest.param("Suspended", Versioning.SUSPENDED, id="suspended"),
        pytest.param(None, Versioning.OFF, id="never-enabled"),
    ],
)
def test_versioning(s3: S3Env, status: str | None, expected: Versioning) -> None:
    bucket = s3.make_bucket(status)

    assert s3.provider.versioning(s3_ref(bucket, "")) is expected


def test_versioning_of_missing_bucket(s3: S3Env) -> None:
    with pytest.raises(BucketNotFoundError):
        s3.provider.versioning(s3_ref("refstore-no-such-bucket", ""))


# scan


def test_scan_lists_latest_objects_with_list_objects_v2(s3: S3Env) -> None:
    bucket = s3.make_bucket(None)
    s3.put(bucket, "data/a.txt", b"a")
    s3.put(bucket, "data/b.txt", b"bb")

    listed = list(s3.provider.scan(s3_ref(bucket, "data/")))

    assert [(i.ref.key, i.size, i.etag) for i in listed] == [
        ("data/a.txt", 1, md5(b"a")),
        ("data/b.txt", 2, md5(b"bb")),
    ]
    assert all(i.version_id is None and i.is_latest for i in listed)
    assert s3.provider.requests.snapshot() == {"ListObjectsV2": 1}


def test_scan_versions_yields_versions_and_delete_markers(s3: S3Env) -> None:
    bucket = s3.make_bucket()
    a1 = s3.put(bucket, "a", b"1")
    a2 = s3.put(bucket, "a", b"22")
    b1 = s3.put(bucket, "b", b"3")
    marker = s3.client.delete_object(Bucket=bucket, Key="b")

    listed = list(s3.provider.scan(s3_ref(bucket, ""), versions=True))

    seen = {(i.ref.key, i.version_id, i.is_latest, i.is_delete_marker) for i in listed}
    assert seen == {
        ("a", a2["VersionId"], True, False),
        ("a", a1["VersionId"], False, False),
        ("b", b1["VersionId"], False, False),
        ("b", marker["VersionId"], True, True),
    }
    assert s3.provider.requests.snapshot() == {"ListObjectVersions": 1}


def test_suspended_versioning_objects_have_no_version(s3: S3Env) -> None:
    # S3 calls them version "null"; refstore records no version (see s3.py).
    bucket = s3.make_bucket("Suspended")
    s3.put(bucket, "s.txt", b"suspended")

    stat = s3.provider.stat(s3_ref(bucket, "s.txt"))
    (listed,) = s3.provider.scan(s3_ref(bucket, ""), versions=True)

    assert stat.version_id is None
    assert listed.version_id is None
    assert listed.etag == stat.etag == md5(b"suspended")


# read


def test_read_without_version_refuses_changed_object(s3: S3Env) -> None:
    bucket = s3.make_bucket(None)
    s3.put(bucket, "k.txt", b"recorded")
    info = s3.provider.stat(s3_ref(bucket, "k.txt"))
    assert read_all(s3.provider, info) == b"recorded"
    s3.put(bucket, "k.txt", b"overwritten")

    with pytest.raises(IntegrityError, match="changed since it was recorded"):
        s3.provider.read(info)


def test_read_refuses_an_etag_the_version_does_not_have(s3: S3Env) -> None:
    bucket = s3.make_bucket()
    s3.put(bucket, "k.txt", b"bytes")
    info = s3.provider.stat(s3_ref(bucket, "k.txt"))
    wrong = ObjectInfo(ref=info.ref, size=info.size, etag=md5(b"other"))

    with pytest.raises(IntegrityError, match="not the recorded"):
        s3.provider.read(wrong)


@pytest.mark.parametrize(
    ("recorded", "asks"),
    [
        pytest.param(True, False, id="checksum-recorded"),
        pytest.param(False, True, id="nothing-recorded"),
    ],
)
def test_a_whole_read_asks_s3_for_its_checksum_only_when_none_is_recorded(
    s3: S3Env, recorded: bool, asks: bool
) -> None:
    # With a checksum recorded the fetch checks the bytes itself; without one
    # S3 sends the checksum it stores and botocore checks the body.
    bucket = s3.make_bucket()
    s3.put(bucket, "k.txt", b"bytes", ChecksumAlgorithm="CRC32")
    info = s3.provider.stat(s3_ref(bucket, "k.txt"))
    if not recorded:
        info = dataclasses.replace(info, checksums={})
    sent: list[Any] = []
    client = s3.provider._client(info.ref)
    # Observes the requests; a before-send handler returning None changes nothing.
    client.meta.events.register(
        "before-send.s3.GetObject", lambda request, **_: sent.append(request)
    )

    assert read_all(s3.provider, info) == b"bytes"
    assert read_all(s3.provider, info, start=1) == b"ytes"

    whole, ranged = (r.headers.get("x-amz-checksum-mode") for r in sent)
    assert whole == (b"ENABLED" if asks else None)
    assert ranged is None


@pytest.mark.parametrize("pin", ["deleted-version", "delete-marker"])
def test_read_pinned_version_gone(s3: S3Env, pin: str) -> None:
    # A delete-marker version answers 405 on AWS and LocalStack, 404 on moto.
    bucket = s3.make_bucket()
    first = s3.put(bucket, "k.txt", b"one")
    marker = s3.client.delete_object(Bucket=bucket, Key="k.txt")
    info = s3.provider.stat(s3_ref(bucket, "k.txt", first["VersionId"]))
    s3.client.delete_object(Bucket=bucket, Key="k.txt", VersionId=first["VersionId"])
    if pin == "delete-marker":
        info = ObjectInfo(ref=info.ref.with_version(marker["VersionId"]), size=0)

    with pytest.raises(VersionNotFoundError, match="no longer exists"):
        s3.provider.read(info)


# configuration, endpoints, credentials


def test_request_counter_counts_retries(s3: S3Env) -> None:
    settings = s3.settings.with_store(
        "s3", endpoint_url=closed_port_url(), max_attempts=2
    )
    provider = S3Provider(settings)

    with pytest.raises(EndpointError):
        provider.stat(s3_ref("any-bucket", "k"))
    provider.close()

    assert provider.requests.snapshot() == {"HeadObject": 2}


def test_unreachable_endpoint_names_it(s3: S3Env) -> None:
    url = closed_port_url()
    provider = S3Provider(
        s3.settings.with_store("s3", endpoint_url=url, max_attempts=1)
    )

    with pytest.raises(EndpointError) as caught:
        list(provider.scan(s3_ref("any-bucket", "data/")))
    provider.close()

    assert url in str(caught.value)
    assert "endpoint_url" in str(caught.value)


def test_options_are_per_bucket(s3: S3Env) -> None:
    bucket = s3.make_bucket()
    s3.put(bucket, "k.txt")
    elsewhere = "bucket-on-another-store"
    settings = s3.settings.with_store(
        f"s3://{elsewhere}", endpoint_url=closed_port_url(), max_attempts=1
    )
    provider = S3Provider(settings)

    info = provider.stat(s3_ref(bucket, "k.txt"))
    with pytest.raises(EndpointError):
        provider.stat(s3_ref(elsewhere, "k.txt"))
    provider.close()

    assert info.size == 4


def test_unknown_profile_is_a_credentials_error(s3: S3Env) -> None:
    provider = S3Provider(s3.settings.with_store("s3", profile="refstore-no-such"))

    with pytest.raises(CredentialsError, match="AWS_PROFILE"):
        provider.stat(s3_ref("any-bucket", "k"))


def test_no_credentials_at_all(s3: S3Env, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    bucket = s3.make_bucket()

    with pytest.raises(CredentialsError, match="no usable AWS credentials"):
        s3.provider.stat(s3_ref(bucket, "k"))


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda p, r: p.stat(r.child("data/a.txt")), id="stat"),
        pytest.param(lambda p, r: list(p.scan(r)), id="scan"),
        pytest.param(lambda p, r: p.versioning(r), id="versioning"),
        pytest.param(
            lambda p, r: p.read(ObjectInfo(ref=r.child("data/a.txt"), size=1)),
            id="read",
        ),
    ],
)
@pytest.mark.parametrize("who", ["unknown-key", "wrong-secret"])
def test_rejected_credentials(
    moto_locked: LockedBucket, tmp_path: Path, call: object, who: str
) -> None:
    key, secret = {
        "unknown-key": ("AKIAREFSTORENOSUCHKEY", "whatever"),
        "wrong-secret": (moto_locked.reader_key, "not-the-secret"),
    }[who]
    provider = S3Provider(moto_locked.settings(tmp_path, key, secret))
    folder = s3_ref(moto_locked.bucket, "data/")

    with pytest.raises(CredentialsError, match="rejected the credentials"):
        call(provider, folder)  # type: ignore[operator]
    provider.close()


def test_access_denied(moto_locked: LockedBucket, tmp_path: Path) -> None:
    settings = moto_locked.settings(
        tmp_path, moto_locked.reader_key, moto_locked.reader_secret
    )
    provider = S3Provider(settings)
    obj = s3_ref(moto_locked.bucket, "data/a.txt")

    with pytest.raises(AccessDeniedError, match="HeadObject"):
        provider.stat(obj)
    with pytest.raises(AccessDeniedError, match="GetObject"):
        provider.read(ObjectInfo(ref=obj, size=1))
    with pytest.raises(AccessDeniedError, match="ListObjectVersions"):
        list(provider.scan(obj.child("data/"), versions=True))
    listed = [info.ref.key for info in provider.scan(obj.child("data/"))]
    state = provider.versioning(obj)
    provider.close()

    assert listed == ["data/a.txt", "data/b.txt"]
    assert state is Versioning.UNKNOWN
