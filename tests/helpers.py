"""Small helpers shared by the workflow tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from refstore.api import Api
from refstore.artifact import Artifact
from refstore.config import Settings
from refstore.context import Context


class Workspace:
    """A refstore home wired to one S3 emulator, with a context and an API."""

    def __init__(self, s3: Any, home: Path) -> None:
        self.s3 = s3
        self.settings = Settings(home=home, stores=s3.settings.stores)
        self.context = Context(self.settings)
        self.api = Api(self.settings)

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
