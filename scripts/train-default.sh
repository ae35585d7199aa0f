#!/usr/bin/env bash
# Re-create the bundled model, codec/pretrained/fmnist.aecm, exactly as it was made, on the CPU
# (about 50 minutes on 2 cores), in two stages:
#   1. the transform levels (λ = 0.24, 0.8, 2: the defaults) and the cluster prior, without
#      context and without pixel levels: 40 epochs on the Fashion-MNIST train split
#      (log: codec/pretrained/fmnist-base-train.log);
#   2. the context networks added and everything fine-tuned from stage 1: 24 epochs; the
#      export then counts the pixel coder's tables (the default steps 44,33,24,18,14) on the
#      train split (log: codec/pretrained/fmnist-train.log).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p runs
.venv/bin/aecodec train --kind tile --name aecodec-fmnist --context-groups 1 --pixel-steps none --epochs 40 --workdir runs/fmnist-base \
    --out runs/fmnist-base.aecm 2>&1 | tee runs/train-fmnist-base.log
.venv/bin/aecodec train --kind tile --name aecodec-fmnist --init runs/fmnist-base.aecm --epochs 24 --learning-rate 1e-4 --workdir runs/fmnist-ctx \
    --out codec/pretrained/fmnist.aecm -f 2>&1 | tee runs/train-fmnist.log
