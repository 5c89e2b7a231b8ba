"""GcsProvider against fake-gcs-server, over real HTTP.

What the emulator cannot answer (access denied, rejected credentials,
requester pays, server errors, preconditions on reads) comes from a scripted
HTTP server that sends the JSON API's error bodies; the SDK and the provider
run unchanged against both. Emulator gaps are listed in ``store_gcs.py``.
"""

from __future__ import annotations

import base64
import concurrent.futures
import gzip
import hashlib
import http.server
import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import google_crc32c
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from refstore.capture import capture
from refstore.config import Settings
from refstore.errors import (
    AccessDeniedError,
    BucketNotFoundError,
    ConfigError,
    CredentialsError,
    EndpointError,
    IntegrityError,
    MissingDependencyError,
    ObjectNotFoundError,
    StoreError,
    VersionNotFoundError,
)
from refstore.manifest import ManifestEntry, ObjectInfo
from refstore.providers import Providers
from refstore.providers.base import (
    LifecycleProvider,
    LifecycleRule,
    Provider,
    Versioning,
)
from refstore.providers.gcs import GcsProvider
from refstore.uri import ObjectRef, parse_uri
from tests import emulators
from tests.providers.store_gcs import GcsStore, gcs_settings


def gs(bucket: str, key: str, version: str | None = None) -> ObjectRef:
    return ObjectRef("gs", bucket, key, version)


def md5_hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def crc32c_b64(data: bytes) -> str:
    return base64.b64encode(google_crc32c.value(data).to_bytes(4, "big")).decode()


def read_all(provider: Provider, info: ObjectInfo, **span: int) -> bytes:
    with provider.read(info, **span) as stream:
        return stream.read()


def closed_port_url() -> str:
    return f"http://127.0.0.1:{emulators.free_port()}"


# stat


def test_stat_describes_the_live_generation(gcs: GcsStore) -> None:
    bucket = gcs.make_bucket()
    blob = gcs.upload(bucket, "data/hello.txt", b"hello")

    info = gcs.provider.stat(gs(bucket, "data/hello.txt"))

    assert info.version_id == str(blob.generation)
    assert info.size == 5
    assert info.etag == blob.etag.strip('"')
    assert info.checksums == {"md5": md5_hex(b"hello"), "crc32c": crc32c_b64(b"hello")}
    assert info.extra == {"etagIsMd5": False, "metageneration": 1}
    assert info.is_latest
    assert info.last_modified is not None
    assert info.last_modified.utcoffset() is not None
    assert info.last_modified.utcoffset().total_seconds() == 0
    assert gcs.provider.requests.snapshot() == {"objects.get": 1}


def test_manifest_entry_pins_the_generation(gcs: GcsStore) -> None:
    bucket = gcs.make_bucket()
    pinned = gcs.put(bucket, "model.bin", b"weights")

    entry = ManifestEntry.from_info("model.bin", gcs.provider.stat(pinned))

    assert entry.ref == f"gs://{bucket}/model.bin"
    assert entry.version_id == pinned.version
    assert entry.extra["etagIsMd5"] is False
    assert entry.extra["md5"] == md5_hex(b"weights")
    assert entry.object_ref().uri == f"gs://{bucket}/model.bin#{pinned.version}"
    assert parse_uri(entry.object_ref().uri) == pinned


def test_stat_pinned_old_generation_after_overwrite(gcs: GcsStore) -> None:
    bucket = gcs.make_bucket()
    first = gcs.put(bucket, "model.bin", b"one")
    second = gcs.put(bucket, "model.bin", b"the second")

    old = gcs.provider.stat(first)
    live = gcs.provider.stat(gs(bucket, "model.bin"))

    assert (old.version_id, old.size, old.checksums["md5"]) == (
        first.version,
        3,
        md5_hex(b"one"),
    )
    assert (live.version_id, live.size) == (second.version, 10)
    assert old.etag != live.etag


def test_stat_composite_object(gcs: GcsStore) -> None:
    # fake-gcs-server computes an md5Hash for composed objects, which GCS
    # does not (see the next test); crc32c is the checksum both give.
    bucket = gcs.make_bucket()
    parts = [
        gcs.upload(bucket, "parts/a", b"first,"),
        gcs.upload(bucket, "parts/b", b"second"),
    ]
    composed = gcs.client.bucket(bucket).blob("whole.bin")
    composed.compose(parts)

    info = gcs.provider.stat(gs(bucket, "whole.bin"))

    assert info.size == len(b"first,second")
    assert info.checksums["crc32c"] == crc32c_b64(b"first,second")
    assert info.extra["etagIsMd5"] is False
    assert read_all(gcs.provider, info) == b"first,second"


def test_stat_missing_object_probes_its_bucket_once(gcs: GcsStore) -> None:
    # objects.get answers 404 alike for a missing bucket and a missing object;
    # one buckets.get tells them apart, and is not repeated for the bucket.
    bucket = gcs.make_bucket()

    for key in ("one", "two"):
        with pytest.raises(ObjectNotFoundError, match="no object at") as caught:
            gcs.provider.stat(gs(bucket, key))
        assert not isinstance(caught.value, VersionNotFoundError)

    assert gcs.provider.requests.snapshot() == {"objects.get": 2, "buckets.get": 1}


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda p, r: p.stat(r.child("k.txt")), id="stat"),
        pytest.param(lambda p, r: p.stat(r.child("k.txt", "12345")), id="stat-pinned"),
        pytest.param(lambda p, r: list(p.scan(r)), id="scan"),
        pytest.param(lambda p, r: list(p.scan(r, versions=True)), id="scan-versions"),
        pytest.param(lambda p, r: p.versioning(r), id="versioning"),
        pytest.param(
            lambda p, r: p.read(ObjectInfo(ref=r.child("k.txt", "12345"), size=1)),
            id="read",
        ),
    ],
)
def test_missing_bucket(
    gcs: GcsStore, call: Callable[[Provider, ObjectRef], Any]
) -> None:
    folder = gs(gcs.missing_bucket(), "")

    with pytest.raises(BucketNotFoundError, match="does not exist"):
        call(gcs.provider, folder)


@pytest.mark.parametrize(
    "case", ["overwritten", "deleted", "never-existed", "not-a-number"]
)
def test_pinned_generation_gone(gcs: GcsStore, case: str) -> None:
    # Without bucket versioning an overwrite or a delete removes the old
    # generation for good, on GCS as on the emulator.
    bucket = gcs.make_bucket(versioning=False)
    first = gcs.put(bucket, "k.txt", b"one")
    if case == "overwritten":
        gcs.put(bucket, "k.txt", b"two")
    if case == "deleted":
        gcs.delete(bucket, "k.txt")
    pins = {"never-existed": "12345", "not-a-number": "v1"}
    ref = first.with_version(pins.get(case, first.version))

    with pytest.raises(VersionNotFoundError, match="generation"):
        gcs.provider.stat(ref)
    with pytest.raises(VersionNotFoundError):
        gcs.provider.read(ObjectInfo(ref=ref, size=3))


def test_deleted_object_of_a_versioned_bucket_is_read_by_its_generation(
    gcs: GcsStore,
) -> None:
    bucket = gcs.make_bucket()
    first = gcs.put(bucket, "gone.txt", b"was here")
    gcs.delete(bucket, "gone.txt")

    with pytest.raises(ObjectNotFoundError, match="#GENERATION"):
        gcs.provider.stat(gs(bucket, "gone.txt"))
    info = gcs.provider.stat(first)

    assert not info.is_latest
    assert read_all(gcs.provider, info) == b"was here"


def test_a_store_that_ignores_the_generation_pin_is_refused(gcs: GcsStore) -> None:
    # fake-gcs-server reads generation 0 as "no generation" and answers with
    # the live object; that must never pass for the pinned one.
    bucket = gcs.make_bucket()
    gcs.put(bucket, "k.txt", b"live")
    pinned = gs(bucket, "k.txt", "0")

    with pytest.raises(IntegrityError, match="not the pinned 0"):
        gcs.provider.stat(pinned)
    with pytest.raises(IntegrityError, match="not the pinned 0"):
        gcs.provider.read(ObjectInfo(ref=pinned, size=4))


# versioning


@pytest.mark.parametrize(
    ("versioning", "expected"),
    [(True, Versioning.ENABLED), (False, Versioning.OFF)],
    ids=["enabled", "off"],
)
def test_versioning(gcs: GcsStore, versioning: bool, expected: Versioning) -> None:
    bucket = gcs.make_bucket(versioning=versioning)

    assert gcs.provider.versioning(gs(bucket, "")) is expected
    assert gcs.provider.requests.snapshot() == {"buckets.get": 1}


# scan


def test_scan_lists_live_objects_in_one_request(gcs: GcsStore) -> None:
    bucket = gcs.make_bucket()
    a = gcs.put(bucket, "data/a.txt", b"a")
    b = gcs.put(bucket, "data/b.txt", b"bb")
    gcs.put(bucket, "data2/c.txt", b"ccc")

    listed = list(gcs.provider.scan(gs(bucket, "data/")))

    assert [(i.ref, i.size, i.checksums["md5"]) for i in listed] == [
        (a, 1, md5_hex(b"a")),
        (b, 2, md5_hex(b"bb")),
    ]
    assert all(i.is_latest and i.extra["etagIsMd5"] is False for i in listed)
    assert gcs.provider.requests.snapshot() == {"objects.list": 1}


def test_scan_versions_lists_noncurrent_generations(gcs: GcsStore) -> None:
    # GCS marks noncurrent generations with timeDeleted; a deleted name has
    # no live generation left (GCS has no delete markers).
    bucket = gcs.make_bucket()
    a1 = gcs.put(bucket, "a", b"1")
    a2 = gcs.put(bucket, "a", b"22")
    b1 = gcs.put(bucket, "b", b"3")
    gcs.delete(bucket, "b")

    listed = list(gcs.provider.scan(gs(bucket, ""), versions=True))

    seen = {(i.ref, i.is_latest, i.is_delete_marker) for i in listed}
    assert seen == {(a2, True, False), (a1, False, False), (b1, False, False)}
    assert gcs.provider.requests.snapshot() == {"objects.list": 1}


def test_emulator_quirk_sdk_versions_flag_lists_live_objects_only(
    gcs: GcsStore,
) -> None:
    # Why scan sends versions=true itself: the SDK spells the flag "True",
    # which GCS accepts and fake-gcs-server reads as false.
    bucket = gcs.make_bucket()
    gcs.put(bucket, "a", b"1")
    gcs.put(bucket, "a", b"22")

    by_sdk = list(gcs.client.list_blobs(bucket, versions=True))
    by_provider = list(gcs.provider.scan(gs(bucket, ""), versions=True))

    assert len(by_sdk) == 1
    assert len(by_provider) == 2


def test_scan_is_lazy(gcs: GcsStore) -> None:
    bucket = gcs.make_bucket()
    gcs.put(bucket, "a")

    listing = gcs.provider.scan(gs(bucket, ""), versions=True)
    before = gcs.provider.requests.total()
    first = next(listing)

    assert before == 0
    assert first.ref.key == "a"
    assert gcs.provider.requests.total() == 1


def test_capturing_1200_objects_costs_pages_not_objects(gcs: GcsStore) -> None:
    bucket = gcs.make_bucket()
    gcs.put_many(bucket, {f"data/{n:05d}.bin": b"x" for n in range(1200)})
    gcs.put(bucket, "data2/not-in-the-folder", b"y")

    captured = capture(gs(bucket, "data/"), gcs.provider)

    assert len(captured) == 1200
    assert captured[0][0] == "00000.bin"
    assert all(info.version_id is not None for _, info in captured)
    # one buckets.get (versioning), then pages of 1000 objects
    assert gcs.provider.requests.snapshot() == {"buckets.get": 1, "objects.list": 2}


def test_scan_versions_yields_each_generation_once_across_pages(
    gcs: GcsStore,
) -> None:
    # fake-gcs-server starts the next page at the name the last one ended on:
    # here "b", whose first generation closes page one.
    bucket = gcs.make_bucket()
    gcs.put_many(bucket, {f"a{n:04d}": b"x" for n in range(999)})
    b1 = gcs.put(bucket, "b", b"1")
    b2 = gcs.put(bucket, "b", b"2")

    listed = [i.ref for i in gcs.provider.scan(gs(bucket, ""), versions=True)]

    assert len(listed) == len(set(listed)) == 1001
    assert {b1, b2} <= set(listed)
    assert gcs.provider.requests.snapshot() == {"objects.list": 2}


def test_capture_leaves_out_deleted_objects_and_old_generations(gcs: GcsStore) -> None:
    bucket = gcs.make_bucket()
    gcs.put(bucket, "data/kept", b"old")
    kept = gcs.put(bucket, "data/kept", b"new")
    gcs.put(bucket, "data/deleted", b"gone")
    gcs.delete(bucket, "data/deleted")

    captured = capture(gs(bucket, "data"), gcs.provider)

    assert [(path, info.ref) for path, info in captured] == [("kept", kept)]


# read


def test_read_old_generation_after_overwrite(gcs: GcsStore) -> None:
    bucket = gcs.make_bucket()
    first = gcs.put(bucket, "k.txt", b"old bytes")
    gcs.put(bucket, "k.txt", b"new bytes, longer")

    info = gcs.provider.stat(first)

    assert read_all(gcs.provider, info) == b"old bytes"
    assert gcs.provider.requests.snapshot() == {"objects.get": 2}


@pytest.mark.parametrize(
    ("span", "expected"),
    [
        pytest.param({"start": 1, "end": 4}, b"123", id="start-end"),
        pytest.param({"start": 7}, b"789", id="start-only"),
        pytest.param({"end": 2}, b"01", id="end-only"),
        pytest.param({"start": 3, "end": 3}, b"", id="empty"),
        pytest.param({"start": 8, "end": 50}, b"89", id="end-past-the-end"),
        pytest.param({"start": 10}, b"", id="start-at-the-end"),
    ],
)
def test_read_range(gcs: GcsStore, span: dict[str, int], expected: bytes) -> None:
    bucket = gcs.make_bucket()
    digits = gcs.put(bucket, "digits", b"0123456789")
    info = gcs.provider.stat(digits)

    assert read_all(gcs.provider, info, **span) == expected


def test_read_zero_byte_object(gcs: GcsStore) -> None:
    bucket = gcs.make_bucket()
    info = gcs.provider.stat(gcs.put(bucket, "empty", b""))

    assert info.size == 0
    assert info.checksums["md5"] == md5_hex(b"")
    assert read_all(gcs.provider, info) == b""


def test_read_streams_large_objects(gcs: GcsStore) -> None:
    bucket = gcs.make_bucket()
    body = bytes(range(256)) * 8192  # 2 MiB
    info = gcs.provider.stat(gcs.put(bucket, "big.bin", body))

    with gcs.provider.read(info) as stream:
        chunks = iter(lambda: stream.read(64 * 1024), b"")
        digest = hashlib.md5()
        for chunk in chunks:
            digest.update(chunk)

    assert digest.hexdigest() == info.checksums["md5"]


def test_read_gives_the_stored_bytes_of_gzip_encoded_objects(gcs: GcsStore) -> None:
    # GCS (and the SDK's default download) would decompress them; the recorded
    # size and checksums describe the stored, compressed bytes.
    bucket = gcs.make_bucket()
    stored = gzip.compress(b"hello " * 1000)
    blob = gcs.client.bucket(bucket).blob("logs.txt")
    blob.content_encoding = "gzip"
    blob.upload_from_string(stored, content_type="text/plain")

    info = gcs.provider.stat(gs(bucket, "logs.txt"))
    body = read_all(gcs.provider, info)

    assert body == stored
    assert info.size == len(stored)
    assert info.checksums["md5"] == md5_hex(stored)


def test_read_without_generation_refuses_changed_object(gcs: GcsStore) -> None:
    # fake-gcs-server ignores If-Match on reads; the provider compares the
    # ETag it is served as well.
    bucket = gcs.make_bucket()
    recorded = gcs.provider.stat(gcs.put(bucket, "k.txt", b"recorded"))
    unpinned = ObjectInfo(
        ref=recorded.ref.with_version(None), size=recorded.size, etag=recorded.etag
    )
    assert read_all(gcs.provider, unpinned) == b"recorded"
    gcs.put(bucket, "k.txt", b"overwritten")

    with pytest.raises(IntegrityError, match="changed since it was recorded"):
        gcs.provider.read(unpinned)


def test_concurrent_stats_and_reads(gcs: GcsStore) -> None:
    bucket = gcs.make_bucket()
    bodies = {f"f{n:02d}": f"body {n}".encode() * 100 for n in range(40)}
    gcs.put_many(bucket, bodies)
    provider = gcs.provider

    def stat_and_read(key: str) -> tuple[str, bytes]:
        return key, read_all(provider, provider.stat(gs(bucket, key)))

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        read = dict(pool.map(stat_and_read, bodies))

    assert read == bodies
    # 40 metadata and 40 media GETs
    assert provider.requests.snapshot() == {"objects.get": 80}


# configuration and the standard environment


def test_storage_emulator_host_works_unchanged(
    gcs: GcsStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = gcs.make_bucket()
    pinned = gcs.put(bucket, "k.txt", b"from the env")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.endpoint_url)
    provider = GcsProvider(Settings(home=tmp_path))

    info = provider.stat(pinned)
    body = read_all(provider, info)
    provider.close()

    assert body == b"from the env"


def test_options_are_per_bucket(gcs: GcsStore) -> None:
    bucket = gcs.make_bucket()
    pinned = gcs.put(bucket, "k.txt")
    elsewhere = "bucket-on-another-store"
    settings = gcs.settings.with_store(
        f"gs://{elsewhere}", endpoint_url=closed_port_url(), retry_timeout=0
    )
    provider = GcsProvider(settings)

    info = provider.stat(pinned)
    with pytest.raises(EndpointError):
        provider.stat(gs(elsewhere, "k.txt"))
    provider.close()

    assert info.size == 4


def test_close_keeps_the_provider_usable(gcs: GcsStore) -> None:
    bucket = gcs.make_bucket()
    pinned = gcs.put(bucket, "k.txt")

    gcs.provider.stat(pinned)
    gcs.provider.close()

    assert gcs.provider.stat(pinned).size == 4


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"anonymous": "yes"}, id="anonymous-not-a-bool"),
        pytest.param({"retry_timeout": -1}, id="negative-retry-timeout"),
        pytest.param({"retry_timeout": "soon"}, id="retry-timeout-not-a-number"),
    ],
)
def test_bad_options_are_config_errors(
    gcs: GcsStore, tmp_path: Path, options: dict[str, Any]
) -> None:
    provider = GcsProvider(gcs_settings(tmp_path, gcs.endpoint_url, **options))

    with pytest.raises(ConfigError, match="refstore config"):
        provider.stat(gs("any-bucket", "k"))


def test_unknown_options_are_logged(
    gcs: GcsStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bucket = gcs.make_bucket()
    pinned = gcs.put(bucket, "k.txt")
    provider = GcsProvider(gcs_settings(tmp_path, gcs.endpoint_url, region="eu"))

    with caplog.at_level(logging.WARNING, logger="refstore.providers.gcs"):
        provider.stat(pinned)
    provider.close()

    assert "ignoring unknown GCS options" in caplog.text
    assert "region" in caplog.text


# credentials


def test_no_credentials_at_all(tmp_path: Path) -> None:
    # No anonymous option, no emulator variable, no key file, no gcloud
    # login (store_gcs isolates the environment): google-auth finds nothing.
    provider = GcsProvider(Settings(home=tmp_path))

    with pytest.raises(CredentialsError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        provider.stat(gs("any-bucket", "k"))


def test_missing_credentials_file(tmp_path: Path) -> None:
    settings = Settings(
        home=tmp_path,
        stores={"gs": {"credentials_file": str(tmp_path / "no-such-key.json")}},
    )
    provider = GcsProvider(settings)

    with pytest.raises(CredentialsError, match="credentials_file"):
        list(provider.scan(gs("any-bucket", "data/")))


def test_credentials_file_of_another_kind_is_refused(tmp_path: Path) -> None:
    key_file = tmp_path / "federation.json"
    key_file.write_text(json.dumps({"type": "external_account"}), encoding="utf-8")
    settings = Settings(
        home=tmp_path, stores={"gs": {"credentials_file": str(key_file)}}
    )

    with pytest.raises(ConfigError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        GcsProvider(settings).stat(gs("any-bucket", "k"))


# errors from a scripted server: what fake-gcs-server never answers


def error_payload(status: int, message: str, reason: str) -> dict[str, Any]:
    """A JSON API error body, as GCS sends it."""
    error = {"message": message, "domain": "global", "reason": reason}
    return {"error": {"code": status, "message": message, "errors": [error]}}


class ScriptedGcs:
    """A real HTTP server that answers every JSON API GET with one answer.

    POSTs get an OAuth token, so that service-account credentials whose
    ``token_uri`` points here can sign requests.
    """

    def __init__(self, status: int, payload: dict[str, Any]) -> None:
        self.status = status
        self.body = json.dumps(payload).encode()
        self.paths: list[str] = []
        self._server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), self._handler()
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        scripted = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                scripted.paths.append(self.path)
                self._answer(scripted.status, scripted.body)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                self.rfile.read(length)
                token = {
                    "access_token": "t",
                    "expires_in": 3600,
                    "token_type": "Bearer",
                }
                self._answer(200, json.dumps(token).encode())

            def _answer(self, status: int, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def scripted() -> Iterator[Callable[..., ScriptedGcs]]:
    servers: list[ScriptedGcs] = []

    def start(
        status: int,
        message: str = "scripted",
        reason: str = "x",
        payload: dict[str, Any] | None = None,
    ) -> ScriptedGcs:
        server = ScriptedGcs(status, payload or error_payload(status, message, reason))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def scripted_provider(server: ScriptedGcs, home: Path, **options: Any) -> GcsProvider:
    options.setdefault("retry_timeout", 0)
    return GcsProvider(gcs_settings(home, server.url, **options))


ACCESS_CALLS = [
    pytest.param(lambda p, r: p.stat(r.child("data/a.txt", "1")), id="stat"),
    pytest.param(lambda p, r: list(p.scan(r, versions=True)), id="scan"),
    pytest.param(
        lambda p, r: p.read(ObjectInfo(ref=r.child("data/a.txt", "1"), size=1)),
        id="read",
    ),
]


@pytest.mark.parametrize("call", ACCESS_CALLS)
def test_access_denied(
    scripted: Callable[..., ScriptedGcs], tmp_path: Path, call: Callable[..., Any]
) -> None:
    message = (
        "reader@p.iam.gserviceaccount.com does not have storage.objects.get access"
    )
    provider = scripted_provider(scripted(403, message, "forbidden"), tmp_path)

    with pytest.raises(
        AccessDeniedError, match=r"roles/storage\.objectViewer"
    ) as caught:
        call(provider, gs("locked", "data/"))
    provider.close()

    assert "does not have storage.objects.get access" in str(caught.value)


def test_versioning_of_a_bucket_the_credentials_may_not_read(
    scripted: Callable[..., ScriptedGcs], tmp_path: Path
) -> None:
    provider = scripted_provider(scripted(403, "no storage.buckets.get"), tmp_path)

    state = provider.versioning(gs("locked", ""))
    provider.close()

    assert state is Versioning.UNKNOWN


def service_account_file(path: Path, token_uri: str) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    info = {
        "type": "service_account",
        "project_id": "refstore-test",
        "private_key_id": "1",
        "private_key": pem.decode(),
        "client_email": "reader@refstore-test.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": token_uri,
    }
    path.write_text(json.dumps(info), encoding="utf-8")
    return path


def test_rejected_credentials(
    scripted: Callable[..., ScriptedGcs], tmp_path: Path
) -> None:
    server = scripted(401, "Invalid Credentials", "authError")
    key_file = service_account_file(tmp_path / "key.json", f"{server.url}/token")
    settings = Settings(
        home=tmp_path,
        stores={
            "gs": {
                "endpoint_url": server.url,
                "credentials_file": str(key_file),
                "retry_timeout": 0,
            }
        },
    )
    provider = GcsProvider(settings)

    with pytest.raises(CredentialsError, match="rejected the credentials") as caught:
        provider.stat(gs("locked", "k.txt"))
    provider.close()

    assert "Invalid Credentials" in str(caught.value)
    # google-auth refreshes the token and sends the request again; every
    # attempt is counted.
    assert provider.requests.snapshot()["objects.get"] == len(server.paths) >= 2


def test_precondition_failed_is_an_integrity_error(
    scripted: Callable[..., ScriptedGcs], tmp_path: Path
) -> None:
    server = scripted(412, "Precondition Failed", "conditionNotMet")
    provider = scripted_provider(server, tmp_path)
    unpinned = ObjectInfo(ref=gs("b-1", "k.txt"), size=1, etag="CJ+yp9q5kPYCEAE=")

    with pytest.raises(IntegrityError, match="changed since it was recorded"):
        provider.read(unpinned)
    provider.close()


def test_requester_pays_bucket_asks_for_user_project(
    scripted: Callable[..., ScriptedGcs], tmp_path: Path
) -> None:
    message = "Bucket is a requester pays bucket but no user project provided."
    provider = scripted_provider(scripted(400, message, "required"), tmp_path)

    with pytest.raises(StoreError, match="set user_project"):
        list(provider.scan(gs("paid", "")))
    provider.close()


def test_server_errors_are_retried_for_a_bounded_time(
    scripted: Callable[..., ScriptedGcs], tmp_path: Path
) -> None:
    server = scripted(503, "Backend Error", "backendError")
    provider = scripted_provider(server, tmp_path, retry_timeout=1.5)

    started = time.monotonic()
    with pytest.raises(StoreError, match="503") as caught:
        provider.stat(gs("b-1", "k.txt", "1"))
    elapsed = time.monotonic() - started
    provider.close()

    assert "try again later" in str(caught.value)
    assert elapsed < 10
    assert provider.requests.snapshot()["objects.get"] == len(server.paths) >= 2


def test_retry_timeout_zero_sends_one_request(
    scripted: Callable[..., ScriptedGcs], tmp_path: Path
) -> None:
    server = scripted(500, "Internal Error", "backendError")
    provider = scripted_provider(server, tmp_path, retry_timeout=0)

    with pytest.raises(StoreError, match="500"):
        provider.read(ObjectInfo(ref=gs("b-1", "k.txt", "1"), size=1))
    provider.close()

    assert provider.requests.snapshot() == {"objects.get": 1}


def test_unreachable_endpoint_names_it_and_counts_retries(tmp_path: Path) -> None:
    url = closed_port_url()
    provider = GcsProvider(gcs_settings(tmp_path, url, retry_timeout=1.5))

    with pytest.raises(EndpointError, match="endpoint_url") as caught:
        list(provider.scan(gs("any-bucket", "data/")))
    provider.close()

    assert url in str(caught.value)
    assert provider.requests.snapshot()["objects.list"] >= 2


def test_composite_object_without_md5_records_crc32c_only(
    scripted: Callable[..., ScriptedGcs], tmp_path: Path
) -> None:
    # A composite object as GCS lists it: no md5Hash, a component count
    # (fake-gcs-server's compose computes an md5Hash, see test_stat_composite).
    item = {
        "kind": "storage#object",
        "name": "whole.bin",
        "bucket": "composed",
        "generation": "1700000000000001",
        "metageneration": "1",
        "size": "12",
        "etag": "CIGAgICAgICAAhAB",
        "crc32c": crc32c_b64(b"first,second"),
        "componentCount": 2,
        "updated": "2026-12-03T12:00:00.000Z",
    }
    listing = {"kind": "storage#objects", "items": [item]}
    provider = scripted_provider(scripted(200, payload=listing), tmp_path)

    (info,) = provider.scan(gs("composed", ""))
    provider.close()
    entry = ManifestEntry.from_info("whole.bin", info)

    assert info.ref == gs("composed", "whole.bin", "1700000000000001")
    assert info.checksums == {"crc32c": crc32c_b64(b"first,second")}
    assert entry.extra["componentCount"] == 2
    assert entry.extra["etagIsMd5"] is False
    assert "md5" not in entry.extra


def test_lifecycle_rules_that_delete(
    scripted: Callable[..., ScriptedGcs], tmp_path: Path
) -> None:
    # fake-gcs-server keeps no lifecycle rules; the bucket resource here is
    # shaped as GCS's JSON API documents it.
    def delete_when(**condition: Any) -> dict[str, Any]:
        return {"action": {"type": "Delete"}, "condition": condition}

    rules = [
        delete_when(daysSinceNoncurrentTime=30, matchesPrefix=["data/", "models/"]),
        delete_when(age=365, isLive=True),
        delete_when(numNewerVersions=3),
        delete_when(age=90, matchesSuffix=[".tmp"]),
        {
            "action": {"type": "SetStorageClass", "storageClass": "NEARLINE"},
            "condition": {"age": 30},
        },
    ]
    resource = {"kind": "storage#bucket", "name": "kept", "lifecycle": {"rule": rules}}
    provider = scripted_provider(scripted(200, payload=resource), tmp_path)

    found = provider.lifecycle(gs("kept", ""))
    provider.close()

    assert found == [
        LifecycleRule(prefix="data/", noncurrent_days=30),
        LifecycleRule(prefix="models/", noncurrent_days=30),
        LifecycleRule(prefix="", current_days=365),
        LifecycleRule(prefix="", noncurrent_days=0, keeps_newer=2),
        LifecycleRule(prefix="", noncurrent_days=90, current_days=90, filtered=True),
    ]
    assert provider.requests.snapshot() == {"buckets.get": 1}


def test_lifecycle_of_a_bucket_without_rules(gcs: GcsStore) -> None:
    bucket = gcs.make_bucket()

    assert gcs.provider.lifecycle(gs(bucket, "")) == []


def test_lifecycle_rules_the_credentials_may_not_read(
    scripted: Callable[..., ScriptedGcs], tmp_path: Path
) -> None:
    provider = scripted_provider(scripted(403, "no storage.buckets.get"), tmp_path)

    with pytest.raises(AccessDeniedError, match=r"buckets\.get on"):
        provider.lifecycle(gs("locked", ""))
    provider.close()


# the registry


def test_registry_serves_gs(gcs: GcsStore) -> None:
    providers = Providers(gcs.settings)
    bucket = gcs.make_bucket()
    pinned = gcs.put(bucket, "k.txt")

    provider = providers.for_ref(pinned)
    provider.stat(pinned)

    assert isinstance(provider, GcsProvider)
    assert isinstance(provider, Provider)
    assert isinstance(provider, LifecycleProvider)
    assert providers.for_scheme("GS") is provider
    assert providers.requests == {"objects.get": 1}
    providers.close()


def test_registry_reports_missing_sdk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # None in sys.modules makes the import fail as if it were not installed.
    monkeypatch.setitem(sys.modules, "google.cloud.storage", None)
    monkeypatch.delitem(sys.modules, "refstore.providers.gcs")
    monkeypatch.delitem(sys.modules, "refstore.providers.gcs_client")
    providers = Providers(Settings(home=tmp_path))

    with pytest.raises(
        MissingDependencyError, match=r"Install refstore\[gcs\] to use gs://"
    ):
        providers.for_scheme("gs")
