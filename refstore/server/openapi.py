"""The OpenAPI document, generated from the route list the router is built from.

Parameters and bodies come from the specs that validate them, responses
from the record specs, and the error answers every route may give from the
route's access requirements; nothing here is written twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from refstore.server.routing import Anyone, Route
from refstore.server.schema import JSON
from refstore.server.specs import record_specs

__all__ = ["document"]

_ERROR = {
    "type": "object",
    "properties": {
        "error": {"type": "string", "description": "a short code"},
        "detail": {"type": "string", "description": "what was wrong, for people"},
        "field": {"type": "string", "description": "the invalid input, if any"},
    },
    "required": ["error", "detail"],
}
_REASONS = {
    "400": "invalid input",
    "401": "a token is needed, or the one sent is unknown or its user disabled",
    "403": "the principal may read but not do this",
    "404": "no such thing, or none that the principal may see",
    "409": "the request contradicts the catalog",
    "413": "the body is too large",
    "422": "the manifest does not match the request",
    "503": "the catalog database is unavailable; retry",
}


def document(routes: Iterable[Route], version: str) -> JSON:
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "refstore",
            "version": version,
            "description": "Versioned reference artifacts: a shared catalog.",
        },
        "paths": paths,
        "components": {
            "schemas": {
                **{name: spec.schema() for name, spec in record_specs().items()},
                "Error": _ERROR,
            },
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


def _operation(route: Route) -> JSON:
    operation: JSON = {
        "operationId": route.operation,
        "summary": route.summary,
        "tags": [route.tag],
        "parameters": [_parameter(param) for param in route.params],
        "responses": {str(route.status): _success(route), **_errors(route)},
    }
    # An empty requirement makes the token optional (anonymous access).
    operation["security"] = [{"bearer": []}, {}]
    body = _request_body(route)
    if body is not None:
        operation["requestBody"] = body
    return operation


def _parameter(param: Any) -> JSON:
    parameter: JSON = {
        "name": param.name,
        "in": param.where,
        "required": param.where == "path" or param.required,
        "schema": param.spec.schema(),
    }
    if param.description:
        parameter["description"] = param.description
    return parameter


def _request_body(route: Route) -> JSON | None:
    if route.upload:
        content = {"application/octet-stream": {"schema": {"type": "string"}}}
        return {"required": True, "content": content}
    if route.body is None:
        return None
    required = any(field.required for field in route.body.fields.values())
    content = {"application/json": {"schema": route.body.schema()}}
    return {"required": required, "content": content}


def _success(route: Route) -> JSON:
    if route.download:
        schema = {"type": "string", "format": "binary"}
        content = {"application/octet-stream": {"schema": schema}}
        return {"description": "the bytes, streamed", "content": content}
    schema = route.response or {"type": "object"}
    return {"description": "OK", "content": {"application/json": {"schema": schema}}}


def _errors(route: Route) -> JSON:
    # Any request may carry a bad token (401).
    codes = ["400", "401", "503"]
    if any(not isinstance(requirement, Anyone) for requirement in route.access):
        codes += ["403", "404"]
    if route.body is not None or route.upload:
        codes += ["409", "413", "422"]
    if route.params:
        codes.append("404")
    codes += [str(code) for code in route.refusals]
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    return {
        code: {"description": _REASONS[code], "content": error}
        for code in sorted(set(codes))
    }
