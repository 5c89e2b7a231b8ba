"""Deleting and renaming projects at the service: who may, and what follows.

Deleting or moving a project manages it: the user who owns it, the admins
of the team that owns it, site admins. Members who are not team admins are
refused (403), outsiders learn nothing of a private project (404), and an
"open" project lets anyone write in it, never delete or move it.
"""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from refstore.catalog.base import NewRun
from refstore.catalog.served import ServedCatalog
from refstore.cli import main
from tests.server.support import log, request, store_file
from tests.service import ADMIN_TOKEN, RunningService

TEAM = "crew"
_counter = itertools.count()


@dataclasses.dataclass(frozen=True)
class People:
    tokens: dict[str, str | None]


@pytest.fixture(scope="module")
def people(service: RunningService) -> People:
    """olga owns her projects; ada admins the team crew, mel is a member."""
    tokens: dict[str, str | None] = {
        "owner": service.user("olga"),
        "team-admin": service.user("ada"),
        "member": service.user("mel"),
        "outsider": service.user("otis"),
        "site-admin": ADMIN_TOKEN,
        "anonymous": None,
    }
    service.catalog.create_team(TEAM, "ada")
    service.catalog.set_member(TEAM, "mel", "member")
    return People(tokens)


def make_project(catalog: ServedCatalog, entity: str, visibility: str) -> str:
    project = f"{entity}/p{next(_counter)}"
    catalog.set_visibility(project, visibility)
    catalog.start_run(NewRun(project, "r1"), "never")
    log(catalog, project, "data", f"{project} v0", aliases=("best",), run="r1")
    return project


def exists(catalog: ServedCatalog, project: str) -> bool:
    return catalog.projects_access([project])[project].visibility is not None


def delete(
    service: RunningService, project: str, token: str | None, **query: str
) -> Any:
    suffix = "?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else ""
    path = f"/api/v1/projects/{project}{suffix}"
    return request(service.url, "DELETE", path, token=token)


def rename(service: RunningService, project: str, to: str, token: str | None) -> Any:
    path = f"/api/v1/projects/{project}/rename"
    return request(service.url, "POST", path, token=token, body={"to": to})


def _expected(who: str, entity: str, visibility: str) -> int:
    """The status of deleting or moving a project of ``entity``."""
    managers = {"olga": ("owner", "site-admin"), TEAM: ("team-admin", "site-admin")}
    if who in managers[entity]:
        return 200
    members = {"olga": ("owner",), TEAM: ("team-admin", "member")}
    if visibility == "private" and who not in members[entity]:
        return 404
    return 401 if who == "anonymous" else 403


MATRIX = [
    pytest.param(who, entity, visibility, id=f"{entity}-{visibility}-{who}")
    for entity in ("olga", TEAM)
    for visibility in ("private", "public", "open")
    for who in ("owner", "team-admin", "member", "outsider", "site-admin", "anonymous")
]


@pytest.mark.parametrize(("who", "entity", "visibility"), MATRIX)
def test_who_may_delete_a_project(
    service: RunningService, people: People, who: str, entity: str, visibility: str
) -> None:
    project = make_project(service.catalog, entity, visibility)

    answer = delete(service, project, people.tokens[who])

    status = _expected(who, entity, visibility)
    assert answer.status == status, answer.body
    assert exists(service.catalog, project) == (status != 200)
    if status == 404:
        assert answer.json["detail"] == f"no project {project} that you may see"


@pytest.mark.parametrize(("who", "entity", "visibility"), MATRIX)
def test_who_may_rename_a_project(
    service: RunningService, people: People, who: str, entity: str, visibility: str
) -> None:
    project = make_project(service.catalog, entity, visibility)
    target = f"{project}-renamed"

    answer = rename(service, project, target, people.tokens[who])

    status = _expected(who, entity, visibility)
    assert answer.status == status, answer.body
    assert exists(service.catalog, target) == (status == 200)
    if status == 200:
        assert answer.json["project"] == target
        assert answer.json["visibility"] == visibility


def test_delete_answers_what_went(service: RunningService, people: People) -> None:
    catalog = service.catalog
    project = make_project(catalog, TEAM, "public")
    elsewhere = make_project(catalog, "olga", "private")
    catalog.use_version(elsewhere, "r1", project, "data", "best")

    dry = delete(service, project, people.tokens["team-admin"], dry_run="true")
    real = delete(service, project, people.tokens["team-admin"])

    expected = {
        "project": project,
        "artifacts": 1,
        "versions": 1,
        "runs": 1,
        "sweeps": 0,
        "lineage_edges": 2,
        "cross_project_uses": 1,
    }
    assert dry.json == {**expected, "dry_run": True}
    assert real.json == {**expected, "dry_run": False}
    assert catalog.used_versions(elsewhere, "r1") == []


def test_a_dry_run_needs_the_same_rights(
    service: RunningService, people: People
) -> None:
    project = make_project(service.catalog, TEAM, "open")

    answer = delete(service, project, people.tokens["member"], dry_run="true")

    assert answer.status == 403


def test_deleting_a_missing_project_is_404(
    service: RunningService, people: People
) -> None:
    answer = delete(service, "olga/never-made", people.tokens["owner"])

    assert answer.status == 404
    assert "no project olga/never-made" in answer.json["detail"]


def test_moving_needs_membership_of_the_target_entity(
    service: RunningService, people: People
) -> None:
    project = make_project(service.catalog, TEAM, "private")
    name = project.split("/")[1]

    into_olga = rename(service, project, f"olga/{name}", people.tokens["team-admin"])
    into_ada = rename(service, project, f"ada/{name}", people.tokens["team-admin"])
    by_admin = rename(service, f"ada/{name}", f"olga/{name}", ADMIN_TOKEN)

    assert into_olga.status == 404, into_olga.body
    assert into_ada.status == 200, into_ada.body
    assert by_admin.status == 200, by_admin.body
    assert service.catalog.get_version(f"olga/{name}", "data", "best").version == 0


def test_renaming_onto_an_existing_project_is_409(
    service: RunningService, people: People
) -> None:
    first = make_project(service.catalog, "olga", "private")
    second = make_project(service.catalog, "olga", "private")

    answer = rename(service, first, second, people.tokens["owner"])

    assert answer.status == 409
    assert f"a project {second} already exists" in answer.json["detail"]


@pytest.mark.parametrize(
    "to", ["olga", "olga/a/b", "olga/-x", "olga/a b", 7, None, "olga/" + "x" * 129]
)
def test_rename_validates_the_target(
    service: RunningService, people: People, to: Any
) -> None:
    project = make_project(service.catalog, "olga", "private")

    answer = rename(service, project, to, people.tokens["owner"])

    assert answer.status == 400, answer.body
    assert answer.json["field"] == "body.to"


def test_a_team_whose_projects_went_can_be_deleted(
    service: RunningService, people: People
) -> None:
    admin = people.tokens["team-admin"]
    request(service.url, "POST", "/api/v1/teams", token=admin, body={"name": "tmp"})
    doomed = make_project(service.catalog, "tmp", "private")
    moved = make_project(service.catalog, "tmp", "public")
    refused = request(service.url, "DELETE", "/api/v1/teams/tmp", token=admin)

    delete(service, doomed, admin)
    rename(service, moved, "ada/kept", admin)
    deleted = request(service.url, "DELETE", "/api/v1/teams/tmp", token=admin)

    assert refused.status == 409
    assert deleted.status == 200, deleted.body
    assert service.catalog.get_version("ada/kept", "data", "best").version == 0


def test_gc_at_the_service_frees_a_deleted_projects_blobs(
    service: RunningService, people: People
) -> None:
    catalog = service.catalog
    project = make_project(catalog, "olga", "private")
    manifest = catalog.get_version(project, "data", "v0").manifest_blob
    stray = store_file(catalog, project, b"uploaded, never logged")

    delete(service, project, people.tokens["owner"])
    gc = request(
        service.url,
        "POST",
        "/api/v1/retention/gc",
        token=ADMIN_TOKEN,
        body={"grace_seconds": 0},
    )

    assert gc.status == 200, gc.body
    assert {manifest, stray} <= set(gc.json["blobs"])
    assert not catalog.blobs.has(manifest)
    assert not catalog.blobs.has(stray)


def test_the_commands_against_a_service(
    service: RunningService,
    people: People,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    admin = people.tokens["team-admin"]
    assert admin is not None
    request(service.url, "POST", "/api/v1/teams", token=admin, body={"name": "cli"})
    doomed = make_project(service.catalog, "cli", "private")
    moved = make_project(service.catalog, "cli", "private")
    monkeypatch.setenv("REFSTORE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("REFSTORE_URL", service.url)
    monkeypatch.setenv("REFSTORE_TOKEN", admin)
    runner = CliRunner()

    def run(*args: str) -> Any:
        return runner.invoke(main, list(args))

    refused = run("team", "delete", "cli")
    no_yes = run("project", "delete", doomed)
    deleted = run("project", "delete", doomed, "--yes")
    renamed = run("project", "rename", moved, "ada/from-cli")
    team = run("team", "delete", "cli")

    assert refused.exit_code == 2
    assert "delete them or move them" in refused.output
    assert no_yes.exit_code == 2
    assert deleted.exit_code == 0, deleted.output
    assert deleted.output.startswith(f"deleted {doomed}: 1 artifact, 1 version")
    assert renamed.output.strip() == f"renamed {moved} to ada/from-cli"
    assert team.exit_code == 0, team.output
    assert team.output.strip() == "deleted team cli (1 memberships removed)"
