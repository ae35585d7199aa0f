#!/usr/bin/env bash
# Set up everything aecodec needs on a fresh Debian machine: the Fashion-MNIST package and a C
# compiler with Python's headers (each only when absent: the lossless coder's loops are compiled
# when the package is installed), a virtual environment in .venv, and the package with its extras.
# --browser: also Debian's chromium and chromium-driver, for the test of aecodec compare's page.
set -euo pipefail
cd "$(dirname "$0")/.."
missing=()
if [ "${1:-}" = "--browser" ]; then
  command -v chromium >/dev/null || missing+=(chromium)
  command -v chromedriver >/dev/null || missing+=(chromium-driver)
fi
if [ ! -f /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz ] && [ -z "${AECODEC_DATA:-}" ]; then
  missing+=(dataset-fashion-mnist)
fi
command -v cc >/dev/null || missing+=(gcc)
python3 -c 'import os, sysconfig; raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' \
  || missing+=(python3-dev)
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev,bench,scale]'
