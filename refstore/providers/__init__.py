"""Object-store providers behind one contract, found by URI scheme.

:class:`Providers` hands out one provider per registration, created on first
use: the provider's module (and its SDK) is imported only when a reference
with its scheme shows up, so ``refstore[s3]`` is needed only for ``s3://``.

A provider joins by one line in ``_REGISTRY``: the module and class to load,
the extra that installs its SDK, and the SDK's top-level modules (to tell a
missing SDK from a bug). Every provider class takes the :class:`Settings`.
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


_REGISTRY: dict[str, _Registration] = {
    "s3": _Registration(
        "refstore.providers.s3", "S3Provider", "s3", ("boto3", "botocore")
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
    if registration is None:
        raise InvalidReferenceError(
            f"refstore has no provider for {scheme}:// references; supported "
            f"schemes: {', '.join(supported_schemes())}"
        )
    return registration


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
