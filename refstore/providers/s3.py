"""S3 and S3-compatible stores (MinIO, Ceph, LocalStack, moto) behind the contract.

Clients are per bucket. Options come from ``Settings.store_options(ref)``:

``endpoint_url``, ``region``, ``profile``
    where the bucket lives and which AWS profile signs for it;
``aws_access_key_id``, ``aws_secret_access_key``, ``aws_session_token``
    explicit keys for this bucket (prefer a profile);
``addressing_style``
    ``"auto"``, ``"path"`` or ``"virtual"``;
``max_attempts``
    total attempts per request, retries included (botocore's default: 3).

With nothing configured, boto3's standard chain applies unchanged: AWS_PROFILE,
AWS_ACCESS_KEY_ID, AWS_ENDPOINT_URL_S3, ``~/.aws/config``, instance roles.

Normalisation:

* ETags lose their quotes; multipart ETags keep their ``-N`` suffix.
* ``checksums["md5"]`` (hex) is recorded only when the ETag is a single-part
  MD5 of the bytes, which it is not for SSE-KMS and SSE-C objects (those are
  marked ``etagIsMd5: False`` in ``extra``). Listings carry no encryption
  details, so objects found by :meth:`S3Provider.scan` never get ``md5``.
* S3 additional checksums (crc32, crc32c, crc64nvme, sha1, sha256, ...) are
  recorded, base64 as S3 sends them, only when they cover the whole object:
  a composite checksum of a multipart upload is not the checksum of the bytes.
* The version id ``"null"`` (objects written while versioning was off or
  suspended) is recorded as no version. It is not a pin: the next write with
  versioning off or suspended replaces that version in place, and HeadObject
  omits it where listings show it. Reads of such objects are conditional on
  their ETag, so a replaced object raises IntegrityError instead of returning
  other bytes.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import datetime
import heapq
import io
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, TypeVar

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    CredentialRetrievalError,
    FlexibleChecksumError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    SSOError,
    TokenRetrievalError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError

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
from refstore.providers.s3_client import ClientKey, client_key, new_client
from refstore.providers.streams import TranslatedStream
from refstore.providers.translation import Rules, apply_rules
from refstore.uri import ObjectRef

if TYPE_CHECKING:
    from botocore.response import StreamingBody
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import (
        DeleteMarkerEntryTypeDef,
        GetObjectOutputTypeDef,
        HeadObjectOutputTypeDef,
        LifecycleRuleOutputTypeDef,
        ObjectTypeDef,
        ObjectVersionTypeDef,
    )

__all__ = ["S3Provider", "translate_error"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

READ_BUFFER = 256 * 1024

_PLAIN_MD5 = re.compile(r"^[0-9a-f]{32}$")
_CHECKSUM_FIELDS = {
    "ChecksumCRC32": "crc32",
    "ChecksumCRC32C": "crc32c",
    "ChecksumCRC64NVME": "crc64nvme",
    "ChecksumSHA1": "sha1",
    "ChecksumSHA256": "sha256",
    "ChecksumSHA512": "sha512",
    "ChecksumXXHASH64": "xxhash64",
    "ChecksumXXHASH3": "xxhash3",
    "ChecksumXXHASH128": "xxhash128",
}
_VERSIONING = {"Enabled": Versioning.ENABLED, "Suspended": Versioning.SUSPENDED}
_CREDENTIAL_CODES = frozenset(
    {
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "InvalidClientTokenId",
    }
)
_CREDENTIAL_FAILURES = (
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    CredentialRetrievalError,
    TokenRetrievalError,
    SSOError,
)
_CREDENTIALS_HINT = (
    "check AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, and the profile "
    "or keys set for this bucket in the refstore config"
)


class S3Provider:
    """Amazon S3 and S3-compatible stores, one client per bucket configuration."""

    schemes: ClassVar[tuple[str, ...]] = ("s3",)
    # ListObjectVersions shows every version and delete marker of a key.
    lists_noncurrent_versions: ClassVar[bool] = True
    # KeyMarker (versioned) and StartAfter start the listing at a key.
    lists_from_key: ClassVar[bool] = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.requests = RequestCounter()
        self._clients: dict[ClientKey, S3Client] = {}
        self._lock = threading.Lock()
        self._buckets_seen: set[tuple[ClientKey, str]] = set()

    def stat(self, ref: ObjectRef) -> ObjectInfo:
        params: dict[str, Any] = {
            "Bucket": ref.bucket,
            "Key": ref.key,
            "ChecksumMode": "ENABLED",
        }
        if ref.version is not None:
            params["VersionId"] = ref.version
        with self._translated(ref):
            client = self._client(ref)
            try:
                response = client.head_object(**params)
            except ClientError as exc:
                self._explain_head_failure(client, ref, exc)
                raise
        return _head_info(ref, response)

    def scan(
        self,
        prefix: ObjectRef,
        *,
        versions: bool = False,
        start_after: str | None = None,
    ) -> Iterator[ObjectInfo]:
        params: dict[str, Any] = {"Bucket": prefix.bucket, "Prefix": prefix.key}
        if versions:
            if start_after is not None:
                # A KeyMarker without a VersionIdMarker skips every version of
                # that key: the listing starts at the next key.
                params["KeyMarker"] = start_after
            return self._scan_versions(prefix, params)
        if start_after is not None:
            params["StartAfter"] = start_after
        return self._scan_latest(prefix, params)

    def read(
        self, info: ObjectInfo, *, start: int = 0, end: int | None = None
    ) -> BinaryIO:
        if start < 0:
            raise ValueError(f"start must be 0 or more, not {start}")
        if end is not None and end <= start:
            return io.BytesIO(b"")
        with self._translated(info.ref):
            response = self._client(info.ref).get_object(
                **_get_params(info, start, end)
            )
        body = response["Body"]
        _check_served_etag(info, response, body)
        translate = self._translator(info.ref)
        return io.BufferedReader(
            TranslatedStream(body.read, body.close, (BotoCoreError,), translate),
            buffer_size=READ_BUFFER,
        )

    def versioning(self, ref: ObjectRef) -> Versioning:
        with self._translated(ref):
            try:
                response = self._client(ref).get_bucket_versioning(Bucket=ref.bucket)
            except ClientError as exc:
                if _code(exc) != "AccessDenied":
                    raise
                log.debug("GetBucketVersioning denied on %s", ref.location)
                return Versioning.UNKNOWN
        return _VERSIONING.get(response.get("Status", ""), Versioning.OFF)

    def lifecycle(self, ref: ObjectRef) -> list[LifecycleRule]:
        """The enabled rules of the bucket that expire objects or versions."""
        with self._translated(ref):
            try:
                response = self._client(ref).get_bucket_lifecycle_configuration(
                    Bucket=ref.bucket
                )
            except ClientError as exc:
                if _code(exc) != "NoSuchLifecycleConfiguration":
                    raise
                return []
        rules = (_lifecycle_rule(rule) for rule in response.get("Rules", []))
        return [rule for rule in rules if rule is not None]

    def close(self) -> None:
        """Close every client's connections; the provider stays usable."""
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
        for client in clients:
            client.close()

    def _scan_latest(
        self, prefix: ObjectRef, params: dict[str, Any]
    ) -> Iterator[ObjectInfo]:
        client = self._client(prefix)
        paginator = client.get_paginator("list_objects_v2")
        pages = paginator.paginate(**params)
        for page in self._translated_pages(prefix, pages):
            for item in page.get("Contents", []):
                yield _listed_info(prefix, item)

    def _scan_versions(
        self, prefix: ObjectRef, params: dict[str, Any]
    ) -> Iterator[ObjectInfo]:
        client = self._client(prefix)
        paginator = client.get_paginator("list_object_versions")
        pages = paginator.paginate(**params)
        for page in self._translated_pages(prefix, pages):
            # A page holds its versions and its delete markers in two lists,
            # each in key order; merged, the scan stays in key order.
            versions = (_version_info(prefix, v) for v in page.get("Versions", []))
            markers = (_marker_info(prefix, m) for m in page.get("DeleteMarkers", []))
            merged = heapq.merge(versions, markers, key=_key_of)
            yield from _after(merged, params.get("KeyMarker"))

    def _translated_pages(self, ref: ObjectRef, pages: Iterable[_T]) -> Iterator[_T]:
        with self._translated(ref):
            yield from pages

    def _explain_head_failure(
        self, client: S3Client, ref: ObjectRef, exc: ClientError
    ) -> None:
        # HEAD answers carry no error body: a 404 may mean a missing bucket and
        # a 403 rejected credentials. One GetBucketVersioning, on this failure
        # path only and once per bucket that answers it, tells them apart;
        # otherwise the HEAD error stands.
        seen = (client_key(self.settings.store_options(ref)), ref.bucket)
        if _code(exc) not in ("403", "404") or seen in self._buckets_seen:
            return
        try:
            client.get_bucket_versioning(Bucket=ref.bucket)
        except ClientError as probe:
            if _code(probe) == "NoSuchBucket" or _code(probe) in _CREDENTIAL_CODES:
                raise translate_error(probe, ref, self._endpoint(ref)) from probe
            return
        self._buckets_seen.add(seen)

    @contextlib.contextmanager
    def _translated(self, ref: ObjectRef) -> Iterator[None]:
        try:
            yield
        except (ClientError, BotoCoreError) as exc:
            raise translate_error(exc, ref, self._endpoint(ref)) from exc

    def _translator(self, ref: ObjectRef) -> Callable[[Exception], RefstoreError]:
        endpoint = self._endpoint(ref)
        return lambda exc: translate_error(exc, ref, endpoint)

    def _endpoint(self, ref: ObjectRef) -> str:
        options = self.settings.store_options(ref)
        client = self._clients.get(client_key(options))
        if client is not None:
            return client.meta.endpoint_url
        return str(options.get("endpoint_url") or "the default AWS S3 endpoint")

    def _client(self, ref: ObjectRef) -> S3Client:
        options = self.settings.store_options(ref)
        key = client_key(options)
        client = self._clients.get(key)
        if client is not None:
            return client
        with self._lock, self._translated(ref):
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = self._new_client(ref, options)
        return client

    def _new_client(self, ref: ObjectRef, options: Mapping[str, Any]) -> S3Client:
        client = new_client(ref, options)
        # before-send fires once per HTTP attempt, so retries are counted too.
        client.meta.events.register("before-send.s3", self._count_request)
        log.debug("new S3 client for %s at %s", ref.location, client.meta.endpoint_url)
        return client

    def _count_request(self, event_name: str, **_: Any) -> None:
        operation = event_name.rpartition(".")[2]
        self.requests.add(operation)
        log.debug("S3 %s", operation)


def _get_params(info: ObjectInfo, start: int, end: int | None) -> dict[str, Any]:
    params: dict[str, Any] = {"Bucket": info.ref.bucket, "Key": info.ref.key}
    if info.version_id is not None:
        params["VersionId"] = info.version_id
    elif info.etag is not None:
        # Without a version, only the ETag proves these are the recorded bytes.
        params["IfMatch"] = f'"{info.etag}"'
    if start or end is not None:
        last = "" if end is None else str(end - 1)
        params["Range"] = f"bytes={start}-{last}"
    elif not info.checksums:
        # Nothing recorded to check the bytes against: S3 sends the checksum
        # it stores, and botocore checks the body. With a recorded checksum
        # the reader checks the bytes itself, and a second pass buys nothing.
        params["ChecksumMode"] = "ENABLED"
    return params


def _check_served_etag(
    info: ObjectInfo, response: GetObjectOutputTypeDef, body: StreamingBody
) -> None:
    served = _etag(response.get("ETag"))
    if info.etag is None or served is None or served == info.etag:
        return
    body.close()
    raise IntegrityError(
        f"{info.ref} serves ETag {served}, not the recorded {info.etag}; the "
        "manifest does not describe this object version"
    )


def _head_info(ref: ObjectRef, response: HeadObjectOutputTypeDef) -> ObjectInfo:
    etag = _etag(response.get("ETag"))
    etag_is_digest = not _encrypted_with_kms_or_customer_key(response)
    checksums = _checksums(response, etag)
    if etag is not None and etag_is_digest and _PLAIN_MD5.match(etag):
        checksums.setdefault("md5", etag)
    return ObjectInfo(
        ref=ref.with_version(_version(response.get("VersionId", ref.version))),
        size=response["ContentLength"],
        etag=etag,
        last_modified=_utc(response.get("LastModified")),
        checksums=checksums,
        extra={} if etag is None or etag_is_digest else {"etagIsMd5": False},
    )


def _encrypted_with_kms_or_customer_key(response: HeadObjectOutputTypeDef) -> bool:
    # The ETag of an SSE-KMS or SSE-C object is not the MD5 of its bytes, even
    # when it looks like one; SSE-S3 (AES256) leaves it an MD5.
    algorithm = str(response.get("ServerSideEncryption", ""))
    return algorithm.startswith("aws:kms") or "SSECustomerAlgorithm" in response


def _checksums(response: HeadObjectOutputTypeDef, etag: str | None) -> dict[str, str]:
    """The additional checksums that cover the whole object, by algorithm.

    A multipart upload's checksum is composite (a checksum of part checksums)
    unless S3 says FULL_OBJECT; some emulators omit ChecksumType and the
    ``-N`` suffix, so a multipart object without FULL_OBJECT records none.
    """
    fields: Mapping[str, Any] = response
    kind = fields.get("ChecksumType")
    multipart = etag is not None and "-" in etag
    if kind == "COMPOSITE" or (multipart and kind != "FULL_OBJECT"):
        return {}
    checksums = {
        name: str(fields[field])
        for field, name in _CHECKSUM_FIELDS.items()
        if fields.get(field) and "-" not in str(fields[field])
    }
    md5 = _hex_from_base64(fields.get("ChecksumMD5"))
    if md5 is not None:
        checksums["md5"] = md5
    return checksums


def _hex_from_base64(value: Any) -> str | None:
    if not isinstance(value, str) or "-" in value:
        return None
    try:
        return base64.b64decode(value, validate=True).hex()
    except (binascii.Error, ValueError):
        return None


def _key_of(info: ObjectInfo) -> str:
    return info.ref.key


def _after(listed: Iterator[ObjectInfo], key: str | None) -> Iterator[ObjectInfo]:
    """The listing without keys up to ``key``.

    AWS starts a versioned listing at the key after a lone KeyMarker; moto
    5.2 returns some versions of the marker's key too.
    """
    if key is None:
        return listed
    return (info for info in listed if info.ref.key > key)


def _listed_info(prefix: ObjectRef, item: ObjectTypeDef) -> ObjectInfo:
    return ObjectInfo(
        ref=prefix.child(item["Key"]),
        size=item.get("Size", 0),
        etag=_etag(item.get("ETag")),
        last_modified=_utc(item.get("LastModified")),
    )


def _version_info(prefix: ObjectRef, item: ObjectVersionTypeDef) -> ObjectInfo:
    return ObjectInfo(
        ref=prefix.child(item["Key"], _version(item.get("VersionId"))),
        size=item.get("Size", 0),
        etag=_etag(item.get("ETag")),
        last_modified=_utc(item.get("LastModified")),
        is_latest=item.get("IsLatest", False),
    )


def _marker_info(prefix: ObjectRef, item: DeleteMarkerEntryTypeDef) -> ObjectInfo:
    return ObjectInfo(
        ref=prefix.child(item["Key"], _version(item.get("VersionId"))),
        size=0,
        last_modified=_utc(item.get("LastModified")),
        is_latest=item.get("IsLatest", False),
        is_delete_marker=True,
    )


def _lifecycle_rule(rule: LifecycleRuleOutputTypeDef) -> LifecycleRule | None:
    """The rule as refstore sees it; None when disabled or deleting nothing."""
    fields: Mapping[str, Any] = rule
    noncurrent = fields.get("NoncurrentVersionExpiration", {})
    current = fields.get("Expiration", {})
    if fields.get("Status") != "Enabled":
        return None
    if "NoncurrentDays" not in noncurrent and "Days" not in current:
        return None
    prefix, filtered = _lifecycle_scope(fields)
    return LifecycleRule(
        prefix=prefix,
        noncurrent_days=noncurrent.get("NoncurrentDays"),
        current_days=current.get("Days"),
        keeps_newer=noncurrent.get("NewerNoncurrentVersions"),
        filtered=filtered,
        rule_id=fields.get("ID"),
    )


def _lifecycle_scope(rule: Mapping[str, Any]) -> tuple[str, bool]:
    """The rule's key prefix, and whether tags or sizes narrow it further."""
    # A rule names its prefix in Filter, in Filter.And (with tags or sizes),
    # or, in the legacy form, at the top level.
    found = rule.get("Filter")
    if found is None:
        return str(rule.get("Prefix", "")), False
    scope: Mapping[str, Any] = found.get("And", found)
    narrowing = {"Tag", "Tags", "ObjectSizeGreaterThan", "ObjectSizeLessThan"}
    return str(scope.get("Prefix", "")), bool(narrowing & set(scope))


def _code(exc: ClientError) -> str:
    """The S3 error code; HEAD answers have none, so their status stands in."""
    return str(exc.response.get("Error", {}).get("Code", ""))


def _etag(value: str | None) -> str | None:
    if not value:
        return None
    return value.strip('"')


def _version(value: str | None) -> str | None:
    return None if value in (None, "", "null") else value


def _utc(value: datetime.datetime | None) -> datetime.datetime | None:
    return None if value is None else value.astimezone(datetime.UTC)


# Error translation: every botocore failure becomes a refstore error here.


@dataclasses.dataclass(frozen=True)
class _Failure:
    """What S3 answered, with the reference and endpoint it concerned."""

    code: str
    status: int
    message: str
    operation: str
    delete_marker: bool
    ref: ObjectRef
    endpoint: str

    @classmethod
    def of(cls, exc: ClientError, ref: ObjectRef, endpoint: str) -> _Failure:
        error: Mapping[str, Any] = exc.response.get("Error", {})
        meta: Mapping[str, Any] = exc.response.get("ResponseMetadata", {})
        headers: Mapping[str, str] = meta.get("HTTPHeaders", {})
        return cls(
            code=str(error.get("Code", "")),
            status=int(meta.get("HTTPStatusCode", 0)),
            message=str(error.get("Message", "")),
            operation=exc.operation_name,
            delete_marker=headers.get("x-amz-delete-marker") == "true",
            ref=ref,
            endpoint=endpoint,
        )


def translate_error(exc: Exception, ref: ObjectRef, endpoint: str) -> RefstoreError:
    """The refstore error for a botocore failure concerning ``ref``."""
    if isinstance(exc, ClientError):
        failure = _Failure.of(exc, ref, endpoint)
        return apply_rules(failure, _RULES, _refused)
    if isinstance(exc, _CREDENTIAL_FAILURES):
        return CredentialsError(
            f"no usable AWS credentials for {ref.location} ({exc}); {_CREDENTIALS_HINT}"
        )
    if isinstance(exc, BotoConnectionError | HTTPClientError):
        return EndpointError(
            f"cannot reach the S3 endpoint {endpoint} for {ref.location} ({exc}); "
            "check endpoint_url for this bucket in the refstore config (or "
            "AWS_ENDPOINT_URL_S3) and that the store is running"
        )
    if isinstance(exc, IncompleteReadError):
        return EndpointError(
            f"{endpoint} closed the connection before sending all of {ref} "
            f"({exc}); try again"
        )
    if isinstance(exc, FlexibleChecksumError):
        return IntegrityError(
            f"the bytes received for {ref} do not match the checksum S3 stored "
            f"for them ({exc}); fetch again, and report it if it persists"
        )
    return StoreError(f"S3 request for {ref} failed: {exc}")


def _is_bucket_missing(failure: _Failure) -> bool:
    return failure.code == "NoSuchBucket"


def _is_version_gone(failure: _Failure) -> bool:
    if failure.ref.version is None:
        return False
    # S3 gives 404 NoSuchVersion for a deleted version, 405 for a delete
    # marker (moto: 404 on GET), and 400 InvalidArgument for an id it cannot
    # parse; HEAD answers carry only the status.
    if failure.status in (404, 405):
        return True
    bad_id = failure.code == "400" or "version" in failure.message.lower()
    return failure.status == 400 and bad_id


def _is_object_missing(failure: _Failure) -> bool:
    return failure.code == "NoSuchKey" or failure.status == 404


def _is_credentials_rejected(failure: _Failure) -> bool:
    return failure.code in _CREDENTIAL_CODES


def _is_access_denied(failure: _Failure) -> bool:
    return failure.code == "AccessDenied" or failure.status == 403


def _is_precondition_failed(failure: _Failure) -> bool:
    return failure.code == "PreconditionFailed" or failure.status == 412


def _bucket_missing(failure: _Failure) -> RefstoreError:
    return BucketNotFoundError(
        f"bucket {failure.ref.location} does not exist at {failure.endpoint}; "
        "check the bucket name, and the endpoint_url and region configured for "
        "it in the refstore config"
    )


def _version_gone(failure: _Failure) -> RefstoreError:
    ref = failure.ref
    detail = " (that version is a delete marker)" if failure.status == 405 else ""
    return VersionNotFoundError(
        f"the pinned version {ref.version} of {ref.unpinned_uri} no longer "
        f"exists{detail}; it may have been deleted or expired by a lifecycle rule"
    )


def _object_missing(failure: _Failure) -> RefstoreError:
    if failure.delete_marker:
        return ObjectNotFoundError(
            f"{failure.ref} was deleted (its latest version is a delete marker); "
            "pin an older version with ?versionId= to use it"
        )
    return ObjectNotFoundError(f"no object at {failure.ref}; check the key")


def _credentials_rejected(failure: _Failure) -> RefstoreError:
    return CredentialsError(
        f"{failure.endpoint} rejected the credentials used for "
        f"{failure.ref.location} ({failure.code}: {failure.message}); "
        f"{_CREDENTIALS_HINT}"
    )


def _access_denied(failure: _Failure) -> RefstoreError:
    return AccessDeniedError(
        f"access denied: {failure.operation} on {failure.ref}; the credentials "
        "in use may not do this: check the bucket policy and IAM permissions, "
        "or the profile set for this bucket in the refstore config"
    )


def _changed(failure: _Failure) -> RefstoreError:
    return IntegrityError(
        f"{failure.ref} changed since it was recorded: its ETag no longer "
        "matches the manifest; record the artifact again, or enable bucket "
        "versioning so that refstore can pin object versions"
    )


def _refused(failure: _Failure) -> RefstoreError:
    detail = f": {failure.message}" if failure.message else ""
    hint = ""
    if failure.status == 400 and failure.operation == "HeadObject":
        hint = "; objects encrypted with a customer key (SSE-C) cannot be read"
    return StoreError(
        f"S3 refused {failure.operation} on {failure.ref} with {failure.code} "
        f"({failure.status}){detail}{hint}"
    )


_RULES: Rules[_Failure] = (
    (_is_bucket_missing, _bucket_missing),
    (_is_version_gone, _version_gone),
    (_is_object_missing, _object_missing),
    (_is_credentials_rejected, _credentials_rejected),
    (_is_access_denied, _access_denied),
    (_is_precondition_failed, _changed),
)
