"""The numcodecs codec refuses what a zarr array's metadata or chunks can hold against it: a codec
config of unknown fields or wrong types, a model that is not a regular file, a chunk of another
shape. Each refusal is an aecodec error naming what is wrong (each test failed before it was)."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

import codec

from .test_model_limits import raised_within

zarr = pytest.importorskip("zarr")
numcodecs = pytest.importorskip("numcodecs")


@pytest.mark.parametrize(
    "config, message",
    [
        (
            {"model": "fmnist", "bogus": 1},
            "unknown field 'bogus' (it has model, quality, fingerprint)",
        ),
        ({"model": 3}, "model 3 is not a bundled model's name"),
        ({"model": None}, "model None is not a bundled model's name"),
        ({"model": ["fmnist"]}, "model ['fmnist'] is not a bundled model's name"),
        ({"model": "fmnist", "fingerprint": 3}, "fingerprint 3 is not 64 hexadecimal digits"),
        (
            {"model": "fmnist", "fingerprint": "7b2a"},
            "fingerprint '7b2a' is not 64 hexadecimal digits",
        ),
    ],
)
def test_a_codec_config_of_unknown_fields_or_wrong_types_is_refused_naming_the_field(
    config, message
):
    with pytest.raises(codec.InputError) as caught:
        numcodecs.get_codec({"id": "aecodec", **config})
    assert str(caught.value).startswith(f"aecodec codec config: {message}")


@pytest.fixture
def array_path(tmp_path, test_images):
    """A zarr (format 2) array of 4 images in chunks of 2, coded by the Fashion-MNIST model."""
    compressor = numcodecs.get_codec({"id": "aecodec", "model": "fmnist", "quality": 2})
    path = tmp_path / "x.zarr"
    z = zarr.create_array(
        path,
        shape=(4, 28, 28),
        chunks=(2, 28, 28),
        dtype="uint8",
        zarr_format=2,
        compressors=compressor,
    )
    z[:] = test_images[:4]
    return path


def _set_compressor(array_path: Path, **fields) -> None:
    meta = json.loads((array_path / ".zarray").read_text())
    meta["compressor"] = {"id": "aecodec", "quality": 2, **fields}
    (array_path / ".zarray").write_text(json.dumps(meta))


@pytest.mark.parametrize("kind", ["FIFO", "character device"])
def test_an_array_whose_metadata_names_a_fifo_or_a_device_as_model_is_refused_without_waiting(
    array_path, tmp_path, kind
):
    model = tmp_path / "model.aecm" if kind == "FIFO" else Path("/dev/zero")
    if kind == "FIFO":
        os.mkfifo(model)
    _set_compressor(array_path, model=str(model))
    error = raised_within(
        10, lambda: zarr.open_array(array_path, mode="r")[:], fifo=model if kind == "FIFO" else None
    )
    assert isinstance(error, codec.FormatError) and f"{model}: a {kind}, not a model file" in str(
        error
    )


def test_an_array_whose_metadata_has_an_unknown_codec_field_is_refused_naming_it(array_path):
    _set_compressor(array_path, model="fmnist", level=9)
    with pytest.raises(codec.InputError, match="unknown field 'level'"):
        zarr.open_array(array_path, mode="r")


@pytest.mark.parametrize(
    "out",
    [
        np.empty((3, 28, 28), np.uint8),
        np.empty((2, 28, 28), np.float32),
        np.empty((2, 28, 27), np.uint8),
    ],
)
def test_a_chunk_that_does_not_fill_the_arrays_chunk_is_a_format_error(test_images, out):
    compressor = numcodecs.get_codec({"id": "aecodec", "model": "fmnist", "quality": 2})
    chunk = compressor.encode(test_images[:2])
    with pytest.raises(
        codec.FormatError, match=r"chunk holds images \(2, 28, 28\) uint8, which do not fill"
    ):
        compressor.decode(chunk, out=out)
    # zarr-python 2 may pass the chunk flattened: as many values is fine
    same = np.empty((56, 28), np.uint8)
    assert np.array_equal(
        compressor.decode(chunk, out=same), compressor.decode(chunk).reshape(56, 28)
    )
