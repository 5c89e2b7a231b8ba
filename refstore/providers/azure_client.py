"""Azure Blob clients for refstore: one per account configuration, counted.

Reads the options documented in :mod:`refstore.providers.azure` at their
three levels (``az``, ``az://ACCOUNT``, ``az://ACCOUNT/container``), picks
the credential (connection string, account key, SAS, anonymous, or
DefaultAzureCredential), and builds an azure-storage-blob client with
bounded retries and timeouts whose every HTTP attempt is counted by Blob
REST operation ("GetBlobProperties", "GetBlob", "ListBlobs").
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import requests
from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.blob import BlobServiceClient, ExponentialRetry
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from refstore.config import Settings
from refstore.errors import ConfigError
from refstore.uri import ObjectRef

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential
    from azure.core.pipeline import PipelineRequest
    from azure.core.rest import HttpRequest

__all__ = [
    "CONNECTION_STRING_ENV",
    "KNOWN_OPTIONS",
    "ClientKey",
    "account_options",
    "account_url",
    "client_key",
    "new_client",
    "operation_name",
]

log = logging.getLogger(__name__)

CREDENTIAL_OPTIONS = frozenset(
    {"connection_string", "account_key", "sas_token", "anonymous"}
)
KNOWN_OPTIONS = CREDENTIAL_OPTIONS | {"endpoint_url", "max_attempts"}
CONNECTION_STRING_ENV = "AZURE_STORAGE_CONNECTION_STRING"
DEVELOPMENT_ACCOUNT = "devstoreaccount1"
DEFAULT_ATTEMPTS = 3
MAX_POOL_CONNECTIONS = 64
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 60
# The SDK holds each ranged GET of a read in memory: bounded chunks keep
# concurrent fetches small without a request per few bytes.
READ_CHUNK = 8 * 1024 * 1024

_BLOB_READS = {"HEAD": "GetBlobProperties", "GET": "GetBlob"}
_BLOB_HOST = re.compile(r"(?P<account>[a-z0-9]{3,24})\.blob\.core\.windows\.net")

ClientKey = tuple[str, tuple[tuple[str, str], ...]]
RequestHook = Callable[["PipelineRequest[HttpRequest]"], None]


def new_client(
    ref: ObjectRef,
    options: Mapping[str, Any],
    *,
    hook: RequestHook,
    default_credential: Callable[[], TokenCredential],
) -> BlobServiceClient:
    """A client for the account of ``ref``; ``hook`` sees every HTTP attempt.

    ``default_credential`` is called only when no option or connection string
    names a credential.
    """
    _check_options(ref, options)
    connection_string = _connection_string(ref, options)
    if connection_string is not None:
        client = _from_connection_string(ref, connection_string, options, hook)
    else:
        url = account_url(ref, options)
        credential = _credential(ref, options, url, default_credential)
        settings = _client_settings(options, hook)
        client = BlobServiceClient(url, credential=credential, **settings)
    log.debug("new Azure client for %s at %s", ref.location, client.url)
    return client


def _credential(
    ref: ObjectRef,
    options: Mapping[str, Any],
    url: str,
    default_credential: Callable[[], TokenCredential],
) -> AzureNamedKeyCredential | AzureSasCredential | TokenCredential | None:
    if "account_key" in options:
        return AzureNamedKeyCredential(str(ref.account), str(options["account_key"]))
    if "sas_token" in options:
        return AzureSasCredential(str(options["sas_token"]).lstrip("?"))
    if options.get("anonymous") is True:
        return None
    if not url.startswith("https://"):
        raise ConfigError(
            f"{ref.location} has no account_key, sas_token or "
            "connection_string in the refstore config, and Azure AD tokens "
            f"are never sent to a plain-http endpoint ({url}); set one of "
            "them for this account"
        )
    return default_credential()


def account_options(settings: Settings, ref: ObjectRef) -> dict[str, Any]:
    """The options for the account and container of ``ref``, most specific last."""
    merged: dict[str, Any] = {}
    for location in (ref.scheme, f"az://{ref.account}", ref.location):
        level = settings.stores.get(location, {})
        named = sorted(CREDENTIAL_OPTIONS & level.keys())
        if len(named) > 1:
            raise ConfigError(
                f"[stores.{location!r}] in the refstore config sets "
                f"{' and '.join(named)}; set one credential per account or container"
            )
        if named:
            for name in CREDENTIAL_OPTIONS:
                merged.pop(name, None)
        merged.update(level)
    return merged


def client_key(ref: ObjectRef, options: Mapping[str, Any]) -> ClientKey:
    values = tuple(sorted((str(name), str(value)) for name, value in options.items()))
    return str(ref.account), values


def _check_options(ref: ObjectRef, options: Mapping[str, Any]) -> None:
    unknown = sorted(set(options) - KNOWN_OPTIONS)
    if unknown:
        log.warning(
            "ignoring unknown option(s) %s for %s in the refstore config; "
            "Azure accounts accept %s",
            ", ".join(unknown),
            ref.location,
            ", ".join(sorted(KNOWN_OPTIONS)),
        )
    if "connection_string" in options and "endpoint_url" in options:
        raise ConfigError(
            f"{ref.location} has both connection_string and endpoint_url in the "
            "refstore config; the connection string names the endpoint "
            "(BlobEndpoint=...), so remove endpoint_url"
        )
    if "anonymous" in options and not isinstance(options["anonymous"], bool):
        raise ConfigError(f"anonymous for {ref.location} must be true or false")


def _client_settings(
    options: Mapping[str, Any], hook: Callable[[PipelineRequest[HttpRequest]], None]
) -> dict[str, Any]:
    attempts = _positive_int(options, "max_attempts", DEFAULT_ATTEMPTS)
    # The SDK's default backoff starts at 15 s; a dead endpoint must fail fast.
    retry = ExponentialRetry(
        initial_backoff=1,
        increment_base=2,
        retry_total=attempts - 1,
        random_jitter_range=1,
    )
    return {
        "retry_policy": retry,
        "transport": _transport(),
        "max_single_get_size": READ_CHUNK,
        "max_chunk_get_size": READ_CHUNK,
        "raw_request_hook": hook,
        "user_agent": "refstore",
    }


def _transport() -> RequestsTransport:
    # requests keeps 10 connections per host, and concurrent fetches and
    # verifications use more. Retries belong to the SDK's policy, not urllib3.
    adapter = HTTPAdapter(
        pool_connections=MAX_POOL_CONNECTIONS,
        pool_maxsize=MAX_POOL_CONNECTIONS,
        max_retries=Retry(total=False, redirect=False, raise_on_status=False),
    )
    session = requests.Session()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return RequestsTransport(
        session=session,
        session_owner=True,
        connection_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
    )


def _positive_int(options: Mapping[str, Any], name: str, default: int) -> int:
    value = options.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"{name} = {value!r} in the refstore config must be a whole number "
            "of 1 or more"
        )
    return value


def account_url(ref: ObjectRef, options: Mapping[str, Any]) -> str:
    url = options.get("endpoint_url")
    if url is None:
        return f"https://{ref.account}.blob.core.windows.net"
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        raise ConfigError(
            f"endpoint_url = {url!r} for {ref.location} must be an http(s) URL "
            "such as http://127.0.0.1:10000/devstoreaccount1"
        )
    return url.rstrip("/")


def _connection_string(ref: ObjectRef, options: Mapping[str, Any]) -> str | None:
    """The connection string for ``ref``'s account, from the config or env."""
    configured = options.get("connection_string")
    if configured is not None:
        named = _connection_account(str(configured))
        if named is not None and named != ref.account:
            raise ConfigError(
                f"the connection_string set for {ref.location} in the refstore "
                f"config is for the account {named}, not {ref.account}"
            )
        return str(configured)
    if CREDENTIAL_OPTIONS & options.keys() or "endpoint_url" in options:
        return None
    from_env = os.environ.get(CONNECTION_STRING_ENV)
    if from_env and _connection_account(from_env) == ref.account:
        return from_env
    return None


def _connection_account(connection_string: str) -> str | None:
    """The account a connection string is for, when it says."""
    fields: dict[str, str] = {}
    for part in connection_string.split(";"):
        name, sep, value = part.partition("=")
        if sep:
            fields[name.strip().lower()] = value.strip()
    if fields.get("usedevelopmentstorage", "").lower() == "true":
        return DEVELOPMENT_ACCOUNT
    if fields.get("accountname"):
        return fields["accountname"]
    host = _BLOB_HOST.fullmatch(urlsplit(fields.get("blobendpoint", "")).hostname or "")
    return None if host is None else host["account"]


def _from_connection_string(
    ref: ObjectRef,
    connection_string: str,
    options: Mapping[str, Any],
    hook: RequestHook,
) -> BlobServiceClient:
    settings = _client_settings(options, hook)
    try:
        return BlobServiceClient.from_connection_string(connection_string, **settings)
    except ValueError as exc:
        settings["transport"].close()
        raise ConfigError(
            f"the Azure connection string for {ref.location} is not usable ({exc}); "
            "copy it again from the portal (Access keys) or Azurite's documentation"
        ) from exc


def operation_name(request: HttpRequest) -> str:
    """The Blob REST operation a request performs, by its documented name."""
    query = parse_qs(urlsplit(request.url).query)
    comp = query.get("comp", [""])[0]
    resource = query.get("restype", ["blob"])[0]
    if resource == "container" and comp == "list":
        return "ListBlobs"
    if resource == "blob" and not comp and request.method in _BLOB_READS:
        return _BLOB_READS[request.method]
    return " ".join(filter(None, (request.method, resource, comp)))
