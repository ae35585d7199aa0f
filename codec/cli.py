"""The ``aecodec`` command line. It only parses arguments and calls the API."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path


def _train(args) -> int:
    from codec import data, train
    from codec.models import ModelConfig

    images = data.load_images(args.data) if args.data else data.fashion_mnist("train")
    test = data.fashion_mnist("test") if args.test is None and not args.data else (
        data.load_images(args.test) if args.test else None)
    model_config = ModelConfig(hidden=args.hidden, clusters=args.clusters)
    train_config = train.TrainConfig(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.learning_rate,
                                     prior_learning_rate=args.prior_learning_rate, seed=args.seed)
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr, flush=True))
    model, summary = train.train_and_evaluate(
        images, args.workdir, model_config=model_config, train_config=train_config,
        progress=not args.quiet and sys.stderr.isatty(), log=log,
    )
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "func"}
    meta = {
        "data": str(args.data or "Fashion-MNIST train split"),
        "command": " ".join(["aecodec", *sys.argv[1:]]) if sys.argv[0].endswith("aecodec") else None,
        "settings": settings,
        "train_config": dataclasses.asdict(train_config),
        "val": summary["val"],
    }
    model_file = train.export(model, args.out, name=args.name, meta=meta, test_images=test)
    print(json.dumps({"model": str(args.out), "bytes": len(model_file), "test": train.read_meta(model_file).get("test")},
                     default=float, indent=1))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from codec.models import ModelConfig
    from codec.train import TrainConfig

    parser = argparse.ArgumentParser(prog="aecodec", description="Learned lossy compression for image datasets.")
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a codec model on a dataset (Fashion-MNIST train split by default)")
    t.add_argument("--data", type=Path, help="images to train on (IDX, .npy); default: Fashion-MNIST train split")
    t.add_argument("--out", type=Path, required=True, help="model file to write (.aecm)")
    t.add_argument("--workdir", type=Path, required=True, help="folder for checkpoints; training resumes from it")
    t.add_argument("--name", default="aecodec-fmnist", help="model name recorded in the file")
    t.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    t.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    t.add_argument("--learning-rate", type=float, default=TrainConfig.learning_rate)
    t.add_argument("--hidden", type=int, default=ModelConfig.hidden, help="width of the nonlinear branches")
    t.add_argument("--clusters", type=int, default=ModelConfig.clusters, help="prior clusters the encoder picks from")
    t.add_argument("--prior-learning-rate", type=float, default=TrainConfig.prior_learning_rate)
    t.add_argument("--test", type=Path, help="images to measure the exported model on (default: Fashion-MNIST test split)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("-q", "--quiet", action="store_true")
    t.set_defaults(func=_train)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
