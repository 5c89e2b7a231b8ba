"""Routes that delete or rename a whole project.

Both manage the project, like its visibility: a user their own projects,
a team's admins the team's, site admins any; "open" lets anyone write in a
project, never delete or move it. A rename also creates a project at its
target, so it needs what creating one needs there: membership of the
target's entity (as any first write into a new project does).
"""

from __future__ import annotations

from typing import Any

from refstore.catalog.wire import project_deletion_to_wire
from refstore.server.routes_versions import PROJECT_PARAMS
from refstore.server.routing import Call, InProject, Param, Route
from refstore.server.schema import Bool, Field, Obj, Str
from refstore.server.specs import envelope, ref

__all__ = ["ROUTES"]

_BASE = "/api/v1/projects/{entity}/{project}"
_NAME_RE = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_TARGET = Str(
    pattern=f"{_NAME_RE}/{_NAME_RE}",
    max_length=257,
    description="the project's new entity/project",
)
_COUNT = {"type": "integer"}


async def delete_project(call: Call) -> Any:
    report = await call.run(
        call.catalog.delete_project, call.project, dry_run=call.params["dry_run"]
    )
    return project_deletion_to_wire(report)


async def rename_project(call: Call) -> Any:
    return await call.run(call.catalog.rename_project, call.project, call.body["to"])


ROUTES = [
    Route(
        "DELETE",
        _BASE,
        "delete_project",
        "Delete a project with its artifacts, versions, runs, sweeps and lineage "
        "(its managers; dry_run: only count them)",
        "projects",
        delete_project,
        (InProject("manage"),),
        (
            *PROJECT_PARAMS,
            Param("dry_run", Bool(), "query", required=False, default=False),
        ),
        response=envelope(
            project={"type": "string"},
            artifacts=_COUNT,
            versions=_COUNT,
            runs=_COUNT,
            sweeps=_COUNT,
            lineage_edges=_COUNT,
            cross_project_uses=_COUNT,
            dry_run={"type": "boolean"},
        ),
    ),
    Route(
        "POST",
        _BASE + "/rename",
        "rename_project",
        "Rename a project or move it to another entity; it keeps its contents "
        "(its managers, who must be members of the target's entity)",
        "projects",
        rename_project,
        (InProject("manage"), InProject("write", field="to")),
        PROJECT_PARAMS,
        body=Obj({"to": Field(_TARGET)}),
        response=ref("Project"),
    ),
]
