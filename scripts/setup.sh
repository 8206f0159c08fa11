#!/usr/bin/env bash
# Set up a fresh machine: Debian packages the reports need, a virtualenv with the locked
# dependencies, and the `sla` command (pip install -e .). Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)          # kaleido renders plotly charts with it
command -v pdftoppm >/dev/null 2>&1 || need+=(poppler-utils)     # page snapshots of the PDFs
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# Debian's own CPython first: it is built with profile-guided and link-time optimisation and
# renders a customer PDF with 11-16 % less CPU than a default pyenv build of the same 3.11
# (no --enable-optimizations; benchmarks/README.md section 8). Any python3.11 otherwise.
if [ -z "${PYTHON:-}" ] && [ -x /usr/bin/python3.11 ] && /usr/bin/python3.11 -c "import ensurepip, venv" 2>/dev/null; then
  PYTHON=/usr/bin/python3.11
fi
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($PYTHON --version)" >&2
  "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
echo "setup: installing locked dependencies (requirements.lock)" >&2
.venv/bin/python -m pip install -q -r requirements.lock
.venv/bin/python -m pip install -q --no-deps -e .
echo "setup: done (.venv/bin/sla)" >&2
