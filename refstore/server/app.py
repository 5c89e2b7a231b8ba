"""The refstore service: an aiohttp application over the SQL catalog.

:func:`create_app` builds the application from a :class:`ServerConfig`: the
catalog (migrated on opening), the router from :data:`ROUTES`, the error
middleware, and scheduled TTL garbage collection. :func:`serve` runs it
until SIGINT or SIGTERM, then stops accepting connections and lets requests
in flight finish (up to ``shutdown_timeout``) before closing the catalog.

Each request is logged once, when its answer has been sent, on the
``refstore.server.access`` logger: ``method=GET path=/... status=200
ms=3.1 user=alice`` (``user=-`` for anonymous requests).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import random
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from refstore.blobs import BlobStore
from refstore.catalog.base import Clock
from refstore.catalog.engine import redacted
from refstore.catalog.served import ServedCatalog
from refstore.server.config import ServerConfig
from refstore.server.errors import HIDDEN, error_response
from refstore.server.routes import ROUTES
from refstore.server.routes_admin import collect_garbage
from refstore.server.routing import PRINCIPAL, SERVICE, Service, endpoint

__all__ = ["AccessLogger", "bootstrap_admin", "create_app", "serve"]

log = logging.getLogger(__name__)
access_log = logging.getLogger("refstore.server.access")

_TRANSFERS = 8


def create_app(config: ServerConfig, *, clock: Clock | None = None) -> web.Application:
    """The application; the catalog is opened (and migrated) here."""
    catalog = ServedCatalog(
        config.db_url,
        BlobStore(config.blob_dir),
        clock,
        run_timeout=config.run_timeout,
    )
    service = Service(
        catalog=catalog,
        config=config,
        executor=ThreadPoolExecutor(config.workers, "refstore-catalog"),
        transfers=ThreadPoolExecutor(_TRANSFERS, "refstore-transfer"),
    )
    app = web.Application(middlewares=[_errors], client_max_size=config.max_json)
    app[SERVICE] = service
    app[HIDDEN] = (
        redacted(config.db_url),
        config.db_url,
        str(Path(config.blob_dir).absolute()),
    )
    for route in ROUTES:
        app.router.add_route(route.method, route.path, endpoint(route))
    app.cleanup_ctx.append(_scheduled_gc)
    app.on_cleanup.append(_close)
    return app


def bootstrap_admin(app: web.Application) -> str | None:
    """Create the first admin if needed; return a new token to show once."""
    service = app[SERVICE]
    config = service.config
    return service.catalog.ensure_admin(config.admin_name, config.admin_token)


def serve(config: ServerConfig) -> None:
    """Run the service until SIGINT or SIGTERM; finish requests in flight."""
    app = create_app(config)
    token = bootstrap_admin(app)
    if token is not None:
        # The one place a token is printed: it exists nowhere else.
        print(  # noqa: T201
            f"created the site admin {config.admin_name!r}; their token, shown "
            f"only now:\n\n    {token}\n\nlog in with: refstore login "
            f"http://{config.host}:{config.port} --token {token}\n",
            file=sys.stderr,
            flush=True,
        )
    log.info("serving %s on http://%s:%d", config.db_url, config.host, config.port)
    web.run_app(
        app,
        host=config.host,
        port=config.port,
        shutdown_timeout=config.shutdown_timeout,
        access_log=access_log,
        access_log_class=AccessLogger,
        print=None,
    )


class AccessLogger(AbstractAccessLogger):
    """One line per request, in key=value form, once it has been answered."""

    def log(
        self, request: web.BaseRequest, response: web.StreamResponse, time: float
    ) -> None:
        principal = request.get(PRINCIPAL)
        user = principal.label if principal is not None else "-"
        self.logger.info(
            "method=%s path=%s status=%d ms=%.1f user=%s",
            request.method,
            request.path,
            response.status,
            time * 1000,
            user,
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Exception as exc:  # noqa: BLE001 (every failure becomes a JSON answer)
        return error_response(exc, request)


async def _scheduled_gc(app: web.Application) -> AsyncIterator[None]:
    interval = app[SERVICE].config.gc_interval
    task = None
    if interval is not None:
        task = asyncio.create_task(_gc_forever(app[SERVICE], interval))
    yield
    if task is not None:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _gc_forever(service: Service, interval: datetime.timedelta) -> None:
    while True:
        # Jitter: processes started together do not collect together.
        jitter = random.uniform(0.9, 1.1)  # noqa: S311 - not for security
        await asyncio.sleep(interval.total_seconds() * jitter)
        try:
            await service.run(_collect, service)
        except Exception:
            log.exception("scheduled gc failed")


def _collect(service: Service) -> None:
    catalog, grace = service.catalog, service.config.gc_grace
    report = collect_garbage(catalog, dry_run=False, grace=grace)
    log.info(
        "scheduled gc: %d expired versions, %d blobs",
        len(report.versions),
        len(report.blobs),
    )


async def _close(app: web.Application) -> None:
    service = app[SERVICE]
    service.transfers.shutdown(wait=True)
    service.executor.shutdown(wait=True)
    service.catalog.close()
