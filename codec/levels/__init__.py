"""The quality levels and their coding (numpy, msgpack and constriction only; never JAX).

One module per level kind (``tile``, ``pixel``, ``conv``, ``lossless``), the exact integer
arithmetic they code with (``predict``: the predictive core the pixel and lossless levels share;
``kernels``: the loader of the lossless coder's compiled loops, which the lossy levels never need),
the loaded ``model`` that holds a ladder of levels, and the model file (``modelfile``).
"""
