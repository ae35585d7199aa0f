"""The real console script, driven in subprocesses as a user would."""

import gzip
import json
import os
import pty
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import codec
from codec.commands import files as file_commands
from codec.io import idx

AECODEC = shutil.which("aecodec", path=str(Path(sys.executable).parent)) or shutil.which("aecodec")


# The Fashion-MNIST model, named where a test needs its levels (7 and 8: pixel levels with an error
# bound) for colour or other sizes, which would otherwise get the photo model.
FMNIST = str(Path(__file__).parents[1] / "codec" / "pretrained" / "fmnist.aecm")


def with_default_signal(signum, *command) -> list[str]:
    """``command`` started with ``signum`` at its default disposition, as without nohup or ``&`` (an
    ignored signal stays ignored across exec: the runner's would reach aecodec). A launcher, not
    preexec_fn: forking a process that holds JAX's threads can deadlock."""
    launcher = (
        "import os, signal, sys; signal.signal(int(sys.argv[1]), signal.SIG_DFL); "
        "os.execv(sys.argv[2], sys.argv[2:])"
    )
    return [sys.executable, "-c", launcher, str(int(signum)), *command]


def run(*args, cwd, stdin=None, env_home=None):
    env = dict(os.environ, XDG_CACHE_HOME=str(env_home)) if env_home else None
    return subprocess.run(
        [AECODEC, *map(str, args)], cwd=cwd, input=stdin, capture_output=True, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("cache")


@pytest.fixture
def files(tmp_path, test_images):
    grey, rgb = test_images[0], np.stack([test_images[1], test_images[2], test_images[3]], axis=-1)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(np.pad(test_images[4], ((0, 1), (0, 3)))).save(tmp_path / "odd.png")  # 29 x 31
    np.save(tmp_path / "arr.npy", test_images[:30])
    np.savez(tmp_path / "arr.npz", images=test_images[:7])
    (tmp_path / "set-idx3-ubyte.gz").write_bytes(gzip.compress(idx.idx_bytes(test_images[:40])))
    (tmp_path / "folder").mkdir()
    for i in range(6):
        Image.fromarray(test_images[10 + i]).save(tmp_path / "folder" / f"img{i}.png")
    return tmp_path


def psnr(a, b):
    return 10 * np.log10(255**2 / np.mean((a.astype(float) - b.astype(float)) ** 2))


def test_roundtrip_of_every_input_kind(files, cache):
    names = ["grey.png", "rgb.png", "odd.png", "arr.npy", "arr.npz", "set-idx3-ubyte.gz"]
    r = run(
        "compress", "-k", "--quality", "7", "--model", FMNIST, *names, cwd=files, env_home=cache
    )
    assert r.returncode == 0, r.stderr
    r = run("-r", "--quality", "7", "--model", FMNIST, "folder", cwd=files, env_home=cache)
    assert r.returncode == 0, r.stderr
    out = files / "out"
    out.mkdir()
    for name in [*names, "folder"]:
        shutil.copy(files / f"{name}.aec", out)
        assert (files / name).exists()  # inputs are kept by default
    r = run("-d", *[f"{n}.aec" for n in [*names, "folder"]], cwd=out, env_home=cache)
    assert r.returncode == 0, r.stderr
    grey = np.asarray(Image.open(out / "grey.png"))
    assert grey.shape == (28, 28) and psnr(grey, np.asarray(Image.open(files / "grey.png"))) > 30
    rgb = np.asarray(Image.open(out / "rgb.png"))
    assert rgb.shape == (28, 28, 3) and Image.open(out / "rgb.png").format == "PNG"
    assert np.asarray(Image.open(out / "odd.png")).shape == (29, 31)
    assert np.load(out / "arr.npy").shape == (30, 28, 28)
    with np.load(out / "arr.npz") as z:
        assert z.files == ["images"] and z["images"].shape == (7, 28, 28)
    restored = idx.read_idx(out / "set-idx3-ubyte.gz")
    assert (
        restored.shape == (40, 28, 28)
        and psnr(restored, idx.read_idx(files / "set-idx3-ubyte.gz")) > 30
    )
    assert sorted(p.name for p in (out / "folder").iterdir()) == [f"img{i}.png" for i in range(6)]
    assert not [p for p in out.rglob(".*")]  # no temporary files left


def test_stdin_to_stdout_pipeline(files, cache):
    packed = run(stdin=(files / "grey.png").read_bytes(), cwd=files, env_home=cache)
    assert packed.returncode == 0 and packed.stdout[:3] == b"AEC"
    restored = run("-d", stdin=packed.stdout, cwd=files, env_home=cache)
    assert restored.returncode == 0 and restored.stdout[:8] == b"\x89PNG\r\n\x1a\n"


def test_refuses_to_overwrite_without_force_and_keeps_or_removes_inputs(files, cache):
    assert run("grey.png", cwd=files, env_home=cache).returncode == 0
    before = (files / "grey.png.aec").read_bytes()
    r = run("--quality", "1", "grey.png", cwd=files, env_home=cache)
    assert r.returncode == 1
    assert (
        r.stderr.decode().strip()
        == "aecodec: error: grey.png: grey.png.aec already exists (use -f to overwrite)"
    )
    assert (files / "grey.png.aec").read_bytes() == before
    r = run("-f", "--rm", "--quality", "1", "grey.png", cwd=files, env_home=cache)
    assert (
        r.returncode == 0
        and (files / "grey.png.aec").read_bytes() != before
        and not (files / "grey.png").exists()
    )


def test_damaged_and_missing_inputs_fail_cleanly_and_the_rest_goes_on(files, cache):
    assert run("arr.npy", cwd=files, env_home=cache).returncode == 0
    good = (files / "arr.npy.aec").read_bytes()
    (files / "cut.npy.aec").write_bytes(good[: len(good) // 2])
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 4
    (files / "bad.npy.aec").write_bytes(bytes(flipped))
    (files / "arr.npy").unlink()
    r = run(
        "-d", "cut.npy.aec", "missing.aec", "bad.npy.aec", "arr.npy.aec", cwd=files, env_home=cache
    )
    lines = r.stderr.decode().strip().splitlines()
    assert r.returncode == 1
    assert lines[0].startswith("aecodec: error: cut.npy.aec: images from 0 on: file is truncated")
    assert lines[1] == "aecodec: error: missing.aec: No such file or directory"
    assert lines[2].startswith("aecodec: error: bad.npy.aec: ") and "damaged" in lines[2]
    assert not (files / "cut.npy").exists() and not (files / "bad.npy").exists()
    assert (files / "arr.npy").exists()  # the good file after the bad ones was still restored
    assert not [p for p in files.iterdir() if p.name.startswith(".")]
    assert (files / "cut.npy.aec").exists() and (
        files / "bad.npy.aec"
    ).exists()  # inputs never removed


def test_info_and_test_on_good_and_bad_files(files, cache):
    assert run("arr.npy", cwd=files, env_home=cache).returncode == 0
    info = run("info", "arr.npy.aec", cwd=files, env_home=cache)
    assert info.returncode == 0 and "30 of 28x28 uint8" in info.stdout.decode()
    bundled = codec.load_model()
    assert f"model        {bundled.name} ({bundled.fingerprint[:16]})" in info.stdout.decode()
    js = run("info", "--json", "arr.npy.aec", cwd=files, env_home=cache)
    assert b'"images": 30' in js.stdout
    fields = json.loads(js.stdout)
    assert fields["model"] == {"name": bundled.name, "fingerprint": bundled.fingerprint[:16]}
    assert (
        fields["coder"] == {"name": "constriction-ans", "version": "0.5"}
        and fields["meta"]["name"] == "arr.npy"
    )
    good = (files / "arr.npy.aec").read_bytes()
    (files / "bad.aec").write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    ok = run("test", "arr.npy.aec", cwd=files, env_home=cache)
    bad = run("test", "arr.npy.aec", "bad.aec", cwd=files, env_home=cache)
    assert ok.returncode == 0 and bad.returncode == 1
    assert (
        bad.stderr.decode().strip()
        == "aecodec: error: bad.aec: file checksum mismatch: the file is damaged"
    )


def test_a_model_file_given_as_a_compressed_file_is_named_for_what_it_is(files, cache):
    import shutil

    from codec.pretrained import DEFAULT_MODEL

    shutil.copy(DEFAULT_MODEL, files / "m.aecm")
    for command in (("info", "m.aecm"), ("-d", "-c", "m.aecm")):
        out = run(*command, cwd=files, env_home=cache)
        assert out.returncode == 1 and out.stderr.decode().strip() == (
            "aecodec: error: m.aecm: an aecodec model file, not a compressed file "
            "(give it with --model)"
        )


def test_usage_errors_exit_2(files, cache):
    assert run("--quality", "x", "grey.png", cwd=files, env_home=cache).returncode == 2
    r = run("-o", "x.aec", "grey.png", "rgb.png", cwd=files, env_home=cache)
    assert r.returncode == 2 and b"-o/--output takes a single input file" in r.stderr
    r = run("grey.png.aec", cwd=files, env_home=cache)
    assert r.returncode == 2 and b"already has .aec suffix" in r.stderr


def test_refuses_binary_output_to_a_terminal(files, cache):
    primary, replica = pty.openpty()
    try:
        r = subprocess.run(
            [AECODEC, "-c", "grey.png"],
            cwd=files,
            stdout=replica,
            stderr=subprocess.PIPE,
            timeout=300,
            env=dict(os.environ, XDG_CACHE_HOME=str(cache)),
        )
    finally:
        os.close(replica)
        os.close(primary)
    assert r.returncode == 1 and b"refusing to write binary data to a terminal" in r.stderr


def test_target_psnr_picks_a_quality_and_keeps_every_image_of_a_streamed_idx(files, cache):
    r = run("--target-psnr", "30", "-v", "set-idx3-ubyte.gz", cwd=files, env_home=cache)
    assert r.returncode == 0 and b"chose quality" in r.stderr
    r = run("-d", "-o", "back.idx.gz", "set-idx3-ubyte.gz.aec", cwd=files, env_home=cache)
    back, original = (
        idx.read_idx(files / "back.idx.gz"),
        idx.read_idx(files / "set-idx3-ubyte.gz"),
    )
    assert r.returncode == 0 and back.shape == original.shape and psnr(back, original) >= 29


def test_info_names_the_model_a_file_needs_when_it_can(files, cache):
    """The bundled model and --model's are named; any other by its fingerprint prefix."""
    import msgpack

    from bitstream import container
    from codec import api
    from codec.levels import modelfile

    body = msgpack.unpackb(api.DEFAULT_MODEL.read_bytes()[4:], raw=False)
    body.pop("fingerprint")
    body["name"] = "renamed"
    body["fingerprint"] = modelfile.fingerprint(body)
    (files / "renamed.aecm").write_bytes(modelfile.MAGIC + msgpack.packb(body, use_bin_type=True))
    prefix = body["fingerprint"][:16]
    header = api._header(codec.load_model(), 4, (28, 28), False, {"kind": "npy"})
    (files / "other.aec").write_bytes(
        container.pack({**header, "model": {"fingerprint": prefix}}, [(1, b"xxxx")])
    )
    r = run("info", "other.aec", cwd=files, env_home=cache)
    assert (
        r.returncode == 0 and f"model        {prefix} (not the bundled model" in r.stdout.decode()
    )
    r = run("info", "--model", "renamed.aecm", "other.aec", cwd=files, env_home=cache)
    assert r.returncode == 0 and f"model        renamed ({prefix})" in r.stdout.decode()
    r = run("-d", "-c", "other.aec", cwd=files, env_home=cache)
    assert r.returncode == 1 and f"the model whose fingerprint starts {prefix}" in r.stderr.decode()
    r = run("info", "--model", "missing.aecm", "other.aec", cwd=files, env_home=cache)
    assert r.returncode == 1 and r.stderr.decode().startswith("aecodec: error: missing.aecm: ")


def test_info_json_is_strict_json_whatever_the_meta_holds(files, cache):
    blob = codec.compress(
        np.zeros((28, 28), np.uint8), meta={"odd": [float("nan"), float("inf")], "raw": b"\x01\xff"}
    )
    (files / "odd.aec").write_bytes(blob)
    r = run("info", "--json", "odd.aec", cwd=files, env_home=cache)

    def refuse(name):
        raise AssertionError(f"not strict JSON: {name}")

    meta = json.loads(r.stdout, parse_constant=refuse)["meta"]
    assert r.returncode == 0 and meta == {"odd": ["nan", "inf"], "raw": "01ff"}


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--context-groups", "0", "context_groups 1-64"),
        # quality levels run low to high
        (
            "--lambdas",
            "2,1",
            "lambdas is out of range: increasing",
        ),
        ("--lambdas", "0,1", "lambdas is out of range: numbers from above 0"),
        ("--lambdas", "1,nan", "lambdas is out of range: numbers from above 0"),
        ("--lambdas", "1,x", "not a comma-separated list of numbers: '1,x'"),
        # high to low: quality rises
        (
            "--pixel-steps",
            "10,20",
            "pixel_steps is out of range: decreasing",
        ),
        ("--pixel-steps", "8,0", "pixel_steps is out of range: whole numbers from 1 to 255"),
        ("--pixel-steps", "256", "pixel_steps is out of range: whole numbers from 1 to 255"),
        ("--pixel-steps", "8.5", "not a comma-separated list of whole numbers: '8.5'"),
    ],
)
def test_train_refuses_an_out_of_range_architecture_before_training(
    tmp_path, capsys, option, value, message
):
    from codec import cli

    try:
        status = cli.main(
            [
                "train",
                option,
                value,
                "--out",
                str(tmp_path / "m.aecm"),
                "--workdir",
                str(tmp_path / "w"),
            ]
        )
    except SystemExit as e:  # argparse's own exit for what it cannot parse
        status = e.code
    assert status == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "w").exists() and not (tmp_path / "m.aecm").exists()


@pytest.mark.slow  # 4-7 s: the fast subset stays under 4 minutes
def test_targets_that_cannot_be_met_are_said(tmp_path, mosaic, tiny_model_path):
    grey, _ = mosaic
    Image.fromarray(grey).save(tmp_path / "g.png")
    r = run("--target-size", "10", "g.png", cwd=tmp_path)
    assert r.returncode == 0 and b"more than the 10 asked" in r.stderr
    # the scale ends in lossless: only a model without a lossless coder misses a PSNR
    model = ["--model", str(tiny_model_path)]
    r = run("-f", "--target-psnr", "60", *model, "g.png", cwd=tmp_path)
    assert r.returncode == 0 and b"no quality of the model meets 60.0 dB" in r.stderr
    r = run("-f", "--target-psnr", "60", "g.png", cwd=tmp_path)
    assert r.returncode == 0 and b"chose quality 15" in r.stderr


def test_errors_name_the_model_or_the_output_folder_they_are_about(tmp_path, test_images):
    np.save(tmp_path / "a.npy", test_images[:3])
    r = run("--model", "missing.aecm", "a.npy", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.decode().startswith("aecodec: error: missing.aecm: ")
    r = run("-o", "nowhere/a.aec", "a.npy", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.decode().startswith(
        "aecodec: error: nowhere: No such file or directory"
    )
    (tmp_path / "text.txt").write_text("hello")
    r = run("text.txt", cwd=tmp_path)
    assert (
        r.returncode == 1
        and b"not an image, an array or a dataset" in r.stderr
        and b"0x" not in r.stderr
    )


def test_info_reads_standard_input_and_version_is_there(tmp_path, test_images):
    blob = codec.compress(test_images[:3])
    r = run("info", "-", cwd=tmp_path, stdin=blob)
    assert (
        r.returncode == 0
        and b"3 of 28x28" in r.stdout
        and f"{len(blob)} bytes".encode() in r.stdout
    )
    r = run("--version", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith(b"aecodec ")


def test_no_progress_bar_for_a_single_image():
    class Args:
        quiet = False

    with file_commands.progress(Args(), 1, "x") as bar:
        assert bar.disable


def test_a_missing_input_and_doubled_names(tmp_path):
    r = run("nope.png", cwd=tmp_path)
    assert (
        r.returncode == 1
        and r.stderr.decode().strip() == "aecodec: error: nope.png: No such file or directory"
    )
    with pytest.raises(FileNotFoundError):
        codec.compress_file(tmp_path / "nope.png", tmp_path / "x.aec")


def test_info_lists_the_sizes_of_a_mixed_archive(tmp_path, mosaic):
    grey, rgb = mosaic
    (tmp_path / "m").mkdir()
    Image.fromarray(grey[:30, :40]).save(tmp_path / "m" / "a.png")
    Image.fromarray(rgb[:20, :10]).save(tmp_path / "m" / "b.png")
    assert run("-r", "-q", "m", cwd=tmp_path).returncode == 0
    r = run("info", "m.aec", cwd=tmp_path)
    assert b"2 of 30x40, 20x10x3 uint8" in r.stdout


def test_quality_options_exclude_each_other(tmp_path, test_images):
    np.save(tmp_path / "a.npy", test_images[:3])
    r = run("--quality", "2", "--target-psnr", "30", "a.npy", cwd=tmp_path)
    assert r.returncode == 2 and b"not allowed with argument" in r.stderr
