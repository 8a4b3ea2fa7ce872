"""A deadline with cancellation, passed to every plugin call (Go's context.Context)."""

from __future__ import annotations

import time

from .errors import DeadlineExceeded


class Deadline:
    """A point in monotonic time, and a flag that cancels the work before it.

    Plugins read :meth:`remaining` to size their I/O timeouts and call :meth:`check`
    between steps; the sandbox cancels the deadline when the caller stops waiting.
    """

    __slots__ = ("_at", "_cancelled", "_parent")

    def __init__(self, timeout: float | None = None, parent: Deadline | None = None) -> None:
        at: float = time.monotonic() + timeout if timeout is not None else float("inf")
        if parent is not None:
            at = min(at, parent.at)
        self._at = at
        # a flag, not an Event: nothing waits on it, and an Event (a Condition and its
        # lock) cost a few microseconds per deadline, five deadlines a diagnosis
        self._cancelled = False
        self._parent = parent

    @property
    def at(self) -> float:
        """The monotonic time of the deadline (inf when none)."""
        return self._at

    def child(self, timeout: float | None) -> Deadline:
        """A deadline no later than this one, cancelled with it."""
        return Deadline(timeout, parent=self)

    def remaining(self, cap: float | None = None) -> float:
        """Seconds left (0 when past or cancelled), at most ``cap``."""
        if self.cancelled:
            return 0.0
        left = max(0.0, self._at - time.monotonic())
        return min(left, cap) if cap is not None else left

    @property
    def expired(self) -> bool:
        return self.cancelled or time.monotonic() >= self._at

    @property
    def cancelled(self) -> bool:
        d: Deadline | None = self
        while d is not None:
            if d._cancelled:
                return True
            d = d._parent
        return False

    def cancel(self) -> None:
        self._cancelled = True  # one attribute store: atomic, seen by every thread

    def check(self, what: str = "operation") -> None:
        """Raise :class:`DeadlineExceeded` when the deadline has passed or was cancelled."""
        if self.cancelled:
            raise DeadlineExceeded(f"{what} cancelled")
        if time.monotonic() >= self._at:
            raise DeadlineExceeded(f"{what} passed its deadline")

    def __repr__(self) -> str:
        return f"Deadline(remaining={self.remaining():.3f}s, cancelled={self.cancelled})"
