"""A level kind is a plug-in: a kind defined here, in the test, registers itself, has its own
section of the model file, and codes through ``codec.compress``, ``codec.decompress`` and
``codec.open`` without a library file knowing it (``codec/levels/registry.py``)."""

import msgpack
import numpy as np
import pytest

import codec
from bitstream import container
from codec import api
from codec.errors import FormatError, InputError
from codec.levels import modelfile, registry

MAX_STEPS = 16


class QuantizedLevel:
    """Pixels divided by a step, one byte each (then zeros up to the container's floor)."""

    kind = "quantized"
    max_coded_pixels = 1 << 24
    max_image_values = 1 << 24
    max_chunk_values = container.MAX_CHUNK_PIXELS
    chunk_images = 7  # small chunks: an archive of a few images has several
    work_per_pixel = 1

    def __init__(self, step: int):
        self.step = step

    def coded_pixels(self, n: int, shape) -> int:
        return n * int(np.prod(shape))

    def encode(self, images: np.ndarray, *, min_bytes: int = 0) -> bytes:
        data = (images // self.step).astype(np.uint8).tobytes()
        return data + bytes(max(0, min_bytes - len(data)))

    def decode(self, data: bytes, n: int, shape, *, version: int) -> np.ndarray:
        count = self.coded_pixels(n, shape)
        if len(data) < count or any(data[count:]):
            raise FormatError("quantized stream is damaged")
        q = np.frombuffer(data[:count], np.uint8).astype(np.int64).reshape(n, *shape)
        return np.clip(q * self.step + self.step // 2, 0, 255).astype(np.uint8)

    def ideal_bits(self, images: np.ndarray) -> float:
        return 8.0 * images.size


def read_section(body: dict, source: str):
    """The kind's section, {"steps": [1..128, ...]}, checked as strictly as the built-in ones."""
    stored = body.get("quantized")
    if stored is None:
        return None
    steps = stored.get("steps") if set(stored) == {"steps"} else None
    if (
        not isinstance(steps, list)
        or not 1 <= len(steps) <= MAX_STEPS
        or not all(type(s) is int and 1 <= s <= 128 for s in steps)
    ):
        raise FormatError(f"{source}: quantized section is not 1 to {MAX_STEPS} steps of 1 to 128")
    return registry.Section(tuple(steps), tuple(QuantizedLevel(s) for s in steps))


KIND = registry.Kind(
    "quantized",
    fields=(
        registry.Field(
            "quantized",
            since=modelfile.FORMAT,
            stored_type=dict,
            store=lambda steps: {"steps": list(steps)},
        ),
    ),
    read=read_section,
)


@pytest.fixture()
def plugin():
    registry.register(KIND)
    yield KIND
    registry.unregister(KIND.name)


@pytest.fixture()
def model_path(plugin, tmp_path):
    """A model of the plug-in's levels alone, steps 16 and 4."""
    path = tmp_path / "quantized.aecm"
    path.write_bytes(modelfile.dumps(name="quantized", meta={}, default=2, quantized=[16, 4]))
    return path


def images(n: int = 20) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 12, 9), dtype=np.uint8)


def test_a_model_of_a_plugin_kind_loads_with_its_levels(model_path):
    model = codec.load_model(model_path)
    assert [(lv.kind, lv.step) for lv in model.levels] == [("quantized", 16), ("quantized", 4)]
    assert model.qualities == codec.QUALITIES and model.default_quality == 6
    # no measurements stored: the scale is spread over its two levels in order
    assert [model.fields_for(q)["quality"] for q in (1, 7, 8, 13)] == [1, 1, 2, 2]
    assert model.part("quantized") == (16, 4) and model.part("tile") is None
    assert isinstance(model.level(1), registry.Level)


@pytest.mark.parametrize("quality, level", [(1, 1), (13, 2), (None, 1)])
def test_images_round_trip_through_compress_and_decompress(model_path, quality, level):
    model, x = codec.load_model(model_path), images()
    blob = codec.compress(x, model=model, quality=quality)
    step = {1: 16, 2: 4}[level]
    restored = codec.decompress(blob, model=model)
    assert restored.shape == x.shape and restored.dtype == np.uint8
    assert np.abs(restored.astype(int) - x).max() <= step // 2
    assert container.unpack(blob).header["quality"] == level


def test_an_archive_file_of_a_plugin_kind_is_read_at_random(model_path, tmp_path):
    model, x = codec.load_model(model_path), images()
    path = tmp_path / "x.aec"
    path.write_bytes(codec.compress(x, model=model, quality=13))
    assert len(container.unpack(path.read_bytes()).chunks) == 3  # the level's chunks of 7
    whole = codec.decompress(path.read_bytes(), model=model_path)
    with codec.open(path, model=model_path) as archive:
        assert len(archive) == len(x)
        assert all(np.array_equal(archive[i], whole[i]) for i in (0, 8, 19, -1))
        assert np.array_equal(archive[5:16], whole[5:16])


def test_a_plugin_section_beside_the_built_in_ones_and_in_a_ladder(plugin, tmp_path):
    raw = modelfile.read(api.DEFAULT_MODEL)
    added = modelfile.amended(raw, quantized={"steps": [8]})
    model = api.Model(modelfile.loads(added))
    bundled = codec.load_model()
    assert [lv.kind for lv in model.levels] == [*(lv.kind for lv in bundled.levels), "quantized"]
    # a ladder of other levels drops the measurements of the old ones (they name its levels)
    meta = {k: v for k, v in model.meta.items() if k != "scale"}
    ladder = [["tile", 0], ["quantized", 0]]
    laddered = modelfile.amended(added, ladder=ladder, default=2, meta=meta)
    model = api.Model(modelfile.loads(laddered))
    assert [lv.kind for lv in model.levels] == ["tile", "quantized"]
    x = images(3)
    restored = codec.decompress(codec.compress(x, model=model, quality=13), model=model)
    assert np.abs(restored.astype(int) - x).max() <= 4
    # the built-in kinds are unchanged beside it: the lossless coder still codes
    exact = codec.compress(x, model=model, lossless=True)
    assert np.array_equal(codec.decompress(exact, model=model), x)


def test_without_the_plugin_its_model_files_are_refused(model_path):
    raw = model_path.read_bytes()
    registry.unregister(KIND.name)
    try:
        with pytest.raises(FormatError, match="missing fields or has unknown ones"):
            api.Model(modelfile.loads(raw))
        with pytest.raises(TypeError, match="quantized"):
            modelfile.dumps(name="q", meta={}, default=1, quantized=[4])
    finally:
        registry.register(KIND)


@pytest.mark.parametrize(
    "section",
    [{"steps": []}, {"steps": [0]}, {"steps": [4.0]}, {"steps": [4], "more": 1}, {"steps": [True]}],
)
def test_a_plugin_section_is_checked_as_untrusted_input(model_path, tmp_path, section):
    path = tmp_path / "bad.aecm"
    path.write_bytes(modelfile.amended(model_path.read_bytes(), quantized=section))
    with pytest.raises(FormatError, match="quantized section"):
        codec.load_model(path)


def test_a_plugin_field_of_the_wrong_type_is_refused_before_the_kind_reads_it(model_path):
    body = msgpack.unpackb(model_path.read_bytes()[4:])
    body.pop("fingerprint")
    body["quantized"] = [16, 4]
    body["fingerprint"] = modelfile.fingerprint(body)
    raw = modelfile.MAGIC + msgpack.packb(body)
    with pytest.raises(FormatError, match="field quantized is a list, not a dict"):
        api.Model(modelfile.loads(raw))


def test_kinds_and_fields_are_registered_once(plugin):
    with pytest.raises(ValueError, match="taken"):
        registry.register(KIND)
    with pytest.raises(ValueError, match="taken"):
        registry.register(registry.Kind("other", (registry.Field("pixel", since=5),), read_section))
    with pytest.raises(ValueError, match="taken"):
        registry.register(registry.Kind("meta", (registry.Field("meta", since=5),), read_section))
    bounded = registry.Kind("b", (registry.Field("b", since=5),), read_section, bounded=print)
    with pytest.raises(ValueError, match="within a bound"):
        registry.register(bounded)


def test_a_model_without_the_bounded_kind_refuses_lossless_for_writers_and_readers(model_path):
    model = codec.load_model(model_path)
    with pytest.raises(InputError, match="has no lossless coder"):
        codec.compress(images(2), model=model, lossless=True)
    lossless = codec.compress(images(2), lossless=True)
    with pytest.raises(FormatError, match="needs a lossless coder"):
        model.level_of(container.unpack(lossless).header)
