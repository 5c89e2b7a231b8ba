"""TTLs, expiry, deletes and edits of versions, on SQLite and PostgreSQL.

The catalog's clock is a :class:`ManualClock`: expiry is tested by moving it.
"""

from __future__ import annotations

import datetime

import pytest

from refstore.catalog.base import NewRun, VersionEdit, VersionRecord
from refstore.catalog.sql import SqlCatalog
from refstore.errors import (
    CatalogError,
    ConflictError,
    NotFoundError,
    RefstoreError,
)
from refstore.ttl import INHERIT
from tests.catalog.clock import START, ManualClock
from tests.catalog.support import NAME, PROJECT, new_version

DAY = datetime.timedelta(days=1)


def versions_of(catalog: SqlCatalog) -> list[int]:
    return [r.version for r in catalog.list_versions(PROJECT, NAME)]


def edit_of(record: VersionRecord, **changes: object) -> VersionEdit:
    fields: dict[str, object] = {
        "description": record.description,
        "metadata": record.metadata,
        "tags": record.tags,
        "ttl": record.ttl,
    }
    fields.update(changes)
    return VersionEdit(**fields)  # type: ignore[arg-type]


# Expiry


def test_an_expired_version_vanishes_at_once(
    timed_catalog: SqlCatalog, clock: ManualClock
) -> None:
    record, _ = timed_catalog.log_version(new_version("a", ttl=DAY, aliases=("raw",)))
    assert record.expires_at == START + DAY
    assert record.ttl == DAY

    clock.advance(days=1)

    assert timed_catalog.list_versions(PROJECT, NAME) == []
    with pytest.raises(NotFoundError, match=r"v0 any more: it expired at 2030-01-02"):
        timed_catalog.get_version(PROJECT, NAME, "v0")
    with pytest.raises(NotFoundError, match="the alias 'raw' names v0, which expired"):
        timed_catalog.get_version(PROJECT, NAME, "raw")
    with pytest.raises(NotFoundError, match="has no version latest"):
        timed_catalog.get_version(PROJECT, NAME, "latest")
    [artifact] = timed_catalog.list_artifacts(PROJECT)
    assert (artifact.version_count, artifact.latest_version) == (0, None)
    assert [r.version for r in timed_catalog.expired_versions()] == [0]


def test_a_version_lives_until_its_expiry(
    timed_catalog: SqlCatalog, clock: ManualClock
) -> None:
    timed_catalog.log_version(new_version("a", ttl=DAY))

    clock.advance(hours=23, minutes=59)

    assert versions_of(timed_catalog) == [0]
    assert timed_catalog.expired_versions() == []


def test_latest_names_the_newest_live_version(
    timed_catalog: SqlCatalog, clock: ManualClock
) -> None:
    timed_catalog.log_version(new_version("a", ttl=None))
    timed_catalog.log_version(new_version("b", ttl=datetime.timedelta(hours=1)))

    clock.advance(hours=2)

    latest = timed_catalog.get_version(PROJECT, NAME, "latest")
    assert (latest.version, latest.aliases) == (0, ("latest",))
    assert timed_catalog.list_artifacts(PROJECT)[0].latest_version == 0


def test_logging_after_latest_expired_makes_a_new_version(
    timed_catalog: SqlCatalog, clock: ManualClock
) -> None:
    timed_catalog.log_version(new_version("a", ttl=DAY))
    clock.advance(days=2)

    record, created = timed_catalog.log_version(new_version("a"))

    assert (record.version, created) == (1, True)


def test_lineage_hides_expired_versions(
    timed_catalog: SqlCatalog, clock: ManualClock
) -> None:
    timed_catalog.start_run(NewRun(PROJECT, "r"), "never")
    timed_catalog.log_version(new_version("a", ttl=DAY, run="r"))
    clock.advance(days=2)

    assert timed_catalog.logged_versions(PROJECT, "r") == []


# Project default TTL


def test_inheriting_versions_follow_the_project_default(
    timed_catalog: SqlCatalog, clock: ManualClock
) -> None:
    inherits, _ = timed_catalog.log_version(new_version("a"))
    timed_catalog.log_version(new_version("b", ttl=3 * DAY))
    timed_catalog.log_version(new_version("c", ttl=None))
    assert (inherits.ttl, inherits.expires_at) == (INHERIT, None)

    project = timed_catalog.set_project_ttl(PROJECT, 2 * DAY)

    assert project.default_ttl == 2 * DAY
    records = {r.version: r for r in timed_catalog.list_versions(PROJECT, NAME)}
    assert records[0].expires_at == START + 2 * DAY
    assert records[1].expires_at == START + 3 * DAY
    assert records[2].expires_at is None
    clock.advance(days=2)
    assert versions_of(timed_catalog) == [1, 2]


def test_a_new_inheriting_version_takes_the_default(
    timed_catalog: SqlCatalog,
) -> None:
    timed_catalog.set_project_ttl(PROJECT, DAY)

    record, _ = timed_catalog.log_version(new_version("a"))

    assert record.expires_at == START + DAY
    assert timed_catalog.get_project(PROJECT).default_ttl == DAY


def test_clearing_the_default_keeps_inheriting_versions(
    timed_catalog: SqlCatalog, clock: ManualClock
) -> None:
    timed_catalog.set_project_ttl(PROJECT, DAY)
    timed_catalog.log_version(new_version("a"))

    timed_catalog.set_project_ttl(PROJECT, None)
    clock.advance(days=30)

    assert versions_of(timed_catalog) == [0]


def test_bad_ttls_are_refused(timed_catalog: SqlCatalog) -> None:
    with pytest.raises(CatalogError, match="cannot be INHERIT"):
        timed_catalog.set_project_ttl(PROJECT, INHERIT)  # type: ignore[arg-type]
    with pytest.raises(RefstoreError, match="too short"):
        timed_catalog.log_version(new_version("a", ttl=datetime.timedelta(0)))


# gc support


def test_delete_expired_deletes_and_never_reuses_numbers(
    timed_catalog: SqlCatalog, clock: ManualClock
) -> None:
    timed_catalog.log_version(new_version("a", ttl=None, aliases=("keep",)))
    timed_catalog.log_version(new_version("b", ttl=DAY, aliases=("best",)))
    clock.advance(days=2)
    assert timed_catalog.live_manifest_blobs() == {new_version("a").manifest_blob}

    deleted = timed_catalog.delete_expired()

    assert [r.path for r in deleted] == [f"{PROJECT}/{NAME}:v1"]
    assert timed_catalog.expired_versions() == []
    record, _ = timed_catalog.log_version(new_version("c"))
    assert record.version == 2
    assert versions_of(timed_catalog) == [0, 2]


# Edits


def test_edits_replace_description_metadata_tags_and_aliases(
    timed_catalog: SqlCatalog,
) -> None:
    timed_catalog.log_version(new_version("a", aliases=("best",)))
    record, _ = timed_catalog.log_version(
        new_version("b", tags=("raw",), aliases=("old",), metadata={"k": 1})
    )
    assert record.tags == ("raw",)

    edited = timed_catalog.update_version(
        PROJECT,
        NAME,
        1,
        edit_of(
            record,
            description="cleaned",
            metadata={"k": 2},
            tags=("clean", "eu"),
            add_aliases=("best", "latest"),
            remove_aliases=("old",),
        ),
    )

    assert (edited.description, edited.metadata) == ("cleaned", {"k": 2})
    assert edited.tags == ("clean", "eu")
    assert edited.aliases == ("best", "latest")
    assert timed_catalog.get_version(PROJECT, NAME, "v0").aliases == ()
    with pytest.raises(NotFoundError, match="no alias 'old'"):
        timed_catalog.get_version(PROJECT, NAME, "old")


def test_editing_the_ttl_counts_from_logging(
    timed_catalog: SqlCatalog, clock: ManualClock
) -> None:
    record, _ = timed_catalog.log_version(new_version("a", ttl=None))
    clock.advance(days=5)

    edited = timed_catalog.update_version(
        PROJECT, NAME, 0, edit_of(record, ttl=3 * DAY)
    )

    assert edited.expires_at == START + 3 * DAY
    assert versions_of(timed_catalog) == []


# Deletes and aliases


def test_delete_refuses_while_aliases_remain(timed_catalog: SqlCatalog) -> None:
    timed_catalog.log_version(new_version("a", aliases=("prod", "best")))

    with pytest.raises(ConflictError, match="still has the aliases best, prod"):
        timed_catalog.delete_version(PROJECT, NAME, 0)
    assert versions_of(timed_catalog) == [0]

    deleted = timed_catalog.delete_version(PROJECT, NAME, 0, delete_aliases=True)

    assert deleted.version == 0
    assert versions_of(timed_catalog) == []


def test_deleting_the_newest_moves_latest_back(timed_catalog: SqlCatalog) -> None:
    timed_catalog.log_version(new_version("a"))
    timed_catalog.log_version(new_version("b"))

    timed_catalog.delete_version(PROJECT, NAME, 1)

    assert timed_catalog.get_version(PROJECT, NAME, "latest").version == 0
    record, created = timed_catalog.log_version(new_version("b"))
    assert (record.version, created) == (2, True)


def test_adding_an_alias_in_use_elsewhere_is_refused(
    timed_catalog: SqlCatalog,
) -> None:
    timed_catalog.log_version(new_version("a", aliases=("best",)))
    timed_catalog.log_version(new_version("b"))

    with pytest.raises(ConflictError, match="already names v0"):
        timed_catalog.set_alias(PROJECT, NAME, "best", 1, move=False)
    assert timed_catalog.set_alias(PROJECT, NAME, "best", 0, move=False).version == 0
    assert timed_catalog.set_alias(PROJECT, NAME, "best", 1).aliases == (
        "best",
        "latest",
    )


def test_remove_alias_from_a_version(timed_catalog: SqlCatalog) -> None:
    timed_catalog.log_version(new_version("a", aliases=("best",)))
    timed_catalog.log_version(new_version("b"))

    with pytest.raises(NotFoundError, match="v1 has no alias 'best'"):
        timed_catalog.remove_alias(PROJECT, NAME, "best", 1)
    timed_catalog.remove_alias(PROJECT, NAME, "best", 0)

    assert timed_catalog.get_version(PROJECT, NAME, "v0").aliases == ()


def test_types_of_a_project(timed_catalog: SqlCatalog) -> None:
    timed_catalog.log_version(new_version("a"))
    timed_catalog.log_version(new_version("b", name="m1", type_="model"))
    timed_catalog.log_version(new_version("c", name="m2", type_="model"))

    assert timed_catalog.list_artifact_types(PROJECT) == ["dataset", "model"]


def test_an_edit_never_undoes_another_writers_alias_move(
    timed_catalog: SqlCatalog,
) -> None:
    stale, _ = timed_catalog.log_version(new_version("a", aliases=("best",)))
    timed_catalog.log_version(new_version("b"))
    timed_catalog.set_alias(PROJECT, NAME, "best", 1)

    timed_catalog.update_version(
        PROJECT, NAME, 0, edit_of(stale, description="x", remove_aliases=("best",))
    )

    assert timed_catalog.get_version(PROJECT, NAME, "best").version == 1
