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

The file is untrusted input read by a long-running beat: it is read with a guarded
loader (scheduler/yamlfast.py: safe types, no aliases, bounded nesting), at most
``MAX_FLEET_BYTES`` per file; a YAML error names the line and column, never the line's text (it
may hold a secret). Every target is checked as a task's arguments are (workers/args.py:
sizes capped), its type and categories against the plugins the caller knows, and every
invalid field of every target is reported at once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from kubestack_ai.notify.config import NotifyConfig
from kubestack_ai.plugins import MiddlewareTarget
from kubestack_ai.plugins.pyutil import did_you_mean, gc_paused
from kubestack_ai.workers.args import TaskArgsError, check_categories, check_target

from .yamlfast import load_yaml

MAX_FLEET_BYTES = 64 * 1024 * 1024
"""Per file: 100,000 targets fit; a runaway file is refused unread."""

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
    notify: NotifyConfig | None = None
    """Where to send status changes (see kubestack_ai.notify); sent by the active beat."""


DEFAULT_FIELDS = tuple(sorted({*TARGET_FIELDS, *(f for f in FleetTarget.model_fields
                                                  if f != "target")}))
"""What ``defaults`` may set: any field of a target."""


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
    unknown = set(data) - {"defaults", "targets", "notify"}
    if unknown:
        raise FleetError(f"{source}: unknown keys {', '.join(sorted(unknown))} "
                         "(expected: defaults, targets, notify)")
    defaults = data.get("defaults") or {}
    raw = data.get("targets") or []
    if not isinstance(defaults, dict):
        raise FleetError(f"{source}: defaults must be a mapping")
    for key in defaults:
        # here, once: applied to every target, a typo would be reported on each of them
        if key not in DEFAULT_FIELDS:
            name = str(key)[:64]
            raise FleetError(f"{source}: defaults.{name}: unknown field"
                             f"{did_you_mean(name, DEFAULT_FIELDS)} "
                             f"(known: {', '.join(DEFAULT_FIELDS)})")
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise FleetError(f"{source}: targets must be a list of mappings")
    return [{**defaults, **t} for t in raw] if defaults else raw


def _notify(docs: list[tuple[str, Any]]) -> NotifyConfig | None:
    """The ``notify:`` section: in at most one document of a fleet, checked by field."""
    found = [(source, data["notify"]) for source, data in docs
             if isinstance(data, dict) and data.get("notify") is not None]
    if len(found) > 1:
        raise FleetError(f"{found[1][0]}: notify: already given in {found[0][0]} "
                         "(one notify section per fleet)")
    if not found:
        return None
    source, raw = found[0]
    try:
        return NotifyConfig.model_validate(raw)
    except ValidationError as e:
        first = e.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(p) for p in ("notify", *first["loc"]))
        raise FleetError(f"{source}: {where}: {first['msg']}") from None


def _validate(docs: list[tuple[str, list[dict[str, Any]]]],
              notify: NotifyConfig | None = None,
              known: Mapping[str, Sequence[str]] | None = None) -> Fleet:
    """One pydantic call over every document's targets. Every problem of every target is
    reported, each with its document and place: pydantic's, the size caps of task
    arguments (workers/args.py) and, with ``known`` (middleware type -> its categories,
    empty: not known), an unknown type or category."""
    raw = [t for _, targets in docs for t in targets]
    problems = [(*_locate(docs, ("targets", i, *field)), why) for i, t in enumerate(raw)
                for field, why in _check(t, known)]
    try:
        fleet = Fleet.model_validate({"targets": raw, "notify": notify})
    except ValidationError as e:
        # without input values: a mistyped password must not reach a log line
        for err in e.errors(include_input=False, include_url=False):
            source, loc = _locate(docs, tuple(err["loc"]))
            problems.append((source, loc, err["msg"]))
        fleet = None
    if problems:
        problems.sort(key=lambda p: (p[1][1] if len(p[1]) > 1 else -1))
        out, prev = [], None
        for source, loc, why in problems:
            out.append(f"{source + ': ' if source != prev else ''}{_where(loc)}: {why}")
            prev = source
        raise FleetError("; ".join(out))
    assert fleet is not None
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


def _check(raw: dict[str, Any], known: Mapping[str, Sequence[str]] | None,
           ) -> list[tuple[tuple[str, ...], str]]:
    """A target's problems that pydantic does not see, as (field, what): sizes, an
    unknown type or category."""
    problems: list[tuple[tuple[str, ...], str]] = []
    try:
        check_target({k: v for k, v in raw.items() if k in TARGET_FIELDS})
        check_categories(raw.get("categories"))
    except TaskArgsError as e:
        problems.append(((), str(e)))
    mtype = raw.get("type")
    if known is not None and isinstance(mtype, str) and mtype not in known:
        problems.append((("type",), f"unknown type {mtype[:64]!r}"
                                    f"{did_you_mean(mtype[:64], sorted(known))} (known: "
                                    f"{', '.join(sorted(known))})"))
    elif known is not None and isinstance(mtype, str) and not problems and known[mtype]:
        bad = [c for c in raw.get("categories") or [] if c not in known[mtype]]
        if bad:
            problems.append((("categories",), f"unknown categories {', '.join(bad)} for type "
                                              f"{mtype} (known: {', '.join(known[mtype])})"))
    return problems


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


def parse_fleet(data: Any, source: str = "fleet",
                known: Mapping[str, Sequence[str]] | None = None) -> Fleet:
    targets = _targets(data, source)
    return _validate([(source, targets)], _notify([(source, data)]), known)


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
        with open(p, "rb") as fh:
            text = fh.read(MAX_FLEET_BYTES + 1)
    except OSError as e:
        raise FleetError(f"fleet file {p}: {e.strerror}") from None
    if len(text) > MAX_FLEET_BYTES:
        raise FleetError(f"fleet file {p}: larger than {MAX_FLEET_BYTES // (1024 * 1024)} MiB")
    if p.suffix == ".json":
        try:
            return json.loads(text)
        except ValueError as e:
            raise FleetError(f"fleet file {p}: invalid JSON: {e}") from None
    try:
        return load_yaml(text)
    except yaml.MarkedYAMLError as e:
        raise FleetError(f"fleet file {p}: invalid YAML: {yaml_problem(e)}") from None
    except yaml.YAMLError as e:  # the loader's own refusals (aliases, nesting): no text
        raise FleetError(f"fleet file {p}: invalid YAML: {e}") from None
    except UnicodeDecodeError as e:
        raise FleetError(f"fleet file {p}: not UTF-8 text (byte {e.start})") from None


def yaml_problem(e: yaml.MarkedYAMLError) -> str:
    """Line, column and what is wrong; never PyYAML's snippet of the line (a secret may
    be on it)."""
    mark = e.problem_mark or e.context_mark
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return where + (e.problem or e.context or "syntax error")


def load_fleet(path: str | Path, known: Mapping[str, Sequence[str]] | None = None) -> Fleet:
    """A fleet file, or every fleet file of a directory (``fleet.d/``) as one fleet."""
    p = Path(path)
    files = fleet_files(p) if p.is_dir() else [p]
    docs = []
    raws = []
    with gc_paused():
        for f in files:
            source = f"fleet file {f}"
            data = _read(f)
            docs.append((source, _targets(data, source)))
            raws.append((source, data))
        return _validate(docs, _notify(raws), known)
