"""A plugin's ``config_schema`` (JSON Schema, from its manifest) applied to its config
before init: defaults filled in, every mismatch reported with its option path. And the
one check of a flat set of named values against their schemas (:func:`problems`): an
action's parameters, a target's options."""

from __future__ import annotations

from typing import Any

from .errors import ConfigError
from .models import PluginConfig


def fill_defaults(schema: Any, value: Any) -> Any:
    """A copy of ``value`` with the ``default`` of every missing property filled in,
    recursively through nested objects."""
    if not isinstance(schema, dict) or not isinstance(value, dict):
        return value
    out = dict(value)
    for name, sub in (schema.get("properties") or {}).items():
        if not isinstance(sub, dict):
            continue
        if name not in out and "default" in sub:
            out[name] = sub["default"]
        if name in out:
            out[name] = fill_defaults(sub, out[name])
    return out


def apply_config_schema(plugin_id: str, schema: dict[str, Any] | None,
                        config: PluginConfig) -> PluginConfig:
    """Validate ``config.options`` against the manifest's JSON Schema and fill defaults.

    Raises ConfigError listing every problem with its option path."""
    if not schema:
        return config
    options = fill_defaults(schema, config.options)
    from jsonschema import Draft202012Validator  # ~35 ms to import: only when used

    errors = sorted(Draft202012Validator(schema).iter_errors(options),
                    key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        detail = "; ".join(
            f"options.{'.'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}"
            for e in errors)
        raise ConfigError(f"plugin {plugin_id!r}: config does not match config_schema: {detail}")
    return config.model_copy(update={"options": options})


def problems(properties: dict[str, Any], values: Any, *, required: tuple[str, ...] = (),
             noun: str = "option") -> list[str]:
    """Every problem of ``values`` (a mapping of name -> value) against ``properties``
    (name -> JSON Schema): unknown names (with the known ones), missing required ones,
    and each value's type or range."""
    out = []
    unknown = sorted(set(values) - set(properties))
    if unknown:
        out.append(f"unknown {noun}(s) {', '.join(unknown)} "
                   f"(known: {', '.join(sorted(properties)) or 'none'})")
    missing = [p for p in required if p not in values]
    if missing:
        out.append(f"missing required {noun}(s) {', '.join(missing)}")
    given = [name for name in properties if name in values]
    if not given:
        return out  # nothing to check: jsonschema (~25 ms to import) is not imported
    from jsonschema import Draft202012Validator

    for name in given:
        out.extend(f"{name}: {err.message}"
                   for err in Draft202012Validator(properties[name]).iter_errors(values[name]))
    return out
