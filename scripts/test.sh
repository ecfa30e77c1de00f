#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, typechecks, lints, runs every test
# (unit, integration against real PostgreSQL/Redis/Prometheus, end-to-end in a terminal).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
echo "test: typecheck" >&2
npx tsc -p tsconfig.json --noEmit
echo "test: lint" >&2
npx eslint .
echo "test: vitest" >&2
npx vitest run "$@"
