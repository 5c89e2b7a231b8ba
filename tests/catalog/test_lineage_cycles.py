"""The lineage graph stays acyclic: edges that would close a cycle are refused."""

from __future__ import annotations

import time

import pytest

from refstore.catalog.base import NewRun
from refstore.catalog.sql import SqlCatalog
from refstore.errors import ConflictError
from tests.catalog.support import PROJECT, new_version


def start(catalog: SqlCatalog, run_id: str, resume: str = "never") -> None:
    catalog.start_run(NewRun(PROJECT, run_id), resume)  # type: ignore[arg-type]


def log(catalog: SqlCatalog, run_id: str, name: str, content: str = "") -> None:
    catalog.log_version(new_version(content or name, name=name, run=run_id))


def use(catalog: SqlCatalog, run_id: str, name: str, selector: str = "latest") -> None:
    catalog.use_version(PROJECT, run_id, PROJECT, name, selector)


def used(catalog: SqlCatalog, run_id: str) -> list[str]:
    return [v.name for v in catalog.used_versions(PROJECT, run_id)]


def logged(catalog: SqlCatalog, run_id: str) -> list[str]:
    return [v.name for v in catalog.logged_versions(PROJECT, run_id)]


def test_one_run_using_what_it_logged_is_not_recorded(catalog: SqlCatalog) -> None:
    start(catalog, "r1")
    log(catalog, "r1", "a")
    use(catalog, "r1", "a")
    start(catalog, "r2")
    use(catalog, "r2", "a")
    log(catalog, "r2", "a")  # the content it used: the version it used

    assert (used(catalog, "r1"), logged(catalog, "r1")) == ([], ["a"])
    assert (used(catalog, "r2"), logged(catalog, "r2")) == (["a"], [])


def test_a_resumed_run_cannot_use_what_came_of_its_output(
    catalog: SqlCatalog,
) -> None:
    start(catalog, "r1")
    log(catalog, "r1", "a")
    start(catalog, "r2")
    use(catalog, "r2", "a")
    log(catalog, "r2", "b")
    start(catalog, "r1", "must")

    message = (
        "run r1 logged a:v0, used by run r2, which logged b:v0: r1 cannot use "
        "b:v0, which would close a cycle in the lineage; use it from a new run"
    )
    with pytest.raises(ConflictError) as refused:
        use(catalog, "r1", "b")

    assert str(refused.value) == message
    assert used(catalog, "r1") == []


def test_a_cycle_through_three_runs_is_refused(catalog: SqlCatalog) -> None:
    for run_id, source, made in [("r1", None, "a"), ("r2", "a", "b"), ("r3", "b", "c")]:
        start(catalog, run_id)
        if source is not None:
            use(catalog, run_id, source)
        log(catalog, run_id, made)

    with pytest.raises(ConflictError, match=_flow("r1", "a", "r2", "b", "r3", "c")):
        use(catalog, "r1", "c")
    with pytest.raises(ConflictError, match=_flow("r2", "b", "r3", "c")):
        use(catalog, "r2", "c")


def _flow(run: str, *steps: str) -> str:
    made = steps[0]
    text = f"run {run} logged {made}:v0"
    for later_run, later_made in zip(steps[1::2], steps[2::2], strict=True):
        text += f", used by run {later_run}, which logged {later_made}:v0"
    return f"^{text}: {run} cannot use {steps[-1]}:v0"


def test_logging_content_identical_to_an_upstream_version_is_refused(
    catalog: SqlCatalog,
) -> None:
    start(catalog, "r1")
    log(catalog, "r1", "a")
    start(catalog, "r2")
    use(catalog, "r2", "a")
    log(catalog, "r2", "b")
    start(catalog, "r3")
    use(catalog, "r3", "b")

    with pytest.raises(ConflictError) as refused:
        catalog.log_version(new_version("a", name="a", run="r3", aliases=("x",)))

    assert str(refused.value).startswith(
        "a:v0 was used by run r2, which logged b:v0, used by run r3: r3 cannot "
        "log content identical to a:v0, which would close a cycle"
    )
    assert logged(catalog, "r3") == []
    assert catalog.get_version(PROJECT, "a", "v0").aliases == ("latest",)


def test_diamonds_and_shared_inputs_are_no_cycles(catalog: SqlCatalog) -> None:
    start(catalog, "prep")
    log(catalog, "prep", "data")
    for branch in ("left", "right"):
        start(catalog, branch)
        use(catalog, branch, "data")
        log(catalog, branch, f"{branch}-features")
    start(catalog, "join")
    for source in ("left-features", "right-features", "data"):
        use(catalog, "join", source)
    log(catalog, "join", "model")
    start(catalog, "prep", "must")
    log(catalog, "prep", "more-data")  # a resumed producer may log again

    assert used(catalog, "join") == ["left-features", "right-features", "data"]
    assert logged(catalog, "prep") == ["data", "more-data"]


def test_a_cycle_across_projects_names_the_other_project(catalog: SqlCatalog) -> None:
    other = "acme/shared"
    start(catalog, "r1")
    log(catalog, "r1", "a")
    catalog.start_run(NewRun(other, "r2"), "never")
    catalog.use_version(other, "r2", PROJECT, "a", "v0")
    version = new_version("b", name="b", run="r2")
    catalog.log_version(version.__class__(**{**vars(version), "project": other}))

    with pytest.raises(ConflictError, match=r"used by run acme/shared/r2, which "):
        catalog.use_version(PROJECT, "r1", other, "b", "v0")


CHAIN = 300


def test_a_long_chain_is_checked_quickly(catalog: SqlCatalog) -> None:
    started = time.perf_counter()
    for n in range(CHAIN):
        start(catalog, f"r{n}")
        if n:
            use(catalog, f"r{n}", f"v{n - 1}")
        log(catalog, f"r{n}", f"v{n}")
    built = time.perf_counter() - started

    with pytest.raises(
        ConflictError, match=rf"^run r0 logged v0:v0, .* r0 cannot use v{CHAIN - 1}:v0"
    ):
        use(catalog, "r0", f"v{CHAIN - 1}")
    use(catalog, f"r{CHAIN - 1}", "v0")  # downstream using upstream: fine

    # Each step walks the whole chain upstream; one query each keeps it linear.
    assert built < 60, f"{CHAIN} steps took {built:.1f} s"
