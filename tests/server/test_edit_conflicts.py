"""Version edits over HTTP: 409 for a stale edit, last writer wins without one."""

from __future__ import annotations

from pathlib import Path

import refstore
from refstore.config import Settings
from refstore.context import Context
from tests.server.support import Answer, request
from tests.service import ADMIN_TOKEN, RunningService

FIELDS = {"description": "first", "metadata": {}, "tags": ["base"], "ttl": None}


def logged(service: RunningService, tmp_path: Path, project: str) -> None:
    source = tmp_path / "weights.bin"
    source.write_bytes(b"weights")
    context = Context(Settings(home=tmp_path, url=service.url, token=ADMIN_TOKEN))
    try:
        artifact = refstore.Artifact("model", "model", "first", context=context)
        artifact.add_file(source)
        artifact.tags = ["base"]
        artifact.save(project=f"acme/{project}")
    finally:
        context.close()


def put(service: RunningService, project: str, body: dict[str, object]) -> Answer:
    path = f"/api/v1/projects/acme/{project}/artifacts/model/versions/v0"
    return request(service.url, "PUT", path, token=ADMIN_TOKEN, body=body)


def test_a_stale_edit_is_refused_with_409(
    service: RunningService, tmp_path: Path
) -> None:
    logged(service, tmp_path, "stale")
    assert put(service, "stale", {**FIELDS, "description": "alice's"}).status == 200

    stale = put(service, "stale", {**FIELDS, "description": "b", "loaded": FIELDS})
    merged = put(service, "stale", {**FIELDS, "tags": ["base", "eu"], "loaded": FIELDS})

    assert stale.status == 409
    assert stale.json["error"] == "conflict"
    assert stale.json["detail"].startswith(
        "acme/stale/model:v0 was edited by someone else since you loaded it "
        "(description): reload it"
    )
    assert merged.status == 200
    assert (merged.json["description"], merged.json["tags"]) == (
        "alice's",
        ["base", "eu"],
    )


def test_clients_sending_no_loaded_values_overwrite(
    service: RunningService, tmp_path: Path
) -> None:
    # Clients older than compare-and-set send no "loaded": last writer wins.
    logged(service, tmp_path, "old")
    put(service, "old", {**FIELDS, "description": "alice's", "tags": ["eu"]})

    answer = put(service, "old", {**FIELDS, "description": "bob's"})

    assert answer.status == 200
    assert (answer.json["description"], answer.json["tags"]) == ("bob's", ["base"])
