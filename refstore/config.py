"""Settings: where refstore keeps its files, and how to reach each bucket.

Settings come from the environment (``REFSTORE_HOME``, ``REFSTORE_URL``,
``REFSTORE_CACHE_DIR``, ``REFSTORE_PROJECT``, ``REFSTORE_TOKEN``,
``REFSTORE_HEARTBEAT_SECONDS``, ``REFSTORE_RUN_TIMEOUT_SECONDS``) and from
``config.toml`` in the refstore home. Provider SDKs keep reading their own
standard variables and files; refstore's config adds per-bucket options on
top, so that one artifact can mix buckets on AWS, MinIO and LocalStack::

    [stores.s3]                          # every S3 bucket
    region = "eu-west-1"

    [stores."s3://lab-minio"]            # one bucket
    endpoint_url = "http://minio.lab:9000"
    profile = "minio"

    [cache]                              # the fetch cache
    max_size = "200 GiB"                 # or REFSTORE_CACHE_MAX_BYTES
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from refstore.errors import ConfigError
from refstore.uri import ObjectRef

__all__ = [
    "DEFAULT_HEARTBEAT_INTERVAL",
    "DEFAULT_RUN_TIMEOUT",
    "Settings",
    "parse_size",
]

DEFAULT_HEARTBEAT_INTERVAL = datetime.timedelta(seconds=30)
DEFAULT_RUN_TIMEOUT = datetime.timedelta(seconds=300)


@dataclasses.dataclass(frozen=True)
class Settings:
    """Everything refstore reads from the environment and its config file."""

    home: Path
    url: str | None = None
    cache_dir: Path | None = None
    # Size limit of the fetch cache in bytes (REFSTORE_CACHE_MAX_BYTES, or
    # [cache] max_size in config.toml); None keeps everything.
    cache_max_bytes: int | None = None
    project: str | None = None
    stores: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    # The refstore service's bearer token (REFSTORE_TOKEN); kept out of reprs
    # so that it never reaches a log line.
    token: str | None = dataclasses.field(default=None, repr=False)
    # How often a live run tells the catalog so (REFSTORE_HEARTBEAT_SECONDS).
    heartbeat_interval: datetime.timedelta = DEFAULT_HEARTBEAT_INTERVAL
    # A running run silent for longer reads as crashed
    # (REFSTORE_RUN_TIMEOUT_SECONDS). The catalog applies it: an embedded one
    # takes it from here, a service from the settings of its own process.
    run_timeout: datetime.timedelta = DEFAULT_RUN_TIMEOUT

    def __post_init__(self) -> None:
        _check_run_timing(self.heartbeat_interval, self.run_timeout)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env.get("REFSTORE_HOME") or Path.home() / ".refstore")
        cache = env.get("REFSTORE_CACHE_DIR")
        return cls(
            home=home.expanduser(),
            url=env.get("REFSTORE_URL") or None,
            cache_dir=Path(cache).expanduser() if cache else None,
            cache_max_bytes=_cache_limit(env, home / "config.toml"),
            project=env.get("REFSTORE_PROJECT") or None,
            stores=_read_stores(home / "config.toml"),
            token=env.get("REFSTORE_TOKEN") or None,
            heartbeat_interval=_seconds(
                env, "REFSTORE_HEARTBEAT_SECONDS", DEFAULT_HEARTBEAT_INTERVAL
            ),
            run_timeout=_seconds(
                env, "REFSTORE_RUN_TIMEOUT_SECONDS", DEFAULT_RUN_TIMEOUT
            ),
        )

    @property
    def catalog_url(self) -> str:
        """The catalog to use: REFSTORE_URL, else SQLite under the home."""
        return self.url or f"sqlite:///{self.home / 'catalog.db'}"

    @property
    def blob_dir(self) -> Path:
        return self.home / "blobs"

    @property
    def fetch_cache_dir(self) -> Path:
        return self.cache_dir or self.home / "cache"

    def store_options(self, ref: ObjectRef) -> dict[str, Any]:
        """Options for the bucket of ``ref``: scheme defaults, then the bucket's."""
        options = dict(self.stores.get(ref.scheme, {}))
        options.update(self.stores.get(ref.location, {}))
        return options

    def with_store(self, location: str, **options: Any) -> Settings:
        """A copy with extra options for one bucket (``s3://b``) or scheme."""
        stores = {key: dict(value) for key, value in self.stores.items()}
        stores.setdefault(location.rstrip("/"), {}).update(options)
        return dataclasses.replace(self, stores=stores)


def _seconds(
    env: Mapping[str, str], name: str, default: datetime.timedelta
) -> datetime.timedelta:
    text = env.get(name)
    if not text:
        return default
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigError(
            f"{name}={text!r} is not a duration: give a positive number of "
            f"seconds, such as {default.total_seconds():g}"
        )
    return datetime.timedelta(seconds=seconds)


def _check_run_timing(
    heartbeat: datetime.timedelta, timeout: datetime.timedelta
) -> None:
    if heartbeat <= datetime.timedelta(0):
        raise ConfigError(
            f"the heartbeat interval must be positive, not {heartbeat}: set "
            "REFSTORE_HEARTBEAT_SECONDS to a number of seconds, such as 30"
        )
    if timeout <= heartbeat:
        raise ConfigError(
            f"the run timeout ({timeout.total_seconds():g} s) must be longer than "
            f"the heartbeat interval ({heartbeat.total_seconds():g} s), or live "
            "runs read as crashed between heartbeats: raise "
            "REFSTORE_RUN_TIMEOUT_SECONDS (several intervals, e.g. 10 times) or "
            "lower REFSTORE_HEARTBEAT_SECONDS"
        )


def _read_stores(path: Path) -> dict[str, dict[str, Any]]:
    if not path.exists():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}; fix or remove the file") from exc
    stores = data.get("stores", {})
    if not isinstance(stores, dict) or not all(
        isinstance(v, dict) for v in stores.values()
    ):
        raise ConfigError(
            f"{path}: [stores] must hold one table per scheme or bucket, "
            'for example [stores."s3://my-bucket"]'
        )
    return {key.rstrip("/"): value for key, value in stores.items()}


_SIZE_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "kib": 1 << 10,
    "m": 1000**2,
    "mb": 1000**2,
    "mib": 1 << 20,
    "g": 1000**3,
    "gb": 1000**3,
    "gib": 1 << 30,
    "t": 1000**4,
    "tb": 1000**4,
    "tib": 1 << 40,
}


def parse_size(text: str | int, what: str = "size") -> int:
    """Bytes from ``12345``, ``"500 MB"`` or ``"20GiB"``; ConfigError if not."""
    if isinstance(text, int) and not isinstance(text, bool) and text >= 0:
        return text
    value = str(text).strip().lower().replace(" ", "")
    number = value.rstrip("abcdefghijklmnopqrstuvwxyz")
    unit = value[len(number) :]
    try:
        amount = float(number)
    except ValueError:
        amount = -1.0
    if unit not in _SIZE_UNITS or amount < 0:
        raise ConfigError(
            f"{what} {text!r} is not a size: write bytes (1000000) or a number "
            "with a unit (500MB, 20GiB)"
        )
    return int(amount * _SIZE_UNITS[unit])


def _cache_limit(env: Mapping[str, str], path: Path) -> int | None:
    configured = env.get("REFSTORE_CACHE_MAX_BYTES")
    if configured:
        return parse_size(configured, "REFSTORE_CACHE_MAX_BYTES")
    if not path.exists():
        return None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}; fix or remove the file") from exc
    cache = data.get("cache", {})
    size = cache.get("max_size") if isinstance(cache, dict) else None
    return None if size is None else parse_size(size, f"{path}: [cache] max_size")
