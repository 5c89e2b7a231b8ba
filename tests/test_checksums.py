"""Checksums: every algorithm and encoding the providers record."""

from __future__ import annotations

import base64
import hashlib
import zlib
from pathlib import Path

import pytest

from refstore import checksums
from refstore.checksums import Checks, crc32c, digests_of
from refstore.manifest import ManifestEntry

DATA = b"the quick brown fox jumps over the lazy dog" * 100


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def _entry(**extra: object) -> ManifestEntry:
    return ManifestEntry(
        path="a.bin", digest="d", ref="s3://b/a.bin", size=len(DATA), extra=extra
    )


def test_crc_check_values() -> None:
    # The published check values of the CRC catalogue, over "123456789".
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"56789", crc32c(b"1234")) == 0xE3069283
    python_crc32c = checksums._python_crc(0x82F63B78, 32)
    assert python_crc32c(0, b"123456789") == 0xE3069283
    python_crc64 = checksums._python_crc(0x9A6C9329AC4BC9B5, 64)
    assert python_crc64(0, b"123456789") == 0xAE8B14860A799888


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("md5", hashlib.md5(DATA).hexdigest(), id="md5-hex"),
        pytest.param("sha256", hashlib.sha256(DATA).hexdigest(), id="sha256-hex"),
        pytest.param("sha256", _b64(hashlib.sha256(DATA).digest()), id="sha256-s3"),
        pytest.param("sha1", _b64(hashlib.sha1(DATA).digest()), id="sha1-s3"),
        pytest.param("crc32", _b64(zlib.crc32(DATA).to_bytes(4, "big")), id="crc32"),
        pytest.param("crc32c", _b64(crc32c(DATA).to_bytes(4, "big")), id="crc32c"),
        pytest.param(
            "crc64nvme", _b64(digests_of(DATA, ["crc64nvme"])["crc64nvme"]), id="crc64"
        ),
    ],
)
def test_recorded_checksums_are_checked(tmp_path: Path, name: str, value: str) -> None:
    checks = Checks.for_entry(_entry(**{name: value}))
    good = tmp_path / "good"
    good.write_bytes(DATA)
    bad = tmp_path / "bad"
    bad.write_bytes(DATA[:-1] + b"!")

    assert set(checks.expected) == {name}
    assert checks.check_file(good) == []
    assert [p.split()[0] for p in checks.check_file(bad)] == [name]


def test_every_checksum_of_an_entry_is_checked(tmp_path: Path) -> None:
    entry = _entry(
        etag=hashlib.md5(DATA).hexdigest(),
        crc32c=_b64(crc32c(DATA).to_bytes(4, "big")),
        sha256=_b64(hashlib.sha256(b"other bytes").digest()),
    )
    path = tmp_path / "f"
    path.write_bytes(DATA)

    problems = Checks.for_entry(entry).check_file(path)

    assert set(Checks.for_entry(entry).expected) == {"md5", "crc32c", "sha256"}
    assert len(problems) == 1
    assert problems[0].startswith("sha256")


def test_an_etag_that_is_no_md5_is_not_checked_as_one() -> None:
    md5_shaped = hashlib.md5(b"not the bytes").hexdigest()

    kms = Checks.for_entry(_entry(etag=md5_shaped, etagIsMd5=False))
    multipart = Checks.for_entry(_entry(etag=f"{md5_shaped}-3"))

    assert not kms.has_checksum
    assert not multipart.has_checksum


def test_copied_files_are_checked_by_their_sha256() -> None:
    digest = hashlib.sha256(DATA).hexdigest()
    entry = ManifestEntry(path="a", digest=digest, size=len(DATA))

    assert Checks.for_entry(entry).expected == {"sha256": bytes.fromhex(digest)}


def test_undecodable_and_unknown_checksums_are_ignored() -> None:
    checks = Checks.for_entry(_entry(md5="zz", crc32c="%%%", xxhash64="AAAAAAAAAAA="))

    assert not checks.has_checksum


def test_slow_checksums_are_skipped_when_a_fast_one_covers_the_bytes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    slow = checksums._Algorithm(checksums._ALGORITHMS["crc64nvme"].new, 8, fast=False)
    monkeypatch.setitem(checksums._ALGORITHMS, "crc64nvme", slow)
    crc64 = _b64(digests_of(DATA, ["crc64nvme"])["crc64nvme"])

    alone = Checks.for_entry(_entry(crc64nvme=crc64))
    with_md5 = Checks.for_entry(
        _entry(crc64nvme=crc64, md5=hashlib.md5(DATA).hexdigest())
    )

    assert set(alone.expected) == {"crc64nvme"}
    assert set(with_md5.expected) == {"md5"}
