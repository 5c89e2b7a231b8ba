"""Tokens for refstore services, saved by ``refstore login``.

``credentials.json`` in the refstore home maps each service URL to a token.
The file is created readable by its owner only (0600), and rewritten whole
through a temporary file, so a crash never leaves half a file behind.
``REFSTORE_TOKEN`` overrides it.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from refstore.errors import ConfigError

__all__ = ["forget_token", "load_token", "save_token"]

_FILE = "credentials.json"


def _key(url: str) -> str:
    return url.rstrip("/")


def _read(home: Path) -> dict[str, str]:
    path = home / _FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}; log in again") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path} is not a JSON object; remove it and log in again")
    return {str(k): str(v) for k, v in data.items()}


def _write(home: Path, tokens: dict[str, str]) -> None:
    home.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=home, prefix=".credentials-")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            json.dump(tokens, stream, indent=2, sort_keys=True)
        Path(tmp).replace(home / _FILE)
    finally:
        with contextlib.suppress(FileNotFoundError):
            Path(tmp).unlink()


def load_token(home: Path, url: str) -> str | None:
    return _read(home).get(_key(url))


def save_token(home: Path, url: str, token: str) -> Path:
    tokens = _read(home)
    tokens[_key(url)] = token
    _write(home, tokens)
    return home / _FILE


def forget_token(home: Path, url: str) -> bool:
    tokens = _read(home)
    if tokens.pop(_key(url), None) is None:
        return False
    _write(home, tokens)
    return True
