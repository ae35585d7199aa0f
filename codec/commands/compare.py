"""``aecodec compare IMAGE... --out page.html``: each image coded by aecodec and by WebP, AVIF and
JPEG XL at the same bytes, in one self-contained page (``codec.compare``); the numbers also on
standard error, one line per level, unless -q."""

from __future__ import annotations

import sys

from codec import compare as comparison
from codec.commands.outputs import check_outputs, report, write_outputs
from codec.errors import AecodecError
from codec.io.images import read_image


def compare(args) -> int:
    check_outputs(args, args.out)  # before any work: -f, never an input
    images = {}
    for path in args.images:  # every image read and checked before any is measured
        try:
            image = read_image(path)[0]
            comparison.fitted(image)  # refuses what the page cannot show, before any work
            images[str(path)] = image
        except (AecodecError, OSError) as e:
            return report(str(path), e)
    results = []
    for name, image in images.items():
        try:
            qualities = args.qualities or comparison.SHOWN
            one = {name: image}
            results += comparison.measure(
                one, model=args.model, qualities=qualities, max_side=args.max_side
            )
        except (AecodecError, OSError) as e:
            return report(name, e)
        if not args.quiet:
            _print(results[-1])
    write_outputs(args, [(args.out, comparison.page(results))])
    if not args.quiet:
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _print(result: dict) -> None:
    """One line per level shown: each codec's bytes and PSNR."""
    for level in result["levels"]:
        cells = [f"{key} {p['bytes']:,} B {p['psnr']:.2f} dB" for key, p in level["panels"].items()]
        print(f"{result['name']}: quality {level['quality']}: " + "; ".join(cells), file=sys.stderr)
