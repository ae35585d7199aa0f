"""Coverage-guided fuzzing of the decoder with atheris (run by hand, not in CI).

    pip install atheris
    python fuzz/atheris_decompress.py -max_total_time=600 fuzz/corpus/

Seeds the corpus with a few valid files; any exception other than an AecodecError
subclass is a finding.
"""

import sys
from pathlib import Path

import atheris

with atheris.instrument_imports():
    import codec
    from bitstream import container


def seed(corpus: Path) -> None:
    corpus.mkdir(parents=True, exist_ok=True)
    images = codec.data.fashion_mnist("test")[:3]
    for q in (1, 4, 8):
        (corpus / f"seed-q{q}.aec").write_bytes(codec.compress(images, quality=q))
    (corpus / "seed-odd.aec").write_bytes(codec.compress(images[0, :5, :3], quality=2))


def test_one_input(raw: bytes) -> None:
    try:
        container.unpack(raw)
        codec.decompress(raw)
    except codec.AecodecError:
        pass


if __name__ == "__main__":
    corpora = [Path(a) for a in sys.argv[1:] if not a.startswith("-")]
    for c in corpora:
        seed(c)
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
