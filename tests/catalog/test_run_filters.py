"""Run value filters in SQL agree with the Python filter they replaced.

The same table of stored values and filter values runs through the old
predicate (``Api.runs`` compared in Python, kept below as the reference) and
through ``list_runs(where=...)``, on SQLite and PostgreSQL, embedded and
behind a service.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Protocol

import pytest

from refstore.catalog.base import NewRun, RunRecord, ValueFilter
from refstore.catalog.http import HttpCatalog
from refstore.catalog.http_blobs import ServiceBlobs
from refstore.catalog.http_transport import Transport
from refstore.catalog.sql import SqlCatalog
from refstore.errors import CatalogError
from tests.catalog.support import PROJECT
from tests.service import ADMIN_TOKEN, running_service

# What runs hold under config.x (and summary.x); "missing" holds nothing.
STORED: dict[str, Any] = {
    "int-1": 1,
    "float-1": 1.0,
    "int-0": 0,
    "float-0": 0.0,
    "minus-0": -0.0,
    "true": True,
    "false": False,
    "text-1": "1",
    "text-true": "true",
    "text-empty": "",
    "text-accent": "é",
    "text-quote": 'it\'s "x"',
    "null": None,
    "int-2": 2,
    "float": 0.1,
    "negative": -5,
    "big-int": 2**53 + 1,
    "big-float": float(2**53),
    "huge-int": 2**70,
    "huge-float": 2.0**70,
    "tiny": 1e-300,
    "list": [1, 2],
    "list-float": [1.0, 2],
    "list-bool": [True, 2],
    "list-empty": [],
    "list-one": [5],
    "dict": {"a": 1, "b": [1, {"c": None}]},
    "dict-reordered": {"b": [1.0, {"c": None}], "a": True},
    "dict-empty": {},
    "dict-zero-key": {"0": 7},
    "dict-nested": {"lr": 0.1, "opt": {"name": "adam", "m": 0.9}},
}

FILTER_VALUES: list[Any] = [
    *STORED.values(),
    2**53,
    3,
    "x",
    "0.1",
    [2, 1],
    [1],
    {"a": 1},
    (1, 2),
    {"lr": 0.1, "opt": {"m": 0.9, "name": "adam"}},
]

KEYS = [
    "config.x",
    "summary.x",
    "config.x.a",
    "config.x.0",
    "config.x.lr",
    "config.x.opt.name",
    "config.x.opt.m",
    "config.x.b",
    "config.absent",
]


class Lister(Protocol):
    def list_runs(
        self, project: str, *, where: list[ValueFilter] = ...
    ) -> list[RunRecord]: ...


def old_filter(records: list[RunRecord], key: str, wanted: Any) -> list[str]:
    """``Api.runs`` before the filters moved into SQL, word for word."""
    missing = object()

    def value_at(record: RunRecord) -> Any:
        head, _, rest = key.partition(".")
        value: Any = record.config if head == "config" else record.summary
        for part in rest.split("."):
            if not isinstance(value, Mapping) or part not in value:
                return missing
            value = value[part]
        return value

    return [record.id for record in records if value_at(record) == wanted]


@pytest.fixture
def seeded(catalog: SqlCatalog) -> SqlCatalog:
    for run_id, value in STORED.items():
        catalog.start_run(NewRun(PROJECT, run_id, config={"x": value}), "never")
        catalog.update_run(PROJECT, run_id, summary={"x": value})
    catalog.start_run(NewRun(PROJECT, "missing", config={"y": 1}), "never")
    return catalog


@pytest.fixture(params=["embedded", "service"])
def lister(
    request: pytest.FixtureRequest,
    seeded: SqlCatalog,
    catalog_url: str,
    tmp_path: Path,
) -> Iterator[Lister]:
    if request.param == "embedded":
        yield seeded
        return
    with running_service(catalog_url, tmp_path / "service-blobs") as service:
        transport = Transport(service.url, ADMIN_TOKEN)
        client = HttpCatalog(transport, ServiceBlobs(tmp_path / "blobs", transport))
        try:
            yield client
        finally:
            client.close()


def test_sql_filters_agree_with_the_python_filter(
    seeded: SqlCatalog, lister: Lister
) -> None:
    everything = seeded.list_runs(PROJECT)
    disagreements = []

    for key in KEYS:
        for wanted in FILTER_VALUES:
            expected = old_filter(everything, key, _as_json(wanted))
            found = lister.list_runs(PROJECT, where=[ValueFilter(key, wanted)])
            if [record.id for record in found] != expected:
                disagreements.append((key, wanted, expected, [r.id for r in found]))

    assert disagreements == []


def _as_json(value: Any) -> Any:
    # Filter values are taken as JSON holds them: a tuple is a list.
    return list(value) if isinstance(value, tuple) else value


def test_every_filter_must_hold(seeded: SqlCatalog) -> None:
    where = [ValueFilter("config.x", 1), ValueFilter("summary.x", True)]

    found = seeded.list_runs(PROJECT, where=where)

    assert [record.id for record in found] == ["int-1", "float-1", "true"]


def test_value_filters_combine_with_the_other_filters(catalog: SqlCatalog) -> None:
    for run_id, job_type in [("a", "train"), ("b", "eval"), ("c", "train")]:
        config = {"optimizer": {"lr": 0.1 if run_id != "c" else 0.01}}
        catalog.start_run(NewRun(PROJECT, run_id, None, job_type, config), "never")

    found = catalog.list_runs(
        PROJECT, job_type="train", where=[ValueFilter("config.optimizer.lr", 0.1)]
    )

    assert [record.id for record in found] == ["a"]


@pytest.mark.parametrize(
    "key",
    [
        pytest.param("config.a b", id="space"),
        pytest.param("config.$", id="dollar"),
        pytest.param("config.$.x", id="dollar-path"),
        pytest.param("config.it's", id="single-quote"),
        pytest.param("config.x') OR 1=1 --", id="sql"),
        pytest.param("config.[0]", id="brackets"),
        pytest.param("config.a\\b", id="backslash"),
        pytest.param("config.é", id="accent"),
    ],
)
def test_keys_are_looked_up_literally(catalog: SqlCatalog, key: str) -> None:
    literal = key.removeprefix("config.").split(".")
    config: dict[str, Any] = {"x": 1}
    inner = config
    for part in literal[:-1]:
        inner = inner.setdefault(part, {})
    inner[literal[-1]] = "hit"
    catalog.start_run(NewRun(PROJECT, "target", config=config), "never")
    catalog.start_run(NewRun(PROJECT, "other", config={"x": 1, "$": 2}), "never")

    found = catalog.list_runs(PROJECT, where=[ValueFilter(key, "hit")])

    assert [record.id for record in found] == ["target"]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        pytest.param('config.a"b', "double quote", id="double-quote"),
        pytest.param("config.a\x00", "NUL", id="nul"),
        pytest.param("tags.x", "use config.KEY or summary.KEY", id="other-field"),
        pytest.param("config", "use config.KEY", id="no-key"),
        pytest.param("config.", "use config.KEY", id="empty-key"),
    ],
)
def test_unusable_keys_are_refused(catalog: SqlCatalog, key: str, message: str) -> None:
    catalog.start_run(NewRun(PROJECT, "r", config={"x": 1}), "never")

    with pytest.raises(CatalogError, match=message):
        catalog.list_runs(PROJECT, where=[ValueFilter(key, 1)])


@pytest.mark.parametrize("value", [float("nan"), float("inf"), {1, 2}, object()])
def test_values_json_cannot_hold_are_refused(catalog: SqlCatalog, value: Any) -> None:
    catalog.start_run(NewRun(PROJECT, "r", config={"x": 1}), "never")

    with pytest.raises(CatalogError, match="cannot be compared"):
        catalog.list_runs(PROJECT, where=[ValueFilter("config.x", value)])
