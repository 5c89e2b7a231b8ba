"""Object-store providers behind one contract, found by URI scheme.

:class:`Providers` hands out one provider per registration, created on first
use: the provider's module (and its SDK) is imported only when a reference
with its scheme shows up, so ``refstore[s3]`` is needed only for ``s3://``.

A provider joins by one line in ``_REGISTRY``: the module and class to load,
the extra that installs its SDK, and the SDK's top-level modules (to tell a
missing SDK from a bug). Every provider class takes the :class:`Settings`.
A scheme without a registration that fsspec knows (ftp, sftp, hdfs, ...) is
served by the fsspec provider, unless a dedicated provider owns it.
"""

from __future__ import annotations

import dataclasses
import importlib
import threading
from collections import Counter
from collections.abc import Callable

from refstore.config import Settings
from refstore.errors import InvalidReferenceError, MissingDependencyError
from refstore.providers.base import Provider, RequestCounter, Versioning
from refstore.uri import ObjectRef

__all__ = [
    "Provider",
    "Providers",
    "RequestCounter",
    "Versioning",
    "supported_schemes",
]


@dataclasses.dataclass(frozen=True)
class _Registration:
    module: str
    class_name: str
    extra: str
    sdk: tuple[str, ...]


_HTTP = _Registration(
    "refstore.providers.http", "HttpProvider", "http", ("aiohttp", "yarl", "multidict")
)
_FSSPEC = _Registration(
    "refstore.providers.fsspec", "FsspecProvider", "fsspec", ("fsspec",)
)
# Schemes that only their dedicated provider serves: through fsspec they would
# lose version pins, so they never fall back to it.
_NEVER_FSSPEC = frozenset({"s3", "gs", "az", "http", "https"})

_REGISTRY: dict[str, _Registration] = {
    "http": _HTTP,
    "https": _HTTP,
    "file": _FSSPEC,
    "memory": _FSSPEC,
    "s3": _Registration(
        "refstore.providers.s3", "S3Provider", "s3", ("boto3", "botocore")
    ),
    "az": _Registration(
        "refstore.providers.azure",
        "AzureProvider",
        "azure",
        ("azure", "requests", "urllib3"),
    ),
    "gs": _Registration(
        "refstore.providers.gcs", "GcsProvider", "gcs", ("google", "requests")
    ),
}


def supported_schemes() -> list[str]:
    """The URI schemes refstore has a provider for."""
    return sorted(_REGISTRY)


class Providers:
    """The providers for one set of settings, created lazily, one per kind."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._instances: dict[_Registration, Provider] = {}
        self._lock = threading.Lock()

    def for_ref(self, ref: ObjectRef) -> Provider:
        return self.for_scheme(ref.scheme)

    def for_scheme(self, scheme: str) -> Provider:
        registration = _registration(scheme)
        with self._lock:
            provider = self._instances.get(registration)
            if provider is None:
                factory = _provider_class(registration, scheme)
                provider = self._instances[registration] = factory(self.settings)
        return provider

    @property
    def requests(self) -> dict[str, int]:
        """Requests sent so far by every provider created here, by operation."""
        with self._lock:
            providers = list(self._instances.values())
        totals: Counter[str] = Counter()
        for provider in providers:
            totals.update(provider.requests.snapshot())
        return dict(totals)

    def close(self) -> None:
        """Close the providers that hold connections (they stay usable)."""
        with self._lock:
            providers = list(self._instances.values())
        for provider in providers:
            close = getattr(provider, "close", None)
            if callable(close):
                close()


def _registration(scheme: str) -> _Registration:
    registration = _REGISTRY.get(scheme.lower())
    if registration is None and _fsspec_serves(scheme.lower()):
        registration = _FSSPEC
    if registration is None:
        raise InvalidReferenceError(
            f"refstore has no provider for {scheme}:// references; supported "
            f"schemes: {', '.join(supported_schemes())}, and any protocol "
            "fsspec knows (with refstore[fsspec] installed)"
        )
    return registration


def _fsspec_serves(scheme: str) -> bool:
    """Whether fsspec, if installed, knows ``scheme`` and nothing else serves it."""
    if scheme in _NEVER_FSSPEC:
        return False
    try:
        registry = importlib.import_module("fsspec.registry")
    except ImportError:
        return False
    # Built-in protocols, then those registered at run time.
    return scheme in registry.available_protocols() or scheme in registry.registry


def _provider_class(
    registration: _Registration, scheme: str
) -> Callable[[Settings], Provider]:
    try:
        module = importlib.import_module(registration.module)
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in registration.sdk:
            raise
        raise MissingDependencyError(
            registration.extra, f"{scheme}:// references"
        ) from exc
    factory: Callable[[Settings], Provider] = getattr(module, registration.class_name)
    return factory
