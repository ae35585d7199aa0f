import numpy as np
import pytest

import codec
from codec.io import data
from codec.levels.tile_config import ModelConfig
from codec.training import tile as train


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


@pytest.fixture
def images(test_images):
    return test_images[:6]


@pytest.fixture
def mosaic(test_images):
    """A 168x168 grey picture of garments and a colour one of three different mosaics."""
    tiles = [
        test_images[36 * k : 36 * (k + 1)]
        .reshape(6, 6, 28, 28)
        .transpose(0, 2, 1, 3)
        .reshape(168, 168)
        for k in range(3)
    ]
    return tiles[0], np.stack(tiles, -1)


def unmeasured(path):
    """The model at ``path`` without its scale measurements: its qualities spread over its levels
    in order (quality 1 its level 1), to reach a level the scale does not name (the photo model's
    convolutional levels, below its wavelet ones)."""
    from codec import api
    from codec.levels import modelfile

    raw = modelfile.read(path)
    meta = {k: v for k, v in modelfile.loads(raw)["meta"].items() if k != "scale"}
    return api.Model(modelfile.loads(modelfile.amended(raw, meta=meta)))
