#!/usr/bin/env bash
# Re-create the bundled model, codec/pretrained/fmnist.aecm, exactly as it was made:
# 40 epochs on the Fashion-MNIST train split, on the CPU (about 30 minutes on 2 cores).
# Its log is codec/pretrained/fmnist-train.log.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p runs
.venv/bin/aecodec train --epochs 40 --workdir runs/fmnist --out codec/pretrained/fmnist.aecm 2>&1 | tee runs/train-fmnist.log
