"""Azure Blob stores for the provider tests: Azurite, and a protocol-level server.

Fixtures (a pytest plugin, listed in ``tests/conftest.py``):

* ``azurite`` (session): a running Azurite blob service (``.endpoint_url`` ends
  in ``/devstoreaccount1``); not installed skips, or fails under
  ``REFSTORE_REQUIRE_EMULATORS=1``;
* ``azurite_store`` (function): a :class:`~tests.providers.stores.Store` on
  Azurite, signed with the development account key;
* ``azure_blob_server`` (session): a :class:`BlobServer` with blob versions;
* ``azure_protocol_store`` (function): a Store on that server, signed with a
  SAS token it issued.

Azurite keeps no blob versions (see EMULATORS.md), so its Store says so and
the version cases run on the protocol server, which answers the few REST
calls involved as Azure's REST reference documents them.

``REFSTORE_AZURITE`` overrides the ``azurite-blob`` executable (default:
``<repo>/.emulators/azurite/node_modules/.bin/azurite-blob``).
"""

from __future__ import annotations

import concurrent.futures
import datetime
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import (
    BlobServiceClient,
    ContainerSasPermissions,
    generate_container_sas,
)

from refstore.config import Settings
from refstore.providers.azure import LIST_PAGE_SIZE, AzureProvider
from refstore.uri import ObjectRef
from tests import emulators
from tests.providers.azure_server import BlobServer

AZURITE_ACCOUNT = "devstoreaccount1"
# The development account key that Azurite's documentation publishes.
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
    "K1SZFPTOtr/KBHBeksoGMGw=="
)
# A second account, so that credentials per account can be tested.
SECOND_ACCOUNT = "refstoresecond"
SECOND_KEY = "cmVmc3RvcmUtc2Vjb25kLWFjY291bnQta2V5LWZvci10ZXN0cw=="
AZURITE_INSTALL = (
    "./dev test installs it (npm install azurite@3.37.0 into .emulators/azurite), "
    "or set REFSTORE_AZURITE"
)
AZURITE_NO_VERSIONS = "Azurite has no blob versioning (see EMULATORS.md)"
PROTOCOL_ACCOUNT = "refstoreproto"
REQUIRE_EMULATORS = os.environ.get("REFSTORE_REQUIRE_EMULATORS") == "1"

# Credentials and endpoints that no real account or login can leak into.
_CLEARED_AZURE_VARS = (
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_ACCOUNT",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_TENANT_ID",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "MSI_ENDPOINT",
    "MSI_SECRET",
)


def unique_container(prefix: str = "t") -> str:
    """A container name no test has used (3-63 lowercase letters and digits)."""
    return f"{prefix}{uuid.uuid4().hex[:20]}"


@pytest.fixture(scope="session", autouse=True)
def _isolated_azure_env() -> Iterator[None]:
    with pytest.MonkeyPatch.context() as patch:
        for name in _CLEARED_AZURE_VARS:
            patch.delenv(name, raising=False)
        yield


# Azurite.


def azurite_path() -> Path:
    configured = os.environ.get("REFSTORE_AZURITE")
    default = emulators.REPO / ".emulators/azurite/node_modules/.bin/azurite-blob"
    path = Path(configured) if configured else default
    if not path.exists():
        raise emulators.EmulatorUnavailableError(
            f"Azurite is not installed ({path} does not exist): {AZURITE_INSTALL}"
        )
    return path


def start_azurite(workdir: Path, *, timeout: float = 30.0) -> emulators.Emulator:
    """Start Azurite's blob service in memory; wait until it answers."""
    port = emulators.free_port()
    command = [
        str(azurite_path()),
        *("--blobHost", "127.0.0.1", "--blobPort", str(port)),
        *("--inMemoryPersistence", "--loose", "--skipApiVersionCheck"),
        *("--disableTelemetry", "--silent"),
    ]
    # Named accounts replace Azurite's default one, so both are listed.
    accounts = f"{AZURITE_ACCOUNT}:{AZURITE_KEY};{SECOND_ACCOUNT}:{SECOND_KEY}"
    env = {"AZURITE_ACCOUNTS": accounts}
    server = emulators._spawn("azurite", command, port, workdir, env)
    server.endpoint_url = f"{server.endpoint_url}/{AZURITE_ACCOUNT}"
    emulators._wait_until(server, timeout, lambda: _answers(server.endpoint_url))
    return server


def _answers(account_url: str) -> bool:
    # Any HTTP answer will do: Azurite refuses unsigned requests with 403.
    try:
        with urllib.request.urlopen(f"{account_url}?comp=list", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except (urllib.error.URLError, OSError):
        return False


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[emulators.Emulator]:
    try:
        server = start_azurite(tmp_path_factory.mktemp("azurite"))
    except emulators.EmulatorUnavailableError as exc:
        if REQUIRE_EMULATORS:
            pytest.fail(f"{exc} (REFSTORE_REQUIRE_EMULATORS=1)")
        pytest.skip(str(exc))
    with server:
        yield server


def azurite_client(
    endpoint_url: str, account: str = AZURITE_ACCOUNT, key: str = AZURITE_KEY
) -> BlobServiceClient:
    """An SDK client for arranging data on Azurite (not the code under test)."""
    credential = {"account_name": account, "account_key": key}
    return BlobServiceClient(endpoint_url, credential=credential)


class AzuriteSetup:
    """What every Azurite test shares: a setup client and a locked container.

    The locked container holds ``data/secret.txt``; its settings carry a SAS
    token that may only list, so reading that blob is denied by Azurite.
    """

    def __init__(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url
        self.client = azurite_client(endpoint_url)
        self.locked = unique_container("locked")
        container = self.client.create_container(self.locked)
        container.upload_blob("data/secret.txt", b"secret")
        self.list_only_sas = generate_container_sas(
            AZURITE_ACCOUNT,
            self.locked,
            account_key=AZURITE_KEY,
            permission=ContainerSasPermissions(list=True),
            expiry=datetime.datetime.now(datetime.UTC) + datetime.timedelta(days=1),
        )

    def settings(self, home: Path, **options: Any) -> Settings:
        """The account with the development key, the locked container with SAS."""
        account = {"endpoint_url": self.endpoint_url, "account_key": AZURITE_KEY}
        locked = {"sas_token": self.list_only_sas}
        stores = {
            f"az://{AZURITE_ACCOUNT}": {**account, **options},
            f"az://{AZURITE_ACCOUNT}/{self.locked}": locked,
        }
        return Settings(home=home, stores=stores)


@pytest.fixture(scope="session")
def azurite_setup(azurite: emulators.Emulator) -> Iterator[AzuriteSetup]:
    setup = AzuriteSetup(azurite.endpoint_url)
    yield setup
    setup.client.close()


class AzuriteStore:
    """The conformance suite's view of Azurite (no blob versions)."""

    name = "azurite"
    no_versions: str | None = AZURITE_NO_VERSIONS
    no_version_listing: str | None = AZURITE_NO_VERSIONS
    no_listing: str | None = None
    no_denied_access: str | None = None
    no_missing_bucket: str | None = None
    no_etag: str | None = None
    checksums: tuple[str, ...] = ("md5",)
    page_size: int | None = LIST_PAGE_SIZE

    def __init__(self, setup: AzuriteSetup, home: Path) -> None:
        self.setup = setup
        self.client = setup.client
        self.settings = setup.settings(home, max_attempts=1)
        self.provider = AzureProvider(self.settings)

    def make_bucket(self) -> str:
        name = unique_container()
        self.client.create_container(name)
        return name

    def ref(self, bucket: str, key: str, version: str | None = None) -> ObjectRef:
        return ObjectRef("az", bucket, key, version, account=AZURITE_ACCOUNT)

    def put(self, bucket: str, key: str, body: bytes) -> ObjectRef:
        container = self.client.get_container_client(bucket)
        container.upload_blob(key, body, overwrite=True)
        return self.ref(bucket, key)

    def put_stub(self, bucket: str, name: str) -> None:
        """A directory stub, as Data Lake Storage Gen2 and tools write them."""
        container = self.client.get_container_client(bucket)
        container.upload_blob(name, b"", metadata={"hdi_isfolder": "true"})

    def put_many(self, bucket: str, objects: dict[str, bytes]) -> None:
        container = self.client.get_container_client(bucket)

        def put(item: tuple[str, bytes]) -> None:
            container.upload_blob(item[0], item[1], overwrite=True)

        # As many threads as the SDK keeps connections: more only churn them.
        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            list(pool.map(put, objects.items()))

    def delete(self, bucket: str, key: str) -> None:
        self.client.get_container_client(bucket).delete_blob(key)

    def delete_version(self, ref: ObjectRef) -> None:
        raise NotImplementedError(self.no_versions)

    def missing_bucket(self) -> str:
        return unique_container("missing")

    def denied_ref(self) -> ObjectRef:
        return self.ref(self.setup.locked, "data/secret.txt")

    def close(self) -> None:
        self.provider.close()


@pytest.fixture
def azurite_store(
    azurite_setup: AzuriteSetup, tmp_path: Path
) -> Iterator[AzuriteStore]:
    store = AzuriteStore(azurite_setup, tmp_path / "refstore-home")
    yield store
    store.close()


# The protocol-level server, with blob versions.


@pytest.fixture(scope="session")
def azure_blob_server() -> Iterator[BlobServer]:
    server = BlobServer(PROTOCOL_ACCOUNT).start()
    yield server
    server.stop()


class AzureProtocolStore:
    """The conformance suite's view of the protocol-level server (versions)."""

    name = "azure-protocol"
    no_versions: str | None = None
    no_version_listing: str | None = None
    no_listing: str | None = None
    no_denied_access: str | None = None
    no_missing_bucket: str | None = None
    no_etag: str | None = None
    checksums: tuple[str, ...] = ("md5",)
    page_size: int | None = LIST_PAGE_SIZE

    def __init__(self, server: BlobServer, home: Path) -> None:
        self.server = server
        self.locked = unique_container("locked")
        server.create_container(self.locked)
        server.put(self.locked, "data/secret.txt", b"secret")
        account = {
            "endpoint_url": server.endpoint_url,
            "sas_token": server.issue_sas("rl"),
            "max_attempts": 1,
        }
        locked = {"sas_token": server.issue_sas("l")}
        self.settings = Settings(
            home=home,
            stores={
                f"az://{PROTOCOL_ACCOUNT}": account,
                f"az://{PROTOCOL_ACCOUNT}/{self.locked}": locked,
            },
        )
        self.provider = AzureProvider(self.settings)

    def make_bucket(self) -> str:
        name = unique_container()
        self.server.create_container(name)
        return name

    def ref(self, bucket: str, key: str, version: str | None = None) -> ObjectRef:
        return ObjectRef("az", bucket, key, version, account=PROTOCOL_ACCOUNT)

    def put(self, bucket: str, key: str, body: bytes) -> ObjectRef:
        version = self.server.put(bucket, key, body)
        return self.ref(bucket, key, version.version_id)

    def put_stub(self, bucket: str, name: str) -> None:
        """A directory stub, as Data Lake Storage Gen2 and tools write them."""
        self.server.put(bucket, name, b"", metadata={"hdi_isfolder": "true"})

    def put_many(self, bucket: str, objects: dict[str, bytes]) -> None:
        for key, body in objects.items():
            self.server.put(bucket, key, body)

    def delete(self, bucket: str, key: str) -> None:
        self.server.delete(bucket, key)

    def delete_version(self, ref: ObjectRef) -> None:
        assert ref.version is not None, f"{ref} is not pinned"
        self.server.delete_version(ref.bucket, ref.key, ref.version)

    def missing_bucket(self) -> str:
        return unique_container("missing")

    def denied_ref(self) -> ObjectRef:
        return self.ref(self.locked, "data/secret.txt")

    def close(self) -> None:
        self.provider.close()


@pytest.fixture
def azure_protocol_store(
    azure_blob_server: BlobServer, tmp_path: Path
) -> Iterator[AzureProtocolStore]:
    store = AzureProtocolStore(azure_blob_server, tmp_path / "refstore-home")
    yield store
    store.close()
