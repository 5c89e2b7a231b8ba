"""Crash detection: live runs send heartbeats, silent ones read as crashed.

Embedded and through the service. Time is the catalog's clock, moved by the
tests; heartbeats are real, from the run's thread, every 50 ms where a test
needs them (elsewhere the default 30 s keeps them out of the way).
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import refstore
from refstore.catalog.base import NewRun, RunRecord
from refstore.catalog.wire import run_from_wire, run_to_wire
from refstore.cli import main
from refstore.config import DEFAULT_RUN_TIMEOUT, Settings
from refstore.context import Context
from refstore.errors import CatalogError, ConfigError, RefstoreError
from refstore.run import Run
from refstore.server.openapi import document
from refstore.server.routes import ROUTES
from tests.catalog.clock import ManualClock
from tests.helpers import Workspace
from tests.service import workspace

PROJECT = "acme/heartbeats"
TIMEOUT = DEFAULT_RUN_TIMEOUT.total_seconds()
FAST = datetime.timedelta(seconds=0.05)
# These tests log no references: the workspace needs no bucket settings.
NO_BUCKETS = types.SimpleNamespace(settings=types.SimpleNamespace(stores={}))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def ws(tmp_path: Path, catalog_mode: str, clock: ManualClock) -> Iterator[Workspace]:
    with workspace(catalog_mode, NO_BUCKETS, tmp_path, clock) as opened:
        yield opened


@pytest.fixture
def beating(ws: Workspace) -> Iterator[Context]:
    """A context on the workspace's catalog whose runs beat every 50 ms."""
    settings = dataclasses.replace(ws.settings, heartbeat_interval=FAST)
    context = Context(settings, ws.context.clock)
    yield context
    context.close()


def init(context: Context, **kwargs: Any) -> Run:
    kwargs.setdefault("project", PROJECT)
    return refstore.init(context=context, **kwargs)


def read(ws: Workspace, run_id: str) -> RunRecord:
    return ws.api.run(f"{PROJECT}/{run_id}").record


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def beat_at(ws: Workspace, run_id: str, when: datetime.datetime) -> None:
    """Wait until the run's heartbeat has landed at the catalog time ``when``."""
    wait_for(lambda: read(ws, run_id).heartbeat_at == when, f"a heartbeat at {when}")


def beating_runs() -> set[str]:
    """The runs whose heartbeat thread is alive in this process."""
    prefix = "refstore-heartbeat-"
    threads = threading.enumerate()
    return {t.name.removeprefix(prefix) for t in threads if t.name.startswith(prefix)}


# A live run and a silent one


def test_a_live_run_keeps_itself_running(
    ws: Workspace, beating: Context, clock: ManualClock
) -> None:
    with init(beating, id="live"), init(ws.context, id="silent"):
        # The silent run beats every 30 s: not once while this test runs.
        for _ in range(3):
            beat_at(ws, "live", clock.advance(seconds=TIMEOUT * 0.6))

        assert read(ws, "live").state == "running"
        assert read(ws, "silent").state == "crashed"


def test_finishing_stops_the_heartbeats_at_once(
    ws: Workspace, beating: Context, clock: ManualClock
) -> None:
    slow = dataclasses.replace(
        ws.settings,
        heartbeat_interval=datetime.timedelta(minutes=10),
        run_timeout=datetime.timedelta(hours=1),
    )
    patient = Context(slow, clock)
    try:
        beats = init(beating, id="fast")
        waits = init(patient, id="slow")
        beat_at(ws, "fast", clock.advance(seconds=1))
        assert beating_runs() >= {f"{PROJECT}/fast", f"{PROJECT}/slow"}

        started = time.monotonic()
        waits.finish()
        beats.finish()
        finishing = time.monotonic() - started
    finally:
        patient.close()
    ended = read(ws, "fast")
    clock.advance(seconds=1)

    assert finishing < 5, "finish() waited for the heartbeat interval"
    assert not beating_runs() & {f"{PROJECT}/fast", f"{PROJECT}/slow"}
    assert read(ws, "fast").heartbeat_at == ended.heartbeat_at
    assert ended.state == "finished"


def test_heartbeats_stop_when_the_run_ends_elsewhere(
    ws: Workspace, beating: Context, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="refstore.heartbeat")
    run = init(beating, id="r")
    wait_for(lambda: f"{PROJECT}/r" in beating_runs(), "the heartbeat thread")

    ws.context.catalog.update_run(PROJECT, "r", state="failed")
    wait_for(lambda: f"{PROJECT}/r" not in beating_runs(), "the heartbeats to stop")
    run.finish()

    assert f"run {PROJECT}/r was failed elsewhere" in caplog.text
    assert read(ws, "r").state == "finished"  # its owner has the last word


def test_a_failing_heartbeat_warns_once_and_spares_the_program(
    tmp_path: Path, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    settings = Settings(home=tmp_path / "home", heartbeat_interval=FAST)
    context = Context(settings, clock)
    catalog = context.catalog
    outage = threading.Event()
    outage.set()
    failures: list[int] = []
    update_run = catalog.update_run

    def flaky(project: str, run_id: str, **changes: Any) -> RunRecord:
        if outage.is_set() and not changes:
            failures.append(1)
            raise CatalogError("the refstore service at http://x is unreachable")
        return update_run(project, run_id, **changes)

    caplog.set_level(logging.INFO, logger="refstore.heartbeat")
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(catalog, "update_run", flaky)
            run = init(context, id="r")
            wait_for(lambda: len(failures) >= 3, "three failed heartbeats")
            outage.clear()
            beat_at_catalog = clock.advance(seconds=1)
            wait_for(
                lambda: catalog.get_run(PROJECT, "r").heartbeat_at == beat_at_catalog,
                "a heartbeat after the outage",
            )
            run.log({"acc": 0.5})
            run.finish()
    finally:
        context.close()

    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert f"heartbeat of run {PROJECT}/r failed" in warnings[0].getMessage()
    assert "reach the catalog again" in caplog.text
    assert run.state == "finished"


# Reading crashed runs


def test_state_filters_find_crashed_runs(ws: Workspace, clock: ManualClock) -> None:
    with init(ws.context, id="lost") as lost, init(ws.context, id="done") as done:
        done.finish()
        clock.advance(seconds=TIMEOUT + 1)
        with init(ws.context, id="live"):

            def found(state: str) -> list[str]:
                return [r.id for r in ws.api.runs(PROJECT, {"state": state})]

            assert found("crashed") == ["lost"]
            assert found("running") == ["live"]
            assert found("finished") == ["done"]
            assert repr(ws.api.run(f"{PROJECT}/lost")) == (
                f"<Run {PROJECT}/lost state=crashed>"
            )
            assert lost.state == "running"  # as this process last read it


@pytest.mark.parametrize("resume", ["allow", "must"])
def test_resuming_a_crashed_run_makes_it_running(
    ws: Workspace, clock: ManualClock, resume: str
) -> None:
    # Started by a process that died without a word.
    ws.context.catalog.start_run(NewRun(PROJECT, "r"), "never")
    clock.advance(seconds=TIMEOUT + 1)
    assert read(ws, "r").state == "crashed"
    later = clock.advance(seconds=1)

    with init(ws.context, id="r", resume=resume) as run:
        resumed = read(ws, "r")
        run.log({"acc": 0.9})

    assert (run.state, resumed.state, resumed.heartbeat_at) == (
        "finished",
        "running",
        later,
    )


def test_crashed_cannot_be_set(ws: Workspace) -> None:
    with init(ws.context, id="r"):
        catalog = ws.context.catalog
        with pytest.raises(RefstoreError, match="running, finished, failed"):
            catalog.update_run(PROJECT, "r", state="crashed")  # type: ignore[arg-type]


def test_the_wire_and_the_openapi_document_know_crashed(clock: ManualClock) -> None:
    now = clock()
    record = RunRecord(PROJECT, "r", None, None, "crashed", {}, {}, None, now, now, now)
    schemas = document(ROUTES, "test")["components"]["schemas"]

    assert run_from_wire(run_to_wire(record)) == record
    with pytest.raises(CatalogError, match="malformed run"):
        run_from_wire({**run_to_wire(record), "state": "sleeping"})
    assert "crashed" in schemas["Run"]["properties"]["state"]["enum"]


# Sweeps


def test_a_crashed_trial_shows_and_still_competes(
    ws: Workspace, clock: ManualClock
) -> None:
    config = {
        "method": "grid",
        "metric": {"name": "val_acc", "goal": "maximize"},
        "parameters": {"lr": {"values": [0.1, 0.01, 0.001]}},
    }
    sweep_id = refstore.sweep(config, project=PROJECT, context=ws.context)
    catalog = ws.context.catalog
    # A trial whose agent was killed after it reported the metric.
    catalog.start_run(NewRun(PROJECT, "killed", sweep=sweep_id), "never")
    catalog.update_run(PROJECT, "killed", summary={"val_acc": 0.9})

    def train() -> None:
        with refstore.init() as run:
            run.log({"val_acc": 0.5})

    refstore.agent(sweep_id, train, count=1, project=PROJECT, context=ws.context)
    clock.advance(seconds=TIMEOUT + 1)
    found = ws.api.sweep(f"{PROJECT}/{sweep_id}")
    best = found.best_run()

    assert sorted(run.state for run in found.runs) == ["crashed", "finished"]
    assert best is not None
    assert (best.id, best.state) == ("killed", "crashed")


# Settings


def test_settings_read_the_heartbeat_and_timeout_from_the_environment() -> None:
    env = {"REFSTORE_HEARTBEAT_SECONDS": "2.5", "REFSTORE_RUN_TIMEOUT_SECONDS": "60"}

    settings = Settings.from_env({"REFSTORE_HOME": "/tmp/rs", **env})
    defaults = Settings.from_env({"REFSTORE_HOME": "/tmp/rs"})

    assert settings.heartbeat_interval == datetime.timedelta(seconds=2.5)
    assert settings.run_timeout == datetime.timedelta(minutes=1)
    assert (defaults.heartbeat_interval, defaults.run_timeout) == (
        datetime.timedelta(seconds=30),
        datetime.timedelta(seconds=300),
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param(
            {"REFSTORE_HEARTBEAT_SECONDS": "soon"},
            "REFSTORE_HEARTBEAT_SECONDS='soon' is not a duration",
            id="not-a-number",
        ),
        pytest.param(
            {"REFSTORE_RUN_TIMEOUT_SECONDS": "-5"},
            "REFSTORE_RUN_TIMEOUT_SECONDS='-5' is not a duration",
            id="negative",
        ),
        pytest.param(
            {"REFSTORE_HEARTBEAT_SECONDS": "inf"},
            "give a positive number of seconds",
            id="infinite",
        ),
        pytest.param(
            {"REFSTORE_RUN_TIMEOUT_SECONDS": "30"},
            r"run timeout \(30 s\) must be longer than the heartbeat interval "
            r"\(30 s\)",
            id="timeout-not-longer",
        ),
        pytest.param(
            {"REFSTORE_HEARTBEAT_SECONDS": "600"},
            "raise REFSTORE_RUN_TIMEOUT_SECONDS",
            id="interval-too-long",
        ),
    ],
)
def test_settings_refuse_bad_timing(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env({"REFSTORE_HOME": "/tmp/rs", **env})


def test_settings_built_in_code_are_checked_too() -> None:
    with pytest.raises(ConfigError, match="heartbeat interval must be positive"):
        Settings(home=Path("/tmp/rs"), heartbeat_interval=datetime.timedelta(0))


# A real crash

_DOOMED = textwrap.dedent(
    """
    import sys, time
    import refstore

    run = refstore.init(project="acme/crash", id="doomed", job_type="train")
    weights = refstore.Artifact("weights", "model")
    weights.add_file(sys.argv[1])
    run.log_artifact(weights)
    print("started", flush=True)
    time.sleep(600)
    """
)


@pytest.mark.slow
def test_a_killed_process_leaves_a_crashed_run(tmp_path: Path) -> None:
    home = tmp_path / "home"
    timing = {"REFSTORE_HEARTBEAT_SECONDS": "0.1", "REFSTORE_RUN_TIMEOUT_SECONDS": "2"}
    env = {**os.environ, "REFSTORE_HOME": str(home), **timing}
    env.pop("REFSTORE_URL", None)
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"w" * 100)
    settings = Settings.from_env({"REFSTORE_HOME": str(home), **timing})
    api = refstore.Api(settings)

    def doomed() -> Run:
        return api.run("acme/crash/doomed")

    command = [sys.executable, "-c", _DOOMED, str(weights)]
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == b"started\n"
            past_the_timeout = doomed().record.created_at + settings.run_timeout
            wait_for(
                lambda: doomed().record.heartbeat_at > past_the_timeout,
                "heartbeats past the timeout",
            )
            assert doomed().state == "running"
        finally:
            os.kill(child.pid, signal.SIGKILL)
    wait_for(lambda: doomed().state == "crashed", "the run to crash")

    graph = CliRunner().invoke(
        main,
        ["lineage", "acme/crash/weights:latest"],
        env={"REFSTORE_HOME": str(home), "REFSTORE_URL": None, **timing},
        catch_exceptions=False,
    )
    api.context.close()

    assert graph.exit_code == 0
    assert "train, crashed" in graph.stdout
