import numpy as np
import pytest

import codec
from codec.io import data
from codec.training import tile as train
from codec.training.tile_net import ModelConfig


@pytest.fixture(scope="session")
def test_images() -> np.ndarray:
    """The first 300 Fashion-MNIST test images (Debian's dataset-fashion-mnist)."""
    return data.fashion_mnist("test")[:300]


@pytest.fixture(scope="session")
def bundled():
    return codec.load_model()


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory, test_images):
    """A tiny model trained for a few steps: fast to build, exercises the whole training path."""
    workdir = tmp_path_factory.mktemp("tiny")
    images = data.fashion_mnist("train")[:1200]
    cfg = train.TrainConfig(epochs=1, batch_size=64, val_size=200, warmup_steps=2)
    model, _ = train.train_and_evaluate(
        images,
        workdir,
        model_config=ModelConfig(
            hidden=8,
            clusters=2,
            lambdas=(1.0, 10.0),
            context_groups=3,
            context_hidden=8,
            pixel_steps=(30,),
        ),
        train_config=cfg,
        progress=False,
        log=lambda s: None,
    )
    path = workdir / "tiny.aecm"
    train.export(model, path, name="tiny", meta={}, pixel_images=images)
    return path


@pytest.fixture(scope="session")
def tiny(tiny_model_path):
    return codec.load_model(tiny_model_path)
