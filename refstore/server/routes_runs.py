"""Routes for runs, a run's lineage, and sweeps.

A run may use a version from another project: that needs write access to
the run's project and read access to the version's, both declared on the
route.
"""

from __future__ import annotations

from typing import Any

from refstore.catalog.base import NewRun
from refstore.server.routes_versions import PROJECT_PARAMS
from refstore.server.routing import Call, InProject, Param, Route
from refstore.server.schema import Field, Int, JsonObject, Obj, Str
from refstore.server.specs import (
    NAME,
    NEW_STATE,
    RESUME,
    SELECTOR,
    STATE,
    ValueFilters,
    envelope,
    many,
    optional,
    ref,
)

__all__ = ["ROUTES"]

_BASE = "/api/v1/projects/{entity}/{project}"
_RUN = _BASE + "/runs/{run}"
_SWEEP = _BASE + "/sweeps/{sweep}"
_NAME_RE = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_PROJECT_PATH = Str(
    pattern=f"{_NAME_RE}/{_NAME_RE}",
    max_length=257,
    description="entity/project of the artifact",
)
_RUN_PARAMS = (*PROJECT_PARAMS, Param("run", NAME, "path"))
_SWEEP_PARAMS = (*PROJECT_PARAMS, Param("sweep", NAME, "path"))


# -- runs -------------------------------------------------------------------


_START_BODY = Obj(
    {
        "id": Field(NAME),
        "name": optional(Str(max_length=128)),
        "job_type": optional(NAME),
        "config": Field(JsonObject(), required=False, default={}),
        "sweep": optional(NAME),
        "resume": Field(RESUME, required=False, default="never"),
    }
)


async def start_run(call: Call) -> Any:
    body = call.body
    new = NewRun(
        project=call.project,
        id=body["id"],
        name=body["name"],
        job_type=body["job_type"],
        config=body["config"],
        sweep=body["sweep"],
    )
    record, resumed = await call.run(call.catalog.start_run, new, body["resume"])
    return {"run": record, "resumed": resumed}


async def get_run(call: Call) -> Any:
    return await call.run(call.catalog.get_run, call.project, call.params["run"])


_UPDATE_BODY = Obj(
    {
        "config": optional(JsonObject()),
        "summary": optional(JsonObject()),
        "state": optional(NEW_STATE),
    },
    description="replaces what is given; an empty update is the heartbeat of "
    "a live run",
)


async def update_run(call: Call) -> Any:
    body = call.body
    return await call.run(
        call.catalog.update_run,
        call.project,
        call.params["run"],
        config=body["config"],
        summary=body["summary"],
        state=body["state"],
    )


async def list_runs(call: Call) -> Any:
    params = call.params
    runs = await call.run(
        call.catalog.list_runs,
        call.project,
        state=params["state"],
        job_type=params["job_type"],
        sweep=params["sweep"],
        where=params["where"],
    )
    return {"runs": runs}


# -- a run's lineage --------------------------------------------------------


_USE_BODY = Obj(
    {
        "project": Field(_PROJECT_PATH),
        "name": Field(NAME),
        "selector": Field(SELECTOR),
    }
)


async def use_version(call: Call) -> Any:
    body = call.body
    return await call.run(
        call.catalog.use_version,
        call.project,
        call.params["run"],
        body["project"],
        body["name"],
        body["selector"],
    )


async def logged_versions(call: Call) -> Any:
    found = await call.run(
        call.catalog.logged_versions, call.project, call.params["run"]
    )
    return {"versions": found}


async def used_versions(call: Call) -> Any:
    found = await call.run(call.catalog.used_versions, call.project, call.params["run"])
    return {"versions": found}


# -- sweeps -----------------------------------------------------------------


_SWEEP_BODY = Obj({"id": Field(NAME), "config": Field(JsonObject())})


async def create_sweep(call: Call) -> Any:
    body = call.body
    return await call.run(
        call.catalog.create_sweep, call.project, body["id"], body["config"]
    )


async def get_sweep(call: Call) -> Any:
    return await call.run(call.catalog.get_sweep, call.project, call.params["sweep"])


# A client that sends no body (older ones) gets a number whatever the count.
_TRIAL_BODY = Obj({"limit": optional(Int())})


async def next_trial(call: Call) -> Any:
    sweep, trial = await call.run(
        call.catalog.next_trial,
        call.project,
        call.params["sweep"],
        call.body["limit"],
    )
    return {"sweep": sweep, "trial": trial}


async def finish_sweep(call: Call) -> Any:
    return await call.run(call.catalog.finish_sweep, call.project, call.params["sweep"])


_READ = (InProject("read"),)
_WRITE = (InProject("write"),)
_RUN_RECORD = ref("Run")
_SWEEP_RECORD = ref("Sweep")

ROUTES = [
    Route(
        "POST",
        _BASE + "/runs",
        "start_run",
        "Start a run, or resume one (resume: allow, must, never)",
        "runs",
        start_run,
        _WRITE,
        PROJECT_PARAMS,
        body=_START_BODY,
        response=envelope(run=_RUN_RECORD, resumed={"type": "boolean"}),
    ),
    Route(
        "GET",
        _BASE + "/runs",
        "list_runs",
        "The runs of a project matching every filter, oldest first",
        "runs",
        list_runs,
        _READ,
        (
            *PROJECT_PARAMS,
            Param("state", STATE, "query", required=False),
            Param("job_type", NAME, "query", required=False),
            Param("sweep", NAME, "query", required=False),
            Param("where", ValueFilters(), "query", required=False, default=()),
        ),
        response=envelope(runs=many("Run")),
    ),
    Route(
        "GET",
        _RUN,
        "get_run",
        "One run",
        "runs",
        get_run,
        _READ,
        _RUN_PARAMS,
        response=_RUN_RECORD,
    ),
    Route(
        "PATCH",
        _RUN,
        "update_run",
        "Replace a run's config, summary or state",
        "runs",
        update_run,
        _WRITE,
        _RUN_PARAMS,
        body=_UPDATE_BODY,
        response=_RUN_RECORD,
    ),
    Route(
        "POST",
        _RUN + "/used",
        "use_version",
        "Record that a run used a version (of this or another project)",
        "lineage",
        use_version,
        (InProject("write"), InProject("read", field="project")),
        _RUN_PARAMS,
        body=_USE_BODY,
        response=ref("Version"),
    ),
    Route(
        "GET",
        _RUN + "/used",
        "used_versions",
        "The versions a run used, that you may read",
        "lineage",
        used_versions,
        _READ,
        _RUN_PARAMS,
        response=envelope(versions=many("Version")),
    ),
    Route(
        "GET",
        _RUN + "/logged",
        "logged_versions",
        "The versions a run logged",
        "lineage",
        logged_versions,
        _READ,
        _RUN_PARAMS,
        response=envelope(versions=many("Version")),
    ),
    Route(
        "POST",
        _BASE + "/sweeps",
        "create_sweep",
        "Create a sweep",
        "sweeps",
        create_sweep,
        _WRITE,
        PROJECT_PARAMS,
        body=_SWEEP_BODY,
        response=_SWEEP_RECORD,
    ),
    Route(
        "GET",
        _SWEEP,
        "get_sweep",
        "One sweep",
        "sweeps",
        get_sweep,
        _READ,
        _SWEEP_PARAMS,
        response=_SWEEP_RECORD,
    ),
    Route(
        "POST",
        _SWEEP + "/trials",
        "next_trial",
        "Take the sweep's next trial number; null once limit were taken",
        "sweeps",
        next_trial,
        _WRITE,
        _SWEEP_PARAMS,
        body=_TRIAL_BODY,
        response=envelope(
            sweep=_SWEEP_RECORD,
            trial={"anyOf": [{"type": "integer"}, {"type": "null"}]},
        ),
    ),
    Route(
        "POST",
        _SWEEP + "/finish",
        "finish_sweep",
        "Mark a sweep finished",
        "sweeps",
        finish_sweep,
        _WRITE,
        _SWEEP_PARAMS,
        response=_SWEEP_RECORD,
    ),
]
