"""Input specs that validate a request and describe it in OpenAPI, both at once.

Each spec parses one value (a JSON value, or a query or path string) into
what a handler needs, or raises :class:`InputError` naming the field and what
is wrong with it; :meth:`schema` gives the JSON Schema that the OpenAPI
document publishes. One definition serves both, so the document cannot
drift from what the service accepts.

Strings never carry NUL characters or unpaired surrogates: PostgreSQL
refuses the first and UTF-8 cannot encode the second, and either would
otherwise surface as a database failure instead of a client error.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from refstore.errors import RefstoreError

__all__ = [
    "Array",
    "Bool",
    "Field",
    "InputError",
    "Int",
    "JsonObject",
    "Nullable",
    "Obj",
    "Spec",
    "Str",
    "check_json_value",
]

JSON = dict[str, Any]
_MISSING: Any = object()


class InputError(Exception):
    """A request value that does not fit its spec."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


class Spec(Protocol):
    def parse(self, value: Any, where: str) -> Any: ...

    def schema(self) -> JSON: ...

    def from_text(self, text: str, where: str) -> Any:
        """Parse a query or path parameter, which arrives as text."""
        ...


def _text_ok(value: str, where: str) -> None:
    if "\x00" in value:
        raise InputError(where, "must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InputError(where, "must be valid Unicode text") from exc


@dataclasses.dataclass(frozen=True)
class Str:
    """A string, optionally matching ``pattern`` and passing ``check``.

    ``check`` is one of refstore's own validators (validate_name, ...): it
    raises RefstoreError with the message users see elsewhere too.
    """

    pattern: str | None = None
    max_length: int = 1024
    min_length: int = 0
    enum: tuple[str, ...] = ()
    check: Callable[[str], object] | None = None
    description: str | None = None

    def parse(self, value: Any, where: str) -> str:
        if not isinstance(value, str):
            raise InputError(where, "must be a string")
        _text_ok(value, where)
        if not self.min_length <= len(value) <= self.max_length:
            raise InputError(
                where, f"must be {self.min_length}-{self.max_length} characters long"
            )
        if self.enum and value not in self.enum:
            raise InputError(where, "must be one of " + ", ".join(self.enum))
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            raise InputError(where, f"must match {self.pattern}")
        if self.check is not None:
            try:
                self.check(value)
            except RefstoreError as exc:
                raise InputError(where, str(exc)) from exc
        return value

    def from_text(self, text: str, where: str) -> str:
        return self.parse(text, where)

    def schema(self) -> JSON:
        schema: JSON = {"type": "string", "maxLength": self.max_length}
        if self.min_length:
            schema["minLength"] = self.min_length
        if self.enum:
            schema["enum"] = list(self.enum)
        if self.pattern is not None:
            schema["pattern"] = f"^(?:{self.pattern})$"
        return _described(schema, self.description)


@dataclasses.dataclass(frozen=True)
class Int:
    minimum: int = 0
    maximum: int = 2**63 - 1
    description: str | None = None

    def parse(self, value: Any, where: str) -> int:
        # bool is an int subclass; true is not the number 1 here.
        if type(value) is not int:
            raise InputError(where, "must be an integer")
        if not self.minimum <= value <= self.maximum:
            bounds = f"{self.minimum} and {self.maximum}"
            raise InputError(where, f"must be between {bounds}")
        return value

    def from_text(self, text: str, where: str) -> int:
        if re.fullmatch(r"-?[0-9]{1,19}", text) is None:
            raise InputError(where, "must be an integer")
        return self.parse(int(text), where)

    def schema(self) -> JSON:
        schema = {"type": "integer", "minimum": self.minimum, "maximum": self.maximum}
        return _described(schema, self.description)


@dataclasses.dataclass(frozen=True)
class Bool:
    description: str | None = None

    def parse(self, value: Any, where: str) -> bool:
        if not isinstance(value, bool):
            raise InputError(where, "must be true or false")
        return value

    def from_text(self, text: str, where: str) -> bool:
        if text not in ("true", "false"):
            raise InputError(where, "must be true or false")
        return text == "true"

    def schema(self) -> JSON:
        return _described({"type": "boolean"}, self.description)


@dataclasses.dataclass(frozen=True)
class JsonObject:
    """Any JSON object (metadata, config, summary)."""

    description: str | None = None

    def parse(self, value: Any, where: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise InputError(where, "must be a JSON object")
        check_json_value(value, where)
        return value

    def from_text(self, text: str, where: str) -> Any:
        raise InputError(where, "cannot be given as text")

    def schema(self) -> JSON:
        return _described({"type": "object"}, self.description)


def check_json_value(value: Any, where: str) -> None:
    """InputError when a parsed JSON value holds text the catalog cannot store."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            _text_ok(item, where)
        elif isinstance(item, dict):
            for key, inner in item.items():
                _text_ok(key, where)
                pending.append(inner)
        elif isinstance(item, list):
            pending.extend(item)


@dataclasses.dataclass(frozen=True)
class Array:
    item: Spec
    max_items: int = 1000
    description: str | None = None

    def parse(self, value: Any, where: str) -> list[Any]:
        if not isinstance(value, list):
            raise InputError(where, "must be an array")
        if len(value) > self.max_items:
            raise InputError(where, f"must hold at most {self.max_items} items")
        return [self.item.parse(item, f"{where}[{i}]") for i, item in enumerate(value)]

    def from_text(self, text: str, where: str) -> Any:
        raise InputError(where, "cannot be given as text")

    def schema(self) -> JSON:
        schema = {
            "type": "array",
            "items": self.item.schema(),
            "maxItems": self.max_items,
        }
        return _described(schema, self.description)


@dataclasses.dataclass(frozen=True)
class Nullable:
    inner: Spec

    def parse(self, value: Any, where: str) -> Any:
        return None if value is None else self.inner.parse(value, where)

    def from_text(self, text: str, where: str) -> Any:
        return self.inner.from_text(text, where)

    def schema(self) -> JSON:
        return {"anyOf": [self.inner.schema(), {"type": "null"}]}


@dataclasses.dataclass(frozen=True)
class Field:
    spec: Spec
    required: bool = True
    default: Any = None


@dataclasses.dataclass(frozen=True)
class Obj:
    """A JSON object with known fields; unknown fields are refused."""

    fields: Mapping[str, Field]
    description: str | None = None

    def parse(self, value: Any, where: str = "body") -> dict[str, Any]:
        if not isinstance(value, dict):
            raise InputError(where, "must be a JSON object")
        unknown = sorted(set(value) - set(self.fields))
        if unknown:
            raise InputError(where, "has unknown fields " + ", ".join(unknown))
        parsed = {}
        for name, field in self.fields.items():
            inner = value.get(name, _MISSING)
            if inner is _MISSING:
                if field.required:
                    raise InputError(f"{where}.{name}", "is required")
                parsed[name] = field.default
            else:
                parsed[name] = field.spec.parse(inner, f"{where}.{name}")
        return parsed

    def from_text(self, text: str, where: str) -> Any:
        raise InputError(where, "cannot be given as text")

    def schema(self) -> JSON:
        schema: JSON = {
            "type": "object",
            "properties": {name: f.spec.schema() for name, f in self.fields.items()},
            "additionalProperties": False,
        }
        required = [name for name, field in self.fields.items() if field.required]
        if required:
            schema["required"] = required
        return _described(schema, self.description)


def _described(schema: JSON, description: str | None) -> JSON:
    if description:
        schema["description"] = description
    return schema
