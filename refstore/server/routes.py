"""Every route of the service, in one list: the router and OpenAPI both read it."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from refstore.server import (
    routes_admin,
    routes_blobs,
    routes_projects,
    routes_runs,
    routes_versions,
)
from refstore.server.openapi import document
from refstore.server.routing import Anyone, Call, Route
from refstore.server.specs import envelope

__all__ = ["ROUTES"]


async def healthz(call: Call) -> Any:
    await call.run(call.catalog.ping)
    return {"status": "ok"}


async def openapi(call: Call) -> web.StreamResponse:
    from refstore import __version__

    return web.json_response(document(ROUTES, __version__))


ROUTES: list[Route] = [
    *routes_versions.ROUTES,
    *routes_projects.ROUTES,
    *routes_runs.ROUTES,
    *routes_blobs.ROUTES,
    *routes_admin.ROUTES,
    Route(
        "GET",
        "/healthz",
        "healthz",
        "Whether the service and its database answer",
        "service",
        healthz,
        (Anyone(),),
        response=envelope(status={"type": "string"}),
    ),
    Route(
        "GET",
        "/openapi.json",
        "openapi",
        "This document",
        "service",
        openapi,
        (Anyone(),),
        response={"type": "object"},
    ),
]
