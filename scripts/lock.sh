#!/usr/bin/env bash
# Re-resolve the locked dependency tree from pyproject.toml (exact pins there, transitive pins
# here) with uv's resolver, for the one platform we ship on. scripts/setup.sh installs it.
set -euo pipefail
cd "$(dirname "$0")/.."
UV=".venv/bin/uv"; [ -x "$UV" ] || UV="uv"
"$UV" pip compile pyproject.toml --extra test --extra bench --python-version 3.11 \
  --python-platform x86_64-unknown-linux-gnu --annotation-style line --quiet \
  --custom-compile-command "scripts/lock.sh" -o requirements.lock
