#!/usr/bin/env bash
# One command: set everything up and run readerstudy with a demo study (three sites, coordinators, readers,
# imported cases, a real Celery worker on the embedded broker). Stop with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

export READERSTUDY_DEBUG=${READERSTUDY_DEBUG:-1}
export READERSTUDY_VAR_DIR=${READERSTUDY_VAR_DIR:-$PWD/var/demo}
PORT=${PORT:-8000}
mkdir -p "$READERSTUDY_VAR_DIR"

.venv/bin/python manage.py migrate --noinput
.venv/bin/python -m celery -A readerstudy worker -Q default,gpu --concurrency 2 --loglevel INFO \
  > "$READERSTUDY_VAR_DIR/worker.log" 2>&1 &
worker=$!
trap 'kill $worker 2>/dev/null || true' EXIT INT TERM
.venv/bin/python manage.py setup_demo
echo
echo "readerstudy is running at http://127.0.0.1:$PORT/  (worker log: $READERSTUDY_VAR_DIR/worker.log)"
echo
.venv/bin/python manage.py runserver "127.0.0.1:$PORT"
