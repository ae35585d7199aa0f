"""Termination signals as exceptions, and sections they cannot split.

The CLI turns SIGINT, SIGTERM, SIGHUP and SIGQUIT into ``Interrupted`` (a KeyboardInterrupt),
so every ``with`` block unwinds and removes its temporary files, whichever signal came:
``timeout``, ``kill``, systemd and docker send SIGTERM, a closed terminal SIGHUP.

``deferred()`` marks a section that must run whole once begun, such as "rename the output
into place, then remove the input": a signal arriving inside it is held and raised as the
section ends, so it lands before or after the section, never inside it.

Handlers are process-wide by nature (Python runs them in the main thread, whichever thread
the kernel picked), so the state here is module-level; only ``install`` changes handlers.
"""

from __future__ import annotations

import contextlib
import signal

SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT") if hasattr(signal, name))


class Interrupted(KeyboardInterrupt):
    """A termination signal arrived; ``exit_status`` is 128 + its number, as shells report it."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.exit_status = 128 + signum


_state = {"depth": 0, "pending": None, "ignore": False}


def _handler(signum, _frame) -> None:
    if _state["ignore"]:
        return
    if _state["depth"]:
        _state["pending"] = _state["pending"] or signum
        return
    raise Interrupted(signum)


def install() -> dict:
    """Raise ``Interrupted`` on every termination signal; returns the handlers it replaced.

    A signal already ignored stays ignored (``nohup``, ``trap '' HUP``, background jobs of
    non-interactive shells). Only in the main thread, as Python requires.
    """
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    _state.update(depth=0, pending=None, ignore=False)
    previous = {}
    for signum in SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, _handler)
    return previous


def restore(previous: dict) -> None:
    """Put back the handlers ``install`` replaced (a caller that runs the CLI in its own process)."""
    for signum, handler in previous.items():
        signal.signal(signum, handler)
    _state.update(depth=0, pending=None, ignore=False)


def ignore_from_now() -> None:
    """The program's outcome is decided: a signal that arrives while it exits changes nothing."""
    _state["ignore"] = True


@contextlib.contextmanager
def deferred():
    """Hold termination signals until the block ends, then raise the first one held."""
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
        if _state["depth"] == 0 and _state["pending"] is not None:
            signum, _state["pending"] = _state["pending"], None
            if not _state["ignore"]:
                raise Interrupted(signum)
