"""Routes for identity (users, tokens, teams), visibility and retention.

Tokens are returned once, when created; listings show ids and labels only.
Site admins disable and enable users (PUT and DELETE on the user's
``disabled`` resource, so that retries are harmless); a disabled user's
tokens are refused by every route until they are enabled again.
Retention across all projects (expired versions, gc) is for site admins: it
deletes data that belongs to every project at once.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from refstore.catalog.served import ServedCatalog
from refstore.gc import GcReport, collect
from refstore.server.routes_versions import PROJECT_PARAMS
from refstore.server.routing import (
    ActsFor,
    Anyone,
    Call,
    InProject,
    InTeam,
    Param,
    Route,
    SignedIn,
    SiteAdmin,
)
from refstore.server.schema import Bool, Field, Int, Obj, Str
from refstore.server.specs import (
    NAME,
    VISIBILITY,
    Ttl,
    envelope,
    many,
    optional,
    ref,
)

__all__ = ["ROUTES", "collect_garbage"]

# Retried log requests arrive within minutes; a day is plenty.
KEY_LIFETIME = datetime.timedelta(days=1)
_LABEL = Str(min_length=1, max_length=128)
_ROLE = Str(enum=("member", "admin"))
_STRINGS = {"type": "array", "items": {"type": "string"}}


# -- identity ---------------------------------------------------------------


async def whoami(call: Call) -> Any:
    principal = call.principal
    return {
        "user": principal.name,
        "admin": principal.is_admin,
        "entities": sorted(principal.entities),
    }


async def list_users(call: Call) -> Any:
    return {"users": await call.run(call.catalog.users)}


async def create_user(call: Call) -> Any:
    body = call.body
    name, token = await call.run(
        call.catalog.create_user, body["name"], is_admin=body["admin"]
    )
    return {"user": name, "token": token}


async def disable_user(call: Call) -> Any:
    actor = call.principal.label
    return await call.run(call.catalog.disable_user, actor, call.params["user"])


async def enable_user(call: Call) -> Any:
    return await call.run(call.catalog.enable_user, call.params["user"])


async def create_token(call: Call) -> Any:
    user = call.body["user"] or call.principal.name
    record, token = await call.run(call.catalog.create_token, user, call.body["label"])
    return {"id": record.id, "user": record.user, "label": record.label, "token": token}


async def list_tokens(call: Call) -> Any:
    user = call.params["user"] or call.principal.name
    return {"tokens": await call.run(call.catalog.tokens_of, user)}


async def revoke_token(call: Call) -> Any:
    record = await call.run(
        call.catalog.revoke_token, call.principal, call.params["id"]
    )
    return {"revoked": record.id, "label": record.label}


async def create_team(call: Call) -> Any:
    team = call.body["name"]
    creator = call.principal.name
    members = await call.run(call.catalog.create_team, team, creator)
    return {"team": team, "members": members}


async def show_team(call: Call) -> Any:
    team = call.params["team"]
    return {"team": team, "members": await call.run(call.catalog.team_members, team)}


async def delete_team(call: Call) -> Any:
    team = call.params["team"]
    removed = await call.run(call.catalog.delete_team, team)
    return {"team": team, "removed_members": removed}


async def set_member(call: Call) -> Any:
    params = call.params
    members = await call.run(
        call.catalog.set_member, params["team"], params["user"], call.body["role"]
    )
    return {"team": params["team"], "members": members}


async def remove_member(call: Call) -> Any:
    params = call.params
    members = await call.run(call.catalog.remove_member, params["team"], params["user"])
    return {"team": params["team"], "members": members}


# -- a project's visibility and TTL -----------------------------------------


async def set_visibility(call: Call) -> Any:
    await call.run(call.catalog.set_visibility, call.project, call.body["visibility"])
    return await call.run(call.catalog.get_project, call.project)


async def set_project_ttl(call: Call) -> Any:
    return await call.run(
        call.catalog.set_project_ttl, call.project, call.body["default_ttl"]
    )


# -- retention --------------------------------------------------------------


async def expired_versions(call: Call) -> Any:
    return {"versions": await call.run(call.catalog.expired_versions)}


async def delete_expired(call: Call) -> Any:
    return {"versions": await call.run(call.catalog.delete_expired)}


async def live_manifest_blobs(call: Call) -> Any:
    found = await call.run(call.catalog.live_manifest_blobs)
    return {"digests": sorted(found)}


async def gc(call: Call) -> Any:
    grace = datetime.timedelta(seconds=call.body["grace_seconds"])
    report = await call.run(
        collect_garbage, call.catalog, dry_run=call.body["dry_run"], grace=grace
    )
    return dataclasses.asdict(report) | {"versions": report.versions}


def collect_garbage(
    catalog: ServedCatalog, *, dry_run: bool, grace: datetime.timedelta
) -> GcReport:
    """One gc over the whole catalog (blocking): versions, blobs, old keys."""
    report = collect(catalog, now=catalog.now(), dry_run=dry_run, grace=grace)
    if not dry_run:
        catalog.purge_request_keys(KEY_LIFETIME)
    return report


_PROJECT = "/api/v1/projects/{entity}/{project}"
_TEAM = "/api/v1/teams/{team}"
_USER = "/api/v1/users/{user}"
_USER_PARAMS = (Param("user", NAME, "path"),)
_TEAM_PARAMS = (Param("team", NAME, "path"),)
_MEMBER_PARAMS = (*_TEAM_PARAMS, Param("user", NAME, "path"))
_MEMBERS = envelope(team={"type": "string"}, members={"type": "array"})
_VERSIONS = envelope(versions=many("Version"))

ROUTES = [
    Route(
        "GET",
        "/api/v1/whoami",
        "whoami",
        "Who the token belongs to (null for anonymous requests)",
        "identity",
        whoami,
        (Anyone(),),
        response=envelope(
            user={"type": ["string", "null"]},
            admin={"type": "boolean"},
            entities=_STRINGS,
        ),
    ),
    Route(
        "GET",
        "/api/v1/users",
        "list_users",
        "Every user",
        "identity",
        list_users,
        (SiteAdmin(),),
        response=envelope(users=many("User")),
    ),
    Route(
        "POST",
        "/api/v1/users",
        "create_user",
        "Create a user; their first token is returned once",
        "identity",
        create_user,
        (SiteAdmin(),),
        body=Obj(
            {"name": Field(NAME), "admin": Field(Bool(), required=False, default=False)}
        ),
        status=201,
        response=envelope(user={"type": "string"}, token={"type": "string"}),
    ),
    Route(
        "PUT",
        _USER + "/disabled",
        "disable_user",
        "Disable a user: their tokens stay stored but are refused (not yourself)",
        "identity",
        disable_user,
        (SiteAdmin(),),
        _USER_PARAMS,
        response=ref("User"),
        refusals=(409,),
    ),
    Route(
        "DELETE",
        _USER + "/disabled",
        "enable_user",
        "Enable a disabled user: their tokens work again",
        "identity",
        enable_user,
        (SiteAdmin(),),
        _USER_PARAMS,
        response=ref("User"),
    ),
    Route(
        "POST",
        "/api/v1/tokens",
        "create_token",
        "Create a token (for another user: site admins); returned once",
        "identity",
        create_token,
        (ActsFor(),),
        body=Obj({"label": Field(_LABEL), "user": optional(NAME)}),
        status=201,
        response=envelope(
            id={"type": "integer"},
            user={"type": "string"},
            label={"type": "string"},
            token={"type": "string"},
        ),
    ),
    Route(
        "GET",
        "/api/v1/tokens",
        "list_tokens",
        "Your tokens (ids and labels, never the tokens)",
        "identity",
        list_tokens,
        (ActsFor(),),
        (Param("user", NAME, "query", required=False),),
        response=envelope(tokens={"type": "array"}),
    ),
    Route(
        "DELETE",
        "/api/v1/tokens/{id}",
        "revoke_token",
        "Revoke one of your tokens (any, for site admins)",
        "identity",
        revoke_token,
        (SignedIn(),),
        (Param("id", Int(maximum=2**31 - 1), "path"),),
        response=envelope(revoked={"type": "integer"}, label={"type": "string"}),
    ),
    Route(
        "POST",
        "/api/v1/teams",
        "create_team",
        "Create a team; you become its admin",
        "identity",
        create_team,
        (SignedIn(),),
        body=Obj({"name": Field(NAME)}),
        status=201,
        response=_MEMBERS,
    ),
    Route(
        "GET",
        _TEAM,
        "show_team",
        "A team's members (members only)",
        "identity",
        show_team,
        (InTeam(),),
        _TEAM_PARAMS,
        response=_MEMBERS,
    ),
    Route(
        "DELETE",
        _TEAM,
        "delete_team",
        "Delete a team that owns no projects, with its memberships (team admins)",
        "identity",
        delete_team,
        (InTeam(manage=True),),
        _TEAM_PARAMS,
        response=envelope(team={"type": "string"}, removed_members={"type": "integer"}),
        refusals=(409,),
    ),
    Route(
        "PUT",
        _TEAM + "/members/{user}",
        "set_member",
        "Add a member to a team, or change their role (team admins)",
        "identity",
        set_member,
        (InTeam(manage=True),),
        _MEMBER_PARAMS,
        body=Obj({"role": Field(_ROLE, required=False, default="member")}),
        response=_MEMBERS,
    ),
    Route(
        "DELETE",
        _TEAM + "/members/{user}",
        "remove_member",
        "Remove a member from a team (team admins)",
        "identity",
        remove_member,
        (InTeam(manage=True),),
        _MEMBER_PARAMS,
        response=_MEMBERS,
    ),
    Route(
        "PUT",
        _PROJECT + "/visibility",
        "set_visibility",
        "Make a project private, public or open (its managers)",
        "projects",
        set_visibility,
        (InProject("manage"),),
        PROJECT_PARAMS,
        body=Obj({"visibility": Field(VISIBILITY)}),
        response=ref("Project"),
    ),
    Route(
        "PUT",
        _PROJECT + "/ttl",
        "set_project_ttl",
        "Set the default TTL of versions that inherit it (seconds or null)",
        "retention",
        set_project_ttl,
        (InProject("delete"),),
        PROJECT_PARAMS,
        body=Obj({"default_ttl": Field(Ttl(inherit=False))}),
        response=ref("Project"),
    ),
    Route(
        "GET",
        "/api/v1/retention/expired",
        "expired_versions",
        "Every expired version, in every project",
        "retention",
        expired_versions,
        (SiteAdmin(),),
        response=_VERSIONS,
    ),
    Route(
        "DELETE",
        "/api/v1/retention/expired",
        "delete_expired",
        "Delete every expired version",
        "retention",
        delete_expired,
        (SiteAdmin(),),
        response=_VERSIONS,
    ),
    Route(
        "GET",
        "/api/v1/retention/live-manifests",
        "live_manifest_blobs",
        "The manifest blobs of every version that has not expired",
        "retention",
        live_manifest_blobs,
        (SiteAdmin(),),
        response=envelope(digests=_STRINGS),
    ),
    Route(
        "POST",
        "/api/v1/retention/gc",
        "gc",
        "Delete expired versions and unneeded blobs (dry_run: only list them)",
        "retention",
        gc,
        (SiteAdmin(),),
        body=Obj(
            {
                "dry_run": Field(Bool(), required=False, default=False),
                "grace_seconds": Field(
                    Int(maximum=100 * 366 * 86400), required=False, default=3600
                ),
            }
        ),
        response=envelope(
            versions=many("Version"),
            blobs=_STRINGS,
            freed_bytes={"type": "integer"},
            dry_run={"type": "boolean"},
            indexed_versions={"type": "integer"},
            manifests_read={"type": "integer"},
        ),
    ),
]
