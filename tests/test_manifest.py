"""Manifests: entries, paths, the digest, W&B JSON and the storage form."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import itertools
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import zstandard

from refstore.errors import ManifestError, UnsafePathError
from refstore.manifest import (
    Manifest,
    ManifestEntry,
    ObjectInfo,
    check_entry_path,
    iter_json,
    read_stored,
    write_stored,
)
from refstore.uri import ObjectRef, parse_uri

MD5 = "9e107d9d372bb6826bd81d3542a419d6"
MULTIPART = "d41d8cd98f00b204e9800998ecf8427e-3"
SHA256 = "ab" * 32


def make_info(
    uri: str = "s3://b12/data/a.csv?versionId=v1",
    *,
    etag: str | None = MD5,
    size: int = 10,
    checksums: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> ObjectInfo:
    return ObjectInfo(
        ref=parse_uri(uri),
        size=size,
        etag=etag,
        checksums=checksums or {},
        extra=extra or {},
    )


def reference(path: str, version: str = "v1", **changes: Any) -> ManifestEntry:
    entry = ManifestEntry(
        path=path,
        digest=MD5,
        ref=f"s3://b12/{path}",
        size=10,
        extra={"etag": MD5, "versionID": version},
    )
    return dataclasses.replace(entry, **changes)


def sample_manifest() -> Manifest:
    return Manifest(
        [
            reference("data/a.csv"),
            reference("data/v1.2/b.tar.gz", extra={"etag": MULTIPART, "nested": {}}),
            ManifestEntry(path="prepare.py", digest=SHA256, size=120),
            ManifestEntry(path="données/é.txt", digest="s3://b12/x", ref="s3://b12/x"),
        ]
    )


def stored_bytes(entries: list[ManifestEntry]) -> bytes:
    buffer = io.BytesIO()
    write_stored(entries, buffer)
    return buffer.getvalue()


def zstd(data: bytes) -> bytes:
    return zstandard.ZstdCompressor().compress(data)


HEADER = b'{"format": "refstore-manifest", "version": 1}\n'
LINE_A = b'["a","d",null,1,{}]\n'
LINE_B = b'["b","d",null,2,{}]\n'


# ObjectInfo and ManifestEntry.from_info


def test_from_info_pins_object_version_and_etag() -> None:
    info = make_info()

    entry = ManifestEntry.from_info("data/a.csv", info)

    assert entry == ManifestEntry(
        path="data/a.csv",
        digest=MD5,
        ref="s3://b12/data/a.csv",
        size=10,
        extra={"etag": MD5, "versionID": "v1"},
    )
    assert entry.etag_is_md5
    assert entry.checksummed
    assert entry.object_ref() == info.ref


def test_from_info_multipart_etag_is_not_md5() -> None:
    entry = ManifestEntry.from_info("a", make_info(etag=MULTIPART))

    assert entry.digest == MULTIPART
    assert entry.extra["etagIsMd5"] is False
    assert not entry.etag_is_md5


def test_from_info_records_checksums_and_provider_extra() -> None:
    info = make_info(
        checksums={"sha256": SHA256, "crc32c": "yZRlqg=="},
        extra={"storageClass": "STANDARD"},
    )

    entry = ManifestEntry.from_info("a", info)

    assert entry.digest == MD5
    assert entry.extra == {
        "etag": MD5,
        "versionID": "v1",
        "crc32c": "yZRlqg==",
        "sha256": SHA256,
        "storageClass": "STANDARD",
    }


def test_from_info_unversioned_object() -> None:
    entry = ManifestEntry.from_info("a", make_info("gs://b12/a.csv"))

    assert "versionID" not in entry.extra
    assert entry.version_id is None
    assert entry.object_ref() == ObjectRef("gs", "b12", "a.csv")


def test_from_info_without_etag_uses_sha256_then_the_uri() -> None:
    with_sha = make_info(etag=None, checksums={"sha256": SHA256})
    bare = make_info("https://example.com/a.csv", etag=None)

    assert ManifestEntry.from_info("a", with_sha).digest == SHA256
    unchecked = ManifestEntry.from_info("a", bare)
    assert unchecked.digest == "https://example.com/a.csv"
    assert not unchecked.checksummed


@pytest.mark.parametrize(
    ("etag", "is_md5"),
    [
        pytest.param(MD5, True, id="md5"),
        pytest.param(MULTIPART, False, id="multipart"),
        pytest.param(MD5.upper(), False, id="uppercase-not-normalised"),
        pytest.param(MD5 + "\n", False, id="trailing-newline"),
        pytest.param("0x8D9A1B2C3D4E5F6", False, id="azure"),
        pytest.param(None, False, id="none"),
    ],
)
def test_etag_is_md5(etag: str | None, is_md5: bool) -> None:
    assert make_info(etag=etag).etag_is_md5 is is_md5
    entry = ManifestEntry(path="a", digest="d", extra={"etag": etag} if etag else {})
    assert entry.etag_is_md5 is is_md5


def test_object_ref_of_a_copied_file_is_an_error() -> None:
    with pytest.raises(ManifestError, match="copied file"):
        ManifestEntry(path="prepare.py", digest=SHA256).object_ref()


# ManifestEntry.to_dict / from_dict


@pytest.mark.parametrize(
    "entry",
    [
        pytest.param(reference("data/a.csv"), id="reference"),
        pytest.param(ManifestEntry("prepare.py", SHA256, size=3), id="copied-file"),
        pytest.param(ManifestEntry("a", "s3://b12/a", ref="s3://b12/a"), id="no-size"),
        pytest.param(
            reference("a", extra={"etag": MD5, "meta": {"a.b": {"c": [1, 2.5]}}}),
            id="nested-extra",
        ),
    ],
)
def test_entry_dict_round_trip(entry: ManifestEntry) -> None:
    assert ManifestEntry.from_dict(entry.path, entry.to_dict()) == entry


def test_entry_to_dict_leaves_out_what_is_absent() -> None:
    assert ManifestEntry("a", SHA256).to_dict() == {"digest": SHA256}


def test_entry_from_dict_copies_extra() -> None:
    data: dict[str, Any] = {"digest": MD5, "extra": {"etag": MD5}}

    entry = ManifestEntry.from_dict("a", data)
    data["extra"]["etag"] = "changed"

    assert entry.etag == MD5


def test_entry_from_dict_null_extra_is_empty() -> None:
    assert ManifestEntry.from_dict("a", {"digest": MD5, "extra": None}).extra == {}


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(["digest", MD5], id="not-an-object"),
        pytest.param({"size": 1}, id="no-digest"),
        pytest.param({"digest": None}, id="null-digest"),
        pytest.param({"digest": ""}, id="empty-digest"),
        pytest.param({"digest": 5}, id="number-digest"),
        pytest.param({"digest": MD5, "size": -1}, id="negative-size"),
        pytest.param({"digest": MD5, "size": "10"}, id="string-size"),
        pytest.param({"digest": MD5, "size": 1.5}, id="float-size"),
        pytest.param({"digest": MD5, "size": True}, id="boolean-size"),
        pytest.param({"digest": MD5, "ref": 5}, id="number-ref"),
        pytest.param({"digest": MD5, "ref": ""}, id="empty-ref"),
        pytest.param({"digest": MD5, "extra": []}, id="list-extra"),
        pytest.param({"digest": MD5, "extra": "x"}, id="string-extra"),
        pytest.param({"digest": MD5, "extra": 0}, id="zero-extra"),
    ],
)
def test_entry_from_dict_rejects_bad_entries(data: Any) -> None:
    with pytest.raises(ManifestError, match=re.escape("'data/a.csv'")):
        ManifestEntry.from_dict("data/a.csv", data)


# check_entry_path


@pytest.mark.parametrize(
    ("path", "safe"),
    [
        pytest.param("a.csv", "a.csv", id="file"),
        pytest.param("data/train/a.csv", "data/train/a.csv", id="nested"),
        pytest.param("data//a.csv", "data/a.csv", id="double-slash"),
        pytest.param("./data/./a.csv", "data/a.csv", id="dot-segments"),
        pytest.param("..a/b..", "..a/b..", id="dots-inside-names"),
        pytest.param("données/é.txt", "données/é.txt", id="unicode"),
        pytest.param("with space/a b", "with space/a b", id="spaces"),
    ],
)
def test_check_entry_path_accepts_relative_paths(path: str, safe: str) -> None:
    assert check_entry_path(path) == safe


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("", id="empty"),
        pytest.param(".", id="dot"),
        pytest.param("./", id="dot-slash"),
        pytest.param("/etc/passwd", id="absolute"),
        pytest.param("//server/share/x", id="unc-slashes"),
        pytest.param("\\\\server\\share\\x", id="unc-backslashes"),
        pytest.param("..", id="parent"),
        pytest.param("../x", id="parent-first"),
        pytest.param("a/../../x", id="parent-after-climb"),
        pytest.param("a/..", id="parent-last"),
        pytest.param("a\\b", id="backslash"),
        pytest.param("..\\x", id="backslash-parent"),
        pytest.param("C:", id="drive"),
        pytest.param("C:/Windows/x", id="drive-absolute"),
        pytest.param("c:x", id="drive-relative"),
        pytest.param("a\x00b", id="nul"),
    ],
)
def test_check_entry_path_rejects_unsafe_paths(path: str) -> None:
    with pytest.raises(UnsafePathError, match="destination folder"):
        check_entry_path(path)


def test_unsafe_path_error_is_a_manifest_error() -> None:
    with pytest.raises(ManifestError):
        check_entry_path("../x")


# Manifest.add and equality


def test_add_same_path_other_content_conflicts() -> None:
    manifest = Manifest([reference("a")])

    with pytest.raises(ManifestError, match="'a' is already in the manifest"):
        manifest.add(reference("a", version="v2"))


def test_constructor_detects_conflicts() -> None:
    with pytest.raises(ManifestError, match="already in the manifest"):
        Manifest([reference("a"), reference("a", size=11)])


def test_add_same_content_twice_is_one_entry() -> None:
    manifest = Manifest([reference("a")])

    manifest.add(reference("a", extra={"etag": MD5, "versionID": "v1", "x": 1}))

    assert len(manifest) == 1
    assert [entry.path for entry in manifest] == ["a"]


def test_manifest_size_and_equality() -> None:
    manifest = sample_manifest()

    assert manifest.total_size == 140
    assert manifest == sample_manifest()
    assert manifest != Manifest()
    assert [e.path for e in manifest.sorted_entries()] == sorted(manifest.entries)


# Manifest.digest


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"path": "data/z.csv"}, id="path"),
        pytest.param({"ref": "s3://b12/other.csv"}, id="ref"),
        pytest.param({"ref": None}, id="ref-removed"),
        pytest.param({"digest": MULTIPART}, id="digest"),
        pytest.param({"size": 11}, id="size"),
        pytest.param({"size": None}, id="size-removed"),
        pytest.param({"extra": {"etag": MD5, "versionID": "v2"}}, id="version"),
        pytest.param({"extra": {"etag": MD5}}, id="version-removed"),
    ],
)
def test_digest_covers_path_ref_digest_size_and_version(
    changes: dict[str, Any],
) -> None:
    others = [reference("data/b.csv"), ManifestEntry("code.py", SHA256, size=1)]
    before = Manifest([reference("data/a.csv"), *others])

    after = Manifest([dataclasses.replace(reference("data/a.csv"), **changes), *others])

    assert after.digest() != before.digest()


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"etag": MD5, "versionID": "v1", "x": 1}, id="key-added"),
        pytest.param({"etag": "other", "versionID": "v1"}, id="etag-copy-changed"),
        pytest.param({"versionID": "v1", "etagIsMd5": False}, id="flag-changed"),
        pytest.param({"versionID": "v1", "meta": {"a": [1]}}, id="nested-dict"),
    ],
)
def test_digest_ignores_other_extra_keys(extra: dict[str, Any]) -> None:
    before = Manifest([reference("a")])

    after = Manifest([reference("a", extra=extra)])

    assert after.digest() == before.digest()


def test_digest_does_not_depend_on_insertion_order() -> None:
    entries = sample_manifest().sorted_entries()

    assert Manifest(reversed(entries)).digest() == Manifest(entries).digest()


def test_digest_is_a_sha256_hex() -> None:
    assert re.fullmatch(r"[0-9a-f]{64}", Manifest().digest())
    assert Manifest().digest() != sample_manifest().digest()


# W&B-compatible JSON


def write_json_bytes(manifest: Manifest) -> bytes:
    text = io.StringIO()
    manifest.write_json(text)
    return text.getvalue().encode()


def test_json_export_import_round_trip() -> None:
    manifest = sample_manifest()

    data = write_json_bytes(manifest)

    assert Manifest.read_json(io.BytesIO(data)) == manifest
    assert json.loads(data) == manifest.to_dict()
    assert Manifest.from_dict(json.loads(data)) == manifest


def test_json_of_empty_manifest_round_trips() -> None:
    data = write_json_bytes(Manifest())

    assert Manifest.read_json(io.BytesIO(data)) == Manifest()


WANDB_MANIFEST = {
    "version": 1,
    "storagePolicy": "wandb-storage-policy-v1",
    "storagePolicyConfig": {
        "storageLayout": "V2",
        "nested": {"version": 7, "contents": {"not": "entries"}},
    },
    "contents": {
        "data/a.csv": {
            "digest": "1b2cf535f27731c974343645a3985328",
            "ref": "s3://b12/data/a.csv",
            "extra": {
                "etag": "1b2cf535f27731c974343645a3985328",
                "versionID": "Ilo8bS7QvaYFpTf3nNGrUaAQL6jtkc1M",
            },
            "size": 10,
        },
        "data/v1.2/model.tar.gz": {
            "digest": MULTIPART,
            "ref": "gs://b12/model.tar.gz",
            "birthArtifactID": "QXJ0aWZhY3Q6MTIz",
            "extra": {
                "etag": MULTIPART,
                "versionID": "1712345678901234",
                "meta": {"a.b": {"c": [1, 2.5, None, True]}},
            },
            "size": 2048,
        },
        "config.yaml": {"digest": "base64digest==", "size": 3},
    },
}


def test_import_wandb_manifest() -> None:
    data = json.dumps(WANDB_MANIFEST).encode()

    manifest = Manifest.read_json(io.BytesIO(data))

    assert sorted(manifest.entries) == [
        "config.yaml",
        "data/a.csv",
        "data/v1.2/model.tar.gz",
    ]
    a = manifest.entries["data/a.csv"]
    assert a.ref == "s3://b12/data/a.csv"
    assert a.size == 10
    assert a.version_id == "Ilo8bS7QvaYFpTf3nNGrUaAQL6jtkc1M"
    assert a.object_ref().version == "Ilo8bS7QvaYFpTf3nNGrUaAQL6jtkc1M"
    model = manifest.entries["data/v1.2/model.tar.gz"]
    assert model.extra["meta"] == {"a.b": {"c": [1, 2.5, None, True]}}
    assert not manifest.entries["config.yaml"].is_reference
    assert manifest == Manifest.from_dict(WANDB_MANIFEST)


def test_import_accepts_version_after_contents() -> None:
    data = b'{"contents": {"a": {"digest": "d"}}, "version": 1}'

    assert list(iter_json(io.BytesIO(data))) == [ManifestEntry("a", "d")]


BAD_JSON = [
    pytest.param(b"", "not valid JSON", id="empty"),
    pytest.param(b"not json", "not valid JSON", id="not-json"),
    pytest.param(b'{"version": 1, "contents": {', "not valid JSON", id="cut-short"),
    pytest.param(b'{"version": 1, "contents": {}} x', "not valid JSON", id="trailing"),
    pytest.param(b'{"version":1,"contents":{"\xff":{}}}', "not valid JSON", id="utf8"),
    pytest.param(b"[]", "no 'contents'", id="array"),
    pytest.param(b'{"version": 1}', "no 'contents'", id="no-contents"),
    pytest.param(
        b'{"version": 1, "contents": []}', "no 'contents'", id="list-contents"
    ),
    pytest.param(b'{"contents": {}}', "no 'version'", id="no-version"),
    pytest.param(b'{"version": 2, "contents": {}}', "version 2", id="newer-version"),
    pytest.param(
        b'{"version": "1", "contents": {}}', "version '1'", id="string-version"
    ),
    pytest.param(
        b'{"version": true, "contents": {}}', "version True", id="bool-version"
    ),
    pytest.param(
        b'{"version": 1, "contents": {"a": "d"}}', "must be a JSON object", id="entry"
    ),
    pytest.param(
        b'{"version": 1, "contents": {"a": {"size": 1}}}', "no digest", id="no-digest"
    ),
    pytest.param(
        b'{"version": 1, "contents": {"a": {"digest": "d", "size": -1}}}',
        "invalid size",
        id="negative-size",
    ),
    pytest.param(
        b'{"version":1,"contents":{"a":{"digest":"d"},"a":{"digest":"e"}}}',
        "already in the manifest",
        id="conflicting-duplicate-path",
    ),
]


@pytest.mark.parametrize(("data", "message"), BAD_JSON)
def test_import_rejects_bad_documents(data: bytes, message: str) -> None:
    with pytest.raises(ManifestError, match=re.escape(message)):
        Manifest.read_json(io.BytesIO(data))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param([], "JSON object", id="array"),
        pytest.param({"contents": {}}, "version None", id="no-version"),
        pytest.param({"version": True, "contents": {}}, "version True", id="bool"),
        pytest.param({"version": 1}, "no 'contents'", id="no-contents"),
        pytest.param({"version": 1, "contents": []}, "no 'contents'", id="list"),
    ],
)
def test_from_dict_rejects_bad_documents(data: Any, message: str) -> None:
    with pytest.raises(ManifestError, match=re.escape(message)):
        Manifest.from_dict(data)


class GeneratedDocument(io.RawIOBase):
    """A W&B document of ``count`` entries, generated as it is read."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.bytes_read = 0
        self._chunks = self._generate()
        self._pending = b""

    def _generate(self) -> Iterator[bytes]:
        yield b'{"version": 1, "storagePolicy": "wandb-storage-policy-v1", '
        yield b'"contents": {'
        for index in range(self.count):
            yield (b"," if index else b"") + self.entry(index)
        yield b"}}"

    @staticmethod
    def entry(index: int) -> bytes:
        path = f"data/{index:07d}.csv"
        body = {
            "digest": MD5,
            "ref": f"s3://b12/{path}",
            "size": index,
            "extra": {"etag": MD5, "versionID": f"v{index:07d}"},
        }
        return f"{json.dumps(path)}: {json.dumps(body)}".encode()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            self._pending = next(self._chunks, b"")
            if not self._pending:
                return 0
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        self.bytes_read += size
        return size


def test_iter_json_streams_entries_one_by_one() -> None:
    document = GeneratedDocument(200_000)
    total = 200_000 * len(GeneratedDocument.entry(100_000))

    entries = iter_json(io.BufferedReader(document))
    first = list(itertools.islice(entries, 3))

    assert [entry.path for entry in first] == [
        "data/0000000.csv",
        "data/0000001.csv",
        "data/0000002.csv",
    ]
    assert first[0].version_id == "v0000000"
    assert document.bytes_read < total // 100


def test_generated_document_is_a_valid_manifest() -> None:
    manifest = Manifest.read_json(io.BufferedReader(GeneratedDocument(50)))

    assert len(manifest) == 50
    assert manifest.entries["data/0000049.csv"].size == 49


# Storage form


def test_stored_round_trip_digest_matches_manifest() -> None:
    manifest = sample_manifest()
    buffer = io.BytesIO()

    digest, count = write_stored(manifest.sorted_entries(), buffer)
    buffer.seek(0)
    entries = list(read_stored(buffer))

    assert digest == manifest.digest()
    assert count == len(manifest)
    assert entries == manifest.sorted_entries()
    assert Manifest(entries) == manifest


def test_stored_empty_manifest_round_trips() -> None:
    buffer = io.BytesIO()

    digest, count = write_stored([], buffer)
    buffer.seek(0)

    assert (digest, count) == (Manifest().digest(), 0)
    assert list(read_stored(buffer)) == []


def test_stored_round_trip_of_many_entries() -> None:
    entries = [reference(f"data/{index:06d}.csv") for index in range(20_000)]
    buffer = io.BytesIO()

    digest, _ = write_stored(entries, buffer)
    buffer.seek(0)

    assert digest == Manifest(entries).digest()
    assert list(read_stored(buffer)) == entries


@pytest.mark.parametrize(
    "paths",
    [
        pytest.param(["b", "a"], id="reversed"),
        pytest.param(["a", "a"], id="duplicate"),
        pytest.param(["a", "c", "b"], id="late"),
    ],
)
def test_write_stored_rejects_entries_out_of_order(paths: list[str]) -> None:
    with pytest.raises(ManifestError, match="path order"):
        write_stored([ManifestEntry(p, "d") for p in paths], io.BytesIO())


def test_read_stored_rejects_entries_out_of_order() -> None:
    data = zstd(HEADER + LINE_B + LINE_A)

    with pytest.raises(ManifestError, match="path order"):
        list(read_stored(io.BytesIO(data)))


CORRUPT = [
    pytest.param(b"", "truncated", id="empty"),
    pytest.param(b"not zstd at all", "corrupt", id="not-zstd"),
    pytest.param(zstd(b""), "no header", id="no-header"),
    pytest.param(zstd(b"garbage\n"), "no header", id="garbage-header"),
    pytest.param(zstd(b'{"format": "other"}\n'), "not in refstore", id="other-format"),
    pytest.param(zstd(b"[1]\n"), "not in refstore", id="header-not-object"),
    pytest.param(
        zstd(b'{"format": "refstore-manifest", "version": 0}\n'),
        "version 0 is not supported",
        id="old-version",
    ),
    pytest.param(zstd(HEADER + b"not json\n"), "corrupt line", id="line-not-json"),
    pytest.param(zstd(HEADER + b"\xff\xfe\n"), "corrupt line", id="line-not-utf8"),
    pytest.param(zstd(HEADER + b"{}\n"), "corrupt line", id="line-object"),
    pytest.param(zstd(HEADER + b'["a","d"]\n'), "corrupt line", id="line-short"),
    pytest.param(zstd(HEADER + b'[1,"d",null,null,{}]\n'), "path", id="path-number"),
    pytest.param(zstd(HEADER + b'["a",null,null,1,{}]\n'), "digest", id="no-digest"),
    pytest.param(zstd(HEADER + b'["a","d",null,-1,{}]\n'), "size", id="bad-size"),
    pytest.param(zstd(HEADER + b'["a","d",null,1,[]]\n'), "extra", id="bad-extra"),
    pytest.param(zstd(HEADER + LINE_A[:-1]), "last line is cut", id="no-final-newline"),
    pytest.param(zstd(HEADER + LINE_A) + b"junk", "after its end", id="trailing-bytes"),
    pytest.param(zstd(HEADER + LINE_A)[:-3], "truncated", id="cut-short"),
]


@pytest.mark.parametrize(("data", "message"), CORRUPT)
def test_read_stored_rejects_corrupt_bytes(data: bytes, message: str) -> None:
    with pytest.raises(ManifestError, match=re.escape(message)):
        list(read_stored(io.BytesIO(data)))


def test_read_stored_rejects_a_cut_at_any_byte() -> None:
    data = stored_bytes(sample_manifest().sorted_entries())

    for cut in range(len(data)):
        with pytest.raises(ManifestError):
            list(read_stored(io.BytesIO(data[:cut])))


def test_read_stored_rejects_a_cut_at_a_line_boundary() -> None:
    # A frame flushed after the first entry decompresses to whole lines when
    # cut there: only the missing end of the frame shows it is incomplete.
    compressor = zstandard.ZstdCompressor().compressobj()
    head = compressor.compress(HEADER + LINE_A)
    head += compressor.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
    tail = compressor.compress(LINE_B) + compressor.flush()
    assert [e.path for e in read_stored(io.BytesIO(head + tail))] == ["a", "b"]

    with pytest.raises(ManifestError, match="truncated"):
        list(read_stored(io.BytesIO(head)))


def test_read_stored_newer_version_says_upgrade() -> None:
    data = zstd(b'{"format": "refstore-manifest", "version": 2}\n' + LINE_A)

    with pytest.raises(ManifestError, match="upgrade refstore"):
        list(read_stored(io.BytesIO(data)))


def test_read_stored_stops_early_without_reading_everything() -> None:
    entries = [
        ManifestEntry(f"{index:06d}", hashlib.sha256(b"%d" % index).hexdigest())
        for index in range(20_000)
    ]
    stream = io.BytesIO(stored_bytes(entries))

    reader = read_stored(stream)
    first = next(reader)

    assert first == entries[0]
    assert stream.tell() < len(stream.getvalue())
