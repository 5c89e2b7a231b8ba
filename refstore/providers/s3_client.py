"""S3 clients for refstore: one per bucket configuration, built the same way.

Reads the per-bucket options documented in :mod:`refstore.providers.s3` and
builds a boto3 client with bounded retries and timeouts, a connection pool
large enough for every fetch worker, and a timestamp parser that skips
dateutil. botocore parses every timestamp it receives (the Last-Modified
header of each GetObject, each listed object's LastModified) with dateutil,
which costs about 0.1 ms a value: on a fetch of many small objects that is
several per cent of the client's CPU time. S3 sends two forms only, so the
standard library parses them, and anything else goes to botocore's parser.
"""

from __future__ import annotations

import datetime
import email.utils
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import boto3.session
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.utils import parse_timestamp as botocore_parse_timestamp

from refstore.errors import ConfigError
from refstore.uri import ObjectRef

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

__all__ = [
    "KNOWN_OPTIONS",
    "MAX_POOL_CONNECTIONS",
    "ClientKey",
    "client_key",
    "new_client",
    "parse_timestamp",
]

log = logging.getLogger(__name__)

KNOWN_OPTIONS = frozenset(
    {
        "endpoint_url",
        "region",
        "profile",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "addressing_style",
        "max_attempts",
    }
)
MAX_POOL_CONNECTIONS = 64
CONNECT_TIMEOUT = 10
READ_TIMEOUT = 60

# Parsing botocore's S3 model and endpoint rules takes about 0.1 s per session;
# one loader shared by every session keeps what it parsed, so a per-bucket
# client costs about a tenth of that.
_LOADER = botocore.loaders.create_loader()

ClientKey = tuple[tuple[str, str], ...]


def client_key(options: Mapping[str, Any]) -> ClientKey:
    """Buckets with equal options share one client."""
    return tuple(sorted((str(name), str(value)) for name, value in options.items()))


def new_client(ref: ObjectRef, options: Mapping[str, Any]) -> S3Client:
    """A client for the bucket of ``ref``, configured by its ``options``."""
    _warn_unknown_options(ref, options)
    client: S3Client = _session(options).client(
        "s3", endpoint_url=options.get("endpoint_url"), config=_config(options)
    )
    return client


def parse_timestamp(value: Any) -> datetime.datetime:
    """An S3 timestamp (RFC 7231 in headers, ISO 8601 in XML) as aware UTC."""
    if isinstance(value, str):
        parsed = _parse_text(value)
        if parsed is not None:
            return parsed
    result: datetime.datetime = botocore_parse_timestamp(value)
    return result


def _parse_text(value: str) -> datetime.datetime | None:
    try:
        if value.endswith("GMT"):
            parsed = email.utils.parsedate_to_datetime(value)
        else:
            parsed = datetime.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return None
    if parsed.tzinfo is None:
        return None  # botocore decides what a zone-less time means
    return parsed.astimezone(datetime.UTC)


def _warn_unknown_options(ref: ObjectRef, options: Mapping[str, Any]) -> None:
    unknown = sorted(set(options) - KNOWN_OPTIONS)
    if unknown:
        log.warning(
            "ignoring unknown option(s) %s for %s in the refstore config; "
            "S3 buckets accept %s",
            ", ".join(unknown),
            ref.location,
            ", ".join(sorted(KNOWN_OPTIONS)),
        )


def _session(options: Mapping[str, Any]) -> boto3.session.Session:
    core = botocore.session.get_session()
    core.register_component("data_loader", _LOADER)
    core.get_component("response_parser_factory").set_parser_defaults(
        timestamp_parser=parse_timestamp
    )
    return boto3.session.Session(
        botocore_session=core,
        profile_name=options.get("profile"),
        region_name=options.get("region"),
        aws_access_key_id=options.get("aws_access_key_id"),
        aws_secret_access_key=options.get("aws_secret_access_key"),
        aws_session_token=options.get("aws_session_token"),
    )


def _config(options: Mapping[str, Any]) -> Config:
    retries: dict[str, Any] = {"mode": "standard"}
    if "max_attempts" in options:
        retries["total_max_attempts"] = _positive_int(options, "max_attempts")
    s3: dict[str, Any] = {}
    if "addressing_style" in options:
        s3["addressing_style"] = options["addressing_style"]
    return Config(
        retries=retries,  # type: ignore[arg-type]
        s3=s3 or None,  # type: ignore[arg-type]
        max_pool_connections=MAX_POOL_CONNECTIONS,
        # Reads ask for S3's checksum themselves where it is needed (see
        # _get_params in refstore.providers.s3).
        response_checksum_validation="when_required",
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        user_agent_extra="refstore",
    )


def _positive_int(options: Mapping[str, Any], name: str) -> int:
    value = options[name]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(
            f"{name} = {value!r} in the refstore config must be a whole number "
            "of 1 or more"
        )
    return value
