"""refstore: versioned reference artifacts for data that lives in object stores.

Record which exact object versions a dataset or model consists of, without
copying them; later verify that they are unchanged and fetch exactly them.
"""

from __future__ import annotations

from refstore.api import Api
from refstore.artifact import Artifact
from refstore.config import Settings
from refstore.errors import (
    AccessDeniedError,
    BucketNotFoundError,
    CatalogError,
    ConfigError,
    ConflictError,
    CredentialsError,
    EndpointError,
    FetchError,
    IntegrityError,
    InvalidReferenceError,
    LimitExceededError,
    ManifestError,
    MissingDependencyError,
    NotFoundError,
    ObjectNotFoundError,
    RefstoreError,
    StoreError,
    UnsafePathError,
    VersionNotFoundError,
)
from refstore.manifest import Manifest, ManifestEntry, ObjectInfo
from refstore.uri import ObjectRef, parse_uri

__version__ = "0.1.0"

__all__ = [
    "AccessDeniedError",
    "Api",
    "Artifact",
    "BucketNotFoundError",
    "CatalogError",
    "ConfigError",
    "ConflictError",
    "CredentialsError",
    "EndpointError",
    "FetchError",
    "IntegrityError",
    "InvalidReferenceError",
    "LimitExceededError",
    "Manifest",
    "ManifestEntry",
    "ManifestError",
    "MissingDependencyError",
    "NotFoundError",
    "ObjectInfo",
    "ObjectNotFoundError",
    "ObjectRef",
    "RefstoreError",
    "Settings",
    "StoreError",
    "UnsafePathError",
    "VersionNotFoundError",
    "__version__",
    "parse_uri",
]
