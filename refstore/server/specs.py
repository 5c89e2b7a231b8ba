"""The specs the service's routes share: names, digests, TTLs, records.

Names are checked with refstore's own validators, so the service refuses
exactly what the library refuses, with the same messages. Record specs
describe responses in the OpenAPI document.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
from typing import Any

from refstore.catalog.access import VISIBILITIES
from refstore.catalog.base import (
    RESUME_MODES,
    RUN_STATES,
    STORED_RUN_STATES,
    ValueFilter,
)
from refstore.catalog.run_filters import lookups
from refstore.catalog.wire import value_filters_from_wire
from refstore.errors import RefstoreError
from refstore.names import validate_alias, validate_name
from refstore.server.schema import (
    JSON,
    Array,
    Bool,
    Field,
    InputError,
    Int,
    JsonObject,
    Nullable,
    Obj,
    Str,
    check_json_value,
)
from refstore.ttl import INHERIT, TtlPolicy

__all__ = [
    "ALIAS",
    "DIGEST",
    "LOADED",
    "NAME",
    "NEW_STATE",
    "RESUME",
    "SELECTOR",
    "STATE",
    "TEXT",
    "TIME",
    "VERSION",
    "VISIBILITY",
    "Ttl",
    "ValueFilters",
    "envelope",
    "many",
    "nullable",
    "optional",
    "record_specs",
    "ref",
]

_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
# Versions are stored as 32-bit integers; larger numbers cannot exist.
_MAX_VERSION = 2**31 - 1
# Far enough for any retention policy; far from datetime's year 9999.
_MAX_TTL = 100 * 366 * 86400

NAME = Str(pattern=_NAME, max_length=128, check=validate_name)
ALIAS = Str(pattern=_NAME, max_length=128, check=validate_alias)
SELECTOR = Str(
    pattern=_NAME,
    max_length=128,
    description="a version (v3) or an alias (latest, best)",
)
DIGEST = Str(pattern=r"[0-9a-f]{64}", max_length=64, description="a sha256, in hex")
TEXT = Str(max_length=1 << 20)
STATE = Str(
    enum=RUN_STATES,
    description="crashed: running, but without a heartbeat for longer than "
    "the service's run timeout",
)
NEW_STATE = Str(
    enum=STORED_RUN_STATES, description="crashed is derived, and cannot be set"
)
RESUME = Str(enum=RESUME_MODES)
VISIBILITY = Str(enum=VISIBILITIES)
TIME = Str(max_length=64, description="ISO 8601, UTC")


@dataclasses.dataclass(frozen=True)
class Version:
    """``vN`` as its number N."""

    def parse(self, value: Any, where: str) -> int:
        if not isinstance(value, str):
            raise InputError(where, "must be a version such as v3")
        return self.from_text(value, where)

    def from_text(self, text: str, where: str) -> int:
        digits = text[1:]
        if text[:1] != "v" or not digits.isascii() or not digits.isdigit():
            raise InputError(where, "must be a version such as v3")
        if (digits != "0" and digits.startswith("0")) or len(digits) > 10:
            raise InputError(where, "must be a version such as v3")
        number = int(digits)
        if number > _MAX_VERSION:
            raise InputError(where, f"must be at most v{_MAX_VERSION}")
        return number

    def schema(self) -> JSON:
        return {"type": "string", "pattern": "^v(0|[1-9][0-9]{0,9})$"}


VERSION = Version()


@dataclasses.dataclass(frozen=True)
class Ttl:
    """null (keep forever), "inherit" (when allowed) or seconds."""

    inherit: bool = True

    def parse(self, value: Any, where: str) -> TtlPolicy:
        if value is None:
            return None
        if self.inherit and value == INHERIT.value:
            return INHERIT
        seconds = Int(minimum=1, maximum=_MAX_TTL).parse(value, where)
        return datetime.timedelta(seconds=seconds)

    def from_text(self, text: str, where: str) -> Any:
        raise InputError(where, "cannot be given as text")

    def schema(self) -> JSON:
        options: list[JSON] = [
            {"type": "null"},
            {"type": "integer", "minimum": 1, "maximum": _MAX_TTL},
        ]
        if self.inherit:
            options.append({"type": "string", "enum": [INHERIT.value]})
        return {"anyOf": options, "description": "seconds, null or inherit"}


@dataclasses.dataclass(frozen=True)
class ValueFilters:
    """Run value filters, a JSON array of ``{"key": ..., "value": ...}``."""

    max_length: int = 4096

    def parse(self, value: Any, where: str) -> list[ValueFilter]:
        try:
            filters = value_filters_from_wire(value)
        except ValueError as exc:
            raise InputError(where, str(exc)) from exc
        check_json_value(value, where)
        try:
            lookups(filters)
        except RefstoreError as exc:
            raise InputError(where, str(exc)) from exc
        return filters

    def from_text(self, text: str, where: str) -> list[ValueFilter]:
        if len(text) > self.max_length:
            raise InputError(where, f"must be at most {self.max_length} characters")
        try:
            data = json.loads(text, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            raise InputError(where, f"is not valid JSON: {exc}") from exc
        return self.parse(data, where)

    def schema(self) -> JSON:
        return {
            "type": "string",
            "maxLength": self.max_length,
            "description": 'a JSON array of {"key": "config.KEY", "value": V}: '
            "runs whose config or summary holds V under KEY (dots nest)",
        }


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def optional(spec: Any) -> Field:
    """A field that may be missing or null (None either way)."""
    return Field(Nullable(spec), required=False)


LOADED = Obj(
    {
        "description": optional(TEXT),
        "metadata": Field(JsonObject()),
        "tags": Field(Array(NAME, max_items=100)),
        "ttl": Field(Ttl()),
    },
    description="The version's description, metadata, tags and TTL as the "
    "editor loaded them. Given, only the fields the edit changes are written, "
    "each only if nobody changed it since (409 conflict otherwise, naming the "
    "fields), and tags are added and removed as a set. Left out, the edit "
    "replaces all four (the last writer wins).",
)


def record_specs() -> dict[str, Obj]:
    """Response schemas of the catalog's records, by name."""
    time = Field(TIME)
    optional_time = Field(Nullable(TIME))
    return {
        "Version": Obj(
            {
                "project": Field(Str()),
                "name": Field(NAME),
                "type": Field(NAME),
                "version": Field(Int()),
                "aliases": Field(Array(Str())),
                "description": Field(Nullable(Str())),
                "metadata": Field(JsonObject()),
                "digest": Field(Str()),
                "manifest_blob": Field(DIGEST),
                "entry_count": Field(Int()),
                "total_size": Field(Int()),
                "created_at": time,
                "tags": Field(Array(Str())),
                "ttl": Field(Ttl()),
                "expires_at": optional_time,
            }
        ),
        "Project": Obj(
            {
                "project": Field(Str()),
                "entity": Field(NAME),
                "name": Field(NAME),
                "created_at": time,
                "default_ttl": Field(Nullable(Int())),
                "visibility": Field(VISIBILITY),
            }
        ),
        "Artifact": Obj(
            {
                "project": Field(Str()),
                "name": Field(NAME),
                "type": Field(NAME),
                "description": Field(Nullable(Str())),
                "created_at": time,
                "version_count": Field(Int()),
                "latest_version": Field(Nullable(Int())),
            }
        ),
        "Run": Obj(
            {
                "project": Field(Str()),
                "id": Field(NAME),
                "name": Field(Nullable(Str())),
                "job_type": Field(Nullable(Str())),
                "state": Field(STATE),
                "config": Field(JsonObject()),
                "summary": Field(JsonObject()),
                "sweep": Field(Nullable(Str())),
                "created_at": time,
                "updated_at": time,
                "heartbeat_at": time,
            }
        ),
        "Sweep": Obj(
            {
                "project": Field(Str()),
                "id": Field(NAME),
                "config": Field(JsonObject()),
                "state": Field(Str()),
                "trial_count": Field(Int()),
                "created_at": time,
                "updated_at": time,
            }
        ),
        "User": Obj(
            {
                "name": Field(NAME),
                "is_admin": Field(Bool()),
                "disabled": Field(Bool()),
                "created_at": time,
                "disabled_at": optional_time,
            }
        ),
    }


def ref(name: str) -> JSON:
    """A reference to one of :func:`record_specs` in the OpenAPI document."""
    return {"$ref": f"#/components/schemas/{name}"}


def envelope(**fields: JSON) -> JSON:
    """A JSON object answer with these fields."""
    return {
        "type": "object",
        "properties": fields,
        "required": sorted(fields),
    }


def many(name: str) -> JSON:
    return {"type": "array", "items": ref(name)}


def nullable(schema: JSON) -> JSON:
    return {"anyOf": [schema, {"type": "null"}]}
