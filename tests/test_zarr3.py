"""aecodec as a zarr format 3 codec (``codec/zarr3.py``): arrays of images round-trip through zarr
and Dask, the same chunks as the format-2 codec's, the model named by fingerprint."""

import json
import warnings

import numcodecs
import numpy as np
import pytest

import codec
from codec.errors import InputError, ModelMismatchError

zarr = pytest.importorskip("zarr")
da = pytest.importorskip("dask.array")
from codec.zarr3 import Aecodec  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:Numcodecs codecs are not in the Zarr")


def _array(path, images, serializer, zarr_format=3):
    # format 3: no compressor after it (zarr's default would zstd the aecodec files again)
    options = (
        {"serializer": serializer, "compressors": None}
        if zarr_format == 3
        else {"compressors": serializer}
    )
    z = zarr.create_array(
        str(path), shape=images.shape, chunks=(100, *images.shape[1:]), dtype="uint8",
        zarr_format=zarr_format, **options,
    )  # fmt: skip
    z[:] = images
    return z


def _chunk_bytes(path) -> int:
    """The bytes of an array's chunks, its metadata files (.zarray, .zattrs, zarr.json) left out."""
    files = [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files if p.name != "zarr.json" and p.name[0] != ".")


def test_a_zarr3_array_of_images_round_trips_through_zarr_and_dask(tmp_path, test_images):
    images = test_images[:250]  # three chunks, the last one partial
    _array(tmp_path / "a.zarr", images, Aecodec(model="fmnist", quality=9))
    back = zarr.open_array(str(tmp_path / "a.zarr"))[:]
    assert back.shape == images.shape and np.abs(back.astype(int) - images).max() <= 7
    assert np.array_equal(da.from_zarr(str(tmp_path / "a.zarr"))[40:60].compute(), back[40:60])


def test_its_chunks_are_the_format2_codecs(tmp_path, test_images):
    images = test_images[:200]
    _array(tmp_path / "v3.zarr", images, Aecodec(model="fmnist", quality=4))
    v2 = numcodecs.get_codec({"id": "aecodec", "model": "fmnist", "quality": 4})
    _array(tmp_path / "v2.zarr", images, v2, zarr_format=2)
    assert _chunk_bytes(tmp_path / "v3.zarr") == _chunk_bytes(tmp_path / "v2.zarr")


def test_the_metadata_names_the_model_by_fingerprint_and_a_mismatch_is_refused(
    tmp_path, test_images
):
    _array(tmp_path / "a.zarr", test_images[:100], Aecodec(model="fmnist", quality=4))
    meta = json.loads((tmp_path / "a.zarr" / "zarr.json").read_text())
    (entry,) = meta["codecs"]
    assert entry["name"] == "numcodecs.aecodec"
    assert entry["configuration"]["fingerprint"] == codec.load_model().fingerprint
    entry["configuration"]["fingerprint"] = "0" * 64
    (tmp_path / "a.zarr" / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(ModelMismatchError):
        zarr.open_array(str(tmp_path / "a.zarr"))[:]
    with pytest.raises(InputError, match="unknown field"):
        Aecodec(model="fmnist", colour=True)


def test_zarr_lists_the_codec_by_its_entry_point():
    from zarr.registry import get_codec_class

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert get_codec_class("numcodecs.aecodec") is Aecodec


def test_any_chunking_round_trips_shards_and_chunks_across_channels(tmp_path, test_images):
    """Chunks inside shards, chunks cutting the images, and chunks of one colour channel (each
    chunk (1, H, W, 1): grey with a channel axis)."""
    shirts = test_images[:120]
    z = zarr.create_array(
        str(tmp_path / "s.zarr"), shape=shirts.shape, chunks=(20, 14, 28), shards=(60, 28, 28),
        dtype="uint8", serializer=Aecodec(model="fmnist", quality=9), compressors=None,
    )  # fmt: skip
    z[:] = shirts
    back = zarr.open_array(str(tmp_path / "s.zarr"))[:]
    assert np.abs(back.astype(int) - shirts).max() <= 7
    assert np.array_equal(da.from_zarr(str(tmp_path / "s.zarr")).compute(), back)
    colour = np.stack([shirts[:3], shirts[3:6], shirts[6:9]], -1).repeat(2, 1).repeat(2, 2)
    c = zarr.create_array(
        str(tmp_path / "c.zarr"), shape=colour.shape, chunks=(1, 56, 28, 1), dtype="uint8",
        serializer=Aecodec(model="photo", quality=12), compressors=None,
    )  # fmt: skip
    c[:] = colour
    back = zarr.open_array(str(tmp_path / "c.zarr"))[:]
    assert back.shape == colour.shape and np.abs(back.astype(int) - colour).max() <= 24
