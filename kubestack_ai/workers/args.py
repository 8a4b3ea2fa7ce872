"""Task arguments checked before anything runs: shapes, ranges and sizes.

A task's arguments come from anyone who can publish to the broker (``celery call``, a
script, beat): each one is checked here, and a bad one is a clear ``error`` in the
task's envelope, never a raw TypeError, never a value that breaks a later write. The
fleet file's targets go through the same checks when beat loads it.

Messages name the argument and what was expected; they never quote a value (a
mistyped password may be in it).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

MAX_NAME = 200
"""Characters in a target's name."""
MAX_ENDPOINTS = 64
MAX_ENDPOINT = 300
"""Characters in one endpoint (a DNS name is at most 253, plus the port)."""
MAX_FIELD_BYTES = 16 * 1024
"""JSON bytes of a target's options, thresholds or tls (each)."""
MAX_CATEGORIES = 32
MAX_CATEGORY = 64
MAX_CACHE_TTL = 7 * 24 * 3600.0
"""Seconds a result may be cached at most (a week)."""


class TaskArgsError(ValueError):
    """An argument of a task cannot be used; the message names it, never its value."""


def check_target(target: Any) -> dict[str, Any]:
    """A target as JSON: a mapping, with its sizes within the caps."""
    if not isinstance(target, Mapping):
        raise TaskArgsError(f"target must be a mapping (a JSON object), not {_kind(target)}")
    name = target.get("name")
    if name is not None and not isinstance(name, str):
        raise TaskArgsError(f"target.name must be a string, not {_kind(name)}")
    if isinstance(name, str) and len(name) > MAX_NAME:
        raise TaskArgsError(f"target.name is {len(name)} characters long; at most {MAX_NAME}")
    endpoints = target.get("endpoints")
    if isinstance(endpoints, Sequence) and not isinstance(endpoints, str):
        if len(endpoints) > MAX_ENDPOINTS:
            raise TaskArgsError(f"target.endpoints has {len(endpoints)} entries; at most "
                                f"{MAX_ENDPOINTS}")
        for i, e in enumerate(endpoints):
            if isinstance(e, str) and len(e) > MAX_ENDPOINT:
                raise TaskArgsError(f"target.endpoints[{i}] is {len(e)} characters long; "
                                    f"at most {MAX_ENDPOINT}")
    for field in ("options", "thresholds", "tls", "auth", "allow_actions"):
        value = target.get(field)
        if value is None:
            continue
        try:
            size = len(json.dumps(value))
        except (TypeError, ValueError):
            raise TaskArgsError(f"target.{field} is not JSON data") from None
        if size > MAX_FIELD_BYTES:
            raise TaskArgsError(f"target.{field} is {size} bytes as JSON; at most "
                                f"{MAX_FIELD_BYTES}")
    return dict(target)


def check_categories(categories: Any) -> tuple[str, ...]:
    """None or a list of category names."""
    if categories is None:
        return ()
    if isinstance(categories, str):
        raise TaskArgsError("categories must be a list of names, not a string (write "
                            "[\"memory\"], not \"memory\")")
    if not isinstance(categories, Sequence):
        raise TaskArgsError(f"categories must be a list of names, not {_kind(categories)}")
    if len(categories) > MAX_CATEGORIES:
        raise TaskArgsError(f"categories has {len(categories)} entries; at most "
                            f"{MAX_CATEGORIES}")
    for i, c in enumerate(categories):
        if not isinstance(c, str) or not c or len(c) > MAX_CATEGORY:
            raise TaskArgsError(f"categories[{i}] must be a category name (1 to "
                                f"{MAX_CATEGORY} characters)")
    return tuple(categories)


def check_known_categories(categories: Sequence[str], known: Sequence[str], where: str) -> None:
    unknown = [c for c in categories if c not in known]
    if unknown and known:
        raise TaskArgsError(f"{where}: unknown categories {', '.join(unknown)} "
                            f"(known: {', '.join(known)})")


def check_cache_ttl(value: Any) -> float | None:
    """None, or seconds from 0 to a week."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TaskArgsError(f"cache_ttl must be a number of seconds, not {_kind(value)}")
    if not math.isfinite(value) or not 0 <= value <= MAX_CACHE_TTL:
        raise TaskArgsError(f"cache_ttl must be between 0 and {MAX_CACHE_TTL:g} seconds")
    return float(value)


def check_force(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TaskArgsError(f"force must be true or false, not {_kind(value)}")
    return value


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {str: "a string", list: "a list", tuple: "a list", dict: "a mapping", int: "a number",
            float: "a number", bool: "a boolean"}.get(type(value), type(value).__name__)
