"""The OpenAPI document matches the router, and fuzzing it finds no 5xx."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from refstore.server.routes import ROUTES
from tests.server.support import request
from tests.service import ADMIN_TOKEN, RunningService

# Per operation and principal: enough to reach every validator, small
# enough to keep the suite fast.
FUZZ_EXAMPLES = 8


def _document(service: RunningService) -> dict[str, object]:
    answer = request(service.url, "GET", "/openapi.json")
    assert answer.status == 200
    document: dict[str, object] = answer.json
    return document


def test_the_document_lists_exactly_the_routes(service: RunningService) -> None:
    document = _document(service)
    paths = document["paths"]
    assert isinstance(paths, dict)

    documented = {
        (method.upper(), path) for path, item in paths.items() for method in item
    }
    routed = {
        (route.method, route.resource.canonical)
        for route in service.app.router.routes()
        if route.resource is not None
    }

    assert documented == routed
    assert len(documented) == len(ROUTES)


def test_operations_are_named_once(service: RunningService) -> None:
    paths = _document(service)["paths"]
    assert isinstance(paths, dict)

    names = [op["operationId"] for item in paths.values() for op in item.values()]

    assert len(names) == len(set(names))


def test_every_parameter_and_body_is_described(service: RunningService) -> None:
    paths = _document(service)["paths"]
    assert isinstance(paths, dict)

    for path, item in paths.items():
        for method, operation in item.items():
            declared = {p["name"] for p in operation["parameters"] if p["in"] == "path"}
            in_path = {part[1:-1] for part in path.split("/") if part.startswith("{")}
            assert declared == in_path, (method, path)
            assert "400" in operation["responses"], (method, path)


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_fuzzing_the_api_finds_no_server_errors(
    service: RunningService, service_db: str, mode: str
) -> None:
    if mode == "negative" and service_db.startswith("sqlite"):
        pytest.skip("negative fuzzing runs on PostgreSQL, the stricter database")
    schemathesis = pytest.importorskip("schemathesis")
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis.errors import Unsatisfiable

    schema = schemathesis.openapi.from_dict(_document(service))
    generation = schemathesis.GenerationMode(mode)
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        # Revoking the admin's own token would leave the rest unauthorised.
        if operation.definition.raw["operationId"] == "revoke_token":
            continue

        @settings(
            max_examples=FUZZ_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation))
        def probe(case: Any) -> None:
            response = case.call(base_url=service.url, headers=headers)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path}: "
                    f"{response.status_code} {response.text[:300]}"
                )

        # An operation without inputs has no negative cases to generate.
        with contextlib.suppress(Unsatisfiable):
            probe()

    assert failures == []
