"""Bad arguments and unusable inputs of the autoencoder commands (embed --labels, sample --n,
score's quantiles) end in one line naming the file or argument, never a traceback, and write
nothing; what the CLI prints as JSON is strict JSON."""

import json
import math

import jax
import numpy as np
import pytest
from flax import nnx

from codec import cli, family
from codec.commands import outputs
from codec.errors import FormatError


@pytest.fixture(scope="module")
def items(tmp_path_factory, test_images):
    path = tmp_path_factory.mktemp("items") / "items.npy"
    np.save(path, test_images[:30])
    return path


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def embed(items, labels, out) -> int:
    return cli.main(["embed", str(items), "--labels", str(labels), "--out", str(out)])


def scorer(path, quantiles):
    """A scorer file (untrained: its quantiles are what matters here) keeping ``quantiles``."""
    config = family.FamilyConfig(kind="variational", widths=(784, 2), decoder="logistic")
    meta = {"score_quantiles": quantiles, "image_shape": [28, 28]}
    family.save(family.build(config), path, name="scorer", meta=meta)
    return path


# embed --labels: one finite number per image, from a .npy (no pickle) or an IDX file


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.arange(10), "10 labels for the 30 images"),
        (np.zeros((30, 3)), "shape (30, 3)"),
        (np.array(["a"] * 30), "dtype <U1"),
        (np.array([1 + 2j] * 30), "dtype complex128"),
        (np.r_[np.nan, np.zeros(29)], "NaN or infinity"),
    ],
)
def test_labels_that_do_not_fit_the_images_are_one_line_naming_the_file(
    tmp_path, items, capsys, labels, message
):
    np.save(tmp_path / "labels.npy", labels)
    out = tmp_path / "map.png"
    assert embed(items, tmp_path / "labels.npy", out) == 1
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"aecodec: error: {tmp_path / 'labels.npy'}: ") and message in line
    assert not out.exists() and not out.with_suffix(".npy").exists()


def test_labels_that_need_pickle_are_refused_unread(tmp_path, items, capsys):
    np.save(tmp_path / "labels.npy", np.array([{"class": 1}] * 30, dtype=object), allow_pickle=True)
    out = tmp_path / "map.png"
    assert embed(items, tmp_path / "labels.npy", out) == 1
    assert "need pickle" in one_line(capsys.readouterr().err) and not out.exists()


@pytest.mark.parametrize(
    "name, content",
    [
        ("labels.txt", b"1 2 3\n"),
        ("labels.npy", b"not an array"),
        ("labels.npy", b""),
    ],
)
def test_labels_from_a_file_that_is_neither_npy_nor_idx_are_one_line(
    tmp_path, items, capsys, name, content
):
    (tmp_path / name).write_bytes(content)
    out = tmp_path / "map.png"
    assert embed(items, tmp_path / name, out) == 1
    line = one_line(capsys.readouterr().err)
    assert f"{tmp_path / name}: --labels takes a .npy or an IDX file" in line and not out.exists()


# sample --n and --seed: refused at parsing, before a model loads


@pytest.mark.parametrize(
    "option, value",
    [
        ("--n", "0"),
        ("--n", "-1"),
        ("--n", "10001"),
        ("--n", "100000000"),
        ("--n", "many"),
        ("--seed", "-1"),
        ("--seed", "1.5"),
    ],
)
def test_sample_counts_and_seeds_out_of_range_are_usage_errors_at_parsing(
    tmp_path, capsys, option, value
):
    out = tmp_path / "s.png"
    with pytest.raises(SystemExit) as exit_:
        cli.main(["sample", option, value, "--out", str(out)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and f"argument {option}: " in err and repr(value) in err
    assert "10,000" in err if option == "--n" else "from 0" in err
    assert "Traceback" not in err and not out.exists()


@pytest.mark.parametrize("value", ["100000", "1", "many"])
def test_lossless_leaves_a_model_file_could_not_hold_are_refused_at_parsing(
    tmp_path, capsys, value
):
    """Refused before training, not when the trained model is loaded."""
    out = tmp_path / "m.aecm"
    with pytest.raises(SystemExit) as exit_:
        cli.main(["train", "--kind", "lossless", "--leaves", value, "--out", str(out)])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "argument --leaves: " in err and "16,384" in err
    assert "Traceback" not in err and not out.exists()


# score: a scorer's quantiles are finite numbers in order, or the scorer is refused


@pytest.mark.parametrize(
    "quantiles, message",
    [
        ([math.nan] * 1001, "NaN or infinity"),
        ([0.0] * 1000 + [math.inf], "NaN or infinity"),
        (list(range(1001))[::-1], "not in increasing order"),
        ("0.5", "not a list of two or more numbers"),
        ([1.0], "not a list of two or more numbers"),
    ],
)
def test_a_scorer_with_unusable_quantiles_is_refused_in_one_line_and_prints_no_json(
    tmp_path, items, capsys, quantiles, message
):
    model = scorer(tmp_path / "scorer.aecf", quantiles)
    out = tmp_path / "scores.png"
    assert cli.main(["score", str(items), "--model", str(model), "--out", str(out)]) == 1
    captured = capsys.readouterr()
    line = one_line(captured.err)
    assert line.startswith(f"aecodec: error: {model}: score_quantiles ") and message in line
    assert captured.out == "" and not out.exists() and not out.with_suffix(".csv").exists()


def test_the_api_refuses_nan_quantiles_instead_of_flagging_nothing(tmp_path, test_images):
    model, _ = family.load(scorer(tmp_path / "scorer.aecf", list(np.linspace(0, 1, 1001))))
    with pytest.raises(FormatError, match="NaN or infinity"):
        family.anomalies(test_images[:5], model, quantiles=[math.nan] * 1001)
    with pytest.raises(FormatError, match="NaN or infinity"):
        family.threshold(np.full(1001, math.nan), 99.0)


def test_a_diverged_model_makes_no_scorer(tmp_path, test_images):
    model, _ = family.load(scorer(tmp_path / "scorer.aecf", list(np.linspace(0, 1, 1001))))
    graph, state = nnx.split(model)
    diverged = nnx.merge(graph, jax.tree_util.tree_map(lambda a: a * np.nan, state))
    with pytest.raises(ValueError, match="diverged"):
        family.score_quantiles(diverged, test_images[:20])
    with pytest.raises(ValueError, match="NaN or infinity"):
        family.anomalies(test_images[:5], diverged, quantiles=list(np.linspace(0, 1, 1001)))


# JSON on standard output


def test_json_the_cli_prints_is_strict_even_for_nan_infinity_and_numpy_numbers(capsys):
    outputs.print_json(
        {
            "psnr": math.inf,
            "bits": math.nan,
            "steps": np.int64(3),
            "rate": np.float32(0.5),
            "rows": [{"psnr": -math.inf}],
        }
    )

    def refuse(token):
        raise ValueError(f"{token} is not JSON")

    printed = json.loads(capsys.readouterr().out, parse_constant=refuse)
    expected = {"psnr": "inf", "bits": "nan", "steps": 3, "rate": 0.5, "rows": [{"psnr": "-inf"}]}
    assert printed == expected
