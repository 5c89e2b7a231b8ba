"""The error tree: one base class, exit codes, messages that say what to do."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable

import pytest

from refstore import errors
from refstore.errors import (
    FetchError,
    IntegrityError,
    InvalidReferenceError,
    ManifestError,
    MissingDependencyError,
    RefstoreError,
    UnsafePathError,
)

ERROR_CLASSES: list[type[Exception]] = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if cls.__module__ == errors.__name__ and issubclass(cls, Exception)
]

# Classes whose constructor takes more than a message.
FACTORIES: dict[type[Exception], Callable[[], Exception]] = {
    MissingDependencyError: lambda: MissingDependencyError("gcs", "gs:// references"),
    FetchError: lambda: FetchError("2 entries failed", []),
}


def make(cls: type[Exception]) -> Exception:
    factory = FACTORIES.get(cls)
    return factory() if factory else cls("something went wrong")


def by_name(classes: list[type[Exception]]) -> list[pytest.ParameterSet]:
    return [pytest.param(cls, id=cls.__name__) for cls in classes]


@pytest.mark.parametrize("cls", by_name(ERROR_CLASSES))
def test_every_error_is_a_refstore_error(cls: type[Exception]) -> None:
    assert issubclass(cls, RefstoreError)
    assert isinstance(make(cls), RefstoreError)


@pytest.mark.parametrize("cls", by_name(ERROR_CLASSES))
def test_every_error_is_in_the_documented_tree(cls: type[Exception]) -> None:
    assert errors.__doc__ is not None
    tree = errors.__doc__.partition("The tree::")[2]

    assert re.search(rf"\b{cls.__name__}\b", tree)


@pytest.mark.parametrize("cls", by_name(ERROR_CLASSES))
def test_exit_code(cls: type[Exception]) -> None:
    expected = 1 if issubclass(cls, IntegrityError) else 2
    error = make(cls)

    assert issubclass(cls, RefstoreError)
    assert isinstance(error, RefstoreError)
    assert cls.exit_code == expected
    assert error.exit_code == expected


def test_fetch_error_with_an_integrity_failure_exits_1() -> None:
    drifted = FetchError("1 entry failed", [("a.csv", IntegrityError("changed"))])
    unreachable = FetchError("1 entry failed", [("a.csv", ManifestError("bad"))])

    assert drifted.exit_code == 1
    assert unreachable.exit_code == 2
    assert drifted.failures[0][0] == "a.csv"


@pytest.mark.parametrize(
    "cls",
    by_name([InvalidReferenceError, ManifestError, UnsafePathError]),
)
def test_bad_input_errors_are_value_errors(cls: type[Exception]) -> None:
    with pytest.raises(ValueError, match="something went wrong"):
        raise make(cls)


@pytest.mark.parametrize(
    ("cls", "parent"),
    [
        pytest.param(errors.UnsafePathError, errors.ManifestError, id="UnsafePath"),
        pytest.param(
            errors.BucketNotFoundError, errors.StoreError, id="BucketNotFound"
        ),
        pytest.param(
            errors.VersionNotFoundError,
            errors.ObjectNotFoundError,
            id="VersionNotFound",
        ),
        pytest.param(
            errors.ObjectNotFoundError, errors.StoreError, id="ObjectNotFound"
        ),
        pytest.param(errors.AccessDeniedError, errors.StoreError, id="AccessDenied"),
        pytest.param(errors.CredentialsError, errors.StoreError, id="Credentials"),
        pytest.param(errors.EndpointError, errors.StoreError, id="Endpoint"),
        pytest.param(errors.LimitExceededError, errors.StoreError, id="LimitExceeded"),
        pytest.param(errors.NotFoundError, errors.CatalogError, id="NotFound"),
        pytest.param(errors.ConflictError, errors.CatalogError, id="Conflict"),
    ],
)
def test_tree_shape(cls: type[RefstoreError], parent: type[RefstoreError]) -> None:
    assert issubclass(cls, parent)


def test_missing_dependency_says_what_to_install() -> None:
    error = MissingDependencyError("gcs", "gs:// references")

    assert str(error).startswith("Install refstore[gcs] to use gs:// references")
    assert "pip install 'refstore[gcs]'" in str(error)
    assert error.extra == "gcs"
    assert isinstance(error, ImportError)
