"""Helpers the layers share: a package's names imported on first use, the cyclic
garbage collector paused while a big batch of plain data is built, and the closest
known name for a message about an unknown one."""

from __future__ import annotations

import difflib
import gc
import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any


def lazy_exports(package: str, where: Mapping[str, str], namespace: dict[str, Any],
                 names: Sequence[str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__getattr__`` and ``__dir__`` (PEP 562): name ``n`` is imported from
    its module ``where[n]`` (relative to ``package``) on first use, then kept in the
    package's ``namespace`` (its ``globals()``), so the next use costs nothing. Start-up
    then pays only for the modules a command touches."""

    def __getattr__(name: str) -> Any:
        try:
            module = where[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(f".{module}", package), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic collector off while a big batch of plain data is built (a fleet of
    100,000 targets, a 10,000-target /metrics snapshot): its new containers trigger full
    collections that walk them again and again, though none is in a cycle (reference
    counting frees them all the same). Restored as it was."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def did_you_mean(word: str, known: Sequence[str]) -> str:
    """``", did you mean 'redis'?"`` for the closest of ``known`` to ``word``; "" when none
    is close."""
    match = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f", did you mean {match[0]!r}?" if match else ""
