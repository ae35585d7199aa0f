"""What aecodec accepts, it restores: the same names and values, or it refuses when compressing.

.npz array names, arrays that hold no image (0-d, 1-d, empty), image formats it cannot write back,
EXIF orientation, and parts (``-d --images``) of an archive of every kind of original."""

import gzip
import io
import json
import struct
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image, ImageOps

import codec
from codec import cli
from codec.errors import FormatError, InputError
from codec.io import deep, idx, sinks, sources
from codec.io.images import read_image

from .test_cli import FMNIST, run


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
    # smooth: JPEG keeps it well
    colour = np.stack([y * 5, x * 7, (x + y) * 3], -1).astype(np.uint8)
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


# Pillow writes no PA file to read
@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA"])
def test_every_8_bit_mode_round_trips_through_the_command_line(tmp_path, test_images, mode):
    grey = test_images[7]
    # opaque alpha
    rgba = np.stack([grey, test_images[8], test_images[9], np.full_like(grey, 255)], -1)
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
    assert run("-q", "--quality", "9", "--model", FMNIST, "in.png", cwd=tmp_path).returncode == 0
    (tmp_path / "in.png").rename(tmp_path / "kept.png")
    r = run("-d", "-q", "in.png.aec", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    restored = Image.open(tmp_path / "in.png")
    # palette and 1-bit: the values they show
    assert restored.mode == {"1": "L", "P": "RGB"}.get(mode, mode)
    restored = np.asarray(restored)
    assert restored.shape == original.shape
    assert (
        np.abs(restored.astype(int) - original).max() <= 7
    )  # quality 9 (>= 38 dB): half its step of 14
    if mode in ("LA", "RGBA"):
        assert (restored[..., -1] == 255).all()  # an opaque alpha channel comes back exactly


def _transparent(test_images, mode: str) -> Image.Image:
    """A picture whose alpha is a mask of its first plane (a palette: a transparent entry)."""
    if mode == "P":
        im = Image.fromarray(test_images[7]).convert("P")
        im.info["transparency"] = 0
        return im
    mask = np.where(test_images[7] > 20, 255, np.where(test_images[7] > 5, 100, 0))
    rgba = np.stack([test_images[7], test_images[8], test_images[9], mask], -1)
    return Image.fromarray(rgba.astype(np.uint8), "RGBA").convert(mode)


@pytest.mark.parametrize("options", [("--quality", "9"), ("--lossless",)])
@pytest.mark.parametrize("mode", ["LA", "RGBA", "P"])
def test_a_transparent_image_keeps_its_alpha_exactly_whatever_the_colour_gets(
    tmp_path, test_images, mode, options
):
    im = _transparent(test_images, mode)
    im.save(tmp_path / "in.png", **({"transparency": 0} if mode == "P" else {}))
    original = np.asarray(Image.open(tmp_path / "in.png").convert("RGBA" if mode == "P" else mode))
    r = run("-q", "--rm", *options, "--model", FMNIST, "in.png", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png.aec"]
    assert run("-d", "in.png.aec", cwd=tmp_path).returncode == 0
    restored = Image.open(tmp_path / "in.png")
    assert restored.mode == ("RGBA" if mode == "P" else mode)  # a palette: the colours it shows
    restored = np.asarray(restored)
    assert np.array_equal(restored[..., -1], original[..., -1])
    bound = 0 if options == ("--lossless",) else 7  # quality 9 (>= 38 dB): half its step of 14
    assert np.abs(restored[..., :-1].astype(int) - original[..., :-1]).max() <= bound


@pytest.mark.parametrize("channels", [2, 4])
def test_a_16_bit_image_with_alpha_keeps_it_exactly(tmp_path, test_images, channels):
    import imagecodecs

    planes = [test_images[i].astype(np.uint16) * 257 for i in (7, 8, 9)][: channels - 1]
    alpha = np.where(test_images[7] > 20, 65535, 1234).astype(np.uint16)
    image = np.stack([*planes, alpha], -1)
    (tmp_path / "deep.png").write_bytes(imagecodecs.png_encode(image))
    for options, bound in ((("--lossless",), 0), (("--max-error", "3"), 3)):
        assert run("-q", "-f", *options, "deep.png", cwd=tmp_path).returncode == 0
        (tmp_path / "deep.png").rename(tmp_path / "original.png")
        assert run("-d", "deep.png.aec", cwd=tmp_path).returncode == 0
        restored = imagecodecs.png_decode((tmp_path / "deep.png").read_bytes())
        assert restored.dtype == np.uint16 and restored.shape == image.shape
        assert np.array_equal(restored[..., -1], alpha)
        assert np.abs(restored[..., :-1].astype(int) - image[..., :-1]).max() == bound
        (tmp_path / "original.png").replace(tmp_path / "deep.png")


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


def test_narrow_grey_images_are_not_restored_as_one_colour_image(tmp_path):
    # three 28x4 grey images
    stack = np.random.default_rng(0).integers(0, 255, (3, 28, 4), dtype=np.uint8)
    (tmp_path / "g3.aec").write_bytes(
        codec.compress(stack, quality=9, grey_stack=True, model=codec.load_model())
    )
    r = run("-d", "-q", "-o", "g3.png", "g3.aec", cwd=tmp_path)
    assert r.returncode == 1 and b"an image file holds one image, the archive 3" in r.stderr
    with pytest.raises(codec.DataError, match="holds one image"):
        codec.decompress_file(tmp_path / "g3.aec", tmp_path / "api.png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g3.aec"]


def test_an_image_format_that_cannot_hold_the_channels_is_a_data_error(tmp_path, test_images):
    rgba = np.stack([test_images[0]] * 3 + [np.full((28, 28), 255, np.uint8)], -1)[None]
    (tmp_path / "a.aec").write_bytes(codec.compress(rgba, quality=9, model=codec.load_model()))
    with pytest.raises(codec.DataError, match="JPEG cannot hold an image of 4 channels"):
        codec.decompress_file(tmp_path / "a.aec", tmp_path / "a.jpg")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.aec"]


def test_the_api_and_the_command_line_read_and_write_files_the_same_way(tmp_path, test_images):
    Image.fromarray(test_images[0]).save(tmp_path / "shirt.png")
    codec.compress_file(tmp_path / "shirt.png", tmp_path / "shirt.png.aec")
    (tmp_path / "shirt.png").rename(tmp_path / "original.png")
    assert run("-d", "-q", "shirt.png.aec", cwd=tmp_path).returncode == 0
    assert Image.open(tmp_path / "shirt.png").format == "PNG"


def test_a_colour_array_is_one_colour_image_in_the_api_and_the_command_line(tmp_path, mosaic):
    _, rgb = mosaic
    # its pixel level 8 bounds the error (the photo model: test_conv.py)
    fmnist = codec.load_model()
    blob = codec.compress(rgb, quality=9, model=fmnist)
    restored = codec.decompress(blob)
    assert restored.shape == rgb.shape and np.abs(restored.astype(int) - rgb).max() <= 7
    # the rare stack of 168 grey images of width 3
    planes = codec.compress(rgb, quality=9, grey_stack=True, model=fmnist)
    assert codec.decompress(planes).shape == rgb.shape and len(blob) < len(planes) / 1.5
    np.save(tmp_path / "rgb.npy", rgb)
    assert run("-q", "--quality", "9", "--model", FMNIST, "rgb.npy", cwd=tmp_path).returncode == 0
    assert json.loads(run("info", "--json", "rgb.npy.aec", cwd=tmp_path).stdout)["batched"] is False


def test_an_animated_gif_is_refused_not_cut_to_its_first_frame(tmp_path, test_images):
    frames = [Image.fromarray(test_images[i]) for i in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    r = run("anim.gif", cwd=tmp_path)
    assert (
        r.returncode == 1
        and b"has 3 frames" in r.stderr
        and not (tmp_path / "anim.gif.aec").exists()
    )


def test_an_opaque_palette_image_comes_back_as_the_colours_it_shows(tmp_path, mosaic):
    _, rgb = mosaic
    Image.fromarray(rgb).quantize(64).save(tmp_path / "pal.png")
    shown = np.asarray(Image.open(tmp_path / "pal.png").convert("RGB"))
    assert (
        run(
            "-q", "--quality", "9", "--model", FMNIST, "-o", "pal.aec", "pal.png", cwd=tmp_path
        ).returncode
        == 0
    )
    assert run("-d", "-q", "-o", "back.png", "pal.aec", cwd=tmp_path).returncode == 0
    back = Image.open(tmp_path / "back.png")
    assert back.mode == "RGB" and np.abs(np.asarray(back).astype(int) - shown).max() <= 7


def test_a_jpeg_is_restored_as_png_unless_a_jpeg_is_named(tmp_path, mosaic):
    _, rgb = mosaic
    Image.fromarray(rgb).save(tmp_path / "photo.jpg", quality=90)
    assert run("-q", "photo.jpg", cwd=tmp_path).returncode == 0
    r = run("-d", "photo.jpg.aec", cwd=tmp_path)
    assert r.returncode == 0 and b"restored as photo.png" in r.stderr
    assert Image.open(tmp_path / "photo.png").format == "PNG"
    assert run("-d", "-q", "-o", "again.jpg", "photo.jpg.aec", cwd=tmp_path).returncode == 0
    assert Image.open(tmp_path / "again.jpg").format == "JPEG"


def test_an_idx_of_colour_images_is_read_as_colour(tmp_path, mosaic):
    _, rgb = mosaic
    stack = np.stack([rgb[:28, :28], rgb[28:56, :28]])  # (2, 28, 28, 3)
    (tmp_path / "c-idx4-ubyte.gz").write_bytes(gzip.compress(idx.idx_bytes(stack)))
    source = sources.open_source(str(tmp_path / "c-idx4-ubyte.gz"))
    assert source.image_shape == (28, 28, 3) and source.count == 2


def test_a_gif_whose_transparency_is_unused_restores_as_a_gif(tmp_path, test_images):
    im = Image.fromarray((test_images[0] // 64).astype(np.uint8), "P")  # indices 0-3 only
    im.putpalette([v for i in range(256) for v in (i, 255 - i, i // 2)])
    im.save(tmp_path / "logo.gif", transparency=200)  # an index no pixel uses
    (tmp_path / "g").mkdir()
    (tmp_path / "logo.gif").rename(tmp_path / "g" / "logo.gif")
    assert run("-r", "-q", "--rm", "g", cwd=tmp_path).returncode == 0
    r = run("-d", "-q", "g.aec", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert Image.open(tmp_path / "g" / "logo.gif").format == "GIF"


def test_a_list_of_several_sizes_restores_to_an_npz_or_says_how(tmp_path, mosaic):
    grey, rgb = mosaic
    (tmp_path / "list.aec").write_bytes(codec.compress([grey[:30, :40], rgb]))
    with pytest.raises(codec.DataError, match="several sizes"):
        codec.decompress_file(tmp_path / "list.aec", tmp_path / "o.npy")
    r = run("-d", "-q", "-o", "o.png", "list.aec", cwd=tmp_path)
    assert r.returncode == 1 and b"several sizes" in r.stderr
    codec.decompress_file(tmp_path / "list.aec", tmp_path / "o.npz")
    with np.load(tmp_path / "o.npz") as z:
        assert [z[k].shape for k in sorted(z.files)] == [(30, 40), (168, 168, 3)]


def test_a_suffixless_name_with_idx_in_it_keeps_the_original_format(tmp_path, test_images):
    np.save(tmp_path / "a.npy", test_images[:3])
    assert run("-q", "a.npy", cwd=tmp_path).returncode == 0
    assert run("-d", "-q", "-o", "rapidx", "a.npy.aec", cwd=tmp_path).returncode == 0
    assert np.load(tmp_path / "rapidx").shape == (3, 28, 28)


def test_a_fortran_order_array_reads_the_same_from_a_file_and_a_pipe(tmp_path, test_images):
    np.save(tmp_path / "f.npy", np.asfortranarray(test_images[:4]))
    a = run("-c", "--quality", "8", "f.npy", cwd=tmp_path).stdout
    b = run("-c", "--quality", "8", cwd=tmp_path, stdin=(tmp_path / "f.npy").read_bytes()).stdout
    assert np.array_equal(codec.decompress(a), codec.decompress(b))
