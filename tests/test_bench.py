"""The size-vs-quality report on a small slice of the test split (the full run is a benchmark)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks import report

EXPECTED = {
    "aecodec",
    "aecodec-single",
    "aecodec-lossless",
    "aecodec-near-lossless",
    "gzip-9",
    "bz2-9",
    "xz-9e",
    "zstd-19",
    "png",
    "jpegxl-lossless",
    "jpeg-ls",
    "jpeg",
    "webp",
    "pca-float32",
    "pca-ans",
}


@pytest.mark.slow  # training: over 5 s on 2 cores
def test_bench_report_has_every_codec_with_plausible_values(tmp_path):
    report.main(["--limit", "500", "--single-limit", "40", "--out", str(tmp_path), "-q"])
    for name in (
        "report.md",
        "results.json",
        "results.csv",
        "rd_curve.png",
        "reconstructions.png",
        "per_class.png",
    ):
        assert (tmp_path / name).stat().st_size > 0
    results = json.loads((tmp_path / "results.json").read_text())
    rows = results["rows"]
    assert {r["codec"] for r in rows} == EXPECTED
    for r in rows:
        if r["codec"] in (
            "gzip-9",
            "bz2-9",
            "xz-9e",
            "zstd-19",
            "png",
            "jpegxl-lossless",
            "jpeg-ls",
            "aecodec-lossless",
        ):
            # exact, and smaller than raw
            assert r["mean_psnr"] >= 99 and r["bytes_per_image"] < 784
    lossless = {
        r["codec"]: r["bytes_per_image"]
        for r in rows
        if r["setting"] in ("lossless", "whole dataset")
    }
    assert lossless["aecodec-lossless"] < min(
        v for k, v in lossless.items() if k != "aecodec-lossless"
    )
    near = sorted(
        (r for r in rows if r["codec"] == "aecodec-near-lossless"),
        key=lambda r: r["bytes_per_image"],
    )
    assert [r["setting"] for r in near] == ["max error 4", "max error 2", "max error 1"] and near[
        -1
    ]["psnr"] > 50
    for name in ("aecodec", "jpeg", "webp"):
        ordered = sorted(
            (r for r in rows if r["codec"] == name), key=lambda r: r["bytes_per_image"]
        )
        psnrs = [r["psnr"] for r in ordered]
        assert psnrs == sorted(psnrs) and 15 < psnrs[0] and psnrs[-1] < 60
    by_k = {}
    for r in rows:
        if r["codec"] == "pca-ans":
            by_k.setdefault(r["setting"].split()[0], []).append(r)
    for group in by_k.values():
        ordered = sorted(group, key=lambda r: r["bytes_per_image"])
        assert np.all(np.diff([r["psnr"] for r in ordered]) > -0.05)
    # aecodec is smaller than the fair PCA coder
    assert results["summary"]["bd_rate_percent"]["pca-ans"] < 0
    assert "## Conclusion" in (tmp_path / "report.md").read_text()


def test_the_report_takes_its_options_and_help():
    def report(*args):
        return subprocess.run(
            [sys.executable, "-m", "benchmarks.report", *args],
            cwd=Path(__file__).parents[1],
            capture_output=True,
            timeout=300,
        )

    for args in (["-h"], ["--help"]):
        r = report(*args)
        assert (
            r.returncode == 0
            and b"--limit" in r.stdout
            and b"--out" in r.stdout
            and b"--update-readme" in r.stdout
        )
    r = report("--limit", "x")
    assert r.returncode == 2 and b"invalid" in r.stderr
    r = report("--limit", "-9990")
    assert r.returncode == 2 and b"not a positive number" in r.stderr
