"""The loader of the compiled loops (``_kernels.pyx``, built by ``pip install`` or ``python setup.py
build_ext --inplace``): the lossless coder needs them; the lossy levels never do, so a package
installed without a C compiler still codes lossy.

A build carries the SHA-256 of the ``.pyx`` it was compiled from (setup.py stamps it); where the
source sits beside the build (a checkout), a build of another source is refused as stale.
"""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path

from codec.errors import BuildError

SOURCE = Path(__file__).with_name("_kernels.pyx")
HEADER = Path(__file__).with_name("_raster.h")  # included by the .pyx: part of the stamp
REBUILD = "pip install -e . (or python setup.py build_ext --inplace) in a checkout"
_checked = None  # the module whose stamp was checked


def compiled():
    """The compiled loops, checked against their source once (BuildError, an ImportError saying
    how to build them, where they are missing or stale)."""
    global _checked
    try:
        # At call time, not at the top of this module: a build that is missing must fail only the
        # lossless coding that needs it, and the check below runs once per loaded module.
        module = importlib.import_module("codec.levels._kernels")
    except ImportError as e:
        raise BuildError(
            "aecodec's compiled loops (codec/levels/_kernels.pyx) are not built: install the "
            "package with pip (pip install -e . in a checkout), which compiles them with a C "
            "compiler; the lossy levels work without them"
        ) from e
    if module is not _checked:
        _check_stamp(module)
        _checked = module
    return module


def source_digest() -> str:
    """SHA-256 of the sources a build is made from, as setup.py stamps it."""
    return hashlib.sha256(SOURCE.read_bytes() + HEADER.read_bytes()).hexdigest()


def _check_stamp(module) -> None:
    if not SOURCE.exists():  # an installed wheel: the build is the one shipped with it
        return
    want = source_digest()
    got = getattr(module, "SOURCE_SHA256", "none")
    if got != want:
        raise BuildError(
            f"aecodec's compiled loops ({Path(module.__file__).name}) were built from another "
            f"version of {SOURCE.name} (stamp {got[:12]}, source {want[:12]}): rebuild them with "
            f"{REBUILD}"
        )
