"""The refstore service: one shared catalog for a team, with access control.

``refstore serve`` runs it; :func:`create_app` builds the aiohttp
application for embedding and tests. See :mod:`refstore.server.routing` for
how every request is authenticated, validated and authorised.
"""

from __future__ import annotations

from refstore.server.app import create_app, serve
from refstore.server.config import ServerConfig

__all__ = ["ServerConfig", "create_app", "serve"]
