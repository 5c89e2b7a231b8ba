"""Crashed runs in the SQL catalog, on SQLite and PostgreSQL.

A run stored as running reads as crashed once its heartbeat is older than the
catalog's run timeout (300 s by default) by the catalog's clock; nothing new
is stored, so the state follows the heartbeat both ways.
"""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from refstore.blobs import BlobStore
from refstore.catalog.base import NewRun, RunRecord
from refstore.catalog.sql import SqlCatalog
from refstore.config import DEFAULT_RUN_TIMEOUT
from refstore.errors import CatalogError
from tests.catalog.clock import ManualClock
from tests.catalog.support import PROJECT, new_version

TIMEOUT = DEFAULT_RUN_TIMEOUT.total_seconds()


def start(catalog: SqlCatalog, run_id: str, resume: Any = "never") -> RunRecord:
    return catalog.start_run(NewRun(PROJECT, run_id), resume)[0]


def state(catalog: SqlCatalog, run_id: str) -> str:
    return catalog.get_run(PROJECT, run_id).state


def ids(catalog: SqlCatalog, **filters: Any) -> list[str]:
    return [record.id for record in catalog.list_runs(PROJECT, **filters)]


def test_a_silent_run_crashes_after_the_timeout(
    timed_catalog: SqlCatalog, clock: ManualClock
) -> None:
    start(timed_catalog, "r")

    clock.advance(seconds=TIMEOUT)
    at_the_limit = state(timed_catalog, "r")
    clock.advance(seconds=1)

    assert at_the_limit == "running"
    assert state(timed_catalog, "r") == "crashed"


def test_heartbeats_keep_a_run_running(
    timed_catalog: SqlCatalog, clock: ManualClock
) -> None:
    start(timed_catalog, "r")

    for _ in range(3):
        clock.advance(seconds=TIMEOUT * 0.9)
        timed_catalog.update_run(PROJECT, "r")

    assert state(timed_catalog, "r") == "running"


def test_the_timeout_is_the_catalogs(
    catalog_url: str, blobs: BlobStore, clock: ManualClock
) -> None:
    short = datetime.timedelta(seconds=10)
    with SqlCatalog(catalog_url, blobs, clock, run_timeout=short) as catalog:
        start(catalog, "r")
        clock.advance(seconds=11)

        assert state(catalog, "r") == "crashed"


def test_only_running_runs_crash(timed_catalog: SqlCatalog, clock: ManualClock) -> None:
    start(timed_catalog, "done")
    timed_catalog.update_run(PROJECT, "done", state="finished")
    start(timed_catalog, "broken")
    timed_catalog.update_run(PROJECT, "broken", state="failed")

    clock.advance(days=1)

    assert [state(timed_catalog, r) for r in ("done", "broken")] == [
        "finished",
        "failed",
    ]


def test_state_filters_tell_crashed_from_running_in_sql(
    timed_catalog: SqlCatalog, clock: ManualClock
) -> None:
    start(timed_catalog, "lost")
    start(timed_catalog, "done")
    timed_catalog.update_run(PROJECT, "done", state="finished")
    clock.advance(seconds=TIMEOUT + 1)
    start(timed_catalog, "live")

    assert ids(timed_catalog, state="crashed") == ["lost"]
    assert ids(timed_catalog, state="running") == ["live"]
    assert ids(timed_catalog, state="finished") == ["done"]
    assert ids(timed_catalog) == ["lost", "done", "live"]
    assert [r.state for r in timed_catalog.list_runs(PROJECT)] == [
        "crashed",
        "finished",
        "running",
    ]


@pytest.mark.parametrize("resume", ["allow", "must"])
def test_resuming_a_crashed_run_makes_it_running(
    timed_catalog: SqlCatalog, clock: ManualClock, resume: str
) -> None:
    start(timed_catalog, "r")
    later = clock.advance(seconds=TIMEOUT + 1)

    record = start(timed_catalog, "r", resume)

    assert (record.state, record.heartbeat_at) == ("running", later)
    assert ids(timed_catalog, state="running") == ["r"]


@pytest.mark.parametrize("ended", ["finished", "failed"])
def test_a_crashed_run_can_still_end(
    timed_catalog: SqlCatalog, clock: ManualClock, ended: Any
) -> None:
    start(timed_catalog, "r")
    clock.advance(seconds=TIMEOUT + 1)

    record = timed_catalog.update_run(PROJECT, "r", summary={"acc": 1}, state=ended)

    assert record.state == ended
    clock.advance(days=1)
    assert state(timed_catalog, "r") == ended


def test_a_late_heartbeat_revives_a_crashed_run(
    timed_catalog: SqlCatalog, clock: ManualClock
) -> None:
    start(timed_catalog, "r")
    clock.advance(seconds=TIMEOUT + 1)

    record = timed_catalog.update_run(PROJECT, "r")

    assert record.state == "running"


def test_editing_a_crashed_runs_summary_does_not_revive_it(
    timed_catalog: SqlCatalog, clock: ManualClock
) -> None:
    start(timed_catalog, "r")
    clock.advance(seconds=TIMEOUT + 1)

    record = timed_catalog.update_run(PROJECT, "r", summary={"note": "oom"})

    assert (record.state, record.summary) == ("crashed", {"note": "oom"})


def test_crashed_cannot_be_set(timed_catalog: SqlCatalog) -> None:
    start(timed_catalog, "r")

    with pytest.raises(CatalogError, match="the catalog derives it"):
        timed_catalog.update_run(PROJECT, "r", state="crashed")  # type: ignore[arg-type]


def test_lineage_reads_the_derived_state(
    timed_catalog: SqlCatalog, clock: ManualClock
) -> None:
    start(timed_catalog, "r")
    version, _ = timed_catalog.log_version(new_version("weights", run="r"))
    clock.advance(seconds=TIMEOUT + 1)

    producer = timed_catalog.logged_by(PROJECT, version.name, version.version)

    assert producer is not None
    assert producer.state == "crashed"


def test_the_state_is_derived_when_read_by_the_readers_clock(
    catalog_url: str, blobs: BlobStore, clock: ManualClock
) -> None:
    later = ManualClock(clock.now + datetime.timedelta(hours=1))
    with (
        SqlCatalog(catalog_url, blobs, clock) as now,
        SqlCatalog(catalog_url, blobs, later) as in_an_hour,
    ):
        start(now, "r")

        assert state(now, "r") == "running"
        assert state(in_an_hour, "r") == "crashed"
