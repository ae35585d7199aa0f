"""The family's commands on the command line: ``train --kind`` of an autoencoder kind, ``embed``,
``denoise``, ``sample`` and ``score``; each writes its picture and the file beside it (an array,
a table) both or neither."""

from __future__ import annotations

import io
import sys

import numpy as np

from codec.commands.outputs import beside, check_outputs, print_json, write_outputs
from codec.errors import UsageError
from codec.family import commands
from codec.family.uses import bundled_path


def train(args) -> int:
    """``train --kind plain|linear|...``: a classic autoencoder on --data (default: Fashion-MNIST's
    train split), written to --out."""
    options = {k: getattr(args, k) for k in commands.OPTIONS if getattr(args, k) is not None}
    if args.blind:
        options["blind"] = True
    images = commands.training_images(args.data)
    cfg = commands.family_config(args.kind, images.shape[1:], options)
    given = {
        k: getattr(args, k)
        for k in ("steps", "batch_size", "learning_rate", "seed")
        if getattr(args, k)
    }
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    meta = {"data": str(args.data or "Fashion-MNIST train split"), "command": args.command_line}
    raw = commands.train_file(
        images,
        cfg,
        commands.FamilyTraining(**given),
        name=args.name or args.out.stem,
        meta=meta,
        log=log,
    )
    write_outputs(args, [(args.out, raw)])
    print_json({"model": str(args.out), "kind": args.kind, "widths": list(cfg.widths)})
    return 0


def picture(args) -> int:
    """``embed``, ``denoise`` and ``sample``: a picture (--out, PNG) and its array beside it
    (.npy)."""
    npy = beside(args.out, ".npy")
    check_outputs(args, npy, args.out)
    args.model = args.model or bundled_path(args.command)
    array, png = commands.picture(
        args.command,
        args.model,
        data_path=getattr(args, "data", None),
        n=getattr(args, "n", 64),
        seed=getattr(args, "seed", 0),
        labels_path=getattr(args, "labels", None),
    )
    buffer = io.BytesIO()
    np.save(buffer, array)
    write_outputs(args, [(npy, buffer.getvalue()), (args.out, png)])
    print_json({"png": str(args.out), "npy": npy and str(npy), "shape": list(array.shape)})
    return 0


def score(args) -> int:
    """``score DATA``: each image's anomaly score under a scorer (--model), the threshold at
    --percentile of its training images' scores, a flag per image: OUT.csv (index, file, score,
    anomalous) and a histogram (OUT, PNG); one line of JSON with the counts."""
    if not 0 <= args.percentile <= 100:  # refused before any work
        raise UsageError(f"--percentile {args.percentile:g} is not between 0 and 100")
    table = beside(args.out, ".csv")
    check_outputs(args, table, args.out)
    args.model = args.model or bundled_path("score")
    text, png, counts = commands.scored(args.model, args.data, args.percentile)
    write_outputs(args, [(table, text), (args.out, png)])
    print_json({**counts, "csv": table and str(table), "png": str(args.out)})
    return 0
