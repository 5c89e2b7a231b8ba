"""The ``store`` fixture: every registered Store, one test id each.

A Store is found by name as the fixture ``<name>_store`` (dashes become
underscores), provided by a plugin module ``tests/providers/store_*.py`` that
``tests/conftest.py`` loads. A name whose fixture is not there (its module
is not written yet, or its SDK is not installed) skips with that reason.
"""

from __future__ import annotations

import pytest

from tests.providers.stores import Store

STORES = [
    "moto",
    "localstack",
    "gcs",
    "azurite",
    "azure-protocol",
    "http",
    "file",
    "memory",
]
_MARKS = {"localstack": [pytest.mark.localstack]}


def fixture_name(store: str) -> str:
    return f"{store.replace('-', '_')}_store"


@pytest.fixture(
    params=[pytest.param(name, id=name, marks=_MARKS.get(name, [])) for name in STORES]
)
def store(request: pytest.FixtureRequest) -> Store:
    name = fixture_name(request.param)
    try:
        found: Store = request.getfixturevalue(name)
    except pytest.FixtureLookupError:
        pytest.skip(
            f"no fixture {name}: its module tests/providers/store_*.py is not "
            "there, or the SDK it needs is not installed"
        )
    return found
