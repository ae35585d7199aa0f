"""The bundled models, trained by ``aecodec train`` (their commands and logs lie beside them).

Paths only: which model suits which images is the face's choice (``codec.api.model_for``), and
the convolutional kind's training starts from ``PHOTO_MODEL`` unless told otherwise.
"""

from pathlib import Path

PRETRAINED_DIR = Path(__file__).parent
DEFAULT_MODEL = PRETRAINED_DIR / "fmnist.aecm"  # Fashion-MNIST's: small grey items
PHOTO_MODEL = PRETRAINED_DIR / "photo.aecm"  # the convolutional photo model: everything else
DEEP_MODEL = PRETRAINED_DIR / "deep.aecm"  # the lossless coder of 16-bit (medical) images
