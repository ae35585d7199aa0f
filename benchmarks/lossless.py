"""Lossless and near-lossless coding against the lossless codecs people use, in one run.

    python -m benchmarks.lossless                       # every part (about 17 minutes on 2 cores)
    python -m benchmarks.lossless --only fashion        # fashion, photos, deep, big

Parts, each printed as it is measured and written to benchmarks/results/lossless.txt (and .json):

- ``fashion``: the bundled Fashion-MNIST model's lossless coder on the test split (10,000 images,
  none trained on): the whole archive (every image checked bit for bit by hash), one file per image,
  near-lossless at K = 1, 2, 4 (every pixel checked within K); gzip -9, bz2 -9, xz -9e, zstd -19 on
  the raw split; the codecs of ``photos`` one file per image (JPEG XL efforts 7 and 9, WebP
  lossless, JPEG-LS, JPEG 2000, PNG, oxipng, xz and zstd); the time to encode and decode the split
  (medians of 3 in one process, after a warm-up) against JPEG XL's and the lossy mode's at its
  highest quality.
- ``photos``: the bundled photo model's lossless coder on the held-out photos of
  ``benchmarks/photos.py`` (scikit-image's astronaut, camera, coffee, moon, rocket, and every fifth
  wallpaper), grey and colour, one at a time, against JPEG XL (efforts 7 and 9), WebP lossless
  (method 6, quality 100: its highest effort), JPEG-LS, JPEG 2000, PNG (level 9, and optimised by
  oxipng -o 6), and xz -9e and zstd -19 on the raw array; the time each takes to encode and decode
  (aecodec's and JPEG XL effort 7's medians of 3), and the targets: fewer bytes than JPEG XL
  effort 7, each way within twice its time.
- ``deep``: 16-bit medical images, the CT and MR files inside the pydicom wheel: the bundled deep
  model, trained by ``aecodec train --kind lossless`` on some of them (a CT, an MR, a
  nuclear-medicine image: ``--export-deep-train DIR`` writes them), codes the others (a CT of 512 x
  512, CT_small, MR_small), against the same codecs (but WebP, which has no 16-bit form), and
  near-lossless at K = 1, 2, 4.
- ``big``: a held-out wallpaper at full size (Elarun, 2560 x 1600 colour) through ``aecodec
  --lossless`` and ``aecodec -d``, each in a fresh process with its peak memory, beside JPEG XL.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import json
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results"
TOP_LOSSY = 13  # the quality scale's highest lossy quality (codec.levels.scale)


def _timed(fn, *args, repeat: int = 1):
    """(result, median seconds of ``repeat`` runs)."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args)
        times.append(time.perf_counter() - t0)
    return out, float(np.median(times))


def image_codecs(dtype=np.uint8) -> dict:
    """name -> (encode(image) -> bytes, decode(bytes) -> image), the lossless codecs people use that
    take images of ``dtype`` (WebP has no 16-bit form), JPEG XL effort 7 first."""
    import lzma

    import imagecodecs as ic
    import oxipng
    import zstandard
    from PIL import Image

    def png(a):
        return ic.png_encode(np.ascontiguousarray(a), level=9)

    def raw(compress, decompress):  # the array's bytes alone: the shape and dtype are known
        return (
            lambda a: compress(np.ascontiguousarray(a).tobytes()),
            lambda b: np.frombuffer(decompress(b), dtype),
        )

    codecs = {
        "JPEG XL lossless (effort 7)": (
            lambda a: ic.jpegxl_encode(np.ascontiguousarray(a), lossless=True, effort=7),
            ic.jpegxl_decode,
        ),
        "JPEG XL lossless (effort 9)": (
            lambda a: ic.jpegxl_encode(np.ascontiguousarray(a), lossless=True, effort=9),
            ic.jpegxl_decode,
        ),
        "WebP lossless (method 6)": (
            _webp,
            lambda b: np.asarray(Image.open(io.BytesIO(b)).convert("RGB")),
        ),
        "JPEG-LS": (lambda a: ic.jpegls_encode(np.ascontiguousarray(a)), ic.jpegls_decode),
        "JPEG 2000 lossless": (
            lambda a: ic.jpeg2k_encode(np.ascontiguousarray(a), level=0, reversible=True),
            ic.jpeg2k_decode,
        ),
        "PNG (level 9)": (png, ic.png_decode),
        "PNG (oxipng -o 6)": (
            lambda a: oxipng.optimize_from_memory(png(a), level=6),
            ic.png_decode,
        ),
        "xz -9e (raw)": raw(
            lambda b: lzma.compress(b, preset=9 | lzma.PRESET_EXTREME), lzma.decompress
        ),
        "zstd -19 (raw)": raw(
            zstandard.ZstdCompressor(level=19).compress, zstandard.ZstdDecompressor().decompress
        ),
    }
    if dtype != np.uint8:
        del codecs["WebP lossless (method 6)"]
    return codecs


def _webp(a: np.ndarray) -> bytes:
    """WebP lossless at its highest effort (quality 100, method 6); grey goes as RGB (WebP has no
    grey), which ``per_image_sizes`` reads back as grey."""
    from PIL import Image

    b = io.BytesIO()
    Image.fromarray(a).save(b, format="WEBP", lossless=True, quality=100, method=6)
    return b.getvalue()


def per_image_sizes(images, encode, decode, repeat: int = 1) -> tuple[int, float, float]:
    """(total bytes of one file per image, encode seconds, decode seconds: medians of ``repeat``
    runs); every image checked exact."""
    blobs, enc = _timed(lambda: [encode(a) for a in images], repeat=repeat)
    restored, dec = _timed(lambda: [decode(b) for b in blobs], repeat=repeat)
    for a, r in zip(images, restored, strict=True):
        r = np.asarray(r)  # grey written as RGB (WebP), RGB of equal planes as grey (oxipng)
        r = r[..., 0] if a.ndim == 2 and r.ndim == 3 and r.size == 3 * a.size else r
        r = np.repeat(r[..., None], 3, -1) if a.ndim == 3 and r.ndim == 2 else r
        if not np.array_equal(r.reshape(a.shape), a):
            raise AssertionError("a baseline did not restore an image exactly")
    return sum(map(len, blobs)), enc, dec


def _digest(images) -> str:
    h = hashlib.sha256()
    for a in images:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def fashion(out: list) -> None:
    import codec
    from benchmarks.baselines import lossless_points
    from codec.io import data

    test = data.fashion_mnist("test")
    model = codec.load_model()
    pixels = test.size
    _warm_up(model, test[:8])
    blob, enc = _timed(
        lambda: codec.compress(test, lossless=True, model=model), repeat=SPEED_REPEAT
    )
    restored, dec = _timed(lambda: codec.decompress(blob, model=model), repeat=SPEED_REPEAT)
    exact = _digest(restored) == _digest(test) and restored.dtype == np.uint8
    _say(
        out,
        f"Fashion-MNIST test split, {len(test):,} images, lossless archive: "
        f"{8 * len(blob) / pixels:.3f} bits/pixel "
        f"({len(blob) / len(test):.1f} bytes/image), every image bit for bit: {exact} (SHA-256 of "
        "all pixels); "
        f"encode {enc:.2f} s, decode {dec:.2f} s",
    )
    out.append(
        {
            "part": "fashion",
            "codec": "aecodec lossless",
            "bits_per_pixel": 8 * len(blob) / pixels,
            "exact": exact,
            "encode_s": enc,
            "decode_s": dec,
        }
    )
    for k in (1, 2, 4):
        near = codec.compress(test, max_error=k, model=model)
        back = codec.decompress(near, model=model)
        worst = int(np.abs(back.astype(np.int32) - test).max())
        mse = float(np.mean((back.astype(np.float64) - test) ** 2))
        _say(
            out,
            f"  near-lossless K = {k}: {8 * len(near) / pixels:.3f} bits/pixel, largest error "
            f"{worst} "
            f"(bound {k}: {worst <= k}), PSNR {10 * np.log10(255**2 / mse):.2f} dB",
        )
        out.append(
            {
                "part": "fashion",
                "codec": f"aecodec near-lossless K={k}",
                "bits_per_pixel": 8 * len(near) / pixels,
                "max_error": worst,
                "within_bound": worst <= k,
            }
        )
    top = TOP_LOSSY
    lossy, lossy_enc = _timed(
        lambda: codec.compress(test, quality=top, model=model), repeat=SPEED_REPEAT
    )
    _, lossy_dec = _timed(lambda: codec.decompress(lossy, model=model), repeat=SPEED_REPEAT)
    _say(
        out,
        f"  lossy quality {top} (the highest) for comparison: encode {lossy_enc:.2f} s, decode "
        f"{lossy_dec:.2f} s; "
        f"lossless takes {enc / lossy_enc:.2f}x and {dec / lossy_dec:.2f}x that (target: within "
        "3x)",
    )
    for r in lossless_points(test):
        if r["setting"] == "whole dataset":
            _say(out, f"  {r['codec']} on the raw split: {r['bits_per_pixel']:.3f} bits/pixel")
            out.append(
                {"part": "fashion", "codec": r["codec"], "bits_per_pixel": r["bits_per_pixel"]}
            )
    ours_files = _one_file_each(test[:2000], model)
    _say(
        out,
        f"  one file per image (first 2,000): aecodec {8 * ours_files / (2000 * 784):.3f} "
        "bits/pixel "
        f"({ours_files / 2000:.1f} bytes/image)",
    )
    out.append(
        {
            "part": "fashion",
            "codec": "aecodec lossless, one file per image (2,000)",
            "bits_per_pixel": 8 * ours_files / (2000 * 784),
        }
    )
    codecs = image_codecs()
    for name, (encode, decode) in codecs.items():
        jxl = name == JXL7
        size, e, d = per_image_sizes(test, encode, decode, repeat=SPEED_REPEAT if jxl else 1)
        _say(
            out,
            f"  {name}, one file per image: {8 * size / pixels:.3f} bits/pixel "
            f"({size / len(test):.1f} bytes/image); "
            f"encode {e:.2f} s, decode {d:.2f} s"
            + (f" (medians of {SPEED_REPEAT})" if jxl else ""),
        )
        out.append(
            {
                "part": "fashion",
                "codec": name,
                "bits_per_pixel": 8 * size / pixels,
                "encode_s": e,
                "decode_s": d,
            }
        )
        if jxl:
            jxl_enc, jxl_dec = e, d
    met = enc <= jxl_enc and dec <= jxl_dec and enc <= 3 * lossy_enc and dec <= 3 * lossy_dec
    _say(
        out,
        f"speed, the 10,000 test images in one process (medians of {SPEED_REPEAT}): lossless "
        f"encode {enc:.2f} s, "
        f"decode {dec:.2f} s; JPEG XL lossless (effort 7) {jxl_enc:.2f} s and {jxl_dec:.2f} s "
        f"({enc / jxl_enc:.2f}x and {dec / jxl_dec:.2f}x its time); lossy quality {top} "
        f"{lossy_enc:.2f} s and "
        f"{lossy_dec:.2f} s ({enc / lossy_enc:.2f}x and {dec / lossy_dec:.2f}x); targets (<= 1x "
        "JPEG XL, "
        f"<= 3x lossy, each way): {met}",
    )
    out.append(
        {
            "part": "fashion",
            "speed": {
                "encode_s": enc,
                "decode_s": dec,
                "jxl_encode_s": jxl_enc,
                "jxl_decode_s": jxl_dec,
                "lossy_encode_s": lossy_enc,
                "lossy_decode_s": lossy_dec,
                "met": met,
            },
        }
    )


SPEED_REPEAT = 3  # timed runs of each coder on the test split (medians)


def _warm_up(model, images) -> None:
    """Code a few images each way first, so that no timing includes loading what the first call
    loads."""
    import codec

    codec.decompress(codec.compress(images, lossless=True, model=model), model=model)
    if model.levels:  # the deep model has only its lossless coder
        codec.decompress(codec.compress(images, quality=TOP_LOSSY, model=model), model=model)


def _one_file_each(images, model) -> int:
    import codec

    total = 0
    for a in images:
        blob = codec.compress(a, lossless=True, model=model)
        if not np.array_equal(codec.decompress(blob, model=model), a):
            raise AssertionError("a one-image file did not restore exactly")
        total += len(blob)
    return total


JXL7, JXL9 = "JPEG XL lossless (effort 7)", "JPEG XL lossless (effort 9)"
SPEED_FACTOR = 2  # the target: each way within twice JPEG XL effort 7's time


def photos(out: list) -> None:
    import codec
    from benchmarks.photos import skimage_photos, wallpapers
    from codec import api

    model = codec.load_model(api.PHOTO_MODEL)
    held = {
        **{f"skimage-{k}": v for k, v in skimage_photos()[1].items()},
        **{f"wallpaper-{k}": v for k, v in wallpapers()[1].items()},
    }
    _warm_up(model, next(iter(held.values()))[:64, :64])
    cases = [(name, a, model, None) for name, a in held.items()]
    held_out(out, "photos", "held-out photos", cases, "bits/sample")


def held_out(out: list, part: str, title: str, cases: list, unit: str) -> None:
    """Each image (name, array, model, depth) coded alone by aecodec and by every codec of
    ``image_codecs``, sizes and times (aecodec's and JPEG XL's medians of SPEED_REPEAT runs); then
    the totals and the speed targets."""
    import codec

    totals, samples, times = {}, 0, {}
    for name, a, model, depth in cases:
        encode = functools.partial(codec.compress, a, lossless=True, model=model, depth=depth)
        blob, e = _timed(encode, repeat=SPEED_REPEAT)
        back, d = _timed(
            functools.partial(codec.decompress, blob, model=model), repeat=SPEED_REPEAT
        )
        if not (np.array_equal(back, a) and back.dtype == a.dtype):
            raise AssertionError(f"{name} did not restore exactly")
        measured = {"aecodec lossless": (len(blob), e, d)}
        for cname, (encode, decode) in image_codecs(a.dtype).items():
            repeat = SPEED_REPEAT if cname == JXL7 else 1
            measured[cname] = per_image_sizes([a], encode, decode, repeat=repeat)
        for k, (size, ce, cd) in measured.items():
            totals[k] = totals.get(k, 0) + size
            times[k] = times.get(k, np.zeros(2)) + [ce, cd]
        samples += a.size
        kind = f"{depth}-bit" if depth else "grey" if a.ndim == 2 else "colour"
        _say(
            out,
            f"  {name} ({kind}, {a.shape[1]}x{a.shape[0]}): "
            + ", ".join(f"{k} {8 * v[0] / a.size:.3f}" for k, v in measured.items())
            + f" {unit}; encode / decode: aecodec {e:.3f} s / {d:.3f} s, "
            f"JPEG XL e7 {measured[JXL7][1]:.3f} s / {measured[JXL7][2]:.3f} s, "
            f"e9 {measured[JXL9][1]:.2f} s / {measured[JXL9][2]:.3f} s",
        )
        out.append(
            {"part": part, "image": name, **{k: 8 * v[0] / a.size for k, v in measured.items()}}
            | {"times_s": {k: list(v[1:]) for k, v in measured.items()}}
        )
    ours, jxl = times["aecodec lossless"], times[JXL7]
    met = bool((ours <= SPEED_FACTOR * jxl).all())
    smaller = totals["aecodec lossless"] < totals[JXL7]
    _say(
        out,
        f"{title}, all together: "
        + ", ".join(f"{k} {8 * v / samples:.3f}" for k, v in totals.items())
        + f" {unit}; time (encode / decode, medians of {SPEED_REPEAT} for aecodec and JPEG XL e7): "
        f"aecodec {ours[0]:.2f} s / {ours[1]:.2f} s, JPEG XL e7 {jxl[0]:.2f} s / {jxl[1]:.2f} s "
        f"({ours[0] / jxl[0]:.2f}x and {ours[1] / jxl[1]:.2f}x its time), JPEG XL e9 "
        f"{times[JXL9][0]:.1f} s / {times[JXL9][1]:.2f} s; targets (smaller than JPEG XL e7: "
        f"{smaller}; each way within {SPEED_FACTOR}x its time: {met}); against e9: "
        f"{100 * (totals['aecodec lossless'] / totals[JXL9] - 1):+.1f}% bytes",
    )
    out.append(
        {"part": part, "totals_bytes": totals, "samples": samples, "smaller": smaller, "met": met}
        | {"times_s": {k: list(v) for k, v in times.items()}}
    )


def dicom_images() -> dict:
    """{file name: uint16 image, depth} of the 16-bit CT, MR and NM images in pydicom's wheel: the
    stored values (signed ones shifted up by 2^(bits - 1), as a lossless coder keeps them)."""
    import warnings

    import pydicom
    import pydicom.data

    folder = Path(pydicom.data.__file__).parent / "test_files"
    out = {}
    for name in (*DEEP_TRAIN, *DEEP_TEST):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(folder / name)
            a = ds.pixel_array.astype(np.int64)
        bits = int(ds.BitsStored)
        if int(ds.PixelRepresentation) == 1:
            a = a + (1 << (bits - 1))
        out[name] = (a.astype(np.uint16), bits)
    return out


# a CT, an MR, a nuclear-medicine image
DEEP_TRAIN = (
    "693_J2KI.dcm",
    "examples_overlay.dcm",
    "JPEG2000.dcm",
)
DEEP_TEST = ("J2K_pixelrep_mismatch.dcm", "CT_small.dcm", "MR_small.dcm")


def export_deep_train(folder: Path) -> None:
    """Write the 16-bit training images of the bundled deep model as PNG files (their depth in
    sBIT)."""
    from codec.io import deep as deep_files

    folder.mkdir(parents=True, exist_ok=True)
    images = dicom_images()
    for name in DEEP_TRAIN:
        (folder / f"{name}.png").write_bytes(
            deep_files.write(images[name][0], "PNG", images[name][1])
        )
    print(f"{len(DEEP_TRAIN)} 16-bit images written to {folder}: {', '.join(DEEP_TRAIN)}")


def deep(out: list) -> None:
    import codec
    from codec import api

    # trained on DEEP_TRAIN only (scripts/train-lossless.sh)
    model = codec.load_model(api.DEEP_MODEL)
    images = dicom_images()
    _warm_up(model, images[DEEP_TEST[1]][0][:32, :32])
    cases = [(name, images[name][0], model, images[name][1]) for name in DEEP_TEST]
    held_out(out, "deep", "16-bit medical images", cases, "bits/pixel")
    for name, a, model, bits in cases:
        near = {k: codec.compress(a, max_error=k, model=model, depth=bits) for k in (1, 2, 4)}
        bound = all(
            int(np.abs(codec.decompress(b, model=model).astype(np.int64) - a).max()) <= k
            for k, b in near.items()
        )
        _say(
            out,
            f"  {name} near-lossless: "
            + ", ".join(f"K={k} {8 * len(b) / a.size:.3f}" for k, b in near.items())
            + f" bits/pixel (every pixel within K: {bound})",
        )
        out.append({"part": "deep", "image": name, "within_bound": bound})


# a held-out wallpaper at full size
BIG = Path("/usr/share/wallpapers/Elarun/contents/images/2560x1600.png")


def big(out: list) -> None:
    """One large colour photo through the command line, each way in a fresh process with its peak
    memory."""
    import shutil
    import tempfile

    import imagecodecs as ic

    from benchmarks.large_image import run

    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "big.png"
        shutil.copy(BIG, src)
        a = np.asarray(_rgb(src))
        enc, enc_mb = run(["--lossless", "-k", str(src)])
        src.rename(Path(tmp) / "original.png")
        dec, dec_mb = run(["-d", "-k", str(src) + ".aec"])
        exact = np.array_equal(np.asarray(_rgb(src)), a)
        size = (Path(tmp) / "big.png.aec").stat().st_size
    jxl, je = _timed(lambda: ic.jpegxl_encode(a, lossless=True, effort=7))
    _, jd = _timed(lambda: ic.jpegxl_decode(jxl))
    _say(
        out,
        f"{BIG.parts[-4]} {a.shape[1]}x{a.shape[0]} colour, aecodec --lossless in fresh processes: "
        f"{8 * size / a.size:.3f} bits/sample, exact {exact}; encode {enc:.1f} s (peak "
        f"{enc_mb:.0f} MB), decode "
        f"{dec:.1f} s (peak {dec_mb:.0f} MB); JPEG XL lossless (effort 7) "
        f"{8 * len(jxl) / a.size:.3f} bits/sample, "
        f"{je:.1f} s / {jd:.2f} s in-process",
    )
    out.append(
        {
            "part": "big",
            "image": BIG.parts[-4],
            "bits_per_sample": 8 * size / a.size,
            "exact": exact,
            "encode_s": enc,
            "encode_peak_mb": enc_mb,
            "decode_s": dec,
            "decode_peak_mb": dec_mb,
            "jxl_bits_per_sample": 8 * len(jxl) / a.size,
            "jxl_encode_s": je,
            "jxl_decode_s": jd,
        }
    )


def _rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


def _say(out: list, line: str) -> None:
    print(line, flush=True)
    out.append({"line": line})


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="fashion,photos,deep,big", help="comma-separated parts")
    parser.add_argument(
        "--export-deep-train",
        type=Path,
        metavar="DIR",
        help="only write the bundled deep model's 16-bit training images (PNG) to DIR",
    )
    parser.add_argument("--results", type=Path, default=RESULTS / "lossless.txt")
    args = parser.parse_args(argv)
    if args.export_deep_train:
        export_deep_train(args.export_deep_train)
        return
    out: list = []
    parts = args.only.split(",")
    if "fashion" in parts:
        fashion(out)
    if "photos" in parts:
        photos(out)
    if "deep" in parts:
        deep(out)
    if "big" in parts:
        big(out)
    if args.results:
        args.results.parent.mkdir(parents=True, exist_ok=True)
        args.results.write_text("\n".join(r["line"] for r in out if "line" in r) + "\n")
        args.results.with_suffix(".json").write_text(
            json.dumps([r for r in out if "line" not in r], indent=1, default=float)
        )


if __name__ == "__main__":
    main()
