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
import os
import signal
import sys

SIGNALS = tuple(
    getattr(signal, name)
    for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT")
    if hasattr(signal, name)
)


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


def _unraisable(hook):
    """``sys.unraisablehook`` that re-delivers an ``Interrupted`` raised where Python drops
    exceptions (a weakref callback, ``__del__``: the handler runs wherever the main thread is),
    instead of printing it and going on as if no signal had come."""

    def handle(unraisable) -> None:
        if isinstance(unraisable.exc_value, Interrupted):
            import threading

            # Sent again a moment later, from another thread: the handler then runs wherever the
            # main thread is, almost surely back in plain code (else this repeats).
            threading.Timer(0.01, os.kill, (os.getpid(), unraisable.exc_value.signum)).start()
            return
        hook(unraisable)

    handle.wrapped = hook
    return handle


def install() -> dict:
    """Raise ``Interrupted`` on every termination signal; returns the handlers it replaced.

    A signal already ignored stays ignored (``nohup``, ``trap '' HUP``, background jobs of
    non-interactive shells). Only in the main thread, as Python requires.
    """
    _state.update(depth=0, pending=None, ignore=False)
    if not hasattr(sys.unraisablehook, "wrapped"):
        sys.unraisablehook = _unraisable(sys.unraisablehook)
    previous = {}
    for signum in SIGNALS:
        if signal.getsignal(signum) is signal.SIG_IGN:
            continue
        try:
            previous[signum] = signal.signal(signum, _handler)
        except ValueError:  # not the main thread: asked so, not through threading, which would
            return previous  # be one more import between the program's start and its handlers
    return previous


def restore(previous: dict) -> None:
    """Put back the handlers ``install`` replaced (a caller that runs the CLI in its own
    process)."""
    for signum, handler in previous.items():
        signal.signal(signum, handler)
    sys.unraisablehook = getattr(sys.unraisablehook, "wrapped", sys.unraisablehook)
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


# What a terminal sends to its whole foreground process group (Ctrl-C, Ctrl-\, hang-up): a child
# process of ours must leave them to us, its parent, which then closes it in order.
TERMINAL_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGQUIT", "SIGHUP") if hasattr(signal, name)
)


@contextlib.contextmanager
def kept_from_new_threads():
    """Keep the terminal's signals (``TERMINAL_SIGNALS``) from the threads started inside the block,
    and from the processes those threads start (Dask's worker processes), for their whole life.

    The signals are blocked in this thread for the block's length: a thread inherits its creator's
    signal mask and a process its creator thread's, across exec. One that arrives meanwhile waits
    and lands here as the block ends. Python runs handlers in the main thread only, so the threads
    lose nothing; the child processes never see a Ctrl-C meant for the parent (each would print a
    KeyboardInterrupt traceback of its own), and end when the parent closes them or exits.
    """
    if not hasattr(signal, "pthread_sigmask"):  # not POSIX: no process group shares a Ctrl-C
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, TERMINAL_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
