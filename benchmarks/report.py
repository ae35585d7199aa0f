"""Size-vs-quality report: aecodec against lossless compressors, PCA and classic image codecs.

    python -m benchmarks.report [--data PATH] [--out DIR] [--limit N]   (from the repository)

Every codec runs on the same test images in this process. Writes to ``--out``
(default ./aecodec-bench): report.md, results.json, results.csv, rd_curve.png,
reconstructions.png, per_class.png, all together and atomically by aecodec's output policy
(``codec/io/fileio.py``: files already there are refused before the run, unless -f); with
--update-readme it also refreshes the headline section of that README between its ``bench`` markers.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

import codec
from benchmarks import baselines
from codec import api
from codec.errors import AecodecError
from codec.io import data, fileio

README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"
MATCHED_PSNR = (25.0, 30.0, 35.0)
LOSSY = ("pca-ans", "pca-float32", "webp", "jpeg")
FILES = (
    "report.md",
    "results.json",
    "results.csv",
    "rd_curve.png",
    "reconstructions.png",
    "per_class.png",
)


def ssim(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-image SSIM (N,), 7x7 uniform window, K1=0.01, K2=0.03, sample covariance, valid region:
    scikit-image's ``structural_similarity`` defaults, vectorized over the whole batch."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    win, n = 7, 49

    def box(x):  # mean over every 7x7 window (valid), via 2-D cumulative sums
        c = np.pad(x, ((0, 0), (1, 0), (1, 0))).cumsum(1).cumsum(2)
        return (c[:, win:, win:] - c[:, :-win, win:] - c[:, win:, :-win] + c[:, :-win, :-win]) / n

    if a.shape[1] < win or a.shape[2] < win:
        return np.full(len(a), np.nan)
    ma, mb = box(a), box(b)
    cov = n / (n - 1)
    va, vb, vab = (
        cov * (box(a * a) - ma**2),
        cov * (box(b * b) - mb**2),
        cov * (box(a * b) - ma * mb),
    )
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * ma * mb + c1) * (2 * vab + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2))
    return s.reshape(len(a), -1).mean(1)


def _row(name, setting, total, images, restored, *, payload=None, enc=None, dec=None) -> dict:
    r = baselines.row(
        name, setting, total, len(images), images, restored, payload=payload, enc_s=enc, dec_s=dec
    )
    r["ssim"] = float(np.nanmean(ssim(images, restored)))
    return r


def aecodec_rows(model, images: np.ndarray, single_limit: int, samples: dict) -> list[dict]:
    rows = []
    for q in model.named_qualities(images.shape[1:], lossy=True):
        codec.decompress(codec.compress(images[:8], quality=q, model=model), model=model)  # warm-up
        blob, restored, enc, dec = _round_trip(images, model, quality=q)
        rows.append(
            _row(
                "aecodec", q, len(blob), images, restored, payload=_payload(blob), enc=enc, dec=dec
            )
        )
        samples[("aecodec", q)] = restored[:8]
        few = images[:single_limit]
        t0 = time.perf_counter()
        blobs = [codec.compress(x, quality=q, model=model) for x in few]
        enc = time.perf_counter() - t0
        t0 = time.perf_counter()
        singles = np.stack([codec.decompress(b, model=model) for b in blobs])
        dec = time.perf_counter() - t0
        rows.append(
            _row(
                "aecodec-single",
                q,
                sum(map(len, blobs)),
                few,
                singles,
                payload=sum(map(_payload, blobs)),
                enc=enc,
                dec=dec,
            )
        )
    if model.part("lossless") is not None:
        rows += exact_rows(model, images)
    return rows


def exact_rows(model, images: np.ndarray) -> list[dict]:
    """The lossless coder's rows: lossless, and near-lossless at K = 1, 2, 4 (every pixel within
    K)."""
    rows = []
    for k in (0, 1, 2, 4):
        blob, restored, enc, dec = _round_trip(images, model, max_error=k)
        worst = int(np.abs(restored.astype(np.int32) - images).max())
        if worst > k:
            raise AssertionError(f"max_error {k}: a pixel is {worst} off")
        name, setting = (
            ("aecodec-lossless", "lossless")
            if k == 0
            else ("aecodec-near-lossless", f"max error {k}")
        )
        rows.append(
            _row(
                name, setting, len(blob), images, restored, payload=_payload(blob), enc=enc, dec=dec
            )
        )
    return rows


def _round_trip(images: np.ndarray, model, **level) -> tuple[bytes, np.ndarray, float, float]:
    """(file, restored images, encode seconds, decode seconds) of one archive at ``level``
    (compress's keywords)."""
    t0 = time.perf_counter()
    blob = codec.compress(images, model=model, **level)
    enc = time.perf_counter() - t0
    t0 = time.perf_counter()
    restored = codec.decompress(blob, model=model)
    return blob, restored, enc, time.perf_counter() - t0


def _payload(blob: bytes) -> int:
    """The entropy-coded bytes of a file, without its container."""
    return sum(len(d) for _, d in api.container.unpack(blob).chunks)


def run_all(
    images: np.ndarray, train: np.ndarray, model, *, single_limit: int, log
) -> tuple[list[dict], dict]:
    samples: dict = {}

    def keep(row, restored):  # each lossy baseline's decoded images: SSIM, and a few for the figure
        restored = restored.reshape(images.shape)
        row["ssim"] = float(np.nanmean(ssim(images, restored)))
        samples[(row["codec"], row["setting"])] = restored[:8]

    rows: list[dict] = []
    log("aecodec (archive and single-image files)")
    rows += aecodec_rows(model, images, single_limit, samples)
    log("lossless: gzip, bz2, xz, zstd, PNG, JPEG XL, JPEG-LS")
    for r in [
        *baselines.lossless_points(images),
        baselines.png_point(images),
        *baselines.image_lossless_points(images),
    ]:
        r["ssim"] = 1.0
        rows.append(r)
    log("JPEG and WebP sweeps")
    rows += baselines.jpeg_points(images, on_restored=keep)
    rows += baselines.webp_points(images, on_restored=keep)
    log("PCA fitted on the train split: float32 coefficients, and quantized + ANS-coded")
    pca = baselines.PCACoder(train.reshape(len(train), -1))
    flat = images.reshape(len(images), -1)
    rows += [pca.naive_point(flat, k, on_restored=keep) for k in (8, 16, 32, 64, 128, 256)]
    rows += [
        pca.point(flat, k, float(step), on_restored=keep)
        for k in (64, 128, 256, 784)
        for step in np.geomspace(4.0, 160.0, 12)
    ]
    return rows, samples


def summarize(rows: list[dict]) -> dict:
    ours = [r for r in rows if r["codec"] == "aecodec"]
    by = {name: [r for r in rows if r["codec"] == name] for name in LOSSY}
    bd, overlap = {}, {}
    for name, rs in by.items():
        overlap[name] = baselines.psnr_overlap(rs, ours)
        try:
            bd[name] = baselines.bd_rate(rs, ours)
        except Exception:  # noqa: BLE001 - curves that do not overlap have no BD-rate
            bd[name] = None
    matched = {
        name: {str(p): baselines.bytes_at_psnr(rs, p) for p in MATCHED_PSNR}
        for name, rs in {"aecodec": ours, **by}.items()
    }
    lossless = min(
        (r for r in rows if r["psnr"] == np.inf or r["mean_psnr"] >= 99),
        key=lambda r: r["bytes_per_image"],
    )
    return {
        "bd_rate_percent": bd,
        "bd_overlap_db": overlap,
        "bytes_at_psnr": matched,
        "best_lossless": lossless,
    }


def conclusion(summary: dict) -> list[str]:
    """Plain-language findings, computed from the numbers."""
    lines = []
    at = summary["bytes_at_psnr"]
    for p in MATCHED_PSNR:
        options = {k: v[str(p)] for k, v in at.items() if v[str(p)] is not None}
        if not options:
            continue
        best = min(options, key=options.get)
        ours = options.get("aecodec")
        others = ", ".join(
            f"{k} {v:.0f}"
            for k, v in sorted(options.items(), key=lambda kv: kv[1])
            if k != "aecodec"
        )
        if ours is None:
            lines.append(
                f"At {p:.0f} dB aecodec has no point in range; smallest: {best} ({others})."
            )
        else:
            lines.append(
                f"At {p:.0f} dB, {best} is smallest: aecodec {ours:.0f} bytes/image against "
                f"{others}."
            )
    for name, v in summary["bd_rate_percent"].items():
        if v is not None:
            word = "fewer" if v < 0 else "more"
            low, high = summary["bd_overlap_db"][name]
            lines.append(
                f"Over {low:.1f}–{high:.1f} dB, the PSNR range both cover, aecodec needs "
                f"{abs(v):.0f}% {word} "
                f"bytes than {name} (BD-rate)."
            )
    ll = summary["best_lossless"]
    lines.append(
        f"The best lossless option here is {ll['codec']} ({ll['setting']}) at "
        f"{ll['bytes_per_image']:.0f} "
        "bytes/image: what exactness costs."
    )
    return lines


def plot_rd(rows: list[dict]) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=120)
    styles = {
        "aecodec": ("C3", "o-"),
        "aecodec-single": ("C3", "o:"),
        "pca-ans": ("C0", "s-"),
        "pca-float32": ("C0", "s:"),
        "webp": ("C2", "^-"),
        "jpeg": ("C1", "v-"),
    }
    for name, (color, style) in styles.items():
        pts = baselines.pareto([r for r in rows if r["codec"] == name])
        ax.plot(
            [r["bytes_per_image"] for r in pts],
            [r["psnr"] for r in pts],
            style,
            color=color,
            label=name,
            ms=4,
        )
    for r in rows:
        if r["mean_psnr"] >= 99 and r["setting"] in ("whole dataset", "optimize"):
            ax.axvline(r["bytes_per_image"], color="0.7", lw=0.8, ls="--")
            ax.text(
                r["bytes_per_image"],
                21,
                f" {r['codec']}",
                rotation=90,
                fontsize=7,
                color="0.4",
                va="bottom",
            )
    ax.set_xscale("log")
    ax.set_xlabel("bytes per image (whole file ÷ images; log scale)")
    ax.set_ylabel("PSNR over the dataset (dB)")
    ax.set_ylim(20, 45)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Fashion-MNIST test split: size vs quality (dashed: lossless, whole dataset)")
    fig.tight_layout()
    return _png(fig)


def plot_reconstructions(
    images: np.ndarray, rows: list[dict], samples: dict, target: float = 30.0
) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = []
    for name in ("aecodec", "pca-ans", "pca-float32", "webp", "jpeg"):
        rs = [r for r in rows if r["codec"] == name and (name, r["setting"]) in samples]
        if rs:
            r = min(rs, key=lambda r: abs(r["psnr"] - target))
            chosen.append(
                (
                    f"{name} {r['setting']}\n{r['psnr']:.1f} dB, {r['bytes_per_image']:.0f} B",
                    samples[(name, r["setting"])],
                )
            )
    grid = [("original", images[:8]), *chosen]
    fig, axes = plt.subplots(len(grid), 8, figsize=(8, 1.15 * len(grid)), dpi=110)
    for i, (label, imgs) in enumerate(grid):
        for j in range(8):
            axes[i, j].imshow(imgs[j], cmap="gray", vmin=0, vmax=255)
            axes[i, j].set_xticks([]), axes[i, j].set_yticks([])
        axes[i, 0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=7)
    fig.suptitle(f"Reconstructions nearest {target:.0f} dB", fontsize=9)
    fig.tight_layout()
    return _png(fig)


def _png(fig) -> bytes:
    """A figure's PNG bytes (written with the report's other files, all at once); closes it."""
    import matplotlib.pyplot as plt

    out = io.BytesIO()
    fig.savefig(out, format="png")
    plt.close(fig)
    return out.getvalue()


def per_class(model, images: np.ndarray, labels: np.ndarray, quality: int) -> list[dict]:
    out = []
    for c in range(10):
        sel = images[labels == c]
        if not len(sel):  # --limit N can leave a class out
            continue
        m = api.measure(model, sel, quality)
        out.append({"class": data.CLASS_NAMES[c], "images": len(sel), **m})
    return out


def plot_per_class(table: list[dict], quality: int) -> bytes:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5), dpi=110)
    names = [r["class"] for r in table]
    ax.bar(names, [r["bytes_per_image"] for r in table], color="C3")
    ax.set_ylabel("bytes per image", color="C3")
    ax2 = ax.twinx()
    ax2.plot(names, [r["psnr"] for r in table], "ko-")
    ax2.set_ylabel("PSNR (dB)")
    ax.set_title(f"aecodec quality {quality}, per Fashion-MNIST class (test split)")
    ax.tick_params(axis="x", rotation=30, labelsize=8)
    fig.tight_layout()
    return _png(fig)


def _fmt(v, spec=".1f"):
    return "–" if v is None or (isinstance(v, float) and not np.isfinite(v)) else format(v, spec)


def headline(rows: list[dict], summary: dict) -> str:
    at = summary["bytes_at_psnr"]
    lines = [
        "| bytes/image at | " + " | ".join(f"{p:.0f} dB" for p in MATCHED_PSNR) + " |",
        "|---|" + "---|" * len(MATCHED_PSNR),
    ]
    for name in ("aecodec", *LOSSY):
        lines.append(
            f"| {name} | " + " | ".join(_fmt(at[name][str(p)], ".0f") for p in MATCHED_PSNR) + " |"
        )
    ll = summary["best_lossless"]
    lines.append(
        f"| lossless ({ll['codec']}, {ll['setting']}) | {ll['bytes_per_image']:.0f} at ∞ dB | | |"
    )
    bd = ", ".join(f"{k} {_fmt(v, '+.1f')}%" for k, v in summary["bd_rate_percent"].items())
    return "\n".join(lines) + f"\n\nBD-rate of aecodec against: {bd} (negative: aecodec smaller).\n"


def report_files(rows, summary, classes, meta, quality_for_classes) -> dict[str, bytes]:
    """report.md, results.json and results.csv: name -> bytes."""
    cols = [
        "codec",
        "setting",
        "bytes_per_image",
        "payload_bytes_per_image",
        "bits_per_pixel",
        "psnr",
        "mean_psnr",
        "ssim",
        "encode_images_per_s",
        "decode_images_per_s",
    ]
    results = json.dumps(
        {"meta": meta, "summary": summary, "rows": rows, "per_class": classes},
        indent=1,
        default=lambda v: None if v is None else float(v),
    )
    table = io.StringIO(newline="")
    w = csv.DictWriter(table, fieldnames=cols, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    md = [
        "# aecodec size-vs-quality report\n",
        f"{meta['images']} Fashion-MNIST test images ({meta['data']}), {meta['date']}, on "
        f"{meta['machine']}; "
        f"model {meta['model']}; Python {meta['python']}, numpy {meta['numpy']}, Pillow "
        f"{meta['pillow']}, "
        f"JAX {meta['jax']}. Command: `{meta['command']}`. Took {meta['seconds']:.0f} s.\n",
        "## Headline\n",
        headline(rows, summary),
        "## Conclusion\n",
        *[f"- {line}" for line in conclusion(summary)],
        "",
        "![rate-distortion](rd_curve.png)\n",
        "![reconstructions](reconstructions.png)\n",
        "## Every codec and setting\n",
        "Sizes are whole files per image (containers and headers included; dataset codecs: one "
        "file for all images). "
        "PSNR is over the dataset (10·log10(255²/mean MSE)); mean PSNR averages per-image PSNR "
        "(capped at 100 dB). "
        f"aecodec-single codes each image as its own file (first {meta['single_limit']} images).\n",
        "| codec | setting | bytes/image | payload | bits/pixel | PSNR | mean PSNR | SSIM | encode "
        "img/s | decode img/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        md.append(
            f"| {r['codec']} | {r['setting']} | {r['bytes_per_image']:.1f} | "
            f"{r['payload_bytes_per_image']:.1f} | "
            f"{r['bits_per_pixel']:.3f} | {_fmt(r['psnr'], '.2f')} | {_fmt(r['mean_psnr'], '.2f')} "
            "| "
            f"{_fmt(r.get('ssim'), '.4f')} | {_fmt(r['encode_images_per_s'], '.0f')} | "
            f"{_fmt(r['decode_images_per_s'], '.0f')} |"
        )
    md += [
        "",
        f"## Per class (aecodec quality {quality_for_classes})\n",
        "![per class](per_class.png)\n",
        "| class | images | bytes/image | PSNR |",
        "|---|---|---|---|",
    ]
    md += [
        f"| {c['class']} | {c['images']} | {c['bytes_per_image']:.1f} | {c['psnr']:.2f} |"
        for c in classes
    ]
    md += [
        "",
        "aecodec-lossless restores every pixel (checked); aecodec-near-lossless keeps every pixel "
        "within the "
        "stated error (checked). The other lossless rows are the general-purpose compressors and "
        "image codecs.",
        "",
    ]
    return {
        "report.md": "\n".join(md).encode(),
        "results.json": results.encode(),
        "results.csv": table.getvalue().encode(),
    }


def update_readme(readme: Path, rows, summary, meta, *, images_dir: str) -> None:
    """Rewrite the block between the bench markers of ``readme`` (asked for with
    --update-readme)."""
    text = readme.read_text()
    if README_START not in text or README_END not in text:
        raise SystemExit(
            f"benchmarks.report: error: {readme} has no {README_START} ... {README_END} block"
        )
    block = (
        f"{README_START}\nFrom `{meta['command']}` ({meta['images']} test images, {meta['date']}, "
        f"{meta['machine']}; "
        f"the full report is [{images_dir}/report.md]({images_dir}/report.md)):\n\n"
        + headline(rows, summary)
        + "\n"
        + "\n".join(f"- {c}" for c in conclusion(summary))
        + f"\n\n![rate-distortion]({images_dir}/rd_curve.png)\n"
        + README_END
    )
    start, end = text.index(README_START), text.index(README_END) + len(README_END)
    text = text[:start] + block + text[end:]
    fileio.write_atomic(readme, text.encode(), force=True)  # editing it is the point


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"not a positive number: {text}")
    return value


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.report",
        description="Size-vs-quality report against other codecs.",
    )
    parser.add_argument(
        "--data",
        type=Path,
        help="folder with the Fashion-MNIST IDX files (default: the usual places)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("aecodec-bench"),
        help="output folder for the report, the tables and the plots (default ./aecodec-bench)",
    )
    parser.add_argument(
        "--update-readme",
        type=Path,
        metavar="README",
        help="also rewrite the block between the bench markers of this README (the project's own)",
    )
    parser.add_argument("--limit", type=_positive, help="use only the first N test images")
    parser.add_argument(
        "--single-limit", type=int, default=1000, help="images coded one file each (default 1000)"
    )
    parser.add_argument("--model", help="model file (default: the bundled one)")
    parser.add_argument(
        "-f", "--force", action="store_true", help="overwrite the report's files in --out"
    )
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)
    outputs = [args.out / name for name in FILES]
    if args.out.exists() or args.out.is_symlink():  # refused now, not after the run
        fileio.check_outputs(outputs, force=args.force, inputs=[args.model])
    log = (
        (lambda s: None)
        if args.quiet
        else (lambda s: print(f"bench: {s}", file=sys.stderr, flush=True))
    )
    t_start = time.time()
    images, labels = data.fashion_mnist("test", path=args.data, with_labels=True)
    images, labels = images[: args.limit], labels[: args.limit]
    train = data.fashion_mnist("train", path=args.data)
    model = api.load_model(args.model)
    rows, samples = run_all(
        images, train, model, single_limit=min(args.single_limit, len(images)), log=log
    )
    summary = summarize(rows)
    mid = model.default_quality
    log("per-class table")
    classes = per_class(model, images, labels, mid)
    import jax
    import PIL

    meta = {
        "images": len(images),
        "data": str(args.data or "Debian dataset-fashion-mnist"),
        "date": datetime.date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.system()}",
        "model": f"{model.name} ({model.fingerprint[:12]})",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "jax": jax.__version__,
        "command": "python -m benchmarks.report"
        + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:])),
        "single_limit": min(args.single_limit, len(images)),
    }
    log("plots")
    files = {
        "rd_curve.png": plot_rd(rows),
        "reconstructions.png": plot_reconstructions(images, rows, samples),
        "per_class.png": plot_per_class(classes, mid),
    }
    meta["seconds"] = time.time() - t_start
    files.update(report_files(rows, summary, classes, meta, mid))
    args.out.mkdir(parents=True, exist_ok=True)
    fileio.write_outputs(
        [(args.out / name, files[name]) for name in FILES], force=args.force, inputs=[args.model]
    )
    if args.update_readme is not None:
        update_readme(
            args.update_readme,
            rows,
            summary,
            meta,
            images_dir=os.path.relpath(args.out, args.update_readme.parent),
        )
    print(headline(rows, summary))
    for line in conclusion(summary):
        print(f"- {line}")
    log(f"done in {meta['seconds']:.0f} s; wrote {args.out}")
    return {"rows": rows, "summary": summary, "meta": meta}


if __name__ == "__main__":
    try:
        main()
    except (AecodecError, OSError) as e:  # a refused output, a missing dataset: one line, status 1
        sys.exit(f"python -m benchmarks.report: error: {e}")
