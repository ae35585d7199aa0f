"""The ``aecodec`` program: its console script and ``python -m codec``.

A Ctrl-C in the program's first milliseconds must end it as quietly as one an hour in (exit
status 130, no traceback). So ``main`` catches the interrupt from its first statement on, installs
the signal handlers (``codec.signals``) and only then loads the command line. Before ``main`` come
the ``codec`` package and this module, which import nothing (``sys`` is built in); before them the
interpreter's own start (``site`` and the ``.pth`` files of the environment), where a signal is
Python's to report.
"""

import sys


def main() -> int:
    """Run the command line of ``sys.argv``; returns the exit status."""
    try:
        from codec import signals  # loads the stdlib's signal: an import a Ctrl-C can interrupt

        signals.install()
        from codec import cli  # argparse, ...; numpy and JAX later, as commands need them
    except KeyboardInterrupt as e:
        _decided()
        return getattr(e, "exit_status", 130)
    return cli.main()


def _decided() -> None:
    """The outcome is decided: a second signal changes nothing (once the handlers are ours)."""
    signals = sys.modules.get("codec.signals")
    if signals is not None:
        signals.ignore_from_now()


if __name__ == "__main__":
    sys.exit(main())
