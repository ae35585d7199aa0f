"""What the face refuses before it codes: images (dtype, shape, depth), the level asked for
(quality, bound, depth), images larger than their level codes, and chunks that claim more
decoding than their level does at once or than their bytes allow.

``api.py`` and ``archive.py`` call these checks; they read the arguments and the model's levels
only, never a pixel's coding.
"""

from __future__ import annotations

import math

import numpy as np

from bitstream import container
from bitstream.header import MAX_DEPTH, MAX_ERROR, dtype_of
from codec.errors import InputError, LimitError
from codec.io.shapes import check_array_shape, check_image_shape, one_image
from codec.levels import scale
from codec.levels.model import Model

# Dense format-2 chunks (written before the floor of bytes per pixel) are still decoded, up to
# this many coded pixels per file beyond the floor: old blank images read, a crafted file costs
# ~2 s.
FORMAT2_DENSE_PIXELS = 1 << 23


def check_images(images) -> np.ndarray:
    """A uint8 or uint16 array of images, checked (bool is taken as 0/255)."""
    a = np.asarray(images)
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255  # documented: False -> 0, True -> 255
    if a.dtype not in (np.uint8, np.uint16):
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise InputError(
                f"images contain NaN or infinity (dtype {a.dtype}); "
                "aecodec compresses uint8 and uint16 images"
            )
        raise InputError(
            f"images have dtype {a.dtype}; aecodec compresses uint8 images "
            "(and uint16 ones losslessly; convert with .astype(np.uint8))"
        )
    check_array_shape(a.shape)
    check_image_shape(a.shape[1:] if a.ndim == 4 else a.shape[-2:])
    return a


LOSSY_DEPTH = (
    "{depth}-bit images are coded losslessly or near-losslessly only: "
    "pass lossless=True or max_error=K (aecodec --lossless, --max-error K); "
    "the lossy levels code 8-bit images"
)


def check_level_shape(level, model: Model, shape) -> None:
    """Refuse images of ``shape`` (H, W[, C]) larger than ``level`` (of ``model``) codes: its
    values per image, and its coded pixels (padding to tiles included) per chunk; from the shape
    alone.

    Raises:
        InputError: naming the model, the level's limits and where larger images go.
    """
    check_image_shape(shape)
    coded, values = level.coded_pixels(1, shape), int(np.prod(shape))
    if coded <= level.max_coded_pixels and values <= level.max_image_values:
        return
    exact = level.kind == "lossless"
    most = (
        f"at most {level.max_image_values} values per image"
        if values > level.max_image_values
        else f"at most {level.max_coded_pixels} once padded to tiles"
    )
    where = (
        "its lossy levels code larger ones (a convolutional model's: tile by tile)"
        if exact
        else "a convolutional model codes larger images tile by tile"
    )
    how = " losslessly" if exact else ""
    raise InputError(
        f"images of shape {tuple(shape)} are larger than aecodec accepts with "
        f"{model.name!r}{how} ({most}; {where})"
    )


def level_fields(model: Model, quality=None, max_error=None, depth: int = 8, shape=None) -> dict:
    """The header's fields that name the level a writer is asked for (``Model.level_of`` reads
    them): scale ``quality`` (None: the model's default) served for images of ``shape``
    (``Model.fields_for``), or ``max_error`` (0: lossless; quality 0).

    Raises:
        InputError: both asked for, an unknown quality or bound, a lossy level for a depth other
            than 8.
    """
    if max_error is not None:
        if quality is not None:
            raise InputError("pass a quality or a max_error (lossless: 0), not both")
        return {"quality": 0, "max_error": check_max_error(max_error), "depth": depth}
    if depth != 8:  # the scale's PSNRs are of 8-bit values; deeper images go exactly or bounded
        if quality is not None and quality not in (scale.NEAR_LOSSLESS, scale.LOSSLESS):
            raise InputError(LOSSY_DEPTH.format(depth=depth))
        quality = scale.LOSSLESS if quality is None else quality
    fields = model.fields_for(quality, shape)
    if depth != 8 and fields["quality"]:
        raise InputError(LOSSY_DEPTH.format(depth=depth))
    return {**fields, "depth": depth}


def check_max_error(max_error) -> int:
    """``max_error`` as an int from 0 (lossless) to 32 (InputError otherwise)."""
    if (
        isinstance(max_error, bool)
        or not isinstance(max_error, (int, np.integer))
        or not 0 <= max_error <= MAX_ERROR
    ):
        raise InputError(
            f"max_error {max_error!r} is not an integer from 0 (lossless) to {MAX_ERROR}"
        )
    return int(max_error)


EFFORTS = (0, 1, 2, 3)  # the encoder's effort: 0 the fastest (the default)


def check_effort(effort) -> int:
    if (
        isinstance(effort, bool)
        or not isinstance(effort, (int, np.integer))
        or effort not in EFFORTS
    ):
        raise InputError(f"effort {effort!r} is not one of {', '.join(map(str, EFFORTS))}")
    return int(effort)


def effort_level(level, effort: int):
    """``level`` encoding at ``effort`` where its kind has an effort (the convolutional kind's
    latent refinement, ``levels/refine.py``), else as it is: the other kinds' encoders already
    choose each symbol by rate and distortion. The decoder and the format are the same."""
    return level.with_effort(effort) if effort and hasattr(level, "with_effort") else level


def check_depth(depth) -> int:
    if (
        isinstance(depth, bool)
        or not isinstance(depth, (int, np.integer))
        or not 1 <= depth <= MAX_DEPTH
    ):
        raise InputError(f"depth {depth!r} is not a number of bits from 1 to {MAX_DEPTH}")
    return int(depth)


def depth_of(a: np.ndarray, depth=None) -> int:
    """The bits per sample of images ``a``: ``depth`` when given (checked against the values and
    the dtype), else the dtype's (8 or 16)."""
    bits = 8 * a.dtype.itemsize
    if depth is None:
        return bits
    depth = check_depth(depth)
    if depth > bits or (depth > 8) != (bits > 8):
        raise InputError(
            f"depth {depth} does not suit {a.dtype} images (uint8: 1 to 8 bits, uint16: 9 to 16)"
        )
    return depth


def check_depth_of(a: np.ndarray, depth: int) -> np.ndarray:
    """``a`` if its dtype is the depth's and every value is below 2^depth (InputError otherwise)."""
    if a.dtype != np.dtype(dtype_of(depth)):
        raise InputError(f"images are {a.dtype}; {depth}-bit images are {dtype_of(depth)}")
    if depth < 8 * a.dtype.itemsize and a.size and int(a.max()) >> depth:
        raise InputError(f"images hold the value {int(a.max())}, beyond {depth} bits")
    return a


def as_batch(images, *, grey_stack: bool = False) -> tuple[np.ndarray, bool]:
    """(images as a batch (N, H, W[, C]), whether the input was a batch).

    A 3-D array whose last axis is 2, 3 or 4 is one image (H, W, C): grey + alpha, colour, colour +
    alpha, as in Pillow, imageio and scikit-image; ``grey_stack`` takes it as N grey images of
    width 2 to 4.
    """
    a = check_images(images)
    if one_image(a.shape, grey_stack):
        check_image_shape(a.shape)
        return a[None], False
    return a, True


def floor_pixels(level, n: int, shape) -> int:
    """The coded pixels the floor of bytes per pixel counts for ``n`` images of ``shape``:
    padding included, each weighted by its level's cost (``work_per_pixel``: 1, or more for a
    convolutional model costlier than the floor is sized for)."""
    return math.ceil(level.coded_pixels(n, shape) * level.work_per_pixel)


def check_chunk_work(level, n: int, data: bytes, shape, *, framed: bool) -> int:
    """Refuse a chunk that claims more decoding than its level does at once, or (framed formats)
    more coded pixels than its bytes allow; returns the pixels beyond that floor (format 2 budgets
    them).

    Raises:
        LimitError: either claim.
    """
    coded = level.coded_pixels(n, shape)
    if coded > level.max_coded_pixels:
        raise LimitError(
            f"chunk claims {coded} pixels once padded, more than its model's levels decode at once"
        )
    work = floor_pixels(level, n, shape)
    beyond = work - len(data) * container.MAX_PIXELS_PER_BYTE
    if framed and beyond > 0:
        raise LimitError(
            f"chunk claims {work} coded pixels in {len(data)} bytes: denser than "
            f"{container.MAX_PIXELS_PER_BYTE} pixels per byte "
            "(damage, or a file made to waste time)"
        )
    return max(0, beyond)
