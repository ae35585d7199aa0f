#!/usr/bin/env bash
# Train a photo model on a lent GPU within 9 minutes of wall time: the same `aecodec train` as on
# the CPU (JAX picks the accelerator), its model file and log brought back.
#
#   here, once:      bash scripts/train-gpu.sh prepare
#                    (the training and validation photos to runs/gpu-data, the constriction wheel
#                    for the GPU machine's Python 3.12 to .whl)
#   on the GPU:      device run: bash scripts/train-gpu.sh run
#                    carry: runs/gpu-data .whl; timeout_s 600
#                    (writes $OUT/photo-gpu.aecm, $OUT/train-gpu.log and the checkpoint)
#
# The stage it runs: the bundled photo model's convolutional levels trained on from their weights
# (the campaign's next stage, docs/training.md), for the steps that fit GPU_MINUTES. The log's
# "reproduce this run with --steps N" line gives the CPU command that makes the same model:
#   aecodec train --kind conv --init codec/pretrained/photo.aecm --learning-rate 1e-4 \
#       --data runs/gpu-data/train --val runs/gpu-data/val --steps N --workdir W --out photo-gpu.aecm
# (the run resumes from W's checkpoint when a session ends first).
set -euo pipefail
cd "$(dirname "$0")/.."
GPU_MINUTES=${GPU_MINUTES:-6}  # then measuring the ladder: the whole run within 9 minutes

case "${1:-}" in
prepare)
    bash scripts/setup.sh
    .venv/bin/python -m benchmarks.photos --export-train runs/gpu-data/train \
        --export-val runs/gpu-data/val
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl constriction==0.5.0
    du -sh runs/gpu-data .whl
    ;;
run)
    OUT=${OUT:-runs/gpu-out}
    mkdir -p "$OUT"
    if ! python3 -c "import constriction" 2>/dev/null; then  # the GPU machine has no registry
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site .whl/*.whl
    fi
    export PYTHONPATH="/tmp/site:$PWD" PYTHONUNBUFFERED=1
    python3 -c "import jax; print('devices:', jax.devices())" | tee "$OUT/train-gpu.log"
    timeout 560 python3 -m codec.cli train --kind conv --init codec/pretrained/photo.aecm \
        --learning-rate 1e-4 --data runs/gpu-data/train --val runs/gpu-data/val \
        --minutes "$GPU_MINUTES" --workdir "$OUT/w" --out "$OUT/photo-gpu.aecm" -f \
        2>&1 | tee -a "$OUT/train-gpu.log"
    ;;
*)
    echo "usage: bash scripts/train-gpu.sh prepare|run" >&2
    exit 2
    ;;
esac
