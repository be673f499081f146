#!/usr/bin/env bash
# One idempotent setup for a fresh clone: Debian packages when missing, .venv, Python deps, web assets.
# Re-running is cheap: each step checks a stamp and skips when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
VENV=.venv
STAMP=$VENV/.onepass-installed

need_apt=()
[ -e /usr/lib/x86_64-linux-gnu/libusb-1.0.so.0 ] || ls /usr/lib/*/libusb-1.0.so.0 >/dev/null 2>&1 || need_apt+=(libusb-1.0-0)
[ -x /usr/bin/chromium ] || need_apt+=(chromium)
# Validates docker-compose.yml in the tests (no container engine is needed for `docker-compose config`).
command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || need_apt+=(docker-compose)
# The job store's tests also run against a throwaway PostgreSQL cluster (initdb + pg_ctl, no service).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need_apt+=(postgresql)
command -v ffmpeg >/dev/null 2>&1 || true   # imageio-ffmpeg ships its own encoder binary
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing Debian packages: ${need_apt[*]}"
    apt-get install -y -q "${need_apt[@]}" >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q "${need_apt[@]}" >/dev/null 2>&1; } \
      || echo "setup: WARNING could not install ${need_apt[*]}; tests that need them will be skipped with a reason"
  else
    echo "setup: WARNING missing ${need_apt[*]} and not root; tests that need them will be skipped with a reason"
  fi
fi

if [ ! -x $VENV/bin/python ]; then
  echo "setup: creating $VENV"
  $PY -m venv $VENV
fi

hash_now=$(cat pyproject.toml | sha256sum | cut -d' ' -f1)
if [ ! -f $STAMP ] || [ "$(cat $STAMP)" != "$hash_now" ]; then
  echo "setup: installing Python packages (torch 2.13.0 CPU wheel from the local disk)"
  $VENV/bin/pip install -q --disable-pip-version-check -e ".[dev]" 2>&1 | grep -v "^WARNING: Location" || true
  $VENV/bin/python -c "import torch, fastapi, numba" >/dev/null
  echo "$hash_now" > $STAMP
fi

if [ -f web/package.json ]; then
  if [ ! -d web/node_modules ] || [ web/package-lock.json -nt web/node_modules/.onepass-stamp ]; then
    if command -v npm >/dev/null 2>&1; then
      echo "setup: installing web viewer packages (npm ci)"
      (cd web && npm ci --no-audit --no-fund --loglevel=error && touch node_modules/.onepass-stamp) \
        || echo "setup: WARNING npm ci failed; the viewer page will say its assets are missing"
    else
      echo "setup: WARNING npm not found; the viewer page will say its assets are missing"
    fi
  fi
fi
