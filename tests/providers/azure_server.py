"""A protocol-level Azure Blob service with blob versions, for tests.

No emulator reachable here keeps Azure blob versions (Azurite has none), so
the version-id paths of the Azure provider are tested against this server.
It answers the few Blob REST calls the provider sends, as Azure's REST
reference documents them (service version 2019-12-12 and later):

* Get Blob Properties (HEAD) and Get Blob (GET), with ``versionid``,
  ``x-ms-range`` / ``Range`` and ``If-Match``; answers carry ``ETag``,
  ``Content-MD5`` (``x-ms-blob-content-md5`` on ranged reads),
  ``x-ms-version-id`` and ``x-ms-is-current-version``;
* List Blobs (``restype=container&comp=list``) with ``prefix``, ``marker``,
  ``maxresults`` and ``include=versions,metadata``: ``<Blob>`` elements with
  ``<VersionId>``, ``<IsCurrentVersion>`` on the current version only, and
  ``<Properties>`` whose ``<Etag>`` is unquoted, dates in RFC 1123;
* errors as ``<Error><Code/><Message/></Error>`` with ``x-ms-error-code``
  (HEAD answers carry only the header): ContainerNotFound, BlobNotFound,
  ConditionNotMet, InvalidRange, AuthenticationFailed,
  AuthorizationPermissionMismatch, NoAuthenticationInformation, ServerBusy.

The account has blob versioning: every write makes a new current version,
and deleting a blob leaves its versions with no current one. Requests are
authorised by SAS tokens that the server issued (the ``sig`` names the token;
its ``sp`` permissions are enforced), which stands in for signature checks.
Data is arranged through the methods of :class:`BlobServer`, not over HTTP.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime
import email.utils
import hashlib
import re
import secrets
import socket
import threading
import uuid
from collections import Counter, deque
from collections.abc import Mapping
from xml.sax.saxutils import escape, quoteattr

from aiohttp import web

SERVICE_VERSION = "2025-01-05"
MAX_RESULTS = 5000
_RANGE = re.compile(r"bytes=(?P<start>[0-9]+)-(?P<end>[0-9]*)")

_MESSAGES = {
    "AuthenticationFailed": (
        "Server failed to authenticate the request. Make sure the value of "
        "Authorization header is formed correctly including the signature."
    ),
    "AuthorizationPermissionMismatch": (
        "This request is not authorized to perform this operation using this "
        "permission."
    ),
    "BlobNotFound": "The specified blob does not exist.",
    "ConditionNotMet": (
        "The condition specified using HTTP conditional header(s) is not met."
    ),
    "ContainerNotFound": "The specified container does not exist.",
    "InvalidRange": (
        "The range specified is invalid for the current size of the resource."
    ),
    "NoAuthenticationInformation": (
        "Server failed to authenticate the request. Please refer to the "
        "information in the www-authenticate header."
    ),
    "NotImplemented": (
        "The requested operation is not implemented on the specified resource."
    ),
    "OutOfRangeQueryParameterValue": (
        "One of the query parameters specified in "
        "the request URI is outside the permissible range."
    ),
    "ServerBusy": (
        "The server is currently unable to receive requests. Please retry your request."
    ),
}


@dataclasses.dataclass(frozen=True)
class BlobVersion:
    """One version of a blob."""

    name: str
    version_id: str
    data: bytes
    etag: str
    created: datetime.datetime
    modified: datetime.datetime
    metadata: Mapping[str, str]

    @property
    def content_md5(self) -> str:
        return base64.b64encode(hashlib.md5(self.data).digest()).decode()


@dataclasses.dataclass
class _Blob:
    versions: list[BlobVersion]
    current: BlobVersion | None


class _RefusalError(Exception):
    def __init__(self, status: int, code: str) -> None:
        super().__init__(code)
        self.status = status
        self.code = code


class BlobServer:
    """One storage account with blob versioning, served over HTTP on 127.0.0.1."""

    def __init__(self, account: str) -> None:
        self.account = account
        self.requests: Counter[str] = Counter()
        self._containers: dict[str, dict[str, _Blob]] = {}
        self._tokens: dict[str, str] = {}
        self._faults: deque[tuple[int, str]] = deque()
        self._lock = threading.Lock()
        self._last_time = datetime.datetime.min.replace(tzinfo=datetime.UTC)
        self._etags = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.endpoint_url = ""

    # Lifecycle.

    def start(self) -> BlobServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(sock), self._loop).result(10)
        self.endpoint_url = f"http://127.0.0.1:{port}/{self.account}"
        return self

    def stop(self) -> None:
        if self._runner is not None:
            cleanup = self._runner.cleanup()
            asyncio.run_coroutine_threadsafe(cleanup, self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _serve(self, sock: socket.socket) -> None:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.SockSite(self._runner, sock).start()

    # Arranging data (what a writer on Azure would have done).

    def create_container(self, name: str) -> None:
        with self._lock:
            self._containers.setdefault(name, {})

    def put(
        self,
        container: str,
        name: str,
        data: bytes,
        metadata: Mapping[str, str] | None = None,
    ) -> BlobVersion:
        """Write a blob: a new current version, like Put Blob with versioning."""
        with self._lock:
            blobs = self._containers[container]
            now = self._next_time()
            blob = blobs.setdefault(name, _Blob([], None))
            created = blob.current.created if blob.current else now
            version = BlobVersion(
                name=name,
                version_id=_version_id(now),
                data=data,
                etag=self._next_etag(),
                created=created,
                modified=now,
                metadata=dict(metadata or {}),
            )
            blob.versions.append(version)
            blob.current = version
            return version

    def delete(self, container: str, name: str) -> None:
        """Delete Blob on the base blob: its versions stay, none is current."""
        with self._lock:
            self._containers[container][name].current = None

    def delete_version(self, container: str, name: str, version_id: str) -> None:
        """Delete Blob with ``versionid``: that version is gone for good."""
        with self._lock:
            blob = self._containers[container][name]
            blob.versions = [v for v in blob.versions if v.version_id != version_id]
            if blob.current is not None and blob.current.version_id == version_id:
                blob.current = None

    def issue_sas(self, permissions: str) -> str:
        """A SAS token query string that grants ``permissions`` (r, l, ...)."""
        signature = secrets.token_urlsafe(16)
        with self._lock:
            self._tokens[signature] = permissions
        return f"sv={SERVICE_VERSION}&sr=c&sp={permissions}&sig={signature}"

    def fail_next(
        self, count: int, status: int = 503, code: str = "ServerBusy"
    ) -> None:
        """Answer the next ``count`` requests with an error, before anything else."""
        with self._lock:
            self._faults.extend([(status, code)] * count)

    def _next_time(self) -> datetime.datetime:
        now = datetime.datetime.now(datetime.UTC)
        if now <= self._last_time:
            now = self._last_time + datetime.timedelta(microseconds=1)
        self._last_time = now
        return now

    def _next_etag(self) -> str:
        self._etags += 1
        return f"0x8DE{secrets.randbits(32):08X}{self._etags % 0x10000:04X}"

    # HTTP.

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        try:
            return self._dispatch(request)
        except _RefusalError as refusal:
            return _error(request, refusal.status, refusal.code)

    def _dispatch(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        account, _, rest = request.path.lstrip("/").partition("/")
        container, _, name = rest.partition("/")
        listing = query.get("restype") == "container" and query.get("comp") == "list"
        blob_read = (
            bool(name) and request.method in ("GET", "HEAD") and not query.get("comp")
        )
        operation = (
            "ListBlobs"
            if listing
            else {"GET": "GetBlob", "HEAD": "GetBlobProperties"}.get(request.method)
        )
        self.requests[operation if listing or blob_read else "Other"] += 1
        with self._lock:
            self._raise_fault()
            if account != self.account or not (listing or blob_read):
                raise _RefusalError(501, "NotImplemented")
            self._authorize(query, "l" if listing else "r")
            blobs = self._containers.get(container)
            if blobs is None:
                raise _RefusalError(404, "ContainerNotFound")
            if listing:
                return self._list(request, container, blobs)
            blob = blobs.get(name)
            version = _addressed_version(blob, query.get("versionid"))
            return _blob_response(request, version, blob)

    def _raise_fault(self) -> None:
        if self._faults:
            raise _RefusalError(*self._faults.popleft())

    def _authorize(self, query: Mapping[str, str], needed: str) -> None:
        signature = query.get("sig")
        if signature is None:
            raise _RefusalError(401, "NoAuthenticationInformation")
        granted = self._tokens.get(signature)
        if granted is None:
            raise _RefusalError(403, "AuthenticationFailed")
        if needed not in granted:
            raise _RefusalError(403, "AuthorizationPermissionMismatch")

    def _list(
        self, request: web.Request, container: str, blobs: dict[str, _Blob]
    ) -> web.Response:
        query = request.query
        include = set(filter(None, query.get("include", "").split(",")))
        prefix = query.get("prefix", "")
        limit = int(query.get("maxresults", MAX_RESULTS))
        if limit <= 0:
            raise _RefusalError(400, "OutOfRangeQueryParameterValue")
        if "delimiter" in query:
            raise _RefusalError(501, "NotImplemented")
        listed = _listed_versions(blobs, prefix, "versions" in include)
        marker = _decode_marker(query.get("marker", ""))
        remaining = [v for v in listed if (v[0].name, v[0].version_id) > marker]
        page = remaining[: min(limit, MAX_RESULTS)]
        more = len(remaining) > len(page)
        next_marker = _encode_marker(page[-1][0]) if more else ""
        endpoint = self._service_endpoint(request)
        body = _listing_xml(endpoint, container, query, page, include, next_marker)
        return web.Response(
            status=200,
            body=body.encode(),
            headers={**_common_headers(request), "Content-Type": "application/xml"},
        )

    def _service_endpoint(self, request: web.Request) -> str:
        return f"http://{request.host}/{self.account}/"


def _version_id(moment: datetime.datetime) -> str:
    # Azure's version ids are the write time with seven fractional digits.
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _addressed_version(blob: _Blob | None, version_id: str | None) -> BlobVersion:
    if blob is None:
        raise _RefusalError(404, "BlobNotFound")
    if version_id is None:
        if blob.current is None:
            raise _RefusalError(404, "BlobNotFound")
        return blob.current
    for version in blob.versions:
        if version.version_id == version_id:
            return version
    raise _RefusalError(404, "BlobNotFound")


def _blob_response(
    request: web.Request, version: BlobVersion, blob: _Blob | None
) -> web.Response:
    _check_conditions(request, version)
    size = len(version.data)
    current = blob is not None and blob.current is version
    headers = {**_common_headers(request), **_blob_headers(version, current)}
    span = _requested_range(request, size)
    if span is None:
        headers["Content-MD5"] = version.content_md5
        body = version.data
        status = 200
    else:
        start, end = span
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
        headers["x-ms-blob-content-md5"] = version.content_md5
        body = version.data[start : end + 1]
        status = 206
    headers["Content-Length"] = str(len(body))
    if request.method == "HEAD":
        headers["Content-Length"] = str(size)
        return web.Response(status=200, headers=headers)
    return web.Response(status=status, body=body, headers=headers)


def _check_conditions(request: web.Request, version: BlobVersion) -> None:
    wanted = request.headers.get("If-Match")
    if wanted is None or wanted.strip() == "*":
        return
    etags = {tag.strip().strip('"') for tag in wanted.split(",")}
    if version.etag not in etags:
        raise _RefusalError(412, "ConditionNotMet")


def _requested_range(request: web.Request, size: int) -> tuple[int, int] | None:
    header = request.headers.get("x-ms-range") or request.headers.get("Range")
    if request.method != "GET" or not header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    start = int(match["start"])
    if start >= size:
        raise _RefusalError(416, "InvalidRange")
    end = int(match["end"]) if match["end"] else size - 1
    return start, min(end, size - 1)


def _blob_headers(version: BlobVersion, current: bool) -> dict[str, str]:
    headers = {
        "ETag": f'"{version.etag}"',
        "Last-Modified": _http_date(version.modified),
        "x-ms-creation-time": _http_date(version.created),
        "Content-Type": "application/octet-stream",
        "Accept-Ranges": "bytes",
        "x-ms-blob-type": "BlockBlob",
        "x-ms-lease-state": "available",
        "x-ms-lease-status": "unlocked",
        "x-ms-server-encrypted": "true",
        "x-ms-version-id": version.version_id,
        "x-ms-is-current-version": "true" if current else "false",
    }
    headers.update({f"x-ms-meta-{k}": v for k, v in version.metadata.items()})
    return headers


def _listed_versions(
    blobs: dict[str, _Blob], prefix: str, versions: bool
) -> list[tuple[BlobVersion, bool]]:
    listed: list[tuple[BlobVersion, bool]] = []
    for name in sorted(blobs):
        if not name.startswith(prefix):
            continue
        blob = blobs[name]
        if versions:
            listed.extend((v, v is blob.current) for v in blob.versions)
        elif blob.current is not None:
            listed.append((blob.current, True))
    return listed


def _listing_xml(
    endpoint: str,
    container: str,
    query: Mapping[str, str],
    page: list[tuple[BlobVersion, bool]],
    include: set[str],
    next_marker: str,
) -> str:
    head = [
        '<?xml version="1.0" encoding="utf-8"?>',
        (
            f"<EnumerationResults ServiceEndpoint={quoteattr(endpoint)} "
            f"ContainerName={quoteattr(container)}>"
        ),
    ]
    for parameter, element in (
        ("prefix", "Prefix"),
        ("marker", "Marker"),
        ("maxresults", "MaxResults"),
    ):
        if parameter in query:
            head.append(_element(element, query[parameter]))
    blobs = [_blob_xml(version, current, include) for version, current in page]
    tail = [_element("NextMarker", next_marker), "</EnumerationResults>"]
    return "".join([*head, "<Blobs>", *blobs, "</Blobs>", *tail])


def _blob_xml(version: BlobVersion, current: bool, include: set[str]) -> str:
    parts = [
        "<Blob>",
        _element("Name", version.name),
        _element("VersionId", version.version_id),
    ]
    if current:
        parts.append("<IsCurrentVersion>true</IsCurrentVersion>")
    parts.append(_properties_xml(version))
    if "metadata" in include:
        meta = "".join(_element(k, v) for k, v in version.metadata.items())
        parts.append(f"<Metadata>{meta}</Metadata>")
    parts.append("</Blob>")
    return "".join(parts)


def _properties_xml(version: BlobVersion) -> str:
    fields = [
        ("Creation-Time", _http_date(version.created)),
        ("Last-Modified", _http_date(version.modified)),
        ("Etag", version.etag),
        ("Content-Length", str(len(version.data))),
        ("Content-Type", "application/octet-stream"),
        ("Content-Encoding", ""),
        ("Content-Language", ""),
        ("Content-CRC64", ""),
        ("Content-MD5", version.content_md5),
        ("Cache-Control", ""),
        ("Content-Disposition", ""),
        ("BlobType", "BlockBlob"),
        ("AccessTier", "Hot"),
        ("AccessTierInferred", "true"),
        ("LeaseStatus", "unlocked"),
        ("LeaseState", "available"),
        ("ServerEncrypted", "true"),
    ]
    inner = "".join(_element(name, value) for name, value in fields)
    return f"<Properties>{inner}</Properties>"


def _element(name: str, value: str) -> str:
    if not value:
        return f"<{name} />"
    return f"<{name}>{escape(value)}</{name}>"


def _encode_marker(version: BlobVersion) -> str:
    raw = f"{version.name}\n{version.version_id}".encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_marker(marker: str) -> tuple[str, str]:
    if not marker:
        return ("", "")
    name, _, version_id = base64.urlsafe_b64decode(marker).decode().partition("\n")
    return name, version_id


def _common_headers(request: web.Request) -> dict[str, str]:
    return {
        "x-ms-request-id": str(uuid.uuid4()),
        "x-ms-version": request.headers.get("x-ms-version", SERVICE_VERSION),
        "Server": "Windows-Azure-Blob/1.0 Microsoft-HTTPAPI/2.0",
    }


def _error(request: web.Request, status: int, code: str) -> web.Response:
    headers = {**_common_headers(request), "x-ms-error-code": code}
    if request.method == "HEAD":
        return web.Response(status=status, headers=headers)
    request_id = headers["x-ms-request-id"]
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    message = f"{_MESSAGES.get(code, code)}\nRequestId:{request_id}\nTime:{now}0Z"
    body = (
        '<?xml version="1.0" encoding="utf-8"?>'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message></Error>"
    )
    headers["Content-Type"] = "application/xml"
    return web.Response(status=status, body=body.encode(), headers=headers)


def _http_date(moment: datetime.datetime) -> str:
    return email.utils.format_datetime(moment, usegmt=True)
