"""Routes for projects, artifacts, versions, aliases and a version's lineage.

Handlers translate: validated input to a catalog call, its records back
out. Access is declared on each route and checked before the handler runs.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from refstore.catalog.base import (
    LoadedFields,
    NewVersion,
    VersionEdit,
    VersionRecord,
)
from refstore.catalog.served import fingerprint
from refstore.catalog.sql_access import RequestKey
from refstore.server.errors import ApiError
from refstore.server.routing import Call, InProject, Param, Route
from refstore.server.schema import Array, Bool, Field, Int, JsonObject, Obj, Str
from refstore.server.specs import (
    ALIAS,
    DIGEST,
    LOADED,
    NAME,
    SELECTOR,
    TEXT,
    VERSION,
    Ttl,
    envelope,
    many,
    nullable,
    optional,
    ref,
)
from refstore.ttl import INHERIT

__all__ = ["PROJECT_PARAMS", "ROUTES", "artifact_params"]

PROJECT_PARAMS = (
    Param("entity", NAME, "path", description="the user or team owning the project"),
    Param("project", NAME, "path"),
)


def artifact_params(*more: Param) -> tuple[Param, ...]:
    return (*PROJECT_PARAMS, Param("name", NAME, "path"), *more)


_BASE = "/api/v1/projects/{entity}/{project}"
_ARTIFACT = _BASE + "/artifacts/{name}"
_KEY = Str(pattern=r"[A-Za-z0-9_-]{16,64}", max_length=64)


# -- projects and artifacts -------------------------------------------------


async def list_projects(call: Call) -> Any:
    return {"projects": await call.run(call.catalog.list_projects)}


async def get_project(call: Call) -> Any:
    return await call.run(call.catalog.get_project, call.project)


async def list_artifacts(call: Call) -> Any:
    return {"artifacts": await call.run(call.catalog.list_artifacts, call.project)}


async def list_types(call: Call) -> Any:
    types = await call.run(call.catalog.list_artifact_types, call.project)
    return {"types": types}


# -- versions ---------------------------------------------------------------


_LOG_BODY = Obj(
    {
        "type": Field(NAME),
        "digest": Field(DIGEST),
        "manifest_blob": Field(DIGEST),
        "entry_count": Field(Int()),
        "total_size": Field(Int()),
        "description": optional(TEXT),
        "metadata": Field(JsonObject(), required=False, default={}),
        "aliases": Field(Array(ALIAS, max_items=100), required=False, default=[]),
        "tags": Field(Array(NAME, max_items=100), required=False, default=[]),
        "ttl": Field(Ttl(), required=False, default=INHERIT),
        "run": optional(NAME),
    },
    description="a version whose manifest blob was uploaded to the project",
)


async def log_version(call: Call) -> Any:
    body = call.body
    new = NewVersion(
        project=call.project,
        name=call.params["name"],
        type=body["type"],
        digest=body["digest"],
        manifest_blob=body["manifest_blob"],
        entry_count=body["entry_count"],
        total_size=body["total_size"],
        description=body["description"],
        metadata=body["metadata"],
        aliases=tuple(body["aliases"]),
        tags=tuple(body["tags"]),
        ttl=body["ttl"],
        run=body["run"],
    )
    key = call.params["Idempotency-Key"]
    request = None
    if key is not None:
        request = RequestKey(key, call.principal.label, fingerprint(new))
    limits = call.service.config.manifest_limits
    record, created = await call.run(call.catalog.log_checked, new, request, limits)
    return {"version": record, "created": created}


async def list_versions(call: Call) -> Any:
    found = await call.run(
        call.catalog.list_versions, call.project, call.params["name"]
    )
    return {"versions": found}


async def get_version(call: Call) -> Any:
    return await _selected(call)


async def _selected(call: Call) -> VersionRecord:
    params = call.params
    return await call.run(
        call.catalog.get_version, call.project, params["name"], params["selector"]
    )


_EDIT_BODY = Obj(
    {
        "description": optional(TEXT),
        "metadata": Field(JsonObject()),
        "tags": Field(Array(NAME, max_items=100)),
        "ttl": Field(Ttl()),
        "add_aliases": Field(Array(ALIAS, max_items=100), required=False, default=[]),
        "remove_aliases": Field(
            Array(ALIAS, max_items=100), required=False, default=[]
        ),
        "loaded": optional(LOADED),
    }
)


async def update_version(call: Call) -> Any:
    body = call.body
    edit = VersionEdit(
        description=body["description"],
        metadata=body["metadata"],
        tags=tuple(body["tags"]),
        ttl=body["ttl"],
        add_aliases=tuple(body["add_aliases"]),
        remove_aliases=tuple(body["remove_aliases"]),
        loaded=_loaded(body["loaded"]),
    )
    params = call.params
    return await call.run(
        call.catalog.update_version,
        call.project,
        params["name"],
        params["version"],
        edit,
    )


def _loaded(body: dict[str, Any] | None) -> LoadedFields | None:
    # None from clients older than compare-and-set: they keep last-writer-wins.
    if body is None:
        return None
    return LoadedFields(
        description=body["description"],
        metadata=body["metadata"],
        tags=tuple(body["tags"]),
        ttl=body["ttl"],
    )


async def delete_version(call: Call) -> Any:
    params = call.params
    return await call.run(
        call.catalog.delete_version,
        call.project,
        params["name"],
        params["version"],
        delete_aliases=params["delete_aliases"],
    )


async def download_manifest(call: Call) -> web.StreamResponse:
    record = await _selected(call)
    path = call.catalog.blobs.path(record.manifest_blob)
    if not path.is_file():
        raise ApiError(404, "not_found", f"the manifest of {record.path} is gone")
    headers = {
        "Content-Type": "application/zstd",
        "X-Refstore-Manifest-Blob": record.manifest_blob,
    }
    return web.FileResponse(path, headers=headers)


# -- aliases and lineage ----------------------------------------------------


_ALIAS_BODY = Obj(
    {
        "version": Field(VERSION),
        "move": Field(Bool(), required=False, default=True),
    }
)


async def set_alias(call: Call) -> Any:
    params, body = call.params, call.body
    return await call.run(
        call.catalog.set_alias,
        call.project,
        params["name"],
        params["alias"],
        body["version"],
        move=body["move"],
    )


async def remove_alias(call: Call) -> Any:
    params = call.params
    await call.run(
        call.catalog.remove_alias,
        call.project,
        params["name"],
        params["alias"],
        params["version"],
    )
    return {"removed": params["alias"]}


async def logged_by(call: Call) -> Any:
    params = call.params
    run = await call.run(
        call.catalog.logged_by, call.project, params["name"], params["version"]
    )
    return {"run": run}


async def used_by(call: Call) -> Any:
    params = call.params
    runs = await call.run(
        call.catalog.used_by, call.project, params["name"], params["version"]
    )
    return {"runs": runs}


_READ = (InProject("read"),)
_WRITE = (InProject("write"),)
_DELETE = (InProject("delete"),)
_SELECTOR = Param("selector", SELECTOR, "path")
_VERSION = Param("version", VERSION, "path", description="v0, v1, ...")
_VERSION_RECORD = ref("Version")

ROUTES = [
    Route(
        "GET",
        "/api/v1/projects",
        "list_projects",
        "The projects you may read",
        "projects",
        list_projects,
        (),
        response=envelope(projects=many("Project")),
    ),
    Route(
        "GET",
        _BASE,
        "get_project",
        "One project",
        "projects",
        get_project,
        _READ,
        PROJECT_PARAMS,
        response=ref("Project"),
    ),
    Route(
        "GET",
        _BASE + "/artifacts",
        "list_artifacts",
        "The artifacts of a project",
        "projects",
        list_artifacts,
        _READ,
        PROJECT_PARAMS,
        response=envelope(artifacts=many("Artifact")),
    ),
    Route(
        "GET",
        _BASE + "/artifact-types",
        "list_artifact_types",
        "The artifact types of a project",
        "projects",
        list_types,
        _READ,
        PROJECT_PARAMS,
        response=envelope(types={"type": "array", "items": {"type": "string"}}),
    ),
    Route(
        "POST",
        _ARTIFACT + "/versions",
        "log_version",
        "Log a version whose manifest was uploaded; safe to retry with a key",
        "versions",
        log_version,
        _WRITE,
        artifact_params(
            Param(
                "Idempotency-Key",
                _KEY,
                "header",
                required=False,
                description="retries with the same key log at most once",
            )
        ),
        body=_LOG_BODY,
        response=envelope(version=_VERSION_RECORD, created={"type": "boolean"}),
    ),
    Route(
        "GET",
        _ARTIFACT + "/versions",
        "list_versions",
        "Every version of an artifact, oldest first",
        "versions",
        list_versions,
        _READ,
        artifact_params(),
        response=envelope(versions=many("Version")),
    ),
    Route(
        "GET",
        _ARTIFACT + "/versions/{selector}",
        "get_version",
        "The version a selector (vN or alias) names",
        "versions",
        get_version,
        _READ,
        artifact_params(_SELECTOR),
        response=_VERSION_RECORD,
    ),
    Route(
        "GET",
        _ARTIFACT + "/versions/{selector}/manifest",
        "download_manifest",
        "The stored manifest (zstd-compressed JSON lines), streamed",
        "versions",
        download_manifest,
        _READ,
        artifact_params(_SELECTOR),
        download=True,
    ),
    Route(
        "PUT",
        _ARTIFACT + "/versions/{version}",
        "update_version",
        "Edit a version's description, metadata, tags, TTL and aliases",
        "versions",
        update_version,
        _WRITE,
        artifact_params(_VERSION),
        body=_EDIT_BODY,
        response=_VERSION_RECORD,
        refusals=(409,),
    ),
    Route(
        "DELETE",
        _ARTIFACT + "/versions/{version}",
        "delete_version",
        "Delete a version",
        "versions",
        delete_version,
        _DELETE,
        artifact_params(
            _VERSION,
            Param("delete_aliases", Bool(), "query", required=False, default=False),
        ),
        response=_VERSION_RECORD,
    ),
    Route(
        "PUT",
        _ARTIFACT + "/aliases/{alias}",
        "set_alias",
        "Point an alias at a version",
        "aliases",
        set_alias,
        _WRITE,
        artifact_params(Param("alias", ALIAS, "path")),
        body=_ALIAS_BODY,
        response=_VERSION_RECORD,
    ),
    Route(
        "DELETE",
        _ARTIFACT + "/aliases/{alias}",
        "remove_alias",
        "Remove an alias (from one version only, when given)",
        "aliases",
        remove_alias,
        _DELETE,
        artifact_params(
            Param("alias", ALIAS, "path"),
            Param("version", VERSION, "query", required=False),
        ),
        response=envelope(removed={"type": "string"}),
    ),
    Route(
        "GET",
        _ARTIFACT + "/versions/{version}/logged-by",
        "logged_by",
        "The run that logged a version",
        "lineage",
        logged_by,
        _READ,
        artifact_params(_VERSION),
        response=envelope(run=nullable(ref("Run"))),
    ),
    Route(
        "GET",
        _ARTIFACT + "/versions/{version}/used-by",
        "used_by",
        "The runs that used a version, that you may read",
        "lineage",
        used_by,
        _READ,
        artifact_params(_VERSION),
        response=envelope(runs=many("Run")),
    ),
]
