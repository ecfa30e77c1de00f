#!/usr/bin/env bash
# The guided demo: builds a sandbox "production", backs it up, breaks it, and walks you through
# restoring it. Installs what is missing first. Everything it starts is cleaned up on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec node dist/bin.js demo "$@"
