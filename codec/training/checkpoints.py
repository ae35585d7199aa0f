"""Checkpoints in a training folder (``--workdir``): the tile kind's state after the last whole
epoch, the convolutional kind's after its last measured step, each with the settings that wrote
it, so that a run resumes only what it would train."""

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
CONV_CHECKPOINT = "conv-checkpoint.msgpack"  # the convolutional kind's, beside it
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


def check_workdir(workdir, settings: dict, name: str = CHECKPOINT) -> None:
    """Refuse a checkpoint in ``workdir`` that other ``settings`` (``run_settings``) wrote: resuming
    it would train something other than what is asked, or fail an hour later.

    Raises:
        CheckpointMismatchError: naming the workdir and the first setting that differs.
    """
    path = Path(workdir) / name
    if not path.is_file():
        return
    recorded = read(path).get("settings")
    if not isinstance(recorded, dict):
        raise CheckpointMismatchError(
            f"{workdir}: its {name} records no settings (an older "
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


def save(path: Path, epoch: int, state, opt_state, *, settings: dict, **more) -> None:
    """The state after ``epoch`` (the convolutional kind: its step; ``more``: what else its run
    needs to go on exactly where it stopped), replacing the workdir's previous checkpoint."""
    body = {"epoch": epoch, "settings": settings, "leaves": encoded((state, opt_state)), **more}
    raw = msgpack.packb(body, use_bin_type=True)
    modelfile.save(path, raw, force=True)  # the workdir's own file, replaced each time


def encoded(tree) -> list:
    return [modelfile.encode_array(np.asarray(v)) for v in jax.tree_util.tree_leaves(tree)]


def decoded(leaves: list, like):
    """The tree of ``like``'s structure holding ``leaves`` (``encoded``'s)."""
    treedef = jax.tree_util.tree_structure(like)
    if not isinstance(leaves, list) or len(leaves) != treedef.num_leaves:
        raise CheckpointMismatchError("the checkpoint holds another model's state")
    arrays = [jnp.asarray(modelfile.decode_array(v, what="checkpoint")) for v in leaves]
    return jax.tree_util.tree_unflatten(treedef, arrays)


def restore(body: dict, state, opt_state):
    state, opt_state = decoded(body["leaves"], (state, opt_state))
    return body["epoch"], state, opt_state


def digest(arrays) -> str:
    """A short digest of a list of arrays (training images, start weights): what a checkpoint
    must have been trained on to be resumed."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}{a.dtype.str}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]
