"""The errors refstore raises, in one tree.

Every error refstore raises on purpose derives from :class:`RefstoreError`.
Adapters (providers, catalogs, the blob store) translate vendor errors into
these classes at their boundary and chain the original with ``raise ... from
exc``, so nothing above the adapters needs to know which SDK failed.

Each message says what went wrong and what to do about it. ``exit_code`` is
what the command line exits with when the error reaches it:

* ``1``: the data does not match its record (drift, integrity failure);
* ``2``: refstore could not do what was asked (bad input, something missing,
  no access, nothing reachable).

The tree::

    RefstoreError
    ├── ConfigError                  bad configuration or environment
    ├── MissingDependencyError       an optional extra is not installed
    ├── InvalidReferenceError        a URI refstore cannot parse (also ValueError)
    ├── ManifestError                a manifest that is malformed (also ValueError)
    │   └── UnsafePathError          an entry path escapes its destination
    ├── StoreError                   an object store refused or failed
    │   ├── BucketNotFoundError
    │   ├── ObjectNotFoundError
    │   │   └── VersionNotFoundError the pinned version no longer exists
    │   ├── AccessDeniedError
    │   ├── CredentialsError         missing or invalid credentials
    │   ├── EndpointError            the store cannot be reached
    │   └── LimitExceededError       a prefix holds more objects than allowed
    ├── IntegrityError               bytes or ETag differ from the record
    ├── FetchError                   some entries of a fetch failed
    └── CatalogError                 the catalog refused or failed
        ├── NotFoundError            no such project, artifact or version
        └── ConflictError            the request contradicts the catalog
"""

from __future__ import annotations


class RefstoreError(Exception):
    """Base class of every error refstore raises on purpose."""

    exit_code = 2


class ConfigError(RefstoreError):
    """The configuration or environment is not usable."""


class MissingDependencyError(RefstoreError, ImportError):
    """An optional dependency is needed for this operation."""

    def __init__(self, extra: str, purpose: str) -> None:
        super().__init__(
            f"Install refstore[{extra}] to use {purpose}: "
            f"pip install 'refstore[{extra}]'"
        )
        self.extra = extra


class InvalidReferenceError(RefstoreError, ValueError):
    """A reference URI is malformed or uses an unknown scheme."""


class ManifestError(RefstoreError, ValueError):
    """A manifest is malformed."""


class UnsafePathError(ManifestError):
    """A manifest entry would be written outside its destination folder."""


class StoreError(RefstoreError):
    """An object store refused a request or failed to answer it."""


class BucketNotFoundError(StoreError):
    """The bucket or container does not exist."""


class ObjectNotFoundError(StoreError):
    """No object exists at the reference."""


class VersionNotFoundError(ObjectNotFoundError):
    """The pinned object version no longer exists."""


class AccessDeniedError(StoreError):
    """The credentials in use may not perform the request."""


class CredentialsError(StoreError):
    """Credentials are missing, malformed or rejected."""


class EndpointError(StoreError):
    """The store's endpoint cannot be reached."""


class LimitExceededError(StoreError):
    """A prefix holds more objects than the caller allowed."""


class IntegrityError(RefstoreError):
    """Content or metadata differs from what the manifest recorded."""

    exit_code = 1


class FetchError(RefstoreError):
    """Some entries of a fetch failed; ``failures`` holds (path, error) pairs.

    Exits 1 when any failure is an integrity failure (the data drifted), 2
    otherwise.
    """

    def __init__(self, message: str, failures: list[tuple[str, RefstoreError]]) -> None:
        super().__init__(message)
        self.failures = failures
        if any(isinstance(error, IntegrityError) for _, error in failures):
            self.exit_code = 1


class CatalogError(RefstoreError):
    """The catalog refused a request or failed to answer it."""


class NotFoundError(CatalogError):
    """No such project, artifact, version or alias."""


class ConflictError(CatalogError):
    """The request contradicts what the catalog already holds."""
