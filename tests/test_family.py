"""The autoencoder family: each objective against values computed by hand, and each kind trained a few steps."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from codec import family


def test_each_objective_matches_a_value_computed_by_hand():
    assert float(family.mse(jnp.array([[0.0, 1.0]]), jnp.array([[1.0, 1.0]]))) == pytest.approx(0.5)
    assert float(family.l1_activity(jnp.array([[1.0, -2.0], [0.0, 3.0]]))) == pytest.approx(3.0)
    code = jnp.array([[0.7, 0.1], [0.3, 0.1]])  # mean activations 0.5 and 0.1
    expected = 0.1 * math.log(0.1 / 0.5) + 0.9 * math.log(0.9 / 0.5)  # the second unit is on target: 0
    assert float(family.kl_sparsity(code, 0.1)) == pytest.approx(expected, rel=1e-5)
    kl = family.gaussian_kl(jnp.array([[1.0, 0.0]]), jnp.array([[0.0, math.log(2.0)]]))
    assert float(kl[0]) == pytest.approx(0.5 * (1.0 + (2.0 - math.log(2.0) - 1.0)), rel=1e-6)
    assert float(family.bernoulli_nll(jnp.array([[0.0, 0.0]]), jnp.array([[1.0, 0.0]]))[0]) == pytest.approx(2 * math.log(2))
    assert float(family.gaussian_nll(jnp.zeros((1, 1)), jnp.ones((1, 1)), 0.0)[0]) == pytest.approx(0.5 + 0.5 * math.log(2 * math.pi))
    w = jnp.array([[1.0, 2.0], [0.0, -1.0], [3.0, 0.5]])  # a linear encoder x @ w: its Jacobian is w.T everywhere
    x = jnp.ones((4, 3))
    assert float(family.jacobian_frobenius(lambda v: v @ w, x)) == pytest.approx(float(jnp.sum(w**2)))


def test_the_denoising_input_is_noisy_and_masked_as_configured():
    x = jnp.full((200, 500), 0.5)
    noisy = family.corrupt(x, jax.random.key(0), 0.3, 0.0)
    assert float(jnp.std(noisy - x)) == pytest.approx(0.3, rel=0.02)
    masked = family.corrupt(x, jax.random.key(0), 0.0, 0.25)
    assert float(jnp.mean(masked == 0.0)) == pytest.approx(0.25, abs=0.01) and set(np.unique(masked).tolist()) == {0.0, 0.5}


@pytest.mark.parametrize("kind, options", [("plain", {}), ("linear", {}), ("denoising", {"noise": 0.3, "mask": 0.1}),
                                           ("sparse", {"l1": 0.01, "beta": 0.1}), ("contractive", {"contraction": 0.01}),
                                           ("variational", {}), ("variational", {"decoder": "gaussian"})])
def test_a_few_steps_of_each_kind_lower_its_loss_through_the_shared_engine(kind, options, test_images):
    cfg = family.FamilyConfig(kind=kind, widths=(784, 32, 4), **options)
    x = family.pixels(test_images[:128])
    before = float(family.loss_fn(family.DenseAE(cfg, rngs=nnx.Rngs(0)), x, jax.random.key(1))[0])
    model = family.train(test_images, cfg, steps=60, batch_size=32, learning_rate=3e-3, log=lambda s: None)
    after = float(family.loss_fn(model, x, jax.random.key(1))[0])
    assert np.isfinite(after) and after < 0.9 * before


def test_the_linear_kind_learns_the_principal_subspace():
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(16, 2)))[0]  # two directions of a 4x4 "image"
    x = 128 + (rng.normal(size=(4000, 2)) * [40, 20]) @ basis.T + rng.normal(size=(4000, 16)) * 2
    images = np.clip(np.round(x), 0, 255).astype(np.uint8).reshape(-1, 4, 4)
    model = family.train(images, family.FamilyConfig(kind="linear", widths=(16, 2)), steps=3000, batch_size=128,
                         learning_rate=3e-2, log=lambda s: None)
    centred = family.pixels(images) - family.pixels(images).mean(0)
    pca = np.linalg.svd(centred, full_matrices=False)[2][:2].T  # (16, 2)
    learned = np.linalg.qr(np.asarray(model.decoder[0].kernel[...]).T)[0]  # the decoder's columns span the code's image
    cosines = np.linalg.svd(pca.T @ learned, compute_uv=False)
    assert np.degrees(np.arccos(np.clip(cosines.min(), -1, 1))) < 5


def test_a_config_out_of_range_is_refused():
    for bad in ({"kind": "teapot"}, {"widths": (784,)}, {"decoder": "poisson"}, {"mask": 1.0}, {"rho": 0.0}):
        with pytest.raises(ValueError):
            family.FamilyConfig(**bad)
    with pytest.raises(ValueError, match="do not fit"):
        family.train(np.zeros((4, 5, 5), np.uint8), family.FamilyConfig(widths=(784, 2)), steps=1)


def test_a_model_file_restores_the_same_function_and_refuses_damage(tmp_path, test_images):
    import codec

    x = family.pixels(test_images[:5])
    for kind in ("sparse", "variational"):
        model = family.train(test_images, family.FamilyConfig(kind=kind, widths=(784, 16, 2)), steps=5, log=lambda s: None)
        family.save(model, tmp_path / f"{kind}.aecf", name=kind, meta={"command": "test"})
        again, body = family.load(tmp_path / f"{kind}.aecf")
        assert body["name"] == kind and body["meta"] == {"command": "test"} and again.cfg == model.cfg
        code = (lambda m: m.encode(x)[0]) if kind == "variational" else (lambda m: m.encode(x))
        assert np.array_equal(np.asarray(again.decode(code(again))), np.asarray(model.decode(code(model))))
    raw = (tmp_path / "sparse.aecf").read_bytes()
    with pytest.raises(codec.TruncatedError):
        family.loads(raw[:-3])
    flipped = bytearray(raw)
    flipped[len(raw) // 2] ^= 1
    with pytest.raises(codec.FormatError, match="fingerprint|damaged|array|shape"):
        family.loads(bytes(flipped))
    with pytest.raises(codec.FormatError, match="bad magic"):
        family.loads(b"AECM" + raw[4:])


def test_the_command_line_trains_each_kind_into_a_model_file(tmp_path, test_images, capsys):
    from codec import cli

    assert cli.FAMILY_KINDS == family.KINDS
    np.save(tmp_path / "items.npy", test_images)
    argv = ["train", "--kind", "variational", "--data", str(tmp_path / "items.npy"), "--steps", "5", "--widths", "784,16,2",
            "--workdir", str(tmp_path / "w"), "--out", str(tmp_path / "vae.aecf"), "-q"]
    assert cli.main(argv) == 0
    model, body = family.load(tmp_path / "vae.aecf")
    assert model.cfg.kind == "variational" and model.cfg.widths == (784, 16, 2) and "--kind variational" in body["meta"]["command"]
    assert cli.main([*argv[:-3], "--rho", "1.5", "--out", str(tmp_path / "x.aecf"), "-q"]) == 2
    assert "rho in (0, 1)" in capsys.readouterr().err and not (tmp_path / "x.aecf").exists()


def test_embed_denoise_and_sample_write_a_picture_and_its_array(tmp_path, test_images, capsys):
    from PIL import Image

    from codec import cli

    np.save(tmp_path / "items.npy", test_images[:100])
    np.save(tmp_path / "labels.npy", np.arange(100) % 10)
    for kind, widths in (("variational", "784,16,2"), ("denoising", "784,16,8")):
        assert cli.main(["train", "--kind", kind, "--data", str(tmp_path / "items.npy"), "--steps", "5", "--widths", widths,
                         "--workdir", str(tmp_path / "w"), "--out", str(tmp_path / f"{kind}.aecf"), "-q"]) == 0
    vae, dn = str(tmp_path / "variational.aecf"), str(tmp_path / "denoising.aecf")
    assert cli.main(["embed", str(tmp_path / "items.npy"), "--model", vae, "--out", str(tmp_path / "map.png"),
                     "--labels", str(tmp_path / "labels.npy")]) == 0
    assert np.load(tmp_path / "map.npy").shape == (100, 2) and Image.open(tmp_path / "map.png").format == "PNG"
    assert cli.main(["sample", "--n", "12", "--model", vae, "--out", str(tmp_path / "s.png")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (12, 28, 28) and Image.open(tmp_path / "s.png").size == (8 * 28, 2 * 28)
    assert cli.main(["denoise", str(tmp_path / "items.npy"), "--model", dn, "--out", str(tmp_path / "clean.png")]) == 0
    clean = np.load(tmp_path / "clean.npy")
    assert clean.shape == (100, 28, 28) and clean.dtype == np.uint8
    assert cli.main(["sample", "--model", dn, "--out", str(tmp_path / "x.png")]) == 2
    assert "sampling needs a variational model" in capsys.readouterr().err and not (tmp_path / "x.png").exists()
    model, _ = family.load(vae)
    line = family.interpolate(model, test_images[0], test_images[1], steps=5)
    assert line.shape == (5, 28, 28) and line.dtype == np.uint8


def test_anomaly_scores_are_code_lengths_higher_for_images_unlike_the_training_ones(test_images):
    model = family.train(test_images[:200], family.FamilyConfig(kind="variational", widths=(784, 32, 4)), steps=150,
                         learning_rate=3e-3, log=lambda s: None)
    own = family.anomaly_scores(model, test_images[:50])
    noise = np.random.default_rng(0).integers(0, 256, (50, 28, 28), dtype=np.uint8)
    assert np.median(family.anomaly_scores(model, noise)) > np.median(own)
    assert np.allclose(family.anomaly_scores(model, test_images[:3], complexity=True),
                       family.code_length_bits(model, test_images[:3]) - family.generic_bits(test_images[:3]))
    with pytest.raises(ValueError, match="variational"):
        family.anomaly_scores(family.DenseAE(family.FamilyConfig(widths=(784, 2)), rngs=nnx.Rngs(0)), test_images[:2])
