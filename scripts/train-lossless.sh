#!/usr/bin/env bash
# Add the lossless coders to the bundled models, as they were made (CPU, a few minutes in all; logs:
# codec/pretrained/*-lossless-train.log). Each starts from the bundled model as it was before (the
# commit before the lossless coders: git show 827c87b:codec/pretrained/fmnist.aecm) and keeps its levels:
# the new file lists the old one's fingerprint, so files made with it still decode.
#   fmnist: the Fashion-MNIST train split (every tenth image held out to measure);
#   photo: the photo model's training photos (benchmarks/photos.py; the held-out photos never seen);
#   deep: a model of the lossless coder alone for 16-bit images, on three of pydicom's CT/MR/NM
#         test images (benchmarks/lossless.py holds out the other three).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
mkdir -p runs
git show 827c87b:codec/pretrained/fmnist.aecm > runs/fmnist-lossy.aecm
git show 827c87b:codec/pretrained/photo.aecm > runs/photo-lossy.aecm
# --init from runs/: an output is never an input of its run (-f replaces the bundled file)
.venv/bin/aecodec train --kind lossless --init runs/fmnist-lossy.aecm \
    --out codec/pretrained/fmnist.aecm -f \
    2>&1 | tee codec/pretrained/fmnist-lossless-train.log
.venv/bin/python -m benchmarks.photos --export-train runs/photo-train
.venv/bin/aecodec train --kind lossless --init runs/photo-lossy.aecm --data runs/photo-train \
    --leaves 512 \
    --out codec/pretrained/photo.aecm -f 2>&1 | tee codec/pretrained/photo-lossless-train.log
.venv/bin/python -m benchmarks.lossless --export-deep-train runs/deep-train
.venv/bin/aecodec train --kind lossless --data runs/deep-train --leaves 128 --name aecodec-deep \
    --out codec/pretrained/deep.aecm -f 2>&1 | tee codec/pretrained/deep-lossless-train.log
