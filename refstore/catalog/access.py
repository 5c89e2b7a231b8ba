"""Who may do what in the refstore service: principals, visibility, tokens.

Pure policy, no I/O: :mod:`refstore.catalog.sql_access` reads principals and
projects from the catalog, the service's access layer asks :func:`decide`.

A project belongs to its entity, a user or a team. Members of the entity are
the user themself, or the team's members; site admins count as members of
everything. Visibility decides what everyone else may do:

* ``private``: members read and write; everyone else sees nothing, not even
  that the project exists (404);
* ``public``: everyone reads, members write;
* ``open``: everyone reads and writes.

Deleting (versions, aliases, the project's default TTL) stays with members
whatever the visibility, and so does managing (visibility, deleting or
moving the whole project): a team's admins manage its projects, a user
manages their own.

A site admin may disable a user: their tokens are kept but refused
(:class:`Refusal`) until the user is enabled again; what they own and the
teams they belong to stay as they were.

Tokens are 32 random bytes, URL-safe base64 with a ``rs_`` prefix so that
secret scanners can spot them. Only their sha256 is stored: a token has 256
bits of entropy, so a fast hash needs no salt or stretching to resist
guessing, and lookups by hash stay one indexed query.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import re
import secrets
from typing import Literal

__all__ = [
    "ACTIONS",
    "ANONYMOUS",
    "UNKNOWN_TOKEN",
    "VISIBILITIES",
    "Action",
    "Principal",
    "ProjectAccess",
    "Refusal",
    "Verdict",
    "Visibility",
    "can_read",
    "decide",
    "disabled_user",
    "new_token",
    "same_digest",
    "token_digest",
    "token_shaped",
]

Action = Literal["read", "write", "delete", "manage"]
ACTIONS: tuple[Action, ...] = ("read", "write", "delete", "manage")
Visibility = Literal["private", "public", "open"]
VISIBILITIES: tuple[Visibility, ...] = ("private", "public", "open")
Verdict = Literal["allow", "not_found", "forbidden", "unauthenticated"]

_TOKEN_PREFIX = "rs_"  # noqa: S105 (a prefix, not a secret)
_TOKEN = re.compile(r"rs_[A-Za-z0-9_-]{43}")


@dataclasses.dataclass(frozen=True)
class Principal:
    """Who sends a request: a user with their teams, or nobody (anonymous)."""

    name: str | None
    is_admin: bool = False
    # The entities whose projects this principal is a member of.
    entities: frozenset[str] = frozenset()
    # The entities whose projects this principal manages (visibility,
    # deleting or moving a project).
    managed: frozenset[str] = frozenset()

    @property
    def anonymous(self) -> bool:
        return self.name is None

    @property
    def label(self) -> str:
        """How logs and idempotency records name the principal."""
        return self.name or "-"

    def member_of(self, entity: str) -> bool:
        return self.is_admin or entity in self.entities

    def manages(self, entity: str) -> bool:
        return self.is_admin or entity in self.managed


ANONYMOUS = Principal(None)


@dataclasses.dataclass(frozen=True)
class Refusal:
    """Why a token signs nobody in; the service answers 401 with it."""

    code: str
    detail: str


UNKNOWN_TOKEN = Refusal(
    "unauthenticated",
    "the token is unknown or revoked; `refstore login` with a valid one",
)


def disabled_user(name: str) -> Refusal:
    return Refusal(
        "account_disabled",
        f"the account {name!r} is disabled; ask a site admin to enable it "
        f"(`refstore user enable {name}`)",
    )


@dataclasses.dataclass(frozen=True)
class ProjectAccess:
    """What the policy needs to know of a project; ``visibility`` None: absent."""

    entity: str
    visibility: Visibility | None


def can_read(principal: Principal, project: ProjectAccess) -> bool:
    if project.visibility in ("public", "open"):
        return True
    return principal.member_of(project.entity)


def decide(principal: Principal, project: ProjectAccess, action: Action) -> Verdict:
    """May ``principal`` do ``action`` in ``project``?

    A project that does not exist answers like a private one: members may
    create it by writing, everyone else learns nothing.
    """
    if not can_read(principal, project):
        return "not_found"
    if _allowed(principal, project, action):
        return "allow"
    return "unauthenticated" if principal.anonymous else "forbidden"


def _allowed(principal: Principal, project: ProjectAccess, action: Action) -> bool:
    if action == "read":
        return True
    if action == "manage":
        return principal.manages(project.entity)
    if action == "write" and project.visibility == "open":
        return True
    return principal.member_of(project.entity)


def new_token() -> str:
    """A fresh API token; shown once, stored only as :func:`token_digest`."""
    return _TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_shaped(text: str) -> bool:
    """Whether ``text`` could be a token (checked before any lookup)."""
    return _TOKEN.fullmatch(text) is not None


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same_digest(a: str, b: str) -> bool:
    """Constant-time equality of two digests."""
    return hmac.compare_digest(a.encode(), b.encode())
