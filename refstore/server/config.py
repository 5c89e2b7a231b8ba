"""How a refstore service is set up: database, blob store, limits, schedule."""

from __future__ import annotations

import dataclasses
import datetime
from pathlib import Path

from refstore.catalog.served import ManifestLimits
from refstore.config import DEFAULT_RUN_TIMEOUT

__all__ = ["ServerConfig"]


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    """Everything ``refstore serve`` takes.

    Several processes may serve one catalog: they share ``db_url`` (a
    PostgreSQL database) and ``blob_dir`` (a folder they all mount), and
    keep no other state.
    """

    db_url: str
    blob_dir: Path
    host: str = "127.0.0.1"
    port: int = 8080
    # TTL garbage collection runs this often in each process (None: never);
    # every run is one transaction, so processes do not collide.
    gc_interval: datetime.timedelta | None = datetime.timedelta(hours=1)
    gc_grace: datetime.timedelta = datetime.timedelta(hours=1)
    max_json: int = 16 << 20
    max_blob: int = 5 << 30
    manifest_limits: ManifestLimits = dataclasses.field(default_factory=ManifestLimits)
    workers: int = 12
    shutdown_timeout: float = 30.0
    # A running run without a heartbeat for longer reads as crashed, for
    # every client (REFSTORE_RUN_TIMEOUT_SECONDS of the serving process).
    run_timeout: datetime.timedelta = DEFAULT_RUN_TIMEOUT
    admin_name: str = "admin"
    # REFSTORE_ADMIN_TOKEN: registered for the admin on start; never logged.
    admin_token: str | None = dataclasses.field(default=None, repr=False)
