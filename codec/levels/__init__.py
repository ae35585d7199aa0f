"""The quality levels and their coding (numpy, msgpack and constriction only; never JAX).

What a level is and how a kind of levels is found in a model file (``registry``); one module per
level kind (``tile``, ``pixel``, ``conv``, ``lossless``), each registering itself with the section
of the model file it reads and writes; the exact integer arithmetic they code with (``predict``:
the predictive core the pixel and lossless levels share; ``kernels``: the loader of the lossless
coder's compiled loops, which the lossy levels never need); the model file's container
(``modelfile``); and the loaded ``model`` that holds a ladder of levels and maps a file's header
to its level.
"""
