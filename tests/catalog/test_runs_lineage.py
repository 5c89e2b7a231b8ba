"""Runs, sweeps and lineage edges in the SQL catalog, on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest

from refstore.catalog.base import NewRun, RunRecord
from refstore.catalog.sql import SqlCatalog
from refstore.errors import CatalogError, ConflictError, NotFoundError
from tests.catalog.clock import START, ManualClock
from tests.catalog.support import NAME, PROJECT, new_version


def start(
    catalog: SqlCatalog, run_id: str, resume: Any = "never", **fields: Any
) -> tuple[RunRecord, bool]:
    return catalog.start_run(NewRun(PROJECT, run_id, **fields), resume)


# Runs


def test_a_new_run_is_running_with_its_config(timed_catalog: SqlCatalog) -> None:
    record, resumed = start(
        timed_catalog, "r1", name="first", job_type="train", config={"lr": 0.1}
    )

    assert not resumed
    assert (record.path, record.state, record.name) == (
        f"{PROJECT}/r1",
        "running",
        "first",
    )
    assert (record.job_type, record.config, record.summary) == (
        "train",
        {"lr": 0.1},
        {},
    )
    assert record.created_at == record.heartbeat_at == START
    assert timed_catalog.get_run(PROJECT, "r1") == record


@pytest.mark.parametrize("resume", ["allow", "must"])
def test_resuming_continues_the_run_and_merges_config(
    timed_catalog: SqlCatalog, clock: ManualClock, resume: str
) -> None:
    start(timed_catalog, "r1", config={"lr": 0.1, "epochs": 2})
    timed_catalog.update_run(PROJECT, "r1", summary={"acc": 0.5}, state="finished")
    later = clock.advance(hours=1)

    record, resumed = start(timed_catalog, "r1", resume, config={"epochs": 3})

    assert resumed
    assert record.state == "running"
    assert record.config == {"lr": 0.1, "epochs": 3}
    assert record.summary == {"acc": 0.5}
    assert (record.created_at, record.heartbeat_at) == (START, later)


def test_resume_allow_creates_a_missing_run(timed_catalog: SqlCatalog) -> None:
    record, resumed = start(timed_catalog, "new", "allow")

    assert (record.id, resumed) == ("new", False)


def test_resume_must_needs_an_existing_run(timed_catalog: SqlCatalog) -> None:
    with pytest.raises(NotFoundError, match=r"no run 'ghost'.*to resume"):
        start(timed_catalog, "ghost", "must")
    assert timed_catalog.list_projects() == []


def test_resume_never_refuses_an_existing_id(timed_catalog: SqlCatalog) -> None:
    start(timed_catalog, "r1")

    with pytest.raises(ConflictError, match="already exists; resume it"):
        start(timed_catalog, "r1", "never")


def test_unknown_resume_mode_and_state_are_refused(timed_catalog: SqlCatalog) -> None:
    with pytest.raises(CatalogError, match="not a resume mode"):
        start(timed_catalog, "r1", "sometimes")
    start(timed_catalog, "r1")
    with pytest.raises(CatalogError, match="not a run state"):
        timed_catalog.update_run(PROJECT, "r1", state="crashed")  # type: ignore[arg-type]


def test_list_runs_filters(timed_catalog: SqlCatalog) -> None:
    start(timed_catalog, "a", job_type="train")
    start(timed_catalog, "b", job_type="eval")
    start(timed_catalog, "c", job_type="train")
    timed_catalog.update_run(PROJECT, "c", state="failed")

    def ids(**filters: Any) -> list[str]:
        return [r.id for r in timed_catalog.list_runs(PROJECT, **filters)]

    assert ids() == ["a", "b", "c"]
    assert ids(job_type="train") == ["a", "c"]
    assert ids(state="running") == ["a", "b"]
    assert ids(job_type="train", state="failed") == ["c"]


def test_run_config_must_be_json(timed_catalog: SqlCatalog) -> None:
    start(timed_catalog, "r1")

    with pytest.raises(CatalogError, match="summary of run r1 cannot be stored"):
        timed_catalog.update_run(PROJECT, "r1", summary={"loss": float("nan")})


def test_a_missing_run_lists_the_newest(timed_catalog: SqlCatalog) -> None:
    start(timed_catalog, "a")

    with pytest.raises(NotFoundError, match=r"no run 'b'.*newest runs are a"):
        timed_catalog.get_run(PROJECT, "b")


# Lineage


def test_lineage_edges_in_both_directions(timed_catalog: SqlCatalog) -> None:
    start(timed_catalog, "prep")
    start(timed_catalog, "train")
    start(timed_catalog, "eval")
    data, _ = timed_catalog.log_version(new_version("data", run="prep"))
    used = timed_catalog.use_version(PROJECT, "train", PROJECT, NAME, "latest")
    model, _ = timed_catalog.log_version(
        new_version("model", name="model", type_="model", run="train")
    )
    timed_catalog.use_version(PROJECT, "eval", PROJECT, "model", "v0")

    assert used == data
    producer = timed_catalog.logged_by(PROJECT, NAME, 0)
    assert producer is not None
    assert producer.id == "prep"
    assert [r.id for r in timed_catalog.used_by(PROJECT, NAME, 0)] == ["train"]
    assert timed_catalog.used_versions(PROJECT, "train") == [data]
    assert timed_catalog.logged_versions(PROJECT, "train") == [model]
    assert [r.id for r in timed_catalog.used_by(PROJECT, "model", 0)] == ["eval"]
    assert timed_catalog.logged_by(PROJECT, "model", 0) == timed_catalog.get_run(
        PROJECT, "train"
    )


def test_using_twice_records_one_edge(timed_catalog: SqlCatalog) -> None:
    timed_catalog.log_version(new_version("a"))
    start(timed_catalog, "r")

    for _ in range(2):
        timed_catalog.use_version(PROJECT, "r", PROJECT, NAME, "v0")

    assert len(timed_catalog.used_versions(PROJECT, "r")) == 1
    assert len(timed_catalog.used_by(PROJECT, NAME, 0)) == 1


def test_a_run_never_uses_what_it_logged(timed_catalog: SqlCatalog) -> None:
    start(timed_catalog, "r")
    timed_catalog.log_version(new_version("a", run="r"))

    timed_catalog.use_version(PROJECT, "r", PROJECT, NAME, "latest")

    assert timed_catalog.used_versions(PROJECT, "r") == []
    assert timed_catalog.used_by(PROJECT, NAME, 0) == []


def test_the_first_logger_is_the_producer(timed_catalog: SqlCatalog) -> None:
    start(timed_catalog, "first")
    start(timed_catalog, "second")
    timed_catalog.log_version(new_version("a", run="first"))

    again, created = timed_catalog.log_version(new_version("a", run="second"))

    assert not created
    producer = timed_catalog.logged_by(PROJECT, NAME, 0)
    assert producer is not None
    assert producer.id == "first"
    assert timed_catalog.logged_versions(PROJECT, "second") == [again]


def test_logging_from_an_unknown_run_logs_nothing(timed_catalog: SqlCatalog) -> None:
    start(timed_catalog, "r")

    with pytest.raises(NotFoundError, match="no run 'ghost'"):
        timed_catalog.log_version(new_version("a", run="ghost"))

    assert timed_catalog.list_artifacts(PROJECT) == []


def test_a_version_without_a_producer(timed_catalog: SqlCatalog) -> None:
    timed_catalog.log_version(new_version("a"))

    assert timed_catalog.logged_by(PROJECT, NAME, 0) is None
    assert timed_catalog.used_by(PROJECT, NAME, 0) == []


def test_cross_project_use(timed_catalog: SqlCatalog) -> None:
    other = "acme/shared"
    timed_catalog.log_version(
        dataclasses.replace(new_version("a", name="labels"), project=other)
    )
    start(timed_catalog, "r")

    used = timed_catalog.use_version(PROJECT, "r", other, "labels", "latest")

    assert used.project == other
    assert [r.path for r in timed_catalog.used_by(other, "labels", 0)] == [
        f"{PROJECT}/r"
    ]


# Sweeps


def test_sweeps_hand_out_each_trial_once(timed_catalog: SqlCatalog) -> None:
    created = timed_catalog.create_sweep(PROJECT, "sw1", {"method": "grid"})
    assert (created.state, created.trial_count) == ("pending", 0)

    numbers = [timed_catalog.next_trial(PROJECT, "sw1")[1] for _ in range(3)]
    record = timed_catalog.finish_sweep(PROJECT, "sw1")

    assert numbers == [0, 1, 2]
    assert (record.state, record.trial_count, record.path) == (
        "finished",
        3,
        f"{PROJECT}/sw1",
    )
    with pytest.raises(ConflictError, match="already exists"):
        timed_catalog.create_sweep(PROJECT, "sw1", {})


def test_a_used_up_limit_hands_out_and_counts_nothing(
    timed_catalog: SqlCatalog,
) -> None:
    timed_catalog.create_sweep(PROJECT, "sw1", {"method": "grid"})

    numbers = [timed_catalog.next_trial(PROJECT, "sw1", limit=2)[1] for _ in range(4)]
    record, unlimited = timed_catalog.next_trial(PROJECT, "sw1")

    assert numbers == [0, 1, None, None]
    assert (unlimited, record.trial_count) == (2, 3)
    assert timed_catalog.get_sweep(PROJECT, "sw1").trial_count == 3


def test_runs_of_a_sweep(timed_catalog: SqlCatalog) -> None:
    timed_catalog.create_sweep(PROJECT, "sw1", {"method": "grid"})
    start(timed_catalog, "a", sweep="sw1")
    start(timed_catalog, "b")

    assert [r.id for r in timed_catalog.list_runs(PROJECT, sweep="sw1")] == ["a"]
    assert timed_catalog.get_run(PROJECT, "a").sweep == "sw1"
    with pytest.raises(NotFoundError, match="no sweep 'nope'"):
        start(timed_catalog, "c", sweep="nope")


def test_timestamps_follow_the_clock(
    timed_catalog: SqlCatalog, clock: ManualClock
) -> None:
    start(timed_catalog, "r")
    later = clock.advance(minutes=5)

    record = timed_catalog.update_run(PROJECT, "r", config={"a": 1})

    assert record.updated_at == record.heartbeat_at == later
    assert record.created_at == START
    assert later - START == datetime.timedelta(minutes=5)
