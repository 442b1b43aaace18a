"""The Makefile's Python probe stays quiet where pyenv shims answer for versions it lacks."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from app.config import PROJECT_ROOT

SHIM = """#!/bin/sh
echo "pyenv: $(basename "$0"): command not found" >&2
echo "The \\`$(basename "$0")' command exists in these Python versions:" >&2
exit 127
"""


def test_missing_pyenv_versions_print_nothing(tmp_path: Path) -> None:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    for name in ("python3.13", "python3.12"):
        shim = tmp_path / name
        shim.write_text(SHIM)
        shim.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    env.pop("PYTHON", None)
    run = subprocess.run(
        [make, "-n", "--no-print-directory", "lint"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "pyenv" not in run.stderr + run.stdout
