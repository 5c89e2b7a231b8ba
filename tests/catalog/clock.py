"""A clock the tests move by hand, for TTLs and timestamps."""

from __future__ import annotations

import datetime

START = datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)


class ManualClock:
    """Callable like the catalog's clock; ``advance`` moves it forward."""

    def __init__(self, now: datetime.datetime = START) -> None:
        self.now = now

    def __call__(self) -> datetime.datetime:
        return self.now

    def advance(self, **delta: float) -> datetime.datetime:
        self.now += datetime.timedelta(**delta)
        return self.now
