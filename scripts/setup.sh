#!/usr/bin/env bash
# Idempotent set-up on a fresh machine: Debian packages, Python virtual environment, Python packages, the viewer bundle.
# Called by scripts/demo.sh and scripts/test.sh; safe to run again (it only redoes what changed).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: tesseract-ocr reads every uploaded image for burned-in text (without it every series is held),
# chromium runs the browser tests. Installed when missing and this user may; otherwise said, not silently skipped.
missing=()
command -v tesseract >/dev/null 2>&1 || missing+=(tesseract-ocr)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "Missing Debian packages: ${missing[*]} (sudo apt-get install ${missing[*]})." >&2
    echo "Without tesseract-ocr every uploaded series is held until checked; without chromium the browser tests skip." >&2
  fi
fi

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/pip install --quiet --upgrade pip
  .venv/bin/pip install --quiet -r requirements-dev.txt
  echo "$want" > "$stamp"
fi

if [ -f frontend/package.json ]; then
  fstamp=frontend/node_modules/.build.sha256
  fwant=$( (cat frontend/package.json frontend/package-lock.json; find frontend/src frontend/vite.config.* -type f -print0 2>/dev/null | sort -z | xargs -0 cat) | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$fstamp" 2>/dev/null)" != "$fwant" ] || [ ! -d frontend/dist ]; then
    (cd frontend && npm ci --no-audit --no-fund --loglevel=error && npm run build --silent)
    echo "$fwant" > "$fstamp"
  fi
fi
