"""Catalog records as JSON, the way the service and its client exchange them.

Both sides use these functions, so a field added to a record is added to the
wire in one place. Times are ISO 8601 in UTC; a TTL policy is ``null`` (keep
forever), ``"inherit"`` (the project's default) or a number of seconds.
A malformed answer from a service raises CatalogError naming what was wrong.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from refstore.catalog.base import (
    RUN_STATES,
    ArtifactRecord,
    LoadedFields,
    NewRun,
    NewVersion,
    ProjectDeletion,
    ProjectRecord,
    RunRecord,
    RunState,
    SweepRecord,
    ValueFilter,
    VersionEdit,
    VersionRecord,
)
from refstore.errors import CatalogError
from refstore.ttl import INHERIT, TtlPolicy

__all__ = [
    "artifact_from_wire",
    "artifact_to_wire",
    "edit_to_wire",
    "loaded_to_wire",
    "new_run_to_wire",
    "new_version_to_wire",
    "project_deletion_from_wire",
    "project_deletion_to_wire",
    "project_from_wire",
    "project_to_wire",
    "run_from_wire",
    "run_to_wire",
    "sweep_from_wire",
    "sweep_to_wire",
    "time_to_wire",
    "trial_from_wire",
    "ttl_from_wire",
    "ttl_to_wire",
    "value_filters_from_wire",
    "value_filters_to_wire",
    "version_from_wire",
    "version_to_wire",
]

JSON = dict[str, Any]


def time_to_wire(value: datetime.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _time(value: Any) -> datetime.datetime:
    parsed = datetime.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone")
    return parsed


def _optional_time(value: Any) -> datetime.datetime | None:
    return None if value is None else _time(value)


def ttl_to_wire(policy: TtlPolicy) -> int | str | None:
    if policy is INHERIT:
        return INHERIT.value
    return None if policy is None else int(policy.total_seconds())


def ttl_from_wire(value: Any) -> TtlPolicy:
    if value == INHERIT.value:
        return INHERIT
    if value is None:
        return None
    if type(value) is not int:
        raise ValueError(f"{value!r} is not a TTL")
    return datetime.timedelta(seconds=value)


@contextlib.contextmanager
def _decoding(what: str) -> Iterator[None]:
    try:
        yield
    except (KeyError, TypeError, ValueError) as exc:
        raise CatalogError(
            f"the refstore service answered with a malformed {what} ({exc!r}); "
            "check that REFSTORE_URL names a refstore service of this version"
        ) from exc


# -- records ----------------------------------------------------------------


def version_to_wire(record: VersionRecord) -> JSON:
    return {
        "project": record.project,
        "name": record.name,
        "type": record.type,
        "version": record.version,
        "aliases": list(record.aliases),
        "description": record.description,
        "metadata": dict(record.metadata),
        "digest": record.digest,
        "manifest_blob": record.manifest_blob,
        "entry_count": record.entry_count,
        "total_size": record.total_size,
        "created_at": time_to_wire(record.created_at),
        "tags": list(record.tags),
        "ttl": ttl_to_wire(record.ttl),
        "expires_at": time_to_wire(record.expires_at),
    }


def version_from_wire(data: Mapping[str, Any]) -> VersionRecord:
    with _decoding("version"):
        return VersionRecord(
            project=str(data["project"]),
            name=str(data["name"]),
            type=str(data["type"]),
            version=int(data["version"]),
            aliases=tuple(str(alias) for alias in data["aliases"]),
            description=data["description"],
            metadata=dict(data["metadata"]),
            digest=str(data["digest"]),
            manifest_blob=str(data["manifest_blob"]),
            entry_count=int(data["entry_count"]),
            total_size=int(data["total_size"]),
            created_at=_time(data["created_at"]),
            tags=tuple(str(tag) for tag in data["tags"]),
            ttl=ttl_from_wire(data["ttl"]),
            expires_at=_optional_time(data["expires_at"]),
        )


def project_to_wire(record: ProjectRecord) -> JSON:
    default = record.default_ttl
    return {
        "project": record.path,
        "entity": record.entity,
        "name": record.name,
        "created_at": time_to_wire(record.created_at),
        "default_ttl": None if default is None else int(default.total_seconds()),
    }


def project_from_wire(data: Mapping[str, Any]) -> ProjectRecord:
    with _decoding("project"):
        seconds = data["default_ttl"]
        default = None if seconds is None else datetime.timedelta(seconds=seconds)
        return ProjectRecord(
            entity=str(data["entity"]),
            name=str(data["name"]),
            created_at=_time(data["created_at"]),
            default_ttl=default,
        )


def project_deletion_to_wire(report: ProjectDeletion) -> JSON:
    return dataclasses.asdict(report)


def project_deletion_from_wire(data: Mapping[str, Any]) -> ProjectDeletion:
    with _decoding("project deletion"):
        return ProjectDeletion(
            project=str(data["project"]),
            artifacts=int(data["artifacts"]),
            versions=int(data["versions"]),
            runs=int(data["runs"]),
            sweeps=int(data["sweeps"]),
            lineage_edges=int(data["lineage_edges"]),
            cross_project_uses=int(data["cross_project_uses"]),
            dry_run=bool(data["dry_run"]),
        )


def artifact_to_wire(record: ArtifactRecord) -> JSON:
    return {
        "project": record.project,
        "name": record.name,
        "type": record.type,
        "description": record.description,
        "created_at": time_to_wire(record.created_at),
        "version_count": record.version_count,
        "latest_version": record.latest_version,
    }


def artifact_from_wire(data: Mapping[str, Any]) -> ArtifactRecord:
    with _decoding("artifact"):
        latest = data["latest_version"]
        return ArtifactRecord(
            project=str(data["project"]),
            name=str(data["name"]),
            type=str(data["type"]),
            description=data["description"],
            created_at=_time(data["created_at"]),
            version_count=int(data["version_count"]),
            latest_version=None if latest is None else int(latest),
        )


def run_to_wire(record: RunRecord) -> JSON:
    return {
        "project": record.project,
        "id": record.id,
        "name": record.name,
        "job_type": record.job_type,
        "state": record.state,
        "config": dict(record.config),
        "summary": dict(record.summary),
        "sweep": record.sweep,
        "created_at": time_to_wire(record.created_at),
        "updated_at": time_to_wire(record.updated_at),
        "heartbeat_at": time_to_wire(record.heartbeat_at),
    }


def run_from_wire(data: Mapping[str, Any]) -> RunRecord:
    with _decoding("run"):
        return RunRecord(
            project=str(data["project"]),
            id=str(data["id"]),
            name=data["name"],
            job_type=data["job_type"],
            state=_run_state(data["state"]),
            config=dict(data["config"]),
            summary=dict(data["summary"]),
            sweep=data["sweep"],
            created_at=_time(data["created_at"]),
            updated_at=_time(data["updated_at"]),
            heartbeat_at=_time(data["heartbeat_at"]),
        )


def _run_state(value: Any) -> RunState:
    # "crashed" included: the service derives it, as an embedded catalog does.
    for state in RUN_STATES:
        if value == state:
            return state
    raise ValueError(f"{value!r} is not a run state")


def sweep_to_wire(record: SweepRecord) -> JSON:
    return {
        "project": record.project,
        "id": record.id,
        "config": dict(record.config),
        "state": record.state,
        "trial_count": record.trial_count,
        "created_at": time_to_wire(record.created_at),
        "updated_at": time_to_wire(record.updated_at),
    }


def sweep_from_wire(data: Mapping[str, Any]) -> SweepRecord:
    with _decoding("sweep"):
        return SweepRecord(
            project=str(data["project"]),
            id=str(data["id"]),
            config=dict(data["config"]),
            state=data["state"],
            trial_count=int(data["trial_count"]),
            created_at=_time(data["created_at"]),
            updated_at=_time(data["updated_at"]),
        )


def trial_from_wire(data: Mapping[str, Any]) -> tuple[SweepRecord, int | None]:
    """A ``next_trial`` answer: the sweep, and its trial number or null."""
    with _decoding("trial"):
        trial = data["trial"]
        number = None if trial is None else int(trial)
        return sweep_from_wire(data["sweep"]), number


# -- requests ---------------------------------------------------------------


def new_version_to_wire(new: NewVersion) -> JSON:
    """The body of a log request; project and name travel in its path."""
    return {
        "type": new.type,
        "digest": new.digest,
        "manifest_blob": new.manifest_blob,
        "entry_count": new.entry_count,
        "total_size": new.total_size,
        "description": new.description,
        "metadata": dict(new.metadata),
        "aliases": list(new.aliases),
        "tags": list(new.tags),
        "ttl": ttl_to_wire(new.ttl),
        "run": new.run,
    }


def edit_to_wire(edit: VersionEdit) -> JSON:
    body: JSON = {
        "description": edit.description,
        "metadata": dict(edit.metadata),
        "tags": list(edit.tags),
        "ttl": ttl_to_wire(edit.ttl),
        "add_aliases": list(edit.add_aliases),
        "remove_aliases": list(edit.remove_aliases),
    }
    # Left out when forced, so that a forced edit still reaches services
    # older than compare-and-set, which refuse fields they do not know.
    if edit.loaded is not None:
        body["loaded"] = loaded_to_wire(edit.loaded)
    return body


def loaded_to_wire(loaded: LoadedFields) -> JSON:
    return {
        "description": loaded.description,
        "metadata": dict(loaded.metadata),
        "tags": list(loaded.tags),
        "ttl": ttl_to_wire(loaded.ttl),
    }


def new_run_to_wire(new: NewRun, resume: str) -> JSON:
    return {
        "id": new.id,
        "name": new.name,
        "job_type": new.job_type,
        "config": dict(new.config),
        "sweep": new.sweep,
        "resume": resume,
    }


def value_filters_to_wire(filters: Iterable[ValueFilter]) -> str:
    """The ``where`` query parameter of a run listing: a JSON array."""
    wire = [{"key": item.key, "value": item.value} for item in filters]
    return json.dumps(wire, allow_nan=False, separators=(",", ":"))


def value_filters_from_wire(data: Any) -> list[ValueFilter]:
    """ValueError unless ``data`` is a list of ``{"key": ..., "value": ...}``."""
    if not isinstance(data, list):
        raise ValueError("must be a JSON array of {key, value} objects")
    filters = []
    for item in data:
        if not isinstance(item, dict) or set(item) != {"key", "value"}:
            raise ValueError("each filter must be an object with key and value")
        if not isinstance(item["key"], str):
            raise ValueError("each filter's key must be a string")
        filters.append(ValueFilter(item["key"], item["value"]))
    return filters
