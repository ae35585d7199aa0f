"""The family commands' pictures as PNG bytes: image grids (Pillow), maps and histograms
(matplotlib, loaded only when a picture needs it: the ``bench`` extra)."""

from __future__ import annotations

import io

from PIL import Image

from codec.errors import UsageError


def png(picture) -> bytes:
    """A PNG's bytes: already encoded (matplotlib), or a uint8 array's."""
    if isinstance(picture, bytes):
        return picture
    out = io.BytesIO()
    Image.fromarray(picture).save(out, format="PNG")
    return out.getvalue()


def histogram_png(scores, limit: float, percentile: float) -> bytes:
    """The scores' histogram and the threshold as a line (matplotlib)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.hist(scores, bins=60, color="0.4")
    ax.axvline(
        limit,
        color="tab:red",
        label=f"threshold: {percentile:g}th percentile of the training images",
    )
    ax.set_xlabel("anomaly score (bits: the model's code length minus JPEG XL's)")
    ax.set_ylabel("images")
    ax.legend(fontsize=8)
    return _png_bytes(plt, fig)


def map_png(points, labels) -> bytes:
    """A scatter plot of 2-D points (the first two coordinates), coloured by label where given
    (matplotlib)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 6), dpi=100)
    colours = {"c": labels, "cmap": "tab10"} if labels is not None else {"c": "k"}
    ax.scatter(points[:, 0], points[:, 1], s=2, alpha=0.6, **colours)
    ax.set_xticks([])
    ax.set_yticks([])
    return _png_bytes(plt, fig)


def _png_bytes(plt, fig) -> bytes:
    """A matplotlib figure as PNG bytes (written atomically by the caller), the figure closed."""
    out = io.BytesIO()
    fig.savefig(out, format="png", bbox_inches="tight")
    plt.close(fig)
    return out.getvalue()


def _pyplot():
    # matplotlib is optional (the bench extra) and takes 0.36 s to load (-X importtime): imported
    # when a picture is drawn
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("the picture needs matplotlib: pip install 'aecodec[bench]'") from None
    return plt
