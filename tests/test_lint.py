"""The code base stays ruff clean (lint rules and formatting), checked like any other behaviour."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_ruff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args, "."], cwd=REPO, capture_output=True, text=True, timeout=120
    )


def test_ruff_check_is_clean() -> None:
    done = run_ruff("check", "--output-format", "concise")
    assert done.returncode == 0, done.stdout + done.stderr


def test_ruff_format_is_clean() -> None:
    done = run_ruff("format", "--check")
    assert done.returncode == 0, done.stdout + done.stderr
