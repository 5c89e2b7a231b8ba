"""Handler results as JSON, minus what the principal may not read.

Handlers return catalog records (or dicts and lists of them). Lineage
crosses projects: a public dataset may be used by runs of a private
project, and those runs must stay invisible to outsiders. So before
rendering, every record from a project the principal may not read is
dropped from lists and replaced by null elsewhere, whichever route
returned it.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from refstore.catalog.access import ProjectAccess, can_read
from refstore.catalog.base import (
    ArtifactRecord,
    ProjectRecord,
    RunRecord,
    SweepRecord,
    VersionRecord,
)
from refstore.catalog.wire import (
    artifact_to_wire,
    project_to_wire,
    run_to_wire,
    sweep_to_wire,
    time_to_wire,
    version_to_wire,
)

if TYPE_CHECKING:
    from refstore.server.routing import Call

__all__ = ["Rendered", "hide_unreadable", "render"]

Record = VersionRecord | RunRecord | ArtifactRecord | SweepRecord | ProjectRecord
_RECORDS = (VersionRecord, RunRecord, ArtifactRecord, SweepRecord, ProjectRecord)


@dataclasses.dataclass(frozen=True)
class Rendered:
    """A result with the access facts of the projects its records belong to."""

    value: Any
    facts: Mapping[str, ProjectAccess]


def _project_of(record: Record) -> str:
    return record.path if isinstance(record, ProjectRecord) else record.project


def _records(value: Any) -> list[Record]:
    if isinstance(value, _RECORDS):
        return [value]
    if isinstance(value, dict):
        return [r for inner in value.values() for r in _records(inner)]
    if isinstance(value, list | tuple):
        return [r for inner in value for r in _records(inner)]
    return []


async def hide_unreadable(call: Call, value: Any) -> Rendered:
    projects = {_project_of(record) for record in _records(value)}
    own = call.project if "project" in call.params else None
    needs_facts = projects - {own} or any(
        isinstance(r, ProjectRecord) for r in _records(value)
    )
    if not needs_facts:
        return Rendered(value, {})
    facts = await call.run(call.catalog.projects_access, projects)
    readable = {p for p in projects if can_read(call.principal, facts[p])}
    return Rendered(_keep(value, readable), facts)


def _keep(value: Any, readable: set[str]) -> Any:
    if isinstance(value, _RECORDS):
        return value if _project_of(value) in readable else None
    if isinstance(value, dict):
        return {key: _keep(inner, readable) for key, inner in value.items()}
    if isinstance(value, list | tuple):
        kept = [_keep(inner, readable) for inner in value]
        return [
            item
            for item, inner in zip(kept, value, strict=True)
            if item is not None or inner is None
        ]
    return value


def render(result: Rendered) -> Any:
    return _render(result.value, result.facts)


def _render(value: Any, facts: Mapping[str, ProjectAccess]) -> Any:
    if isinstance(value, ProjectRecord):
        access = facts.get(value.path)
        visibility = access.visibility if access is not None else None
        return {**project_to_wire(value), "visibility": visibility or "private"}
    if isinstance(value, VersionRecord):
        return version_to_wire(value)
    if isinstance(value, RunRecord):
        return run_to_wire(value)
    if isinstance(value, ArtifactRecord):
        return artifact_to_wire(value)
    if isinstance(value, SweepRecord):
        return sweep_to_wire(value)
    if isinstance(value, datetime.datetime):
        return time_to_wire(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _render(
            {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}, facts
        )
    if isinstance(value, dict):
        return {key: _render(inner, facts) for key, inner in value.items()}
    if isinstance(value, list | tuple):
        return [_render(inner, facts) for inner in value]
    return value
