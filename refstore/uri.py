"""References: parsed object-store URIs, and their canonical printed form.

A reference names one object (``s3://bucket/key``) or a folder of objects
(``s3://bucket/prefix/``), optionally pinned to one object version:

* S3: ``s3://bucket/key?versionId=ID``
* GCS: ``gs://bucket/key#GENERATION``
* Azure Blob: ``az://ACCOUNT/container/blob?versionId=ID``, or the same blob
  as ``https://ACCOUNT.blob.core.windows.net/container/blob?versionId=ID``
* HTTP(S): ``https://host/path`` (no versions exist)
* any fsspec protocol: ``file:///abs/path``, ``memory://path``, ...

Keys are kept exactly as written (spaces and unicode included); only a
trailing pin is split off. Parsing is pure: nothing here touches a network.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from refstore.errors import InvalidReferenceError

__all__ = ["ObjectRef", "is_reference", "parse_uri"]

# Patterns are applied with fullmatch: "$" would also match before a trailing
# newline and let "bucket\n" or "key#12\n" through.
_S3_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_GCS_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
_GCS_LABEL_MAX = 63
_AZ_CONTAINER = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?!-)){1,61}[a-z0-9]")
_AZ_ACCOUNT = re.compile(r"[a-z0-9]{3,24}")
_AZ_HOST = re.compile(r"(?P<account>[a-z0-9]{3,24})\.blob\.core\.windows\.net")
_SCHEME = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)://(?P<rest>.*)", re.S)
_GENERATION = re.compile(r"(?P<key>.*)#(?P<generation>[0-9]+)", re.S)
_VERSION_QUERY = re.compile(r"(?P<key>.*)\?versionId=(?P<version>[^&?#]+)", re.S)

MAX_KEY_BYTES = 1024

# Schemes with a dedicated provider and a bucket in the authority. Everything
# else that looks like ``scheme://`` is handed to fsspec as a plain path.
_BUCKET_SCHEMES = {"s3", "gs", "az"}
_HTTP_SCHEMES = {"http", "https"}

# Other names for the stores above (Hadoop's, fsspec plug-ins'). Handed to
# fsspec they would lose version pinning, so they are refused with the
# scheme to write instead.
_SCHEME_ALIASES = {
    "s3a": "s3",
    "s3n": "s3",
    "gcs": "gs",
    "abfs": "az",
    "abfss": "az",
    "wasb": "az",
    "wasbs": "az",
    "azure": "az",
}
# urlsplit silently deletes these characters, which would change the reference.
_URL_STRIPPED = ("\t", "\r", "\n")


@dataclasses.dataclass(frozen=True, slots=True)
class ObjectRef:
    """One object, or one folder of objects, in a store.

    ``bucket`` is the S3/GCS bucket, the Azure container, the HTTP host or
    ``""`` for fsspec paths; ``key`` is the object key (empty for a whole
    bucket); ``version`` pins one object version; ``account`` is the Azure
    storage account.
    """

    scheme: str
    bucket: str
    key: str
    version: str | None = None
    account: str | None = None

    @property
    def is_prefix(self) -> bool:
        """True when the reference names a folder (empty key or trailing /)."""
        return self.key == "" or self.key.endswith("/")

    @property
    def uri(self) -> str:
        """The canonical URI, pin included."""
        base = self.unpinned_uri
        if self.version is None:
            return base
        if self.scheme == "gs":
            return f"{base}#{self.version}"
        return f"{base}?versionId={self.version}"

    @property
    def unpinned_uri(self) -> str:
        """The canonical URI without a version pin."""
        if self.scheme == "az":
            return f"az://{self.account}/{self.bucket}/{self.key}"
        if self.scheme in _BUCKET_SCHEMES or self.scheme in _HTTP_SCHEMES:
            return f"{self.scheme}://{self.bucket}/{self.key}"
        return f"{self.scheme}://{self.key}"

    @property
    def location(self) -> str:
        """Where the bucket lives, for messages and per-bucket settings."""
        if self.scheme == "az":
            return f"az://{self.account}/{self.bucket}"
        return f"{self.scheme}://{self.bucket}"

    def as_prefix(self) -> ObjectRef:
        """The folder this reference names: ``data`` becomes ``data/``."""
        if self.is_prefix:
            return dataclasses.replace(self, version=None)
        return dataclasses.replace(self, key=self.key + "/", version=None)

    def child(self, key: str, version: str | None = None) -> ObjectRef:
        """Another object in the same bucket."""
        return dataclasses.replace(self, key=key, version=version)

    def with_version(self, version: str | None) -> ObjectRef:
        if version == self.version:
            return self
        # Not dataclasses.replace: this runs once per object fetched, and
        # replace costs several times a plain construction.
        return ObjectRef(self.scheme, self.bucket, self.key, version, self.account)

    def __str__(self) -> str:
        return self.uri


def is_reference(text: str) -> bool:
    """True when ``text`` looks like a URI rather than a local path."""
    return _SCHEME.fullmatch(text) is not None


def parse_uri(text: str) -> ObjectRef:
    """Parse a reference URI, raising :class:`InvalidReferenceError` if bad."""
    match = _SCHEME.fullmatch(text)
    if match is None:
        raise InvalidReferenceError(
            f"{text!r} is not a reference URI: expected scheme://bucket/key, "
            "for example s3://my-bucket/data/ or gs://my-bucket/file.csv"
        )
    scheme = match["scheme"].lower()
    rest = match["rest"]
    if scheme == "s3":
        return _parse_s3(text, rest)
    if scheme == "gs":
        return _parse_gs(text, rest)
    if scheme == "az":
        return _parse_az(text, rest)
    if scheme in _HTTP_SCHEMES:
        return _parse_http(text, scheme)
    return _parse_fsspec(text, scheme, rest)


def _split_bucket(text: str, rest: str, what: str) -> tuple[str, str]:
    bucket, _, key = rest.partition("/")
    if not bucket:
        raise InvalidReferenceError(
            f"{text!r} names no {what}: write it as "
            f"{text.split('://')[0]}://{what.upper()}/key"
        )
    return bucket, key


def _check_key(text: str, key: str) -> None:
    _check_no_nul(text, key)
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise InvalidReferenceError(
            f"{text!r}: object keys must be valid UTF-8 text ({exc.reason})"
        ) from exc
    if size > MAX_KEY_BYTES:
        raise InvalidReferenceError(
            f"{text[:80]!r}...: object keys are at most {MAX_KEY_BYTES} bytes"
        )


def _check_no_nul(text: str, key: str) -> None:
    if "\x00" in key:
        raise InvalidReferenceError(f"{text!r}: object keys cannot contain NUL")


def _split_version_query(text: str, key: str) -> tuple[str, str | None]:
    pinned = _VERSION_QUERY.fullmatch(key)
    if pinned is None:
        return key, None
    _check_pinned_object(text, pinned["key"])
    return pinned["key"], pinned["version"]


def _check_pinned_object(text: str, key: str) -> None:
    if not key or key.endswith("/"):
        raise InvalidReferenceError(
            f"{text!r}: a versionId pins one object, not a folder; "
            "remove ?versionId= or name the object"
        )


def _parse_s3(text: str, rest: str) -> ObjectRef:
    bucket, key = _split_bucket(text, rest, "bucket")
    _check_s3_bucket(text, bucket)
    key, version = _split_version_query(text, key)
    _check_key(text, key)
    return ObjectRef("s3", bucket, key, version)


def _check_s3_bucket(text: str, bucket: str) -> None:
    valid = (
        _S3_BUCKET.fullmatch(bucket) is not None
        and ".." not in bucket
        and not bucket.startswith("xn--")
        and not _is_ip_address(bucket)
    )
    if not valid:
        raise InvalidReferenceError(
            f"{text!r}: {bucket!r} is not a valid S3 bucket name (3-63 "
            "characters: lowercase letters, digits, dots and hyphens, "
            "starting and ending with a letter or digit)"
        )


def _is_ip_address(text: str) -> bool:
    # Only digits and dots can spell an address a bucket name could be (IPv6
    # needs colons, which bucket names lack); skip the parse for the rest.
    if not text.replace(".", "").isdigit():
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _parse_gs(text: str, rest: str) -> ObjectRef:
    bucket, key = _split_bucket(text, rest, "bucket")
    _check_gcs_bucket(text, bucket)
    version = None
    pinned = _GENERATION.fullmatch(key)
    if pinned is not None:
        key, version = pinned["key"], pinned["generation"]
        if not key or key.endswith("/"):
            raise InvalidReferenceError(
                f"{text!r}: a #generation pins one object, not a folder"
            )
    _check_key(text, key)
    return ObjectRef("gs", bucket, key, version)


def _check_gcs_bucket(text: str, bucket: str) -> None:
    valid = (
        _GCS_BUCKET.fullmatch(bucket) is not None
        and ".." not in bucket
        and all(len(label) <= _GCS_LABEL_MAX for label in bucket.split("."))
        and not _is_ip_address(bucket)
    )
    if not valid:
        raise InvalidReferenceError(
            f"{text!r}: {bucket!r} is not a valid GCS bucket name (3-63 "
            "characters, or up to 222 in dot-separated parts of at most 63: "
            "lowercase letters, digits, dots, hyphens and underscores, "
            "starting and ending with a letter or digit, not an IP address)"
        )


def _parse_az(text: str, rest: str) -> ObjectRef:
    account, path = _split_bucket(text, rest, "account")
    if _AZ_ACCOUNT.fullmatch(account) is None:
        raise InvalidReferenceError(
            f"{text!r}: {account!r} is not a valid Azure storage account name "
            "(3-24 lowercase letters and digits); write az://ACCOUNT/container/blob"
        )
    container, _, blob = path.partition("/")
    _check_az_container(text, container)
    blob, version = _split_version_query(text, blob)
    _check_key(text, blob)
    return ObjectRef("az", container, blob, version, account=account)


def _check_az_container(text: str, container: str) -> None:
    if _AZ_CONTAINER.fullmatch(container) is None:
        raise InvalidReferenceError(
            f"{text!r}: {container!r} is not a valid Azure container name "
            "(3-63 lowercase letters, digits and single hyphens)"
        )


def _parse_http(text: str, scheme: str) -> ObjectRef:
    parts = _split_url(text)
    if not parts.hostname:
        raise InvalidReferenceError(f"{text!r} names no host")
    azure = _AZ_HOST.fullmatch(parts.hostname)
    if azure is not None and scheme == "https":
        return _parse_azure_url(text, azure["account"], parts)
    key = parts.path.lstrip("/")
    _check_no_nul(text, key)
    if parts.query:
        key = f"{key}?{parts.query}"
    return ObjectRef(scheme, parts.netloc, key)


def _split_url(text: str) -> SplitResult:
    if any(char in text for char in _URL_STRIPPED):
        raise InvalidReferenceError(
            f"{text!r}: URLs cannot contain tabs or line breaks; "
            "percent-encode them (%09, %0D, %0A)"
        )
    try:
        return urlsplit(text)
    except ValueError as exc:
        raise InvalidReferenceError(f"{text!r} is not a valid URL: {exc}") from exc


def _parse_azure_url(text: str, account: str, parts: SplitResult) -> ObjectRef:
    # The URL path is percent-encoded; az:// URIs carry the blob name as is.
    # Other query parameters (SAS tokens among them) are dropped.
    container, _, blob = unquote(parts.path.lstrip("/")).partition("/")
    _check_az_container(text, container)
    versions = parse_qs(parts.query).get("versionId")
    version = versions[0] if versions else None
    if version is not None:
        _check_pinned_object(text, blob)
        if any(char in version for char in "&?#"):
            # It could not be written back as az://...?versionId=
            raise InvalidReferenceError(f"{text!r}: {version!r} is not a versionId")
    _check_key(text, blob)
    return ObjectRef("az", container, blob, version, account=account)


def _parse_fsspec(text: str, scheme: str, rest: str) -> ObjectRef:
    if scheme in _SCHEME_ALIASES:
        raise InvalidReferenceError(
            f"{text!r}: refstore does not serve {scheme}://; write "
            f"{_SCHEME_ALIASES[scheme]}://... so that object versions are pinned"
        )
    if not rest:
        raise InvalidReferenceError(f"{text!r} names no path after {scheme}://")
    _check_no_nul(text, rest)
    return ObjectRef(scheme=scheme, bucket="", key=rest)
