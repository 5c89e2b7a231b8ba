"""Heartbeats: how the catalog tells a live run from a crashed one.

A killed process or a lost machine finishes nothing, so while a run started
by :func:`refstore.init` is running, a daemon thread tells the catalog that
it lives: an update with nothing but the run, every
``REFSTORE_HEARTBEAT_SECONDS``. The catalog reports a running run whose last
heartbeat is older than its run timeout as crashed.

A heartbeat is best effort. One that fails (the service restarts, the
network drops) is logged once per outage and retried at the next beat; it
never reaches the user's code. A run silent for longer than the timeout
reads as crashed until its next heartbeat lands.
"""

from __future__ import annotations

import datetime
import logging
import threading

from refstore.catalog.base import Catalog

__all__ = ["Heartbeat"]

log = logging.getLogger(__name__)

_ENDED = ("finished", "failed")


class Heartbeat:
    """A thread that sends one run's heartbeats until :meth:`stop`."""

    def __init__(
        self,
        catalog: Catalog,
        project: str,
        run_id: str,
        interval: datetime.timedelta,
    ) -> None:
        self._catalog = catalog
        self._project = project
        self._run_id = run_id
        self._interval = interval.total_seconds()
        self._stopped = threading.Event()
        self._failing = False
        self._thread = threading.Thread(
            target=self._beat_until_stopped,
            name=f"refstore-heartbeat-{project}/{run_id}",
            daemon=True,  # a program that forgets finish() still exits
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop beating; once this returns, no heartbeat is sent any more."""
        self._stopped.set()
        # Waits for a heartbeat in flight only, never for the interval.
        self._thread.join()

    def _beat_until_stopped(self) -> None:
        while not self._stopped.wait(self._interval):
            if not self._beat():
                return

    def _beat(self) -> bool:
        """Send one heartbeat; False when the run has ended elsewhere."""
        try:
            record = self._catalog.update_run(self._project, self._run_id)
        except Exception as exc:  # noqa: BLE001 - a heartbeat must not end the program
            self._failed(exc)
            return True
        self._recovered()
        if record.state in _ENDED:
            log.info(
                "run %s/%s was %s elsewhere; no more heartbeats",
                self._project,
                self._run_id,
                record.state,
            )
            return False
        return True

    def _failed(self, exc: Exception) -> None:
        if self._failing:
            log.debug(
                "heartbeat of run %s/%s failed: %s", self._project, self._run_id, exc
            )
            return
        self._failing = True
        log.warning(
            "heartbeat of run %s/%s failed: %s; retrying every %g s (the run "
            "reads as crashed if this lasts longer than the catalog's run timeout)",
            self._project,
            self._run_id,
            exc,
            self._interval,
        )

    def _recovered(self) -> None:
        if self._failing:
            self._failing = False
            log.info(
                "heartbeats of run %s/%s reach the catalog again",
                self._project,
                self._run_id,
            )
