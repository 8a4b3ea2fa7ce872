"""Plugin manifests (seed section 8.2): safe parsing and field-by-field validation.

A manifest is small YAML written by a third party, so it is read defensively:

- at most :data:`MAX_MANIFEST_BYTES` bytes are read;
- PyYAML's pure-Python safe loader, with aliases refused (a "billion laughs" alias bomb
  is rejected at its first alias, in bounded time and memory) and nesting bounded;
- every problem is collected, with the file, the field and what is wrong, so that a
  plugin author sees all of them at once (``ksa plugin validate``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from packaging.version import InvalidVersion, Version
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from .errors import ManifestError, Problem
from .models import API_VERSION, PluginType

if TYPE_CHECKING:  # packaging's requirement parser compiles ~60 regexes: imported on use
    from packaging.requirements import Requirement

MAX_MANIFEST_BYTES = 64 * 1024
MAX_DEPTH = 32
"""File names of a manifest inside a plugin's own folder (seed section 8.2)."""

ENTRY = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
API = re.compile(r"^(\d+)\.(\d+)$")


class _Guard(Composer):
    """The composer step, refusing aliases and deep nesting (a bomb never expands)."""

    _depth = 0
    check_event: Any  # from the parser it is mixed with
    peek_event: Any

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            mark = event.start_mark
            raise yaml.YAMLError(
                f"line {mark.line + 1}: YAML aliases (*{event.anchor}) are not allowed here "
                "(they allow alias bombs); write the value out")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.YAMLError(f"nesting deeper than {MAX_DEPTH} levels")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _Loader(_Guard, yaml.SafeLoader):
    """Pure Python: scanner, parser, guarded composer, safe constructor."""


if yaml.__with_libyaml__:
    from yaml._yaml import CParser

    class _CLoader(_Guard, CParser, SafeConstructor, Resolver):
        """libyaml scans and parses (6x faster); our composer still sees every event."""

        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

    LOADER: type[Any] = _CLoader
else:  # pragma: no cover - PyYAML built without libyaml
    LOADER = _Loader


def parse_yaml(text: str) -> Any:
    """Parse untrusted YAML: safe types only, no aliases, bounded depth."""
    loader = LOADER(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


class Manifest(BaseModel):
    """The seed's manifest, plus ``entry`` (the object to load) and ``api_version``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$", max_length=128)
    name: str = Field(min_length=1)
    version: str
    type: PluginType = PluginType.MIDDLEWARE
    description: str = ""
    author: str = ""
    homepage: str = ""
    license: str = ""
    requires: tuple[str, ...] = ()
    """Other plugins this one needs: ``redis-diagnostics >= 1.0.0``."""
    capabilities: tuple[str, ...] = ()
    config_schema: dict[str, Any] | None = None
    """JSON Schema of the plugin config's ``options``; its defaults are filled before init."""
    entry: str | None = None
    """``module:attr``, the module relative to the plugin's folder: a Plugin class or a
    zero-argument factory returning a Plugin. Required for plugin directories."""
    api_version: str = API_VERSION

    @field_validator("version")
    @classmethod
    def _version(cls, v: str) -> str:
        try:
            Version(v)
        except InvalidVersion:
            raise ValueError(f"{v!r} is not a version (PEP 440, e.g. 1.0.0)") from None
        return v

    @field_validator("requires")
    @classmethod
    def _requires(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        if not v:
            return v
        from packaging.requirements import InvalidRequirement, Requirement  # noqa: PLC0415

        for i, r in enumerate(v):
            try:
                Requirement(r)
            except InvalidRequirement as e:
                raise ValueError(f"[{i}] {r!r} is not 'plugin-id >= 1.0.0': {e}") from None
        return v

    @field_validator("entry")
    @classmethod
    def _entry(cls, v: str | None) -> str | None:
        if v is not None and not ENTRY.match(v):
            raise ValueError(f"{v!r} is not 'module:attr' (e.g. plugin:HttpPlugin)")
        return v

    @field_validator("api_version")
    @classmethod
    def _api(cls, v: str) -> str:
        if not API.match(v):
            raise ValueError(f"{v!r} is not MAJOR.MINOR (this framework is {API_VERSION})")
        return v

    @field_validator("config_schema")
    @classmethod
    def _schema(cls, v: dict[str, Any] | None) -> dict[str, Any] | None:
        problem = _schema_problem(v) if v is not None else None
        if problem:
            raise ValueError(problem)
        return v

    def requirements(self) -> list[Requirement]:
        from packaging.requirements import Requirement  # noqa: PLC0415

        return [Requirement(r) for r in self.requires]


def api_problem(api_version: str) -> str | None:
    """Why a plugin written for ``api_version`` cannot run here, or None when it can.

    Same major required; a newer minor than ours may call what we lack."""
    m, ours = API.match(api_version), API.match(API_VERSION)
    assert ours is not None
    if m is None:
        return f"api_version {api_version!r} is not MAJOR.MINOR"
    if m.group(1) != ours.group(1) or int(m.group(2)) > int(ours.group(2)):
        return (f"written for plugin API {api_version}, this framework implements "
                f"{API_VERSION} (same major and a minor no newer than ours required)")
    return None


def _field(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def validate_manifest(data: Any, file: str | Path) -> Manifest:
    """Validate parsed YAML; raise :class:`ManifestError` with every problem found."""
    file = str(file)
    if not isinstance(data, dict):
        got = "an empty file" if data is None else f"a {type(data).__name__}"
        raise ManifestError(file, [Problem(file, "", f"a manifest is a mapping, got {got}")])
    raw_id = data.get("id")
    plugin_id = raw_id if isinstance(raw_id, str) else ""
    problems: list[Problem] = []
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as e:
        for err in e.errors():
            loc = err["loc"]
            msg = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                msg = "unknown field (known: " + ", ".join(Manifest.model_fields) + ")"
            elif err["type"] == "missing":
                msg = "required field is missing"
            elif "input" in err and err["type"] not in ("value_error",):
                msg = f"{msg} (got {_short(err['input'])})"
            problems.append(Problem(file, _field(loc), msg))
        raise ManifestError(file, problems, plugin_id) from None
    why = api_problem(manifest.api_version)
    if why:
        raise ManifestError(file, [Problem(file, "api_version", why)], manifest.id)
    return manifest


def _short(value: Any, limit: int = 60) -> str:
    s = repr(value)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def load_manifest(path: str | Path) -> Manifest:
    """Read, parse and validate one manifest file."""
    path = Path(path)
    file = str(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_MANIFEST_BYTES + 1)
    except OSError as e:
        raise ManifestError(file, [Problem(file, "", f"cannot read: {e.strerror or e}")]) from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestError(file, [Problem(
            file, "", f"larger than {MAX_MANIFEST_BYTES // 1024} KiB; a manifest is small")])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ManifestError(file, [Problem(file, "", f"not UTF-8: {e}")]) from None
    try:
        data = parse_yaml(text)
    except yaml.YAMLError as e:
        msg = " ".join(str(e).split())
        raise ManifestError(file, [Problem(file, "", f"invalid YAML: {msg}")]) from None
    return validate_manifest(data, file)



def _schema_problem(schema: Any) -> str | None:
    # jsonschema costs ~35 ms to import: only manifests with a config_schema pay for it
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as e:
        path = "/".join(str(p) for p in e.absolute_path) or "(root)"
        return f"not a valid JSON Schema at {path}: {e.message}"
    return None
