"""Progress of a long transfer: objects and bytes done, throughput, ETA.

The fetcher's worker threads add to a :class:`TransferProgress`; whoever
displays it (the command line, a notebook) reads :meth:`snapshot` from its
own thread as often as it likes. Nothing here prints.
"""

from __future__ import annotations

import dataclasses
import threading
import time

__all__ = ["ProgressSnapshot", "TransferProgress"]


@dataclasses.dataclass(frozen=True)
class ProgressSnapshot:
    """Where a transfer stands at one moment."""

    objects_done: int
    objects_total: int
    bytes_done: int
    bytes_total: int
    seconds: float

    @property
    def bytes_per_second(self) -> float:
        return self.bytes_done / self.seconds if self.seconds > 0 else 0.0

    @property
    def objects_per_second(self) -> float:
        return self.objects_done / self.seconds if self.seconds > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the current rate; None until there is a rate."""
        left = max(0, self.bytes_total - self.bytes_done)
        if left == 0:
            return 0.0
        rate = self.bytes_per_second
        return left / rate if rate > 0 else None


class TransferProgress:
    """Thread-safe counters of a transfer; totals are set once it is planned."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._objects_total = 0
        self._bytes_total = 0
        self._objects_done = 0
        self._bytes_done = 0

    def start(self, objects: int, size: int) -> None:
        """The totals: how many objects, and how many bytes they hold."""
        with self._lock:
            self._started = time.monotonic()
            self._objects_total = objects
            self._bytes_total = size

    def add_bytes(self, count: int) -> None:
        with self._lock:
            self._bytes_done += count

    def object_done(self, uncounted_bytes: int = 0) -> None:
        """One object finished; ``uncounted_bytes`` it holds that were not added."""
        with self._lock:
            self._objects_done += 1
            self._bytes_done += uncounted_bytes

    def snapshot(self) -> ProgressSnapshot:
        with self._lock:
            return ProgressSnapshot(
                objects_done=self._objects_done,
                objects_total=self._objects_total,
                bytes_done=self._bytes_done,
                bytes_total=self._bytes_total,
                seconds=time.monotonic() - self._started,
            )
