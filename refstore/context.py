"""The context an operation runs in: settings, providers, catalog.

Most callers never see this: ``refstore.Artifact`` and ``refstore.Api`` use
the context built from the environment, rebuilt whenever the environment's
settings change. Tests and embedding applications pass their own.
"""

from __future__ import annotations

import datetime
import threading
from typing import TYPE_CHECKING

from refstore.config import Settings

if TYPE_CHECKING:
    from refstore.blobs import BlobStore
    from refstore.catalog.base import Catalog, Clock
    from refstore.providers import Providers

__all__ = ["Context"]

_lock = threading.Lock()
_current: Context | None = None


class Context:
    """Settings plus the adapters built from them, opened on first use."""

    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        # What "now" is for TTLs; tests pass a clock they control.
        self.clock = clock
        self._providers: Providers | None = None
        self._catalog: Catalog | None = None
        self._lock = threading.Lock()

    @classmethod
    def current(cls) -> Context:
        """The context for the current environment (cached while it holds)."""
        global _current
        settings = Settings.from_env()
        with _lock:
            if _current is None or _current.settings != settings:
                if _current is not None:
                    _current.close()
                _current = cls(settings)
            return _current

    @property
    def providers(self) -> Providers:
        from refstore.providers import Providers

        with self._lock:
            if self._providers is None:
                self._providers = Providers(self.settings)
            return self._providers

    @property
    def catalog(self) -> Catalog:
        from refstore.catalog import open_catalog

        with self._lock:
            if self._catalog is None:
                self._catalog = open_catalog(self.settings, self.clock)
            return self._catalog

    @property
    def blobs(self) -> BlobStore:
        return self.catalog.blobs

    def now(self) -> datetime.datetime:
        return self.clock() if self.clock is not None else _utc_now()

    def close(self) -> None:
        """Close the catalog and every provider (their sessions and threads)."""
        with self._lock:
            if self._catalog is not None:
                self._catalog.close()
                self._catalog = None
            if self._providers is not None:
                self._providers.close()
                self._providers = None


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
