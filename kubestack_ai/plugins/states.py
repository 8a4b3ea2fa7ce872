"""The legal lifecycle transitions (seed section 2.2), shared by registry and lifecycle."""

from __future__ import annotations

from .errors import IllegalTransitionError
from .models import PluginState

S = PluginState
TRANSITIONS: frozenset[tuple[PluginState, PluginState]] = frozenset(
    {
        (S.UNLOADED, S.LOADED),
        (S.LOADED, S.INITIALIZED),
        (S.INITIALIZED, S.RUNNING),
        (S.RUNNING, S.STOPPED),
        (S.INITIALIZED, S.LOADED),
    }
    | {(s, S.FAILED) for s in S if s is not S.FAILED}
)


def check_transition(plugin_id: str, current: PluginState, target: PluginState) -> None:
    if (current, target) not in TRANSITIONS:
        raise IllegalTransitionError(plugin_id, current, target)
