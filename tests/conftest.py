"""Shared fixtures: real S3 emulators, isolated from the user's AWS setup.

* ``s3_server`` (session, parametrised ``moto`` / ``localstack``): a running
  emulator with ``.name`` and ``.endpoint_url``.
* ``s3`` (function): an :class:`S3Env` on each of those emulators, so a test
  using it runs twice.
* ``moto_s3`` (function): the same on moto only, for tests that need S3 but
  not the double run.

An emulator that is not installed skips its tests, with the reason saying how
to install it; with ``REFSTORE_REQUIRE_EMULATORS=1`` (CI) it fails instead.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from refstore.config import Settings
from tests import emulators

if TYPE_CHECKING:
    from refstore.providers.s3 import S3Provider

REQUIRE_EMULATORS = os.environ.get("REFSTORE_REQUIRE_EMULATORS") == "1"

# Store fixtures of the provider tests, one plugin module per store family,
# each listed with the SDK it needs. A module not written yet, or whose SDK is
# missing, is left out; tests/providers/conftest.py then skips its stores.
_STORE_PLUGINS = (
    ("tests.providers.store_azure", "azure.storage.blob"),
    ("tests.providers.store_gcs", "google.cloud.storage"),
    ("tests.providers.store_s3", "boto3"),
    ("tests.providers.store_http", "aiohttp"),
    ("tests.providers.store_fsspec", "fsspec"),
)


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


pytest_plugins = [
    module for module, sdk in _STORE_PLUGINS if _importable(module) and _importable(sdk)
]


@pytest.fixture(scope="session", autouse=True)
def _isolated_aws_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    scratch = tmp_path_factory.mktemp("aws")
    with pytest.MonkeyPatch.context() as patch:
        for name in emulators._CLEARED_AWS_VARS:
            patch.delenv(name, raising=False)
        for name, value in emulators.fake_aws_env(scratch).items():
            patch.setenv(name, value)
        yield


def start_or_skip(name: str, workdir: Path, **options: Any) -> emulators.Emulator:
    """Start an emulator; skip (or fail under REFSTORE_REQUIRE_EMULATORS=1)."""
    starters = {"moto": emulators.start_moto, "localstack": emulators.start_localstack}
    try:
        return starters[name](workdir, **options)
    except emulators.EmulatorUnavailableError as exc:
        if REQUIRE_EMULATORS:
            pytest.fail(f"{exc} (REFSTORE_REQUIRE_EMULATORS=1)")
        pytest.skip(str(exc))


@pytest.fixture(params=["embedded", "service"])
def catalog_mode(request: pytest.FixtureRequest) -> str:
    """Where workflow tests keep their catalog: embedded, or behind a service."""
    mode: str = request.param
    return mode


@pytest.fixture(scope="session")
def moto_server(
    tmp_path_factory: pytest.TempPathFactory, _isolated_aws_env: None
) -> Iterator[emulators.Emulator]:
    with start_or_skip("moto", tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(scope="session")
def localstack_server(
    tmp_path_factory: pytest.TempPathFactory, _isolated_aws_env: None
) -> Iterator[emulators.Emulator]:
    with start_or_skip("localstack", tmp_path_factory.mktemp("localstack")) as server:
        yield server


@pytest.fixture(
    scope="session",
    params=[
        pytest.param("moto", id="moto"),
        pytest.param("localstack", id="localstack", marks=pytest.mark.localstack),
    ],
)
def s3_server(request: pytest.FixtureRequest) -> emulators.Emulator:
    server: emulators.Emulator = request.getfixturevalue(f"{request.param}_server")
    return server


@pytest.fixture(scope="session")
def _setup_clients() -> Iterator[dict[str, Any]]:
    clients: dict[str, Any] = {}
    yield clients
    for client in clients.values():
        client.close()


@dataclasses.dataclass
class S3Env:
    """One emulator, seen by a test.

    ``client`` is a plain boto3 client for arranging data; ``provider`` is the
    code under test, configured through ``settings`` like a user would.
    """

    name: str
    endpoint_url: str
    client: Any
    settings: Settings
    provider: S3Provider

    def make_bucket(self, versioning: str | None = "Enabled") -> str:
        """A new, uniquely named bucket: "Enabled", "Suspended" or None."""
        return emulators.make_bucket(self.client, versioning)

    def put(self, bucket: str, key: str, body: bytes = b"data", **params: Any) -> Any:
        """PUT one object; return the PutObject answer (VersionId, ETag)."""
        return self.client.put_object(Bucket=bucket, Key=key, Body=body, **params)


def make_s3_env(
    server: emulators.Emulator, home: Path, clients: dict[str, Any]
) -> S3Env:
    from refstore.providers.s3 import S3Provider

    url = server.endpoint_url
    settings = Settings(
        home=home, stores={"s3": {"endpoint_url": url, "region": emulators.REGION}}
    )
    client = setup_client_for(server, clients)
    return S3Env(server.name, url, client, settings, S3Provider(settings))


def setup_client_for(server: emulators.Emulator, clients: dict[str, Any]) -> Any:
    """The session's setup client for ``server`` (one per emulator)."""
    if server.endpoint_url not in clients:
        clients[server.endpoint_url] = emulators.setup_client(server.endpoint_url)
    return clients[server.endpoint_url]


@pytest.fixture
def s3(
    s3_server: emulators.Emulator, tmp_path: Path, _setup_clients: dict[str, Any]
) -> Iterator[S3Env]:
    env = make_s3_env(s3_server, tmp_path / "refstore-home", _setup_clients)
    yield env
    env.provider.close()


@pytest.fixture
def moto_s3(
    moto_server: emulators.Emulator, tmp_path: Path, _setup_clients: dict[str, Any]
) -> Iterator[S3Env]:
    env = make_s3_env(moto_server, tmp_path / "refstore-home", _setup_clients)
    yield env
    env.provider.close()


@dataclasses.dataclass(frozen=True)
class LockedBucket:
    """A bucket on a moto server that checks credentials and IAM policies.

    moto checks signatures and policies once told to (``reset_moto_auth``),
    so credentials errors are real answers from a real server here. The
    bucket is versioned and holds ``data/a.txt`` and ``data/b.txt``. The
    ``reader`` user may only list objects (s3:ListBucket): no GetObject, no
    GetBucketVersioning, no ListBucketVersions.
    """

    endpoint_url: str
    bucket: str
    reader_key: str
    reader_secret: str

    def settings(self, home: Path, key: str, secret: str) -> Settings:
        """Settings that sign requests to this bucket with ``key``/``secret``."""
        options = {
            "endpoint_url": self.endpoint_url,
            "region": emulators.REGION,
            "aws_access_key_id": key,
            "aws_secret_access_key": secret,
            "max_attempts": 1,
        }
        return Settings(home=home, stores={f"s3://{self.bucket}": options})


@pytest.fixture(scope="session")
def moto_locked(
    tmp_path_factory: pytest.TempPathFactory, _isolated_aws_env: None
) -> Iterator[LockedBucket]:
    import json

    with start_or_skip("moto", tmp_path_factory.mktemp("moto-iam")) as server:
        url = server.endpoint_url
        client = emulators.setup_client(url)
        iam = _iam_client(url)
        bucket = emulators.make_bucket(client, "Enabled", prefix="locked")
        emulators.put_objects(
            client, bucket, [("data/a.txt", b"a"), ("data/b.txt", b"b")]
        )
        iam.create_user(UserName="reader")
        key = iam.create_access_key(UserName="reader")["AccessKey"]
        policy = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": "*"}
            ],
        }
        iam.put_user_policy(
            UserName="reader", PolicyName="list-only", PolicyDocument=json.dumps(policy)
        )
        client.close()
        iam.close()
        emulators.reset_moto_auth(url, free_requests=0)
        yield LockedBucket(url, bucket, key["AccessKeyId"], key["SecretAccessKey"])


def _iam_client(endpoint_url: str) -> Any:
    import boto3

    return boto3.session.Session().client(
        "iam", endpoint_url=endpoint_url, region_name=emulators.REGION
    )
