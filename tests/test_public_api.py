"""The curated public API: complete, importable, documented."""

from __future__ import annotations

import refstore
from refstore import errors


def test_every_public_name_is_importable() -> None:
    for name in refstore.__all__:
        assert hasattr(refstore, name), name


def test_every_error_class_is_exported() -> None:
    error_classes = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type) and issubclass(value, errors.RefstoreError)
    }
    missing = error_classes - set(refstore.__all__)
    assert missing == set()


def test_public_classes_have_docstrings() -> None:
    for name in refstore.__all__:
        value = getattr(refstore, name)
        if isinstance(value, type):
            assert value.__doc__, name
