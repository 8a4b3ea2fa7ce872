"""The fleet file: which targets to diagnose, how often, and their health-check cadence.

    defaults:                 # optional, applied to every target
      interval: 300           # seconds between diagnoses
      health_interval: 30     # seconds between health checks (0: none)
    targets:
      - name: cache-1
        type: redis
        endpoints: ["10.0.0.5:6379"]
        mode: standalone
        auth: {password: env:CACHE_1_PASSWORD}     # references only
        categories: [memory, performance]         # empty or absent: all
        interval: 60
        health_interval: 15
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from kubestack_ai.notify.config import NotifyConfig
from kubestack_ai.plugins import MiddlewareTarget

TARGET_FIELDS = ("type", "name", "endpoints", "mode", "auth", "tls", "options", "thresholds",
                 "allow_actions")


class FleetError(ValueError):
    """The fleet file cannot be used; the message names the file and the field."""


class FleetTarget(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    target: MiddlewareTarget
    categories: tuple[str, ...] = ()
    interval: float = Field(300.0, gt=0)
    health_interval: float = Field(30.0, ge=0)
    cache_ttl: float | None = Field(None, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _split(cls, data: Any) -> Any:
        if isinstance(data, dict) and "target" not in data:
            data = dict(data)
            data["target"] = {k: data.pop(k) for k in TARGET_FIELDS if k in data}
        return data

    @property
    def key(self) -> str:
        return self.target.key

    def target_kwargs(self) -> dict[str, Any]:
        """The target as a task argument: references only, no type (the task has it)."""
        d = self.target.model_dump(mode="json", exclude_defaults=True)
        d.pop("type", None)
        d["name"] = self.target.name
        return d

    def entries(self) -> dict[str, dict[str, Any]]:
        """Beat entries: a diagnosis (fresh, it refreshes the cache) and a health check,
        each expiring after its interval so runs do not pile up while workers are down."""
        from celery.schedules import schedule  # noqa: PLC0415

        mtype = self.target.type
        out = {
            f"diagnose {self.key}": {
                "task": f"diagnose.{mtype}",
                "schedule": schedule(dt.timedelta(seconds=self.interval)),
                "kwargs": {"target": self.target_kwargs(), "categories": list(self.categories),
                           "force": True, "cache_ttl": self.cache_ttl if self.cache_ttl is not None
                           else self.interval},
                "options": {"expires": self.interval},
            },
        }
        if self.health_interval:
            out[f"health {self.key}"] = {
                "task": f"health.{mtype}",
                "schedule": schedule(dt.timedelta(seconds=self.health_interval)),
                "kwargs": {"target": self.target_kwargs()},
                "options": {"expires": self.health_interval},
            }
        return out


class Fleet(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    targets: tuple[FleetTarget, ...] = ()
    notify: NotifyConfig | None = None
    """Where to send status changes (see kubestack_ai.notify); sent by the active beat."""

    def entries(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for t in self.targets:
            out.update(t.entries())
        return out


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out.replace(".target", "") or "fleet"


def parse_fleet(data: Any, source: str = "fleet") -> Fleet:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FleetError(f"{source}: expected a mapping with 'targets', got {type(data).__name__}")
    unknown = set(data) - {"defaults", "targets", "notify"}
    if unknown:
        raise FleetError(f"{source}: unknown keys {', '.join(sorted(unknown))} "
                         "(expected: defaults, targets, notify)")
    defaults = data.get("defaults") or {}
    raw = data.get("targets") or []
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise FleetError(f"{source}: targets must be a list of mappings")
    try:
        fleet = Fleet.model_validate({"targets": [{**defaults, **t} for t in raw],
                                      "notify": data.get("notify")})
    except ValidationError as e:
        # without input values: a mistyped password must not reach a log line
        first = e.errors(include_input=False, include_url=False)[0]
        raise FleetError(f"{source}: {_where(tuple(first['loc']))}: {first['msg']}") from None
    seen: set[str] = set()
    for i, t in enumerate(fleet.targets):
        if t.key in seen:
            raise FleetError(f"{source}: targets[{i}]: duplicate target {t.key!r} "
                             "(give each a distinct name)")
        seen.add(t.key)
    return fleet


def load_fleet(path: str | Path) -> Fleet:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise FleetError(f"fleet file {p}: {e.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise FleetError(f"fleet file {p}: invalid YAML: {e}") from None
    return parse_fleet(data, f"fleet file {p}")
