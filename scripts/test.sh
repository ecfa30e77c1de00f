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
echo "test: format (prettier --check)" >&2
npx prettier --check .
echo "test: vitest" >&2
results=$(mktemp)
set +e
npx vitest run --reporter=default --reporter=json --outputFile="$results" "$@"
rc=$?
set -e
# One plain closing line for CI logs: "N passed, N failed, N skipped".
node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(`vitest: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`)' "$results" 2>/dev/null || true
rm -f "$results"
exit "$rc"
