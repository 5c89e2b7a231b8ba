"""Two editors of one version at once: merged field by field, or told (moto S3).

Each test loads the same version into two Artifact objects, as two people
editing a model card would, and saves both; embedded and through a service.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import refstore
from refstore.errors import ConflictError
from tests.helpers import Workspace
from tests.service import workspace

PROJECT = "acme/vision"
PATH = f"{PROJECT}/model:v0"


@pytest.fixture
def ws(moto_s3: Any, tmp_path: Path, catalog_mode: str) -> Iterator[Workspace]:
    with workspace(catalog_mode, moto_s3, tmp_path) as opened:
        yield opened


@pytest.fixture
def logged(ws: Workspace) -> refstore.Artifact:
    bucket = ws.s3.make_bucket()
    ws.put(bucket, "weights.bin", b"weights")
    art = ws.artifact("model")
    art.add_reference(f"s3://{bucket}/weights.bin")
    art.description = "first"
    art.metadata = {"accuracy": 0.9, "layers": {"count": 3}}
    art.tags = ["base"]
    return art.save(project=PROJECT)


def two_editors(ws: Workspace) -> tuple[refstore.Artifact, refstore.Artifact]:
    return ws.api.artifact(PATH), ws.api.artifact(PATH)


def stored(ws: Workspace) -> refstore.Artifact:
    return ws.api.artifact(PATH)


def test_the_second_edit_of_one_field_is_refused(
    ws: Workspace, logged: refstore.Artifact
) -> None:
    alice, bob = two_editors(ws)
    alice.description = "alice's"
    alice.save()

    bob.description = "bob's"
    bob.metadata["accuracy"] = 0.95
    message = (
        f"{PATH} was edited by someone else since you loaded it (description): "
        f"reload it with api.artifact('{PATH}') and apply your change again"
    )
    with pytest.raises(ConflictError, match=re.escape(message)):
        bob.save()

    again = stored(ws)
    assert again.description == "alice's"
    assert again.metadata["accuracy"] == 0.9, "a refused edit writes nothing"


def test_edits_of_different_fields_are_both_kept(
    ws: Workspace, logged: refstore.Artifact
) -> None:
    alice, bob = two_editors(ws)
    alice.description = "alice's"
    alice.save()
    bob.metadata["accuracy"] = 0.95
    bob.ttl = datetime.timedelta(days=30)
    bob.save()

    again = stored(ws)
    assert again.description == "alice's"
    assert again.metadata == {"accuracy": 0.95, "layers": {"count": 3}}
    assert again.ttl == datetime.timedelta(days=30)
    assert bob.description == "alice's", "save() reloads what others changed"


def test_metadata_edits_conflict_as_a_whole(
    ws: Workspace, logged: refstore.Artifact
) -> None:
    alice, bob = two_editors(ws)
    alice.metadata["accuracy"] = 0.95
    alice.save()
    bob.metadata["notes"] = "ok"

    with pytest.raises(ConflictError, match=r"\(metadata\)"):
        bob.save()


def test_the_same_change_made_twice_is_no_conflict(
    ws: Workspace, logged: refstore.Artifact
) -> None:
    alice, bob = two_editors(ws)
    alice.description = "fixed typo"
    alice.save()
    bob.description = "fixed typo"
    bob.save()

    assert stored(ws).description == "fixed typo"


def test_tag_edits_merge(ws: Workspace, logged: refstore.Artifact) -> None:
    alice, bob = two_editors(ws)
    alice.tags.append("eu")
    alice.save()
    bob.tags.remove("base")
    bob.tags.append("clean")
    bob.save()

    assert stored(ws).tags == ["clean", "eu"]


def test_alias_changes_neither_conflict_nor_are_undone(
    ws: Workspace, logged: refstore.Artifact
) -> None:
    alice, bob = two_editors(ws)
    alice.aliases.append("prod")
    alice.description = "alice's"
    alice.save()
    bob.aliases.append("staging")
    bob.tags.append("eu")
    bob.save()

    again = stored(ws)
    assert again.aliases == ["latest", "prod", "staging"]
    assert (again.description, again.tags) == ("alice's", ["base", "eu"])


def test_force_overwrites_every_field(ws: Workspace, logged: refstore.Artifact) -> None:
    alice, bob = two_editors(ws)
    alice.description = "alice's"
    alice.tags.append("eu")
    alice.save()
    bob.description = "bob's"

    bob.save(force=True)

    again = stored(ws)
    assert (again.description, again.tags) == ("bob's", ["base"])


def test_one_object_saves_again_and_again(
    ws: Workspace, logged: refstore.Artifact
) -> None:
    art = stored(ws)
    art.description = "one"
    art.save()
    art.description = "two"
    art.metadata["layers"]["count"] = 4  # nested, edited in place
    art.save()

    logged.metadata["accuracy"] = True  # 0.9 -> True is an edit, not "equal"
    with pytest.raises(ConflictError, match=r"\(metadata\)"):
        logged.save()
    again = stored(ws)
    assert again.description == "two"
    assert again.metadata == {"accuracy": 0.9, "layers": {"count": 4}}


def test_an_in_place_change_equal_in_python_is_still_saved(
    ws: Workspace, logged: refstore.Artifact
) -> None:
    art = stored(ws)
    art.metadata["layers"]["count"] = 3.0  # == 3 in Python, not in JSON

    art.save()

    count = stored(ws).metadata["layers"]["count"]
    assert (count, type(count)) == (3.0, float)
