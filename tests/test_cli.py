"""The command line, run in-process with click's runner against moto."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from refstore.cli import main


@pytest.fixture
def cli(moto_s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    home = tmp_path / "home"
    home.mkdir()
    endpoint = moto_s3.endpoint_url
    (home / "config.toml").write_text(
        f'[stores.s3]\nendpoint_url = "{endpoint}"\nregion = "us-east-1"\n'
    )
    monkeypatch.setenv("REFSTORE_HOME", str(home))
    monkeypatch.delenv("REFSTORE_URL", raising=False)
    monkeypatch.delenv("REFSTORE_PROJECT", raising=False)
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


@pytest.fixture
def bucket(moto_s3: Any) -> str:
    name = str(moto_s3.make_bucket())
    for i in range(3):
        moto_s3.client.put_object(Bucket=name, Key=f"data/{i}.txt", Body=b"x" * i)
    return name


def test_log_ls_show_fetch(cli: Any, bucket: str, tmp_path: Path) -> None:
    logged = cli(
        "log",
        "acme/cli",
        "things",
        "--type",
        "dataset",
        f"s3://{bucket}/data/",
        "--alias",
        "raw",
        "--metadata",
        '{"k": 1}',
        "--json",
    )
    assert logged.exit_code == 0, logged.output
    record = json.loads(logged.stdout)
    assert record["artifact"] == "acme/cli/things:v0"
    assert record["metadata"] == {"k": 1}
    assert sorted(record["aliases"]) == ["latest", "raw"]

    listed = json.loads(cli("ls", "acme/cli", "--json").stdout)
    assert listed == [
        {"name": "things", "type": "dataset", "versions": 1, "latest": "v0"}
    ]
    versions = json.loads(cli("ls", "acme/cli/things", "--json").stdout)
    assert [v["version"] for v in versions] == ["v0"]

    shown = json.loads(cli("show", "acme/cli/things:raw", "--json").stdout)
    assert sorted(shown["entries"]) == ["0.txt", "1.txt", "2.txt"]
    manifest = json.loads(cli("show", "acme/cli/things:v0", "--manifest").stdout)
    assert manifest["version"] == 1
    assert manifest["contents"]["2.txt"]["size"] == 2

    fetched = cli("fetch", "acme/cli/things:v0", "-o", str(tmp_path / "out"), "--json")
    assert fetched.exit_code == 0, fetched.output
    assert json.loads(fetched.stdout)["fetched"] == 3
    assert (tmp_path / "out" / "2.txt").read_bytes() == b"xx"


def test_logging_the_same_content_twice_says_so(cli: Any, bucket: str) -> None:
    args = ("log", "acme/cli", "things", "--type", "dataset", f"s3://{bucket}/data/")
    assert cli(*args).exit_code == 0

    again = cli(*args)

    assert again.exit_code == 0
    assert "unchanged" in again.output
    assert "acme/cli/things:v0" in again.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(("show", "acme/cli/nothing:v0"), "no project", id="not-found"),
        pytest.param(
            ("log", "acme/cli", "x", "--type", "t", "s3://B/k"),
            "not a valid S3 bucket name",
            id="bad-uri",
        ),
        pytest.param(
            ("log", "acme/cli", "x", "--type", "t", "s3://missing-bkt/k"),
            "missing-bkt",
            id="missing-bucket",
        ),
        pytest.param(
            ("log", "acme/cli", "x", "--type", "t", "/no/such/file"),
            "neither a reference",
            id="missing-file",
        ),
        pytest.param(
            ("log", "acme/cli", "x", "--type", "t", "s3://b-1/k", "--metadata", "[1]"),
            "JSON object",
            id="bad-metadata",
        ),
    ],
)
def test_errors_are_one_line_and_exit_2(
    cli: Any, args: tuple[str, ...], message: str
) -> None:
    result = cli(*args)

    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
