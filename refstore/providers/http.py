"""HTTP(S) servers behind the contract: one URL is one object, without versions.

Requests go through aiohttp on one event loop that runs in a thread owned by
the provider; the contract stays synchronous. :meth:`HttpProvider.close`
closes the session and stops the loop (the provider stays usable).

Options come from ``Settings.store_options(ref)``, per host
(``[stores."https://example.org"]``) or for every host (``[stores.https]``):

``headers``
    extra request headers, for example ``{Authorization = "Bearer ..."}``;
``timeout``
    seconds to wait for a connection, and then for each next chunk (30);
``max_attempts``
    total attempts per request, retries included (5);
``retry_backoff``
    seconds before the first retry, doubled for each next one (0.5).

Proxies and ``.netrc`` credentials come from the standard environment.

What a stat records:

* ``etag``: the ETag without quotes. A weak ETag keeps its ``W/`` prefix and
  is flagged ``weakETag`` in ``extra``: it can be compared, but If-Match
  needs a strong one;
* ``size``: Content-Length (counted from the body when a server sends none);
* ``last_modified``: Last-Modified, also in ``extra["lastModified"]`` so that
  a manifest keeps it;
* checksums: ``md5`` from Content-MD5 and ``sha256`` from Repr-Digest or
  Digest, as hex; ``sha256`` of the body when it had to be counted anyway.

A stat is one HEAD. Only a server that refuses HEAD (405, 501; or 403, since
presigned URLs are signed for GET alone) is asked with a GET, whose body is
not read. A read is a GET conditional on the record: If-Match for a strong
ETag, else If-Unmodified-Since; the ETag served is compared too, so a server
that ignores preconditions cannot hand over other bytes. 429 and 5xx
answers, and dropped connections, are retried with exponential backoff,
honouring Retry-After up to a minute.

HTTP has no listing and no versions: :meth:`HttpProvider.scan` raises, and
capture treats every URL as one object (``lists_prefixes = False``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import io
import logging
import random
import threading
import time
from collections.abc import Coroutine, Iterator, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, TypeVar

import aiohttp
import yarl

from refstore.config import Settings
from refstore.errors import (
    AccessDeniedError,
    ConfigError,
    CredentialsError,
    EndpointError,
    IntegrityError,
    InvalidReferenceError,
    ObjectNotFoundError,
    RefstoreError,
    StoreError,
)
from refstore.manifest import ObjectInfo
from refstore.providers.base import RequestCounter, Versioning
from refstore.providers.http_headers import (
    byte_range,
    object_info,
    parse_etag,
    preconditions,
    retry_after,
    same_entity,
)
from refstore.uri import ObjectRef

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer
    from multidict import CIMultiDictProxy

__all__ = ["HttpProvider", "translate_error"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

KNOWN_OPTIONS = frozenset({"headers", "timeout", "max_attempts", "retry_backoff"})
DEFAULT_TIMEOUT = 30.0
DEFAULT_ATTEMPTS = 5
DEFAULT_BACKOFF = 0.5
MAX_RETRY_WAIT = 60.0
MAX_CONNECTIONS = 64
READ_BUFFER = 256 * 1024

_HEAD_REFUSED = frozenset({403, 405, 501})
# 501 and 505 say what the server will never do; retrying changes nothing.
_NOT_RETRIED = frozenset({501, 505})
_SESSION_HEADERS = {
    # Bytes exactly as stored: a compressed transfer would change both the
    # size and the bytes that checksums are computed over.
    "Accept-Encoding": "identity",
    "User-Agent": "refstore",
}


class HttpProvider:
    """Resources on HTTP(S) servers, each URL one unversioned object."""

    schemes: ClassVar[tuple[str, ...]] = ("http", "https")
    lists_prefixes: ClassVar[bool] = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.requests = RequestCounter()
        self._lock = threading.Lock()
        self._runner: _Runner | None = None
        self._options: dict[str, _Options] = {}

    def stat(self, ref: ObjectRef) -> ObjectInfo:
        _check_unpinned(ref)
        options = self._options_for(ref)
        runner = self._runner_or_new()
        with _translated(ref):
            info = runner.run(self._stat(runner.session, ref, options))
        if info.etag is None and info.last_modified is None and not info.checksums:
            log.warning(
                "%s sends no ETag, Last-Modified or checksum; only its size is "
                "recorded, so a changed resource of the same size goes unnoticed",
                ref,
            )
        return info

    def scan(
        self,
        prefix: ObjectRef,
        *,
        versions: bool = False,
        start_after: str | None = None,
    ) -> Iterator[ObjectInfo]:
        raise StoreError(
            f"HTTP has no listing; reference each URL on its own instead of "
            f"the prefix {prefix}"
        )

    def read(
        self, info: ObjectInfo, *, start: int = 0, end: int | None = None
    ) -> BinaryIO:
        if start < 0:
            raise ValueError(f"start must be 0 or more, not {start}")
        _check_unpinned(info.ref)
        if end is not None and end <= start:
            return io.BytesIO(b"")
        options = self._options_for(info.ref)
        runner = self._runner_or_new()
        with _translated(info.ref):
            opening = self._open(runner.session, info, (start, end), options)
            response = runner.run(opening)
        limit = None if end is None else end - start
        body = _Body(runner, response, info.ref, limit)
        return io.BufferedReader(body, buffer_size=READ_BUFFER)

    def versioning(self, ref: ObjectRef) -> Versioning:
        return Versioning.OFF

    def close(self) -> None:
        """Close the session and stop the event loop; the provider stays usable."""
        with self._lock:
            runner, self._runner = self._runner, None
        if runner is not None:
            runner.close()

    async def _stat(
        self, session: aiohttp.ClientSession, ref: ObjectRef, options: _Options
    ) -> ObjectInfo:
        head = await self._send(session, "HEAD", ref, options)
        head.release()
        if head.status not in _HEAD_REFUSED:
            _raise_for_status(head)
            if head.content_length is not None:
                return object_info(ref, head.headers, head.content_length)
        log.debug("HEAD %s answered %d; asking with GET", ref, head.status)
        get = await self._send(session, "GET", ref, options)
        try:
            _raise_for_status(get)
            if get.content_length is not None:
                return object_info(ref, get.headers, get.content_length)
            size, sha256 = await _measure(get.content)
            return object_info(ref, get.headers, size, sha256)
        finally:
            get.release()

    async def _open(
        self,
        session: aiohttp.ClientSession,
        info: ObjectInfo,
        span: tuple[int, int | None],
        options: _Options,
    ) -> aiohttp.ClientResponse:
        start, end = span
        headers = {**preconditions(info), **byte_range(start, end)}
        response = await self._send(session, "GET", info.ref, options, headers)
        try:
            _raise_for_status(response)
            _check_unchanged(info, response.headers)
            if start and response.status == 200:
                # The server ignored Range and sends the whole object.
                await _discard(response.content, start)
        except BaseException:
            response.release()
            raise
        return response

    async def _send(
        self,
        session: aiohttp.ClientSession,
        method: str,
        ref: ObjectRef,
        options: _Options,
        headers: Mapping[str, str] | None = None,
    ) -> aiohttp.ClientResponse:
        """One request, retried on 429, 5xx and dropped connections."""
        request = _Request(session, method, ref, {**options.headers, **(headers or {})})
        started = time.monotonic()
        for attempt in range(1, options.max_attempts + 1):
            self.requests.add(method)
            last = attempt == options.max_attempts
            response = await request.attempt(options.timeout, last)
            if response is not None and not _is_retried(response.status):
                _log_retried(request, response.status, attempt, started)
                return response
            if response is not None and last:
                response.release()
                raise _HttpStatusError(response, attempt)
            wait = options.backoff(attempt)
            if response is not None:
                wait = retry_after(response.headers) or wait
                response.release()
            await asyncio.sleep(min(wait, MAX_RETRY_WAIT))
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _runner_or_new(self) -> _Runner:
        with self._lock:
            if self._runner is None:
                self._runner = _Runner()
            return self._runner

    def _options_for(self, ref: ObjectRef) -> _Options:
        cached = self._options.get(ref.location)
        if cached is None:
            cached = _Options.of(ref, self.settings.store_options(ref))
            self._options[ref.location] = cached
        return cached


@dataclasses.dataclass(frozen=True)
class _Options:
    """The validated options for one host."""

    headers: Mapping[str, str]
    timeout: aiohttp.ClientTimeout
    max_attempts: int
    retry_backoff: float

    @classmethod
    def of(cls, ref: ObjectRef, options: Mapping[str, Any]) -> _Options:
        unknown = sorted(set(options) - KNOWN_OPTIONS)
        if unknown:
            log.warning(
                "ignoring unknown option(s) %s for %s in the refstore config; "
                "HTTP hosts accept %s",
                ", ".join(unknown),
                ref.location,
                ", ".join(sorted(KNOWN_OPTIONS)),
            )
        seconds = _number(options, "timeout", DEFAULT_TIMEOUT)
        return cls(
            headers=_headers(options),
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=seconds, sock_read=seconds
            ),
            max_attempts=int(_number(options, "max_attempts", DEFAULT_ATTEMPTS, 1)),
            retry_backoff=_number(options, "retry_backoff", DEFAULT_BACKOFF, 0),
        )

    def backoff(self, attempt: int) -> float:
        # Jitter spreads the retries of many concurrent transfers apart.
        jitter = 0.5 + random.random() / 2  # noqa: S311 (not cryptography)
        return float(self.retry_backoff * 2 ** (attempt - 1) * jitter)


def _number(
    options: Mapping[str, Any], name: str, default: float, minimum: float = 0.001
) -> float:
    value = options.get(name, default)
    valid = isinstance(value, int | float) and not isinstance(value, bool)
    if not valid or value < minimum:
        raise ConfigError(
            f"{name} = {value!r} in the refstore config must be a number of "
            f"{minimum:g} or more"
        )
    if name == "max_attempts" and value != int(value):
        raise ConfigError(
            f"max_attempts = {value!r} in the refstore config must be a whole number"
        )
    return float(value)


def _headers(options: Mapping[str, Any]) -> dict[str, str]:
    headers = options.get("headers", {})
    valid = isinstance(headers, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    )
    if not valid:
        raise ConfigError(
            f"headers = {headers!r} in the refstore config must be a table of "
            'strings, for example headers = {Authorization = "Bearer ..."}'
        )
    return dict(headers)


def _check_unpinned(ref: ObjectRef) -> None:
    if ref.version is not None:
        raise InvalidReferenceError(
            f"{ref}: HTTP resources have no versions; remove the version pin"
        )


def _is_retried(status: int) -> bool:
    return status == 429 or (status >= 500 and status not in _NOT_RETRIED)


@dataclasses.dataclass(frozen=True)
class _Request:
    """What every attempt of one request sends."""

    session: aiohttp.ClientSession
    method: str
    ref: ObjectRef
    headers: Mapping[str, str]

    async def attempt(
        self, timeout: aiohttp.ClientTimeout, last: bool
    ) -> aiohttp.ClientResponse | None:
        """The response, or None after a failure worth retrying."""
        url = yarl.URL(self.ref.unpinned_uri)
        log.debug("HTTP %s %s", self.method, url)
        try:
            return await self.session.request(
                self.method, url, headers=self.headers, timeout=timeout
            )
        except aiohttp.ClientSSLError:
            raise
        except (aiohttp.ClientConnectionError, TimeoutError) as exc:
            if last:
                raise
            log.debug("HTTP %s %s failed (%s); retrying", self.method, url, exc)
            return None


def _log_retried(request: _Request, status: int, attempts: int, started: float) -> None:
    if attempts > 1:
        log.info(
            "HTTP %s %s answered %d after %d attempts, %.1f s",
            request.method,
            request.ref,
            status,
            attempts,
            time.monotonic() - started,
        )


def _check_unchanged(info: ObjectInfo, headers: CIMultiDictProxy[str]) -> None:
    served, _ = parse_etag(headers.get("ETag"))
    if info.etag is None or served is None:
        return
    if not same_entity(served, info.etag):
        raise IntegrityError(
            f"{info.ref} serves ETag {served}, not the recorded {info.etag}; the "
            "resource changed since it was recorded: record the artifact again"
        )


async def _discard(content: aiohttp.StreamReader, count: int) -> None:
    while count > 0:
        chunk = await content.read(min(count, READ_BUFFER))
        if not chunk:
            return
        count -= len(chunk)


async def _measure(content: aiohttp.StreamReader) -> tuple[int, str]:
    size = 0
    digest = hashlib.sha256()
    while chunk := await content.read(READ_BUFFER):
        size += len(chunk)
        digest.update(chunk)
    return size, digest.hexdigest()


# The event loop the provider owns, and the body a read returns.


class _Runner:
    """One event loop in a daemon thread, with the aiohttp session living on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="refstore-http", daemon=True
        )
        self._thread.start()
        self.session = self.run(_new_session())

    def run(self, coroutine: Coroutine[Any, Any, _T]) -> _T:
        future = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        try:
            return future.result()
        except BaseException:
            # An interrupted caller must not leave the request running.
            future.cancel()
            raise

    def close(self) -> None:
        self.run(self.session.close())
        # Name lookups ran in the loop's default executor; its threads go too.
        self.run(self.loop.shutdown_default_executor())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


async def _new_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS),
        headers=_SESSION_HEADERS,
        auto_decompress=False,
        trust_env=True,
    )


async def _release(response: aiohttp.ClientResponse) -> None:
    response.release()


class _Body(io.RawIOBase):
    """A GET response body, read from the provider's loop, errors translated."""

    def __init__(
        self,
        runner: _Runner,
        response: aiohttp.ClientResponse,
        ref: ObjectRef,
        limit: int | None,
    ) -> None:
        super().__init__()
        self._runner = runner
        self._response = response
        self._ref = ref
        self._left = limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        wanted = len(view) if self._left is None else min(len(view), self._left)
        if wanted == 0:
            return 0
        with _translated(self._ref):
            data = self._runner.run(self._response.content.read(wanted))
        view[: len(data)] = data
        if self._left is not None:
            self._left -= len(data)
        return len(data)

    def close(self) -> None:
        # After the provider closed, the loop is gone and the session with it.
        if not self.closed and not self._runner.loop.is_closed():
            self._runner.run(_release(self._response))
        super().close()


# Error translation: every failed request becomes a refstore error here.


class _HttpStatusError(Exception):
    """A response whose status says the request failed."""

    def __init__(self, response: aiohttp.ClientResponse, attempts: int = 1) -> None:
        super().__init__(f"{response.method} {response.url}: {response.status}")
        self.status = response.status
        self.reason = response.reason or ""
        self.method = response.method
        self.attempts = attempts


def _raise_for_status(response: aiohttp.ClientResponse) -> None:
    if response.status >= 400:
        response.release()
        raise _HttpStatusError(response)


@contextlib.contextmanager
def _translated(ref: ObjectRef) -> Iterator[None]:
    try:
        yield
    except (_HttpStatusError, aiohttp.ClientError, TimeoutError) as exc:
        raise translate_error(exc, ref) from exc


def translate_error(exc: Exception, ref: ObjectRef) -> RefstoreError:
    """The refstore error for a failed HTTP request concerning ``ref``."""
    if isinstance(exc, _HttpStatusError):
        return _status_error(exc, ref)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return EndpointError(
            f"{ref.location} closed the connection before sending all of {ref} "
            f"({exc}); try again"
        )
    if isinstance(exc, aiohttp.InvalidURL):
        return InvalidReferenceError(f"{ref} is not a URL aiohttp can request")
    if isinstance(exc, aiohttp.ClientConnectionError | TimeoutError):
        return EndpointError(
            f"cannot reach {ref.location} for {ref} ({exc or type(exc).__name__}); "
            "check the URL, the network, and the proxy settings"
        )
    return StoreError(f"HTTP request for {ref} failed: {exc}")


def _status_error(exc: _HttpStatusError, ref: ObjectRef) -> RefstoreError:
    status = exc.status
    answered = f"{ref.location} answered {status} {exc.reason}".rstrip()
    if status == 401:
        return CredentialsError(
            f"{answered} to {exc.method} {ref}: credentials are missing or "
            f'rejected; set headers = {{Authorization = "..."}} for '
            f"{ref.location} in the refstore config"
        )
    if status == 403:
        return AccessDeniedError(
            f"access denied: {answered} to {exc.method} {ref}; the credentials "
            f"in use may not read it (see headers for {ref.location} in the "
            "refstore config)"
        )
    if status in (404, 410):
        return ObjectNotFoundError(f"no object at {ref} ({answered}); check the URL")
    if status == 412:
        return IntegrityError(
            f"{ref} changed since it was recorded: the server refused the read "
            "conditional on the recorded ETag or date; record the artifact again"
        )
    if status == 416:
        return StoreError(f"{answered}: the byte range asked of {ref} lies outside it")
    tries = f" after {exc.attempts} attempts" if exc.attempts > 1 else ""
    return StoreError(f"{answered} to {exc.method} {ref}{tries}")
