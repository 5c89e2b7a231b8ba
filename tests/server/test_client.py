"""The library through the service: uploads, visibility in lineage, gc, errors."""

from __future__ import annotations

import contextlib
import datetime
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

import refstore
from refstore.catalog.http import HttpCatalog
from refstore.config import Settings
from refstore.context import Context
from refstore.errors import CatalogError, NotFoundError
from tests.service import ADMIN_TOKEN, RunningService


@contextlib.contextmanager
def client(service: RunningService, home: Path, token: str | None) -> Iterator[Context]:
    context = Context(Settings(home=home, url=service.url, token=token))
    try:
        yield context
    finally:
        context.close()


def log_file(
    context: Context, project: str, name: str, source: Path
) -> refstore.Artifact:
    artifact = refstore.Artifact(name, "dataset", context=context)
    artifact.add_file(source)
    return artifact.save(project=project)


def uploads(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "refstore.server.access"
        and "method=PUT" in record.getMessage()
        and "/blobs/" in record.getMessage()
    ]


def test_a_copied_file_is_uploaded_once_per_project(
    service: RunningService, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    token = service.user("una", "uploads")
    shared = tmp_path / "weights.bin"
    shared.write_bytes(b"w" * 10_000)
    extra = tmp_path / "config.json"
    extra.write_text("{}")
    caplog.set_level(logging.INFO, logger="refstore.server.access")

    with client(service, tmp_path / "a", token) as first:
        log_file(first, "uploads/p", "one", shared)
    once = uploads(caplog)
    with client(service, tmp_path / "b", token) as second:
        both = refstore.Artifact("two", "dataset", context=second)
        both.add_file(shared)
        both.add_file(extra)
        both.save(project="uploads/p")
        fetched = both.download(tmp_path / "out")
    later = uploads(caplog)[len(once) :]

    assert len(once) == 2  # the manifest and the file
    assert len(later) == 2  # the new manifest and the new file only
    assert not any(digest in line for line in later for digest in _digests(once))
    assert (fetched / "weights.bin").read_bytes() == shared.read_bytes()
    assert (fetched / "config.json").read_text() == "{}"


def _digests(lines: list[str]) -> list[str]:
    return [line.split("/blobs/")[1].split()[0] for line in lines]


def test_lineage_hides_runs_of_projects_one_may_not_read(
    service: RunningService, tmp_path: Path
) -> None:
    publisher = service.user("pia", "pubs")
    spy = service.user("sid", "covert")
    outsider = service.user("oscar")
    service.catalog.set_visibility("pubs/data", "public")
    source = tmp_path / "labels.csv"
    source.write_text("a,b\n")
    with client(service, tmp_path / "pub", publisher) as context:
        log_file(context, "pubs/data", "labels", source)
    with (
        client(service, tmp_path / "spy", spy) as context,
        refstore.init(project="covert/work", id="secret-run", context=context) as run,
    ):
        run.use_artifact("pubs/data/labels:v0")

    with client(service, tmp_path / "out", outsider) as context:
        seen_by_outsider = refstore.Api(context=context).artifact("pubs/data/labels:v0")
        hidden = seen_by_outsider.used_by()
    with client(service, tmp_path / "in", spy) as context:
        seen_by_member = refstore.Api(context=context).artifact("pubs/data/labels:v0")
        shown = [run.path for run in seen_by_member.used_by()]

    assert hidden == []
    assert shown == ["covert/work/secret-run"]


def test_anonymous_clients_read_public_projects_only(
    service: RunningService, tmp_path: Path
) -> None:
    writer = service.user("wes", "shared")
    service.catalog.set_visibility("shared/open-data", "public")
    source = tmp_path / "readme.txt"
    source.write_text("hello\n")
    with client(service, tmp_path / "w", writer) as context:
        log_file(context, "shared/open-data", "docs", source)
        log_file(context, "shared/closed", "docs", source)

    with client(service, tmp_path / "anon", None) as context:
        api = refstore.Api(context=context)
        readable = api.artifact("shared/open-data/docs:latest")
        folder = readable.download(tmp_path / "got")
        with pytest.raises(NotFoundError, match="may see"):
            api.artifact("shared/closed/docs:latest")
        with pytest.raises(CatalogError, match="sign in"):
            log_file(context, "shared/open-data", "more", source)
        listed = [project.path for project in api.projects()]

    assert (folder / "readme.txt").read_text() == "hello\n"
    assert "shared/open-data" in listed
    assert "shared/closed" not in listed


def test_gc_runs_at_the_service_for_site_admins(
    service: RunningService, tmp_path: Path
) -> None:
    user = service.user("gus")

    with client(service, tmp_path / "admin", ADMIN_TOKEN) as context:
        report = refstore.Api(context=context).gc(dry_run=True)
    with (
        client(service, tmp_path / "user", user) as context,
        pytest.raises(CatalogError, match="HTTP 403"),
    ):
        refstore.Api(context=context).gc(grace=datetime.timedelta(0))

    assert report.dry_run is True


def test_open_catalog_reads_the_saved_token(
    service: RunningService, tmp_path: Path
) -> None:
    from refstore.credentials import save_token

    save_token(tmp_path, service.url, ADMIN_TOKEN)
    catalog = HttpCatalog.from_settings(Settings(home=tmp_path, url=service.url))
    try:
        identity = catalog.transport.json("GET", "/api/v1/whoami", idempotent=True)
    finally:
        catalog.close()

    assert identity["user"] == "admin"
    assert (tmp_path / "credentials.json").stat().st_mode & 0o777 == 0o600
