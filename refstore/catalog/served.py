"""The SQL catalog as the refstore service uses it.

:class:`ServedCatalog` is a :class:`~refstore.catalog.sql.SqlCatalog` plus
what only a shared service needs, each in one transaction: users, teams and
tokens; project visibility; which project holds which blob; and logging
that checks the uploaded manifest and answers a retried request with the
version its first attempt logged (idempotency keys).

A logged manifest is read back before the version is recorded: its digest,
entry count and size must be the ones claimed, and every copied file it
names must have been uploaded to the same project. Otherwise a client could
name a blob it never had, from a project it cannot read, and download it
through its own. The same reading gives the copied files that the catalog
records as needed by the version, for gc.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import hashlib
import json
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, BinaryIO

import zstandard

from refstore.catalog import sql_access
from refstore.catalog.access import (
    ANONYMOUS,
    UNKNOWN_TOKEN,
    Principal,
    ProjectAccess,
    Refusal,
    Visibility,
    disabled_user,
    new_token,
    token_digest,
    token_shaped,
)
from refstore.catalog.base import NewVersion, VersionRecord
from refstore.catalog.sql import SqlCatalog
from refstore.catalog.sql_access import Member, RequestKey, TokenRecord, UserRecord
from refstore.catalog.sql_rows import Tx
from refstore.catalog.wire import new_version_to_wire
from refstore.errors import ConfigError, ConflictError, ManifestError
from refstore.manifest import ManifestEntry, digest_entries, read_stored
from refstore.names import LATEST, validate_alias

__all__ = ["ManifestFacts", "ManifestLimits", "ServedCatalog", "fingerprint"]

log = logging.getLogger(__name__)

_TOUCH_EVERY = datetime.timedelta(minutes=1)
_LISTED = 5


@dataclasses.dataclass(frozen=True)
class ManifestLimits:
    """Bounds on a stored manifest, checked before it is parsed."""

    max_bytes: int = 16 << 30  # decompressed
    max_line: int = 1 << 20


@dataclasses.dataclass(frozen=True)
class ManifestFacts:
    digest: str
    entry_count: int
    total_size: int
    files: frozenset[str]  # sha256 of every copied file


def fingerprint(new: NewVersion) -> str:
    """A digest of everything a log request asks for."""
    body = {"project": new.project, "name": new.name, **new_version_to_wire(new)}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class ServedCatalog(SqlCatalog):
    """A SQL catalog with identities, access facts and checked, idempotent logs."""

    def now(self) -> datetime.datetime:
        """The catalog clock's time (what decides expiry)."""
        return self._now()

    def ping(self) -> None:
        """Raise CatalogError unless the database answers."""
        self._read(sql_access.ping)

    # -- identities -----------------------------------------------------

    def principal_for_token(self, token: str) -> Principal | Refusal:
        """The owner of ``token``, or why it signs nobody in."""
        return self.authorize(token, [])[0]

    def authorize(
        self, token: str | None, projects: Sequence[str]
    ) -> tuple[Principal | Refusal, dict[str, ProjectAccess]]:
        """Who ``token`` belongs to (ANONYMOUS without one; a Refusal when it
        is unknown or its user is disabled) and the access facts of
        ``projects``, read in one transaction: this runs before every request."""
        digest = token_digest(token) if token and token_shaped(token) else None

        def work(tx: Tx) -> tuple[Any, dict[str, ProjectAccess]]:
            found = (
                None if digest is None else sql_access.principal_by_token(tx, digest)
            )
            return found, sql_access.projects_access(tx, projects)

        found, facts = self._read(work)
        if token is None:
            return ANONYMOUS, facts
        if found is None:
            return UNKNOWN_TOKEN, facts
        if found.disabled:
            return disabled_user(found.principal.label), facts
        last_used = found.last_used_at
        if last_used is None or self._now() - last_used > _TOUCH_EVERY:
            self._write(lambda tx: sql_access.touch_token(tx, found.token_id))
        return found.principal, facts

    def ensure_admin(self, name: str, token: str | None) -> str | None:
        """Make sure a site admin exists; return a new token to show, if made.

        With ``token`` (REFSTORE_ADMIN_TOKEN), the admin ``name`` is created
        when missing and the token registered for them; nothing is shown.
        Without, an admin is created only on a catalog that has none, with a
        fresh token returned to be printed once.
        """
        if token is not None:
            if not token_shaped(token):
                raise ConfigError(
                    "REFSTORE_ADMIN_TOKEN is not a refstore token (rs_ and 43 "
                    "URL-safe base64 characters); make one with `refstore token "
                    "generate`"
                )
            self._write(lambda tx: _ensure_admin_with(tx, name, token_digest(token)))
            return None
        fresh = new_token()
        made = self._write(lambda tx: _first_admin(tx, name, token_digest(fresh)))
        return fresh if made else None

    def create_user(self, name: str, *, is_admin: bool = False) -> tuple[str, str]:
        """Create a user with a first token; return (name, token)."""
        token = new_token()

        def work(tx: Tx) -> None:
            sql_access.create_user(tx, name, is_admin=is_admin)
            sql_access.add_token(tx, name, "first token", token_digest(token))

        self._write(work)
        log.info("created user %s%s", name, " (admin)" if is_admin else "")
        return name, token

    def users(self) -> list[UserRecord]:
        return self._read(sql_access.users)

    def disable_user(self, actor: str, name: str) -> UserRecord:
        """Refuse every token of ``name`` from now on (``actor``: who asks)."""
        record = self._write(lambda tx: sql_access.disable_user(tx, actor, name))
        log.info("user %s is disabled (by %s)", name, actor)
        return record

    def enable_user(self, name: str) -> UserRecord:
        record = self._write(lambda tx: sql_access.enable_user(tx, name))
        log.info("user %s is enabled", name)
        return record

    def create_token(self, user: str, label: str) -> tuple[TokenRecord, str]:
        token = new_token()
        record = self._write(
            lambda tx: sql_access.add_token(tx, user, label, token_digest(token))
        )
        return record, token

    def tokens_of(self, user: str) -> list[TokenRecord]:
        return self._read(lambda tx: sql_access.tokens_of(tx, user))

    def revoke_token(self, principal: Principal, token_id: int) -> TokenRecord:
        return self._write(lambda tx: sql_access.revoke_token(tx, principal, token_id))

    def create_team(self, name: str, creator: str) -> list[Member]:
        self._write(lambda tx: sql_access.create_team(tx, name, creator))
        return self.team_members(name)

    def set_member(self, team: str, user: str, role: str) -> list[Member]:
        self._write(lambda tx: sql_access.set_member(tx, team, user, role))
        return self.team_members(team)

    def remove_member(self, team: str, user: str) -> list[Member]:
        self._write(lambda tx: sql_access.remove_member(tx, team, user))
        return self.team_members(team)

    def team_members(self, team: str) -> list[Member]:
        return self._read(lambda tx: sql_access.team_members(tx, team))

    def delete_team(self, team: str) -> int:
        """Delete a team owning no projects; return how many members it had."""
        removed = self._write(lambda tx: sql_access.delete_team(tx, team))
        log.info("deleted team %s and its %d memberships", team, removed)
        return removed

    # -- projects -------------------------------------------------------

    def projects_access(self, paths: Iterable[str]) -> dict[str, ProjectAccess]:
        wanted = list(paths)
        return self._read(lambda tx: sql_access.projects_access(tx, wanted))

    def set_visibility(self, project: str, visibility: Visibility) -> None:
        self._write(lambda tx: sql_access.set_visibility(tx, project, visibility))
        log.info("visibility of %s is now %s", project, visibility)

    # -- blobs ----------------------------------------------------------

    def add_project_blobs(self, project: str, digests: Iterable[str]) -> None:
        wanted = list(digests)
        self._write(lambda tx: sql_access.add_project_blobs(tx, project, wanted))

    def missing_blobs(self, project: str, digests: Sequence[str]) -> list[str]:
        """Which of ``digests`` must still be uploaded to ``project``.

        A blob counts as present only when this project holds it and its
        bytes are still in the store (gc may have removed them). Present
        blobs are held (:meth:`BlobStore.hold`): the version about to name
        them keeps them from gc only once it is logged.
        """
        held = self._read(
            lambda tx: sql_access.project_blobs_present(tx, project, digests)
        )
        return sorted(
            d for d in set(digests) if d not in held or not self.blobs.hold(d)
        )

    def readable_blob(self, principal: Principal, digest: str) -> bool:
        return self._read(lambda tx: sql_access.readable_blob(tx, principal, digest))

    # -- logging --------------------------------------------------------

    def log_checked(
        self,
        new: NewVersion,
        request: RequestKey | None,
        limits: ManifestLimits,
    ) -> tuple[VersionRecord, bool]:
        """Log ``new`` after checking its uploaded manifest (see the module)."""
        facts = self.manifest_facts(new.manifest_blob, limits)
        _check_claims(new, facts)
        self._check_uploaded(new.project, [new.manifest_blob, *facts.files])
        # The files gc keeps for this version are the ones its stored manifest
        # names, read here, never a list a client sends: one that left a file
        # out would let gc delete it under every version that needs it.
        checked = dataclasses.replace(new, files=facts.files)
        extra = sorted({validate_alias(a) for a in new.aliases} - {LATEST})
        record, created = self._write(
            lambda tx: sql_access.log_once(tx, checked, extra, request)
        )
        log.info(
            "%s %s (%d entries)",
            "logged" if created else "kept",
            record.path,
            record.entry_count,
        )
        return record, created

    def manifest_facts(self, blob: str, limits: ManifestLimits) -> ManifestFacts:
        if not self.blobs.has(blob):
            raise ConflictError(
                f"the manifest blob {blob} has not been uploaded; upload it to "
                "the project first"
            )
        with self.blobs.open(blob) as stream:
            _check_bounds(stream, limits)
        with self.blobs.open(blob) as stream:
            return _facts(stream)

    def _check_uploaded(self, project: str, digests: Sequence[str]) -> None:
        missing = self.missing_blobs(project, digests)
        if missing:
            shown = ", ".join(missing[:_LISTED])
            more = len(missing) - _LISTED
            if more > 0:
                shown += f" and {more} more"
            raise ConflictError(
                f"{len(missing)} blobs named by this version were not uploaded to "
                f"{project}: {shown}; upload them first"
            )

    def purge_request_keys(self, older_than: datetime.timedelta) -> int:
        before = self._now() - older_than
        return self._write(lambda tx: sql_access.purge_request_keys(tx, before))


def _ensure_admin_with(tx: Tx, name: str, digest: str) -> None:
    # Several service processes may start at once: whoever comes second finds
    # the user or the token there already.
    with contextlib.suppress(ConflictError):
        sql_access.create_user(tx, name, is_admin=True)
    # The operator names this user the admin, even if it was made otherwise.
    sql_access.make_admin(tx, name)
    # But not enabled again: the token may be why a site admin disabled them.
    if sql_access.user(tx, name).disabled:
        log.warning(
            "the site admin %s is disabled: REFSTORE_ADMIN_TOKEN is refused until "
            "another site admin runs `refstore user enable %s`",
            name,
            name,
        )
    with contextlib.suppress(ConflictError):
        sql_access.add_token(tx, name, "REFSTORE_ADMIN_TOKEN", digest)


def _first_admin(tx: Tx, name: str, digest: str) -> bool:
    if any(user.is_admin for user in sql_access.users(tx)):
        return False
    try:
        sql_access.create_user(tx, name, is_admin=True)
    except ConflictError:
        return False
    sql_access.add_token(tx, name, "first admin token", digest)
    return True


def _check_claims(new: NewVersion, facts: ManifestFacts) -> None:
    claimed = (new.digest, new.entry_count, new.total_size)
    if claimed != (facts.digest, facts.entry_count, facts.total_size):
        raise ManifestError(
            f"the manifest blob {new.manifest_blob} holds {facts.entry_count} "
            f"entries, {facts.total_size} bytes, digest {facts.digest}; the "
            f"request claims {new.entry_count} entries, {new.total_size} bytes, "
            f"digest {new.digest}"
        )


def _check_bounds(stream: BinaryIO, limits: ManifestLimits) -> None:
    """ManifestError when the manifest inflates past the limits.

    A small compressed upload may inflate to gigabytes, and a line without
    end would be held in memory whole by the parser.
    """
    decompressor = zstandard.ZstdDecompressor().decompressobj()
    total = carry = 0
    while not decompressor.eof and (chunk := stream.read(1 << 16)):
        try:
            data = decompressor.decompress(chunk)
        except zstandard.ZstdError as exc:
            raise ManifestError(f"the stored manifest is corrupt: {exc}") from exc
        total += len(data)
        parts = data.split(b"\n")
        longest = max(carry + len(parts[0]), *(len(part) for part in parts[1:]))
        carry = carry + len(data) if len(parts) == 1 else len(parts[-1])
        if total > limits.max_bytes or longest > limits.max_line:
            raise ManifestError(
                f"the manifest is larger than this service accepts (at most "
                f"{limits.max_bytes} bytes uncompressed, lines of at most "
                f"{limits.max_line} bytes)"
            )


def _facts(stream: BinaryIO) -> ManifestFacts:
    count = size = 0
    files: set[str] = set()

    def entries() -> Iterator[ManifestEntry]:
        nonlocal count, size
        for entry in read_stored(stream):
            count += 1
            size += entry.size or 0
            if entry.ref is None:
                files.add(entry.digest)
            yield entry

    digest = digest_entries(entries())
    return ManifestFacts(digest, count, size, frozenset(files))
