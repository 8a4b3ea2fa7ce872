"""Command groups. Each module has ``register(subparsers)``; add a line to add one."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from kubestack_ai.ksa.commands import action, diagnose, fleet, flower, index, plugin, results, serve

COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [  # type: ignore[type-arg]
    plugin.register,
    diagnose.register,
    action.register,
    results.register,
    fleet.register,
    serve.register,
    flower.register,
    index.register,
]
