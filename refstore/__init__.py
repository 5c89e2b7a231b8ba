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
from refstore.manifest_diff import ManifestDiff
from refstore.run import Run
from refstore.runs import init
from refstore.sweeps import agent, sweep
from refstore.ttl import INHERIT
from refstore.uri import ObjectRef, parse_uri
from refstore.verify import VerifyReport, verify_manifest_file

__version__ = "0.1.0"

__all__ = [
    "INHERIT",
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
    "ManifestDiff",
    "ManifestEntry",
    "ManifestError",
    "MissingDependencyError",
    "NotFoundError",
    "ObjectInfo",
    "ObjectNotFoundError",
    "ObjectRef",
    "RefstoreError",
    "Run",
    "Settings",
    "StoreError",
    "UnsafePathError",
    "VerifyReport",
    "VersionNotFoundError",
    "__version__",
    "agent",
    "init",
    "parse_uri",
    "sweep",
    "verify_manifest_file",
]
