"""``refstore diff`` and ``refstore delete`` on moto S3, embedded and served.

The commands build their own Api, as for a user; its context is the
workspace's. Every test here but the access test runs in both catalog
modes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import refstore
from refstore import cli_versions
from refstore.cli import main
from refstore.config import Settings
from refstore.context import Context
from refstore.errors import NotFoundError
from tests.helpers import Workspace
from tests.service import running_service, workspace

PROJECT = "acme/vision"
V0 = f"{PROJECT}/data:v0"
V1 = f"{PROJECT}/data:v1"
A_BEFORE = b"a,1\n"
A_AFTER = b"a,1\na,2\n"

Cli = Callable[..., Result]


@dataclasses.dataclass(frozen=True)
class History:
    """v0 (alias raw) of a.csv, b.csv, c.csv; then a overwritten, b gone, d new."""

    bucket: str
    a_before: str
    a_after: str


@pytest.fixture
def ws(moto_s3: Any, tmp_path: Path, catalog_mode: str) -> Iterator[Workspace]:
    with workspace(catalog_mode, moto_s3, tmp_path) as opened:
        yield opened


@pytest.fixture
def cli(ws: Workspace, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    """Run ``refstore`` with the workspace's settings."""
    context = Context(ws.settings)
    monkeypatch.setattr(Context, "current", staticmethod(lambda: context))

    def invoke(*args: str, stdin: str | None = None) -> Result:
        return CliRunner().invoke(main, list(args), input=stdin)

    yield invoke
    context.close()


@pytest.fixture
def history(ws: Workspace) -> History:
    bucket = ws.s3.make_bucket()
    a_before = ws.put(bucket, "data/a.csv", A_BEFORE)
    ws.put(bucket, "data/b.csv", b"b,1\n")
    ws.put(bucket, "data/c.csv", b"c,1\n")
    log(ws, bucket, aliases=["raw"])
    a_after = ws.put(bucket, "data/a.csv", A_AFTER)
    ws.s3.client.delete_object(Bucket=bucket, Key="data/b.csv")
    ws.put(bucket, "data/d.csv", b"d,1\n")
    log(ws, bucket)
    return History(bucket, a_before, a_after)


@pytest.fixture
def terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli_versions, "_interactive", lambda: True)


def log(ws: Workspace, bucket: str, aliases: list[str] | None = None) -> None:
    artifact = ws.artifact()
    artifact.add_reference(f"s3://{bucket}/data/")
    artifact.save(project=PROJECT, aliases=aliases or [])


def short(value: str) -> str:
    return value[:8] + "…"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def expected_lines(history: History) -> list[str]:
    change = (
        f"version {short(history.a_before)} → {short(history.a_after)}, "
        f"etag {short(md5(A_BEFORE))} → {short(md5(A_AFTER))}, size 4 → 8"
    )
    return [
        f"M a.csv  {change}",
        "D b.csv",
        "A d.csv",
        "1 added, 1 removed, 1 changed, 0 moved, 1 unchanged",
    ]


def versions(ws: Workspace) -> list[str]:
    return [a.version or "" for a in ws.api.artifact_versions(f"{PROJECT}/data")]


def one_error_line(result: Result) -> str:
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1, result.output
    assert result.output.startswith("error: ")
    return result.output


# diff


def test_diff_lists_each_differing_path_then_the_counts(
    cli: Cli, history: History
) -> None:
    result = cli("diff", V0, V1)

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == expected_lines(history)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param(V0, ":latest", id="latest"),
        pytest.param(V0, ":v1", id="version"),
        pytest.param(f"{PROJECT}/data:raw", ":latest", id="alias-to-latest"),
    ],
)
def test_a_bare_selector_names_another_version_of_old(
    cli: Cli, history: History, old: str, new: str
) -> None:
    text = cli("diff", old, new)
    data = cli("diff", old, new, "--json")

    assert text.stdout.splitlines() == expected_lines(history)
    assert json.loads(data.stdout)["old"] == V0
    assert json.loads(data.stdout)["new"] == V1


def test_stat_prints_only_the_counts(cli: Cli, history: History) -> None:
    result = cli("diff", V0, ":latest", "--stat")

    assert result.exit_code == 0, result.output
    assert result.stdout == "1 added, 1 removed, 1 changed, 0 moved, 1 unchanged\n"


def test_json_prints_the_whole_diff(cli: Cli, history: History) -> None:
    whole = json.loads(cli("diff", V0, V1, "--json").stdout)
    counts = json.loads(cli("diff", V0, V1, "--json", "--stat").stdout)

    expected_counts = {
        "added": 1,
        "removed": 1,
        "changed": 1,
        "moved": 0,
        "unchanged": 1,
    }
    assert whole["counts"] == counts["counts"] == expected_counts
    assert [entry["path"] for entry in whole["added"]] == ["d.csv"]
    assert [entry["path"] for entry in whole["removed"]] == ["b.csv"]
    [change] = whole["changed"]
    assert change["fields"] == ["version", "etag", "size"]
    assert change["old"]["extra"]["versionID"] == history.a_before
    assert change["new"]["extra"]["versionID"] == history.a_after
    assert whole["moved"] == []
    assert counts == {"old": V0, "new": V1, "counts": expected_counts}


@pytest.mark.parametrize(
    ("new", "flags", "code"),
    [
        pytest.param(":v1", [], 0, id="differ"),
        pytest.param(":v1", ["--exit-code"], 1, id="differ-exit-code"),
        pytest.param(":v1", ["--exit-code", "--stat"], 1, id="differ-stat"),
        pytest.param(":raw", ["--exit-code"], 0, id="same-exit-code"),
    ],
)
def test_exit_code(
    cli: Cli, history: History, new: str, flags: list[str], code: int
) -> None:
    result = cli("diff", V0, new, *flags)

    assert result.exit_code == code, result.output


def test_the_same_version_differs_in_nothing(cli: Cli, history: History) -> None:
    result = cli("diff", V1, ":latest", "--exit-code")

    assert result.exit_code == 0, result.output
    assert result.stdout == "0 added, 0 removed, 0 changed, 0 moved, 3 unchanged\n"


def test_manifest_files_on_either_side(
    cli: Cli, history: History, tmp_path: Path
) -> None:
    exported = tmp_path / "v0.json"
    exported.write_text(cli("show", V0, "--manifest").stdout)
    wandb = tmp_path / "wandb_manifest.json"
    wandb.write_text(json.dumps(wandb_manifest(cli("show", V1, "--json").stdout)))

    from_file = cli("diff", str(exported), V1)
    to_wandb = cli("diff", V0, str(wandb))
    same = cli("diff", V1, str(wandb), "--exit-code")

    assert from_file.stdout.splitlines() == expected_lines(history)
    assert to_wandb.stdout.splitlines() == expected_lines(history)
    assert same.exit_code == 0, same.output
    assert same.stdout == "0 added, 0 removed, 0 changed, 0 moved, 3 unchanged\n"


def wandb_manifest(shown: str) -> dict[str, Any]:
    """The wandb_manifest.json W&B writes for the references of a version."""
    contents = {
        path: {
            "digest": entry["digest"],
            "ref": entry["ref"],
            "size": entry["size"],
            "extra": {
                "etag": entry["extra"]["etag"],
                "versionID": entry["extra"]["versionID"],
            },
        }
        for path, entry in json.loads(shown)["entries"].items()
    }
    return {
        "version": 1,
        "storagePolicy": "wandb-storage-policy-v1",
        "storagePolicyConfig": {"storageLayout": "V2"},
        "contents": contents,
    }


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        pytest.param(f"{PROJECT}/nope:v0", ":v1", "no artifact", id="unknown-artifact"),
        pytest.param(V0, ":v7", "v7", id="unknown-version"),
        pytest.param("bad.json", V0, "not valid JSON", id="bad-file"),
        pytest.param("v2.json", V0, "manifest version 2", id="newer-file"),
        pytest.param("empty.json", ":v1", "is a manifest file", id="bare-after-file"),
        pytest.param(":v0", ":v1", "names no project", id="bare-old"),
    ],
)
def test_diff_errors_exit_2_with_one_line(
    cli: Cli,
    history: History,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    old: str,
    new: str,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    Path("bad.json").write_text("{not json")
    Path("v2.json").write_text('{"version": 2, "contents": {}}')
    Path("empty.json").write_text('{"version": 1, "contents": {}}')

    result = cli("diff", old, new)

    assert message in one_error_line(result)


# delete


def test_delete_with_yes(cli: Cli, ws: Workspace, history: History) -> None:
    result = cli("delete", V1, "--yes")

    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        f"deleted {V1} (3 entries)",
        "latest now names the newest remaining version, if any",
        "blob-store files no other version needs go at `refstore gc`",
    ]
    assert versions(ws) == ["v0"]
    assert ws.api.artifact(f"{PROJECT}/data:latest").version == "v0"


def test_delete_refuses_a_version_with_aliases(
    cli: Cli, ws: Workspace, history: History
) -> None:
    result = cli("delete", V0, "--yes")

    assert "still has the aliases raw" in one_error_line(result)
    assert "--delete-aliases" in result.output
    assert versions(ws) == ["v0", "v1"]


def test_delete_with_its_aliases(cli: Cli, ws: Workspace, history: History) -> None:
    result = cli("delete", f"{PROJECT}/data:raw", "--delete-aliases", "--yes", "--json")

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "deleted": V0,
        "entries": 3,
        "deleted_aliases": ["raw"],
        "was_latest": False,
    }
    assert versions(ws) == ["v1"]
    with pytest.raises(NotFoundError):
        ws.api.artifact(f"{PROJECT}/data:raw")


def test_delete_without_a_terminal_needs_yes(
    cli: Cli, ws: Workspace, history: History
) -> None:
    result = cli("delete", V1)

    assert "pass --yes to delete it" in one_error_line(result)
    assert versions(ws) == ["v0", "v1"]


@pytest.mark.usefixtures("terminal")
def test_delete_asks_on_a_terminal(cli: Cli, ws: Workspace, history: History) -> None:
    result = cli("delete", V0, "--delete-aliases", stdin="y\n")

    assert result.exit_code == 0, result.output
    assert f"delete {V0} (aliases: raw; 3 entries, 12 B)? [y/N]" in result.output
    assert versions(ws) == ["v1"]


@pytest.mark.usefixtures("terminal")
@pytest.mark.parametrize("answer", ["n", ""])
def test_delete_keeps_the_version_unless_confirmed(
    cli: Cli, ws: Workspace, history: History, answer: str
) -> None:
    result = cli("delete", V1, stdin=f"{answer}\n")

    assert result.exit_code == 2, result.output
    assert f"delete {V1} (aliases: latest; 3 entries, 16 B)?" in result.output
    assert f"{V1} was not deleted" in result.output
    assert versions(ws) == ["v0", "v1"]


@pytest.mark.parametrize(
    ("path", "message"),
    [
        pytest.param(f"{PROJECT}/data", "names no version", id="no-selector"),
        pytest.param(f"{PROJECT}/data:v9", "v9", id="unknown-version"),
        pytest.param(f"{PROJECT}/nope:v0", "no artifact", id="unknown-artifact"),
    ],
)
def test_delete_errors_exit_2_with_one_line(
    cli: Cli, ws: Workspace, history: History, path: str, message: str
) -> None:
    result = cli("delete", path, "--yes")

    assert message in one_error_line(result)
    assert versions(ws) == ["v0", "v1"]


def test_deleting_a_used_version_keeps_the_run(
    cli: Cli, ws: Workspace, history: History
) -> None:
    with refstore.init(project=PROJECT, id="train", context=ws.context) as run:
        run.use_artifact(f"{PROJECT}/data:raw")

    result = cli("delete", V0, "--delete-aliases", "--yes")

    assert result.exit_code == 0, result.output
    assert ws.api.run(f"{PROJECT}/train").used_artifacts() == []


def test_gc_frees_the_manifest_of_a_deleted_version(
    cli: Cli, ws: Workspace, history: History, catalog_mode: str
) -> None:
    if catalog_mode == "service":
        pytest.skip("a service collects its own blob store (tests/server)")
    before = set(ws.context.blobs)

    cli("delete", V1, "--yes")
    report = cli("gc", "--grace", "0", "--json")

    freed = json.loads(report.stdout)["blobs"]
    assert len(freed) == 1
    assert set(freed) == before - set(ws.context.blobs)
    assert len(ws.api.artifact(V0).manifest) == 3


# at a service, as someone who is not a member


def test_non_members_get_the_services_answer(
    moto_s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = tmp_path / "server"
    with running_service(f"sqlite:///{server / 'c.db'}", server / "blobs") as service:
        alice = service.user("alice", "acme")
        outsider = service.user("oscar")
        member = Workspace(moto_s3, tmp_path / "alice", url=service.url, token=alice)
        bucket = moto_s3.make_bucket()
        moto_s3.put(bucket, "data/a.csv", b"a\n")
        for project in ("acme/private", "acme/shared"):
            artifact = member.artifact()
            artifact.add_reference(f"s3://{bucket}/data/")
            artifact.save(project=project)
        service.catalog.set_visibility("acme/shared", "public")
        member.close()
        context = Context(
            Settings(home=tmp_path / "oscar", url=service.url, token=outsider)
        )
        monkeypatch.setattr(Context, "current", staticmethod(lambda: context))

        hidden = CliRunner().invoke(main, ["delete", "acme/private/data:v0", "--yes"])
        read_only = CliRunner().invoke(main, ["delete", "acme/shared/data:v0", "--yes"])
        diff = CliRunner().invoke(main, ["diff", "acme/shared/data:v0", ":latest"])
        context.close()

    assert "no project acme/private that you may see" in one_error_line(hidden)
    assert "you may read acme/shared but not delete in it" in one_error_line(read_only)
    assert diff.exit_code == 0, diff.output
