"""Azure Blob Storage (and Azurite) behind the contract.

References name the account: ``az://ACCOUNT/container/blob``. Clients are per
account and options. Options come from the refstore config at three levels,
most specific last: ``az`` (every account), ``az://ACCOUNT`` (one account) and
``az://ACCOUNT/container`` (one container); a level that sets any credential
option replaces the credential options of the levels above it.

``endpoint_url``
    the account's blob endpoint, e.g. ``http://127.0.0.1:10000/devstoreaccount1``
    for Azurite (default: ``https://ACCOUNT.blob.core.windows.net``);
``connection_string``, ``account_key``, ``sas_token``, ``anonymous = true``
    the credentials for this account (at most one per level);
``max_attempts``
    total attempts per request, retries included (default: 3).

With no credential option, ``AZURE_STORAGE_CONNECTION_STRING`` is used when it
names this account and no ``endpoint_url`` is set; otherwise
DefaultAzureCredential (environment, workload or managed identity, Azure CLI)
signs the requests, which needs ``refstore[azure]`` and an https endpoint.

Normalisation:

* ETags lose their quotes. Azure ETags (``0x8D...``) are opaque change tokens,
  never digests of the bytes: entries say ``etagIsMd5: False``.
* ``checksums["md5"]`` (hex) is the blob's Content-MD5 when it has one: Azure
  computes it for blobs written in one Put Blob; for blobs committed from
  blocks it is whatever the uploading client set, or absent.
* The version id is Azure's ``versionId``, present when the account has blob
  versioning. Azure has no delete markers: deleting a versioned blob leaves
  its versions without a current one, so a listing with versions shows them
  all as not latest.
* Directory stubs (zero-byte blobs with metadata ``hdi_isfolder=true``, made
  by Data Lake Storage Gen2 accounts and by tools) are folders, not objects:
  :meth:`AzureProvider.scan` skips them and :meth:`AzureProvider.stat` says
  there is no object, so that capture reads such a name as a folder.
* :meth:`AzureProvider.versioning` is always UNKNOWN: whether an account
  keeps versions is a management-plane setting (``isVersioningEnabled`` of
  the account's blob service) that account keys, SAS tokens and data-plane
  roles cannot read. Capture therefore lists with versions, which records a
  version id wherever the account has one, in the same number of requests.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import enum
import io
import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, BinaryIO, ClassVar, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobServiceClient

from refstore.config import Settings
from refstore.errors import (
    AccessDeniedError,
    BucketNotFoundError,
    CredentialsError,
    EndpointError,
    IntegrityError,
    MissingDependencyError,
    ObjectNotFoundError,
    RefstoreError,
    StoreError,
    VersionNotFoundError,
)
from refstore.manifest import ObjectInfo
from refstore.providers.azure_client import (
    CONNECTION_STRING_ENV,
    ClientKey,
    account_options,
    account_url,
    client_key,
    new_client,
    operation_name,
)
from refstore.providers.base import RequestCounter, Versioning
from refstore.providers.streams import TranslatedStream
from refstore.providers.translation import Rules, apply_rules
from refstore.uri import ObjectRef

if TYPE_CHECKING:
    from azure.core.pipeline import PipelineRequest
    from azure.core.rest import HttpRequest
    from azure.identity import DefaultAzureCredential
    from azure.storage.blob import BlobClient, BlobProperties

__all__ = ["AzureProvider", "translate_error"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# Azure's largest page; capture asks for as few pages as the service allows.
LIST_PAGE_SIZE = 5000
READ_BUFFER = 256 * 1024

_CREDENTIAL_CODES = frozenset(
    {"AuthenticationFailed", "InvalidAuthenticationInfo", "NoAuthenticationInformation"}
)
_DENIED_CODES = frozenset(
    {
        "AuthorizationFailure",
        "AuthorizationPermissionMismatch",
        "AuthorizationResourceTypeMismatch",
        "AuthorizationServiceMismatch",
        "AuthorizationProtocolMismatch",
        "AuthorizationSourceIPMismatch",
        "InsufficientAccountPermissions",
        "AccountIsDisabled",
        "KeyBasedAuthenticationNotPermitted",
    }
)
_CREDENTIALS_HINT = (
    "check the connection_string, account_key or sas_token set for this "
    f"account in the refstore config, {CONNECTION_STRING_ENV}, or the identity "
    "DefaultAzureCredential signs in with (AZURE_CLIENT_ID, az login, managed "
    "identity)"
)


class AzureProvider:
    """Azure Blob Storage accounts, one client per account configuration."""

    schemes: ClassVar[tuple[str, ...]] = ("az",)

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.requests = RequestCounter()
        self._clients: dict[ClientKey, BlobServiceClient] = {}
        self._token_credential: DefaultAzureCredential | None = None
        self._lock = threading.Lock()

    def stat(self, ref: ObjectRef) -> ObjectInfo:
        with self._translated(ref):
            properties = self._blob(ref).get_blob_properties(version_id=ref.version)
        if _is_folder_stub(properties.metadata):
            raise ObjectNotFoundError(
                f"{ref} is a directory, not an object; end it with / to name the folder"
            )
        return _properties_info(ref, properties)

    def scan(
        self,
        prefix: ObjectRef,
        *,
        versions: bool = False,
        start_after: str | None = None,
    ) -> Iterator[ObjectInfo]:
        # List Blobs has no key to start from (its marker is an opaque
        # continuation token): keys up to start_after are listed and skipped,
        # and the class does not claim lists_from_key.
        include = ["metadata", "versions"] if versions else ["metadata"]
        with self._translated(prefix):
            container = self._client(prefix).get_container_client(prefix.bucket)
        pages = container.list_blobs(
            name_starts_with=prefix.key or None,
            include=include,
            results_per_page=LIST_PAGE_SIZE,
        ).by_page()
        for page in self._translated_pages(prefix, pages):
            for blob in page:
                if start_after is not None and blob.name <= start_after:
                    continue
                if not _is_folder_stub(blob.metadata):
                    yield _listed_info(prefix, blob)

    def read(
        self, info: ObjectInfo, *, start: int = 0, end: int | None = None
    ) -> BinaryIO:
        if start < 0:
            raise ValueError(f"start must be 0 or more, not {start}")
        if end is not None and end <= start:
            return io.BytesIO(b"")
        with self._translated(info.ref):
            download = self._blob(info.ref).download_blob(
                **_download_params(info, start, end)
            )
        _check_served_etag(info, download.properties.etag)
        body = TranslatedStream(
            download.read, _no_op, (AzureError,), self._translator(info.ref)
        )
        return io.BufferedReader(body, buffer_size=READ_BUFFER)

    def versioning(self, ref: ObjectRef) -> Versioning:
        # See the module docstring: data-plane credentials cannot tell.
        return Versioning.UNKNOWN

    def close(self) -> None:
        """Close every client's connections; the provider stays usable."""
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
            credential, self._token_credential = self._token_credential, None
        for client in clients:
            client.close()
        if credential is not None:
            credential.close()

    def _translated_pages(self, ref: ObjectRef, pages: Iterable[_T]) -> Iterator[_T]:
        with self._translated(ref):
            yield from pages

    @contextlib.contextmanager
    def _translated(self, ref: ObjectRef) -> Iterator[None]:
        try:
            yield
        except AzureError as exc:
            raise translate_error(exc, ref, self._endpoint(ref)) from exc

    def _translator(self, ref: ObjectRef) -> Callable[[Exception], RefstoreError]:
        endpoint = self._endpoint(ref)
        return lambda exc: translate_error(exc, ref, endpoint)

    def _endpoint(self, ref: ObjectRef) -> str:
        client = self._clients.get(client_key(ref, self._options(ref)))
        if client is not None:
            return str(client.primary_endpoint)
        return account_url(ref, self._options(ref))

    def _blob(self, ref: ObjectRef) -> BlobClient:
        return self._client(ref).get_blob_client(ref.bucket, ref.key)

    def _options(self, ref: ObjectRef) -> dict[str, Any]:
        return account_options(self.settings, ref)

    def _client(self, ref: ObjectRef) -> BlobServiceClient:
        options = self._options(ref)
        key = client_key(ref, options)
        client = self._clients.get(key)
        if client is not None:
            return client
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = self._clients[key] = new_client(
                    ref,
                    options,
                    hook=self._count_request,
                    default_credential=self._default_credential,
                )
        return client

    def _default_credential(self) -> DefaultAzureCredential:
        # Called with self._lock held, from _client. One credential serves
        # every account: it caches its tokens per scope.
        if self._token_credential is None:
            try:
                from azure.identity import DefaultAzureCredential
            except ModuleNotFoundError as exc:
                raise MissingDependencyError(
                    "azure", "az:// references without a key, SAS or connection string"
                ) from exc
            self._token_credential = DefaultAzureCredential()
        return self._token_credential

    def _count_request(self, request: PipelineRequest[HttpRequest]) -> None:
        # The SDK calls this hook once per attempt, after its retry policy,
        # so retries are counted too.
        operation = operation_name(request.http_request)
        self.requests.add(operation)
        log.debug("Azure %s", operation)


def _download_params(info: ObjectInfo, start: int, end: int | None) -> dict[str, Any]:
    # Stored bytes as they are: the SDK would otherwise gunzip blobs saved
    # with Content-Encoding: gzip, and no checksum would match.
    params: dict[str, Any] = {"version_id": info.version_id, "decompress": False}
    if info.version_id is None and info.etag is not None:
        # Without a version, only the ETag proves these are the recorded bytes.
        params["etag"] = f'"{info.etag}"'
        params["match_condition"] = MatchConditions.IfNotModified
    if start or end is not None:
        params["offset"] = start
        params["length"] = None if end is None else end - start
    return params


def _check_served_etag(info: ObjectInfo, served_etag: str | None) -> None:
    served = _etag(served_etag)
    if info.etag is None or served is None or served == info.etag:
        return
    raise IntegrityError(
        f"{info.ref} serves ETag {served}, not the recorded {info.etag}; the "
        "manifest does not describe this blob version"
    )


def _properties_info(ref: ObjectRef, properties: BlobProperties) -> ObjectInfo:
    # An unpinned stat addresses the current blob; a pinned one is current
    # only when Azure says so.
    return _info(
        ref.with_version(properties.version_id or ref.version),
        properties,
        is_latest=ref.version is None or bool(properties.is_current_version),
    )


def _listed_info(prefix: ObjectRef, blob: BlobProperties) -> ObjectInfo:
    # Without versioning there is one blob and it is current; with it, only
    # the current version says so, and a deleted blob has no current version.
    return _info(
        prefix.child(blob.name, blob.version_id),
        blob,
        is_latest=blob.version_id is None or bool(blob.is_current_version),
    )


def _info(ref: ObjectRef, blob: BlobProperties, *, is_latest: bool) -> ObjectInfo:
    etag = _etag(blob.etag)
    md5 = blob.content_settings.content_md5
    return ObjectInfo(
        ref=ref,
        size=blob.size,
        etag=etag,
        last_modified=_utc(blob.last_modified),
        checksums={"md5": bytes(md5).hex()} if md5 and len(md5) == 16 else {},
        is_latest=is_latest,
        extra={} if etag is None else {"etagIsMd5": False},
    )


def _is_folder_stub(metadata: Mapping[str, str] | None) -> bool:
    return any(
        name.lower() == "hdi_isfolder" and value.lower() == "true"
        for name, value in (metadata or {}).items()
    )


def _etag(value: str | None) -> str | None:
    if not value:
        return None
    return value.strip('"')


def _utc(value: datetime.datetime | None) -> datetime.datetime | None:
    return None if value is None else value.astimezone(datetime.UTC)


def _no_op() -> None:
    # The downloader holds no connection between reads; nothing to release.
    return None


# Error translation: every azure-core failure becomes a refstore error here.


@dataclasses.dataclass(frozen=True)
class _Failure:
    """What Azure answered, with the reference and endpoint it concerned."""

    code: str
    status: int
    message: str
    ref: ObjectRef
    endpoint: str

    @classmethod
    def of(cls, exc: HttpResponseError, ref: ObjectRef, endpoint: str) -> _Failure:
        return cls(
            code=_error_code(exc),
            status=int(exc.status_code or 0),
            message=_first_line(exc.message),
            ref=ref,
            endpoint=endpoint,
        )


def _error_code(exc: HttpResponseError) -> str:
    # HEAD answers have no body: the code comes from x-ms-error-code, which
    # the SDK stores as a plain string or as its StorageErrorCode enum.
    code = getattr(exc, "error_code", None)
    if isinstance(code, enum.Enum):
        code = code.value
    if not code:
        headers: Mapping[str, str] = getattr(exc.response, "headers", {})
        code = headers.get("x-ms-error-code")
    return str(code or "")


def _first_line(message: str | None) -> str:
    return (message or "").strip().partition("\n")[0]


def translate_error(exc: Exception, ref: ObjectRef, endpoint: str) -> RefstoreError:
    """The refstore error for an azure-core failure concerning ``ref``."""
    if isinstance(exc, HttpResponseError) and exc.response is not None:
        failure = _Failure.of(exc, ref, endpoint)
        return apply_rules(failure, _RULES, _refused)
    if isinstance(exc, ClientAuthenticationError):
        return CredentialsError(
            f"no usable Azure credentials for {ref.location} "
            f"({_first_line(exc.message)}); {_CREDENTIALS_HINT}"
        )
    if isinstance(exc, ServiceRequestError):
        return EndpointError(
            f"cannot reach the Azure endpoint {endpoint} for {ref.location} "
            f"({_first_line(str(exc))}); check endpoint_url for this account in "
            "the refstore config and that the store is running"
        )
    if isinstance(exc, ServiceResponseError):
        return EndpointError(
            f"{endpoint} closed the connection before answering for {ref} "
            f"({_first_line(str(exc))}); try again"
        )
    return StoreError(f"Azure request for {ref} failed: {_first_line(str(exc))}")


def _is_container_missing(failure: _Failure) -> bool:
    return failure.code == "ContainerNotFound"


def _is_version_gone(failure: _Failure) -> bool:
    return failure.ref.version is not None and failure.status == 404


def _is_blob_missing(failure: _Failure) -> bool:
    return failure.code == "BlobNotFound" or failure.status == 404


def _is_credentials_rejected(failure: _Failure) -> bool:
    return failure.code in _CREDENTIAL_CODES or failure.status == 401


def _is_access_denied(failure: _Failure) -> bool:
    return failure.code in _DENIED_CODES or failure.status == 403


def _is_precondition_failed(failure: _Failure) -> bool:
    return failure.code == "ConditionNotMet" or failure.status == 412


def _container_missing(failure: _Failure) -> RefstoreError:
    return BucketNotFoundError(
        f"container {failure.ref.location} does not exist at {failure.endpoint}; "
        "check the container name, and the endpoint_url configured for this "
        "account in the refstore config"
    )


def _version_gone(failure: _Failure) -> RefstoreError:
    ref = failure.ref
    return VersionNotFoundError(
        f"the pinned version {ref.version} of {ref.unpinned_uri} no longer "
        "exists; it may have been deleted or removed by a lifecycle policy"
    )


def _blob_missing(failure: _Failure) -> RefstoreError:
    return ObjectNotFoundError(f"no blob at {failure.ref}; check the name")


def _credentials_rejected(failure: _Failure) -> RefstoreError:
    return CredentialsError(
        f"{failure.endpoint} rejected the credentials used for "
        f"{failure.ref.location} ({failure.code}: {failure.message}); "
        f"{_CREDENTIALS_HINT}"
    )


def _access_denied(failure: _Failure) -> RefstoreError:
    return AccessDeniedError(
        f"access denied to {failure.ref} ({failure.code}: {failure.message}); "
        "the credentials in use may be wrong or may not do this: check the "
        "SAS permissions or the role assigned for this account, and its "
        "network rules"
    )


def _changed(failure: _Failure) -> RefstoreError:
    return IntegrityError(
        f"{failure.ref} changed since it was recorded: its ETag no longer "
        "matches the manifest; record the artifact again, or enable blob "
        "versioning on the account so that refstore can pin blob versions"
    )


def _refused(failure: _Failure) -> RefstoreError:
    detail = f": {failure.message}" if failure.message else ""
    return StoreError(
        f"Azure refused a request for {failure.ref} with {failure.code or 'no code'} "
        f"({failure.status}){detail}"
    )


_RULES: Rules[_Failure] = (
    (_is_container_missing, _container_missing),
    (_is_version_gone, _version_gone),
    (_is_blob_missing, _blob_missing),
    (_is_credentials_rejected, _credentials_rejected),
    (_is_access_denied, _access_denied),
    (_is_precondition_failed, _changed),
)
