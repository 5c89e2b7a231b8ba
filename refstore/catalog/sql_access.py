"""Identity and access in the SQL catalog: users, teams, tokens, visibility.

Also what the service needs beside the catalog proper: which project holds
which blob (a download is allowed through a project the reader may read),
and the idempotency keys that make a retried log answer with the version
its first attempt logged. Policy lives in :mod:`refstore.catalog.access`;
these functions only read and write rows, inside the caller's transaction.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Row, delete, or_, select, update

from refstore.catalog import sql_versions
from refstore.catalog.access import (
    Principal,
    ProjectAccess,
    Visibility,
)
from refstore.catalog.base import NewVersion, VersionRecord
from refstore.catalog.sql_rows import (
    Tx,
    insert_missing,
    inserted,
    project_id,
    split_project,
)
from refstore.catalog.tables import (
    artifacts,
    entities,
    memberships,
    project_blobs,
    projects,
    request_keys,
    tokens,
    versions,
)
from refstore.errors import ConflictError, NotFoundError

__all__ = [
    "Member",
    "RequestKey",
    "TokenOwner",
    "TokenRecord",
    "UserRecord",
    "add_project_blobs",
    "add_token",
    "create_team",
    "create_user",
    "delete_team",
    "disable_user",
    "enable_user",
    "log_once",
    "make_admin",
    "ping",
    "principal_by_token",
    "principal_named",
    "project_access",
    "project_blobs_present",
    "projects_access",
    "purge_request_keys",
    "readable_blob",
    "remove_member",
    "revoke_token",
    "set_member",
    "set_visibility",
    "team_members",
    "tokens_of",
    "touch_token",
    "user",
    "users",
]

_CHUNK = 500
_LISTED = 5


@dataclasses.dataclass(frozen=True)
class UserRecord:
    name: str
    is_admin: bool
    # A disabled user keeps everything but may not sign in (see disable_user).
    disabled: bool
    created_at: datetime.datetime
    disabled_at: datetime.datetime | None


@dataclasses.dataclass(frozen=True)
class Member:
    user: str
    role: str  # "member" or "admin"


@dataclasses.dataclass(frozen=True)
class TokenRecord:
    """A token as listings show it: never the token itself."""

    id: int
    user: str
    label: str
    created_at: datetime.datetime
    last_used_at: datetime.datetime | None


@dataclasses.dataclass(frozen=True)
class TokenOwner:
    """Who a token belongs to, as authentication reads it on every request."""

    principal: Principal
    token_id: int
    last_used_at: datetime.datetime | None
    disabled: bool


@dataclasses.dataclass(frozen=True)
class RequestKey:
    """An idempotency key, who sent it, and a digest of what it was sent with."""

    key: str
    principal: str
    fingerprint: str


def ping(tx: Tx) -> None:
    tx.conn.execute(select(1)).one()


# -- users and teams --------------------------------------------------------


def create_user(tx: Tx, name: str, *, is_admin: bool = False) -> UserRecord:
    values = {"name": name, "kind": "user", "is_admin": is_admin, "created_at": tx.now}
    if not inserted(tx, entities, ["name"], values):
        raise ConflictError(_taken(tx, name))
    return UserRecord(name, is_admin, False, tx.now, None)


def make_admin(tx: Tx, name: str) -> None:
    """Make the user ``name`` a site admin."""
    tx.conn.execute(
        update(entities)
        .where(entities.c.id == _entity_pk(tx, name, "user"))
        .values(is_admin=True)
    )


def users(tx: Tx) -> list[UserRecord]:
    rows = tx.conn.execute(
        select(entities).where(entities.c.kind == "user").order_by(entities.c.name)
    )
    return [_user(row) for row in rows]


def _user(row: Row[Any]) -> UserRecord:
    disabled = row.disabled_at is not None
    return UserRecord(row.name, row.is_admin, disabled, row.created_at, row.disabled_at)


def user(tx: Tx, name: str) -> UserRecord:
    row = tx.conn.execute(
        select(entities).where(entities.c.name == name, entities.c.kind == "user")
    ).first()
    if row is None:
        raise NotFoundError(f"no user {name!r}; `refstore user list` shows them all")
    return _user(row)


def disable_user(tx: Tx, actor: str, name: str) -> UserRecord:
    """Stop every token of ``name`` from working; keep everything else.

    Disabling a disabled user changes nothing (not even when it happened).
    """
    if name == actor:
        raise ConflictError(
            f"you cannot disable yourself ({actor!r}): the site must keep a site "
            "admin who can sign in; ask another site admin to do it"
        )
    _lock_users(tx, actor, name)
    tx.conn.execute(
        update(entities)
        .where(
            entities.c.id == _entity_pk(tx, name, "user"),
            entities.c.disabled_at.is_(None),
        )
        .values(disabled_at=tx.now)
    )
    return user(tx, name)


def enable_user(tx: Tx, name: str) -> UserRecord:
    """Let ``name`` sign in again with the tokens they had."""
    tx.conn.execute(
        update(entities)
        .where(entities.c.id == _entity_pk(tx, name, "user"))
        .values(disabled_at=None)
    )
    return user(tx, name)


def _lock_users(tx: Tx, actor: str, name: str) -> None:
    """Lock both users' rows, then check that ``actor`` is still enabled.

    Two site admins disabling each other at the same moment would otherwise
    both succeed and leave the site without one. Locking in id order makes
    the second wait for the first instead of deadlocking; SQLite serialises
    writers anyway and ignores FOR UPDATE.
    """
    rows = tx.conn.execute(
        select(entities.c.name, entities.c.disabled_at)
        .where(entities.c.name.in_([actor, name]), entities.c.kind == "user")
        .order_by(entities.c.id)
        .with_for_update()
    ).all()
    if any(row.name == actor and row.disabled_at is not None for row in rows):
        raise ConflictError(
            f"your account {actor!r} was disabled meanwhile; ask another site "
            "admin to enable it"
        )


def create_team(tx: Tx, name: str, creator: str) -> None:
    """Create a team whose first member, and admin, is ``creator``."""
    values = {"name": name, "kind": "team", "is_admin": False, "created_at": tx.now}
    if not inserted(tx, entities, ["name"], values):
        raise ConflictError(_taken(tx, name))
    set_member(tx, name, creator, "admin")


def delete_team(tx: Tx, name: str) -> int:
    """Delete a team that owns no projects; return how many members it had."""
    team_pk = _entity_pk(tx, name, "team")
    owned = [
        f"{name}/{project}"
        for project in tx.conn.execute(
            select(projects.c.name)
            .where(projects.c.entity == name)
            .order_by(projects.c.name)
        ).scalars()
    ]
    if owned:
        raise ConflictError(_still_owns(name, owned))
    removed = tx.conn.execute(
        delete(memberships).where(memberships.c.team_id == team_pk)
    ).rowcount
    tx.conn.execute(delete(entities).where(entities.c.id == team_pk))
    return int(removed)


def _still_owns(team: str, owned: Sequence[str]) -> str:
    shown = ", ".join(owned[:_LISTED])
    if len(owned) > _LISTED:
        shown += f" and {len(owned) - _LISTED} more"
    return (
        f"the team {team!r} still owns {len(owned)} "
        f"project{'' if len(owned) == 1 else 's'} ({shown}); delete them or move "
        "them to another user or team first, then delete the team"
    )


def _taken(tx: Tx, name: str) -> str:
    kind = tx.conn.execute(select(entities.c.kind).where(entities.c.name == name))
    return (
        f"the name {name!r} is taken by a {kind.scalar()}; users and teams share "
        "one namespace, the entities that projects are named under"
    )


def _entity_pk(tx: Tx, name: str, kind: str) -> int:
    found = tx.conn.execute(
        select(entities.c.id).where(entities.c.name == name, entities.c.kind == kind)
    ).scalar()
    if found is None:
        raise NotFoundError(f"no {kind} {name!r}")
    return int(found)


def set_member(tx: Tx, team: str, user: str, role: str) -> None:
    """Add ``user`` to ``team`` with ``role``, or change their role."""
    team_pk, user_pk = _entity_pk(tx, team, "team"), _entity_pk(tx, user, "user")
    changed = tx.conn.execute(
        update(memberships)
        .where(memberships.c.team_id == team_pk, memberships.c.user_id == user_pk)
        .values(role=role)
    ).rowcount
    if not changed:
        values = {
            "team_id": team_pk,
            "user_id": user_pk,
            "role": role,
            "created_at": tx.now,
        }
        keys = ["team_id", "user_id"]
        tx.conn.execute(insert_missing(tx.conn, memberships, keys, values))


def remove_member(tx: Tx, team: str, user: str) -> None:
    team_pk, user_pk = _entity_pk(tx, team, "team"), _entity_pk(tx, user, "user")
    removed = tx.conn.execute(
        delete(memberships).where(
            memberships.c.team_id == team_pk, memberships.c.user_id == user_pk
        )
    ).rowcount
    if not removed:
        raise NotFoundError(f"{user!r} is not a member of the team {team!r}")


def team_members(tx: Tx, team: str) -> list[Member]:
    team_pk = _entity_pk(tx, team, "team")
    rows = tx.conn.execute(
        select(entities.c.name, memberships.c.role)
        .join(memberships, memberships.c.user_id == entities.c.id)
        .where(memberships.c.team_id == team_pk)
        .order_by(entities.c.name)
    )
    return [Member(row.name, row.role) for row in rows]


def principal_named(tx: Tx, name: str) -> Principal:
    """The principal of the user ``name``, with their teams."""
    row = tx.conn.execute(
        select(entities.c.id, entities.c.is_admin).where(
            entities.c.name == name, entities.c.kind == "user"
        )
    ).first()
    if row is None:
        raise NotFoundError(f"no user {name!r}")
    return _principal(tx, row.id, name, row.is_admin)


def _principal(tx: Tx, user_pk: int, name: str, is_admin: bool) -> Principal:
    team = entities.alias("team")
    rows = tx.conn.execute(
        select(team.c.name, memberships.c.role)
        .join(memberships, memberships.c.team_id == team.c.id)
        .where(memberships.c.user_id == user_pk)
    ).all()
    return Principal(
        name=name,
        is_admin=is_admin,
        entities=frozenset([name, *(row.name for row in rows)]),
        managed=frozenset([name, *(row.name for row in rows if row.role == "admin")]),
    )


# -- tokens -----------------------------------------------------------------


def add_token(tx: Tx, user: str, label: str, digest: str) -> TokenRecord:
    user_pk = _entity_pk(tx, user, "user")
    values = {
        "user_id": user_pk,
        "label": label,
        "digest": digest,
        "created_at": tx.now,
    }
    if not inserted(tx, tokens, ["digest"], values):
        raise ConflictError("this token is already registered")
    pk = tx.conn.execute(select(tokens.c.id).where(tokens.c.digest == digest))
    return TokenRecord(int(pk.scalar_one()), user, label, tx.now, None)


def principal_by_token(tx: Tx, digest: str) -> TokenOwner | None:
    """Who owns the token, whether they are disabled, and the token's use.

    One query, with the user's teams joined in: it runs on every request.
    """
    team = entities.alias("team")
    rows = tx.conn.execute(
        select(
            tokens.c.id,
            tokens.c.last_used_at,
            entities.c.name,
            entities.c.is_admin,
            entities.c.disabled_at,
            team.c.name.label("team"),
            memberships.c.role,
        )
        .join(entities, entities.c.id == tokens.c.user_id)
        .outerjoin(memberships, memberships.c.user_id == entities.c.id)
        .outerjoin(team, team.c.id == memberships.c.team_id)
        .where(tokens.c.digest == digest)
    ).all()
    if not rows:
        return None
    first = rows[0]
    teams = [(row.team, row.role) for row in rows if row.team is not None]
    principal = Principal(
        name=first.name,
        is_admin=first.is_admin,
        entities=frozenset([first.name, *(name for name, _ in teams)]),
        managed=frozenset([first.name, *(n for n, role in teams if role == "admin")]),
    )
    disabled = first.disabled_at is not None
    return TokenOwner(principal, int(first.id), first.last_used_at, disabled)


def touch_token(tx: Tx, token_id: int) -> None:
    tx.conn.execute(
        update(tokens).where(tokens.c.id == token_id).values(last_used_at=tx.now)
    )


def tokens_of(tx: Tx, user: str) -> list[TokenRecord]:
    user_pk = _entity_pk(tx, user, "user")
    rows = tx.conn.execute(
        select(tokens).where(tokens.c.user_id == user_pk).order_by(tokens.c.id)
    )
    return [
        TokenRecord(row.id, user, row.label, row.created_at, row.last_used_at)
        for row in rows
    ]


def revoke_token(tx: Tx, principal: Principal, token_id: int) -> TokenRecord:
    """Delete a token of ``principal`` (any token, for a site admin)."""
    row = tx.conn.execute(
        select(tokens, entities.c.name)
        .join(entities, entities.c.id == tokens.c.user_id)
        .where(tokens.c.id == token_id)
    ).first()
    if row is None or not (principal.is_admin or row.name == principal.name):
        raise NotFoundError(f"no token {token_id} of yours; `refstore token list`")
    tx.conn.execute(delete(tokens).where(tokens.c.id == token_id))
    return TokenRecord(row.id, row.name, row.label, row.created_at, row.last_used_at)


# -- projects ---------------------------------------------------------------


def project_access(tx: Tx, project: str) -> ProjectAccess:
    return projects_access(tx, [project])[project]


def projects_access(tx: Tx, paths: Iterable[str]) -> dict[str, ProjectAccess]:
    """Access facts of each project path (visibility None when it is absent)."""
    wanted = {path: split_project(path) for path in set(paths)}
    found: dict[tuple[str, str], Visibility] = {}
    entities_wanted = sorted({entity for entity, _ in wanted.values()})
    for start in range(0, len(entities_wanted), _CHUNK):
        rows = tx.conn.execute(
            select(projects.c.entity, projects.c.name, projects.c.visibility).where(
                projects.c.entity.in_(entities_wanted[start : start + _CHUNK])
            )
        )
        found.update(((row.entity, row.name), row.visibility) for row in rows)
    return {path: ProjectAccess(key[0], found.get(key)) for path, key in wanted.items()}


def set_visibility(tx: Tx, project: str, visibility: Visibility) -> None:
    pk = project_id(tx, project, create=True)
    tx.conn.execute(
        update(projects).where(projects.c.id == pk).values(visibility=visibility)
    )


# -- blobs ------------------------------------------------------------------


def add_project_blobs(tx: Tx, project: str, digests: Iterable[str]) -> None:
    pk = project_id(tx, project, create=True)
    for digest in sorted(set(digests)):
        values = {"project_id": pk, "digest": digest, "created_at": tx.now}
        keys = ["project_id", "digest"]
        tx.conn.execute(insert_missing(tx.conn, project_blobs, keys, values))


def project_blobs_present(tx: Tx, project: str, digests: Sequence[str]) -> set[str]:
    """Which of ``digests`` were uploaded to (or logged in) ``project``."""
    entity, name = split_project(project)
    query = select(projects.c.id).where(
        projects.c.entity == entity, projects.c.name == name
    )
    pk = tx.conn.execute(query).scalar()
    if pk is None:
        return set()
    wanted = sorted(set(digests))
    present: set[str] = set()
    for start in range(0, len(wanted), _CHUNK):
        present.update(
            tx.conn.execute(
                select(project_blobs.c.digest).where(
                    project_blobs.c.project_id == pk,
                    project_blobs.c.digest.in_(wanted[start : start + _CHUNK]),
                )
            ).scalars()
        )
    return present


def readable_blob(tx: Tx, principal: Principal, digest: str) -> bool:
    """Whether some project ``principal`` may read holds the blob ``digest``."""
    readable = or_(
        projects.c.visibility.in_(("public", "open")),
        projects.c.entity.in_(sorted(principal.entities)),
    )
    uploaded = (
        select(projects.c.id)
        .join(project_blobs, project_blobs.c.project_id == projects.c.id)
        .where(project_blobs.c.digest == digest)
    )
    # Manifests of versions logged through an embedded catalog sharing this
    # database have no project_blobs row; their version names them.
    logged = (
        select(projects.c.id)
        .join(artifacts, artifacts.c.project_id == projects.c.id)
        .join(versions, versions.c.artifact_id == artifacts.c.id)
        .where(versions.c.manifest_blob == digest)
    )
    for query in (uploaded, logged):
        if not principal.is_admin:
            query = query.where(readable)
        if tx.conn.execute(query.limit(1)).first() is not None:
            return True
    return False


# -- idempotent logging -----------------------------------------------------


def log_once(
    tx: Tx, new: NewVersion, extra: Sequence[str], request: RequestKey | None
) -> tuple[VersionRecord, bool]:
    """Log ``new``; a key already seen answers with what it logged then.

    The key is inserted first: a second request with the same key waits on
    it (PostgreSQL's unique index, SQLite's write lock) until the first
    commits, then reads its answer.
    """
    if request is None:
        return sql_versions.log(tx, new, extra)
    values = {
        "key": request.key,
        "principal": request.principal,
        "fingerprint": request.fingerprint,
        "project": new.project,
        "name": new.name,
        "created_at": tx.now,
    }
    if not inserted(tx, request_keys, ["key"], values):
        return _replayed(tx, request)
    record, created = sql_versions.log(tx, new, extra)
    tx.conn.execute(
        update(request_keys)
        .where(request_keys.c.key == request.key)
        .values(version=record.version, created=created)
    )
    return record, created


def _replayed(tx: Tx, request: RequestKey) -> tuple[VersionRecord, bool]:
    row = tx.conn.execute(
        select(request_keys).where(request_keys.c.key == request.key)
    ).one()
    if row.principal != request.principal or row.fingerprint != request.fingerprint:
        raise ConflictError(
            "this Idempotency-Key was already used for another request; send a "
            "new key with each new version"
        )
    if row.version is None:
        raise ConflictError("the first request with this Idempotency-Key failed")
    version = sql_versions.get_version(tx, row.project, row.name, f"v{row.version}")
    return version, bool(row.created)


def purge_request_keys(tx: Tx, before: datetime.datetime) -> int:
    """Forget idempotency keys older than ``before``; return how many."""
    return int(
        tx.conn.execute(
            delete(request_keys).where(request_keys.c.created_at < before)
        ).rowcount
    )
