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

The file is untrusted input read by a long-running beat: it is read with the guarded
YAML loader of plugin manifests (safe types, no aliases, bounded nesting), at most
``MAX_FLEET_BYTES``; a YAML error names the line and column, never the line's text (it
may hold a secret). Every target is checked as a task's arguments are (workers/args.py:
sizes capped), its type and categories against the plugins the caller knows, and every
invalid field of every target is reported at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from kubestack_ai.plugins import MiddlewareTarget
from kubestack_ai.plugins.manifest import parse_yaml
from kubestack_ai.workers.args import TaskArgsError, check_categories, check_target

MAX_FLEET_BYTES = 4 * 1024 * 1024
"""A fleet file of tens of thousands of targets fits; a runaway one is refused unread."""

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


def parse_fleet(data: Any, source: str = "fleet",
                known: Mapping[str, Sequence[str]] | None = None) -> Fleet:
    """The fleet from parsed YAML. ``known``: middleware type -> its categories (empty:
    not known); a target of another type, or a category its plugin lacks, is refused.
    Every problem of every target is reported, each with its place."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FleetError(f"{source}: expected a mapping with 'targets', got {type(data).__name__}")
    unknown = set(data) - {"defaults", "targets"}
    if unknown:
        raise FleetError(f"{source}: unknown keys {', '.join(sorted(unknown))} "
                         "(expected: defaults, targets)")
    defaults = data.get("defaults") or {}
    raw = data.get("targets") or []
    if not isinstance(defaults, dict):
        raise FleetError(f"{source}: defaults must be a mapping")
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise FleetError(f"{source}: targets must be a list of mappings")
    problems: list[str] = []
    targets: list[FleetTarget] = []
    for i, t in enumerate(raw):
        problems += _check(i, {**defaults, **t}, known, targets)
    seen: set[str] = set()
    for i, ft in enumerate(targets):
        if ft.key in seen:
            problems.append(f"targets[{i}]: duplicate target {ft.key!r} (give each a distinct "
                            "name)")
        seen.add(ft.key)
    if problems:
        raise FleetError(f"{source}: " + "; ".join(problems))
    return Fleet(targets=tuple(targets))


def _check(i: int, raw: dict[str, Any], known: Mapping[str, Sequence[str]] | None,
           out: list[FleetTarget]) -> list[str]:
    """The problems of target ``i`` (appending it to ``out`` when it has none)."""
    problems: list[str] = []
    try:
        check_target({k: v for k, v in raw.items() if k in TARGET_FIELDS})
        check_categories(raw.get("categories"))
    except TaskArgsError as e:
        problems.append(f"targets[{i}]: {e}")
    mtype = raw.get("type")
    if known is not None and isinstance(mtype, str) and mtype not in known:
        problems.append(f"targets[{i}].type: unknown type {mtype[:64]!r} (known: "
                        f"{', '.join(sorted(known))})")
    elif known is not None and isinstance(mtype, str) and not problems:
        cats = raw.get("categories") or []
        bad = [c for c in cats if known[mtype] and c not in known[mtype]]
        if bad:
            problems.append(f"targets[{i}].categories: unknown categories {', '.join(bad)} "
                            f"for type {mtype} (known: {', '.join(known[mtype])})")
    try:
        ft = FleetTarget.model_validate(raw)
    except ValidationError as e:
        # without input values: a mistyped password must not reach a log line
        for err in e.errors(include_input=False, include_url=False):
            problems.append(f"{_where(('targets', i, *err['loc']))}: {err['msg']}")
    else:
        if not problems:
            out.append(ft)
    return problems


def load_fleet(path: str | Path, known: Mapping[str, Sequence[str]] | None = None) -> Fleet:
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            raw = fh.read(MAX_FLEET_BYTES + 1)
    except OSError as e:
        raise FleetError(f"fleet file {p}: {e.strerror}") from None
    if len(raw) > MAX_FLEET_BYTES:
        raise FleetError(f"fleet file {p}: larger than {MAX_FLEET_BYTES // (1024 * 1024)} MiB")
    try:
        data = parse_yaml(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise FleetError(f"fleet file {p}: not UTF-8 text (byte {e.start})") from None
    except yaml.MarkedYAMLError as e:
        raise FleetError(f"fleet file {p}: invalid YAML: {yaml_problem(e)}") from None
    except yaml.YAMLError as e:  # the guard's own refusals (aliases, nesting): no text
        raise FleetError(f"fleet file {p}: invalid YAML: {e}") from None
    return parse_fleet(data, f"fleet file {p}", known)


def yaml_problem(e: yaml.MarkedYAMLError) -> str:
    """Line, column and what is wrong; never PyYAML's snippet of the line (a secret may
    be on it)."""
    mark = e.problem_mark or e.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return where + (e.problem or e.context or "syntax error")
