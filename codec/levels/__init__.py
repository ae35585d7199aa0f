"""The quality levels and their coding (numpy, msgpack and constriction only; never JAX).

One module per level kind (``tile``, ``pixel``, ``conv``, ``lossless``), the exact integer
arithmetic they code with, the loaded ``model`` that holds a ladder of levels, and the model file
(``modelfile``).
"""
