"""The tile kind's checkpoints in a training folder (``--workdir``): the state after the last
whole epoch, and the settings that wrote it, so that a run resumes only what it would train."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import msgpack
import numpy as np

from codec.errors import CheckpointMismatchError
from codec.levels import modelfile

CHECKPOINT = "checkpoint.msgpack"  # in the workdir: the state after the last whole epoch
LENGTH = ("epochs", "steps", "minutes")  # how long to train: a run may resume to train longer


def run_settings(model_config, train_config, *, init=None, data=None) -> dict:
    """What a checkpoint must share with the run that resumes it, by name: the architecture, the
    training settings but its length, the model started from (``init``, by content) and the training
    tiles' digest (``data``; None: not known yet). JSON's types, as a checkpoint gives them back."""
    start = None if init is None else hashlib.sha256(Path(init).read_bytes()).hexdigest()[:16]
    training = {k: v for k, v in dataclasses.asdict(train_config).items() if k not in LENGTH}
    settings = {**model_config.to_dict(), **training, "init": start}
    if data is not None:
        settings["data"] = data
    return json.loads(json.dumps(settings))


def check_workdir(workdir, settings: dict) -> None:
    """Refuse a checkpoint in ``workdir`` that other ``settings`` (``run_settings``) wrote: resuming
    it would train something other than what is asked, or fail an hour later.

    Raises:
        CheckpointMismatchError: naming the workdir and the first setting that differs.
    """
    path = Path(workdir) / CHECKPOINT
    if not path.is_file():
        return
    recorded = read(path).get("settings")
    if not isinstance(recorded, dict):
        raise CheckpointMismatchError(
            f"{workdir}: its {CHECKPOINT} records no settings (an older "
            "aecodec wrote it): remove it to start afresh, or give "
            "another --workdir"
        )
    for name, value in settings.items():
        if recorded.get(name) == value:
            continue
        what = (
            "was trained on other images"
            if name == "data"
            else f"was trained with {name} {recorded.get(name)!r}, not {value!r}"
        )
        raise CheckpointMismatchError(
            f"{workdir}: its checkpoint {what}: resume with the same "
            "settings, or give another --workdir"
        )


def read(path: Path) -> dict:
    body = msgpack.unpackb(path.read_bytes(), raw=False, max_bin_len=1 << 30)
    if not isinstance(body, dict):
        raise CheckpointMismatchError(f"{path}: not an aecodec checkpoint")
    return body


def save(path: Path, epoch: int, state, opt_state, *, settings: dict) -> None:
    leaves = jax.tree_util.tree_leaves((state, opt_state))
    body = {
        "epoch": epoch,
        "settings": settings,
        "leaves": [modelfile.encode_array(np.asarray(v)) for v in leaves],
    }
    raw = msgpack.packb(body, use_bin_type=True)
    modelfile.save(path, raw, force=True)  # the workdir's own file, replaced each epoch


def restore(body: dict, state, opt_state):
    treedef = jax.tree_util.tree_structure((state, opt_state))
    leaves = [jnp.asarray(modelfile.decode_array(v, what="checkpoint")) for v in body["leaves"]]
    state, opt_state = jax.tree_util.tree_unflatten(treedef, leaves)
    return body["epoch"], state, opt_state
