"""AzureProvider over real HTTP: Azurite, and a protocol-level Blob server.

Tests taking ``azure_store`` run on both. Azurite (``azurite_store``) is the
real emulator: ETags, Content-MD5, If-Match, ranges, SAS permissions, keys,
connection strings. It keeps no blob versions, so everything about version
ids runs on the protocol-level server (``azure_protocol_store``), which
answers the Blob REST calls involved as Azure's REST reference documents
them. No SDK call is mocked.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import datetime
import gzip
import hashlib
import sys
from pathlib import Path
from typing import Any

import pytest

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
from refstore.providers import Providers, azure_client
from refstore.providers import azure as azure_module
from refstore.providers.azure import AzureProvider
from refstore.providers.base import Provider, Versioning
from refstore.uri import ObjectRef, parse_uri
from tests import emulators
from tests.providers.azure_server import BlobServer
from tests.providers.store_azure import (
    AZURITE_ACCOUNT,
    AZURITE_KEY,
    PROTOCOL_ACCOUNT,
    SECOND_ACCOUNT,
    SECOND_KEY,
    AzureProtocolStore,
    AzuriteSetup,
    AzuriteStore,
    azurite_client,
    unique_container,
)

AzureStore = AzuriteStore | AzureProtocolStore
AZURE_ETAG = r"0x[0-9A-F]{15}"


@pytest.fixture(
    params=[
        pytest.param("azurite_store", id="azurite"),
        pytest.param("azure_protocol_store", id="azure-protocol"),
    ]
)
def azure_store(request: pytest.FixtureRequest) -> AzureStore:
    store: AzureStore = request.getfixturevalue(request.param)
    return store


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def read_all(provider: Provider, info: ObjectInfo, **span: int) -> bytes:
    with provider.read(info, **span) as stream:
        return stream.read()


def unpinned(info: ObjectInfo) -> ObjectInfo:
    """``info`` as an entry recorded without a version would describe it."""
    return dataclasses.replace(info, ref=info.ref.with_version(None))


def closed_port_url(scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{emulators.free_port()}/{AZURITE_ACCOUNT}"


# What is recorded


def test_stat_records_etag_md5_size_and_time(azure_store: AzureStore) -> None:
    bucket = azure_store.make_bucket()
    ref = azure_store.put(bucket, "data/a.txt", b"hello azure")

    info = azure_store.provider.stat(azure_store.ref(bucket, "data/a.txt"))

    assert info.size == len(b"hello azure")
    assert info.etag is not None
    assert '"' not in info.etag
    assert info.checksums == {"md5": md5(b"hello azure")}
    assert info.last_modified is not None
    assert info.last_modified.utcoffset() is not None
    assert info.version_id == ref.version
    assert info.is_latest


def test_entry_says_the_etag_is_not_an_md5(azure_store: AzureStore) -> None:
    bucket = azure_store.make_bucket()
    azure_store.put(bucket, "a.bin", b"\x00\x01")

    info = azure_store.provider.stat(azure_store.ref(bucket, "a.bin"))
    entry = ManifestEntry.from_info("a.bin", info)

    assert info.extra == {"etagIsMd5": False}
    assert entry.extra["etagIsMd5"] is False
    assert entry.extra["md5"] == md5(b"\x00\x01")
    assert entry.digest == info.etag
    assert not entry.etag_is_md5


def test_zero_byte_blob(azure_store: AzureStore) -> None:
    bucket = azure_store.make_bucket()
    azure_store.put(bucket, "empty", b"")

    info = azure_store.provider.stat(azure_store.ref(bucket, "empty"))

    assert info.size == 0
    assert info.checksums == {"md5": md5(b"")}
    assert read_all(azure_store.provider, info) == b""


# Listing


def test_scan_lists_the_folder_not_its_siblings(azure_store: AzureStore) -> None:
    bucket = azure_store.make_bucket()
    azure_store.put_many(
        bucket, {"data/a.txt": b"a", "data/sub/b.txt": b"bb", "data2/c.txt": b"c"}
    )

    found = {
        i.ref.key: i
        for i in azure_store.provider.scan(azure_store.ref(bucket, "data/"))
    }

    assert sorted(found) == ["data/a.txt", "data/sub/b.txt"]
    assert found["data/sub/b.txt"].checksums == {"md5": md5(b"bb")}
    assert found["data/sub/b.txt"].size == 2
    assert all(i.is_latest and i.extra == {"etagIsMd5": False} for i in found.values())


def test_scan_skips_directory_stubs(azure_store: AzureStore) -> None:
    bucket = azure_store.make_bucket()
    azure_store.put_stub(bucket, "data")
    azure_store.put_stub(bucket, "data/sub")
    azure_store.put(bucket, "data/sub/b.txt", b"b")

    keys = [i.ref.key for i in azure_store.provider.scan(azure_store.ref(bucket, ""))]

    assert keys == ["data/sub/b.txt"]


def test_a_directory_stub_is_not_an_object(azure_store: AzureStore) -> None:
    bucket = azure_store.make_bucket()
    azure_store.put_stub(bucket, "data")

    with pytest.raises(ObjectNotFoundError, match="is a directory"):
        azure_store.provider.stat(azure_store.ref(bucket, "data"))


def test_capture_reads_a_directory_stub_as_its_folder(azure_store: AzureStore) -> None:
    bucket = azure_store.make_bucket()
    azure_store.put_stub(bucket, "data")
    azure_store.put_many(bucket, {"data/a.txt": b"a", "data/b/c.txt": b"c"})

    captured = capture(azure_store.ref(bucket, "data"), azure_store.provider)

    assert [path for path, _ in captured] == ["a.txt", "b/c.txt"]


# Reading


def test_read_returns_the_recorded_bytes(azure_store: AzureStore) -> None:
    bucket = azure_store.make_bucket()
    azure_store.put(bucket, "a.txt", b"hello")
    info = azure_store.provider.stat(azure_store.ref(bucket, "a.txt"))

    assert read_all(azure_store.provider, info) == b"hello"
    assert read_all(azure_store.provider, unpinned(info)) == b"hello"


def test_read_of_a_changed_blob_is_refused_by_if_match(
    azure_store: AzureStore,
) -> None:
    bucket = azure_store.make_bucket()
    azure_store.put(bucket, "a.txt", b"first")
    info = unpinned(azure_store.provider.stat(azure_store.ref(bucket, "a.txt")))
    azure_store.put(bucket, "a.txt", b"second")
    azure_store.provider.requests.reset()

    with pytest.raises(IntegrityError, match="changed since it was recorded"):
        azure_store.provider.read(info)

    # The store refused the conditional GET: no other bytes were sent.
    assert azure_store.provider.requests.snapshot() == {"GetBlob": 1}


@pytest.mark.parametrize(
    ("span", "expected"),
    [
        pytest.param({"start": 2}, b"23456789", id="from-offset"),
        pytest.param({"start": 2, "end": 5}, b"234", id="middle"),
        pytest.param({"end": 3}, b"012", id="head"),
        pytest.param({"start": 8, "end": 50}, b"89", id="past-the-end"),
        pytest.param({"start": 4, "end": 4}, b"", id="empty"),
    ],
)
def test_read_byte_ranges(
    azure_store: AzureStore, span: dict[str, int], expected: bytes
) -> None:
    bucket = azure_store.make_bucket()
    azure_store.put(bucket, "digits", b"0123456789")
    info = azure_store.provider.stat(azure_store.ref(bucket, "digits"))

    assert read_all(azure_store.provider, info, **span) == expected


def test_read_starting_past_the_end_is_refused(azure_store: AzureStore) -> None:
    bucket = azure_store.make_bucket()
    azure_store.put(bucket, "digits", b"0123")
    info = azure_store.provider.stat(azure_store.ref(bucket, "digits"))

    with pytest.raises(StoreError, match="InvalidRange"):
        azure_store.provider.read(info, start=10)


def test_gzip_encoded_blob_is_read_as_stored(azurite_store: AzuriteStore) -> None:
    from azure.storage.blob import ContentSettings

    bucket = azurite_store.make_bucket()
    stored = gzip.compress(b"row\n" * 1000)
    azurite_store.client.get_container_client(bucket).upload_blob(
        "rows.csv.gz", stored, content_settings=ContentSettings(content_encoding="gzip")
    )
    info = azurite_store.provider.stat(azurite_store.ref(bucket, "rows.csv.gz"))

    data = read_all(azurite_store.provider, info)

    assert data == stored
    assert md5(data) == info.checksums["md5"]


def test_large_blob_is_read_in_chunks_pinned_to_its_etag(
    azurite_store: AzuriteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(azure_client, "READ_CHUNK", 1024 * 1024)
    provider = AzureProvider(azurite_store.settings)
    bucket = azurite_store.make_bucket()
    body = bytes(range(256)) * (10 * 1024)  # 2.5 MiB: three chunks
    azurite_store.put(bucket, "big.bin", body)
    info = provider.stat(azurite_store.ref(bucket, "big.bin"))
    provider.requests.reset()

    assert read_all(provider, info) == body
    assert provider.requests.snapshot() == {"GetBlob": 3}

    stream = provider.read(info)
    first = stream.read(1024)
    azurite_store.put(bucket, "big.bin", body[::-1])
    with pytest.raises(IntegrityError, match="changed since it was recorded"):
        stream.read()
    stream.close()
    provider.close()
    assert first == body[:1024]


def test_concurrent_reads_share_one_connection_pool(
    azurite_store: AzuriteStore, caplog: pytest.LogCaptureFixture
) -> None:
    bucket = azurite_store.make_bucket()
    bodies = {f"data/{n:02}": bytes([n]) * 1000 for n in range(48)}
    azurite_store.put_many(bucket, bodies)
    infos = list(azurite_store.provider.scan(azurite_store.ref(bucket, "data/")))
    caplog.clear()  # the setup client's own pool is not under test

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        read = list(pool.map(lambda i: read_all(azurite_store.provider, i), infos))

    assert read == list(bodies.values())
    assert "Connection pool is full" not in caplog.text


# References and versioning state


def test_both_uri_forms_name_the_same_blob(azurite_store: AzuriteStore) -> None:
    bucket = azurite_store.make_bucket()
    azurite_store.put(bucket, "dir/a b.txt", b"spaces")
    short = parse_uri(f"az://{AZURITE_ACCOUNT}/{bucket}/dir/a b.txt")
    long = parse_uri(
        f"https://{AZURITE_ACCOUNT}.blob.core.windows.net/{bucket}/dir/a%20b.txt"
    )

    assert short == long
    info = azurite_store.provider.stat(long)
    assert info.ref == short
    assert read_all(azurite_store.provider, info) == b"spaces"


def test_versioning_is_unknown_without_asking(azure_store: AzureStore) -> None:
    bucket = azure_store.make_bucket()

    state = azure_store.provider.versioning(azure_store.ref(bucket, ""))

    assert state is Versioning.UNKNOWN
    assert azure_store.provider.requests.total() == 0


def test_providers_serve_az_references(tmp_path: Path) -> None:
    providers = Providers(Settings(home=tmp_path))

    assert isinstance(providers.for_scheme("az"), AzureProvider)


# Request counts


@pytest.mark.parametrize(
    "azure_store",
    [
        pytest.param("azurite_store", id="azurite", marks=pytest.mark.slow),
        pytest.param("azure_protocol_store", id="azure-protocol"),
    ],
    indirect=True,
)
def test_capturing_1200_blobs_costs_one_listing(azure_store: AzureStore) -> None:
    bucket = azure_store.make_bucket()
    azure_store.put_many(bucket, {f"data/{i:04}.txt": b"x" for i in range(1200)})

    captured = capture(azure_store.ref(bucket, "data/"), azure_store.provider)

    assert len(captured) == 1200
    assert azure_store.provider.requests.snapshot() == {"ListBlobs": 1}


def test_listing_pages_are_counted(
    azure_protocol_store: AzureProtocolStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(azure_module, "LIST_PAGE_SIZE", 500)
    store = azure_protocol_store
    bucket = store.make_bucket()
    store.put_many(bucket, {f"data/{i:04}.txt": b"x" for i in range(1200)})
    before = store.server.requests["ListBlobs"]

    captured = capture(store.ref(bucket, "data/"), store.provider)

    assert len(captured) == 1200
    assert store.provider.requests.snapshot() == {"ListBlobs": 3}
    assert store.server.requests["ListBlobs"] - before == 3


@pytest.mark.slow
def test_retries_are_counted(azure_blob_server: BlobServer, tmp_path: Path) -> None:
    store = AzureProtocolStore(azure_blob_server, tmp_path)
    settings = store.settings.with_store(f"az://{PROTOCOL_ACCOUNT}", max_attempts=2)
    provider = AzureProvider(settings)
    bucket = store.make_bucket()
    ref = store.put(bucket, "a.txt", b"a")
    before = store.server.requests["GetBlobProperties"]
    store.server.fail_next(1)

    info = provider.stat(ref)

    assert info.size == 1
    assert provider.requests.snapshot() == {"GetBlobProperties": 2}
    assert store.server.requests["GetBlobProperties"] - before == 2
    provider.close()
    store.close()


# Blob versions (protocol-level server)


def test_stat_pins_the_current_version(
    azure_protocol_store: AzureProtocolStore,
) -> None:
    store = azure_protocol_store
    bucket = store.make_bucket()
    store.put(bucket, "a.txt", b"v1")
    second = store.put(bucket, "a.txt", b"v2")

    info = store.provider.stat(store.ref(bucket, "a.txt"))

    assert info.version_id == second.version
    assert info.is_latest
    assert info.checksums == {"md5": md5(b"v2")}


def test_stat_and_read_an_old_version(azure_protocol_store: AzureProtocolStore) -> None:
    store = azure_protocol_store
    bucket = store.make_bucket()
    first = store.put(bucket, "a.txt", b"old bytes")
    store.put(bucket, "a.txt", b"new")

    info = store.provider.stat(first)

    assert info.ref == first
    assert info.size == len(b"old bytes")
    assert not info.is_latest
    assert read_all(store.provider, info) == b"old bytes"
    assert read_all(store.provider, info, start=4) == b"bytes"


def test_a_deleted_version_is_version_not_found(
    azure_protocol_store: AzureProtocolStore,
) -> None:
    store = azure_protocol_store
    bucket = store.make_bucket()
    first = store.put(bucket, "a.txt", b"v1")
    store.put(bucket, "a.txt", b"v2")
    info = store.provider.stat(first)
    store.delete_version(first)

    with pytest.raises(VersionNotFoundError, match="no longer exists"):
        store.provider.stat(first)
    with pytest.raises(VersionNotFoundError):
        store.provider.read(info)


def test_a_deleted_blob_keeps_its_versions(
    azure_protocol_store: AzureProtocolStore,
) -> None:
    store = azure_protocol_store
    bucket = store.make_bucket()
    first = store.put(bucket, "a.txt", b"v1")
    store.delete(bucket, "a.txt")

    with pytest.raises(ObjectNotFoundError) as raised:
        store.provider.stat(store.ref(bucket, "a.txt"))
    assert not isinstance(raised.value, VersionNotFoundError)
    assert read_all(store.provider, store.provider.stat(first)) == b"v1"


def test_versioned_listing_flags_the_current_versions(
    azure_protocol_store: AzureProtocolStore,
) -> None:
    store = azure_protocol_store
    bucket = store.make_bucket()
    a1 = store.put(bucket, "data/a.txt", b"a1")
    a2 = store.put(bucket, "data/a.txt", b"a2")
    gone = store.put(bucket, "data/gone.txt", b"g")
    store.delete(bucket, "data/gone.txt")

    listed = list(store.provider.scan(store.ref(bucket, "data/"), versions=True))

    flags = {(i.ref.key, i.version_id): i.is_latest for i in listed}
    assert flags == {
        ("data/a.txt", a1.version): False,
        ("data/a.txt", a2.version): True,
        ("data/gone.txt", gone.version): False,
    }
    assert not any(i.is_delete_marker for i in listed)
    assert {i.checksums["md5"] for i in listed} == {md5(b"a1"), md5(b"a2"), md5(b"g")}


def test_capture_pins_current_versions_and_leaves_deleted_blobs_out(
    azure_protocol_store: AzureProtocolStore,
) -> None:
    store = azure_protocol_store
    bucket = store.make_bucket()
    store.put(bucket, "data/a.txt", b"a1")
    current = store.put(bucket, "data/a.txt", b"a2")
    store.put(bucket, "data/gone.txt", b"g")
    store.delete(bucket, "data/gone.txt")

    captured = capture(store.ref(bucket, "data/"), store.provider)

    entries = [ManifestEntry.from_info(path, info) for path, info in captured]
    assert [(e.path, e.version_id) for e in entries] == [("a.txt", current.version)]
    assert entries[0].ref == f"az://{PROTOCOL_ACCOUNT}/{bucket}/data/a.txt"
    assert entries[0].object_ref() == current


def test_pinned_read_checks_the_served_etag(
    azure_protocol_store: AzureProtocolStore,
) -> None:
    store = azure_protocol_store
    bucket = store.make_bucket()
    ref = store.put(bucket, "a.txt", b"v1")
    info = dataclasses.replace(store.provider.stat(ref), etag="0x8DE000000000001")

    with pytest.raises(IntegrityError, match="not the recorded 0x8DE000000000001"):
        store.provider.read(info)


# Errors


def test_missing_blob(azure_store: AzureStore) -> None:
    bucket = azure_store.make_bucket()

    with pytest.raises(ObjectNotFoundError, match="no blob at") as raised:
        azure_store.provider.stat(azure_store.ref(bucket, "nope.txt"))
    assert not isinstance(raised.value, VersionNotFoundError)


def test_missing_container(azure_store: AzureStore) -> None:
    ref = azure_store.ref(azure_store.missing_bucket(), "a.txt")

    with pytest.raises(BucketNotFoundError, match="does not exist"):
        azure_store.provider.stat(ref)
    with pytest.raises(BucketNotFoundError):
        list(azure_store.provider.scan(ref.as_prefix()))


def test_denied_read_with_a_list_only_sas(azure_store: AzureStore) -> None:
    ref = azure_store.denied_ref()

    with pytest.raises(AccessDeniedError, match="AuthorizationPermissionMismatch"):
        azure_store.provider.stat(ref)
    # The same token may list that container.
    listed = azure_store.provider.scan(ref.child("data/"))
    assert [i.ref.key for i in listed] == ["data/secret.txt"]


def test_unknown_sas_is_a_credentials_error(
    azure_protocol_store: AzureProtocolStore, tmp_path: Path
) -> None:
    store = azure_protocol_store
    bucket = store.make_bucket()
    store.put(bucket, "a.txt", b"a")
    forged = store.settings.with_store(
        f"az://{PROTOCOL_ACCOUNT}", sas_token="sv=2025-01-05&sp=rl&sig=forged"
    )
    provider = AzureProvider(forged)

    with pytest.raises(CredentialsError, match="AuthenticationFailed"):
        provider.stat(store.ref(bucket, "a.txt"))
    provider.close()


def test_anonymous_request_to_a_private_account_is_a_credentials_error(
    azure_protocol_store: AzureProtocolStore,
) -> None:
    store = azure_protocol_store
    options = {"endpoint_url": store.server.endpoint_url, "anonymous": True}
    provider = AzureProvider(Settings(home=store.settings.home, stores={"az": options}))

    with pytest.raises(CredentialsError, match="NoAuthenticationInformation"):
        provider.stat(store.ref(store.make_bucket(), "a.txt"))
    provider.close()


def test_a_busy_server_is_a_store_error(
    azure_protocol_store: AzureProtocolStore,
) -> None:
    store = azure_protocol_store
    ref = store.put(store.make_bucket(), "a.txt", b"a")
    store.server.fail_next(1)

    with pytest.raises(StoreError, match="ServerBusy") as raised:
        store.provider.stat(ref)
    assert type(raised.value) is StoreError


def test_dead_endpoint_is_an_endpoint_error(tmp_path: Path) -> None:
    options = {"endpoint_url": closed_port_url(), "account_key": AZURITE_KEY}
    settings = Settings(home=tmp_path, stores={"az": {**options, "max_attempts": 1}})
    provider = AzureProvider(settings)

    with pytest.raises(EndpointError, match="cannot reach the Azure endpoint"):
        provider.stat(ObjectRef("az", "box", "a", account=AZURITE_ACCOUNT))
    provider.close()


# Credentials, per account


def test_credentials_per_account(azurite_setup: AzuriteSetup, tmp_path: Path) -> None:
    url = azurite_setup.endpoint_url
    second_url = url.replace(AZURITE_ACCOUNT, SECOND_ACCOUNT)
    second = azurite_client(second_url, SECOND_ACCOUNT, SECOND_KEY)
    first_bucket, second_bucket = unique_container(), unique_container()
    azurite_setup.client.create_container(first_bucket).upload_blob("a", b"first")
    second.create_container(second_bucket).upload_blob("a", b"second")
    second.close()
    settings = Settings(
        home=tmp_path,
        stores={
            # A scheme-wide key that is wrong for both accounts, replaced per account.
            "az": {"account_key": SECOND_KEY[::-1], "max_attempts": 1},
            f"az://{AZURITE_ACCOUNT}": {
                "endpoint_url": url,
                "account_key": AZURITE_KEY,
            },
            f"az://{SECOND_ACCOUNT}": {
                "connection_string": (
                    f"DefaultEndpointsProtocol=http;AccountName={SECOND_ACCOUNT};"
                    f"AccountKey={SECOND_KEY};BlobEndpoint={second_url};"
                )
            },
        },
    )
    provider = AzureProvider(settings)

    first = provider.stat(ObjectRef("az", first_bucket, "a", account=AZURITE_ACCOUNT))
    other = provider.stat(ObjectRef("az", second_bucket, "a", account=SECOND_ACCOUNT))

    assert read_all(provider, first) == b"first"
    assert read_all(provider, other) == b"second"
    provider.close()


def test_sas_token_per_container(azurite_setup: AzuriteSetup, tmp_path: Path) -> None:
    from azure.storage.blob import ContainerSasPermissions, generate_container_sas

    bucket = unique_container()
    azurite_setup.client.create_container(bucket).upload_blob("a.txt", b"sas")
    sas = generate_container_sas(
        AZURITE_ACCOUNT,
        bucket,
        account_key=AZURITE_KEY,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1),
    )
    settings = Settings(
        home=tmp_path,
        stores={
            f"az://{AZURITE_ACCOUNT}": {"endpoint_url": azurite_setup.endpoint_url},
            f"az://{AZURITE_ACCOUNT}/{bucket}": {"sas_token": f"?{sas}"},
        },
    )
    provider = AzureProvider(settings)

    captured = capture(ObjectRef("az", bucket, "", account=AZURITE_ACCOUNT), provider)

    assert [(path, read_all(provider, info)) for path, info in captured] == [
        ("a.txt", b"sas")
    ]
    provider.close()


def test_connection_string_from_the_environment_for_its_account_only(
    azurite_store: AzuriteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bucket = azurite_store.make_bucket()
    azurite_store.put(bucket, "a.txt", b"env")
    monkeypatch.setenv(
        "AZURE_STORAGE_CONNECTION_STRING",
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
        f"AccountKey={AZURITE_KEY};BlobEndpoint={azurite_store.setup.endpoint_url};",
    )
    provider = AzureProvider(
        Settings(home=tmp_path, stores={"az": {"max_attempts": 1}})
    )

    info = provider.stat(azurite_store.ref(bucket, "a.txt"))
    # Another account does not get this account's key: it goes on to
    # DefaultAzureCredential, which finds no login here.
    other = ObjectRef("az", bucket, "a.txt", account=SECOND_ACCOUNT)
    with pytest.raises(CredentialsError, match="no usable Azure credentials"):
        provider.stat(other)

    assert read_all(provider, info) == b"env"
    provider.close()


def test_wrong_account_key_is_refused(azurite_store: AzuriteStore) -> None:
    bucket = azurite_store.make_bucket()
    azurite_store.put(bucket, "a.txt", b"a")
    wrong = azurite_store.settings.with_store(
        f"az://{AZURITE_ACCOUNT}", account_key=SECOND_KEY
    )
    provider = AzureProvider(wrong)

    # Azure answers a bad signature with AuthenticationFailed (a CredentialsError,
    # tested on the protocol server); Azurite answers AuthorizationFailure.
    with pytest.raises(AccessDeniedError, match="may be wrong"):
        provider.stat(azurite_store.ref(bucket, "a.txt"))
    provider.close()


def test_malformed_account_key_is_a_credentials_error(
    azurite_store: AzuriteStore,
) -> None:
    wrong = azurite_store.settings.with_store(
        f"az://{AZURITE_ACCOUNT}", account_key="not base64!"
    )
    provider = AzureProvider(wrong)

    with pytest.raises(CredentialsError, match="no usable Azure credentials"):
        provider.stat(azurite_store.ref(azurite_store.make_bucket(), "a.txt"))
    provider.close()


@pytest.mark.parametrize(
    ("stores", "message"),
    [
        pytest.param(
            {f"az://{AZURITE_ACCOUNT}": {"account_key": "k", "sas_token": "s"}},
            "sets account_key and sas_token",
            id="two-credentials",
        ),
        pytest.param(
            {"az": {"connection_string": "AccountName=other;AccountKey=a2V5"}},
            "is for the account other",
            id="connection-string-of-another-account",
        ),
        pytest.param(
            {"az": {"connection_string": "AccountName=devstoreaccount1;Nonsense"}},
            "connection string .* is not usable",
            id="malformed-connection-string",
        ),
        pytest.param(
            {
                "az": {
                    "connection_string": "UseDevelopmentStorage=true",
                    "endpoint_url": "http://127.0.0.1:1/x",
                }
            },
            "both connection_string and endpoint_url",
            id="connection-string-and-endpoint",
        ),
        pytest.param(
            {"az": {"endpoint_url": "http://127.0.0.1:1/devstoreaccount1"}},
            "never sent to a plain-http endpoint",
            id="token-over-http",
        ),
        pytest.param(
            {"az": {"endpoint_url": "ftp://host/x", "anonymous": True}},
            "must be an http",
            id="endpoint-not-http",
        ),
        pytest.param(
            {"az": {"anonymous": "yes"}},
            "anonymous .* must be true or false",
            id="anonymous-not-bool",
        ),
        pytest.param(
            {"az": {"max_attempts": 0, "anonymous": True}},
            "max_attempts = 0",
            id="max-attempts",
        ),
    ],
)
def test_bad_configuration_is_a_config_error(
    tmp_path: Path, stores: dict[str, dict[str, Any]], message: str
) -> None:
    provider = AzureProvider(Settings(home=tmp_path, stores=stores))

    with pytest.raises(ConfigError, match=message):
        provider.stat(ObjectRef("az", "box", "a", account=AZURITE_ACCOUNT))
    assert provider.requests.total() == 0


def test_missing_azure_identity_is_a_missing_dependency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "azure.identity", None)
    settings = Settings(
        home=tmp_path, stores={"az": {"endpoint_url": closed_port_url("https")}}
    )

    with pytest.raises(MissingDependencyError, match=r"refstore\[azure\]"):
        AzureProvider(settings).stat(ObjectRef("az", "box", "a", account="acct01"))


def test_missing_azure_sdk_is_a_missing_dependency(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(sys.modules, "refstore.providers.azure")
    monkeypatch.setitem(sys.modules, "azure.storage.blob", None)

    with pytest.raises(MissingDependencyError, match=r"refstore\[azure\] to use az://"):
        Providers(Settings(home=tmp_path)).for_scheme("az")
