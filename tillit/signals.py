"""SIGTERM and SIGINT end a ``tillit`` command the way an error does: every ``with``/``finally`` runs, so every
process the command started is stopped by PID, children first, before it exits (143 or 130)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["Terminated", "stop_on_signals"]


class Terminated(BaseException):
    """The command was asked to stop (SIGTERM or SIGINT); raised in the main thread to unwind it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """While inside: SIGTERM and SIGINT raise :class:`Terminated`; a second signal during the clean-up is ignored
    (the clean-up stops the children itself, and must not be cut short)."""
    stopping = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        if stopping:
            return
        stopping = True
        raise Terminated(signum)

    if threading.current_thread() is not threading.main_thread():   # only the main thread may handle signals
        yield
        return
    previous = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for s, before in previous.items():
            signal.signal(s, before)
