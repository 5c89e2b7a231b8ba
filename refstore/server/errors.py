"""Errors as the service answers them: a status and a JSON body.

Every failure becomes ``{"error": CODE, "detail": MESSAGE}`` (plus
``"field"`` for invalid input): client mistakes get a 4xx that says what was
wrong; a catalog that cannot reach its database gets 503, which clients
retry; only a bug in the service is a 500, logged with its traceback.
"""

from __future__ import annotations

import logging

from aiohttp import web
from sqlalchemy.exc import DBAPIError

from refstore.errors import (
    CatalogError,
    ConflictError,
    IntegrityError,
    InvalidReferenceError,
    ManifestError,
    NotFoundError,
    RefstoreError,
)
from refstore.server.schema import InputError

__all__ = ["HIDDEN", "ApiError", "error_response"]

log = logging.getLogger(__name__)

# Texts error messages must not show (the database URL, server folders).
HIDDEN = web.AppKey("refstore_hidden", tuple[str, ...])


class ApiError(Exception):
    """A request the service refuses, with its status and error code."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


# Most specific first: the first class that matches decides.
_STATUSES: tuple[tuple[type[RefstoreError], int, str], ...] = (
    (NotFoundError, 404, "not_found"),
    (ConflictError, 409, "conflict"),
    (ManifestError, 422, "invalid_manifest"),
    (IntegrityError, 422, "integrity"),
    (InvalidReferenceError, 400, "invalid_reference"),
)


def error_response(exc: BaseException, request: web.Request) -> web.Response:
    """The JSON answer for an exception raised while serving ``request``."""
    if isinstance(exc, ApiError):
        return _answer(exc.status, exc.code, exc.detail)
    if isinstance(exc, InputError):
        return _answer(400, "invalid_input", str(exc), field=exc.where)
    if isinstance(exc, web.HTTPException):
        return _http_error(exc)
    if isinstance(exc, RefstoreError):
        return _refstore_error(exc, request)
    log.error("%s %s failed", request.method, request.path, exc_info=exc)
    return _answer(500, "internal", "the service failed; see its log")


def _refstore_error(exc: RefstoreError, request: web.Request) -> web.Response:
    if isinstance(exc, CatalogError) and isinstance(exc.__cause__, DBAPIError):
        log.warning("%s %s: %s", request.method, request.path, exc)
        return _answer(503, "unavailable", "the catalog database is unavailable")
    detail = _scrubbed(str(exc), request)
    for kind, status, code in _STATUSES:
        if isinstance(exc, kind):
            return _answer(status, code, detail)
    return _answer(400, "invalid_request", detail)


def _scrubbed(message: str, request: web.Request) -> str:
    """``message`` without the service's database URL or folders.

    The catalog names itself in its messages, for people running it
    embedded; clients of a service have no business knowing where its
    database or blob store lives.
    """
    for secret in request.app.get(HIDDEN, ()):
        message = message.replace(f"catalog {secret}", "catalog")
        message = message.replace(secret, "the service")
    return message


def _http_error(exc: web.HTTPException) -> web.Response:
    code = {404: "no_route", 405: "method_not_allowed", 413: "too_large"}
    response = _answer(
        exc.status, code.get(exc.status, "http_error"), exc.reason or exc.text or ""
    )
    if exc.status == 405 and "Allow" in exc.headers:
        response.headers["Allow"] = exc.headers["Allow"]
    return response


def _answer(status: int, code: str, detail: str, **extra: str) -> web.Response:
    response = web.json_response(
        {"error": code, "detail": detail, **extra}, status=status
    )
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="refstore"'
    return response
