"""The fleet file: which targets to diagnose, how often, and their health-check cadence.

A fleet is one file, or a directory (``fleet.d/``) of ``*.yaml`` / ``*.yml`` / ``*.json``
files read in name order, each with its own ``defaults``; a target key may appear in
only one of them. Big fleets: the YAML is built straight from libyaml's events
(scheduler/yamlfast.py), ``.json`` files are read by the json module (fastest), and the
whole list is validated in one pydantic call.

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

import gc
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from kubestack_ai.plugins import MiddlewareTarget

from .yamlfast import load_yaml

FLEET_SUFFIXES = (".yaml", ".yml", ".json")

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

    def jobs(self) -> list[tuple[str, str, dict[str, Any], float]]:
        """Beat's jobs as (name, task, kwargs, interval): a diagnosis (forced, so it
        refreshes the cache) and a health check; beat makes each message expire after
        its interval so runs do not pile up while workers are down."""
        mtype = self.target.type
        target = self.target_kwargs()
        out = [(f"diagnose {self.key}", f"diagnose.{mtype}",
                {"target": target, "categories": list(self.categories), "force": True,
                 "cache_ttl": self.cache_ttl if self.cache_ttl is not None else self.interval},
                self.interval)]
        if self.health_interval:
            out.append((f"health {self.key}", f"health.{mtype}", {"target": target},
                        self.health_interval))
        return out


class Fleet(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    targets: tuple[FleetTarget, ...] = ()


def _where(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out.replace(".target", "") or "fleet"


def _targets(data: Any, source: str) -> list[dict[str, Any]]:
    """A fleet document's targets with its defaults applied (not validated yet)."""
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
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise FleetError(f"{source}: targets must be a list of mappings")
    return [{**defaults, **t} for t in raw] if defaults else raw


def _validate(docs: list[tuple[str, list[dict[str, Any]]]]) -> Fleet:
    """One pydantic call over every document's targets; errors name the document."""
    raw = [t for _, targets in docs for t in targets]
    try:
        fleet = Fleet.model_validate({"targets": raw})
    except ValidationError as e:
        # without input values: a mistyped password must not reach a log line
        first = e.errors(include_input=False, include_url=False)[0]
        source, loc = _locate(docs, tuple(first["loc"]))
        raise FleetError(f"{source}: {_where(loc)}: {first['msg']}") from None
    seen: dict[str, str] = {}
    for i, t in enumerate(fleet.targets):
        key = t.key
        if key in seen:
            source, loc = _locate(docs, ("targets", i))
            where = "" if seen[key] == source else f" (also in {seen[key]})"
            raise FleetError(f"{source}: {_where(loc)}: duplicate target {key!r}{where} "
                             "(give each a distinct name)")
        seen[key] = _locate(docs, ("targets", i))[0]
    return fleet


def _locate(docs: list[tuple[str, list[dict[str, Any]]]],
            loc: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
    """Which document a location in the joined target list falls in, and its index there."""
    if len(loc) < 2 or loc[0] != "targets" or not isinstance(loc[1], int):
        return docs[0][0] if docs else "fleet", loc
    i = loc[1]
    for source, targets in docs:
        if i < len(targets):
            return source, ("targets", i, *loc[2:])
        i -= len(targets)
    return docs[-1][0], loc


def parse_fleet(data: Any, source: str = "fleet") -> Fleet:
    return _validate([(source, _targets(data, source))])


def fleet_files(path: Path) -> list[Path]:
    """The files of a fleet: the file itself, or a directory's fleet files by name."""
    if not path.is_dir():
        return [path]
    return sorted(p for p in path.iterdir()
                  if p.suffix in FLEET_SUFFIXES and not p.name.startswith(".") and p.is_file())


def fleet_signature(path: str | Path) -> tuple[tuple[str, int, int], ...]:
    """What changes when the fleet does: each file's name, mtime and size. Raises
    OSError when the fleet is missing."""
    p = Path(path)
    out = []
    for f in fleet_files(p):
        st = f.stat()
        out.append((f.name, st.st_mtime_ns, st.st_size))
    if not out:
        p.stat()  # an empty directory is a fleet of nothing; a missing one an error
    return tuple(out)


def _read(p: Path) -> Any:
    try:
        text = p.read_bytes()
    except OSError as e:
        raise FleetError(f"fleet file {p}: {e.strerror}") from None
    if p.suffix == ".json":
        try:
            return json.loads(text)
        except ValueError as e:
            raise FleetError(f"fleet file {p}: invalid JSON: {e}") from None
    try:
        return load_yaml(text)
    except yaml.YAMLError as e:
        raise FleetError(f"fleet file {p}: invalid YAML: {e}") from None


@contextmanager
def no_gc() -> Iterator[None]:
    """The cyclic GC off while a big fleet is built: its millions of new containers
    trigger full collections that walk them all again and again (3x the load time at
    100,000 targets here). Plain data: reference counting frees it all the same."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def load_fleet(path: str | Path) -> Fleet:
    """A fleet file, or every fleet file of a directory (``fleet.d/``) as one fleet."""
    p = Path(path)
    files = fleet_files(p) if p.is_dir() else [p]
    docs = []
    with no_gc():
        for f in files:
            source = f"fleet file {f}"
            docs.append((source, _targets(_read(f), source)))
        return _validate(docs)
