"""A byte stream from a store, whose read errors arrive as refstore errors.

Every SDK hands back its own response object, and a connection can fail in
the middle of a body: the provider gives :class:`TranslatedStream` the
body's ``read`` and ``close``, the SDK exceptions a read may raise, and its
own error translation, and callers see one kind of stream.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING

from refstore.errors import RefstoreError

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["TranslatedStream"]


class TranslatedStream(io.RawIOBase):
    """A raw stream over ``read(n)`` that translates the SDK's read errors."""

    def __init__(
        self,
        read: Callable[[int], bytes],
        close: Callable[[], object],
        errors: tuple[type[Exception], ...],
        translate: Callable[[Exception], RefstoreError],
    ) -> None:
        super().__init__()
        self._read = read
        self._close = close
        self._errors = errors
        self._translate = translate

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        try:
            data = self._read(len(view))
        except self._errors as exc:
            raise self._translate(exc) from exc
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._close()
        super().close()
