"""Training (JAX, Flax, Optax, scikit-learn): the one jitted step, each kind's float twin, the
ladder.

Coding never imports this package: a trained model is exported to the integer form that
``codec.levels`` codes with.
"""
