#!/usr/bin/env bash
# Set up (scripts/setup.sh, with the browser that tests aecodec compare's page) and run the whole
# test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --browser
exec .venv/bin/python -m pytest "$@"
