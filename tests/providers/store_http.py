"""An HTTP server for the provider tests, and its Store for the conformance suite.

Fixtures (a pytest plugin, listed in ``tests/conftest.py``):

* ``http_server`` (session): an :class:`HttpServer`, a real aiohttp server on
  127.0.0.1 that serves resources from memory;
* ``http_files`` (function): the same server with its behaviour switches set
  back to normal after the test;
* ``http_store`` (function): a :class:`~tests.providers.stores.Store` on it.

The server speaks enough HTTP to test a client honestly: strong ETags
(quoted MD5s), Last-Modified from a clock that moves a minute per write,
HEAD, GET, single byte ranges, If-Match, If-None-Match and
If-Unmodified-Since. Switches make it refuse HEAD, fail the next requests
(429/503 with Retry-After), send weak or no ETags, ignore ranges or
preconditions, or answer without Content-Length. Paths under ``private/``
need ``Authorization: Bearer TOKEN`` (401 without it, 403 with another);
paths under ``forbidden/`` answer 403 to everyone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import email.utils
import hashlib
import re
import socket
import threading
import urllib.parse
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from refstore.config import Settings
from refstore.providers.http import HttpProvider
from refstore.uri import ObjectRef

TOKEN = "refstore-test-token"
NO_VERSIONS = "HTTP has no object versions"
_EPOCH = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


@dataclasses.dataclass
class Resource:
    body: bytes
    etag: str
    last_modified: datetime.datetime
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Switches:
    """How the server misbehaves; all off by default."""

    refuse_head: bool = False
    #: (status, Retry-After or None) answered to the next requests, in order
    failures: list[tuple[int, str | None]] = dataclasses.field(default_factory=list)
    weak_etags: bool = False
    send_etag: bool = True
    send_last_modified: bool = True
    send_length: bool = True
    ignore_range: bool = False
    ignore_preconditions: bool = False


@dataclasses.dataclass(frozen=True)
class Logged:
    method: str
    path: str
    headers: Mapping[str, str]


class HttpServer:
    """A real aiohttp server in a background thread, serving from memory."""

    def __init__(self) -> None:
        self.resources: dict[str, Resource] = {}
        self.gone: set[str] = set()
        self.switches = Switches()
        self.requests: list[Logged] = []
        self._lock = threading.Lock()
        self._clock = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._runner: web.AppRunner | None = None
        self.host = ""

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def start(self) -> HttpServer:
        self._thread.start()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.host = f"127.0.0.1:{sock.getsockname()[1]}"
        asyncio.run_coroutine_threadsafe(self._serve(sock), self._loop).result()
        return self

    def stop(self) -> None:
        if self._runner is not None:
            cleanup = self._runner.cleanup()
            asyncio.run_coroutine_threadsafe(cleanup, self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def put(self, path: str, body: bytes, **headers: str) -> Resource:
        """Store ``body`` at ``path`` (not percent-encoded); a new Last-Modified."""
        with self._lock:
            self._clock += 1
            modified = _EPOCH + datetime.timedelta(minutes=self._clock)
            resource = Resource(body, hashlib.md5(body).hexdigest(), modified, headers)
            self.resources[path] = resource
            self.gone.discard(path)
        return resource

    def delete(self, path: str, *, gone: bool = False) -> None:
        """Remove ``path``; with ``gone`` it answers 410 instead of 404."""
        with self._lock:
            self.resources.pop(path, None)
            if gone:
                self.gone.add(path)

    def reset(self) -> None:
        self.switches = Switches()
        self.requests.clear()

    def logged(self, path: str) -> list[Logged]:
        return [entry for entry in self.requests if entry.path == path]

    async def _serve(self, sock: socket.socket) -> None:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path.lstrip("/")
        self.requests.append(Logged(request.method, path, dict(request.headers)))
        refusal = self._refusal(request, path)
        if refusal is not None:
            return refusal
        resource = self.resources.get(path)
        if resource is None:
            return web.Response(status=410 if path in self.gone else 404)
        headers = self._headers(resource)
        failed = self._failed_precondition(request, resource)
        if failed is not None:
            return web.Response(status=failed, headers=headers)
        return await self._send(request, resource, headers)

    def _refusal(self, request: web.Request, path: str) -> web.Response | None:
        switches = self.switches
        if switches.failures:
            status, retry_after = switches.failures.pop(0)
            headers = {} if retry_after is None else {"Retry-After": retry_after}
            return web.Response(status=status, headers=headers)
        if request.method == "HEAD" and switches.refuse_head:
            return web.Response(status=405, headers={"Allow": "GET"})
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405, headers={"Allow": "GET, HEAD"})
        if path.startswith("forbidden/"):
            return web.Response(status=403)
        if path.startswith("private/"):
            authorization = request.headers.get("Authorization")
            if authorization is None:
                return web.Response(status=401, headers={"WWW-Authenticate": "Bearer"})
            if authorization != f"Bearer {TOKEN}":
                return web.Response(status=403)
        return None

    def _headers(self, resource: Resource) -> dict[str, str]:
        headers = dict(resource.headers)
        if self.switches.send_etag:
            weak = "W/" if self.switches.weak_etags else ""
            headers["ETag"] = f'{weak}"{resource.etag}"'
        if self.switches.send_last_modified:
            headers["Last-Modified"] = email.utils.format_datetime(
                resource.last_modified, usegmt=True
            )
        return headers

    def _failed_precondition(
        self, request: web.Request, resource: Resource
    ) -> int | None:
        if self.switches.ignore_preconditions:
            return None
        if_match = request.headers.get("If-Match")
        if if_match is not None and not _strong_match(if_match, resource):
            return 412
        since = request.headers.get("If-Unmodified-Since")
        if since is not None and resource.last_modified > _parse_date(since):
            return 412
        if_none_match = request.headers.get("If-None-Match")
        if if_none_match is not None and resource.etag in if_none_match:
            return 304
        return None

    async def _send(
        self, request: web.Request, resource: Resource, headers: dict[str, str]
    ) -> web.StreamResponse:
        body, status = resource.body, 200
        wanted = request.headers.get("Range")
        if wanted is not None and not self.switches.ignore_range:
            span = _span(wanted, len(body))
            if span is None:
                headers["Content-Range"] = f"bytes */{len(body)}"
                return web.Response(status=416, headers=headers)
            start, end = span
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{len(body)}"
            body, status = body[start:end], 206
        if self.switches.send_length:
            return web.Response(status=status, body=body, headers=headers)
        response = web.StreamResponse(status=status, headers=headers)
        response.enable_chunked_encoding()
        await response.prepare(request)
        if request.method == "GET":
            await response.write(body)
        await response.write_eof()
        return response


def _strong_match(header: str, resource: Resource) -> bool:
    if header.strip() == "*":
        return True
    tags = [tag.strip() for tag in header.split(",")]
    return f'"{resource.etag}"' in tags


def _parse_date(value: str) -> datetime.datetime:
    return email.utils.parsedate_to_datetime(value)


def _span(header: str, size: int) -> tuple[int, int] | None:
    match = _RANGE.fullmatch(header.strip())
    if match is None or not (match[1] or match[2]):
        return None
    if not match[1]:
        suffix = int(match[2])
        return max(0, size - suffix), size
    start = int(match[1])
    end = min(size, int(match[2]) + 1) if match[2] else size
    if start >= size:
        return None
    return start, end


class HttpStore:
    """The conformance suite's view of the test server: one URL, one object."""

    name = "http"
    no_versions: str | None = NO_VERSIONS
    no_version_listing: str | None = NO_VERSIONS
    no_listing: str | None = "HTTP has no listing; every URL is one object"
    no_denied_access: str | None = None
    no_missing_bucket: str | None = (
        "HTTP has no buckets; an unknown host is an unreachable endpoint"
    )
    no_etag: str | None = None
    checksums: tuple[str, ...] = ()
    page_size: int | None = None

    def __init__(self, server: HttpServer, home: Path, **options: Any) -> None:
        self.server = server
        # Quick retries keep the retry tests short.
        defaults = {"retry_backoff": 0.01, "max_attempts": 3, **options}
        self.settings = Settings(home=home, stores={"http": defaults})
        self.provider = HttpProvider(self.settings)

    def make_bucket(self) -> str:
        """A fresh top-level folder of the server."""
        return f"b-{uuid.uuid4().hex[:12]}"

    def ref(self, bucket: str, key: str, version: str | None = None) -> ObjectRef:
        path = urllib.parse.quote(f"{bucket}/{key}", safe="/")
        return ObjectRef("http", self.server.host, path, version)

    def put(self, bucket: str, key: str, body: bytes) -> ObjectRef:
        self.server.put(f"{bucket}/{key}", body)
        return self.ref(bucket, key)

    def put_many(self, bucket: str, objects: dict[str, bytes]) -> None:
        for key, body in objects.items():
            self.server.put(f"{bucket}/{key}", body)

    def delete(self, bucket: str, key: str) -> None:
        self.server.delete(f"{bucket}/{key}")

    def delete_version(self, ref: ObjectRef) -> None:
        raise NotImplementedError(self.no_versions)

    def missing_bucket(self) -> str:
        raise NotImplementedError(self.no_missing_bucket)

    def denied_ref(self) -> ObjectRef:
        self.server.put("forbidden/secret.txt", b"secret")
        return ObjectRef("http", self.server.host, "forbidden/secret.txt")

    def close(self) -> None:
        self.provider.close()


@pytest.fixture(scope="session")
def http_server() -> Iterator[HttpServer]:
    server = HttpServer().start()
    yield server
    server.stop()


@pytest.fixture
def http_files(http_server: HttpServer) -> Iterator[HttpServer]:
    http_server.reset()
    yield http_server
    http_server.reset()


@pytest.fixture
def http_store(http_files: HttpServer, tmp_path: Path) -> Iterator[HttpStore]:
    store = HttpStore(http_files, tmp_path / "refstore-home")
    yield store
    store.close()
