"""Google Cloud Storage (and fake-gcs-server) behind the contract.

Clients are per bucket. Options come from ``Settings.store_options(ref)``:

``endpoint_url``
    the JSON API endpoint (an emulator, a private endpoint);
``project``
    the project named in requests (default: the credentials' project);
``credentials_file``
    a service-account key or an authorized-user file (gcloud's login);
``anonymous``
    ``true`` for public buckets and emulators: send no credentials;
``user_project``
    the project billed for a requester-pays bucket;
``retry_timeout``
    seconds to keep retrying a failing request (default 20; 0: no retries).

With nothing configured, the SDK's standard chain applies unchanged:
STORAGE_EMULATOR_HOST (anonymous, as the SDK itself does for emulators),
GOOGLE_APPLICATION_CREDENTIALS, gcloud's application-default credentials,
the metadata server. Credentials are asked for the read-only scope. Clients
and their request counting live in :mod:`refstore.providers.gcs_client`.

Normalisation:

* The version id is the object generation, in decimal. Every object has one,
  so objects are pinned even in buckets without versioning; there an
  overwrite or delete removes the old generation for good, and reading it
  raises VersionNotFoundError.
* ETags lose any quotes. A GCS ETag is never an MD5 of the bytes (``extra``
  says ``etagIsMd5: False``), and it changes with the metageneration when
  only the object's metadata is updated; ``metageneration`` is recorded in
  ``extra`` to tell such a change from new bytes.
* ``checksums["md5"]`` is md5Hash in hex. Composite objects (made by
  compose) have no md5Hash; their ``componentCount`` goes in ``extra``.
  ``checksums["crc32c"]`` is kept base64, as GCS sends it.
* ``last_modified`` is ``updated``, the time of the last metadata change.
* In a versioned listing the live generation of a name is the one without
  ``timeDeleted``; a deleted name has none. GCS has no delete markers.

Reads ask for the stored bytes (no decompressive transcoding of gzip-encoded
objects), so that they match the recorded size and checksums.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import datetime
import functools
import io
import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar
from urllib.parse import quote

import requests
import urllib3.exceptions
from google.api_core import exceptions as api_exceptions
from google.auth.exceptions import GoogleAuthError

from refstore.config import Settings
from refstore.errors import (
    AccessDeniedError,
    BucketNotFoundError,
    CredentialsError,
    EndpointError,
    IntegrityError,
    ObjectNotFoundError,
    RefstoreError,
    StoreError,
    VersionNotFoundError,
)
from refstore.manifest import ObjectInfo
from refstore.providers.base import LifecycleRule, RequestCounter, Versioning
from refstore.providers.gcs_client import (
    TIMEOUT,
    ClientKey,
    Handle,
    client_key,
    new_handle,
)
from refstore.providers.gcs_client import operation as gcs_operation
from refstore.providers.streams import TranslatedStream
from refstore.providers.translation import Rules, apply_rules
from refstore.uri import ObjectRef

if TYPE_CHECKING:
    pass

__all__ = ["GcsProvider", "translate_error"]

log = logging.getLogger(__name__)

PAGE_SIZE = 1000
READ_BUFFER = 256 * 1024

# What a listing needs for ObjectInfo, and nothing else (no ACLs, no owner).
_LISTED_FIELDS = (
    "items(name,generation,metageneration,etag,size,md5Hash,crc32c,updated,"
    "timeDeleted,componentCount),nextPageToken"
)
# Lifecycle conditions that narrow a rule beyond its prefixes.
_NARROWING_CONDITIONS = frozenset(
    {
        "matchesSuffix",
        "matchesStorageClass",
        "createdBefore",
        "customTimeBefore",
        "daysSinceCustomTime",
        "noncurrentTimeBefore",
    }
)
_CREDENTIALS_HINT = (
    "set GOOGLE_APPLICATION_CREDENTIALS or run gcloud auth application-default "
    "login, or set credentials_file (or anonymous = true for a public bucket) "
    "for this bucket in the refstore config"
)


class GcsProvider:
    """Google Cloud Storage, one client per bucket configuration.

    A client (and its pooled HTTP session) is shared by every thread that
    reads the buckets it serves.
    """

    schemes: ClassVar[tuple[str, ...]] = ("gs",)
    # A versioned listing shows every noncurrent generation (GCS has no delete
    # markers), so a generation missing from it is gone.
    lists_noncurrent_versions: ClassVar[bool] = True
    # startOffset starts the listing at a name.
    lists_from_key: ClassVar[bool] = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.requests = RequestCounter()
        self._handles: dict[ClientKey, Handle] = {}
        self._lock = threading.Lock()
        self._buckets_seen: set[tuple[ClientKey, str]] = set()

    def stat(self, ref: ObjectRef) -> ObjectInfo:
        generation = _generation(ref)
        with self._translated(ref):
            handle = self._handle(ref)
            blob = handle.bucket(ref.bucket).blob(ref.key, generation=generation)
            try:
                blob.reload(timeout=TIMEOUT, retry=handle.retry)
            except api_exceptions.NotFound as exc:
                self._explain_missing(handle, ref, exc)
                raise
        info = _blob_info(ref, blob)
        _check_generation(ref, info.version_id)
        return info

    def scan(
        self,
        prefix: ObjectRef,
        *,
        versions: bool = False,
        start_after: str | None = None,
    ) -> Iterator[ObjectInfo]:
        with self._translated(prefix):
            handle = self._handle(prefix)
            blobs = handle.client.list_blobs(
                handle.bucket(prefix.bucket),
                prefix=prefix.key or None,
                # The JSON API spells its booleans "true"; the SDK would send
                # True as "True", which fake-gcs-server takes for false.
                versions="true" if versions else None,
                start_offset=start_after,
                fields=_LISTED_FIELDS,
                page_size=PAGE_SIZE,
                timeout=TIMEOUT,
                retry=handle.retry,
            )
            listed = (_blob_info(prefix, blob) for blob in blobs)
            yield from _once_each(_after(listed, start_after))

    def read(
        self, info: ObjectInfo, *, start: int = 0, end: int | None = None
    ) -> BinaryIO:
        if start < 0:
            raise ValueError(f"start must be 0 or more, not {start}")
        if end is not None and end <= start:
            return io.BytesIO(b"")
        generation = _generation(info.ref)
        with self._translated(info.ref):
            handle = self._handle(info.ref)
            try:
                response = _open_media(handle, info, generation, start, end)
            except api_exceptions.RequestRangeNotSatisfiable:
                # The range starts at or past the end: no bytes, as in a slice.
                return io.BytesIO(b"")
            except api_exceptions.NotFound as exc:
                self._explain_missing(handle, info.ref, exc)
                raise
        _check_served(info, response)
        body = TranslatedStream(
            functools.partial(response.raw.read, decode_content=False),
            response.close,
            (urllib3.exceptions.HTTPError, requests.RequestException),
            self._translator(info.ref),
        )
        return io.BufferedReader(body, buffer_size=READ_BUFFER)

    def versioning(self, ref: ObjectRef) -> Versioning:
        with self._translated(ref):
            handle = self._handle(ref)
            bucket = handle.bucket(ref.bucket)
            try:
                bucket.reload(timeout=TIMEOUT, retry=handle.retry)
            except api_exceptions.Forbidden:
                # Object readers (roles/storage.objectViewer) may not read
                # bucket metadata; capture then tries a versioned listing.
                log.debug("buckets.get denied on %s", ref.location)
                return Versioning.UNKNOWN
        return Versioning.ENABLED if bucket.versioning_enabled else Versioning.OFF

    def lifecycle(self, ref: ObjectRef) -> list[LifecycleRule]:
        """The bucket's lifecycle rules that delete objects or generations."""
        with self._translated(ref):
            handle = self._handle(ref)
            bucket = handle.bucket(ref.bucket)
            bucket.reload(timeout=TIMEOUT, retry=handle.retry)
            rules: list[Mapping[str, Any]] = list(bucket.lifecycle_rules)
        return [found for rule in rules for found in _lifecycle_rules(rule)]

    def close(self) -> None:
        """Close every client's connections; the provider stays usable."""
        with self._lock:
            handles = list(self._handles.values())
            self._handles.clear()
        for handle in handles:
            handle.close()

    def _explain_missing(
        self, handle: Handle, ref: ObjectRef, exc: api_exceptions.NotFound
    ) -> None:
        # objects.get answers 404 for a missing bucket as for a missing object
        # or generation (fake-gcs-server in the same words). One buckets.get,
        # on this failure path only and once per bucket that answers it, tells
        # them apart; when it cannot (no permission), the 404 stands.
        seen = (handle.key, ref.bucket)
        if seen in self._buckets_seen:
            return
        try:
            handle.bucket(ref.bucket).reload(timeout=TIMEOUT, retry=handle.retry)
        except api_exceptions.NotFound as probe:
            raise translate_error(probe, ref, handle.endpoint) from exc
        except api_exceptions.GoogleAPIError:
            log.debug("cannot tell whether %s exists", ref.location)
            return
        self._buckets_seen.add(seen)

    @contextlib.contextmanager
    def _translated(self, ref: ObjectRef) -> Iterator[None]:
        try:
            yield
        except _SDK_ERRORS as exc:
            raise translate_error(exc, ref, self._endpoint(ref)) from exc

    def _translator(self, ref: ObjectRef) -> Callable[[Exception], RefstoreError]:
        endpoint = self._endpoint(ref)
        return lambda exc: translate_error(exc, ref, endpoint)

    def _endpoint(self, ref: ObjectRef) -> str:
        options = self.settings.store_options(ref)
        handle = self._handles.get(client_key(options))
        if handle is not None:
            return handle.endpoint
        configured = options.get("endpoint_url") or os.environ.get(
            "STORAGE_EMULATOR_HOST"
        )
        return str(configured or "the default GCS endpoint")

    def _handle(self, ref: ObjectRef) -> Handle:
        options = self.settings.store_options(ref)
        key = client_key(options)
        handle = self._handles.get(key)
        if handle is not None:
            return handle
        with self._lock:
            handle = self._handles.get(key)
            if handle is None:
                handle = self._handles[key] = new_handle(ref, options, self.requests)
        return handle


_SDK_ERRORS = (
    api_exceptions.GoogleAPIError,
    GoogleAuthError,
    requests.RequestException,
    urllib3.exceptions.HTTPError,
)


def _open_media(
    handle: Handle,
    info: ObjectInfo,
    generation: int | None,
    start: int,
    end: int | None,
) -> requests.Response:
    """GET the object's bytes, streamed; retried like the SDK's own calls."""
    ref = info.ref
    url = f"{handle.endpoint}/storage/v1/b/{quote(ref.bucket, safe='')}/o/"
    url += quote(ref.key, safe="")
    params = {"alt": "media"}
    if generation is not None:
        params["generation"] = str(generation)
    if handle.user_project:
        params["userProject"] = handle.user_project

    def attempt() -> requests.Response:
        response: requests.Response = handle.session.request(
            "GET",
            url,
            params=params,
            headers=_media_headers(info, generation, start, end),
            stream=True,
            timeout=TIMEOUT,
        )
        if response.status_code >= 400:
            error = api_exceptions.from_http_response(response)
            response.close()
            raise error
        return response

    return attempt() if handle.retry is None else handle.retry(attempt)()


def _media_headers(
    info: ObjectInfo, generation: int | None, start: int, end: int | None
) -> dict[str, str]:
    # gzip: the stored bytes, which the recorded size and checksums describe.
    headers = {"Accept-Encoding": "gzip"}
    if generation is None and info.etag is not None:
        # Without a generation, only the ETag proves these are the recorded
        # bytes; GCS refuses with 412 (fake-gcs-server does not check it, so
        # _check_served compares the ETag served as well).
        headers["If-Match"] = info.etag
    if start or end is not None:
        last = "" if end is None else str(end - 1)
        headers["Range"] = f"bytes={start}-{last}"
    return headers


def _generation(ref: ObjectRef) -> int | None:
    if ref.version is None:
        return None
    if not ref.version.isdigit():
        raise VersionNotFoundError(
            f"{ref}: {ref.version!r} is not a GCS generation (a number), so no "
            "such object version exists; pin with gs://bucket/key#GENERATION"
        )
    return int(ref.version)


def _check_generation(ref: ObjectRef, served: str | None) -> None:
    # A store that ignores the generation parameter would describe (or send)
    # the live object instead; that must never pass for the pinned one.
    if ref.version is None or served is None or served == ref.version:
        return
    raise IntegrityError(
        f"{ref}: the store answered with generation {served}, not the pinned "
        f"{ref.version}; it does not honour generation pins, so this object "
        "version cannot be checked there"
    )


def _check_served(info: ObjectInfo, response: requests.Response) -> None:
    try:
        if info.version_id is not None:
            _check_generation(info.ref, response.headers.get("x-goog-generation"))
            return
        served = _etag(response.headers.get("etag"))
        if info.etag is None or served is None or served == info.etag:
            return
        raise IntegrityError(
            f"{info.ref} changed since it was recorded: it serves ETag {served}, "
            f"not the recorded {info.etag}; record the artifact again, or pin "
            "the generation (gs://bucket/key#GENERATION)"
        )
    except IntegrityError:
        response.close()
        raise


def _blob_info(prefix: ObjectRef, blob: Any) -> ObjectInfo:
    generation = blob.generation
    return ObjectInfo(
        ref=prefix.child(
            str(blob.name), None if generation is None else str(generation)
        ),
        size=int(blob.size or 0),
        etag=_etag(blob.etag),
        last_modified=_utc(blob.updated),
        checksums=_checksums(blob.md5_hash, blob.crc32c),
        is_latest=blob.time_deleted is None,
        extra=_extra(blob.metageneration, blob.component_count),
    )


def _after(listed: Iterator[ObjectInfo], key: str | None) -> Iterator[ObjectInfo]:
    """The listing without the name ``key`` itself.

    startOffset includes the name it starts at; ``start_after`` does not.
    """
    if key is None:
        return listed
    return (info for info in listed if info.ref.key != key)


def _once_each(listed: Iterator[ObjectInfo]) -> Iterator[ObjectInfo]:
    """Each object generation once, in listing order.

    fake-gcs-server resumes a versioned listing at the name a page ended on,
    so generations of that name come twice. Listings are in name order:
    remembering the generations of the current name suffices.
    """
    name: str | None = None
    seen: set[str | None] = set()
    for info in listed:
        if info.ref.key != name:
            name, seen = info.ref.key, set()
        if info.version_id in seen:
            continue
        seen.add(info.version_id)
        yield info


def _lifecycle_rules(rule: Mapping[str, Any]) -> list[LifecycleRule]:
    """The rule as refstore sees it, one per prefix; none unless it deletes."""
    if rule.get("action", {}).get("type") != "Delete":
        return []
    condition: Mapping[str, Any] = rule.get("condition", {})
    current, noncurrent = _lifecycle_days(condition)
    newer = condition.get("numNewerVersions")
    return [
        LifecycleRule(
            prefix=str(prefix),
            noncurrent_days=noncurrent,
            current_days=current,
            # numNewerVersions N deletes a generation once N newer ones exist,
            # the live one among them: N - 1 noncurrent generations are kept.
            keeps_newer=int(newer) - 1 if newer else None,
            filtered=bool(_NARROWING_CONDITIONS & set(condition)),
        )
        for prefix in condition.get("matchesPrefix") or [""]
    ]


def _lifecycle_days(condition: Mapping[str, Any]) -> tuple[int | None, int | None]:
    """Days after which live objects, and noncurrent generations, are deleted.

    None means never. ``age`` counts from creation, so a noncurrent
    generation may be deleted sooner after its replacement than it says.
    """
    age = condition.get("age")
    since = condition.get("daysSinceNoncurrentTime")
    live = condition.get("isLive")
    # Live objects have no noncurrent time and no newer generations.
    only_noncurrent = (
        live is False or since is not None or "numNewerVersions" in condition
    )
    current = None if only_noncurrent else int(age or 0)
    if live is True:
        return current, None
    return current, int(since if since is not None else age or 0)


def _checksums(md5_hash: str | None, crc32c: str | None) -> dict[str, str]:
    checksums = {}
    md5 = _hex_from_base64(md5_hash)
    if md5 is not None:
        checksums["md5"] = md5
    if crc32c:
        checksums["crc32c"] = str(crc32c)
    return checksums


def _extra(metageneration: int | None, components: int | None) -> dict[str, Any]:
    extra: dict[str, Any] = {"etagIsMd5": False}
    if metageneration is not None:
        extra["metageneration"] = int(metageneration)
    if components:
        extra["componentCount"] = int(components)
    return extra


def _hex_from_base64(value: str | None) -> str | None:
    if not value:
        return None
    try:
        return base64.b64decode(value, validate=True).hex()
    except (binascii.Error, ValueError):
        log.debug("ignoring an md5Hash that is not base64: %r", value)
        return None


def _etag(value: str | None) -> str | None:
    if not value:
        return None
    return str(value).strip('"')


def _utc(value: datetime.datetime | None) -> datetime.datetime | None:
    return None if value is None else value.astimezone(datetime.UTC)


# Error translation: every google-cloud-storage, google-auth and requests
# failure becomes a refstore error here.


@dataclasses.dataclass(frozen=True)
class _Failure:
    """What GCS answered, with the reference and endpoint it concerned."""

    status: int
    message: str
    operation: str
    ref: ObjectRef
    endpoint: str

    @classmethod
    def of(
        cls, exc: api_exceptions.GoogleAPICallError, ref: ObjectRef, endpoint: str
    ) -> _Failure:
        request = getattr(exc.response, "request", None)
        operation = "request"
        if request is not None and request.method and request.url:
            operation = gcs_operation(str(request.method), str(request.url))
        return cls(
            status=int(exc.code or 0),
            message=str(exc.message or ""),
            operation=operation,
            ref=ref,
            endpoint=endpoint,
        )


def translate_error(exc: Exception, ref: ObjectRef, endpoint: str) -> RefstoreError:
    """The refstore error for a GCS failure concerning ``ref``."""
    if isinstance(exc, api_exceptions.RetryError) and isinstance(exc.cause, Exception):
        # Retries ran out; the last failure says what went wrong.
        return translate_error(exc.cause, ref, endpoint)
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        failure = _Failure.of(exc, ref, endpoint)
        return apply_rules(failure, _RULES, _refused)
    if isinstance(exc, GoogleAuthError):
        return CredentialsError(
            f"no usable Google credentials for {ref.location} ({exc}); "
            f"{_CREDENTIALS_HINT}"
        )
    if isinstance(exc, requests.ConnectionError | requests.Timeout):
        return EndpointError(
            f"cannot reach the GCS endpoint {endpoint} for {ref.location} ({exc}); "
            "check endpoint_url for this bucket in the refstore config (or "
            "STORAGE_EMULATOR_HOST) and that the store is running"
        )
    if isinstance(exc, requests.RequestException | urllib3.exceptions.HTTPError):
        return EndpointError(
            f"{endpoint} broke off the transfer of {ref} ({exc}); try again"
        )
    return StoreError(f"GCS request for {ref} failed: {exc}")


def _is_bucket_missing(failure: _Failure) -> bool:
    return failure.status == 404 and failure.operation in (
        "objects.list",
        "buckets.get",
    )


def _is_version_gone(failure: _Failure) -> bool:
    return failure.status == 404 and failure.ref.version is not None


def _is_object_missing(failure: _Failure) -> bool:
    return failure.status == 404


def _is_credentials_rejected(failure: _Failure) -> bool:
    return failure.status == 401


def _is_access_denied(failure: _Failure) -> bool:
    return failure.status == 403


def _is_precondition_failed(failure: _Failure) -> bool:
    return failure.status == 412


def _is_requester_pays(failure: _Failure) -> bool:
    text = failure.message.lower()
    return failure.status == 400 and ("user project" in text or "requester" in text)


def _bucket_missing(failure: _Failure) -> RefstoreError:
    return BucketNotFoundError(
        f"bucket {failure.ref.location} does not exist at {failure.endpoint}; "
        "check the bucket name, and the endpoint_url configured for it in the "
        "refstore config"
    )


def _version_gone(failure: _Failure) -> RefstoreError:
    ref = failure.ref
    return VersionNotFoundError(
        f"the pinned generation {ref.version} of {ref.unpinned_uri} no longer "
        "exists; it was deleted, overwritten in a bucket without versioning, "
        "or removed by a lifecycle rule"
    )


def _object_missing(failure: _Failure) -> RefstoreError:
    return ObjectNotFoundError(
        f"no object at {failure.ref}; check the key (an object deleted from a "
        "versioned bucket can still be read by its generation: "
        "gs://bucket/key#GENERATION)"
    )


def _credentials_rejected(failure: _Failure) -> RefstoreError:
    return CredentialsError(
        f"{failure.endpoint} rejected the credentials used for "
        f"{failure.ref.location} ({failure.status}: {failure.message}); "
        f"{_CREDENTIALS_HINT}"
    )


def _access_denied(failure: _Failure) -> RefstoreError:
    return AccessDeniedError(
        f"access denied: {failure.operation} on {failure.ref} ({failure.message}); "
        "the credentials in use may not do this: grant them "
        "roles/storage.objectViewer on the bucket, or set credentials_file for "
        "this bucket in the refstore config"
    )


def _changed(failure: _Failure) -> RefstoreError:
    return IntegrityError(
        f"{failure.ref} changed since it was recorded: its ETag no longer "
        "matches the manifest; record the artifact again, or pin the "
        "generation (gs://bucket/key#GENERATION)"
    )


def _requester_pays(failure: _Failure) -> RefstoreError:
    return StoreError(
        f"{failure.ref.location} is a requester-pays bucket ({failure.message}); "
        "set user_project (the project to bill) for it in the refstore config"
    )


def _refused(failure: _Failure) -> RefstoreError:
    detail = f": {failure.message}" if failure.message else ""
    hint = "; try again later" if failure.status in (429, 500, 502, 503, 504) else ""
    return StoreError(
        f"GCS refused {failure.operation} on {failure.ref} with "
        f"{failure.status}{detail}{hint}"
    )


_RULES: Rules[_Failure] = (
    (_is_bucket_missing, _bucket_missing),
    (_is_version_gone, _version_gone),
    (_is_object_missing, _object_missing),
    (_is_credentials_rejected, _credentials_rejected),
    (_is_access_denied, _access_denied),
    (_is_precondition_failed, _changed),
    (_is_requester_pays, _requester_pays),
)
