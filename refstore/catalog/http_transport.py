"""Requests to the refstore service over HTTP(S), with retries.

One keep-alive connection per thread (fetches open blobs from many threads),
plain :mod:`http.client`: nothing to install. A request is retried, with
exponential backoff and jitter, when nothing reached the service
(connection refused), and, for idempotent requests only, when the answer
was lost (connection reset, timeout) or was a 5xx: a restarting service
answers again within seconds. Non-idempotent requests that lose their
answer fail with a message saying so, rather than risk being applied twice.

The service's JSON errors become refstore's errors: 404 NotFoundError, 409
ConflictError, 422 ManifestError, anything else CatalogError, each with the
service's own message.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import random
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from refstore.errors import (
    CatalogError,
    ConflictError,
    IntegrityError,
    InvalidReferenceError,
    ManifestError,
    NotFoundError,
    RefstoreError,
)

__all__ = ["Transport", "quote"]

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_RETRY_STATUSES = frozenset({500, 502, 503, 504})
_ERRORS: dict[str, type[RefstoreError]] = {
    "not_found": NotFoundError,
    "conflict": ConflictError,
    "invalid_manifest": ManifestError,
    "integrity": IntegrityError,
    "invalid_reference": InvalidReferenceError,
}
# Failures after which the request may or may not have reached the service.
_AMBIGUOUS = (http.client.HTTPException, ConnectionError, TimeoutError, OSError)

Body = bytes | Path | None
Sink = contextlib.AbstractContextManager[Any]
_BY_STATUS: dict[int, type[RefstoreError]] = {404: NotFoundError, 409: ConflictError}


class Transport:
    """Requests to one service, as one principal (``token``; None: anonymous)."""

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        timeout: float = 60.0,
        attempts: int = 7,
        backoff: float = 0.2,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise CatalogError(
                f"{parts.scheme}://{parts.hostname or ''} is not an http(s) URL "
                "of a refstore service"
            )
        # Without any user:password@: this URL appears in messages.
        self.url = urllib.parse.urlunsplit(
            (parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", "")
        ).rstrip("/")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._base = parts.path.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._attempts = attempts
        self._backoff = backoff
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    # -- the calls --------------------------------------------------------

    def json(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str | None] | None = None,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool,
    ) -> Any:
        """Send a request (``body`` as JSON) and return the decoded answer."""
        payload = None if body is None else _encode(body)
        extra = dict(headers or {})
        if payload is not None:
            extra["Content-Type"] = "application/json"
        with self._exchange(
            method, _with_query(path, query), payload, extra, idempotent
        ) as response:
            data = response.read()
        return json.loads(data) if data else None

    def upload(self, path: str, source: Path) -> Any:
        """PUT a file's bytes (streamed); uploads are idempotent."""
        headers = {"Content-Type": "application/octet-stream"}
        with self._exchange("PUT", path, source, headers, idempotent=True) as response:
            return json.loads(response.read())

    def download(self, path: str, sink: Callable[[], Sink]) -> None:
        """Stream an answer into ``sink()``'s writer; a broken stream starts over.

        ``sink`` opens a fresh writer for each attempt and must discard it
        when its block raises.
        """
        for attempt in range(1, self._attempts + 1):
            try:
                with (
                    self._exchange("GET", path, None, {}, idempotent=True) as response,
                    sink() as writer,
                ):
                    while chunk := response.read(_CHUNK):
                        writer.write(chunk)
                return
            except _AMBIGUOUS as exc:
                if attempt == self._attempts:
                    raise self._lost(exc, "GET", path) from exc
                self._drop()
                self._pause(attempt)

    def exists(self, path: str) -> bool:
        """HEAD: True on 200, False on 404."""
        try:
            with self._exchange("HEAD", path, None, {}, idempotent=True) as response:
                response.read()
        except NotFoundError:
            return False
        return True

    def close(self) -> None:
        with self._lock:
            for connection in self._all:
                connection.close()
            self._all.clear()

    # -- one exchange, with retries ----------------------------------------

    @contextlib.contextmanager
    def _exchange(
        self,
        method: str,
        path: str,
        body: Body,
        headers: Mapping[str, str],
        idempotent: bool,
    ) -> Iterator[http.client.HTTPResponse]:
        response = self._send_with_retries(method, path, body, headers, idempotent)
        try:
            yield response
        finally:
            # An unread remainder would poison the next request on this
            # connection; drop the connection instead of reading it.
            if not response.isclosed():
                self._drop()

    def _send_with_retries(
        self,
        method: str,
        path: str,
        body: Body,
        headers: Mapping[str, str],
        idempotent: bool,
    ) -> http.client.HTTPResponse:
        for attempt in range(1, self._attempts + 1):
            last = attempt == self._attempts
            try:
                response = self._send(method, path, body, headers)
            except ConnectionRefusedError as exc:
                if last:
                    raise self._unreachable(exc) from exc
            except _AMBIGUOUS as exc:
                self._drop()
                if last or not idempotent:
                    raise self._lost(exc, method, path) from exc
            else:
                if response.status < 400:
                    return response
                if not (idempotent and response.status in _RETRY_STATUSES and not last):
                    raise _error_of(response, self.url)
                response.read()
                log.debug("%s %s answered %d; retrying", method, path, response.status)
            self._pause(attempt)
        raise AssertionError("the loop above returns or raises")

    def _send(
        self, method: str, path: str, body: Body, headers: Mapping[str, str]
    ) -> http.client.HTTPResponse:
        connection, reused = self._connection()
        try:
            return self._send_on(connection, method, path, body, headers)
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            if not reused:
                raise
            # The service closed an idle keep-alive connection before this
            # request arrived: nothing was processed, so send it again once.
            self._drop()
            connection, _ = self._connection()
            return self._send_on(connection, method, path, body, headers)

    def _send_on(
        self,
        connection: http.client.HTTPConnection,
        method: str,
        path: str,
        body: Body,
        headers: Mapping[str, str],
    ) -> http.client.HTTPResponse:
        sent = {"Accept": "application/json", **headers}
        if self._token is not None:
            sent["Authorization"] = f"Bearer {self._token}"
        target = self._base + path
        if isinstance(body, Path):
            with body.open("rb") as stream:
                sent["Content-Length"] = str(body.stat().st_size)
                connection.request(method, target, body=stream, headers=sent)
        else:
            connection.request(method, target, body=body, headers=sent)
        return connection.getresponse()

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            return connection, True
        kind = (
            http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        )
        connection = kind(self._host, self._port, timeout=self._timeout)
        self._local.connection = connection
        with self._lock:
            self._all.append(connection)
        return connection, False

    def _drop(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            return
        connection.close()
        self._local.connection = None
        with self._lock, contextlib.suppress(ValueError):
            self._all.remove(connection)

    def _pause(self, attempt: int) -> None:
        delay = min(5.0, self._backoff * 2 ** (attempt - 1))
        time.sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311

    def _unreachable(self, exc: BaseException) -> CatalogError:
        return CatalogError(
            f"cannot reach the refstore service at {self.url} ({exc}); check "
            "that it runs and that REFSTORE_URL names it"
        )

    def _lost(self, exc: BaseException, method: str, path: str) -> CatalogError:
        return CatalogError(
            f"the connection to {self.url} broke during {method} {path} ({exc!r}); "
            "the request may or may not have been applied: check, then retry"
        )


def _encode(body: Any) -> bytes:
    try:
        return json.dumps(body, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise CatalogError(
            f"the request cannot be sent: {exc}; use strings, finite numbers, "
            "booleans, None, lists and dicts"
        ) from exc


def _with_query(path: str, query: Mapping[str, str | None] | None) -> str:
    given = {key: value for key, value in (query or {}).items() if value is not None}
    return f"{path}?{urllib.parse.urlencode(given)}" if given else path


def _error_of(response: http.client.HTTPResponse, url: str) -> RefstoreError:
    raw = response.read()
    try:
        data = json.loads(raw)
        code, detail = str(data["error"]), str(data["detail"])
    except (ValueError, KeyError, TypeError):
        code, detail = "http_error", raw[:200].decode(errors="replace")
    kind = _ERRORS.get(code) or _BY_STATUS.get(response.status, CatalogError)
    if kind is CatalogError:
        detail = f"{detail} (HTTP {response.status} from {url})"
    return kind(detail)


def quote(*parts: str) -> str:
    """Path segments, each percent-encoded."""
    return "/" + "/".join(urllib.parse.quote(part, safe="") for part in parts)
