"""The provider registry: one provider per kind, found by scheme, SDKs loaded
lazily, and fsspec serving the schemes that no dedicated provider owns."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from refstore.config import Settings
from refstore.errors import InvalidReferenceError, MissingDependencyError
from refstore.providers import Providers
from refstore.providers.base import Provider
from refstore.providers.fsspec import FsspecProvider
from refstore.providers.http import HttpProvider
from refstore.providers.s3 import S3Provider
from refstore.uri import ObjectRef
from tests.conftest import S3Env


@pytest.fixture
def providers(tmp_path: Path) -> Providers:
    return Providers(Settings(home=tmp_path))


def test_one_provider_per_kind(moto_s3: S3Env) -> None:
    providers = Providers(moto_s3.settings)
    bucket = moto_s3.make_bucket()
    moto_s3.put(bucket, "k.txt")
    ref = ObjectRef("s3", bucket, "k.txt")

    provider = providers.for_ref(ref)
    provider.stat(ref)

    assert isinstance(provider, S3Provider)
    assert isinstance(provider, Provider)
    assert providers.for_scheme("S3") is provider
    assert providers.requests == {"HeadObject": 1}
    providers.close()


def test_http_and_https_share_a_provider(providers: Providers) -> None:
    http = providers.for_scheme("http")

    assert isinstance(http, HttpProvider)
    assert providers.for_scheme("https") is http
    providers.close()


@pytest.mark.parametrize("scheme", ["file", "memory", "ftp", "local"])
def test_fsspec_serves_file_memory_and_the_protocols_it_knows(
    providers: Providers, scheme: str
) -> None:
    provider = providers.for_scheme(scheme)

    assert isinstance(provider, FsspecProvider)
    assert providers.for_scheme("memory") is provider


@pytest.mark.parametrize("scheme", ["s3", "gs", "az"])
def test_dedicated_schemes_never_fall_back_to_fsspec(
    providers: Providers, scheme: str
) -> None:
    # fsspec knows s3, gs and az too, but through it no version is pinned.
    try:
        provider = providers.for_scheme(scheme)
    except InvalidReferenceError:
        return  # no dedicated provider registered: refused, which is also right
    assert not isinstance(provider, FsspecProvider)


def test_unknown_scheme_is_refused(providers: Providers) -> None:
    with pytest.raises(InvalidReferenceError, match=r"supported schemes: .*s3") as e:
        providers.for_scheme("nosuchproto")

    assert "any protocol fsspec knows" in str(e.value)


def test_without_fsspec_other_protocols_are_refused(
    providers: Providers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "fsspec", None)
    monkeypatch.setitem(sys.modules, "fsspec.registry", None)

    with pytest.raises(InvalidReferenceError, match=r"refstore\[fsspec\] installed"):
        providers.for_scheme("ftp")


@pytest.mark.parametrize(
    ("scheme", "sdk", "module", "extra"),
    [
        pytest.param("s3", "boto3", "s3", "s3", id="s3"),
        pytest.param("https", "aiohttp", "http", "http", id="https"),
        pytest.param("file", "fsspec", "fsspec", "fsspec", id="file"),
    ],
)
def test_missing_sdk_names_the_extra(
    providers: Providers,
    monkeypatch: pytest.MonkeyPatch,
    scheme: str,
    sdk: str,
    module: str,
    extra: str,
) -> None:
    # None in sys.modules makes "import SDK" fail as if it were not installed;
    # the provider module and its siblings (s3_client) are imported afresh.
    monkeypatch.setitem(sys.modules, sdk, None)
    for name in list(sys.modules):
        if name.startswith(f"refstore.providers.{module}"):
            monkeypatch.delitem(sys.modules, name)

    message = rf"Install refstore\[{extra}\] to use {scheme}:// references"
    with pytest.raises(MissingDependencyError, match=message):
        providers.for_scheme(scheme)
