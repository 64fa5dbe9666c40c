"""Ctrl-C in the ``deepnet`` command: held while a file is being written, and never lost
inside a finalizer. Both change process-wide state (a signal handler, the unraisable
hook), so only the command uses them, never the library.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def ctrl_c_held() -> Iterator[list[int]]:
    """Hold Ctrl-C until the block ends, then raise it: a checkpoint being written is
    finished. The list holds the signals that came meanwhile (main thread only: only it
    may set a handler; elsewhere the block runs as it is)."""
    came: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield came
        return
    previous = signal.signal(signal.SIGINT, lambda signum, frame: came.append(signum))
    try:
        yield came
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None
                      else signal.default_int_handler)
    if came:
        raise KeyboardInterrupt


class Interrupts:
    """A Ctrl-C that Python could not raise where it landed is not lost.

    A signal handled while a finalizer or a weakref callback runs (matplotlib has many)
    raises ``KeyboardInterrupt`` there, where Python prints "Exception ignored" and goes
    on. While the command runs, such an interrupt is recorded instead (through
    ``sys.unraisablehook``, restored afterwards) and :meth:`check` raises it at the next
    safe point: the end of each epoch (it is a ``fit`` callback) and each phase.
    """

    def __init__(self) -> None:
        self.pending = False

    def __enter__(self) -> Interrupts:
        self._previous = sys.unraisablehook
        sys.unraisablehook = self._hook
        return self

    def __exit__(self, *exc: object) -> None:
        sys.unraisablehook = self._previous

    def _hook(self, unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, KeyboardInterrupt):
            self.pending = True
        else:
            self._previous(unraisable)

    def check(self, *args: Any) -> None:
        """Raise a recorded interrupt (also a ``fit`` callback: ``cb(net, epoch, logs)``)."""
        if self.pending:
            self.pending = False
            raise KeyboardInterrupt


__all__ = ["Interrupts", "ctrl_c_held"]
