"""Small helpers shared by the workflow tests."""

from __future__ import annotations

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
