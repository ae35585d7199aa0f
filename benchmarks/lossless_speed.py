"""Whole-process timings of lossless coding for farm-bench (medians of paired runs):

    python -m benchmarks.lossless_speed prepare DIR      # the test split as .npy, its lossless archive, JPEG XL files
    farm-bench -n 5 --vs "python -m benchmarks.lossless_speed decode-jxl DIR" -- python -m benchmarks.lossless_speed decode DIR
    farm-bench -n 3 --vs "python -m benchmarks.lossless_speed encode-lossy DIR" -- python -m benchmarks.lossless_speed encode DIR

Each step but ``prepare`` codes the 10,000 Fashion-MNIST test images once, as ``benchmarks.lossless``
does in-process: ``decode`` our lossless archive, ``decode-jxl`` one JPEG XL file per image (effort 7),
``encode`` lossless, ``encode-lossy`` at the bundled model's highest quality.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np


def main(argv=None) -> None:
    step, folder = (argv or sys.argv[1:])[:2]
    folder = Path(folder)
    if step == "prepare":
        import imagecodecs as ic
        import msgpack

        import codec
        from codec import data

        folder.mkdir(parents=True, exist_ok=True)
        test = data.fashion_mnist("test")
        np.save(folder / "test.npy", test)
        (folder / "test.aec").write_bytes(codec.compress(test, lossless=True))
        blobs = [ic.jpegxl_encode(np.ascontiguousarray(a), lossless=True, effort=7) for a in test]
        (folder / "test.jxl.msgpack").write_bytes(msgpack.packb(blobs))
    elif step == "decode":
        import codec

        codec.decompress((folder / "test.aec").read_bytes())
    elif step == "decode-jxl":
        import imagecodecs as ic
        import msgpack

        for blob in msgpack.unpackb((folder / "test.jxl.msgpack").read_bytes()):
            ic.jpegxl_decode(blob)
    elif step == "encode":
        import codec

        codec.compress(np.load(folder / "test.npy"), lossless=True)
    elif step == "encode-lossy":
        import codec

        model = codec.load_model()
        codec.compress(np.load(folder / "test.npy"), quality=model.qualities[-1], model=model)
    else:
        raise SystemExit(f"unknown step {step!r}: prepare, decode, decode-jxl, encode, encode-lossy")


if __name__ == "__main__":
    main()
