"""The SQL catalog's behaviour, on SQLite and on PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

import pytest

from refstore.catalog.sql import SqlCatalog
from refstore.errors import (
    CatalogError,
    ConflictError,
    InvalidReferenceError,
    NotFoundError,
)
from tests.catalog.support import NAME, PROJECT, new_version


def aliases_of(catalog: SqlCatalog) -> dict[str, int]:
    records = catalog.list_versions(PROJECT, NAME)
    return {alias: r.version for r in records for alias in r.aliases}


# Logging versions


def test_versions_are_numbered_from_zero(catalog: SqlCatalog) -> None:
    logged = [catalog.log_version(new_version(text)) for text in "abc"]

    assert [(r.version, created) for r, created in logged] == [
        (0, True),
        (1, True),
        (2, True),
    ]
    assert [r.path for r, _ in logged][-1] == "acme/vision/furniture:v2"


def test_a_record_holds_what_was_logged(catalog: SqlCatalog) -> None:
    new = new_version(
        "a", description="chairs", metadata={"source": "s3", "n": [1, 2.5, None]}
    )

    record, _ = catalog.log_version(new)

    assert record == catalog.get_version(PROJECT, NAME, "v0")
    assert (record.project, record.name, record.type) == (PROJECT, NAME, "dataset")
    assert (record.digest, record.manifest_blob) == (new.digest, new.manifest_blob)
    assert (record.entry_count, record.total_size) == (1, 10)
    assert record.description == "chairs"
    assert record.metadata == {"source": "s3", "n": [1, 2.5, None]}
    assert record.created_at.tzinfo == datetime.UTC
    age = datetime.datetime.now(datetime.UTC) - record.created_at
    assert datetime.timedelta(0) <= age < datetime.timedelta(minutes=1)


def test_the_same_digest_as_latest_creates_nothing(catalog: SqlCatalog) -> None:
    first, _ = catalog.log_version(new_version("a"))

    again, created = catalog.log_version(new_version("a", description="other"))

    assert not created
    assert again == first
    assert len(catalog.list_versions(PROJECT, NAME)) == 1


def test_the_same_digest_still_adds_the_new_aliases(catalog: SqlCatalog) -> None:
    catalog.log_version(new_version("a"))
    catalog.log_version(new_version("b", aliases=("best",)))

    record, created = catalog.log_version(new_version("b", aliases=("prod",)))

    assert not created
    assert record.aliases == ("best", "latest", "prod")
    assert catalog.get_version(PROJECT, NAME, "prod").version == 1


def test_only_latest_counts_for_dedup(catalog: SqlCatalog) -> None:
    for text in "aba":
        catalog.log_version(new_version(text))

    assert [r.version for r in catalog.list_versions(PROJECT, NAME)] == [0, 1, 2]


def test_project_and_artifact_are_created_once(catalog: SqlCatalog) -> None:
    catalog.log_version(new_version("a"))
    catalog.log_version(new_version("b", name="chairs"))

    assert [p.path for p in catalog.list_projects()] == [PROJECT]
    assert [a.name for a in catalog.list_artifacts(PROJECT)] == ["chairs", NAME]


def test_another_type_is_a_conflict(catalog: SqlCatalog) -> None:
    catalog.log_version(new_version("a"))

    with pytest.raises(ConflictError, match=r"type 'dataset'.*type 'model'"):
        catalog.log_version(new_version("b", type_="model"))

    assert len(catalog.list_versions(PROJECT, NAME)) == 1


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        pytest.param({"project": "vision"}, InvalidReferenceError, id="no-entity"),
        pytest.param({"project": "a/b/c"}, InvalidReferenceError, id="deep-project"),
        pytest.param({"name": "../x"}, InvalidReferenceError, id="bad-name"),
        pytest.param({"type": "a b"}, InvalidReferenceError, id="bad-type"),
        pytest.param({"aliases": ("v3",)}, InvalidReferenceError, id="alias-v3"),
        pytest.param({"metadata": {"x": object()}}, CatalogError, id="not-json"),
        pytest.param({"metadata": {"x": float("nan")}}, CatalogError, id="nan"),
    ],
)
def test_invalid_versions_are_refused(
    catalog: SqlCatalog, fields: dict[str, Any], error: type[Exception]
) -> None:
    bad = dataclasses.replace(new_version("a"), **fields)

    with pytest.raises(error):
        catalog.log_version(bad)

    assert catalog.list_projects() == []


# Aliases


def test_latest_follows_the_newest_version(catalog: SqlCatalog) -> None:
    catalog.log_version(new_version("a"))
    catalog.log_version(new_version("b"))

    assert catalog.get_version(PROJECT, NAME, "latest").version == 1
    assert aliases_of(catalog) == {"latest": 1}


def test_logged_aliases_move_to_the_new_version(catalog: SqlCatalog) -> None:
    catalog.log_version(new_version("a", aliases=("best", "raw")))

    catalog.log_version(new_version("b", aliases=("best", "latest")))

    assert aliases_of(catalog) == {"raw": 0, "best": 1, "latest": 1}


def test_set_alias_moves_it(catalog: SqlCatalog) -> None:
    catalog.log_version(new_version("a"))
    catalog.log_version(new_version("b", aliases=("best",)))

    record = catalog.set_alias(PROJECT, NAME, "best", 0)

    assert (record.version, record.aliases) == (0, ("best",))
    assert aliases_of(catalog) == {"best": 0, "latest": 1}


def test_set_alias_needs_an_existing_version(catalog: SqlCatalog) -> None:
    catalog.log_version(new_version("a"))

    with pytest.raises(NotFoundError, match="no version v7; its versions are v0"):
        catalog.set_alias(PROJECT, NAME, "best", 7)
    with pytest.raises(NotFoundError, match="no version v-1"):
        catalog.set_alias(PROJECT, NAME, "best", -1)


def test_latest_cannot_point_at_an_older_version(catalog: SqlCatalog) -> None:
    catalog.log_version(new_version("a"))
    catalog.log_version(new_version("b"))

    with pytest.raises(ConflictError, match="newest version"):
        catalog.set_alias(PROJECT, NAME, "latest", 0)
    assert catalog.set_alias(PROJECT, NAME, "latest", 1).version == 1


def test_remove_alias(catalog: SqlCatalog) -> None:
    catalog.log_version(new_version("a", aliases=("best",)))

    catalog.remove_alias(PROJECT, NAME, "best")

    assert aliases_of(catalog) == {"latest": 0}
    with pytest.raises(NotFoundError, match="no alias 'best'; its aliases are latest"):
        catalog.remove_alias(PROJECT, NAME, "best")


def test_latest_cannot_be_removed(catalog: SqlCatalog) -> None:
    catalog.log_version(new_version("a"))

    with pytest.raises(ConflictError, match="cannot be removed"):
        catalog.remove_alias(PROJECT, NAME, "latest")


def test_an_alias_named_like_a_version_is_refused(catalog: SqlCatalog) -> None:
    catalog.log_version(new_version("a"))

    with pytest.raises(InvalidReferenceError, match="version numbers"):
        catalog.set_alias(PROJECT, NAME, "v3", 0)


def test_aliases_belong_to_one_artifact(catalog: SqlCatalog) -> None:
    catalog.log_version(new_version("a", aliases=("best",)))
    catalog.log_version(new_version("b", name="chairs", aliases=("best",)))

    assert catalog.get_version(PROJECT, NAME, "best").name == NAME
    assert catalog.get_version(PROJECT, "chairs", "best").name == "chairs"


# Reading


@pytest.mark.parametrize(
    ("project", "name", "selector", "message"),
    [
        pytest.param(
            PROJECT,
            NAME,
            "best",
            "acme/vision/furniture has no alias 'best'; its aliases are latest, prod",
            id="alias",
        ),
        pytest.param(
            PROJECT,
            NAME,
            "v9",
            "acme/vision/furniture has no version v9; its versions are v0..v1",
            id="version",
        ),
        pytest.param(
            PROJECT,
            "tables",
            "latest",
            "no artifact 'tables' in project acme/vision; its artifacts are furniture",
            id="artifact",
        ),
        pytest.param("acme/audio", NAME, "v0", "no project acme/audio", id="project"),
    ],
)
def test_not_found_says_what_exists(
    catalog: SqlCatalog, project: str, name: str, selector: str, message: str
) -> None:
    catalog.log_version(new_version("a", aliases=("prod",)))
    catalog.log_version(new_version("b"))

    with pytest.raises(NotFoundError) as caught:
        catalog.get_version(project, name, selector)

    assert str(caught.value).startswith(message)


def test_get_version_by_number_and_alias(catalog: SqlCatalog) -> None:
    catalog.log_version(new_version("a", aliases=("raw",)))
    catalog.log_version(new_version("b"))

    assert catalog.get_version(PROJECT, NAME, "v0").aliases == ("raw",)
    assert catalog.get_version(PROJECT, NAME, "raw").version == 0
    assert catalog.get_version(PROJECT, NAME, "v1").aliases == ("latest",)


def test_list_projects_in_order(catalog: SqlCatalog) -> None:
    for project in ["zeta/b", "acme/vision", "acme/audio"]:
        catalog.log_version(dataclasses.replace(new_version("a"), project=project))

    projects = catalog.list_projects()

    assert [p.path for p in projects] == ["acme/audio", "acme/vision", "zeta/b"]
    assert all(p.created_at.tzinfo == datetime.UTC for p in projects)


def test_list_artifacts_counts_versions(catalog: SqlCatalog) -> None:
    catalog.log_version(new_version("a", description="first"))
    catalog.log_version(new_version("b"))
    catalog.log_version(new_version("c", name="model", type_="model"))

    found = {a.name: a for a in catalog.list_artifacts(PROJECT)}

    assert list(found) == ["furniture", "model"]
    assert (found[NAME].version_count, found[NAME].latest_version) == (2, 1)
    assert (found[NAME].type, found[NAME].description) == ("dataset", "first")
    assert (found["model"].version_count, found["model"].type) == (1, "model")


def test_list_artifacts_of_a_missing_project(catalog: SqlCatalog) -> None:
    with pytest.raises(NotFoundError, match="no project acme/vision"):
        catalog.list_artifacts(PROJECT)


def test_list_versions_oldest_first_with_aliases(catalog: SqlCatalog) -> None:
    for text in "abc":
        catalog.log_version(new_version(text, aliases=(f"step-{text}",)))

    records = catalog.list_versions(PROJECT, NAME)

    assert [(r.version, r.aliases) for r in records] == [
        (0, ("step-a",)),
        (1, ("step-b",)),
        (2, ("latest", "step-c")),
    ]
