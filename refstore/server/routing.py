"""The one way every request is served: authenticate, validate, authorise, call.

Routes are data (:class:`Route`): method, path, parameters, body, access
requirements and a handler. :func:`endpoint` turns one into an aiohttp
handler that does the same steps for every route, so that no handler checks
access or input by itself and none can forget to:

1. path, query and header parameters and the JSON body are parsed against
   their specs (400 on anything unexpected);
2. one catalog transaction reads who the bearer token belongs to (anonymous
   without one, 401 for an unknown token or a disabled user) and the
   visibility of the projects the route's requirements name;
3. each access requirement is checked (404 hides a project the principal
   may not read, 403 or 401 refuses what they may not do);
4. the handler runs; records it returns from projects the principal may
   not read (lineage crosses projects) are dropped before rendering.

The OpenAPI document is generated from the same route list
(:mod:`refstore.server.openapi`), and the router is built from it too.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal, TypeVar

from aiohttp import web

from refstore.catalog.access import (
    Action,
    Principal,
    ProjectAccess,
    Refusal,
    decide,
)
from refstore.catalog.served import ServedCatalog
from refstore.server.config import ServerConfig
from refstore.server.errors import ApiError
from refstore.server.render import hide_unreadable, render
from refstore.server.schema import JSON, InputError, Obj, Spec

__all__ = [
    "PRINCIPAL",
    "SERVICE",
    "ActsFor",
    "Anyone",
    "ApiError",
    "Call",
    "InProject",
    "InTeam",
    "Param",
    "ReadsBlob",
    "Requirement",
    "Route",
    "Service",
    "SignedIn",
    "SiteAdmin",
    "endpoint",
]

T = TypeVar("T")


@dataclasses.dataclass
class Service:
    """What every handler needs: the catalog, the settings, the worker threads."""

    catalog: ServedCatalog
    config: ServerConfig
    executor: ThreadPoolExecutor
    # Blob uploads wait on the network: their own threads, so that slow
    # clients never starve catalog work.
    transfers: ThreadPoolExecutor

    async def run(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking catalog work on a worker thread."""
        loop = asyncio.get_running_loop()
        bound = functools.partial(work, *args, **kwargs)
        return await loop.run_in_executor(self.executor, bound)


SERVICE = web.AppKey("refstore_service", Service)
PRINCIPAL = web.RequestKey("refstore_principal", Principal)


# -- access requirements ----------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Anyone:
    """No requirement: health, the OpenAPI document, listings that filter."""


@dataclasses.dataclass(frozen=True)
class SignedIn:
    """Any user with a valid token."""


@dataclasses.dataclass(frozen=True)
class SiteAdmin:
    """A site admin: user management, retention across all projects."""


@dataclasses.dataclass(frozen=True)
class InProject:
    """``action`` in the project named by the path (or by a body field)."""

    action: Action
    field: str | None = None  # a body field holding entity/project


@dataclasses.dataclass(frozen=True)
class ReadsBlob:
    """The blob in the ``digest`` parameter, held by a project one may read."""


@dataclasses.dataclass(frozen=True)
class InTeam:
    """Membership of the ``team`` parameter (``manage``: its admins only)."""

    manage: bool = False


@dataclasses.dataclass(frozen=True)
class ActsFor:
    """A signed-in user acting for themself, unless a site admin.

    ``field`` names a parameter or body field holding the user acted for;
    when it is absent the principal acts for themself.
    """

    field: str = "user"


Requirement = Anyone | SignedIn | SiteAdmin | InProject | ReadsBlob | InTeam | ActsFor


@dataclasses.dataclass(frozen=True)
class Param:
    name: str
    spec: Spec
    where: Literal["path", "query", "header"]
    required: bool = True
    default: Any = None
    description: str | None = None


Handler = Callable[["Call"], Awaitable[Any]]


@dataclasses.dataclass(frozen=True)
class Route:
    method: str
    path: str
    operation: str
    summary: str
    tag: str
    handler: Handler
    access: tuple[Requirement, ...]
    params: tuple[Param, ...] = ()
    body: Obj | None = None
    upload: bool = False  # the body is raw bytes, streamed by the handler
    response: JSON | None = None  # JSON Schema of a JSON answer
    download: bool = False  # the answer is raw bytes
    status: int = 200
    # Error statuses beyond those the access, parameters and body imply
    # (for the OpenAPI document), e.g. 409 for a refused delete.
    refusals: tuple[int, ...] = ()

    @property
    def action(self) -> Action | None:
        """The project action this route performs, if it is about a project."""
        for requirement in self.access:
            if isinstance(requirement, InProject) and requirement.field is None:
                return requirement.action
        return None


@dataclasses.dataclass
class Call:
    """One request, validated: what a handler works with."""

    request: web.Request
    service: Service
    principal: Principal
    params: dict[str, Any]
    body: dict[str, Any]
    # Access facts of the projects the route's requirements name.
    facts: dict[str, ProjectAccess]

    @property
    def catalog(self) -> ServedCatalog:
        return self.service.catalog

    @property
    def project(self) -> str:
        return f"{self.params['entity']}/{self.params['project']}"

    async def run(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await self.service.run(work, *args, **kwargs)


# -- the endpoint -----------------------------------------------------------


def endpoint(route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler serving ``route``."""

    async def serve(request: web.Request) -> web.StreamResponse:
        service = request.app[SERVICE]
        token = _bearer(request)
        params = _parse_params(route, request)
        body = await _parse_body(route, request)
        projects = [_project(r, params, body) for r in _project_rules(route)]
        principal, facts = await service.run(service.catalog.authorize, token, projects)
        if isinstance(principal, Refusal):
            raise ApiError(401, principal.code, principal.detail)
        request[PRINCIPAL] = principal
        call = Call(request, service, principal, params, body, facts)
        for requirement in route.access:
            await _enforce(requirement, call)
        result = await route.handler(call)
        if isinstance(result, web.StreamResponse):
            return result
        shown = await hide_unreadable(call, result)
        return web.json_response(render(shown), status=route.status)

    return serve


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(401, "unauthenticated", "use Authorization: Bearer TOKEN")
    return token.strip()


def _project_rules(route: Route) -> list[InProject]:
    return [r for r in route.access if isinstance(r, InProject)]


def _project(
    requirement: InProject, params: Mapping[str, Any], body: Mapping[str, Any]
) -> str:
    if requirement.field is not None:
        return str(body[requirement.field])
    return f"{params['entity']}/{params['project']}"


def _parse_params(route: Route, request: web.Request) -> dict[str, Any]:
    sources: dict[str, Mapping[str, str]] = {
        "path": request.match_info,
        "query": request.query,
        "header": request.headers,
    }
    known = {param.name for param in route.params if param.where == "query"}
    unknown = sorted(set(request.query) - known)
    if unknown:
        raise InputError("query", "unknown parameters " + ", ".join(unknown))
    parsed = {}
    for param in route.params:
        text = sources[param.where].get(param.name)
        if text is None:
            if param.required:
                raise InputError(f"{param.where}.{param.name}", "is required")
            parsed[param.name] = param.default
        else:
            parsed[param.name] = param.spec.from_text(
                text, f"{param.where}.{param.name}"
            )
    return parsed


def _reject_constant(name: str) -> Any:
    raise InputError("body", f"{name} is not a JSON number")


async def _parse_body(route: Route, request: web.Request) -> dict[str, Any]:
    if route.body is None:
        return {}
    raw = await request.read()
    if not raw.strip():
        return route.body.parse({})
    try:
        data = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise InputError("body", f"is not valid JSON: {exc}") from exc
    return route.body.parse(data)


# -- access -----------------------------------------------------------------


async def _enforce(requirement: Requirement, call: Call) -> None:
    principal = call.principal
    if isinstance(requirement, Anyone):
        return
    if isinstance(requirement, SignedIn | SiteAdmin | ActsFor) and principal.anonymous:
        raise ApiError(401, "unauthenticated", "sign in first: `refstore login`")
    if isinstance(requirement, SiteAdmin) and not principal.is_admin:
        raise ApiError(403, "forbidden", "only site admins may do this")
    if isinstance(requirement, InProject):
        _enforce_project(requirement, call)
    elif isinstance(requirement, ReadsBlob):
        digest = call.params["digest"]
        if not await call.run(call.catalog.readable_blob, principal, digest):
            raise ApiError(404, "not_found", f"no blob {digest} that you may read")
    elif isinstance(requirement, InTeam):
        _enforce_team(requirement, call)
    elif isinstance(requirement, ActsFor):
        _enforce_acting(requirement, call)


def _enforce_project(requirement: InProject, call: Call) -> None:
    project = _project(requirement, call.params, call.body)
    verdict = decide(call.principal, call.facts[project], requirement.action)
    if verdict == "not_found":
        raise ApiError(404, "not_found", f"no project {project} that you may see")
    if verdict == "unauthenticated":
        raise ApiError(
            401,
            "unauthenticated",
            f"sign in (`refstore login`) to {requirement.action} in {project}",
        )
    if verdict == "forbidden":
        entity = project.split("/", 1)[0]
        raise ApiError(
            403,
            "forbidden",
            f"you may read {project} but not {requirement.action} in it; ask "
            f"an admin of {entity} for membership",
        )


def _enforce_team(requirement: InTeam, call: Call) -> None:
    team = call.params["team"]
    principal = call.principal
    if not principal.member_of(team):
        raise ApiError(404, "not_found", f"no team {team!r} that you may see")
    if requirement.manage and not principal.manages(team):
        raise ApiError(403, "forbidden", f"only admins of {team!r} may do this")


def _enforce_acting(requirement: ActsFor, call: Call) -> None:
    user = call.params.get(requirement.field) or call.body.get(requirement.field)
    if user not in (None, call.principal.name) and not call.principal.is_admin:
        raise ApiError(403, "forbidden", "only site admins act for other users")
