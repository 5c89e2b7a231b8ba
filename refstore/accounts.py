"""Signing in to a refstore service, and managing its users, teams and tokens.

The workflow behind ``refstore login``, ``token``, ``user``, ``team`` and
``project visibility``. These talk to the service that ``REFSTORE_URL``
names (or the URL given to :func:`login`); an embedded catalog has no users,
so they refuse to run against one.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from refstore.catalog.http_admin import ServiceAdmin
from refstore.catalog.http_transport import Transport
from refstore.config import Settings
from refstore.credentials import forget_token, load_token, save_token
from refstore.errors import CatalogError, ConfigError
from refstore.names import parse_project

__all__ = ["login", "logout", "service_admin", "set_visibility"]


def _service_url(settings: Settings, url: str | None) -> str:
    chosen = url or settings.url
    if not chosen or not chosen.startswith(("http://", "https://")):
        raise ConfigError(
            "this command talks to a refstore service: set "
            "REFSTORE_URL=https://refstore.example.com (or pass the URL); the "
            "embedded catalog has no users, teams or tokens"
        )
    return chosen.rstrip("/")


@contextlib.contextmanager
def service_admin(
    settings: Settings, url: str | None = None, token: str | None = None
) -> Iterator[ServiceAdmin]:
    """The service's identity API, as the token in use."""
    chosen = _service_url(settings, url)
    found = token or settings.token or load_token(settings.home, chosen)
    transport = Transport(chosen, found)
    try:
        yield ServiceAdmin(transport)
    finally:
        transport.close()


def login(
    settings: Settings, url: str | None, token: str
) -> tuple[dict[str, Any], Path]:
    """Check ``token`` at the service, then save it for that URL (0600)."""
    chosen = _service_url(settings, url)
    with service_admin(settings, chosen, token) as admin:
        identity = admin.whoami()
    if identity.get("user") is None:
        raise CatalogError(f"the service at {chosen} does not know this token")
    return identity, save_token(settings.home, chosen, token)


def logout(settings: Settings, url: str | None) -> bool:
    return forget_token(settings.home, _service_url(settings, url))


def set_visibility(settings: Settings, project: str, visibility: str) -> dict[str, Any]:
    entity, name = parse_project(project)
    with service_admin(settings) as admin:
        return admin.set_visibility(entity, name, visibility)
