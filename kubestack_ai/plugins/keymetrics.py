"""Key metrics: what a plugin's target page charts over time.

Each plugin declares which of its metrics an operator watches (``KEY_METRICS`` in its
``constants.py``, plain data): the metric's name in ``DiagnosticResult.metrics``, a
title, its unit, and whether it is a counter to chart as a rate per second. A metric
whose value is an object (Kafka's lag per consumer group) is one line per key. The web
view reads the declarations here without importing any plugin's code.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module

from .catalogue import BUILTINS


@dataclass(frozen=True, slots=True)
class KeyMetric:
    name: str
    """The key in ``DiagnosticResult.metrics``."""
    title: str
    unit: str
    """``bytes``, ``%``, ``ratio``, ``s``, ``/s``, ``connections``, ``messages`` ..."""
    rate: bool = False
    """A counter: charted as its increase per second between runs."""


def key_metrics(plugin_id: str) -> tuple[KeyMetric, ...]:
    """The key metrics a builtin plugin declares; () for a plugin that declares none."""
    spec = BUILTINS.get(plugin_id)
    if spec is None:
        return ()
    try:
        mod = import_module(f"kubestack_ai.plugins.{spec['middleware_type']}.constants")
    except ImportError:
        return ()
    return tuple(getattr(mod, "KEY_METRICS", ()))
