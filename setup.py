"""Builds the lossless coder's compiled loops (``codec/levels/_kernels.pyx`` and the C header it
includes, ``_raster.h``), stamped with the SHA-256 of both (``codec.levels.kernels`` refuses a
stale build); everything else is in pyproject.toml.

The build is optional: without Cython or a C compiler the package installs with a warning, the lossy
levels work, and lossless coding says what is missing.
"""

import hashlib
import warnings
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

SOURCE = Path("codec/levels/_kernels.pyx")
HEADER = Path("codec/levels/_raster.h")  # the raster coder, included by the .pyx
HOW = (
    "install Cython and a C compiler, then run pip install -e . "
    "(or python setup.py build_ext --inplace)"
)


class OptionalBuildExt(build_ext):
    """build_ext that warns instead of failing: lossless coding then says what is missing."""

    def run(self):
        try:
            super().run()
        except Exception as e:  # no compiler raises several kinds (PlatformError, OSError, ...)
            if not getattr(self, "failed", False):  # said once: copying the missing build fails too
                _not_built(e)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as e:
            self.failed = True
            _not_built(e)


def _not_built(e: Exception) -> None:
    message = f"aecodec's compiled loops were not built ({e}): lossless coding needs them; {HOW}"
    warnings.warn(message, stacklevel=2)


def extensions() -> list:
    try:
        from Cython.Build import cythonize
    except ImportError:
        warnings.warn(
            f"Cython is missing: aecodec's compiled loops are not built; {HOW}", stacklevel=2
        )
        return []
    stamp = hashlib.sha256(SOURCE.read_bytes() + HEADER.read_bytes()).hexdigest()
    return cythonize(
        [
            Extension(
                "codec.levels._kernels",
                [str(SOURCE)],
                depends=[str(HEADER)],
                extra_compile_args=["-O3"],
                define_macros=[("KERNELS_SOURCE", f'"{stamp}"')],
            )
        ],
        compiler_directives={"language_level": 3},
    )


setup(ext_modules=extensions(), cmdclass={"build_ext": OptionalBuildExt})
