"""Checksums: every digest an entry records, checked over the bytes fetched.

Providers record checksums in the store's own encoding (see their module
docs): ``md5`` in hex everywhere; ``sha256`` in hex for HTTP, local files and
copied files but base64 from S3; ``crc32c`` base64 of the big-endian value
(GCS, S3); ``crc32``, ``sha1``, ``crc64nvme`` base64 from S3. A recorded
value is decoded by its shape (hex of the digest's length, else base64), so
no code here needs to know which provider recorded it.

crc32c and crc64nvme have a fast path when a C implementation is installed
(``google-crc32c``, which comes with google-cloud-storage, or ``crc32c``;
``awscrt`` for crc64nvme) and a pure-Python one otherwise. The pure-Python
ones are slow, so they are used only when no fast checksum covers the same
bytes.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import importlib
import logging
import zlib
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Protocol

from refstore.manifest import ManifestEntry

__all__ = ["Checks", "Hasher", "crc32c", "digests_of", "recorded_checksums"]

log = logging.getLogger(__name__)
_CHUNK = 1024 * 1024
_HEX = frozenset("0123456789abcdef")


class Hasher(Protocol):
    def update(self, data: bytes, /) -> None: ...

    def digest(self) -> bytes: ...


class _Crc:
    """A running CRC as a hasher: ``digest()`` is the big-endian value."""

    def __init__(self, extend: Callable[[int, bytes], int], width: int) -> None:
        self._extend = extend
        self._width = width
        self._value = 0

    def update(self, data: bytes, /) -> None:
        self._value = self._extend(self._value, data)

    def digest(self) -> bytes:
        return self._value.to_bytes(self._width, "big")


def _table(polynomial: int, width: int) -> list[int]:
    """The byte table of a reflected CRC with ``polynomial`` (reversed form)."""
    table = []
    for byte in range(256):
        value = byte
        for _ in range(8):
            value = (value >> 1) ^ polynomial if value & 1 else value >> 1
        table.append(value & ((1 << width) - 1))
    return table


def _python_crc(polynomial: int, width: int) -> Callable[[int, bytes], int]:
    table = _table(polynomial, width)
    mask = (1 << width) - 1

    def extend(crc: int, data: bytes) -> int:
        value = crc ^ mask
        for byte in data:
            value = table[(value ^ byte) & 0xFF] ^ (value >> 8)
        return value ^ mask

    return extend


def _optional(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def _crc32c_extend() -> tuple[Callable[[int, bytes], int], bool]:
    """crc32c's extend function and whether it is fast (C)."""
    google = _optional("google_crc32c")
    if google is not None and google.implementation == "c":
        return google.extend, True
    other = _optional("crc32c")
    if other is not None:
        return other.crc32c, True
    return _python_crc(0x82F63B78, 32), False


def _crc64nvme_extend() -> tuple[Callable[[int, bytes], int], bool]:
    crt = _optional("awscrt.checksums")
    if crt is not None:
        return (lambda crc, data: crt.crc64nvme(data, crc)), True
    return _python_crc(0x9A6C9329AC4BC9B5, 64), False


_CRC32C, _CRC32C_FAST = _crc32c_extend()
_CRC64NVME, _CRC64NVME_FAST = _crc64nvme_extend()


def crc32c(data: bytes, value: int = 0) -> int:
    """The CRC-32C (Castagnoli) of ``data``, continuing from ``value``."""
    return _CRC32C(value, data)


@dataclasses.dataclass(frozen=True)
class _Algorithm:
    new: Callable[[], Hasher]
    size: int
    fast: bool = True


_ALGORITHMS: dict[str, _Algorithm] = {
    "md5": _Algorithm(lambda: hashlib.md5(usedforsecurity=False), 16),
    "sha1": _Algorithm(lambda: hashlib.sha1(usedforsecurity=False), 20),
    "sha256": _Algorithm(hashlib.sha256, 32),
    "sha512": _Algorithm(hashlib.sha512, 64),
    "crc32": _Algorithm(lambda: _Crc(lambda c, d: zlib.crc32(d, c), 4), 4),
    "crc32c": _Algorithm(lambda: _Crc(_CRC32C, 4), 4, _CRC32C_FAST),
    "crc64nvme": _Algorithm(lambda: _Crc(_CRC64NVME, 8), 8, _CRC64NVME_FAST),
}


def _decode(value: object, size: int) -> bytes | None:
    """A recorded checksum as raw bytes: hex of ``size`` bytes, or base64."""
    if not isinstance(value, str):
        return None
    if len(value) == 2 * size and set(value.lower()) <= _HEX:
        return bytes.fromhex(value)
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == size else None


@dataclasses.dataclass(frozen=True)
class Checks:
    """Everything a file's bytes can be checked against: size and digests."""

    size: int | None
    expected: Mapping[str, bytes]

    @classmethod
    def for_entry(cls, entry: ManifestEntry) -> Checks:
        recorded = dict(_recorded(entry))
        usable = {
            name: raw
            for name, value in recorded.items()
            if (raw := _decode(value, _ALGORITHMS[name].size)) is not None
        }
        fast = {name: raw for name, raw in usable.items() if _ALGORITHMS[name].fast}
        if fast and len(fast) < len(usable):
            log.debug(
                "%s: not checking %s (no fast implementation installed); checking %s",
                entry.path,
                ", ".join(sorted(set(usable) - set(fast))),
                ", ".join(sorted(fast)),
            )
        return cls(size=entry.size, expected=fast or usable)

    @property
    def has_checksum(self) -> bool:
        return bool(self.expected)

    def hashers(self) -> dict[str, Hasher]:
        return {name: _ALGORITHMS[name].new() for name in self.expected}

    def mismatches(self, hashers: Mapping[str, Hasher], size: int | None) -> list[str]:
        """What differs from the record: size and each digest, as sentences."""
        problems = []
        if size is not None and self.size is not None and size != self.size:
            problems.append(f"size {size} != recorded {self.size}")
        for name, hasher in hashers.items():
            got, want = hasher.digest(), self.expected[name]
            if got != want:
                problems.append(f"{name} {_show(got)} != recorded {_show(want)}")
        return problems

    def check_file(self, path: Path) -> list[str]:
        """Read ``path`` once; what differs from the record (empty: it matches)."""
        hashers = self.hashers()
        size = 0
        with path.open("rb") as stream:
            while chunk := stream.read(_CHUNK):
                size += len(chunk)
                for hasher in hashers.values():
                    hasher.update(chunk)
        return self.mismatches(hashers, size)


def recorded_checksums(entry: ManifestEntry) -> dict[str, str]:
    """The checksums of the entry's bytes that a fetch can check, as recorded."""
    return {
        name: str(value)
        for name, value in _recorded(entry)
        if _decode(value, _ALGORITHMS[name].size) is not None
    }


def _recorded(entry: ManifestEntry) -> Iterable[tuple[str, object]]:
    extra = entry.extra
    for name in _ALGORITHMS:
        if name in extra:
            yield name, extra[name]
    if "md5" not in extra and entry.etag_is_md5:
        yield "md5", entry.etag
    if not entry.is_reference:
        yield "sha256", entry.digest


def _show(raw: bytes) -> str:
    return raw.hex() if len(raw) > 8 else base64.b64encode(raw).decode()


def digests_of(data: bytes, names: Iterable[str]) -> dict[str, bytes]:
    """The raw digests of ``data`` by algorithm name (for tests and tools)."""
    result = {}
    for name in names:
        hasher = _ALGORITHMS[name].new()
        hasher.update(data)
        result[name] = hasher.digest()
    return result
