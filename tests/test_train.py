import jax
import numpy as np
import pytest
from flax import nnx
from PIL import Image

import codec
from codec import cli
from codec.io import data
from codec.levels.tile_config import ModelConfig
from codec.training import tile as train
from codec.training.tile_net import Codec, init_from_data

SMALL = ModelConfig(hidden=8, clusters=2, lambdas=(1.0, 10.0), context_groups=3, context_hidden=8)


def test_train_step_compiles_once_across_steps():
    images = data.fashion_mnist("train")[:512].reshape(512, -1)
    model = Codec(SMALL, rngs=nnx.Rngs(0))
    init_from_data(model, images / 255.0)
    graphdef, state = nnx.split(model)
    tx = train.make_optimizer(train.TrainConfig(), 100)
    opt_state = tx.init(state)
    step = train.make_train_step(graphdef, tx)
    losses = []
    for i in range(4):
        batch = train.to_input(images[i * 128 : (i + 1) * 128])
        state, opt_state, metrics = step(state, opt_state, batch, jax.random.key(i))
        losses.append(float(metrics["loss"]))
    assert step._cache_size() == 1
    assert all(np.isfinite(losses))


def test_training_smoke_exports_a_working_model(tiny, test_images):
    assert tiny.name == "tiny" and tiny.qualities == codec.QUALITIES and len(tiny.levels) == 3
    restored = codec.decompress(codec.compress(test_images[:20], quality=2, model=tiny), model=tiny)
    assert restored.shape == (20, 28, 28)
    mse = np.mean((restored.astype(float) - test_images[:20]) ** 2)
    assert 10 * np.log10(255**2 / mse) > 15  # a PCA start already reconstructs recognisably


@pytest.mark.slow  # training: over 5 s on 2 cores
def test_training_is_reproducible_and_resumes(tmp_path):
    images = data.fashion_mnist("train")[:700]
    cfg = train.TrainConfig(epochs=1, batch_size=64, val_size=100, warmup_steps=2)
    logs = []
    a, _ = train.train_and_evaluate(
        images,
        tmp_path / "a",
        model_config=SMALL,
        train_config=cfg,
        progress=False,
        log=logs.append,
    )
    b, _ = train.train_and_evaluate(
        images,
        tmp_path / "b",
        model_config=SMALL,
        train_config=cfg,
        progress=False,
        log=logs.append,
    )
    pa, pb = train.params_as_numpy(a), train.params_as_numpy(b)
    assert all(np.array_equal(pa[k], pb[k]) for k in pa)
    longer = train.TrainConfig(epochs=2, batch_size=64, val_size=100, warmup_steps=2)
    train.train_and_evaluate(
        images,
        tmp_path / "a",
        model_config=SMALL,
        train_config=longer,
        progress=False,
        log=logs.append,
    )
    assert any("resuming" in line and "after epoch 1" in line for line in logs)


@pytest.mark.slow  # training: over 5 s on 2 cores
def test_training_on_a_folder_of_colour_photos_of_any_sizes(tmp_path, mosaic):
    grey, rgb = mosaic
    folder = tmp_path / "mine"
    folder.mkdir()
    for i in range(6):
        Image.fromarray(np.roll(rgb, 11 * i, axis=(0, 1))[: 90 + 7 * i, : 120 - 5 * i]).save(
            folder / f"p{i}.png"
        )
    Image.fromarray(grey[:50, :60]).save(folder / "g.png")
    argv = [
        "train",
        "--kind",
        "tile",
        "--data",
        str(folder),
        "--steps",
        "4",
        "--hidden",
        "8",
        "--clusters",
        "2",
        "--context-groups",
        "2",
        "--context-hidden",
        "8",
        "--lambdas",
        "1,10",
        "--pixel-steps",
        "30",
        "--workdir",
        str(tmp_path / "w"),
        "--out",
        str(tmp_path / "mine.aecm"),
        "-q",
    ]
    status = cli.main(argv)
    # Four steps make a ladder that is not monotone (the untrained transform costs more than the
    # pixel level): refused, the trained model kept in --workdir, nothing written to --out.
    assert status == 1 and not (tmp_path / "mine.aecm").exists()
    model = codec.load_model(tmp_path / "w" / "tile.aecm")
    assert model.meta["steps"] == 4 and len(model.levels) == 3
    assert codec.decompress(codec.compress(rgb, model=model), model=model).shape == rgb.shape


@pytest.mark.parametrize(
    "data_arg, message",
    [("missing", "missing: no such file or folder"), ("one", "at least 2 images")],
)
def test_training_refuses_bad_data_with_one_line(tmp_path, test_images, capsys, data_arg, message):
    (tmp_path / "one").mkdir()
    Image.fromarray(test_images[0]).save(tmp_path / "one" / "a.png")
    status = cli.main(
        [
            "train",
            "--data",
            str(tmp_path / data_arg),
            "--workdir",
            str(tmp_path / "w"),
            "--out",
            str(tmp_path / "m.aecm"),
        ]
    )
    err = capsys.readouterr().err
    assert (
        status in (1, 2)
        and message in err
        and "Traceback" not in err
        and err.startswith("aecodec: error: ")
    )


@pytest.mark.slow  # training: over 5 s on 2 cores
def test_a_time_budget_sets_the_steps_and_says_how_to_repeat_them(tmp_path, test_images):
    from codec.levels.tile_config import ModelConfig
    from codec.training import tile as train

    logs = []
    cfg = train.TrainConfig(minutes=0.05, batch_size=16, warmup_steps=1)
    _, summary = train.train_and_evaluate(
        test_images[:100],
        tmp_path,
        train_config=cfg,
        progress=False,
        model_config=ModelConfig(
            hidden=8, clusters=2, lambdas=(1.0,), context_groups=1, pixel_steps=()
        ),
        log=logs.append,
    )
    assert summary["steps"] >= 1 and f"--steps {summary['steps']}" in logs[0]


def test_train_checks_its_output_folder_before_training(tmp_path, capsys):
    status = cli.main(
        ["train", "--out", str(tmp_path / "nodir" / "m.aecm"), "--workdir", str(tmp_path / "w")]
    )
    assert status == 1 and "nodir: No such file or directory" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_training_data_follows_the_colour_array_rule(tmp_path, capsys, mosaic):
    _, rgb = mosaic
    np.save(tmp_path / "rgb.npy", rgb)  # one colour image: nothing to hold out
    status = cli.main(
        [
            "train",
            "--data",
            str(tmp_path / "rgb.npy"),
            "--workdir",
            str(tmp_path / "w"),
            "--out",
            str(tmp_path / "m.aecm"),
        ]
    )
    assert status == 2 and "at least 2 images" in capsys.readouterr().err
