"""Small helpers shared by the workflow tests."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from refstore.api import Api
from refstore.artifact import Artifact
from refstore.catalog.base import Clock
from refstore.config import Settings
from refstore.context import Context
from refstore.providers.base import Provider
from refstore.uri import ObjectRef


class Workspace:
    """A refstore home wired to one S3 emulator, with a context and an API."""

    def __init__(
        self,
        s3: Any,
        home: Path,
        clock: Clock | None = None,
        *,
        url: str | None = None,
        token: str | None = None,
    ) -> None:
        self.s3 = s3
        self.settings = Settings(
            home=home, stores=s3.settings.stores, url=url, token=token
        )
        self.context = Context(self.settings, clock)
        self.api = Api(context=Context(self.settings, clock))

    def artifact(
        self, name: str = "data", type_: str = "dataset", **kwargs: Any
    ) -> Artifact:
        return Artifact(name, type_, context=self.context, **kwargs)

    def put(self, bucket: str, key: str, body: bytes) -> str:
        """Upload an object; return its VersionId (None when unversioned)."""
        answer = self.s3.client.put_object(Bucket=bucket, Key=key, Body=body)
        return str(answer.get("VersionId"))

    def close(self) -> None:
        self.context.close()
        self.api.context.close()


def files_under(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


class OneProvider:
    """A provider source that always answers with the same provider."""

    def __init__(self, provider: Any) -> None:
        self.provider = provider

    def for_ref(self, ref: ObjectRef) -> Provider:
        provider: Provider = self.provider
        return provider

    @property
    def requests(self) -> dict[str, int]:
        return self.provider.requests.snapshot()  # type: ignore[no-any-return]


class GatedReads:
    """A provider source whose reads wait until ``opens`` of them have begun.

    Every read goes to the real provider, unchanged, once the gate opens (or
    after ``timeout`` seconds). Holding the first bytes back until several
    reads are under way makes the split of a large download, which depends
    on how soon idle workers find it, the same on every run.
    """

    def __init__(self, provider: Any, opens: int, timeout: float = 10.0) -> None:
        self.provider = provider
        self._opens = opens
        self._timeout = timeout
        self._started = 0
        self._changed = threading.Condition()
        self.spans: list[tuple[int, int | None]] = []

    def for_ref(self, ref: ObjectRef) -> Provider:
        return self  # type: ignore[return-value]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.provider, name)

    def read(self, info: Any, *, start: int = 0, end: int | None = None) -> Any:
        with self._changed:
            self._started += 1
            self.spans.append((start, end))
            self._changed.notify_all()
            self._changed.wait_for(
                lambda: self._started >= self._opens, timeout=self._timeout
            )
        return self.provider.read(info, start=start, end=end)
