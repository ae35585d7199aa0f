"""The shapes aecodec takes, checked before a pixel is read: one rule for the API, the command
line and training."""

from __future__ import annotations

from bitstream import header
from codec.errors import InputError

ACCEPTED_SHAPES = (
    "aecodec compresses arrays shaped (H, W), (H, W, C), (N, H, W) or (N, H, W, C), no axis empty"
)


def check_image_shape(shape) -> None:
    """Refuse an image shape (H, W) or (H, W, C) beyond the container's limits, before any pixel is
    read.

    Raises:
        InputError: too many channels, or more values than 16384 x 16384 grey
            (``MAX_IMAGE_PIXELS``).
    """
    h, w = int(shape[0]), int(shape[1])
    channels = int(shape[2]) if len(shape) == 3 else 1
    if min(h, w, channels) < 1:
        raise InputError(f"images of {h}x{w}x{channels} are empty; {ACCEPTED_SHAPES}")
    if channels > header.MAX_CHANNELS:
        raise InputError(
            f"images have {channels} channels; at most {header.MAX_CHANNELS} are supported"
        )
    too_wide = h > header.MAX_DIM or w > header.MAX_DIM
    if too_wide or h * w * channels > header.MAX_IMAGE_PIXELS:
        raise InputError(
            f"images of {h}x{w}x{channels} are larger than aecodec accepts "
            f"(at most {header.MAX_IMAGE_PIXELS} values: 16384x16384 grey)"
        )


def check_array_shape(shape) -> None:
    """Refuse, from its shape alone (before any value is read), an array that holds no image: 0-d
    (a number), 1-d, more than 4-d, or with an axis of length 0. The one rule of the API
    (``codec.compress``) and of every array the command line reads (.npy, .npz members).

    Raises:
        InputError: naming the shape and the shapes accepted.
    """
    shape = tuple(int(d) for d in shape)
    if len(shape) not in (2, 3, 4):
        raise InputError(f"images have {len(shape)} dimensions (shape {shape}); {ACCEPTED_SHAPES}")
    if 0 in shape:
        raise InputError(f"images are empty (shape {shape}); {ACCEPTED_SHAPES}")


def one_image(shape, grey_stack: bool = False) -> bool:
    """Whether an array of ``shape`` is one image: (H, W), or (H, W, 2|3|4) (grey + alpha, colour,
    colour + alpha) as in Pillow, imageio and scikit-image, unless ``grey_stack`` (N grey images
    of width 2 to 4): the one rule of the API, the command line and training."""
    return len(shape) == 2 or (len(shape) == 3 and shape[2] in (2, 3, 4) and not grey_stack)
