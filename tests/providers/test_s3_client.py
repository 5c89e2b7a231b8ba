"""How S3Provider builds its clients: the timestamp parser it installs.

The parser must agree with botocore's own on everything S3 sends; the
round-trip tests compare the times refstore reads with those a plain boto3
client reads from the same emulator (moto and LocalStack)."""

from __future__ import annotations

import datetime

import pytest
from botocore.utils import parse_timestamp as botocore_parse_timestamp

from refstore.providers.s3_client import parse_timestamp
from refstore.uri import ObjectRef
from tests.conftest import S3Env

UTC = datetime.UTC


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "Fri, 04 Dec 2026 11:33:04 GMT",
            datetime.datetime(2026, 12, 4, 11, 33, 4, tzinfo=UTC),
            id="http-date",
        ),
        pytest.param(
            "2026-12-04T11:33:04.000Z",
            datetime.datetime(2026, 12, 4, 11, 33, 4, tzinfo=UTC),
            id="iso-zulu-millis",
        ),
        pytest.param(
            "2026-12-04T11:33:04.123456Z",
            datetime.datetime(2026, 12, 4, 11, 33, 4, 123456, tzinfo=UTC),
            id="iso-zulu-micros",
        ),
        pytest.param(
            "2026-12-04T12:33:04+01:00",
            datetime.datetime(2026, 12, 4, 11, 33, 4, tzinfo=UTC),
            id="iso-offset",
        ),
    ],
)
def test_parses_what_s3_sends_as_botocore_does(
    text: str, expected: datetime.datetime
) -> None:
    parsed = parse_timestamp(text)

    assert parsed == expected
    assert parsed.utcoffset() == datetime.timedelta(0)
    assert parsed == botocore_parse_timestamp(text)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(1764848000, id="epoch-int"),
        pytest.param("1764848000", id="epoch-text"),
        pytest.param("2026-12-04T11:33:04", id="iso-without-zone"),
        pytest.param("Friday, 04-Dec-26 11:33:04 GMT", id="rfc850"),
    ],
)
def test_other_forms_are_left_to_botocore(value: object) -> None:
    assert parse_timestamp(value) == botocore_parse_timestamp(value)


def test_garbage_is_refused_as_botocore_refuses_it() -> None:
    with pytest.raises(ValueError, match="Invalid timestamp"):
        parse_timestamp("not a time")


def test_read_times_match_a_plain_boto3_client(s3: S3Env) -> None:
    bucket = s3.make_bucket()
    s3.put(bucket, "data/a.txt", b"a")
    ref = ObjectRef("s3", bucket, "data/a.txt")

    head = s3.client.head_object(Bucket=bucket, Key="data/a.txt")
    listed = s3.client.list_object_versions(Bucket=bucket, Prefix="data/")

    assert s3.provider.stat(ref).last_modified == head["LastModified"]
    [scanned] = s3.provider.scan(ObjectRef("s3", bucket, "data/"), versions=True)
    assert scanned.last_modified == listed["Versions"][0]["LastModified"]
