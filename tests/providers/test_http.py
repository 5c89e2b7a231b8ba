"""What is HTTP's own in HttpProvider, against a real aiohttp server
(``store_http.py``): HEAD and its GET fallback, ETags strong, weak and
absent, conditional reads, retries, credentials, options. The shared
contract is tested in ``test_conformance.py``."""

from __future__ import annotations

import base64
import concurrent.futures
import hashlib
import logging
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from refstore.blobs import BlobStore
from refstore.capture import capture
from refstore.config import Settings
from refstore.errors import (
    AccessDeniedError,
    ConfigError,
    CredentialsError,
    EndpointError,
    FetchError,
    IntegrityError,
    InvalidReferenceError,
    ObjectNotFoundError,
    StoreError,
)
from refstore.fetch import fetch
from refstore.manifest import ManifestEntry, ObjectInfo
from refstore.providers import Providers
from refstore.providers.base import Versioning
from refstore.providers.http import HttpProvider
from refstore.providers.http_headers import retry_after
from refstore.uri import ObjectRef, parse_uri
from tests import emulators
from tests.providers.store_http import TOKEN, HttpServer, HttpStore


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def read_all(provider: HttpProvider, info: ObjectInfo, **span: int) -> bytes:
    with provider.read(info, **span) as stream:
        return stream.read()


def url(server: HttpServer, path: str) -> ObjectRef:
    return parse_uri(f"{server.url}/{path}")


def provider_for(tmp_path: Path, **options: Any) -> HttpProvider:
    settings = Settings(home=tmp_path, stores={"http": options} if options else {})
    return HttpProvider(settings)


# stat


def test_stat_is_one_head(http_store: HttpStore, http_files: HttpServer) -> None:
    put = http_files.put("f/data.bin", b"payload")

    info = http_store.provider.stat(url(http_files, "f/data.bin"))

    assert (info.size, info.etag, info.version_id) == (7, md5(b"payload"), None)
    assert info.last_modified == put.last_modified
    assert info.extra == {"lastModified": put.last_modified.isoformat()}
    assert http_store.provider.requests.snapshot() == {"HEAD": 1}


def test_refused_head_falls_back_to_get_without_reading(
    http_store: HttpStore, http_files: HttpServer
) -> None:
    http_files.put("f/data.bin", b"payload")
    http_files.switches.refuse_head = True

    info = http_store.provider.stat(url(http_files, "f/data.bin"))

    assert (info.size, info.etag) == (7, md5(b"payload"))
    assert http_store.provider.requests.snapshot() == {"HEAD": 1, "GET": 1}
    assert [e.method for e in http_files.logged("f/data.bin")] == ["HEAD", "GET"]


def test_no_content_length_counts_and_hashes_the_body(
    http_store: HttpStore, http_files: HttpServer
) -> None:
    http_files.put("f/stream", b"streamed bytes")
    http_files.switches.send_length = False

    info = http_store.provider.stat(url(http_files, "f/stream"))

    assert info.size == 14
    assert info.checksums == {"sha256": hashlib.sha256(b"streamed bytes").hexdigest()}


def test_checksum_headers_are_recorded_as_hex(
    http_store: HttpStore, http_files: HttpServer
) -> None:
    body = b"checked"
    md5_b64 = base64.b64encode(hashlib.md5(body).digest()).decode()
    sha_b64 = base64.b64encode(hashlib.sha256(body).digest()).decode()
    headers = {"Content-MD5": md5_b64, "Repr-Digest": f"sha-256=:{sha_b64}:"}
    http_files.put("f/checked", body, **headers)

    info = http_store.provider.stat(url(http_files, "f/checked"))

    assert info.checksums == {
        "md5": md5(body),
        "sha256": hashlib.sha256(body).hexdigest(),
    }


def test_weak_etag_is_kept_and_flagged(
    http_store: HttpStore, http_files: HttpServer
) -> None:
    http_files.put("f/page", b"page")
    http_files.switches.weak_etags = True

    info = http_store.provider.stat(url(http_files, "f/page"))
    entry = ManifestEntry.from_info("page", info)

    assert info.etag == f"W/{md5(b'page')}"
    assert info.extra["weakETag"] is True
    assert entry.extra["etag"] == info.etag
    assert "versionID" not in entry.extra


def test_nothing_to_pin_is_said_plainly(
    http_store: HttpStore, http_files: HttpServer, caplog: pytest.LogCaptureFixture
) -> None:
    http_files.put("f/bare", b"bare")
    http_files.switches.send_etag = False
    http_files.switches.send_last_modified = False

    with caplog.at_level(logging.WARNING, logger="refstore.providers.http"):
        info = http_store.provider.stat(url(http_files, "f/bare"))

    assert (info.etag, info.last_modified, info.size) == (None, None, 4)
    assert "sends no ETag, Last-Modified or checksum" in caplog.text


@pytest.mark.parametrize("status", [404, 410])
def test_missing_or_gone(
    http_store: HttpStore, http_files: HttpServer, status: int
) -> None:
    http_files.put("f/x", b"x")
    http_files.delete("f/x", gone=status == 410)

    with pytest.raises(ObjectNotFoundError, match=f"answered {status}"):
        http_store.provider.stat(url(http_files, "f/x"))


def test_pinned_reference_is_refused(http_store: HttpStore) -> None:
    ref = ObjectRef("https", "example.org", "x", version="3")

    with pytest.raises(InvalidReferenceError, match="no versions"):
        http_store.provider.stat(ref)


def test_no_listing_no_versions(http_store: HttpStore, http_files: HttpServer) -> None:
    folder = url(http_files, "f/")

    with pytest.raises(StoreError, match="HTTP has no listing; reference each URL"):
        list(http_store.provider.scan(folder))
    assert http_store.provider.versioning(folder) is Versioning.OFF
    assert http_store.provider.requests.total() == 0


# capture: every URL is one object


@pytest.mark.parametrize("path", ["f/index/", "f/plain"])
def test_capture_takes_any_url_as_one_object(
    http_store: HttpStore, http_files: HttpServer, path: str
) -> None:
    http_files.put(path, b"one object")

    ((name, info),) = capture(url(http_files, path), http_store.provider)

    assert name == path.rstrip("/").rpartition("/")[2]
    assert info.size == 10
    assert http_store.provider.requests.snapshot() == {"HEAD": 1}


def test_capture_of_a_missing_url_lists_nothing(
    http_store: HttpStore, http_files: HttpServer
) -> None:
    with pytest.raises(ObjectNotFoundError):
        capture(url(http_files, "f/missing"), http_store.provider)

    assert http_store.provider.requests.snapshot() == {"HEAD": 1}


# read


def test_read_sends_if_match_for_a_strong_etag(
    http_store: HttpStore, http_files: HttpServer
) -> None:
    http_files.put("f/k", b"recorded")
    info = http_store.provider.stat(url(http_files, "f/k"))

    assert read_all(http_store.provider, info) == b"recorded"
    (get,) = [e for e in http_files.logged("f/k") if e.method == "GET"]
    assert get.headers["If-Match"] == f'"{md5(b"recorded")}"'
    assert get.headers["Accept-Encoding"] == "identity"


@pytest.mark.parametrize("etags", ["weak", "none"])
def test_read_without_strong_etag_uses_the_date(
    http_store: HttpStore, http_files: HttpServer, etags: str
) -> None:
    http_files.put("f/k", b"recorded")
    http_files.switches.weak_etags = etags == "weak"
    http_files.switches.send_etag = etags != "none"
    info = http_store.provider.stat(url(http_files, "f/k"))
    assert read_all(http_store.provider, info) == b"recorded"
    http_files.put("f/k", b"changed!")

    with pytest.raises(IntegrityError, match="changed since it was recorded"):
        http_store.provider.read(info)
    gets = [e for e in http_files.logged("f/k") if e.method == "GET"]
    assert all("If-Match" not in e.headers for e in gets)
    assert all("If-Unmodified-Since" in e.headers for e in gets)


def test_read_checks_the_served_etag_when_preconditions_are_ignored(
    http_store: HttpStore, http_files: HttpServer
) -> None:
    http_files.put("f/k", b"recorded")
    info = http_store.provider.stat(url(http_files, "f/k"))
    http_files.put("f/k", b"changed!")
    http_files.switches.ignore_preconditions = True

    with pytest.raises(IntegrityError, match="not the recorded"):
        http_store.provider.read(info)


@pytest.mark.parametrize(
    ("span", "expected"),
    [
        pytest.param({"start": 2, "end": 5}, b"234", id="start-end"),
        pytest.param({"start": 8}, b"89", id="start-only"),
        pytest.param({"end": 3}, b"012", id="end-only"),
    ],
)
def test_read_range_from_a_server_that_ignores_ranges(
    http_store: HttpStore,
    http_files: HttpServer,
    span: dict[str, int],
    expected: bytes,
) -> None:
    http_files.put("f/digits", b"0123456789")
    http_files.switches.ignore_range = True
    info = http_store.provider.stat(url(http_files, "f/digits"))

    assert read_all(http_store.provider, info, **span) == expected


def test_range_outside_the_object(
    http_store: HttpStore, http_files: HttpServer
) -> None:
    http_files.put("f/digits", b"0123456789")
    info = http_store.provider.stat(url(http_files, "f/digits"))

    with pytest.raises(StoreError, match="416"):
        http_store.provider.read(info, start=20)


def test_large_body_streams_in_chunks(
    http_store: HttpStore, http_files: HttpServer
) -> None:
    body = bytes(range(256)) * 8192  # 2 MiB
    http_files.put("f/large", body)
    info = http_store.provider.stat(url(http_files, "f/large"))

    with http_store.provider.read(info) as stream:
        chunks = iter(lambda: stream.read(100_000), b"")
        assert b"".join(chunks) == body


def test_fetch_verifies_and_refuses_a_changed_resource(
    http_store: HttpStore, http_files: HttpServer, tmp_path: Path
) -> None:
    http_files.put("f/model.bin", b"weights")
    ((path, info),) = capture(url(http_files, "f/model.bin"), http_store.provider)
    entries = [ManifestEntry.from_info(path, info)]
    providers = Providers(http_store.settings)
    blobs = BlobStore(tmp_path / "blobs")

    fetch(entries, tmp_path / "one", providers=providers, blobs=blobs)
    http_files.put("f/model.bin", b"retrained")
    with pytest.raises(FetchError) as caught:
        fetch(entries, tmp_path / "two", providers=providers, blobs=blobs)
    providers.close()

    assert (tmp_path / "one" / "model.bin").read_bytes() == b"weights"
    assert isinstance(caught.value.failures[0][1], IntegrityError)
    assert caught.value.exit_code == 1


# retries


def test_retries_429_and_503(http_store: HttpStore, http_files: HttpServer) -> None:
    http_files.put("f/k", b"k")
    http_files.switches.failures = [(429, "0"), (503, None)]

    info = http_store.provider.stat(url(http_files, "f/k"))

    assert info.size == 1
    assert http_store.provider.requests.snapshot() == {"HEAD": 3}


def test_retry_after_is_honoured(http_store: HttpStore, http_files: HttpServer) -> None:
    http_files.put("f/k", b"k")
    http_files.switches.failures = [(429, "1")]

    started = time.monotonic()
    http_store.provider.stat(url(http_files, "f/k"))

    assert time.monotonic() - started >= 1.0


def test_attempts_are_bounded(http_store: HttpStore, http_files: HttpServer) -> None:
    http_files.put("f/k", b"k")
    http_files.switches.failures = [(503, "0")] * 5

    with pytest.raises(StoreError, match=r"answered 503 .* after 3 attempts"):
        http_store.provider.stat(url(http_files, "f/k"))
    assert http_store.provider.requests.snapshot() == {"HEAD": 3}


def test_not_implemented_is_not_retried(
    http_store: HttpStore, http_files: HttpServer
) -> None:
    http_files.put("f/k", b"k")
    info = http_store.provider.stat(url(http_files, "f/k"))
    http_files.switches.failures = [(501, None)]

    with pytest.raises(StoreError, match="501"):
        http_store.provider.read(info)
    assert http_store.provider.requests.snapshot() == {"HEAD": 1, "GET": 1}


def test_unreachable_host(tmp_path: Path) -> None:
    provider = provider_for(tmp_path, max_attempts=2, retry_backoff=0.01)
    ref = parse_uri(f"http://127.0.0.1:{emulators.free_port()}/x")

    with pytest.raises(EndpointError, match=r"cannot reach http://127\.0\.0\.1"):
        provider.stat(ref)
    provider.close()

    assert provider.requests.snapshot() == {"HEAD": 2}


# credentials and options


def test_missing_token_is_a_credentials_error(
    http_store: HttpStore, http_files: HttpServer
) -> None:
    http_files.put("private/k", b"k")

    with pytest.raises(CredentialsError, match="Authorization"):
        http_store.provider.stat(url(http_files, "private/k"))


@pytest.mark.parametrize(
    ("token", "error"),
    [pytest.param(TOKEN, None, id="right"), pytest.param("other", "403", id="wrong")],
)
def test_headers_per_host(
    http_files: HttpServer, tmp_path: Path, token: str, error: str | None
) -> None:
    http_files.put("private/k", b"secret")
    auth = {"headers": {"Authorization": f"Bearer {token}"}}
    settings = Settings(home=tmp_path, stores={http_files.url: auth})
    provider = HttpProvider(settings)
    ref = url(http_files, "private/k")
    elsewhere = parse_uri(f"http://localhost:{http_files.host.split(':')[1]}/k")

    if error is None:
        info = provider.stat(ref)
        assert read_all(provider, info) == b"secret"
    else:
        with pytest.raises(AccessDeniedError, match=error):
            provider.stat(ref)
    http_files.put("k", b"public")
    provider.stat(elsewhere)
    provider.close()

    sent = [e.headers.get("Authorization") for e in http_files.logged("k")]
    assert sent == [None]


@pytest.mark.parametrize(
    "options",
    [
        pytest.param({"timeout": 0}, id="timeout"),
        pytest.param({"max_attempts": 1.5}, id="attempts"),
        pytest.param({"headers": {"X-Count": 3}}, id="headers"),
    ],
)
def test_bad_options(tmp_path: Path, options: dict[str, Any]) -> None:
    provider = provider_for(tmp_path, **options)

    with pytest.raises(ConfigError, match="refstore config"):
        provider.stat(parse_uri("http://127.0.0.1:9/x"))


def test_unknown_option_is_warned_about(
    http_files: HttpServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    http_files.put("k", b"k")
    provider = provider_for(tmp_path, region="eu")

    with caplog.at_level(logging.WARNING, logger="refstore.providers.http"):
        provider.stat(url(http_files, "k"))
    provider.close()

    assert "ignoring unknown option(s) region" in caplog.text


# the event loop


def test_close_stops_the_loop_and_the_provider_stays_usable(
    http_files: HttpServer, tmp_path: Path
) -> None:
    http_files.put("k", b"k")
    before = threading.active_count()
    provider = provider_for(tmp_path)

    provider.stat(url(http_files, "k"))
    provider.close()
    after_close = threading.active_count()
    provider.stat(url(http_files, "k"))
    provider.close()
    provider.close()

    assert after_close == before
    assert threading.active_count() == before


def test_concurrent_reads(http_store: HttpStore, http_files: HttpServer) -> None:
    bodies = {f"c/{n}": bytes([n]) * (1000 + n) for n in range(40)}
    for path, body in bodies.items():
        http_files.put(path, body)

    def fetch_one(path: str) -> bytes:
        info = http_store.provider.stat(url(http_files, path))
        return read_all(http_store.provider, info)

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        got = dict(zip(bodies, pool.map(fetch_one, bodies), strict=True))

    assert got == bodies


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("3", 3.0, id="seconds"),
        pytest.param("Wed, 21 Oct 2015 07:28:00 GMT", 0.0, id="past-date"),
        pytest.param("soon", None, id="garbage"),
        pytest.param("", None, id="absent"),
    ],
)
def test_retry_after_forms(value: str, expected: float | None) -> None:
    assert retry_after({"Retry-After": value} if value else {}) == expected


def test_legacy_digest_header(http_store: HttpStore, http_files: HttpServer) -> None:
    body = b"digested"
    sha_b64 = base64.b64encode(hashlib.sha256(body).digest()).decode()
    http_files.put("f/d", body, Digest=f"MD5=xyz, SHA-256={sha_b64}")

    info = http_store.provider.stat(url(http_files, "f/d"))

    assert info.checksums == {"sha256": hashlib.sha256(body).hexdigest()}
