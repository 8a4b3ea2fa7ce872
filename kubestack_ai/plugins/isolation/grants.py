"""The credentials a plugin host gets for one run: its target's references (and its
plugin config's), resolved by the worker. Nothing else: the host's environment is
empty and every other reference fails inside it.
"""

from __future__ import annotations

from types import SimpleNamespace

from .. import secrets
from ..errors import SecretError
from ..models import MiddlewareTarget, PluginConfig


def references(target: MiddlewareTarget, config: PluginConfig) -> set[str]:
    """Every reference of the target (auth, TLS, secret-looking options nested in dicts and
    lists) and of its plugin config's options."""
    refs = {ref for _, ref in secrets.target_references(target)}
    refs.update(ref for _, ref in secrets.target_references(
        SimpleNamespace(auth=None, tls=None, options=config.options)))
    return refs


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
