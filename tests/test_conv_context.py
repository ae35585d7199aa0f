"""The convolutional levels' context model (``conv_context``): two passes coded exactly, the same
bytes and pixels on every machine, batch size and thread count, stored in format 6 only."""

import hashlib
import os
import subprocess
import sys

import jax.numpy as jnp
import msgpack
import numpy as np
import pytest

from bitstream.errors import FormatError
from codec.api import Model
from codec.levels import conv, conv_context, modelfile
from codec.training import conv_model

CONFIG = {"channels": 3, "n": 8, "m": 8, "h": 8, "z": 4, "lambdas": [0.002, 0.02]}


def seeded_params(context: str | None, seed: int = 0) -> dict:
    """Parameters drawn from a seeded generator (numpy's draws are the same on every machine), so
    the pinned digests below depend on nothing but the integer coder."""
    rng = np.random.default_rng(seed)
    specs = conv.layer_specs(3, 8, 8, 8, 4)

    def net(spec):
        return [
            (
                rng.normal(0, 0.7 / np.sqrt(k * k * c_in), (k, k, c_in, conv.up_channels(kind, c))),
                rng.normal(0, 0.05, conv.up_channels(kind, c)),
            )
            for kind, k, c_in, c, _ in spec
        ]

    params = {"config": dict(CONFIG), **{name: net(spec) for name, spec in specs.items()}}
    params["log_gain"] = np.log(np.array([[1.0] * 8, [4.0] * 8]))
    params["log_inv_gain"] = -params["log_gain"]
    params["log_z_scale"] = np.zeros(4)
    if context is not None:
        params["context"] = {"mode": context, "layers": net(conv_context.layer_specs(8, 8))}
    return params


def model_of(params: dict) -> Model:
    return Model(modelfile.loads(conv_model.model_file(params, name="t", meta={})))


@pytest.fixture(scope="module")
def pictures(test_images):
    """Four 40x52 colour pictures made of garments (odd sizes: padding and crops are exercised)."""
    tiles = [np.stack([test_images[i + j] for j in range(3)], -1) for i in range(0, 24, 3)]
    rows = [np.concatenate(tiles[k : k + 2], axis=1) for k in range(0, 8, 2)]
    return np.stack([np.pad(r, ((0, 12), (0, 0), (0, 0)), mode="reflect")[:40, :52] for r in rows])


def digest(level, x) -> str:
    data = level.encode(x)
    return hashlib.sha256(data + level.decode(data, len(x), x.shape[1:]).tobytes()).hexdigest()[:16]


# sha256 of the stream and the decoded pixels of ``pictures`` at level 1 (``digest``)
PINNED = {"checkerboard": "5b3f82cbcbddadd1", "channels": "ec868e6fea5a85f5"}


@pytest.mark.parametrize("mode", conv_context.MODES)
def test_a_context_model_codes_the_pinned_bytes_and_pixels(mode, pictures):
    level = model_of(seeded_params(mode)).levels[1]
    assert digest(level, pictures) == PINNED[mode]


@pytest.mark.slow
@pytest.mark.parametrize("mode", conv_context.MODES)
def test_a_context_model_decodes_the_same_pixels_in_any_batch_and_thread_count(
    mode, pictures, tmp_path
):
    level = model_of(seeded_params(mode)).levels[1]
    together = level.decode(level.encode(pictures), 4, pictures.shape[1:])
    for i, x in enumerate(pictures):
        alone = level.decode(level.encode(x[None]), 1, x.shape)[0]
        assert np.array_equal(alone, together[i])
    np.save(tmp_path / "x.npy", pictures)
    script = (
        "import sys, numpy as np; sys.path.insert(0, 'tests')\n"
        "from test_conv_context import seeded_params, model_of, digest\n"
        f"x = np.load({str(tmp_path / 'x.npy')!r})\n"
        f"print(digest(model_of(seeded_params({mode!r})).levels[1], x))\n"
    )
    for threads in ("1", "2"):
        env = dict(os.environ, OPENBLAS_NUM_THREADS=threads, OMP_NUM_THREADS=threads)
        out = subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
        )
        assert out.stdout.strip() == digest(level, pictures), out.stderr


@pytest.mark.parametrize("mode", conv_context.MODES)
def test_pass_one_is_coded_as_without_a_context_and_pass_two_from_it(mode, pictures):
    plain = model_of(seeded_params(None)).levels[1]
    with_context = model_of(seeded_params(mode)).levels[1]
    (z0, _), (s0, index0) = plain.symbols(pictures)
    (z1, _), (s1, index1) = with_context.symbols(pictures)
    first = with_context.transform.first_half(s1.shape)
    assert np.array_equal(z0, z1)
    assert np.array_equal(s0[first], s1[first]) and np.array_equal(index0[first], index1[first])
    assert not np.array_equal(index0[~first], index1[~first])  # the context moved pass 2's tables


def test_a_context_added_to_a_model_starts_as_the_same_codec(pictures):
    """Its last layer is zero: the same symbols and tables, so the same pixels and bits."""
    params = conv_model.export(conv_model.from_params(seeded_params(None), context="channels"))
    assert not np.any(params["context"]["layers"][-1][0])
    before, after = model_of(seeded_params(None)).levels[1], model_of(params).levels[1]
    assert before.ideal_bits(pictures) == after.ideal_bits(pictures)
    back = after.decode(after.encode(pictures), 4, pictures.shape[1:])
    assert np.array_equal(back, before.decode(before.encode(pictures), 4, pictures.shape[1:]))


@pytest.mark.parametrize(
    "mode",
    ["checkerboard", pytest.param("channels", marks=pytest.mark.slow)],  # 5 s each
)
def test_the_float_twin_counts_the_bits_the_integer_coder_codes(mode, pictures):
    params = seeded_params(mode)
    model = conv_model.from_params(params)
    level = model_of(params).levels[1]
    x = np.pad(pictures, ((0, 0), (0, 24), (0, 12), (0, 0)), mode="edge")  # what the coder codes
    _, bits, _ = conv_model.rd_terms(model, jnp.asarray(x), jnp.array([1] * 4))
    assert abs(level.ideal_bits(pictures) - float(bits.sum())) <= 0.03 * float(bits.sum())


def test_a_model_with_a_context_is_format_6_and_one_without_stays_format_5():
    assert (
        modelfile.loads(conv_model.model_file(seeded_params(None), name="t", meta={}))["format"]
        == 5
    )
    body = modelfile.loads(conv_model.model_file(seeded_params("channels"), name="t", meta={}))
    assert body["format"] == 6 and body[conv_context.FIELD]["mode"] == "channels"


def _rewritten(raw: bytes, change) -> bytes:
    body = msgpack.unpackb(raw[4:], raw=False)
    body.pop("fingerprint")
    change(body)
    body["fingerprint"] = modelfile.fingerprint(body)
    return modelfile.MAGIC + msgpack.packb(body, use_bin_type=True)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda b: b.update(format=5), "unknown ones"),
        (lambda b: b["conv_context"].update(mode="spiral"), "mode 'spiral' is not one of"),
        (lambda b: b["conv_context"]["nets"].pop(), "not 3 layers"),
        (lambda b: b["conv_context"].pop("nets"), "malformed"),
        (lambda b: b["conv_context"]["nets"].reverse(), "does not match the architecture"),
    ],
)
def test_a_damaged_or_misplaced_context_is_refused(change, message):
    raw = conv_model.model_file(seeded_params("checkerboard"), name="t", meta={})
    with pytest.raises(FormatError, match=message):
        Model(modelfile.loads(_rewritten(raw, change)))


def test_refined_symbols_with_a_context_never_make_a_file_larger(pictures):
    level = model_of(seeded_params("checkerboard")).levels[1]
    for x in pictures[:2]:
        plain, refined = level.encode(x[None]), level.with_effort(1).encode(x[None])
        assert len(refined) <= len(plain)
        assert level.decode(refined, 1, x.shape)[0].shape == x.shape


@pytest.mark.slow
def test_a_few_training_steps_with_a_context_train_its_network(test_images):
    colour = [np.stack([test_images[i]] * 3, -1) for i in range(20)]
    cfg = conv_model.ConvConfig(**{**CONFIG, "lambdas": (0.002, 0.02)}, context="checkerboard")
    model = conv_model.train(
        colour, cfg=cfg, steps=12, batch_size=4, crop=32, learning_rate=2e-3, log=lambda s: None
    )
    params = conv_model.export(model)
    assert np.any(params["context"]["layers"][-1][0])  # it learned from zero
    level = model_of(params).levels[0]
    x = colour[0][None]
    assert level.decode(level.encode(x), 1, x.shape[1:]).shape == x.shape


def test_training_refuses_context_only_without_a_context_and_a_second_mode(tmp_path, test_images):
    from codec.errors import UsageError
    from codec.training import recipes

    colour = [np.stack([test_images[i]] * 3, -1) for i in range(4)]
    options = recipes.TrainOptions(
        kind="conv", from_scratch=True, context_only=True, conv_context="none", steps=1
    )
    with pytest.raises(UsageError, match="--context-only trains the context model"):
        recipes.fit_conv(options, colour, colour)
    path = tmp_path / "m.aecm"
    path.write_bytes(conv_model.model_file(seeded_params("checkerboard"), name="t", meta={}))
    options = recipes.TrainOptions(kind="conv", init=path, conv_context="channels", steps=1)
    with pytest.raises(UsageError, match="starts with a checkerboard context"):
        recipes.fit_conv(options, colour, colour)


def test_training_adds_the_measured_context_unless_told_none_and_keeps_a_stored_one():
    from codec.training import recipes

    default = recipes.ConvTraining.context
    assert default in conv_context.MODES
    assert recipes.context_mode(recipes.TrainOptions(), None) == default
    assert recipes.context_mode(recipes.TrainOptions(conv_context="none"), None) is None
    stored = seeded_params("channels")
    assert recipes.context_mode(recipes.TrainOptions(), stored) == "channels"
