"""Builds the lossless coder's compiled loops (``codec/levels/_kernels.pyx``); everything else is in pyproject.toml."""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(
    ext_modules=cythonize(
        [
            Extension(
                "codec.levels._kernels", ["codec/levels/_kernels.pyx"], extra_compile_args=["-O3"]
            )
        ],
        compiler_directives={"language_level": 3},
    )
)
