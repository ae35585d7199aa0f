#!/usr/bin/env bash
# Re-create the bundled photo model, codec/pretrained/photo.aecm, exactly as it was made, on the CPU
# (about 60 minutes on 2 cores; log: codec/pretrained/photo-train.log): the convolutional kind from
# random weights, 64,000 steps of 8 random 128x128 crops, on the training photos of
# benchmarks/photos.py (wallpapers and scikit-image samples, downscaled to 512 on the long side;
# the held-out photos are never seen). The bundled file was written with --out runs/photo.aecm and
# copied; everything else in its recorded command is as below.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p runs
.venv/bin/python -m benchmarks.photos --export-train runs/photo-train
.venv/bin/aecodec train --kind conv --from-scratch --data runs/photo-train --name aecodec-photo \
    --steps 64000 --workdir runs/photo --out codec/pretrained/photo.aecm \
    2>&1 | tee runs/train-photo.log
