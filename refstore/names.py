"""Names of projects, artifacts, versions and aliases, and the paths that join them.

An artifact path is ``entity/project/name:selector``, where the selector is a
version (``v3``) or an alias (``latest``, ``best``). Shorter forms borrow the
rest from a default: ``project/name:alias`` (the default entity),
``name:alias`` (the default project), and a missing selector means
``latest``. Parsing is pure.
"""

from __future__ import annotations

import dataclasses
import getpass
import os
import re

from refstore.errors import InvalidReferenceError

__all__ = [
    "ArtifactPath",
    "default_entity",
    "parse_artifact_path",
    "parse_project",
    "validate_alias",
    "validate_name",
]

# Applied with fullmatch: "$" would accept a trailing newline.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_VERSION = re.compile(r"v(0|[1-9][0-9]*)")
LATEST = "latest"


@dataclasses.dataclass(frozen=True, slots=True)
class ArtifactPath:
    """A fully qualified artifact path: entity, project, name and selector."""

    entity: str
    project: str
    name: str
    selector: str = LATEST

    @property
    def project_path(self) -> str:
        return f"{self.entity}/{self.project}"

    @property
    def version_index(self) -> int | None:
        """The version number when the selector is ``vN``, else None."""
        match = _VERSION.fullmatch(self.selector)
        return int(match.group(1)) if match else None

    def __str__(self) -> str:
        return f"{self.entity}/{self.project}/{self.name}:{self.selector}"


def default_entity() -> str:
    """The entity of a bare project name: REFSTORE_ENTITY, else the OS user."""
    entity = os.environ.get("REFSTORE_ENTITY") or _os_user() or "local"
    return re.sub(r"[^A-Za-z0-9._-]", "-", entity)


def _os_user() -> str | None:
    # getuser() raises when the uid has no passwd entry (containers, CI).
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None


def validate_name(name: str, what: str = "name") -> str:
    if _NAME.fullmatch(name) is None:
        raise InvalidReferenceError(
            f"{name!r} is not a valid {what}: use 1-128 letters, digits, '.', "
            "'_' or '-', starting with a letter or digit"
        )
    return name


def validate_alias(alias: str) -> str:
    validate_name(alias, "alias")
    if _VERSION.fullmatch(alias):
        raise InvalidReferenceError(
            f"{alias!r} cannot be an alias: names of the form vN are version "
            "numbers; choose another alias"
        )
    return alias


def parse_project(text: str) -> tuple[str, str]:
    """``entity/project`` (or a bare ``project``) as (entity, project)."""
    parts = text.strip("/").split("/")
    if len(parts) == 1:
        parts = [default_entity(), parts[0]]
    if len(parts) != 2:
        raise InvalidReferenceError(
            f"{text!r} is not a project: write entity/project, e.g. acme/vision"
        )
    entity, project = parts
    return validate_name(entity, "entity"), validate_name(project, "project name")


def parse_artifact_path(text: str, default_project: str | None = None) -> ArtifactPath:
    """Parse ``[[entity/]project/]name[:selector]``."""
    body, _, selector = text.partition(":")
    selector = selector or LATEST
    parts = body.split("/")
    if len(parts) == 1:
        if default_project is None:
            raise InvalidReferenceError(
                f"{text!r} names no project: write entity/project/name:alias, "
                "or set REFSTORE_PROJECT"
            )
        entity, project = parse_project(default_project)
    elif len(parts) in (2, 3) and "" not in parts[:-1]:
        entity, project = parse_project("/".join(parts[:-1]))
    else:
        raise InvalidReferenceError(
            f"{text!r} is not an artifact path: write entity/project/name:alias"
        )
    name = validate_name(parts[-1], "artifact name")
    if _VERSION.fullmatch(selector) is None:
        validate_name(selector, "alias")
    return ArtifactPath(entity, project, name, selector)
