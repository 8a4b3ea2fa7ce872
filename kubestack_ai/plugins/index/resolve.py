"""``requires`` resolved transitively from the index, before anything is installed.

Depth first from the plugin asked for: a requirement already met by what is installed
here (a builtin, an installed version) is kept; otherwise the newest version in the index
that satisfies the range is planned and its own requirements resolved in turn. A cycle,
or a range nothing satisfies, is refused with the chain of requirements that leads to it.
The plan lists dependencies first.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet

from ..errors import ResolveError
from .document import vkey

Versions = Mapping[str, dict[str, Any]]
"""version -> index entry of one plugin."""


def resolve(plugin_id: str, spec: SpecifierSet, find: Callable[[str], Versions | None],
            installed: Mapping[str, str],
            check: Callable[[str, str, dict[str, Any]], None] | None = None
            ) -> list[tuple[str, str]]:
    """[(id, version)] to install, dependencies first; raises ResolveError. ``check``
    vets a chosen version's entry before its requirements are read (its signature)."""
    chosen: dict[str, str] = {}
    order: list[tuple[str, str]] = []
    stack: list[str] = []

    def fits(v: str, s: SpecifierSet) -> bool:
        return s.contains(vkey(v), prereleases=True) if str(s) else True

    def visit(pid: str, s: SpecifierSet, chain: list[str], root: bool) -> None:
        want = f"{pid}{s}" if str(s) else pid
        path = " -> ".join([*chain, want])
        if pid in stack:
            cycle = " -> ".join([*stack[stack.index(pid):], pid])
            raise ResolveError(f"cannot install {plugin_id}: requirement cycle {cycle} "
                               f"(via {path})")
        if pid in chosen:
            if fits(chosen[pid], s):
                return
            raise ResolveError(f"cannot install {plugin_id}: {path} conflicts with "
                               f"{pid} {chosen[pid]} already planned")
        have = installed.get(pid)
        if not root and have is not None and fits(have, s):
            return
        vs = find(pid)
        if not vs:
            where = f" ({pid} {have} is installed)" if have else ""
            raise ResolveError(f"cannot install {plugin_id}: {path}: {pid} is in no index"
                               f"{where}")
        ok = sorted((v for v in vs if fits(v, s)), key=vkey)
        if not ok:
            where = f"; {pid} {have} is installed" if have else ""
            raise ResolveError(f"cannot install {plugin_id}: {path}: no version of {pid} "
                               f"satisfies {s or 'any'} (the index has "
                               f"{', '.join(sorted(vs, key=vkey))}{where})")
        v = ok[-1]
        if check is not None:
            check(pid, v, vs[v])
        stack.append(pid)
        for raw in vs[v].get("requires", ()):
            try:
                req = Requirement(raw)
            except InvalidRequirement:
                raise ResolveError(f"cannot install {plugin_id}: {pid} {v} requires "
                                   f"{raw!r}, which is not 'id >= version'") from None
            visit(req.name, req.specifier, [*chain, f"{pid} {v}"], False)
        stack.pop()
        chosen[pid] = v
        order.append((pid, v))

    visit(plugin_id, spec, [], True)
    return order


def parse_wanted(text: str) -> tuple[str, SpecifierSet]:
    """``ID`` or ``ID==VERSION`` (any PEP 440 range works too)."""
    try:
        req = Requirement(text)
    except InvalidRequirement:
        raise ResolveError(f"{text!r} is not ID or ID==VERSION") from None
    return req.name, req.specifier
