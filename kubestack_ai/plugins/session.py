"""A connection a diagnosis holds, that a call past its deadline may still be using.

A call that overran its deadline may still be reading on its connection when the next
one starts (the sandbox gives up on a thread; it cannot stop it): such a busy session is
abandoned, and the call still using it closes it when it is done. The MySQL and
PostgreSQL plugins keep one per target.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import TypeVar

S = TypeVar("S", bound="Abandonable")


class Abandonable:
    """``use()`` around every call on the connection, ``release()`` to let it go;
    subclasses define ``close()``."""

    def __init__(self) -> None:
        self.busy = threading.Lock()
        self.abandoned = False

    def close(self) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def use(self: S) -> Iterator[S]:
        with self.busy:
            try:
                yield self
            finally:
                if self.abandoned:
                    self.close()

    def release(self) -> None:
        """Close now when idle; otherwise the call still using it closes it when done."""
        if self.busy.acquire(blocking=False):
            try:
                self.close()
            finally:
                self.busy.release()
        else:
            self.abandoned = True
