#!/usr/bin/env bash
# Re-create the bundled photo model, codec/pretrained/photo.aecm, exactly as it was made, on the CPU
# (about 100 minutes on 2 cores; logs: codec/pretrained/photo-train.log and photo-train-2.log),
# on the training photos of benchmarks/photos.py (wallpapers and scikit-image samples, downscaled
# to 512 on the long side; the held-out photos are never seen), in two stages:
#   1. the convolutional kind from random weights, 64,000 steps of 8 random 128x128 crops, with a
#      synthesis (decoder) 32 channels wide;
#   2. the synthesis widened to 64 channels (starting as the same function: the new units' outgoing
#      weights are zero) and the whole model trained on for 24,000 more steps: the decoder may cost
#      up to 0.5 s a photo, the encoder no more than AVIF, so the extra width goes where it is cheap.
# The bundled file was written with --out runs/photo2.aecm and copied; everything else in its
# recorded command is as below.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p runs
.venv/bin/python -m benchmarks.photos --export-train runs/photo-train
.venv/bin/aecodec train --kind conv --from-scratch --data runs/photo-train --name aecodec-photo \
    --steps 64000 --workdir runs/photo --out runs/photo-v1.aecm \
    2>&1 | tee runs/train-photo.log
.venv/bin/aecodec train --kind conv --init runs/photo-v1.aecm --synthesis-width 64 --learning-rate 2e-4 \
    --data runs/photo-train --name aecodec-photo --steps 24000 --workdir runs/photo2 \
    --out codec/pretrained/photo.aecm -f \
    2>&1 | tee runs/train-photo2.log
