"""Plugin dependencies (seed section 9.3): version ranges and load order.

``requires: [redis-diagnostics >= 1.0.0]`` in a manifest. The load order is topological;
a cycle is refused with the cycle named; a missing dependency or one whose version does
not satisfy the range is refused naming both versions; a plugin depending on a refused
one is refused too, and everything else still loads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from packaging.version import InvalidVersion, Version

from .errors import DependencyCycleError, DependencyError

if TYPE_CHECKING:  # packaging's requirement parser compiles ~60 regexes: imported on use
    from packaging.requirements import Requirement


@dataclass(frozen=True)
class Node:
    plugin_id: str
    version: str
    requires: tuple[str, ...]
    location: str


def unsatisfied(req: Requirement, have_version: str) -> bool:
    try:
        return not req.specifier.contains(Version(have_version), prereleases=True)
    except InvalidVersion:
        return True


def check_requirement(node: Node, req: Requirement, available: Mapping[str, str]) -> None:
    """Raise DependencyError when ``req`` is not met by ``available`` (id -> version)."""
    have = available.get(req.name)
    want = f"{req.name}{req.specifier}" if str(req.specifier) else req.name
    if have is None:
        raise DependencyError(node.plugin_id, node.location,
                              f"requires {want} (version {req.specifier or 'any'}), "
                              f"which is not installed")
    if str(req.specifier) and unsatisfied(req, have):
        raise DependencyError(node.plugin_id, node.location,
                              f"requires {want} but {req.name} {have} is installed")


def resolve(nodes: Sequence[Node], available: Mapping[str, str] | None = None
            ) -> tuple[list[Node], dict[str, DependencyError]]:
    """Order ``nodes`` so that dependencies come first.

    ``available``: plugins already loaded (id -> version), e.g. the builtins. Returns
    the loadable nodes in order, and the refused ones with the reason.
    """
    available = dict(available or {})
    by_id = {n.plugin_id: n for n in nodes}
    refused: dict[str, DependencyError] = {}
    order: list[Node] = []
    state: dict[str, int] = {}  # 1 visiting, 2 done
    stack: list[str] = []

    def visit(pid: str) -> bool:
        """True when ``pid`` can load (and has been appended to ``order``)."""
        if state.get(pid) == 2:
            return pid not in refused
        node = by_id[pid]
        if state.get(pid) == 1:
            cycle = stack[stack.index(pid):] + [pid]
            for member in cycle[:-1]:
                m = by_id[member]
                refused.setdefault(member, DependencyCycleError(member, m.location, cycle))
            return False
        state[pid] = 1
        stack.append(pid)
        ok = True
        for raw in node.requires:
            from packaging.requirements import Requirement  # noqa: PLC0415

            req = Requirement(raw)
            dep = by_id.get(req.name)
            if dep is not None:
                if not visit(req.name):
                    ok = False
                    if pid not in refused:
                        why = refused.get(req.name)
                        refused[pid] = (why if isinstance(why, DependencyCycleError)
                                        and pid in why.cycle else DependencyError(
                            pid, node.location,
                            f"requires {req.name}, which was refused: {why}"))
                    continue
                have = {req.name: dep.version}
            else:
                have = available
            try:
                check_requirement(node, req, have)
            except DependencyError as e:
                ok = False
                refused.setdefault(pid, e)
        stack.pop()
        state[pid] = 2
        if ok and pid not in refused:
            order.append(node)
            return True
        return False

    for n in nodes:
        visit(n.plugin_id)
    return order, refused
