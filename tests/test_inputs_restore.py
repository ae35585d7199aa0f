"""What aecodec accepts, it restores: the same names and values, or it refuses when compressing.

.npz array names, arrays that hold no image (0-d, 1-d, empty), image formats it cannot write back,
EXIF orientation, and parts (``-d --images``) of an archive of every kind of original."""

import gzip
import io
import struct
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps

import codec
from codec import cli
from codec.errors import FormatError, InputError
from codec.io import deep, idx, sinks
from codec.io.images import read_image


def npz_with(path, name: str, array: np.ndarray) -> None:
    """An .npz holding ``array`` under ``name``, any name (np.savez takes names as keywords)."""
    with zipfile.ZipFile(path, "w") as z, z.open(name + ".npy", "w") as f:
        np.lib.format.write_array(f, array)


def aecodec(*args) -> int:
    return cli.main([*map(str, args)])


@pytest.fixture
def images():
    return np.random.default_rng(0).integers(0, 256, (3, 24, 20), np.uint8)


# .npz array names: restorable where a zip can hold them, else refused before anything is written.


@pytest.mark.parametrize("name", ["my images", "données", "-x", "k" * 70, "file", "allow_pickle"])
def test_an_npz_array_name_that_compresses_restores_under_the_same_name(
    tmp_path, monkeypatch, images, name
):
    monkeypatch.chdir(tmp_path)
    npz_with("x.npz", name, images)
    assert aecodec("-q", "--lossless", "--rm", "x.npz") == 0
    assert not (tmp_path / "x.npz").exists()  # --rm: the archive is complete
    assert aecodec("-q", "-d", "x.npz.aec") == 0
    with np.load("x.npz", allow_pickle=False) as z:
        assert z.files == [name] and np.array_equal(z[name], images)


@pytest.mark.parametrize("name", ["a/b", "../x", "tab\tname", "", "k" * 252])
def test_an_npz_array_name_restoring_would_refuse_is_refused_at_compress_time_and_kept(
    tmp_path, monkeypatch, capsys, images, name
):
    monkeypatch.chdir(tmp_path)
    npz_with("x.npz", name, images)
    assert aecodec("-q", "--rm", "x.npz") == 1
    err = capsys.readouterr().err
    assert err.startswith("aecodec: error: x.npz: .npz array name ") and "rename the array" in err
    assert (tmp_path / "x.npz").exists() and not (tmp_path / "x.npz.aec").exists()


@pytest.mark.parametrize(
    "name, fine",
    [
        ("images", True),
        ("my images", True),
        ("-x", True),
        ("données", True),
        ("a/b", False),
        ("..\\x", False),
        ("", False),
        ("k" * 252, False),
    ],
)
def test_compressing_and_restoring_judge_npz_names_by_one_rule(name, fine):
    assert (sinks.npz_key_problem(name) is None) == fine
    meta = {"kind": "npz", "key": name, "count": 1}
    if fine:
        assert sinks.recorded_kind(meta)["key"] == name
    else:
        with pytest.raises(FormatError, match="header meta key"):
            sinks.recorded_kind(meta)


def test_an_image_format_aecodec_cannot_write_back_is_refused_at_compress_time_and_kept(
    tmp_path, monkeypatch, capsys, images
):
    monkeypatch.chdir(tmp_path)
    Image.fromarray(images[0]).save("x.pcx")
    assert aecodec("-q", "--rm", "x.pcx") == 1
    err = capsys.readouterr().err
    assert "PCX images are read but not written back" in err and "convert it to PNG" in err
    assert (tmp_path / "x.pcx").exists() and not (tmp_path / "x.pcx.aec").exists()


# Arrays that hold no image: an InputError saying what is accepted, from the API and the CLI.

NO_IMAGE = [
    np.array(5, np.uint8),
    np.arange(10, dtype=np.uint8),
    np.zeros((0, 28, 28), np.uint8),
    np.zeros((4, 0), np.uint8),
    np.zeros((2, 3, 4, 5, 1), np.uint8),
]


@pytest.mark.parametrize("array", NO_IMAGE, ids=lambda a: str(a.shape))
def test_an_array_that_holds_no_image_is_an_input_error_naming_the_shapes_accepted(array):
    with pytest.raises(InputError, match=r"aecodec compresses arrays shaped \(H, W\), \(H, W, C\)"):
        codec.compress(array)


@pytest.mark.parametrize("array", NO_IMAGE, ids=lambda a: str(a.shape))
@pytest.mark.parametrize("suffix", [".npy", ".npz", "pipe"])
def test_the_command_line_refuses_an_array_that_holds_no_image_by_shape(
    tmp_path, monkeypatch, capsys, array, suffix
):
    monkeypatch.chdir(tmp_path)
    if suffix == ".npz":
        np.savez("x.npz", images=array)
    else:
        np.save("x.npy", array)
    if suffix == "pipe":
        monkeypatch.setattr(
            "sys.stdin", io.TextIOWrapper(io.BytesIO((tmp_path / "x.npy").read_bytes()))
        )
        status = aecodec("-q", "-o", "x.aec")
    else:
        status = aecodec("-q", "--rm", f"x{suffix}")
    err = capsys.readouterr().err
    assert (
        status == 1
        and "aecodec compresses arrays shaped (H, W)" in err
        and "internal error" not in err
    )
    assert not list(tmp_path.glob("*.aec"))


def test_compress_file_refuses_a_one_dimensional_npy_with_an_input_error(tmp_path):
    np.save(tmp_path / "x.npy", np.arange(10, dtype=np.uint8))
    with pytest.raises(InputError, match="1 dimensions"):
        codec.files.compress_file(tmp_path / "x.npy", tmp_path / "x.aec")


# EXIF orientation: applied when read, so the archive holds the image as viewers show it.


def exif_image(path, array: np.ndarray, orientation: int, fmt: str) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(array).save(
        path, format=fmt, exif=exif.tobytes(), **({"quality": 95} if fmt == "JPEG" else {})
    )


@pytest.mark.parametrize("orientation", range(2, 9))
def test_a_png_with_an_exif_orientation_restores_losslessly_to_the_oriented_image(
    tmp_path, monkeypatch, orientation
):
    monkeypatch.chdir(tmp_path)
    colour = np.random.default_rng(orientation).integers(0, 256, (20, 12, 3), np.uint8)
    exif_image("x.png", colour, orientation, "PNG")
    shown = np.asarray(ImageOps.exif_transpose(Image.open("x.png")))
    assert aecodec("-q", "--lossless", "x.png") == 0
    assert aecodec("-q", "-d", "-o", "out.png", "x.png.aec") == 0
    assert np.array_equal(np.asarray(Image.open("out.png")), shown)


def test_a_jpeg_photo_taken_sideways_restores_upright_within_the_bound(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    y, x = np.mgrid[:48, :32]
    colour = np.stack([y * 5, x * 7, (x + y) * 3], -1).astype(
        np.uint8
    )  # smooth: JPEG keeps it well
    exif_image("x.jpg", colour, 6, "JPEG")  # rotate 90 degrees clockwise to show
    shown = np.asarray(ImageOps.exif_transpose(Image.open("x.jpg"))).astype(int)
    assert shown.shape == (32, 48, 3)
    assert aecodec("-q", "--max-error", "3", "x.jpg") == 0
    assert aecodec("-q", "-d", "x.jpg.aec") == 0  # as x.png: lossless from here on
    restored = np.asarray(Image.open("x.png")).astype(int)
    assert restored.shape == shown.shape and np.abs(restored - shown).max() <= 3


def with_exif_chunk(png: bytes, orientation: int) -> bytes:
    """A PNG with an eXIf chunk (after IHDR) naming ``orientation``."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    body = exif.tobytes()[6:] if exif.tobytes().startswith(b"Exif\0\0") else exif.tobytes()
    chunk = (
        struct.pack(">I", len(body))
        + b"eXIf"
        + body
        + struct.pack(">I", zlib.crc32(b"eXIf" + body))
    )
    return png[:33] + chunk + png[33:]


def test_a_sixteen_bit_png_with_an_exif_orientation_is_read_upright():
    pytest.importorskip("imagecodecs")
    deep_image = np.random.default_rng(2).integers(0, 65536, (5, 7), np.uint16)
    raw = with_exif_chunk(deep.write(deep_image, "PNG"), 8)
    a, info = read_image(io.BytesIO(raw))
    assert info["depth"] == 16 and np.array_equal(a, np.rot90(deep_image, 1))


# Parts of an archive (-d --images A:B) of every kind of original.


def originals(tmp_path, images) -> dict:
    """Archive name -> (the command that makes it, how to read a part back, the part's name):
    archives named without their original's suffix, which a part's made-up name cannot tell."""
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx.idx_bytes(images)))
    (tmp_path / "raw-images-idx3-ubyte").write_bytes(idx.idx_bytes(images))
    (tmp_path / "api.aec").write_bytes(codec.compress(images, lossless=True))
    return {
        "t10k.aec": (["-o", "t10k.aec", "t10k-images-idx3-ubyte.gz"], idx.read_idx, "t10k.1-2"),
        "raw.aec": (["-o", "raw.aec", "raw-images-idx3-ubyte"], idx.read_idx, "raw.1-2"),
        "api.aec": (None, np.load, "api.1-2"),  # codec.compress records no kind: an array
    }


@pytest.mark.parametrize("archive", ["t10k.aec", "raw.aec", "api.aec"])
def test_a_part_of_an_archive_restores_as_the_kind_of_file_the_whole_restores_to(
    tmp_path, monkeypatch, images, archive
):
    monkeypatch.chdir(tmp_path)
    command, read, part = originals(tmp_path, images)[archive]
    if command is not None:
        assert aecodec("-q", "--lossless", *command) == 0
    assert aecodec("-q", "-d", "--images", "1:3", archive) == 0
    assert np.array_equal(read(tmp_path / part), images[1:3])


def test_a_part_of_a_jpegs_archive_is_a_lossless_png_as_the_whole_is(
    tmp_path, monkeypatch, capsys, images
):
    monkeypatch.chdir(tmp_path)
    Image.fromarray(images[0]).save("photo.jpg", quality=95)
    assert aecodec("-q", "--lossless", "photo.jpg") == 0
    assert aecodec("-d", "--images", "0", "photo.jpg.aec") == 0
    assert "restored as photo.0-0.png" in capsys.readouterr().err
    assert Image.open("photo.0-0.png").format == "PNG" and not (tmp_path / "photo.0-0.jpg").exists()
    assert np.array_equal(np.asarray(Image.open("photo.0-0.png")), read_image("photo.jpg")[0])


def test_the_images_of_a_lossless_archive_are_read_at_random(images):
    with codec.open(io.BytesIO(codec.compress(images, lossless=True))) as archive:
        assert np.array_equal(archive[1], images[1]) and np.array_equal(archive[-2:], images[1:])
