"""Edits of a version made concurrently: merge them field by field, or refuse.

An editor loads a version, changes some of its fields and saves. Meanwhile
someone else may have saved theirs. A field the editor did not change keeps
the stored value (whoever set it); a field it changed is written only if the
stored value is still the one it loaded (or already the one it wants), so
neither edit is lost without a word. Tags are a set: the editor's additions
and removals apply to the stored tags, so tag edits never conflict.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from refstore.catalog.base import LoadedFields, VersionEdit, VersionRecord
from refstore.errors import ConflictError

__all__ = ["EDITED_FIELDS", "merge_edit"]

# Compared whole: a metadata edit conflicts with any other metadata edit.
EDITED_FIELDS = ("description", "metadata", "ttl")


def merge_edit(stored: VersionRecord, edit: VersionEdit) -> VersionEdit:
    """What to write for ``edit`` to ``stored``: full values, loaded cleared.

    An edit without loaded values is returned as it is (the last writer
    wins). ConflictError when a field the edit changed was changed by
    another edit too, to something else.
    """
    loaded = edit.loaded
    if loaded is None:
        return edit
    clashes = [f for f in EDITED_FIELDS if _clashes(f, loaded, stored, edit)]
    if clashes:
        raise ConflictError(_conflict_message(stored.path, clashes))
    kept = {f: _merged(f, loaded, stored, edit) for f in EDITED_FIELDS}
    return dataclasses.replace(
        edit, **kept, tags=_merged_tags(loaded, stored, edit), loaded=None
    )


def _clashes(
    field: str, loaded: LoadedFields, stored: VersionRecord, edit: VersionEdit
) -> bool:
    was, now, wanted = (getattr(x, field) for x in (loaded, stored, edit))
    return not (_same(was, wanted) or _same(was, now) or _same(now, wanted))


def _merged(
    field: str, loaded: LoadedFields, stored: VersionRecord, edit: VersionEdit
) -> Any:
    if _same(getattr(loaded, field), getattr(edit, field)):
        return getattr(stored, field)
    return getattr(edit, field)


def _merged_tags(
    loaded: LoadedFields, stored: VersionRecord, edit: VersionEdit
) -> tuple[str, ...]:
    added = set(edit.tags) - set(loaded.tags)
    removed = set(loaded.tags) - set(edit.tags)
    return tuple(sorted((set(stored.tags) | added) - removed))


def _same(a: Any, b: Any) -> bool:
    # As JSON, not by Python equality: 1, 1.0 and True are equal in Python,
    # and an edit from one to another must not pass for "unchanged".
    return bool(_canonical(a) == _canonical(b))


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        return json.dumps(dict(value), sort_keys=True, allow_nan=False)
    return value


def _conflict_message(path: str, fields: list[str]) -> str:
    return (
        f"{path} was edited by someone else since you loaded it "
        f"({', '.join(fields)}): reload it with api.artifact({path!r}) and "
        "apply your change again, or save(force=True) to overwrite their edit"
    )
