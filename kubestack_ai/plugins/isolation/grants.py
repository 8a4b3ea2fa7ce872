"""The credentials a plugin host gets for one run: its target's references (and its
plugin config's), resolved by the worker. Nothing else: the host's environment is
empty and every other reference fails inside it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from .. import secrets
from ..errors import SecretError
from ..models import MiddlewareTarget, PluginConfig
from ..secrets import is_secret_field


def references(target: MiddlewareTarget, config: PluginConfig) -> set[str]:
    refs: set[str] = set()
    if target.auth is not None and target.auth.password:
        refs.add(target.auth.password)
    if target.tls is not None and target.tls.key_password:
        refs.add(target.tls.key_password)
    refs.update(_option_refs(target.options))
    refs.update(_option_refs(config.options))
    return refs


def _option_refs(options: Mapping[str, Any]) -> Iterator[str]:
    for key, value in options.items():
        if isinstance(value, Mapping):
            yield from _option_refs(value)
        elif is_secret_field(key) and isinstance(value, str):
            yield value


def resolve(refs: set[str], fresh: bool = False) -> dict[str, dict[str, str]]:
    """``{ref: {"value": secret}}`` or ``{ref: {"error": why}}`` (the error names the
    reference, never a value). Read afresh at every run: a rotated secret is seen at the
    next one; ``fresh``: an exec: token is fetched again too (after an auth failure)."""
    out: dict[str, dict[str, str]] = {}
    for ref in refs:
        if fresh and ref.startswith("exec:"):
            secrets.forget_exec(ref)
        try:
            value = secrets.resolve_secret(ref)
        except SecretError as e:
            out[ref] = {"error": str(e)}
            continue
        if value is not None:
            out[ref] = {"value": value}
    return out
