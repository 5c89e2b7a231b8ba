"""Users, teams, tokens and who may manage them."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import create_engine, select

from refstore.catalog.access import token_digest
from refstore.catalog.tables import tokens
from tests.server.support import request
from tests.service import ADMIN_TOKEN, RunningService


def test_the_admin_token_from_the_environment_works(service: RunningService) -> None:
    answer = request(service.url, "GET", "/api/v1/whoami", token=ADMIN_TOKEN)

    assert answer.json == {"user": "admin", "admin": True, "entities": ["admin"]}


def test_anonymous_requests_are_nobody(service: RunningService) -> None:
    answer = request(service.url, "GET", "/api/v1/whoami")

    assert answer.json == {"user": None, "admin": False, "entities": []}


@pytest.mark.parametrize(
    "header",
    [
        pytest.param("Bearer rs_" + "B" * 43, id="unknown-token"),
        pytest.param("Bearer not-a-token", id="malformed-token"),
        pytest.param("Basic dXNlcjpwYXNz", id="other-scheme"),
        pytest.param("Bearer ", id="empty"),
    ],
)
def test_bad_credentials_are_refused_even_where_none_are_needed(
    service: RunningService, header: str
) -> None:
    answer = request(
        service.url, "GET", "/api/v1/projects", headers={"Authorization": header}
    )

    assert answer.status == 401
    assert answer.json["error"] == "unauthenticated"
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_tokens_are_shown_once_and_stored_hashed(
    service: RunningService, service_db: str
) -> None:
    created = request(
        service.url,
        "POST",
        "/api/v1/users",
        token=ADMIN_TOKEN,
        body={"name": "tilda"},
    )
    token = created.json["token"]
    second = request(
        service.url, "POST", "/api/v1/tokens", token=token, body={"label": "ci"}
    ).json["token"]
    listed = request(service.url, "GET", "/api/v1/tokens", token=token)

    assert created.status == 201
    assert [t["label"] for t in listed.json["tokens"]] == ["first token", "ci"]
    assert token not in listed.body.decode()
    assert second not in listed.body.decode()
    engine = create_engine(service_db.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            stored = set(conn.execute(select(tokens.c.digest)).scalars())
    finally:
        engine.dispose()
    assert token_digest(token) in stored
    assert hashlib.sha256(second.encode()).hexdigest() in stored
    assert not {token, second} & stored


def test_a_revoked_token_stops_working_at_once(service: RunningService) -> None:
    token = service.user("rita")
    spare = request(
        service.url, "POST", "/api/v1/tokens", token=token, body={"label": "spare"}
    ).json
    ids = [
        t["id"]
        for t in request(service.url, "GET", "/api/v1/tokens", token=token).json[
            "tokens"
        ]
    ]

    revoked = request(
        service.url, "DELETE", f"/api/v1/tokens/{spare['id']}", token=token
    )
    again = request(service.url, "GET", "/api/v1/whoami", token=spare["token"])

    assert spare["id"] in ids
    assert revoked.status == 200
    assert again.status == 401
    assert request(service.url, "GET", "/api/v1/whoami", token=token).status == 200


def test_users_act_only_for_themselves(service: RunningService) -> None:
    token = service.user("uma")
    other = service.user("ulf")
    ulf_tokens = request(service.url, "GET", "/api/v1/tokens", token=other).json

    for method, path, body in [
        ("POST", "/api/v1/users", {"name": "mallory"}),
        ("GET", "/api/v1/users", None),
        ("POST", "/api/v1/tokens", {"label": "x", "user": "ulf"}),
        ("GET", "/api/v1/tokens?user=ulf", None),
        ("GET", "/api/v1/retention/expired", None),
        ("POST", "/api/v1/retention/gc", {"dry_run": True}),
    ]:
        answer = request(service.url, method, path, token=token, body=body)
        assert answer.status == 403, (method, path, answer.body)
    revoke = request(
        service.url,
        "DELETE",
        f"/api/v1/tokens/{ulf_tokens['tokens'][0]['id']}",
        token=token,
    )
    assert revoke.status == 404
    for method, path in [("GET", "/api/v1/users"), ("GET", "/api/v1/tokens")]:
        assert request(service.url, method, path).status == 401


def test_teams_share_the_entity_namespace_with_users(service: RunningService) -> None:
    token = service.user("nora")

    taken = request(
        service.url, "POST", "/api/v1/teams", token=token, body={"name": "nora"}
    )

    assert taken.status == 409


def test_team_admins_manage_members_and_visibility(service: RunningService) -> None:
    boss = service.user("bea")
    request(service.url, "POST", "/api/v1/teams", token=boss, body={"name": "crew"})
    plain = service.user("carl")
    outsider = service.user("olga")
    url = service.url

    added = request(url, "PUT", "/api/v1/teams/crew/members/carl", token=boss, body={})
    by_member = request(
        url, "PUT", "/api/v1/teams/crew/members/olga", token=plain, body={}
    )
    by_outsider = request(url, "GET", "/api/v1/teams/crew", token=outsider)
    visibility = "/api/v1/projects/crew/p/visibility"
    plain_sets = request(
        url, "PUT", visibility, token=plain, body={"visibility": "open"}
    )
    boss_sets = request(url, "PUT", visibility, token=boss, body={"visibility": "open"})
    removed = request(url, "DELETE", "/api/v1/teams/crew/members/carl", token=boss)
    after = request(url, "GET", "/api/v1/projects/crew/p/runs", token=plain)

    assert added.status == 200
    assert {m["user"]: m["role"] for m in added.json["members"]} == {
        "bea": "admin",
        "carl": "member",
    }
    assert by_member.status == 403
    assert by_outsider.status == 404
    assert plain_sets.status == 403
    assert boss_sets.json["visibility"] == "open"
    assert removed.status == 200
    assert after.status == 200  # open: carl still reads, as anyone does
