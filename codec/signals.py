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


def install() -> None:
    """Raise ``Interrupted`` on every termination signal (in the main thread only, as Python requires)."""
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    _state.update(depth=0, pending=None, ignore=False)
    for signum in SIGNALS:
        signal.signal(signum, _handler)


def ignore_from_now() -> None:
    """The work is done: a signal that arrives while the process exits changes nothing."""
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
