#!/usr/bin/env bash
# Set up (scripts/setup.sh), then compress and restore the 10,000 Fashion-MNIST test images
# with the bundled model at every quality, printing size and PSNR beside gzip -9.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m benchmarks.demo "$@"
