"""The README's first command: the demo, run as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["HOME"] = str(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "refstore.cli", "demo", "--home", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "match the original bytes" in result.stdout
    assert "logged demo/vision/furniture:v1" in result.stdout
    assert (tmp_path / "d" / "catalog.db").is_file()
