import jax
import numpy as np
import pytest
from flax import nnx

import codec
from codec.io import data
from codec.training import tile as train
from codec.training.tile_net import Codec, ModelConfig, init_from_data

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
    assert tiny.name == "tiny" and tiny.qualities == (1, 2, 3)
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
