"""Never lose a file, never run unbounded: one test per finding of the adversarial review.

Each of these failed on the code before the fix (the review's numbers are in the names)."""

import gzip
import hashlib
import io
import os
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import msgpack
import numpy as np
import pytest
from PIL import Image

import codec
from bitstream import container
from codec import api, signals
from codec.io import data, fileio
from codec.levels import modelfile

from .test_cli import AECODEC, FMNIST, run, with_default_signal
from .test_fuzz import join, split

HERE = Path(__file__).parent


@pytest.fixture
def images(test_images):
    return test_images[:6]


def tree(folder: Path) -> dict:
    """Every file under ``folder`` (hidden ones too) -> its bytes' digest."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def folder_archive(tmp_path, images) -> Path:
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, im in enumerate(images[:3]):
        Image.fromarray(im).save(photos / f"img{i}.png")
    assert run("-r", "-q", "photos", cwd=tmp_path).returncode == 0
    return tmp_path / "photos.aec"


# 1. Folder archives: nothing but the archived names is ever written, nothing ever deleted.


def test_decompressing_a_folder_archive_with_force_keeps_every_unarchived_file(tmp_path, images):
    archive = folder_archive(tmp_path, images)
    (tmp_path / "photos" / "thesis.tex").write_text("years of work")
    (tmp_path / "photos" / "sub").mkdir()
    (tmp_path / "photos" / "sub" / "notes.txt").write_text("more")
    r = run("-d", "-f", "-q", archive.name, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    files = tree(tmp_path / "photos")
    assert set(files) == {"img0.png", "img1.png", "img2.png", "thesis.tex", "sub/notes.txt"}
    assert (tmp_path / "photos" / "thesis.tex").read_text() == "years of work"


def test_decompressing_into_an_unrelated_folder_with_force_only_adds_the_archived_names(
    tmp_path, images
):
    archive = folder_archive(tmp_path, images)
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("keep me")
    assert run("-d", "-f", "-q", "-o", "home", archive.name, cwd=tmp_path).returncode == 0
    assert set(tree(home)) == {"thesis.tex", "img0.png", "img1.png", "img2.png"}


def test_without_force_an_existing_name_is_refused_and_nothing_is_written(tmp_path, images):
    archive = folder_archive(tmp_path, images)
    out = tmp_path / "out"
    out.mkdir()
    (out / "img1.png").write_bytes(b"mine")
    r = run("-d", "-q", "-o", "out", archive.name, cwd=tmp_path)
    assert r.returncode == 1 and b"img1.png already exists (use -f to overwrite)" in r.stderr
    assert tree(out) == {
        "img1.png": hashlib.sha256(b"mine").hexdigest()
    }  # no staging folder left either


@pytest.mark.parametrize("target", [".", "..", "/"])
def test_restoring_into_dot_dotdot_or_root_is_refused(tmp_path, images, target):
    archive = folder_archive(tmp_path, images)
    (tmp_path / "photos").rename(tmp_path / "kept")
    before = tree(tmp_path)
    r = run("-d", "-f", "-q", "-o", target, archive.name, cwd=tmp_path)
    assert r.returncode == 2 and b"refusing to restore" in r.stderr
    assert tree(tmp_path) == before


def test_restoring_into_a_folder_that_holds_the_archive_is_refused(tmp_path, images):
    archive = folder_archive(tmp_path, images)
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    archive.rename(nested / "photos.aec")
    r = run("-d", "-f", "-q", "-o", "a", "a/b/photos.aec", cwd=tmp_path)
    assert r.returncode == 2 and b"it holds the archive" in r.stderr
    assert (nested / "photos.aec").exists()


def test_an_archive_named_dotdot_aec_does_not_map_to_a_dot_folder(tmp_path, images):
    archive = folder_archive(tmp_path, images)
    archive.rename(tmp_path / "..aec")
    before = tree(tmp_path)
    r = run("-d", "-f", "-q", "..aec", cwd=tmp_path)
    assert r.returncode == 2 and tree(tmp_path) == before


@pytest.mark.parametrize(
    "name", ["../evil.png", "/etc/evil.png", "a/../../evil.png", "", "a\x1b[2J.png"]
)
def test_a_folder_archive_naming_a_file_outside_its_folder_is_refused(tmp_path, images, name):
    header, chunks = split(codec.compress(images[:2], quality=4))
    header[4] = {"kind": "folder", "name": "x", "count": 2, "files": ["ok.png", name]}
    (tmp_path / "x.aec").write_bytes(join(header, chunks))
    r = run("-d", "-q", "x.aec", cwd=tmp_path)
    assert r.returncode == 1 and b"header meta files" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.aec"]


# 2. Output = input.


@pytest.mark.parametrize("decompressing", [False, True])
def test_output_equal_to_the_input_is_refused_even_with_force_and_rm(
    tmp_path, images, decompressing
):
    np.save(tmp_path / "a.npy", images)
    name = "a.npy"
    if decompressing:
        assert run("-q", "a.npy", cwd=tmp_path).returncode == 0
        name = "a.npy.aec"
    before = (tmp_path / name).read_bytes()
    args = ["-d"] if decompressing else []
    r = run(*args, "-f", "--rm", "-o", name, name, cwd=tmp_path)
    assert r.returncode == 2 and b"is the input" in r.stderr
    assert (tmp_path / name).read_bytes() == before


# 3. -r --rm removes exactly what went into the archive, after it is complete.


def test_recursive_rm_removes_only_the_archived_images(tmp_path, images):
    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    for i in range(3):
        Image.fromarray(images[i]).save(photos / f"img{i}.png")
    (photos / "readme.txt").write_text("not an image")
    (photos / "sub" / "deep.png").write_bytes((photos / "img0.png").read_bytes())
    r = run("-r", "--rm", "-o", "photos/photos.aec", "photos", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert b"skipped 1 file(s) that are not images: readme.txt" in r.stderr
    assert (
        set(tree(photos)) == {"readme.txt", "photos.aec"} and (photos / "sub").is_dir()
    )  # folders stay, as with gzip
    assert codec.decompress((photos / "photos.aec").read_bytes()).shape == (4, 28, 28)


# 4. Whatever compresses decompresses through the same interface, in every mode Pillow reads.


@pytest.mark.parametrize(
    "mode", ["1", "L", "LA", "P", "RGB", "RGBA"]
)  # Pillow writes no PA file to read
def test_every_8_bit_mode_round_trips_through_the_command_line(tmp_path, test_images, mode):
    grey = test_images[7]
    rgba = np.stack(
        [grey, test_images[8], test_images[9], np.full_like(grey, 255)], -1
    )  # opaque alpha
    source = {
        "1": Image.fromarray(grey),
        "L": Image.fromarray(grey),
        "P": Image.fromarray(rgba[..., :3]),
    }
    im = source.get(mode, Image.fromarray(rgba, "RGBA")).convert(mode)
    im.save(tmp_path / "in.png")
    original = np.asarray(
        Image.open(tmp_path / "in.png").convert({"1": "L", "P": "RGB"}.get(mode, mode))
    )
    assert run("-q", "--quality", "8", "--model", FMNIST, "in.png", cwd=tmp_path).returncode == 0
    (tmp_path / "in.png").rename(tmp_path / "kept.png")
    r = run("-d", "-q", "in.png.aec", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    restored = Image.open(tmp_path / "in.png")
    assert restored.mode == {"1": "L", "P": "RGB"}.get(
        mode, mode
    )  # palette and 1-bit: the values they show
    restored = np.asarray(restored)
    assert restored.shape == original.shape
    assert np.abs(restored.astype(int) - original).max() <= 7  # quality 8: half its step of 14
    if mode in ("LA", "RGBA"):
        assert (restored[..., -1] == 255).all()  # an opaque alpha channel comes back exactly


@pytest.mark.parametrize("mode", ["LA", "RGBA", "P"])
def test_a_transparent_image_is_refused_not_coded_lossily(tmp_path, test_images, mode):
    rgba = np.stack(
        [test_images[7], test_images[8], test_images[9], np.where(test_images[7] > 20, 255, 0)], -1
    )
    im = Image.fromarray(rgba.astype(np.uint8), "RGBA")
    if mode == "P":  # a palette with a transparent entry
        im = Image.fromarray(test_images[7]).convert("P")
        im.info["transparency"] = 0
    (im.convert(mode) if mode != "P" else im).save(
        tmp_path / "in.png", **({"transparency": 0} if mode == "P" else {})
    )
    r = run("--rm", "in.png", cwd=tmp_path)
    assert r.returncode == 1 and b"transparent alpha channel" in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_a_16_bit_image_asked_for_lossily_is_refused_and_kept(tmp_path):
    Image.fromarray(np.arange(28 * 28, dtype=np.uint16).reshape(28, 28) * 50).save(
        tmp_path / "deep.png"
    )
    r = run("--rm", "--quality", "3", "deep.png", cwd=tmp_path)
    assert (
        r.returncode == 1
        and b"deep.png: " in r.stderr
        and b"losslessly or near-losslessly only" in r.stderr
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep.png"]


def test_a_16_bit_image_is_coded_losslessly_before_rm_removes_it(tmp_path):
    image = np.arange(28 * 28, dtype=np.uint16).reshape(28, 28) * 50
    Image.fromarray(image).save(tmp_path / "deep.png")
    assert run("--rm", "deep.png", cwd=tmp_path).returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep.png.aec"]
    assert run("-d", "deep.png.aec", cwd=tmp_path).returncode == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "deep.png")), image)


# 5. Two writers of one name: exactly one wins, the other is told.


def test_two_writers_finishing_together_never_both_succeed(tmp_path):
    for trial in range(40):
        path = tmp_path / f"out{trial}"
        barrier, outcomes = threading.Barrier(2), []

        def write(payload, barrier=barrier, outcomes=outcomes, path=path):
            try:
                with fileio.atomic_output(path) as f:
                    f.write(payload)
                    barrier.wait()  # both complete, then both try to take the name
                outcomes.append(payload)
            except FileExistsError:
                outcomes.append("refused")

        threads = [threading.Thread(target=write, args=(bytes([k]) * 10,)) for k in (1, 2)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        winner = [o for o in outcomes if o != "refused"]
        assert sorted(map(str, outcomes)).count("refused") == 1 and path.read_bytes() == winner[0]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


# 6. One rule for the API and the CLI: the output name's suffix decides.


def test_the_output_suffix_decides_the_restored_format_in_the_cli_and_the_api(tmp_path, images):
    (tmp_path / "t10k-idx3-ubyte.gz").write_bytes(gzip.compress(data.idx_bytes(images)))
    assert run("-q", "t10k-idx3-ubyte.gz", cwd=tmp_path).returncode == 0
    assert run("-d", "-q", "-o", "t10k.npy", "t10k-idx3-ubyte.gz.aec", cwd=tmp_path).returncode == 0
    assert np.load(tmp_path / "t10k.npy").shape == images.shape
    codec.decompress_file(tmp_path / "t10k-idx3-ubyte.gz.aec", tmp_path / "api.npy")
    assert np.load(tmp_path / "api.npy").shape == images.shape
    r = run("-d", "-q", "-o", "t10k.weird", "t10k-idx3-ubyte.gz.aec", cwd=tmp_path)
    assert (
        r.returncode == 1
        and b"unknown output format" in r.stderr
        and not (tmp_path / "t10k.weird").exists()
    )
    with pytest.raises(codec.DataError, match="unknown output format"):
        codec.decompress_file(tmp_path / "t10k-idx3-ubyte.gz.aec", tmp_path / "t10k.weird")


# 7. Termination signals: no leftovers, exit 128 + n; and "output, then input removed" is never
# split.


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT])
def test_termination_signals_leave_no_partial_output_and_exit_128_plus_n(tmp_path, signum):
    # A copy: with --rm, a run that finishes before the signal lands removes its input, and this
    # must never be the system's dataset (under nohup, SIGHUP is ignored and the run does finish).
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    src = tmp_path / "in" / "train-images-idx3-ubyte.gz"
    shutil.copyfile(codec.data.DEBIAN_DIR / "train-images-idx3-ubyte.gz", src)
    out = tmp_path / "out"
    proc = subprocess.Popen(
        with_default_signal(signum, AECODEC, "-q", "--rm", "-o", str(out / "train.aec"), str(src)),
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 120
    while time.time() < deadline and not any(p.name.endswith(".part") for p in out.iterdir()):
        time.sleep(0.05)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err
    assert list(out.iterdir()) == [] and src.exists()


def test_a_signal_inside_the_final_steps_lands_after_them(tmp_path):
    signals.install()
    try:
        src = tmp_path / "in.bin"
        src.write_bytes(b"input")

        def remove_input_after_a_signal():
            os.kill(
                os.getpid(), signal.SIGTERM
            )  # arrives between "output in place" and "input removed"
            src.unlink()

        with pytest.raises(signals.Interrupted) as info:
            with fileio.atomic_output(tmp_path / "out.bin", then=remove_input_after_a_signal) as f:
                f.write(b"output")
        assert info.value.exit_status == 128 + signal.SIGTERM
        assert (tmp_path / "out.bin").read_bytes() == b"output" and not src.exists()
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for s in (signal.SIGHUP, signal.SIGQUIT):
            signal.signal(s, signal.SIG_DFL)


def test_the_command_line_loads_no_numerical_library_before_its_signal_handlers():
    code = (
        "import sys, codec.cli; "
        "print(sorted(m for m in ('numpy', 'msgpack', 'constriction') if m in sys.modules))"
    )
    assert (
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        == "[]"
    )


# 8. Streams that end where they say, and work bounded by the file's size.


def bounded(call, error):
    """``call()`` raises ``error`` within a second and 200 MB."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        with pytest.raises(error):
            call()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - start < 1.0 and peak < 200 << 20


@pytest.mark.parametrize("quality", [3, 8])
def test_an_empty_payload_claiming_many_images_is_refused_before_decoding(images, quality):
    header, chunks = split(codec.compress(images, quality=quality))
    chunks[0][0], chunks[0][1] = 85_598, b""
    bounded(lambda: codec.decompress(join(header, chunks)), codec.LimitError)


@pytest.mark.parametrize("quality", [3, 8])
def test_a_raised_image_count_is_caught_at_the_end_of_the_stream(images, quality):
    header, chunks = split(codec.compress(images, quality=quality))
    chunks[0][0] += 1
    with pytest.raises(codec.FormatError, match="does not end where its image count says"):
        codec.decompress(join(header, chunks))


def test_aecodec_test_decodes_and_refuses_such_files(tmp_path, images):
    header, chunks = split(codec.compress(images, quality=3))
    chunks[0][0] += 1
    (tmp_path / "raised.aec").write_bytes(join(header, chunks))
    chunks[0][0], chunks[0][1] = 85_598, b""
    (tmp_path / "empty.aec").write_bytes(join(header, chunks))
    r = run("test", "raised.aec", "empty.aec", cwd=tmp_path)
    lines = r.stderr.decode().splitlines()
    assert r.returncode == 1 and "does not end" in lines[0] and "pixels per byte" in lines[1]


def test_blank_images_are_padded_to_the_floor_and_still_round_trip():
    blank = np.zeros((300, 64, 64), np.uint8)
    fmnist, photo = codec.load_model(), codec.load_model(codec.api.PHOTO_MODEL)
    for model, quality in ((fmnist, 1), (fmnist, 8), (photo, 1), (photo, photo.qualities[-1])):
        blob = codec.compress(blank, quality=quality, model=model)
        ((n, payload),) = container.unpack(blob).chunks
        assert len(payload) >= blank.size // container.MAX_PIXELS_PER_BYTE
        assert np.abs(codec.decompress(blob).astype(int)).max() <= 20


def test_format_2_files_are_still_read():
    expected = {
        3: "be0946df7579e00af2c4a35c2d875f66b4e3616c75f96b9f93800fbb96dd4b65",
        6: "ba8bfadba76fa8419979b3664aff777c7b55dc4d6247ecc790cb389c29d88874",
    }
    for quality, digest in expected.items():
        restored = codec.decompress((HERE / "data" / f"format2-q{quality}.aec").read_bytes())
        assert hashlib.sha256(restored.tobytes()).hexdigest() == digest


# 9, 10, 15. Hostile model files.


def model_body() -> dict:
    body = msgpack.unpackb(api.DEFAULT_MODEL.read_bytes()[4:], raw=False)
    body.pop("fingerprint")
    return body


def write_model(path: Path, body: dict) -> Path:
    body["fingerprint"] = modelfile.fingerprint(body)
    path.write_bytes(modelfile.MAGIC + msgpack.packb(body, use_bin_type=True))
    return path


def test_a_model_too_costly_per_pixel_is_refused_at_load(tmp_path):
    body = model_body()
    body["config"].update(tile=[1, 1], hidden=4096)
    with pytest.raises(codec.FormatError, match="tile is out of range: at least 64 pixels"):
        codec.load_model(write_model(tmp_path / "tiny-tile.aecm", body))
    body = model_body()
    body["config"].update(hidden=4096, context_hidden=4096)
    with pytest.raises(codec.FormatError, match="multiply-adds per pixel"):
        codec.load_model(write_model(tmp_path / "wide.aecm", body))


def test_a_model_of_nested_empty_arrays_is_refused_within_bounds(tmp_path):
    count = 8_000_000  # 8 MB of one-byte empty arrays: a bounded stand-in for the review's 63 MB
    raw = modelfile.MAGIC + b"\x81\xa6params\xdd" + struct.pack(">I", count) + b"\x90" * count
    (tmp_path / "nested.aecm").write_bytes(raw)
    bounded(lambda: codec.load_model(tmp_path / "nested.aecm"), codec.LimitError)
    (tmp_path / "list.aecm").write_bytes(modelfile.MAGIC + b"\x91\x90")
    with pytest.raises(codec.FormatError, match="not a map"):
        codec.load_model(tmp_path / "list.aecm")


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda b: b["params"]["pixel_mean"].update(dtype=["<f4"]), "unsupported dtype"),
        (lambda b: b.update(config=list(b["config"].values())), "config is a list"),
        (lambda b: b["config"].update(hidden="128"), "hidden is not a whole number"),
        (lambda b: b["config"].update(tile=[28.0, 28]), "tile or pixel_steps"),
        (lambda b: b.update(name=["x"]), "name is a list"),
    ],
)
def test_mistyped_model_fields_are_format_errors_never_coerced(tmp_path, change, message):
    body = model_body()
    change(body)
    with pytest.raises(codec.FormatError, match=message):
        codec.load_model(write_model(tmp_path / "m.aecm", body))


# 11. Compress-side bombs: the claimed shape is checked before a pixel is read.


def test_an_idx_or_npz_claiming_a_huge_image_is_refused_before_reading(tmp_path):
    head = bytes([0, 0, 8, 3]) + struct.pack(">III", 1, 32768, 32768)
    (tmp_path / "huge-idx3-ubyte.gz").write_bytes(gzip.compress(head + bytes(1 << 20)))
    bounded(lambda: codec.data.load_images(tmp_path / "huge-idx3-ubyte.gz"), codec.InputError)
    npy = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        npy, {"descr": "|u1", "fortran_order": False, "shape": (1, 32768, 32768)}
    )
    with zipfile.ZipFile(tmp_path / "huge.npz", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("images.npy", npy.getvalue() + bytes(1 << 20))
    bounded(lambda: codec.data.load_images(tmp_path / "huge.npz"), codec.InputError)
    for name in ("huge-idx3-ubyte.gz", "huge.npz"):
        r = run("-q", name, cwd=tmp_path)
        assert r.returncode == 1 and b"larger than aecodec accepts" in r.stderr


# 12. A damaged header is found before any chunk is decoded.


def test_a_flipped_header_bit_fails_before_a_byte_is_written(tmp_path, images):
    blob = bytearray(
        codec.compress(np.concatenate([images] * 200), quality=4, meta={"kind": "npy", "name": "x"})
    )
    blob[8] ^= 4  # inside the header record
    (tmp_path / "x.aec").write_bytes(bytes(blob))
    r = run("-d", "-c", "x.aec", cwd=tmp_path)
    assert r.returncode == 1 and r.stdout == b"" and b"header checksum mismatch" in r.stderr


# 13. Deep nesting is a FormatError, never a RecursionError.


def test_deeply_nested_fields_are_format_errors_in_decompress_test_and_info(tmp_path, images):
    header, chunks = split(codec.compress(images[:2], quality=3))
    deep: list = []
    for _ in range(1000):
        deep = [deep]
    for i, blob in enumerate(
        [join([*header[:2], deep, *header[3:]], chunks), join(header, [[deep, *chunks[0][1:]]])]
    ):
        with pytest.raises(codec.FormatError):
            codec.decompress(blob)
        (tmp_path / f"deep{i}.aec").write_bytes(blob)
        for command in ("test", "info"):
            r = run(command, f"deep{i}.aec", cwd=tmp_path)
            assert (
                r.returncode == 1
                and b"RecursionError" not in r.stderr
                and b"nested deeper" in r.stderr
            )


# 14. Checksum-valid but inconsistent metadata.


@pytest.mark.parametrize(
    "meta, message",
    [
        ({"kind": "idx", "name": "a-idx3-ubyte", "count": 10}, "holds 6 images, not the 10"),
        ({"kind": "folder", "name": "f", "count": 6, "files": ["a.png"] * 6}, "lists a name twice"),
        (
            {"kind": "image", "name": "a.png", "format": "PDF"},
            "format 'PDF' is not an image format",
        ),
        ({"kind": "npz", "name": "a.npz", "key": "../x"}, "key '../x' is not a plain array name"),
        ({"kind": "npy", "name": "a.npy", "count": "6"}, "count '6' is not a whole number"),
        ({"kind": "npy", "name": "a.npy", "count": -1}, "is not a whole number"),
        ({"kind": "teapot"}, "kind 'teapot'"),
    ],
)
def test_inconsistent_metadata_is_a_format_error_and_leaves_nothing(
    tmp_path, images, meta, message
):
    header, chunks = split(codec.compress(images, quality=4))
    header[4] = meta
    (tmp_path / "x.aec").write_bytes(join(header, chunks))
    r = (
        run("-d", "-q", "-o", "out", "x.aec", cwd=tmp_path)
        if meta.get("kind") == "folder"
        else run("-d", "-q", "-c", "x.aec", cwd=tmp_path)
    )
    assert r.returncode == 1 and message in r.stderr.decode(), r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) in (["x.aec"], ["out", "x.aec"])
    assert not (tmp_path / "out").exists() or tree(tmp_path / "out") == {}


# 16. The small ones.


def test_a_full_disk_says_no_space_left_on_device(tmp_path, images):
    with open("/dev/full", "wb") as f, pytest.raises(OSError) as info:
        data.save_images(f, images, "npy")
    assert info.value.errno == 28
    (tmp_path / "a.npy.aec").write_bytes(
        codec.compress(images, meta={"kind": "npy", "name": "a.npy"})
    )
    with open("/dev/full", "wb") as full:
        r = subprocess.run(
            [AECODEC, "-d", "-c", "a.npy.aec"], cwd=tmp_path, stdout=full, stderr=subprocess.PIPE
        )
    assert r.returncode == 1 and b"No space left on device" in r.stderr


def test_dash_o_dash_writes_standard_output(tmp_path, images):
    np.save(tmp_path / "a.npy", images)
    r = run("-q", "-o", "-", "a.npy", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout[:3] == b"AEC" and not (tmp_path / "-").exists()


def test_a_replaced_model_file_is_reloaded_even_with_the_same_mtime(tmp_path, tiny_model_path):
    path = tmp_path / "m.aecm"
    path.write_bytes(api.DEFAULT_MODEL.read_bytes())
    stamp = path.stat().st_mtime_ns
    first = codec.load_model(path)
    path.write_bytes(Path(tiny_model_path).read_bytes())
    os.utime(path, ns=(stamp, stamp))
    assert codec.load_model(path).fingerprint != first.fingerprint


def test_bad_meta_passed_to_compress_is_an_input_error(images):
    for meta in ("text", {1: "x"}, {"a": object()}):
        with pytest.raises(codec.InputError, match="meta"):
            codec.compress(images, meta=meta)


def test_chunk_checksums_still_cover_the_payload(images):
    blob = bytearray(codec.compress(images, quality=4))
    header, chunks = split(bytes(blob))
    chunks[0][1] = bytes([chunks[0][1][0] ^ 1]) + chunks[0][1][1:]
    damaged = join(header, chunks, fix_crc=False)
    with pytest.raises(codec.ChecksumError):
        codec.decompress(damaged)
    assert zlib.crc32(chunks[0][1]) != chunks[0][2]


# A second adversarial pass over the fix.


def test_folder_names_a_restore_would_refuse_are_refused_at_compression_before_rm(tmp_path, images):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(images[0]).save(photos / "ok.png")
    Image.fromarray(images[1]).save(photos / "bad\x1b[2J.png")
    r = run("-r", "--rm", "photos", cwd=tmp_path)
    assert r.returncode == 1 and b"control characters" in r.stderr and b"\x1b" not in r.stderr
    assert len(list(photos.iterdir())) == 2 and not (tmp_path / "photos.aec").exists()


def test_names_that_differ_only_in_case_round_trip(tmp_path, images):
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(images[0]).save(photos / "A.png")
    Image.fromarray(images[1]).save(photos / "a.png")
    assert run("-r", "--rm", "-q", "photos", cwd=tmp_path).returncode == 0
    r = run("-d", "-q", "photos.aec", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in photos.iterdir()) == ["A.png", "a.png"]


def test_a_format_2_archive_of_blank_images_is_still_read():
    restored = codec.decompress((HERE / "data" / "format2-blank-q4.aec").read_bytes())
    assert restored.shape == (1000, 28, 28) and not restored.any()


def test_a_format_2_file_cannot_claim_unbounded_work(images):
    header, chunks = split((HERE / "data" / "format2-q3.aec").read_bytes())
    chunks[0][0], chunks[0][1] = 100_000, b"\0" * 4
    bounded(lambda: codec.decompress(join(header, chunks, version=2)), codec.LimitError)


def test_tiny_images_cannot_multiply_the_work_by_their_padding():
    """A 1x1 image is a whole 28x28 tile at a transform level: the floor counts the tile, not the
    pixel."""
    header = api._header(codec.load_model(), 1, (1, 1), True, {})
    n = 20_000  # 20,000 tiles of work behind 20 bytes of data under a floor of raw pixels
    blob = container.pack(header, [(n, bytes(container.min_chunk_bytes(n, 1)))])
    bounded(lambda: codec.decompress(blob), codec.LimitError)
    tiny = np.full((500, 1, 1), 7, np.uint8)
    assert (
        codec.decompress(codec.compress(tiny, quality=1))
        == codec.decompress(codec.compress(tiny, quality=1))
    ).all()


def test_a_short_write_to_standard_output_is_an_error_not_a_truncated_success():
    class Short(
        io.RawIOBase
    ):  # takes at most 10 bytes a call, then nothing: a reader that went away
        def __init__(self):
            self.taken = 0

        def writable(self):
            return True

        def write(self, b):
            n = 0 if self.taken >= 30 else min(10, len(b))
            self.taken += n
            return n

    with pytest.raises(BrokenPipeError):
        data.write_all(Short(), b"x" * 100)


def test_folder_restore_never_writes_through_a_symbolic_link(tmp_path, images):
    header, chunks = split(codec.compress(images[:2], quality=4))
    header[4] = {"kind": "folder", "name": "x", "count": 2, "files": ["sub/evil.png", "ok.png"]}
    (tmp_path / "x.aec").write_bytes(join(header, chunks))
    (tmp_path / "victim").mkdir()
    (tmp_path / "victim" / "evil.png").write_text("precious")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "sub").symlink_to("../victim")
    for force in ([], ["-f"]):
        r = run("-d", "-q", *force, "-o", "out", "x.aec", cwd=tmp_path)
        assert r.returncode == 1 and b"not a plain folder" in r.stderr
        assert (tmp_path / "victim" / "evil.png").read_text() == "precious"
        assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["sub"]


def test_a_folder_restore_never_replaces_its_own_input(tmp_path, images):
    header, chunks = split(codec.compress(images[:1], quality=4))
    header[4] = {"kind": "folder", "name": "x", "count": 1, "files": ["pic.png"]}
    (tmp_path / "arc").mkdir()
    (tmp_path / "arc" / "pic.png").write_bytes(join(header, chunks))
    (tmp_path / "out").mkdir()
    os.link(tmp_path / "arc" / "pic.png", tmp_path / "out" / "pic.png")
    r = run("-d", "-f", "--rm", "-q", "-o", "out", "arc/pic.png", cwd=tmp_path)
    # refused as a single file's output is: bad usage
    assert r.returncode == 2 and b"output out/pic.png is the input arc/pic.png" in r.stderr
    assert (tmp_path / "arc" / "pic.png").read_bytes()[:3] == b"AEC"


def test_narrow_grey_images_are_not_restored_as_one_colour_image(tmp_path):
    stack = np.random.default_rng(0).integers(
        0, 255, (3, 28, 4), dtype=np.uint8
    )  # three 28x4 grey images
    (tmp_path / "g3.aec").write_bytes(
        codec.compress(stack, quality=8, grey_stack=True, model=codec.load_model())
    )
    r = run("-d", "-q", "-o", "g3.png", "g3.aec", cwd=tmp_path)
    assert r.returncode == 1 and b"an image file holds one image, the archive 3" in r.stderr
    with pytest.raises(codec.DataError, match="holds one image"):
        codec.decompress_file(tmp_path / "g3.aec", tmp_path / "api.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g3.aec"]


def test_an_ignored_hangup_stays_ignored_as_under_nohup(tmp_path):
    src = codec.data.DEBIAN_DIR / "t10k-images-idx3-ubyte.gz"
    command = f"trap '' HUP; exec '{AECODEC}' -q -o '{tmp_path / 't.aec'}' '{src}'"
    proc = subprocess.Popen(["sh", "-c", command])
    deadline = time.time() + 120
    while time.time() < deadline and not any(p.name.endswith(".part") for p in tmp_path.iterdir()):
        time.sleep(0.05)
    proc.send_signal(signal.SIGHUP)
    assert proc.wait(timeout=300) == 0 and codec.decompress(
        (tmp_path / "t.aec").read_bytes()
    ).shape == (10000, 28, 28)


def test_running_the_cli_in_process_gives_back_the_callers_signal_handlers():
    from codec import cli

    before = {s: signal.getsignal(s) for s in signals.SIGNALS}
    assert cli.main(["info", "/nonexistent.aec"]) == 1
    assert {s: signal.getsignal(s) for s in signals.SIGNALS} == before


def test_a_failed_folder_restore_leaves_no_folder_it_created(tmp_path, images):
    blob = bytearray(folder_archive(tmp_path, images).read_bytes())
    blob[-10] ^= 1  # the last chunk's data: damage found after the folder was made
    (tmp_path / "photos").rename(tmp_path / "original")
    (tmp_path / "photos.aec").write_bytes(bytes(blob))
    r = run("-d", "-q", "photos.aec", cwd=tmp_path)
    assert r.returncode == 1 and not (tmp_path / "photos").exists()


def test_a_name_that_cannot_be_placed_stops_the_restore_before_any_file_is_placed(tmp_path, images):
    archive = folder_archive(tmp_path, images)
    out = tmp_path / "out"
    (out / "img1.png").mkdir(parents=True)  # a folder where a file is to go
    (out / "img0.png").write_bytes(b"mine")
    r = run("-d", "-f", "-q", "-o", "out", archive.name, cwd=tmp_path)
    assert r.returncode == 1 and b"img1.png is a folder" in r.stderr
    assert (out / "img0.png").read_bytes() == b"mine" and not (out / "img2.png").exists()


def test_an_npz_claiming_millions_of_images_is_read_a_chunk_at_a_time(tmp_path):
    npy = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        npy, {"descr": "|u1", "fortran_order": False, "shape": (2_000_000, 28, 28)}
    )
    with zipfile.ZipFile(tmp_path / "many.npz", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "images.npy", npy.getvalue() + bytes(784 * 3000)
        )  # far fewer images than claimed
    from codec.io import sources

    source = sources.open_source(str(tmp_path / "many.npz"))
    tracemalloc.start()
    try:
        with pytest.raises(codec.DataError, match="ends after 3000 of 2000000 images"):
            for _ in source.batches():
                pass
        assert tracemalloc.get_traced_memory()[1] < 50 << 20
    finally:
        tracemalloc.stop()


def test_a_pipe_that_never_ends_is_refused_past_its_limit(tmp_path, monkeypatch):
    from codec.io import sources

    monkeypatch.setattr(sources, "MAX_PIPED_BYTES", 1 << 16)
    with pytest.raises(codec.DataError, match="from a pipe; give its file name"):
        sources.open_source("-", stdin=io.BytesIO(b"\x89PNG" + bytes(1 << 17)))
    r = subprocess.run([AECODEC, "-c", "/dev/zero"], capture_output=True, timeout=60)
    assert r.returncode == 1 and b"not a regular file" in r.stderr


def test_compress_file_refuses_to_write_over_its_input(tmp_path, images):
    np.save(tmp_path / "x.npy", images)
    with pytest.raises(codec.InputError, match="is the input"):
        codec.compress_file(tmp_path / "x.npy", tmp_path / "x.npy", force=True)
    assert np.load(tmp_path / "x.npy").shape == images.shape


def test_an_image_format_that_cannot_hold_the_channels_is_a_data_error(tmp_path, test_images):
    rgba = np.stack([test_images[0]] * 3 + [np.full((28, 28), 255, np.uint8)], -1)[None]
    (tmp_path / "a.aec").write_bytes(codec.compress(rgba, quality=8, model=codec.load_model()))
    with pytest.raises(codec.DataError, match="JPEG cannot hold an image of 4 channels"):
        codec.decompress_file(tmp_path / "a.aec", tmp_path / "a.jpg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.aec"]


def test_info_into_a_closed_pipe_prints_no_traceback(tmp_path, images):
    (tmp_path / "a.aec").write_bytes(codec.compress(images))
    r = subprocess.run(
        f"'{AECODEC}' info a.aec a.aec a.aec | true", shell=True, cwd=tmp_path, capture_output=True
    )
    assert b"Traceback" not in r.stderr
