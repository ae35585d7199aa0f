"""Datasets past one machine: the numcodecs codec in zarr and Dask arrays, random access, parallel
compression."""

import subprocess
import sys

import numpy as np
import pytest

import codec

zarr = pytest.importorskip("zarr")
numcodecs = pytest.importorskip("numcodecs")


def test_the_numcodecs_entry_point_finds_the_codec_in_a_fresh_interpreter():
    code = (
        "import numcodecs; c = numcodecs.get_codec({'id': 'aecodec', 'model': 'fmnist', 'quality': "
        "3}); "
        "print(type(c).__module__, c.get_config()['quality'], len(c.get_config()['fingerprint']))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["codec.numcodecs", "3", "64"]


def test_a_zarr_array_of_images_reads_back_through_zarr_and_dask(tmp_path, test_images):
    import dask.array as da

    images = test_images[:60]
    compressor = numcodecs.get_codec({"id": "aecodec", "model": "fmnist", "quality": 4})
    z = zarr.create_array(
        tmp_path / "x.zarr",
        shape=images.shape,
        chunks=(25, 28, 28),
        dtype="uint8",
        zarr_format=2,
        compressors=compressor,
    )
    z[:] = images
    expected = np.concatenate(
        [codec.decompress(codec.compress(images[i : i + 25], quality=4)) for i in (0, 25, 50)]
    )
    again = zarr.open_array(tmp_path / "x.zarr", mode="r")
    assert again.compressors[0].get_config() == compressor.get_config()
    assert np.array_equal(again[:], expected) and np.array_equal(again[30:40], expected[30:40])
    assert np.array_equal(da.from_zarr(str(tmp_path / "x.zarr")).compute(), expected)
    assert (
        sum(p.stat().st_size for p in (tmp_path / "x.zarr").rglob("*") if p.is_file())
        < images.nbytes / 5
    )


def test_a_codec_config_decides_the_output_or_refuses(test_images):
    from codec.numcodecs import AecodecCodec

    fmnist = AecodecCodec("fmnist", quality=2)
    assert numcodecs.get_codec(fmnist.get_config()).get_config() == fmnist.get_config()
    with pytest.raises(codec.ModelMismatchError, match="fingerprint"):
        AecodecCodec("fmnist", quality=2, fingerprint="0" * 64)
    photo_chunk = AecodecCodec("photo", quality=1).encode(test_images[:2])
    with pytest.raises(codec.ModelMismatchError):
        fmnist.decode(photo_chunk)
    with pytest.raises(codec.InputError, match="uint8"):
        fmnist.encode(test_images[:2].astype(np.float32))
    with pytest.raises(codec.InputError, match="quality"):
        AecodecCodec("fmnist", quality=99)
    out = np.empty((2, 28, 28), np.uint8)
    fmnist.decode(fmnist.encode(test_images[:2]), out=out)
    assert np.array_equal(out, codec.decompress(codec.compress(test_images[:2], quality=2)))


def test_compressing_on_a_dask_cluster_writes_the_same_bytes(tmp_path, test_images, monkeypatch):
    pytest.importorskip("dask.distributed")
    from codec import api, parallel

    # several chunks in flight; shapes change mid-stream below
    monkeypatch.setattr(api, "CHUNK_IMAGES", 40)
    images = [*test_images[:130], np.zeros((30, 40), np.uint8), *test_images[130:150]]
    with parallel.DaskPool(workers=2, in_flight=2) as pool:
        for quality in (1, 5):
            assert codec.compress(test_images, quality=quality, pool=pool) == codec.compress(
                test_images, quality=quality
            )
        assert codec.compress(images, quality=3, pool=pool) == codec.compress(images, quality=3)
        assert set(pool.client.run(parallel.models_built).values()) <= {
            0,
            1,
        }  # once per worker, not per chunk
        np.save(tmp_path / "x.npy", test_images)
        codec.compress_file(tmp_path / "x.npy", tmp_path / "par.aec", pool=pool)
    codec.compress_file(tmp_path / "x.npy", tmp_path / "one.aec")
    assert (tmp_path / "par.aec").read_bytes() == (tmp_path / "one.aec").read_bytes()


def test_the_command_line_restores_a_range_of_images_from_their_chunks_only(
    tmp_path, test_images, monkeypatch
):
    from codec import api, cli

    monkeypatch.setattr(api, "CHUNK_IMAGES", 64)
    np.save(tmp_path / "x.npy", test_images)
    assert cli.main(["-q", str(tmp_path / "x.npy")]) == 0
    full = codec.decompress((tmp_path / "x.npy.aec").read_bytes())
    assert cli.main(["-d", "-q", "--images", "100:140", str(tmp_path / "x.npy.aec")]) == 0
    assert np.array_equal(np.load(tmp_path / "x.100-139.npy"), full[100:140])
    assert (
        cli.main(
            [
                "-d",
                "-q",
                "--images=-1",
                "-o",
                str(tmp_path / "last.npy"),
                str(tmp_path / "x.npy.aec"),
            ]
        )
        == 0
    )
    assert np.array_equal(np.load(tmp_path / "last.npy"), full[-1:])
    assert (
        not (tmp_path / "x.npy").with_suffix(".npy.npy").exists() and (tmp_path / "x.npy").exists()
    )
    # none of the 300
    assert cli.main(["-d", "-q", "--images", "400:500", str(tmp_path / "x.npy.aec")]) == 2


def test_a_folder_archive_restores_the_files_of_the_range(tmp_path, test_images):
    from PIL import Image

    from codec import cli

    (tmp_path / "f").mkdir()
    for i in range(5):
        Image.fromarray(test_images[i]).save(tmp_path / "f" / f"item{i}.png")
    assert cli.main(["-q", "-r", str(tmp_path / "f"), "-o", str(tmp_path / "f.aec")]) == 0
    assert (
        cli.main(
            ["-d", "-q", "--images", "1:3", str(tmp_path / "f.aec"), "-o", str(tmp_path / "some")]
        )
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "some").iterdir()) == ["item1.png", "item2.png"]
