"""Disabling and enabling users, and deleting teams.

A disabled user's tokens stay stored but every route refuses them; what the
user logged, and the teams they belong to, stay as they were.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from refstore.catalog.access import Refusal, new_token
from refstore.cli import main
from refstore.errors import ConflictError
from refstore.server.routes import ROUTES
from refstore.server.routing import Route
from refstore.server.schema import InputError, Obj, Spec
from tests.server.support import log, request
from tests.service import ADMIN_TOKEN, RunningService

_TEXTS = ("x", "v0", "0" * 64, "1", "true")
_VALUES: tuple[Any, ...] = (None, "x", "x/y", "v0", "0" * 64, 1, 0, False, {}, [])


def _candidates(spec: Spec, plain: tuple[Any, ...]) -> list[Any]:
    return [*plain, *spec.schema().get("enum", [])]


def example_text(spec: Spec) -> str:
    """Text that ``spec`` accepts as a path, query or header parameter."""
    for text in _candidates(spec, _TEXTS):
        try:
            spec.from_text(text, "example")
        except InputError:
            continue
        return str(text)
    raise AssertionError(f"no example text for {spec!r}; extend _TEXTS")


def example_value(spec: Spec) -> Any:
    """A JSON value that ``spec`` accepts (required fields only, for objects)."""
    if isinstance(spec, Obj):
        fields = spec.fields.items()
        return {name: example_value(f.spec) for name, f in fields if f.required}
    for value in _candidates(spec, _VALUES):
        try:
            spec.parse(value, "example")
        except InputError:
            continue
        return value
    raise AssertionError(f"no example value for {spec!r}; extend _VALUES")


@dataclasses.dataclass
class Example:
    path: str
    body: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


def example(route: Route) -> Example:
    """A request that passes ``route``'s input validation."""
    texts = {p.name: example_text(p.spec) for p in route.params if p.required}
    query = "&".join(
        f"{p.name}={texts[p.name]}"
        for p in route.params
        if p.where == "query" and p.required
    )
    headers = {
        p.name: texts[p.name]
        for p in route.params
        if p.where == "header" and p.required
    }
    path = route.path.format(**texts) + (f"?{query}" if query else "")
    body = example_value(route.body) if route.body is not None else None
    return Example(path, body, b"x" if route.upload else None, headers)


def disable(service: RunningService, name: str, token: str = ADMIN_TOKEN) -> Any:
    return request(service.url, "PUT", f"/api/v1/users/{name}/disabled", token=token)


def enable(service: RunningService, name: str, token: str = ADMIN_TOKEN) -> Any:
    return request(service.url, "DELETE", f"/api/v1/users/{name}/disabled", token=token)


def whoami(service: RunningService, token: str) -> int:
    return request(service.url, "GET", "/api/v1/whoami", token=token).status


def listed(service: RunningService) -> dict[str, Any]:
    answer = request(service.url, "GET", "/api/v1/users", token=ADMIN_TOKEN)
    return {user["name"]: user for user in answer.json["users"]}


# -- disabled users ---------------------------------------------------------


@pytest.fixture(scope="module")
def disabled_token(service: RunningService) -> str:
    """The token of dora, a member of the team dig, now disabled."""
    token = service.user("dora", "dig")
    log(service.catalog, "dig/data", "set", "dora's data")
    assert disable(service, "dora").status == 200
    return token


@pytest.mark.parametrize("route", [pytest.param(r, id=r.operation) for r in ROUTES])
def test_every_route_refuses_a_disabled_users_token(
    service: RunningService, disabled_token: str, route: Route
) -> None:
    case = example(route)

    answer = request(
        service.url,
        route.method,
        case.path,
        token=disabled_token,
        body=case.body,
        raw=case.raw,
        headers=case.headers,
    )

    assert answer.status == 401, answer.body
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    if route.method != "HEAD":
        assert answer.json["error"] == "account_disabled"
        assert "'dora' is disabled" in answer.json["detail"]
        assert "ask a site admin" in answer.json["detail"]


def test_enabling_makes_the_same_tokens_work_again(service: RunningService) -> None:
    first = service.user("eli")
    second = request(
        service.url, "POST", "/api/v1/tokens", token=first, body={"label": "ci"}
    ).json["token"]

    disabled = disable(service, "eli")
    refused = [whoami(service, t) for t in (first, second)]
    kept = request(service.url, "GET", "/api/v1/tokens?user=eli", token=ADMIN_TOKEN)
    enabled = enable(service, "eli")

    assert disabled.status == 200
    assert disabled.json["disabled"] is True
    assert refused == [401, 401]
    assert [t["label"] for t in kept.json["tokens"]] == ["first token", "ci"]
    assert enabled.json["disabled"] is False
    assert enabled.json["disabled_at"] is None
    assert [whoami(service, t) for t in (first, second)] == [200, 200]


def test_a_token_made_for_a_disabled_user_waits_for_enable(
    service: RunningService,
) -> None:
    service.user("fay")
    disable(service, "fay")

    made = request(
        service.url,
        "POST",
        "/api/v1/tokens",
        token=ADMIN_TOKEN,
        body={"label": "new laptop", "user": "fay"},
    )
    before = whoami(service, made.json["token"])
    enable(service, "fay")

    assert made.status == 201
    assert before == 401
    assert whoami(service, made.json["token"]) == 200


def test_disabling_twice_is_disabling_once(service: RunningService) -> None:
    service.user("gus")

    first = disable(service, "gus")
    second = disable(service, "gus")

    assert first.status == second.status == 200
    assert second.json == first.json
    assert first.json["disabled_at"] is not None
    assert enable(service, "gus").status == enable(service, "gus").status == 200


def test_the_user_list_shows_who_is_disabled(service: RunningService) -> None:
    service.user("hal")
    service.user("ivy")
    disable(service, "hal")

    users = listed(service)

    assert users["hal"]["disabled"] is True
    assert users["hal"]["disabled_at"] is not None
    assert users["ivy"]["disabled"] is False
    assert users["ivy"]["disabled_at"] is None
    assert users["admin"]["disabled"] is False


def test_a_disabled_users_work_and_memberships_stay(service: RunningService) -> None:
    service.user("kim", "kilns")
    log(service.catalog, "kim/shared", "set", "kim's public data")
    service.catalog.set_visibility("kim/shared", "public")
    log(service.catalog, "kilns/open", "set", "the team's data")
    service.catalog.set_visibility("kilns/open", "open")
    reader = service.user("lou")

    disable(service, "kim")

    for token in (reader, None):
        for project in ("kim/shared", "kilns/open"):
            path = f"/api/v1/projects/{project}/artifacts/set/versions"
            answer = request(service.url, "GET", path, token=token)
            assert answer.status == 200, answer.body
            assert [v["version"] for v in answer.json["versions"]] == [0]
    team = request(service.url, "GET", "/api/v1/teams/kilns", token=ADMIN_TOKEN)
    assert {m["user"] for m in team.json["members"]} == {"kim"}


def test_only_site_admins_disable_and_enable(service: RunningService) -> None:
    plain = service.user("max")
    service.user("nia")

    answers = [disable(service, "nia", plain), enable(service, "nia", plain)]
    anonymous = request(service.url, "PUT", "/api/v1/users/nia/disabled")

    assert [a.status for a in answers] == [403, 403]
    assert all("only site admins" in a.json["detail"] for a in answers)
    assert anonymous.status == 401
    assert listed(service)["nia"]["disabled"] is False


def test_a_site_admin_cannot_disable_themselves(service: RunningService) -> None:
    token = service.user("oda", admin=True)
    other = service.user("odo", admin=True)

    own = disable(service, "oda", token)
    another = disable(service, "odo", token)

    assert own.status == 409
    assert "cannot disable yourself" in own.json["detail"]
    assert "ask another site admin" in own.json["detail"]
    assert whoami(service, token) == 200
    assert another.status == 200
    assert whoami(service, other) == 401


def test_an_admin_disabled_meanwhile_disables_nobody(service: RunningService) -> None:
    service.user("pam", admin=True)
    service.user("quin")
    disable(service, "pam")

    # As if pam's request had been authorised just before she was disabled.
    with pytest.raises(ConflictError, match="disabled meanwhile"):
        service.catalog.disable_user("pam", "quin")

    assert listed(service)["quin"]["disabled"] is False


def test_a_restart_with_the_admin_token_keeps_a_disabled_admin_out(
    service: RunningService, caplog: pytest.LogCaptureFixture
) -> None:
    service.user("zed", admin=True)
    disable(service, "zed")
    token = new_token()

    service.catalog.ensure_admin("zed", token)

    assert listed(service)["zed"]["disabled"] is True
    assert whoami(service, token) == 401
    assert "site admin zed is disabled" in caplog.text


def test_only_users_are_disabled(service: RunningService) -> None:
    service.user("ray", "rafts")

    for name in ("nobody", "rafts"):
        answer = disable(service, name)
        assert answer.status == 404
        assert f"no user '{name}'" in answer.json["detail"]


def test_the_catalog_refuses_a_disabled_users_token(service: RunningService) -> None:
    token = service.user("sam")
    disable(service, "sam")

    owner = service.catalog.principal_for_token(token)

    assert isinstance(owner, Refusal)
    assert owner.code == "account_disabled"
    assert [t.label for t in service.catalog.tokens_of("sam")] == ["first token"]


# -- deleting teams ---------------------------------------------------------


def test_a_team_admin_deletes_an_empty_team(service: RunningService) -> None:
    boss = service.user("tess", "tide")
    service.user("ulla", "tide")

    deleted = request(service.url, "DELETE", "/api/v1/teams/tide", token=boss)
    gone = request(service.url, "GET", "/api/v1/teams/tide", token=ADMIN_TOKEN)
    again = request(
        service.url, "POST", "/api/v1/teams", token=boss, body={"name": "tide"}
    )

    assert deleted.status == 200
    assert deleted.json == {"team": "tide", "removed_members": 2}
    assert gone.status == 404
    assert again.status == 201
    assert [m["user"] for m in again.json["members"]] == ["tess"]


def test_a_team_that_owns_projects_is_kept(service: RunningService) -> None:
    boss = service.user("vic", "vault")
    for project in ("vault/a", "vault/b"):
        log(service.catalog, project, "set", project)

    refused = request(service.url, "DELETE", "/api/v1/teams/vault", token=boss)
    team = request(service.url, "GET", "/api/v1/teams/vault", token=boss)

    assert refused.status == 409
    assert "still owns 2 projects (vault/a, vault/b)" in refused.json["detail"]
    assert "delete them or move them" in refused.json["detail"]
    assert team.status == 200


def test_only_team_admins_and_site_admins_delete_a_team(
    service: RunningService,
) -> None:
    service.user("wes", "wharf")
    member = service.user("xia", "wharf")
    outsider = service.user("yul")

    by_member = request(service.url, "DELETE", "/api/v1/teams/wharf", token=member)
    by_outsider = request(service.url, "DELETE", "/api/v1/teams/wharf", token=outsider)
    by_site_admin = request(
        service.url, "DELETE", "/api/v1/teams/wharf", token=ADMIN_TOKEN
    )

    assert by_member.status == 403
    assert "only admins of 'wharf'" in by_member.json["detail"]
    assert by_outsider.status == 404
    assert by_site_admin.status == 200


# -- the command line -------------------------------------------------------


def test_the_commands_against_a_service(
    service: RunningService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bob = service.user("bob", "bench")
    service.user("cleo", "crate")
    log(service.catalog, "crate/p", "set", "the crate's data")
    monkeypatch.setenv("REFSTORE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("REFSTORE_URL", service.url)
    monkeypatch.setenv("REFSTORE_TOKEN", ADMIN_TOKEN)
    runner = CliRunner()

    def run(*args: str, token: str = ADMIN_TOKEN) -> Result:
        return runner.invoke(main, list(args), env={"REFSTORE_TOKEN": token})

    disabled = run("user", "disable", "bob")
    table = run("user", "list")
    rows = {
        row["name"]: row for row in json.loads(run("user", "list", "--json").output)
    }
    refused = run("whoami", token=bob)
    by_bob = run("user", "disable", "admin", token=bob)
    self_disable = run("user", "disable", "admin")
    enabled = run("user", "enable", "bob")
    welcome = run("whoami", token=bob)
    kept = run("team", "delete", "crate")
    deleted = run("team", "delete", "bench")

    assert disabled.exit_code == 0, disabled.output
    assert disabled.output.startswith("bob is disabled since ")
    header, *lines = table.output.splitlines()
    assert header.split()[:3] == ["NAME", "IS_ADMIN", "DISABLED"]
    assert [line.split()[:3] for line in lines if line.startswith("bob ")] == [
        ["bob", "False", "True"]
    ]
    assert rows["bob"]["disabled"] is True
    assert rows["cleo"]["disabled"] is False
    assert refused.exit_code == 2
    assert "'bob' is disabled; ask a site admin" in refused.output
    assert by_bob.exit_code == 2
    assert "disabled" in by_bob.output
    assert self_disable.exit_code == 2
    assert "cannot disable yourself" in self_disable.output
    assert enabled.output.strip() == "bob is enabled"
    assert welcome.output.startswith("bob;")
    assert kept.exit_code == 2
    assert "still owns 1 project (crate/p)" in kept.output
    assert deleted.exit_code == 0, deleted.output
    assert deleted.output.strip() == "deleted team bench (1 memberships removed)"


@pytest.mark.parametrize(
    ("path", "method", "codes"),
    [
        pytest.param(
            "/api/v1/users/{user}/disabled",
            "put",
            {"401", "403", "404", "409"},
            id="disable",
        ),
        pytest.param(
            "/api/v1/users/{user}/disabled",
            "delete",
            {"401", "403", "404"},
            id="enable",
        ),
        pytest.param(
            "/api/v1/teams/{team}", "delete", {"401", "403", "404", "409"}, id="team"
        ),
    ],
)
def test_the_document_lists_the_refusals(
    service: RunningService, path: str, method: str, codes: set[str]
) -> None:
    document = request(service.url, "GET", "/openapi.json").json

    responses = document["paths"][path][method]["responses"]

    assert codes <= set(responses)
    assert "disabled" in responses["401"]["description"]
