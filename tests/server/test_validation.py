"""Bad input gets a 4xx with a JSON error that says what was wrong, never a 500."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import zstandard

from refstore.catalog.served import ManifestLimits
from refstore.manifest import ManifestEntry
from tests.server.support import (
    log,
    new_version,
    request,
    sha256,
    store_file,
    stored_manifest,
)
from tests.service import ADMIN_TOKEN, RunningService, running_service

P = "/api/v1/projects/acme/v"


@pytest.fixture(scope="module")
def seeded(service: RunningService) -> RunningService:
    log(service.catalog, "acme/v", "data", "v0 content")
    return service


@pytest.mark.parametrize(
    ("method", "path", "body", "code"),
    [
        pytest.param(
            "GET",
            "/api/v1/projects/acme/bad%20name",
            None,
            "invalid_input",
            id="bad-name",
        ),
        pytest.param(
            "GET",
            f"{P}/artifacts/-x/versions",
            None,
            "invalid_input",
            id="leading-dash",
        ),
        pytest.param(
            "GET",
            f"{P}/artifacts/{'a' * 129}/versions",
            None,
            "invalid_input",
            id="long-name",
        ),
        pytest.param(
            "PUT",
            f"{P}/artifacts/data/versions/v99999999999",
            {},
            "invalid_input",
            id="huge-version",
        ),
        pytest.param(
            "PUT",
            f"{P}/artifacts/data/versions/v01",
            {},
            "invalid_input",
            id="padded-version",
        ),
        pytest.param(
            "DELETE",
            f"{P}/artifacts/data/versions/latest",
            None,
            "invalid_input",
            id="alias-as-version",
        ),
        pytest.param(
            "GET", f"{P}/runs?state=sleeping", None, "invalid_input", id="bad-state"
        ),
        pytest.param(
            "GET", f"{P}/runs?colour=red", None, "invalid_input", id="unknown-query"
        ),
        pytest.param("POST", f"{P}/runs", {"id": 5}, "invalid_input", id="wrong-type"),
        pytest.param(
            "POST",
            f"{P}/runs",
            {"id": "r", "x": 1},
            "invalid_input",
            id="unknown-field",
        ),
        pytest.param("POST", f"{P}/runs", [1, 2], "invalid_input", id="array-body"),
        pytest.param(
            "POST",
            f"{P}/runs",
            {"id": "r", "name": "a\x00b"},
            "invalid_input",
            id="nul",
        ),
        pytest.param(
            "POST",
            f"{P}/runs",
            {"id": "r", "config": {"k": "\ud800"}},
            "invalid_input",
            id="surrogate",
        ),
        pytest.param(
            "POST",
            f"{P}/runs",
            {"id": "r", "resume": "maybe"},
            "invalid_input",
            id="bad-resume",
        ),
        pytest.param(
            "PUT",
            f"{P}/artifacts/data/aliases/v3",
            {"version": "v0"},
            "invalid_input",
            id="version-alias",
        ),
        pytest.param(
            "PUT", f"{P}/ttl", {"default_ttl": 0}, "invalid_input", id="zero-ttl"
        ),
        pytest.param(
            "PUT", f"{P}/ttl", {"default_ttl": 10**12}, "invalid_input", id="huge-ttl"
        ),
        pytest.param(
            "PUT",
            f"{P}/ttl",
            {"default_ttl": "inherit"},
            "invalid_input",
            id="inherit-default",
        ),
        pytest.param(
            "PUT", f"{P}/ttl", {"default_ttl": True}, "invalid_input", id="bool-ttl"
        ),
        pytest.param(
            "POST",
            f"{P}/blobs/missing",
            {"digests": ["ABC"]},
            "invalid_input",
            id="bad-digest",
        ),
        pytest.param(
            "GET", "/api/v1/blobs/../../etc/passwd", None, "no_route", id="traversal"
        ),
        pytest.param("GET", "/api/v1/nothing", None, "no_route", id="no-route"),
        pytest.param("DELETE", "/healthz", None, "method_not_allowed", id="bad-method"),
        pytest.param(
            "DELETE",
            f"{P}/artifacts/data/aliases/latest",
            None,
            "conflict",
            id="remove-latest",
        ),
        pytest.param(
            "GET", f"{P}/artifacts/data/versions/v7", None, "not_found", id="no-version"
        ),
        pytest.param(
            "POST",
            f"{P}/runs",
            {"id": "r", "sweep": "nope"},
            "not_found",
            id="no-sweep",
        ),
    ],
)
def test_bad_requests(
    seeded: RunningService, method: str, path: str, body: object, code: str
) -> None:
    answer = request(seeded.url, method, path, token=ADMIN_TOKEN, body=body)

    assert 400 <= answer.status < 500, answer.body
    assert answer.json["error"] == code, answer.json
    assert answer.json["detail"]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"id": "r", "config": {"x": NaN}}', id="nan"),
        pytest.param(b'{"id": "r"', id="truncated"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, id="deep"),
        pytest.param(
            b'{"id": "r", "config": {"n": 1' + b"0" * 5000 + b"}}", id="huge-int"
        ),
    ],
)
def test_bodies_that_are_not_json(seeded: RunningService, raw: bytes) -> None:
    answer = request(
        seeded.url,
        "POST",
        f"{P}/runs",
        token=ADMIN_TOKEN,
        raw=raw,
        headers={"Content-Type": "application/json"},
    )

    assert answer.status == 400, answer.body
    assert answer.json["field"] == "body"


# -- logging checks the uploaded manifest ----------------------------------


def _log_body(new: object, **changes: object) -> dict[str, object]:
    body = {
        "type": "dataset",
        "digest": new.digest,  # type: ignore[attr-defined]
        "manifest_blob": new.manifest_blob,  # type: ignore[attr-defined]
        "entry_count": new.entry_count,  # type: ignore[attr-defined]
        "total_size": new.total_size,  # type: ignore[attr-defined]
    }
    return {**body, **changes}


def test_a_manifest_must_be_uploaded_first(seeded: RunningService) -> None:
    body = _log_body(new_version(seeded.catalog, "acme/v", "data", "x"))
    body["manifest_blob"] = sha256(b"never uploaded")

    answer = request(
        seeded.url, "POST", f"{P}/artifacts/data/versions", token=ADMIN_TOKEN, body=body
    )

    assert answer.status == 409
    assert "not been uploaded" in answer.json["detail"]


@pytest.mark.parametrize("field", ["digest", "entry_count", "total_size"])
def test_claims_must_match_the_manifest(seeded: RunningService, field: str) -> None:
    new = new_version(seeded.catalog, "acme/v", "data", f"claims {field}")
    wrong = sha256(b"other") if field == "digest" else 999

    answer = request(
        seeded.url,
        "POST",
        f"{P}/artifacts/data/versions",
        token=ADMIN_TOKEN,
        body=_log_body(new, **{field: wrong}),
    )

    assert answer.status == 422
    assert answer.json["error"] == "invalid_manifest"


def test_a_manifest_cannot_claim_another_projects_file(seeded: RunningService) -> None:
    catalog = seeded.catalog
    secret = store_file(catalog, "vault/secret", b"the secret file")
    entry = ManifestEntry(path="loot", digest=secret, size=15)
    blob, digest, count, size = stored_manifest(catalog.blobs, [entry])
    catalog.add_project_blobs("acme/v", [blob])
    body = {
        "type": "dataset",
        "digest": digest,
        "manifest_blob": blob,
        "entry_count": count,
        "total_size": size,
    }

    answer = request(
        seeded.url, "POST", f"{P}/artifacts/loot/versions", token=ADMIN_TOKEN, body=body
    )

    assert answer.status == 409
    assert secret in answer.json["detail"]
    assert "upload them first" in answer.json["detail"]


# -- idempotency keys ------------------------------------------------------


def test_a_retried_log_answers_with_the_first_version(seeded: RunningService) -> None:
    path = f"{P}/artifacts/retried/versions"
    headers = {"Idempotency-Key": "k" * 32}
    first_body = _log_body(new_version(seeded.catalog, "acme/v", "retried", "one"))
    second_body = _log_body(new_version(seeded.catalog, "acme/v", "retried", "two"))

    first = request(
        seeded.url, "POST", path, token=ADMIN_TOKEN, body=first_body, headers=headers
    )
    request(seeded.url, "POST", path, token=ADMIN_TOKEN, body=second_body)
    again = request(
        seeded.url, "POST", path, token=ADMIN_TOKEN, body=first_body, headers=headers
    )
    reused = request(
        seeded.url, "POST", path, token=ADMIN_TOKEN, body=second_body, headers=headers
    )
    versions = request(seeded.url, "GET", path, token=ADMIN_TOKEN).json["versions"]

    assert first.json["version"]["version"] == 0
    # The same version, as it is now: "latest" has moved on to v1 since.
    assert again.json["created"] is True
    assert again.json["version"]["version"] == 0
    assert again.json["version"]["digest"] == first_body["digest"]
    assert [v["version"] for v in versions] == [0, 1]
    assert reused.status == 409
    assert "Idempotency-Key" in reused.json["detail"]


# -- limits ----------------------------------------------------------------


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningService]:
    root: Path = tmp_path_factory.mktemp("limited")
    with running_service(
        f"sqlite:///{root / 'catalog.db'}",
        root / "blobs",
        max_json=4096,
        max_blob=1024,
        manifest_limits=ManifestLimits(max_bytes=100_000, max_line=10_000),
    ) as service:
        yield service


def test_json_bodies_are_limited(limited: RunningService) -> None:
    body = {"id": "r", "config": {"x": "y" * 5000}}

    answer = request(limited.url, "POST", f"{P}/runs", token=ADMIN_TOKEN, body=body)

    assert answer.status == 413
    assert answer.json["error"] == "too_large"


def test_blobs_are_limited(limited: RunningService) -> None:
    data = b"z" * 2048

    declared = request(
        limited.url, "PUT", f"{P}/blobs/{sha256(data)}", token=ADMIN_TOKEN, raw=data
    )

    assert declared.status == 413
    assert not limited.catalog.blobs.has(sha256(data))


def test_an_upload_must_hash_to_its_name(limited: RunningService) -> None:
    data = b"honest bytes"
    claimed = sha256(b"other bytes")

    answer = request(
        limited.url, "PUT", f"{P}/blobs/{claimed}", token=ADMIN_TOKEN, raw=data
    )

    assert answer.status == 400
    assert answer.json["error"] == "digest_mismatch"
    assert not limited.catalog.blobs.has(claimed)
    assert not limited.catalog.blobs.has(sha256(data))


@pytest.mark.parametrize(
    "inflated",
    [
        pytest.param(
            b'{"format": "refstore-manifest"}\n' + b"x" * 50_000, id="long-line"
        ),
        pytest.param(b"{}\n" * 60_000, id="too-much"),
    ],
)
def test_a_manifest_that_inflates_too_far_is_refused(
    limited: RunningService, inflated: bytes
) -> None:
    compressed = zstandard.ZstdCompressor().compress(inflated)
    digest = sha256(compressed)
    uploaded = request(
        limited.url, "PUT", f"{P}/blobs/{digest}", token=ADMIN_TOKEN, raw=compressed
    )
    body = {
        "type": "dataset",
        "digest": sha256(b"d"),
        "manifest_blob": digest,
        "entry_count": 1,
        "total_size": 1,
    }

    answer = request(
        limited.url,
        "POST",
        f"{P}/artifacts/bomb/versions",
        token=ADMIN_TOKEN,
        body=body,
    )

    assert uploaded.status == 201
    assert answer.status == 422
    assert "larger than this service accepts" in answer.json["detail"]


def test_errors_are_json_with_a_code_and_a_detail(seeded: RunningService) -> None:
    answer = request(seeded.url, "GET", "/api/v1/nothing")

    assert answer.headers["Content-Type"].startswith("application/json")
    assert json.loads(io.BytesIO(answer.body).read())["error"] == "no_route"


def test_messages_do_not_show_where_the_service_keeps_its_data(
    seeded: RunningService,
) -> None:
    answer = request(
        seeded.url, "GET", "/api/v1/projects/admin/nothing", token=ADMIN_TOKEN
    )

    assert answer.status == 404
    assert answer.json["detail"].startswith("no project admin/nothing in the catalog;")
    assert "sqlite" not in answer.body.decode()
    assert "postgresql" not in answer.body.decode()
