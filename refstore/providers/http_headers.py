"""HTTP headers for the HTTP provider: what a response says, as ObjectInfo
fields, and what a request must say to get the recorded bytes.

Pure functions over case-insensitive header mappings (aiohttp's
``CIMultiDictProxy``); nothing here sends a request.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import email.utils
import logging
from collections.abc import Mapping
from typing import Any

from refstore.manifest import ObjectInfo
from refstore.uri import ObjectRef

__all__ = [
    "byte_range",
    "object_info",
    "parse_etag",
    "preconditions",
    "retry_after",
    "same_entity",
]

log = logging.getLogger(__name__)


def object_info(
    ref: ObjectRef, headers: Mapping[str, str], size: int, sha256: str | None = None
) -> ObjectInfo:
    """What a HEAD or GET answer says about ``ref``, normalised."""
    etag, weak = parse_etag(headers.get("ETag"))
    modified = _http_date(headers.get("Last-Modified"))
    checksums = _checksums(headers)
    if sha256 is not None:
        checksums.setdefault("sha256", sha256)
    extra: dict[str, Any] = {}
    if weak:
        extra["weakETag"] = True
    if modified is not None:
        extra["lastModified"] = modified.isoformat()
    return ObjectInfo(
        ref=ref,
        size=size,
        etag=etag,
        last_modified=modified,
        checksums=checksums,
        extra=extra,
    )


def parse_etag(value: str | None) -> tuple[str | None, bool]:
    """The ETag without quotes (``W/`` kept), and whether it is weak."""
    if not value or not value.strip():
        return None, False
    value = value.strip()
    weak = value.startswith("W/")
    tag = value.removeprefix("W/").strip('"')
    if not tag:
        return None, False
    return (f"W/{tag}" if weak else tag), weak


def same_entity(served: str, recorded: str) -> bool:
    """Weak comparison (RFC 9110): the tags match, weak or not."""
    return served.removeprefix("W/") == recorded.removeprefix("W/")


def preconditions(info: ObjectInfo) -> dict[str, str]:
    """Headers that make a GET fail (412) when ``info`` no longer holds.

    If-Match needs a strong ETag; without one, the Last-Modified date is the
    only precondition a server can check.
    """
    if info.etag is not None and not info.etag.startswith("W/"):
        return {"If-Match": f'"{info.etag}"'}
    if info.last_modified is not None:
        stamp = email.utils.format_datetime(
            info.last_modified.astimezone(datetime.UTC), usegmt=True
        )
        return {"If-Unmodified-Since": stamp}
    return {}


def byte_range(start: int, end: int | None) -> dict[str, str]:
    """The Range header for the bytes ``[start, end)``; none for all of them."""
    if not start and end is None:
        return {}
    last = "" if end is None else str(end - 1)
    return {"Range": f"bytes={start}-{last}"}


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds a 429 or 503 asks to wait: delay-seconds or an HTTP date."""
    value = headers.get("Retry-After", "").strip()
    if value.isdigit():
        return float(value)
    when = _http_date(value)
    if when is None:
        return None
    return max(0.0, (when - datetime.datetime.now(datetime.UTC)).total_seconds())


def _http_date(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        log.debug("ignoring unparsable HTTP date %r", value)
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.astimezone(datetime.UTC)


def _checksums(headers: Mapping[str, str]) -> dict[str, str]:
    checksums: dict[str, str] = {}
    md5 = _hex_of_base64(headers.get("Content-MD5"), 16)
    if md5 is not None:
        checksums["md5"] = md5
    # RFC 9530 Repr-Digest first, then RFC 3230 Digest, which it replaced.
    sha256 = _sha256_member(headers.get("Repr-Digest")) or _sha256_member(
        headers.get("Digest")
    )
    if sha256 is not None:
        checksums["sha256"] = sha256
    return checksums


def _sha256_member(value: str | None) -> str | None:
    """sha-256 of ``sha-256=:BASE64:, ...`` (RFC 9530) or ``SHA-256=BASE64``."""
    for member in (value or "").split(","):
        name, _, encoded = member.strip().partition("=")
        if name.strip().lower() == "sha-256":
            return _hex_of_base64(encoded.strip().strip(":"), 32)
    return None


def _hex_of_base64(value: str | None, length: int) -> str | None:
    if not value:
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == length else None
