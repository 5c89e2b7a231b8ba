"""Names: artifact paths, selectors, aliases and projects."""

from __future__ import annotations

import re

import pytest

from refstore.errors import InvalidReferenceError
from refstore.names import (
    ArtifactPath,
    default_entity,
    parse_artifact_path,
    parse_project,
    validate_alias,
    validate_name,
)


@pytest.fixture(autouse=True)
def entity(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("REFSTORE_ENTITY", "team")
    return "team"


@pytest.mark.parametrize(
    ("text", "default_project", "expected"),
    [
        pytest.param(
            "acme/vision/furniture:v3",
            None,
            ArtifactPath("acme", "vision", "furniture", "v3"),
            id="full-version",
        ),
        pytest.param(
            "acme/vision/furniture:best",
            None,
            ArtifactPath("acme", "vision", "furniture", "best"),
            id="full-alias",
        ),
        pytest.param(
            "acme/vision/furniture",
            None,
            ArtifactPath("acme", "vision", "furniture", "latest"),
            id="full-default-latest",
        ),
        pytest.param(
            "furniture:v0",
            "acme/vision",
            ArtifactPath("acme", "vision", "furniture", "v0"),
            id="short-default-project",
        ),
        pytest.param(
            "furniture",
            "acme/vision",
            ArtifactPath("acme", "vision", "furniture", "latest"),
            id="short-default-latest",
        ),
        pytest.param(
            "furniture:raw",
            "vision",
            ArtifactPath("team", "vision", "furniture", "raw"),
            id="short-bare-default-project",
        ),
        pytest.param(
            "vision/furniture:v12",
            None,
            ArtifactPath("team", "vision", "furniture", "v12"),
            id="project-and-name",
        ),
        pytest.param(
            "acme/vision/data.v2_final-1:v3",
            None,
            ArtifactPath("acme", "vision", "data.v2_final-1", "v3"),
            id="name-with-dots-dashes",
        ),
        pytest.param(
            "acme/vision/furniture:",
            None,
            ArtifactPath("acme", "vision", "furniture", "latest"),
            id="empty-selector-is-latest",
        ),
    ],
)
def test_parse_artifact_path(
    text: str, default_project: str | None, expected: ArtifactPath
) -> None:
    assert parse_artifact_path(text, default_project) == expected


def test_full_form_ignores_default_project() -> None:
    path = parse_artifact_path("acme/vision/furniture:v1", default_project="x/y")

    assert path.project_path == "acme/vision"


def test_artifact_path_prints_full_form() -> None:
    path = parse_artifact_path("furniture", "acme/vision")

    assert str(path) == "acme/vision/furniture:latest"
    assert parse_artifact_path(str(path)) == path


@pytest.mark.parametrize(
    ("selector", "index"),
    [
        pytest.param("v0", 0, id="v0"),
        pytest.param("v3", 3, id="v3"),
        pytest.param("v120", 120, id="v120"),
        pytest.param("latest", None, id="latest"),
        pytest.param("best", None, id="alias"),
        pytest.param("v01", None, id="leading-zero-is-alias"),
        pytest.param("V3", None, id="uppercase-is-alias"),
        pytest.param("v3-rc", None, id="suffix-is-alias"),
    ],
)
def test_version_index(selector: str, index: int | None) -> None:
    path = parse_artifact_path(f"acme/vision/furniture:{selector}")

    assert path.selector == selector
    assert path.version_index == index


@pytest.mark.parametrize(
    ("text", "default_project", "message"),
    [
        pytest.param("furniture:v1", None, "names no project", id="no-project"),
        pytest.param("a/b/c/d", None, "not an artifact path", id="too-many-parts"),
        pytest.param("acme//furniture", None, "not an artifact path", id="empty-part"),
        pytest.param(
            "/vision/furniture", None, "not an artifact path", id="lead-slash"
        ),
        pytest.param("acme/vision/", None, "artifact name", id="empty-name"),
        pytest.param(":latest", "acme/vision", "artifact name", id="only-selector"),
        pytest.param("acme/vision/fur niture", None, "artifact name", id="space"),
        pytest.param("acme/vision/.hidden", None, "artifact name", id="leading-dot"),
        pytest.param("acme/vision/furniture\n", None, "artifact name", id="newline"),
        pytest.param(f"a/b/{'n' * 129}", None, "artifact name", id="name-too-long"),
        pytest.param("acme/vision/f:bad alias", None, "alias", id="bad-alias"),
        pytest.param("acme/vision/f:a:b", None, "alias", id="two-colons"),
        pytest.param("acme/vision/f:v3\n", None, "alias", id="selector-newline"),
        pytest.param("ac me/vision/f", None, "entity", id="bad-entity"),
        pytest.param("acme/vis:ion/f", None, "alias", id="colon-in-project"),
        pytest.param("furniture", "a/b/c", "not a project", id="bad-default-project"),
    ],
)
def test_parse_artifact_path_rejects(
    text: str, default_project: str | None, message: str
) -> None:
    with pytest.raises(InvalidReferenceError, match=re.escape(message)):
        parse_artifact_path(text, default_project)


@pytest.mark.parametrize(
    "alias",
    [
        pytest.param("latest", id="latest"),
        pytest.param("best", id="best"),
        pytest.param("v3-candidate", id="v3-prefix"),
        pytest.param("prod.2024_01", id="dots-underscores"),
    ],
)
def test_validate_alias_accepts(alias: str) -> None:
    assert validate_alias(alias) == alias


@pytest.mark.parametrize(
    ("alias", "message"),
    [
        pytest.param("v3", "version numbers", id="version"),
        pytest.param("v0", "version numbers", id="v0"),
        pytest.param("", "not a valid alias", id="empty"),
        pytest.param("bad alias", "not a valid alias", id="space"),
        pytest.param("-x", "not a valid alias", id="leading-dash"),
        pytest.param("best\n", "not a valid alias", id="trailing-newline"),
        pytest.param("a" * 129, "not a valid alias", id="too-long"),
    ],
)
def test_validate_alias_rejects(alias: str, message: str) -> None:
    with pytest.raises(InvalidReferenceError, match=re.escape(message)):
        validate_alias(alias)


def test_validate_name_names_what_it_checks() -> None:
    assert validate_name("a" * 128) == "a" * 128
    with pytest.raises(InvalidReferenceError, match="not a valid run id"):
        validate_name("bad/id", "run id")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("acme/vision", ("acme", "vision"), id="entity-project"),
        pytest.param("vision", ("team", "vision"), id="bare-project"),
        pytest.param("/acme/vision/", ("acme", "vision"), id="surrounding-slashes"),
    ],
)
def test_parse_project(text: str, expected: tuple[str, str]) -> None:
    assert parse_project(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("a/b/c", "not a project", id="three-parts"),
        pytest.param("", "not a valid project name", id="empty"),
        pytest.param("acme/bad name", "not a valid project name", id="bad-project"),
        pytest.param("bad entity/vision", "not a valid entity", id="bad-entity"),
    ],
)
def test_parse_project_rejects(text: str, message: str) -> None:
    with pytest.raises(InvalidReferenceError, match=re.escape(message)):
        parse_project(text)


def test_default_entity_sanitises_refstore_entity(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REFSTORE_ENTITY", "Jane Doe@acme")

    assert default_entity() == "Jane-Doe-acme"
    assert parse_project("vision") == ("Jane-Doe-acme", "vision")


def test_default_entity_falls_back_to_the_os_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("REFSTORE_ENTITY")
    monkeypatch.setattr("getpass.getuser", lambda: "alice")

    assert default_entity() == "alice"


def test_default_entity_without_an_os_user(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_user() -> str:
        raise OSError("No username set in the environment")

    monkeypatch.delenv("REFSTORE_ENTITY")
    monkeypatch.setattr("getpass.getuser", no_user)

    assert default_entity() == "local"
