"""Aliases moved by many processes at once: every move lands, none is lost."""

from __future__ import annotations

from pathlib import Path

from refstore.catalog.sql import SqlCatalog
from tests.catalog.alias_workers import LOG_EVERY, ROUNDS, START_VERSIONS, move_aliases
from tests.catalog.support import NAME, PROJECT, new_version, run_workers

WORKERS = START_VERSIONS  # each claims its own version


def test_concurrent_alias_moves(
    catalog: SqlCatalog, catalog_url: str, tmp_path: Path
) -> None:
    for index in range(START_VERSIONS):
        catalog.log_version(new_version(f"start {index}"))

    outcomes = run_workers(move_aliases, WORKERS, catalog_url, tmp_path / "blobs")

    records = catalog.list_versions(PROJECT, NAME)
    logged = START_VERSIONS + WORKERS * (ROUNDS // LOG_EVERY)
    assert [r.version for r in records] == list(range(logged))
    holders = [(alias, r.version) for r in records for alias in r.aliases]
    aliases = dict(holders)
    assert len(aliases) == len(holders), "an alias names two versions"
    assert aliases["latest"] == logged - 1
    for worker, (_shared, own, _won) in outcomes.items():
        assert aliases[f"worker-{worker}"] == own
    assert aliases["shared"] in {shared for shared, _, _ in outcomes.values()}
    winners = [worker for worker, (_, _, won) in outcomes.items() if won]
    assert len(winners) == 1
    assert aliases["claimed"] == winners[0]
