"""``aecodec compare IMAGE... --out page.html``: each image (a folder: its images) coded by
aecodec and by WebP, AVIF and JPEG XL at the same bytes, in one self-contained page
(``codec.compare``); the numbers also on standard error, one line per level, unless -q."""

from __future__ import annotations

import sys

from codec import compare as comparison
from codec.commands.outputs import check_outputs, report, write_outputs
from codec.errors import AecodecError, InputError
from codec.io.images import folder_files, read_image


def compare(args) -> int:
    to_stdout = str(args.out) == "-"
    if not to_stdout:
        check_outputs(args, args.out)  # before any work: -f, never an input
    images = {}
    for path in args.images:  # every image read and checked before any is measured
        files = folder_files(path)[0] if path.is_dir() else [path]
        if not files:
            return report(str(path), InputError("no image files in this folder"))
        for file in files:
            try:
                image = read_image(file)[0]
                comparison.fitted(image)  # refuses what the page cannot show
            except (AecodecError, OSError) as e:
                return report(str(file), e)
            images[str(file)] = image
    results = []
    for name, image in images.items():
        try:
            results += comparison.measure(
                {name: image},
                model=args.model,
                qualities=args.qualities or comparison.SHOWN,
                max_side=args.max_side,
            )
        except (AecodecError, OSError) as e:
            return report(name, e)
        if not args.quiet:
            _print(results[-1])
    page = comparison.page(results)
    if to_stdout:
        sys.stdout.buffer.write(page)
        sys.stdout.buffer.flush()
        return 0
    write_outputs(args, [(args.out, page)])
    if not args.quiet:
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _print(result: dict) -> None:
    """One line per level shown: each codec's bytes and PSNR."""
    for level in result["levels"]:
        cells = [f"{key} {p['bytes']:,} B {p['psnr']:.2f} dB" for key, p in level["panels"].items()]
        print(f"{result['name']}: quality {level['quality']}: " + "; ".join(cells), file=sys.stderr)
