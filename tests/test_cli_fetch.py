"""``refstore fetch`` and ``refstore cache``, run in-process against moto."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from refstore.cli import main
from refstore.cli_fetch import progress_line
from refstore.progress import ProgressSnapshot

PROJECT = "acme/cli-fetch"


@pytest.fixture
def cli(moto_s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'[stores.s3]\nendpoint_url = "{moto_s3.endpoint_url}"\nregion = "us-east-1"\n'
    )
    for name in ("REFSTORE_URL", "REFSTORE_CACHE_DIR", "REFSTORE_CACHE_MAX_BYTES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REFSTORE_HOME", str(home))
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


@pytest.fixture
def logged(cli: Any, moto_s3: Any) -> str:
    """Logs data:v0 with images/a, images/b and labels.csv; deletes images/b."""
    bucket = moto_s3.make_bucket()
    for key in ("images/a.png", "images/b.png", "labels.csv"):
        moto_s3.client.put_object(Bucket=bucket, Key=f"d/{key}", Body=key.encode())
    result = cli("log", PROJECT, "data", "--type", "dataset", f"s3://{bucket}/d/")
    assert result.exit_code == 0, result.output
    versions = moto_s3.client.list_object_versions(Bucket=bucket, Prefix="d/images/b")
    version = versions["Versions"][0]["VersionId"]
    moto_s3.client.delete_object(Bucket=bucket, Key="d/images/b.png", VersionId=version)
    return bucket


def test_fetch_with_path_prefix_and_skip_missing(
    cli: Any, logged: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"

    strict = cli("fetch", f"{PROJECT}/data:v0", "-o", str(out), "--path-prefix", "im")
    result = cli(
        "fetch",
        f"{PROJECT}/data:v0",
        "-o",
        str(out),
        "--path-prefix",
        "images/",
        "--skip-missing",
        "--json",
    )

    assert strict.exit_code == 2
    assert "images/b.png" in strict.stderr
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["fetched"] + summary["skipped"] == 1
    assert [m["path"] for m in summary["missing"]] == ["images/b.png"]
    assert sorted(p.name for p in out.rglob("*") if p.is_file()) == ["a.png"]


def test_fetch_reports_cache_hits_and_cache_commands_manage_it(
    cli: Any, logged: str, tmp_path: Path
) -> None:
    first = cli("fetch", f"{PROJECT}/data:v0", "-o", str(tmp_path / "one"))
    second = cli(
        "fetch", f"{PROJECT}/data:v0", "-o", str(tmp_path / "two"), "--skip-missing"
    )
    info = json.loads(cli("cache", "info", "--json").stdout)
    unlimited = cli("cache", "prune")
    pruned = cli("cache", "prune", "--max-size", "0", "--json")

    assert first.exit_code == 2
    assert "2 from the cache" in second.stdout
    assert "skipped images/b.png" in second.stderr
    assert (info["objects"], info["bytes"], info["max_bytes"]) == (2, 22, None)
    assert unlimited.exit_code == 2
    assert "no size limit" in unlimited.stderr
    assert json.loads(pruned.stdout)["removed"] == 2
    assert json.loads(cli("cache", "info", "--json").stdout)["objects"] == 0
    assert (tmp_path / "two" / "labels.csv").read_bytes() == b"labels.csv"


def test_progress_line_shows_bytes_objects_throughput_and_eta() -> None:
    snapshot = ProgressSnapshot(
        objects_done=120,
        objects_total=500,
        bytes_done=100 * 2**20,
        bytes_total=300 * 2**20,
        seconds=4.0,
    )

    assert progress_line(snapshot) == (
        "fetching 100.0 MiB / 300.0 MiB, 120/500 objects, 25.0 MiB/s, ETA 0:08"
    )
