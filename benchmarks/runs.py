"""Benchmark: filtering a project's runs by config in SQL vs in Python.

One project holds N runs (20 000), each with a config of a dozen keys and a
summary; one in ten has ``lr`` 0.1. In the same run, for each filter:

* Python (the baseline, how ``Api.runs`` filtered before): list every run of
  the project, then compare each run's value in Python;
* SQL: ``Api.runs(project, {"config.lr": 0.1})``, which the catalog filters
  in its database.

Each method runs ``--rounds`` times, alternating, and the median counts.
The runs are inserted in bulk into a fresh catalog (SQLite in a scratch
folder, and PostgreSQL in a new schema when REFSTORE_TEST_POSTGRES_URL is
set). Run from the repository root::

    .venv/bin/python -m benchmarks.runs
    REFSTORE_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/test \\
        .venv/bin/python -m benchmarks.runs --runs 20000
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy
from psycopg import sql
from sqlalchemy.engine import make_url

from refstore.api import Api
from refstore.catalog.base import NewRun
from refstore.catalog.tables import projects, runs
from refstore.config import Settings

PROJECT = "bench/runs"
FILTERS: list[dict[str, Any]] = [
    {"config.lr": 0.1},
    {"config.optimizer.name": "adam", "config.optimizer.momentum": 0.9},
    {"summary.best": True},
]
_LEARNING_RATES = [0.1, 0.05, 0.02, 0.01, 0.005, 0.002, 0.001, 3e-4, 1e-4, 5e-5]


@dataclasses.dataclass(frozen=True)
class Timing:
    method: str
    filters: Mapping[str, Any]
    rows: int
    seconds: float


def main() -> None:
    args = _arguments()
    with tempfile.TemporaryDirectory(prefix="refstore-bench-") as scratch:
        home = Path(scratch)
        urls = [("SQLite", f"sqlite:///{home / 'catalog.db'}")]
        postgres = os.environ.get("REFSTORE_TEST_POSTGRES_URL")
        with contextlib.ExitStack() as stack:
            if postgres:
                urls.append(("PostgreSQL", stack.enter_context(_schema(postgres))))
            for name, url in urls:
                _benchmark(name, url, home / name, args)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20_000, help="runs (20000)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (5)")
    return parser.parse_args()


@contextlib.contextmanager
def _schema(server: str) -> Iterator[str]:
    """A catalog URL whose search_path is a new schema, dropped afterwards."""
    schema = f"refstore_bench_{uuid.uuid4().hex[:12]}"
    admin = make_url(server).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
    url = make_url(server).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            drop = sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema))
            conn.execute(drop)


def _benchmark(name: str, url: str, home: Path, args: argparse.Namespace) -> None:
    api = Api(Settings(home=home, url=url))
    try:
        started = time.perf_counter()
        api.context.catalog.start_run(NewRun(PROJECT, "first"), "never")
        _insert_runs(url, args.runs - 1)
        print(
            f"\n{name}: {args.runs} runs in {PROJECT}, inserted in "
            f"{time.perf_counter() - started:.1f} s"
        )
        results = [_compare(api, filters, args.rounds) for filters in FILTERS]
    finally:
        api.context.close()
    _report(results)


def _insert_runs(url: str, count: int) -> None:
    engine = sqlalchemy.create_engine(url)
    now = datetime.datetime.now(datetime.UTC)
    try:
        with engine.begin() as conn:
            entity, project = PROJECT.split("/")
            query = sqlalchemy.select(projects.c.id).where(
                projects.c.entity == entity, projects.c.name == project
            )
            project_pk = conn.execute(query).scalar_one()
            rows = [_run_row(project_pk, n, now) for n in range(count)]
            for start in range(0, count, 5000):
                conn.execute(sqlalchemy.insert(runs), rows[start : start + 5000])
    finally:
        engine.dispose()


def _run_row(project_pk: int, n: int, now: datetime.datetime) -> dict[str, Any]:
    config = {
        "lr": _LEARNING_RATES[n % len(_LEARNING_RATES)],
        "batch_size": 32 << (n % 4),
        "epochs": 10 + n % 7,
        "seed": n,
        "arch": ["resnet50", "vit-b16", "convnext-t"][n % 3],
        "dataset": "furniture:v3",
        "augment": {"flip": True, "crop": 224, "mixup": n % 2 == 0},
        "optimizer": {
            "name": ["adam", "sgd"][n % 2],
            "momentum": [0.9, 0.95, 0.99][n % 3],
            "weight_decay": 1e-4,
        },
    }
    summary = {"val_acc": (n % 1000) / 1000, "loss": 1 / (1 + n), "best": n % 97 == 0}
    return {
        "project_id": project_pk,
        "key": f"run{n:06d}",
        "name": None,
        "job_type": "train",
        "state": "finished",
        "config": config,
        "summary": summary,
        "sweep_id": None,
        "created_at": now,
        "updated_at": now,
        "heartbeat_at": now,
    }


def _compare(api: Api, filters: dict[str, Any], rounds: int) -> tuple[Timing, Timing]:
    python: list[float] = []
    in_sql: list[float] = []
    for round_ in range(rounds):
        order = [(python, _python_filter), (in_sql, _sql_filter)]
        for seconds, method in order if round_ % 2 == 0 else order[::-1]:
            started = time.perf_counter()
            method(api, filters)
            seconds.append(time.perf_counter() - started)
    expected = _python_filter(api, filters)
    if _sql_filter(api, filters) != expected:
        raise SystemExit(f"{filters}: SQL and Python found different runs")
    return (
        Timing("Python (list all)", filters, expected, statistics.median(python)),
        Timing("SQL (Api.runs)", filters, expected, statistics.median(in_sql)),
    )


def _python_filter(api: Api, filters: dict[str, Any]) -> int:
    """What ``Api.runs`` did before: every run over the wire, compared here."""
    records = api.context.catalog.list_runs(PROJECT)
    return sum(1 for r in records if all(_value(r, k) == v for k, v in filters.items()))


def _sql_filter(api: Api, filters: dict[str, Any]) -> int:
    return len(api.runs(PROJECT, filters))


_MISSING = object()


def _value(record: Any, key: str) -> Any:
    head, _, rest = key.partition(".")
    value: Any = record.config if head == "config" else record.summary
    for part in rest.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _report(results: list[tuple[Timing, Timing]]) -> None:
    header = f"{'filter':<62}{'method':<19}{'rows':>6}{'seconds':>9}"
    print(header)
    print("-" * len(header))
    for pair in results:
        for timing in pair:
            shown = ", ".join(f"{k}={v!r}" for k, v in timing.filters.items())
            print(
                f"{shown:<62}{timing.method:<19}{timing.rows:>6}{timing.seconds:>9.3f}"
            )
    print()
    for python, in_sql in results:
        faster = python.seconds / in_sql.seconds
        print(
            f"{dict(python.filters)}: SQL took {1 / faster:.2f}x the time of "
            f"listing and filtering in Python ({faster:.1f}x faster)"
        )


if __name__ == "__main__":
    main()
