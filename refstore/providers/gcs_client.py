"""GCS clients for refstore: one per bucket configuration, counted and bounded.

Reads the per-bucket options documented in :mod:`refstore.providers.gcs`
(``endpoint_url``, ``project``, ``credentials_file``, ``anonymous``,
``user_project``, ``retry_timeout``), resolves credentials the way the SDK
would, and builds a google-cloud-storage client whose HTTP session counts
every request it sends, by JSON API method ("objects.get", "objects.list",
"buckets.get"), retries included.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import google.auth
import requests
from google.api_core.retry import Retry
from google.auth.credentials import AnonymousCredentials, Credentials
from google.auth.transport.requests import AuthorizedSession
from google.cloud.storage import Client
from google.cloud.storage.retry import DEFAULT_RETRY
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account
from requests.adapters import HTTPAdapter

from refstore.errors import ConfigError, CredentialsError
from refstore.providers.base import RequestCounter
from refstore.uri import ObjectRef

__all__ = [
    "DEFAULT_RETRY_TIMEOUT",
    "KNOWN_OPTIONS",
    "TIMEOUT",
    "ClientKey",
    "Handle",
    "client_key",
    "new_handle",
    "operation",
]

log = logging.getLogger(__name__)

KNOWN_OPTIONS = frozenset(
    {
        "endpoint_url",
        "project",
        "credentials_file",
        "anonymous",
        "user_project",
        "retry_timeout",
    }
)
READ_ONLY_SCOPE = "https://www.googleapis.com/auth/devstorage.read_only"
MAX_POOL_CONNECTIONS = 64
TIMEOUT = (10, 60)  # connect, read (seconds)
DEFAULT_RETRY_TIMEOUT = 20.0

# A JSON API path names a bucket, the objects of a bucket, or one object.
_RESOURCE_PATH = re.compile(r"/b/[^/]+(?P<objects>/o(?P<object>/[^/]+)?)?/?$")
_ITEM_VERBS = {"GET": "get", "DELETE": "delete", "PATCH": "patch", "PUT": "update"}
_COLLECTION_VERBS = {"GET": "list", "POST": "insert"}

ClientKey = tuple[tuple[str, str], ...]


@dataclasses.dataclass(frozen=True)
class Handle:
    """One configured client, with what every request through it needs."""

    key: ClientKey
    client: Any  # google.cloud.storage.Client
    session: AuthorizedSession
    retry: Retry | None
    user_project: str | None

    @property
    def endpoint(self) -> str:
        return str(self.client.api_endpoint)

    def bucket(self, name: str) -> Any:
        return self.client.bucket(name, user_project=self.user_project)

    def close(self) -> None:
        self.client.close()


def new_handle(
    ref: ObjectRef, options: Mapping[str, Any], counter: RequestCounter
) -> Handle:
    """A client for the bucket of ``ref``, configured by ``options``."""
    _warn_unknown_options(ref, options)
    retry = _retry(options)
    credentials, project = _credentials(options)
    session = _session(credentials, counter)
    try:
        client = _client(options, credentials, project, session)
    except ValueError as exc:
        session.close()
        raise ConfigError(
            f"cannot configure GCS for {ref.location}: {exc}; check "
            "endpoint_url and credentials_file for this bucket in the "
            "refstore config"
        ) from exc
    log.debug("new GCS client for %s at %s", ref.location, client.api_endpoint)
    user_project = options.get("user_project")
    key = client_key(options)
    return Handle(key, client, session, retry, user_project and str(user_project))


class _CountingAdapter(HTTPAdapter):
    """Connection pooling that counts each request sent, by operation.

    Every HTTP attempt passes through ``send``: the SDK's retries, the
    re-sends after a token refresh and the media downloads alike, so
    ``RequestCounter`` sees what the store sees.
    """

    def __init__(self, counter: RequestCounter) -> None:
        super().__init__(
            pool_connections=MAX_POOL_CONNECTIONS, pool_maxsize=MAX_POOL_CONNECTIONS
        )
        self._counter = counter

    def send(
        self, request: requests.PreparedRequest, *args: Any, **kwargs: Any
    ) -> requests.Response:
        name = operation(request.method or "", request.url or "")
        self._counter.add(name)
        log.debug("GCS %s %s", name, request.url)
        return super().send(request, *args, **kwargs)


def _session(credentials: Credentials, counter: RequestCounter) -> AuthorizedSession:
    session = AuthorizedSession(credentials)
    adapter = _CountingAdapter(counter)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def operation(method: str, url: str) -> str:
    """The JSON API method a request calls: objects.get, objects.list, ..."""
    method = method.upper()
    match = _RESOURCE_PATH.search(urlsplit(url).path)
    if match is None:
        return method
    if match["object"]:
        return f"objects.{_ITEM_VERBS.get(method, method)}"
    if match["objects"]:
        return f"objects.{_COLLECTION_VERBS.get(method, method)}"
    return f"buckets.{_ITEM_VERBS.get(method, method)}"


def _client(
    options: Mapping[str, Any],
    credentials: Credentials,
    project: str | None,
    session: AuthorizedSession,
) -> Any:
    endpoint = options.get("endpoint_url")
    client = Client(
        project=options.get("project") or project,
        credentials=credentials,
        _http=session,
        client_options={"api_endpoint": str(endpoint)} if endpoint else None,
    )
    # The SDK fetches each bucket's metadata (a buckets.get) in a background
    # thread for its telemetry; refstore sends no request it did not ask for.
    client._bucket_metadata_cache = None
    return client


def _credentials(options: Mapping[str, Any]) -> tuple[Credentials, str | None]:
    if _flag(options, "anonymous"):
        return AnonymousCredentials(), None
    path = options.get("credentials_file")
    if path:
        return _credentials_from_file(Path(str(path)).expanduser())
    if os.environ.get("STORAGE_EMULATOR_HOST") and not options.get("endpoint_url"):
        # The SDK sends no credentials to an emulator named this way either.
        return AnonymousCredentials(), None
    return google.auth.default(scopes=[READ_ONLY_SCOPE])


def _credentials_from_file(path: Path) -> tuple[Credentials, str | None]:
    # Loaded by type, as google-auth advises: a file of another type than the
    # user meant to name cannot slip in.
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
        kind = info.get("type") if isinstance(info, dict) else None
        if kind == "service_account":
            credentials: Credentials = (
                service_account.Credentials.from_service_account_info(
                    info, scopes=[READ_ONLY_SCOPE]
                )
            )
            return credentials, info.get("project_id")
        if kind == "authorized_user":
            credentials = user_credentials.Credentials.from_authorized_user_info(
                info, scopes=[READ_ONLY_SCOPE]
            )
            return credentials, None
    except (OSError, ValueError) as exc:
        raise CredentialsError(
            f"cannot use the GCS credentials_file {path} ({exc}); fix "
            "credentials_file for this bucket in the refstore config"
        ) from exc
    raise ConfigError(
        f"the GCS credentials_file {path} holds {kind or 'no'} credentials; "
        "credentials_file takes a service-account key or an authorized-user "
        "file; for other kinds (workload identity federation, impersonation) "
        "set GOOGLE_APPLICATION_CREDENTIALS instead"
    )


def _flag(options: Mapping[str, Any], name: str) -> bool:
    value = options.get(name, False)
    if not isinstance(value, bool):
        raise ConfigError(
            f"GCS option {name} must be true or false, not {value!r}; fix it "
            "in the refstore config"
        )
    return value


def _retry(options: Mapping[str, Any]) -> Retry | None:
    seconds = options.get("retry_timeout", DEFAULT_RETRY_TIMEOUT)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise ConfigError(
            f"GCS option retry_timeout must be a number of seconds (0 or more), "
            f"not {seconds!r}; fix it in the refstore config"
        )
    if seconds == 0:
        return None
    retry: Retry = DEFAULT_RETRY.with_timeout(float(seconds))
    return retry


def client_key(options: Mapping[str, Any]) -> ClientKey:
    return tuple(sorted((str(name), str(value)) for name, value in options.items()))


def _warn_unknown_options(ref: ObjectRef, options: Mapping[str, Any]) -> None:
    unknown = sorted(set(options) - KNOWN_OPTIONS)
    if unknown:
        log.warning(
            "ignoring unknown GCS options for %s: %s (known: %s)",
            ref.location,
            ", ".join(unknown),
            ", ".join(sorted(KNOWN_OPTIONS)),
        )
