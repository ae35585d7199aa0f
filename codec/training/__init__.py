"""Training (JAX, Flax, Optax, scikit-learn): the one jitted step, each kind's float twin, the
ladder, and the recipes that make a model file of a kind from images.

    >>> from codec import training
    >>> model_file = training.train_model("lossless", images, training.TrainOptions(name="mine"))

Coding never imports this package: a trained model is exported to the integer form that
``codec.levels`` codes with.
"""

from codec.training.recipes import TrainOptions, train_model

__all__ = ["TrainOptions", "train_model"]
