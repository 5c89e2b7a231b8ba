"""The access matrix: every project route x visibility x who is asking.

Generated from the route table, so a new route cannot escape it: each route
about a project is called on a private, a public and an open project by a
member of its team, by another user and anonymously, and must answer as its
declared action (read, write, delete, manage) allows. Allowed calls must
succeed (2xx), so each route has a case below that is valid and repeatable.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from typing import Any

import pytest

from refstore.catalog.base import NewRun
from refstore.server.routes import ROUTES
from refstore.server.routing import InProject, ReadsBlob, Route
from tests.server.support import log, new_version, request, sha256, store_file
from tests.service import ADMIN_TOKEN, RunningService

TEAM = "team"
VISIBILITIES = ("private", "public", "open")
WHO = ("member", "other", "anonymous")
_counter = itertools.count()


@dataclasses.dataclass
class World:
    service: RunningService
    tokens: dict[str, str | None]
    files: dict[str, str]  # project -> a copied file only it holds


@pytest.fixture(scope="module")
def world(service: RunningService) -> World:
    catalog = service.catalog
    catalog.create_team(TEAM, "admin")
    tokens: dict[str, str | None] = {
        "member": service.user("mia", TEAM),
        "other": service.user("otto"),
        "anonymous": None,
    }
    catalog.remove_member(TEAM, "admin")
    files = {}
    for visibility in VISIBILITIES:
        project = f"{TEAM}/{visibility}"
        catalog.set_visibility(project, visibility)
        catalog.start_run(NewRun(project, "r1"), "never")
        log(catalog, project, "data", f"{project} v0", aliases=("best",), run="r1")
        catalog.use_version(project, "r1", project, "data", "v0")
        catalog.create_sweep(project, "s1", {"method": "grid"})
        files[project] = store_file(catalog, project, f"file of {project}".encode())
    return World(service, tokens, files)


@dataclasses.dataclass
class Case:
    params: dict[str, str] = dataclasses.field(default_factory=dict)
    query: str = ""
    body: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


def _unique(stem: str) -> str:
    return f"{stem}-{next(_counter)}"


def _log_case(world: World, project: str) -> Case:
    new = new_version(world.service.catalog, project, "data", _unique("content"))
    body = {
        "type": new.type,
        "digest": new.digest,
        "manifest_blob": new.manifest_blob,
        "entry_count": new.entry_count,
        "total_size": new.total_size,
    }
    return Case({"name": "data"}, body=body)


def _delete_case(world: World, project: str) -> Case:
    name = _unique("scratch")
    log(world.service.catalog, project, name, name)
    return Case({"name": name, "version": "v0"})


def _remove_alias_case(world: World, project: str) -> Case:
    alias = _unique("tmp")
    world.service.catalog.set_alias(project, "data", alias, 0)
    return Case({"name": "data", "alias": alias})


def _upload_case(world: World, project: str) -> Case:
    data = _unique("upload").encode()
    return Case({"digest": sha256(data)}, raw=data)


def _held(world: World, project: str) -> Case:
    return Case({"digest": world.files[project]})


def _scratch(world: World, project: str) -> str:
    """A project like ``project`` (its visibility) that a case may lose."""
    name = _unique("scratch")
    visibility = project.split("/")[1]
    world.service.catalog.set_visibility(f"{TEAM}/{name}", visibility)
    return name


Builder = Callable[[World, str], Case]
V0 = {"name": "data", "version": "v0"}
CASES: dict[str, Builder] = {
    "get_project": lambda w, p: Case(),
    "list_artifacts": lambda w, p: Case(),
    "list_artifact_types": lambda w, p: Case(),
    "log_version": _log_case,
    "list_versions": lambda w, p: Case({"name": "data"}),
    "get_version": lambda w, p: Case({"name": "data", "selector": "best"}),
    "download_manifest": lambda w, p: Case({"name": "data", "selector": "v0"}),
    "update_version": lambda w, p: Case(
        V0, body={"description": "edited", "metadata": {}, "tags": [], "ttl": None}
    ),
    "delete_version": _delete_case,
    "set_alias": lambda w, p: Case(
        {"name": "data", "alias": "best"}, body={"version": "v0"}
    ),
    "remove_alias": _remove_alias_case,
    "logged_by": lambda w, p: Case(V0),
    "used_by": lambda w, p: Case(V0),
    "start_run": lambda w, p: Case(body={"id": _unique("run")}),
    "list_runs": lambda w, p: Case(query="?state=running"),
    "get_run": lambda w, p: Case({"run": "r1"}),
    "update_run": lambda w, p: Case({"run": "r1"}, body={"summary": {"acc": 1}}),
    "use_version": lambda w, p: Case(
        {"run": "r1"}, body={"project": p, "name": "data", "selector": "v0"}
    ),
    "used_versions": lambda w, p: Case({"run": "r1"}),
    "logged_versions": lambda w, p: Case({"run": "r1"}),
    "create_sweep": lambda w, p: Case(body={"id": _unique("sweep"), "config": {}}),
    "get_sweep": lambda w, p: Case({"sweep": "s1"}),
    "next_trial": lambda w, p: Case({"sweep": "s1"}),
    "finish_sweep": lambda w, p: Case({"sweep": "s1"}),
    "missing_blobs": lambda w, p: Case(body={"digests": [sha256(b"x")]}),
    "upload_blob": _upload_case,
    "set_visibility": lambda w, p: Case(body={"visibility": p.split("/")[1]}),
    "set_project_ttl": lambda w, p: Case(body={"default_ttl": None}),
    "download_blob": _held,
    "has_blob": _held,
    "delete_project": lambda w, p: Case({"project": _scratch(w, p)}),
    "rename_project": lambda w, p: Case(
        {"project": _scratch(w, p)}, body={"to": f"{TEAM}/{_unique('moved')}"}
    ),
}


def _project_routes() -> list[Route]:
    return [
        route
        for route in ROUTES
        if any(isinstance(r, InProject | ReadsBlob) for r in route.access)
    ]


def _action(route: Route) -> str:
    for requirement in route.access:
        if isinstance(requirement, InProject):
            return requirement.action
    return "read"  # a blob download reads the project holding it


def expected(route: Route, visibility: str, who: str) -> int | None:
    """The refusal status, or None when the call must succeed."""
    action = _action(route)
    if who == "member":
        return 403 if action == "manage" else None
    if visibility == "private":
        return 404
    if action == "read" or (action == "write" and visibility == "open"):
        return None
    if any(isinstance(r, ReadsBlob) for r in route.access):
        return 404
    return 401 if who == "anonymous" else 403


def test_every_project_route_has_a_case() -> None:
    assert {route.operation for route in _project_routes()} == set(CASES)


MATRIX = [
    pytest.param(route, visibility, who, id=f"{route.operation}-{visibility}-{who}")
    for route in _project_routes()
    for visibility in VISIBILITIES
    for who in WHO
]


@pytest.mark.parametrize(("route", "visibility", "who"), MATRIX)
def test_access(world: World, route: Route, visibility: str, who: str) -> None:
    project = f"{TEAM}/{visibility}"
    case = CASES[route.operation](world, project)
    params = {"entity": TEAM, "project": visibility, **case.params}

    answer = request(
        world.service.url,
        route.method,
        route.path.format(**params) + case.query,
        token=world.tokens[who],
        body=case.body,
        raw=case.raw,
        headers=case.headers,
    )

    refusal = expected(route, visibility, who)
    if refusal is None:
        assert 200 <= answer.status < 300, answer.body
    else:
        assert answer.status == refusal, answer.body
        if route.method != "HEAD":
            assert set(answer.json) >= {"error", "detail"}


@pytest.mark.parametrize("who", ["other", "anonymous"])
def test_a_private_project_answers_like_a_missing_one(world: World, who: str) -> None:
    token = world.tokens[who]

    hidden = request(
        world.service.url, "GET", f"/api/v1/projects/{TEAM}/private/runs", token=token
    )
    missing = request(
        world.service.url, "GET", f"/api/v1/projects/{TEAM}/nothing/runs", token=token
    )

    assert hidden.status == missing.status == 404
    assert hidden.json == {
        **missing.json,
        "detail": missing.json["detail"].replace("nothing", "private"),
    }


def test_site_admins_may_do_everything(world: World) -> None:
    answer = request(
        world.service.url,
        "PUT",
        f"/api/v1/projects/{TEAM}/private/visibility",
        token=ADMIN_TOKEN,
        body={"visibility": "private"},
    )

    assert answer.status == 200
