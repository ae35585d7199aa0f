"""The examples in the public docstrings run and say what they show."""

import doctest

import codec
import codec.api


def test_docstring_examples_run():
    for module in (codec, codec.api):
        result = doctest.testmod(module, raise_on_error=False)
        assert result.attempted > 0 and result.failed == 0, module.__name__
