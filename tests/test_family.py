"""The autoencoder family: each objective against values computed by hand, and each kind trained a
few steps."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from codec import family


def test_each_objective_matches_a_value_computed_by_hand():
    assert float(family.mse(jnp.array([[0.0, 1.0]]), jnp.array([[1.0, 1.0]]))) == pytest.approx(0.5)
    assert float(family.l1_activity(jnp.array([[1.0, -2.0], [0.0, 3.0]]))) == pytest.approx(3.0)
    code = jnp.array([[0.7, 0.1], [0.3, 0.1]])  # mean activations 0.5 and 0.1
    # the second unit is on target: 0
    expected = 0.1 * math.log(0.1 / 0.5) + 0.9 * math.log(0.9 / 0.5)
    assert float(family.kl_sparsity(code, 0.1)) == pytest.approx(expected, rel=1e-5)
    kl = family.gaussian_kl(jnp.array([[1.0, 0.0]]), jnp.array([[0.0, math.log(2.0)]]))
    assert float(kl[0]) == pytest.approx(0.5 * (1.0 + (2.0 - math.log(2.0) - 1.0)), rel=1e-6)
    assert float(
        family.bernoulli_nll(jnp.array([[0.0, 0.0]]), jnp.array([[1.0, 0.0]]))[0]
    ) == pytest.approx(2 * math.log(2))
    assert float(family.gaussian_nll(jnp.zeros((1, 1)), jnp.ones((1, 1)), 0.0)[0]) == pytest.approx(
        0.5 + 0.5 * math.log(2 * math.pi)
    )
    # a linear encoder x @ w: its Jacobian is w.T everywhere
    w = jnp.array([[1.0, 2.0], [0.0, -1.0], [3.0, 0.5]])
    x = jnp.ones((4, 3))
    assert float(family.jacobian_frobenius(lambda v: v @ w, x)) == pytest.approx(
        float(jnp.sum(w**2))
    )


def test_the_discretized_logistic_is_a_code_length_of_uint8_pixels():
    def sigmoid(v):
        return 1 / (1 + math.exp(-v))

    # pixel 128/255 under mean 128/255, scale 0.01: the bin's mass is sigmoid(h) - sigmoid(-h), h =
    # 0.5/255/0.01
    h = 0.5 / 255 / 0.01
    mid = family.logistic_nll(
        jnp.array([[128 / 255]]), jnp.array([[math.log(0.01)]]), jnp.array([[128 / 255]])
    )
    assert float(mid[0]) == pytest.approx(-math.log(sigmoid(h) - sigmoid(-h)), rel=1e-4)
    # the end bins are open: pixel 0 takes all the mass below 0.5/255
    low = family.logistic_nll(jnp.array([[0.1]]), jnp.array([[math.log(0.05)]]), jnp.array([[0.0]]))
    assert float(low[0]) == pytest.approx(-math.log(sigmoid((0.5 / 255 - 0.1) / 0.05)), rel=1e-4)
    # over all 256 values the probabilities sum to one, whatever the mean and scale
    values = jnp.arange(256.0)[:, None] / 255
    for mean, log_scale in ((0.3, -3.0), (0.999, -6.0), (-0.2, 0.5)):
        p = jnp.exp(
            -family.logistic_nll(jnp.full((256, 1), mean), jnp.full((256, 1), log_scale), values)
        )
        assert float(jnp.sum(p)) == pytest.approx(1.0, abs=2e-3)


def test_the_umap_term_is_lower_for_near_neighbours_and_far_others():
    a = jnp.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    q_near = 1 / (1 + family.UMAP_A * 0.01**family.UMAP_B)  # each neighbour at distance 0.1
    one = family.umap_cross_entropy(a, a + jnp.array([0.1, 0.0]), negatives=1)
    assert float(one) > -math.log(q_near)  # the others, pulled in as negatives, cost too
    spread = family.umap_cross_entropy(a * 10, a * 10 + jnp.array([0.1, 0.0]), negatives=1)
    assert float(spread) < float(one) and float(spread) == pytest.approx(
        -math.log(q_near), rel=0.01
    )


def test_the_neighbour_graph_finds_each_points_nearest_others():
    x = np.array([[0.0], [1.0], [1.5], [10.0], [10.2], [30.0]]) * np.ones((1, 3))
    graph = family.neighbour_graph(x, k=1, dims=3)
    assert graph[:, 0].tolist() == [1, 2, 1, 4, 3, 4]


def test_the_denoising_input_is_noisy_and_masked_as_configured():
    x = jnp.full((200, 500), 0.5)
    noisy = family.corrupt(x, jax.random.key(0), 0.3, 0.0)
    assert float(jnp.std(noisy - x)) == pytest.approx(0.3, rel=0.02)
    masked = family.corrupt(x, jax.random.key(0), 0.0, 0.25)
    assert float(jnp.mean(masked == 0.0)) == pytest.approx(0.25, abs=0.01) and set(
        np.unique(masked).tolist()
    ) == {0.0, 0.5}


@pytest.mark.parametrize(
    "kind, options",
    [
        ("plain", {}),
        ("linear", {}),
        ("denoising", {"noise": 0.3, "mask": 0.1}),
        ("sparse", {"l1": 0.01, "beta": 0.1}),
        ("contractive", {"contraction": 0.01}),
        ("variational", {}),
        ("variational", {"decoder": "gaussian"}),
        ("variational", {"decoder": "logistic"}),
        pytest.param(  # 7 s on 2 cores: the convolutional kind compiles a larger step
            "denoising",
            {"arch": "conv", "image_shape": (28, 28), "noise": 0.2, "blind": True},
            marks=pytest.mark.slow,
        ),
        pytest.param(  # 5 s: the same compile; the conv architecture's shapes are fast below
            "plain", {"arch": "conv", "image_shape": (28, 28)}, marks=pytest.mark.slow
        ),
    ],
)
def test_a_few_steps_of_each_kind_lower_its_loss_through_the_shared_engine(
    kind, options, test_images
):
    cfg = family.FamilyConfig(
        kind=kind, widths=(784, 8, 8) if options.get("arch") == "conv" else (784, 32, 4), **options
    )
    x = family.pixels(test_images[:128])
    before = float(family.loss_fn(family.build(cfg), x, jax.random.key(1))[0])
    model = family.train(
        test_images, cfg, steps=60, batch_size=32, learning_rate=3e-3, log=lambda s: None
    )
    after = float(family.loss_fn(model, x, jax.random.key(1))[0])
    assert np.isfinite(after) and after < 0.9 * before


def test_the_linear_kind_learns_the_principal_subspace():
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(16, 2)))[0]  # two directions of a 4x4 "image"
    x = 128 + (rng.normal(size=(4000, 2)) * [40, 20]) @ basis.T + rng.normal(size=(4000, 16)) * 2
    images = np.clip(np.round(x), 0, 255).astype(np.uint8).reshape(-1, 4, 4)
    model = family.train(
        images,
        family.FamilyConfig(kind="linear", widths=(16, 2)),
        steps=3000,
        batch_size=128,
        learning_rate=3e-2,
        log=lambda s: None,
    )
    centred = family.pixels(images) - family.pixels(images).mean(0)
    pca = np.linalg.svd(centred, full_matrices=False)[2][:2].T  # (16, 2)
    # the decoder's columns span the code's image
    learned = np.linalg.qr(np.asarray(model.decoder[0].kernel[...]).T)[0]
    cosines = np.linalg.svd(pca.T @ learned, compute_uv=False)
    assert np.degrees(np.arccos(np.clip(cosines.min(), -1, 1))) < 5


def test_a_config_out_of_range_is_refused():
    for bad in (
        {"kind": "teapot"},
        {"widths": (784,)},
        {"decoder": "poisson"},
        {"mask": 1.0},
        {"rho": 0.0},
        {"arch": "conv"},
        {"arch": "conv", "image_shape": (27, 27)},
        {"neighbours": -1.0},
        {"arch": "conv", "image_shape": (28, 28), "kind": "variational"},
    ):
        with pytest.raises(ValueError):
            family.FamilyConfig(**bad)
    with pytest.raises(ValueError, match="do not fit"):
        family.train(np.zeros((4, 5, 5), np.uint8), family.FamilyConfig(widths=(784, 2)), steps=1)


@pytest.mark.slow  # 8 s on 2 cores: it trains
def test_a_model_file_restores_the_same_function_and_refuses_damage(tmp_path, test_images):
    import codec

    x = family.pixels(test_images[:5])
    for kind, options in (
        ("sparse", {}),
        ("variational", {}),
        ("plain", {"arch": "conv", "image_shape": (28, 28)}),
    ):
        widths = (784, 4, 4) if options else (784, 16, 2)
        model = family.train(
            test_images,
            family.FamilyConfig(kind=kind, widths=widths, **options),
            steps=5,
            log=lambda s: None,
        )
        family.save(model, tmp_path / f"{kind}.aecf", name=kind, meta={"command": "test"})
        again, body = family.load(tmp_path / f"{kind}.aecf")
        assert (
            body["name"] == kind and body["meta"] == {"command": "test"} and again.cfg == model.cfg
        )
        code = (lambda m: m.encode(x)[0]) if kind == "variational" else (lambda m: m.encode(x))
        once = np.asarray(again.decode(code(again)))
        assert np.array_equal(
            once, np.asarray(family.load(tmp_path / f"{kind}.aecf")[0].decode(code(again)))
        )
        # its weights kept in float16
        assert np.allclose(once, np.asarray(model.decode(code(model))), atol=0.02)
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

    assert cli.FAMILY_KINDS == (*family.KINDS, "convolutional")
    np.save(tmp_path / "items.npy", test_images)
    argv = [
        "train",
        "--kind",
        "variational",
        "--data",
        str(tmp_path / "items.npy"),
        "--steps",
        "5",
        "--widths",
        "784,16,2",
        "--workdir",
        str(tmp_path / "w"),
        "--out",
        str(tmp_path / "vae.aecf"),
        "-q",
    ]
    assert cli.main(argv) == 0
    model, body = family.load(tmp_path / "vae.aecf")
    assert (
        model.cfg.kind == "variational"
        and model.cfg.widths == (784, 16, 2)
        and "--kind variational" in body["meta"]["command"]
    )
    assert cli.main([*argv[:-3], "--rho", "1.5", "--out", str(tmp_path / "x.aecf"), "-q"]) == 2
    assert "rho in (0, 1)" in capsys.readouterr().err and not (tmp_path / "x.aecf").exists()


@pytest.mark.slow  # 4-7 s: the fast subset stays under 4 minutes
def test_embed_denoise_and_sample_write_a_picture_and_its_array(tmp_path, test_images, capsys):
    from PIL import Image

    from codec import cli

    np.save(tmp_path / "items.npy", test_images[:100])
    np.save(tmp_path / "labels.npy", np.arange(100) % 10)
    for kind, widths in (("variational", "784,16,2"), ("denoising", "784,16,8")):
        assert (
            cli.main(
                [
                    "train",
                    "--kind",
                    kind,
                    "--data",
                    str(tmp_path / "items.npy"),
                    "--steps",
                    "5",
                    "--widths",
                    widths,
                    "--workdir",
                    str(tmp_path / "w"),
                    "--out",
                    str(tmp_path / f"{kind}.aecf"),
                    "-q",
                ]
            )
            == 0
        )
    vae, dn = str(tmp_path / "variational.aecf"), str(tmp_path / "denoising.aecf")
    assert (
        cli.main(
            [
                "embed",
                str(tmp_path / "items.npy"),
                "--model",
                vae,
                "--out",
                str(tmp_path / "map.png"),
                "--labels",
                str(tmp_path / "labels.npy"),
            ]
        )
        == 0
    )
    assert (
        np.load(tmp_path / "map.npy").shape == (100, 2)
        and Image.open(tmp_path / "map.png").format == "PNG"
    )
    assert cli.main(["sample", "--n", "12", "--model", vae, "--out", str(tmp_path / "s.png")]) == 0
    assert np.load(tmp_path / "s.npy").shape == (12, 28, 28) and Image.open(
        tmp_path / "s.png"
    ).size == (8 * 28, 2 * 28)
    assert (
        cli.main(
            [
                "denoise",
                str(tmp_path / "items.npy"),
                "--model",
                dn,
                "--out",
                str(tmp_path / "clean.png"),
            ]
        )
        == 0
    )
    clean = np.load(tmp_path / "clean.npy")
    assert clean.shape == (100, 28, 28) and clean.dtype == np.uint8
    assert cli.main(["sample", "--model", dn, "--out", str(tmp_path / "x.png")]) == 2
    assert (
        "sampling needs a variational model" in capsys.readouterr().err
        and not (tmp_path / "x.png").exists()
    )
    model, _ = family.load(vae)
    line = family.interpolate(model, test_images[0], test_images[1], steps=5)
    assert line.shape == (5, 28, 28) and line.dtype == np.uint8


@pytest.mark.slow  # 9 s on 2 cores: it trains
def test_anomaly_scores_are_code_lengths_minus_a_generic_coders_and_flag_unlike_images(test_images):
    model = family.train(
        test_images[:300],
        family.FamilyConfig(kind="variational", widths=(784, 32, 4), decoder="logistic"),
        steps=200,
        learning_rate=3e-3,
        log=lambda s: None,
    )
    own = family.scores(model, test_images[:50])
    assert np.allclose(
        own,
        family.code_length_bits(model, test_images[:50]) - family.generic_bits(test_images[:50]),
    )
    inverted = 255 - test_images[50:100]  # as complex as garments (to JPEG XL), unlike them
    assert np.median(family.scores(model, inverted)) > np.median(own)
    # a blank image is simpler than any garment: short under the model, shorter still under JPEG XL
    blank = np.zeros((1, 28, 28), np.uint8)
    assert family.code_length_bits(model, blank)[0] < np.median(
        family.code_length_bits(model, test_images[:50])
    )
    quantiles = family.score_quantiles(model, test_images[:300])
    assert len(quantiles) == 1001 and quantiles == sorted(quantiles)
    assert family.threshold(quantiles, 50) == pytest.approx(
        float(np.median(family.scores(model, test_images[:300]))), rel=1e-6
    )
    found = family.anomalies(
        np.concatenate([test_images[:50], inverted]), model, percentile=99, quantiles=quantiles
    )
    assert found.flags[50:].all() and found.flags[:50].mean() < 0.2
    with pytest.raises(ValueError, match="variational"):
        family.code_length_bits(family.build(family.FamilyConfig(widths=(784, 2))), test_images[:2])
    with pytest.raises(ValueError, match="logistic"):
        family.scores(
            family.build(family.FamilyConfig(kind="variational", widths=(784, 2))), test_images[:2]
        )
    with pytest.raises(ValueError, match="percentile"):
        family.threshold(quantiles, 101)


@pytest.mark.slow  # 4-7 s: the fast subset stays under 4 minutes
def test_the_importance_weighted_bound_is_tighter_than_the_elbo(test_images):
    model = family.train(
        test_images[:300],
        family.FamilyConfig(kind="variational", widths=(784, 32, 4), decoder="logistic"),
        steps=100,
        learning_rate=3e-3,
        log=lambda s: None,
    )
    elbo, iwae = family.bounds_nats(model, test_images[:40], samples=64)
    assert (
        elbo.shape == iwae.shape == (40,)
        and (iwae <= elbo + 1e-3).all()
        and iwae.mean() < elbo.mean()
    )
    # the ELBO's mean over samples is near the code length at the code's mean (the code's noise is
    # small)
    assert np.median(
        np.abs(elbo / math.log(2) - family.code_length_bits(model, test_images[:40]))
    ) < 0.05 * np.median(iwae / math.log(2))


def test_a_two_d_map_with_the_neighbour_term_trains_and_embeds(test_images):
    model = family.train(
        test_images,
        family.FamilyConfig(widths=(784, 32, 2), neighbours=1.0),
        steps=30,
        batch_size=64,
        log=lambda s: None,
    )
    points = family.embed(model, test_images)
    assert points.shape == (len(test_images), 2) and np.isfinite(points).all()


@pytest.mark.slow  # 4-7 s: the fast subset stays under 4 minutes
def test_the_score_command_writes_scores_a_threshold_and_flags(tmp_path, test_images, capsys):
    import json

    from codec import cli

    np.save(tmp_path / "train.npy", test_images[:300])
    assert (
        cli.main(
            [
                "train",
                "--kind",
                "variational",
                "--decoder",
                "logistic",
                "--data",
                str(tmp_path / "train.npy"),
                "--steps",
                "200",
                "--widths",
                "784,32,4",
                "--learning-rate",
                "3e-3",
                "--out",
                str(tmp_path / "scorer.aecf"),
                "-q",
            ]
        )
        == 0
    )
    capsys.readouterr()
    mixed = np.concatenate([test_images[250:290], 255 - test_images[290:300]])
    np.save(tmp_path / "mixed.npy", mixed)
    assert (
        cli.main(
            [
                "score",
                str(tmp_path / "mixed.npy"),
                "--model",
                str(tmp_path / "scorer.aecf"),
                "--percentile",
                "95",
                "--out",
                str(tmp_path / "scores.png"),
            ]
        )
        == 0
    )
    summary = json.loads(capsys.readouterr().out)
    rows = (tmp_path / "scores.csv").read_text().splitlines()
    assert rows[0] == "index,file,score_bits,anomalous" and len(rows) == 51
    flags = [int(r.split(",")[3]) for r in rows[1:]]
    assert (
        all(flags[40:])
        and sum(flags[:40]) <= 8
        and summary["anomalous"] == sum(flags)
        and summary["percentile"] == 95
    )
    assert (tmp_path / "scores.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    vae = tmp_path / "vae.aecf"
    family.save(
        family.build(family.FamilyConfig(kind="variational", widths=(784, 2))), vae, name="vae"
    )
    assert (
        cli.main(
            [
                "score",
                str(tmp_path / "mixed.npy"),
                "--model",
                str(vae),
                "--out",
                str(tmp_path / "x.png"),
            ]
        )
        == 2
    )
    assert "not an anomaly scorer" in capsys.readouterr().err and not (tmp_path / "x.png").exists()
    np.save(tmp_path / "small.npy", np.zeros((3, 8, 8), np.uint8))
    assert (
        cli.main(
            [
                "score",
                str(tmp_path / "small.npy"),
                "--model",
                str(tmp_path / "scorer.aecf"),
                "--out",
                str(tmp_path / "x.png"),
            ]
        )
        == 2
    )
    assert "takes 784" in capsys.readouterr().err


@pytest.mark.slow  # 4-7 s: the fast subset stays under 4 minutes
def test_the_package_functions_use_the_bundled_fashion_models(test_images):
    import codec

    points = codec.embed(test_images[:20])
    assert points.shape == (20, 2) and np.isfinite(points).all()
    noisy = np.clip(
        test_images[:20] + np.random.default_rng(0).normal(0, 0.2 * 255, test_images[:20].shape),
        0,
        255,
    ).astype(np.uint8)
    clean = codec.denoise(noisy)

    def error(a):
        return np.mean((a.astype(np.float64) - test_images[:20]) ** 2)

    # clipped uint8 noise: +5 dB and more
    assert (
        clean.shape == noisy.shape and clean.dtype == np.uint8 and error(clean) < error(noisy) / 3
    )
    assert codec.sample(5).shape == (5, 28, 28)
    found = codec.anomaly_scores(np.concatenate([test_images[:40], 255 - test_images[40:50]]))
    assert found.flags[40:].all() and found.flags[:40].sum() <= 2 and found.percentile == 99.0
    with pytest.raises(codec.InputError, match="takes 784 values"):
        codec.embed(np.zeros((3, 8, 8), np.uint8))


def test_the_family_commands_default_to_the_bundled_models(tmp_path, test_images, capsys):
    from codec import cli

    np.save(tmp_path / "items.npy", test_images[:30])
    assert cli.main(["embed", str(tmp_path / "items.npy"), "--out", str(tmp_path / "map.png")]) == 0
    assert np.load(tmp_path / "map.npy").shape == (30, 2)
    assert cli.main(["score", str(tmp_path / "items.npy"), "--out", str(tmp_path / "s.png")]) == 0
    assert len((tmp_path / "s.csv").read_text().splitlines()) == 31
    assert (
        cli.main(
            [
                "score",
                str(tmp_path / "items.npy"),
                "--out",
                str(tmp_path / "t.png"),
                "--percentile",
                "-1",
            ]
        )
        == 2
    )
    assert "between 0 and 100" in capsys.readouterr().err and not (tmp_path / "t.png").exists()
