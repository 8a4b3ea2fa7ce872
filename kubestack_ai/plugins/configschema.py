"""A plugin's ``config_schema`` (JSON Schema, from its manifest) applied to its config
before init: defaults filled in, every mismatch reported with its option path."""

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
