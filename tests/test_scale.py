"""Datasets past one machine: the numcodecs codec in zarr and Dask arrays, random access, parallel compression."""

import subprocess
import sys

import numpy as np
import pytest

import codec

zarr = pytest.importorskip("zarr")
numcodecs = pytest.importorskip("numcodecs")


def test_the_numcodecs_entry_point_finds_the_codec_in_a_fresh_interpreter():
    code = ("import numcodecs; c = numcodecs.get_codec({'id': 'aecodec', 'model': 'fmnist', 'quality': 3}); "
            "print(type(c).__module__, c.get_config()['quality'], len(c.get_config()['fingerprint']))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["codec.numcodecs", "3", "64"]


def test_a_zarr_array_of_images_reads_back_through_zarr_and_dask(tmp_path, test_images):
    import dask.array as da

    images = test_images[:60]
    compressor = numcodecs.get_codec({"id": "aecodec", "model": "fmnist", "quality": 4})
    z = zarr.create_array(tmp_path / "x.zarr", shape=images.shape, chunks=(25, 28, 28), dtype="uint8", zarr_format=2,
                          compressors=compressor)
    z[:] = images
    expected = np.concatenate([codec.decompress(codec.compress(images[i : i + 25], quality=4)) for i in (0, 25, 50)])
    again = zarr.open_array(tmp_path / "x.zarr", mode="r")
    assert again.compressors[0].get_config() == compressor.get_config()
    assert np.array_equal(again[:], expected) and np.array_equal(again[30:40], expected[30:40])
    assert np.array_equal(da.from_zarr(str(tmp_path / "x.zarr")).compute(), expected)
    assert sum(p.stat().st_size for p in (tmp_path / "x.zarr").rglob("*") if p.is_file()) < images.nbytes / 5


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
