#!/usr/bin/env bash
# Re-create the bundled model, codec/pretrained/fmnist.aecm, exactly as it was made, on the CPU
# (about 45 minutes on 2 cores), in two stages:
#   1. the transforms and the cluster prior, without context: 40 epochs on the Fashion-MNIST
#      train split, with the quality levels of the time (quality 1 at λ=0.7, about 23.6 dB)
#      (log: codec/pretrained/fmnist-base-train.log);
#   2. the context networks added and everything fine-tuned from stage 1: 24 epochs, with
#      today's default levels (quality 1 moved to λ=0.24, about 21.1 dB, so that the levels
#      span 22-38 dB) (log: codec/pretrained/fmnist-train.log).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p runs
.venv/bin/aecodec train --context-groups 1 --lambdas 0.7,1.33,2.6,4.9,9.4,18,34,63 --epochs 40 --workdir runs/fmnist-base --out runs/fmnist-base.aecm \
    2>&1 | tee runs/train-fmnist-base.log
.venv/bin/aecodec train --init runs/fmnist-base.aecm --epochs 24 --learning-rate 1e-4 --workdir runs/fmnist-ctx \
    --out codec/pretrained/fmnist.aecm 2>&1 | tee runs/train-fmnist.log
