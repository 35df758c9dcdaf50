#!/usr/bin/env bash
# One command: set everything up and run the whole test suite, on SQLite and then on PostgreSQL.
# Extra arguments go to pytest (for example: scripts/test.sh tests/imaging -x).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

export REDIS_TEST_URL=${REDIS_TEST_URL:-redis://127.0.0.1:6379/15}
echo "== viewer unit tests (vitest) =="
(cd frontend && npm test --silent)
echo "== test suite on SQLite =="
.venv/bin/python -m pytest "$@"
echo "== test suite on PostgreSQL =="
DATABASE_URL=${POSTGRES_TEST_URL:-postgres://postgres@127.0.0.1:5432/readerstudy} .venv/bin/python -m pytest "$@"
