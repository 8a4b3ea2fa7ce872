"""Every error the framework and the builtin plugins raise: one tree, one root.

    PluginError
    ├── RegistryError
    │   ├── DuplicatePluginError        a plugin id registered twice
    │   └── PluginNotFoundError         an unknown plugin id or middleware type
    ├── IllegalTransitionError          a lifecycle move the state machine forbids
    ├── ConfigError                     a config or target that fails validation
    │   └── SecretError                 a secret reference that cannot be resolved
    ├── PluginCallError                 plugin code raised; names plugin and operation
    │   └── PluginTimeoutError          plugin code overran its deadline
    ├── ActionRefusedError              an action not declared or not allowed
    ├── ConnectError                    the middleware cannot be reached
    │   └── AuthError                   the middleware refused the credentials
    ├── DeadlineExceeded                the caller's deadline passed (cooperative)
    ├── InvalidPluginError              a plugin cannot be used; carries every Problem
    │   ├── ManifestError               its manifest is invalid (or missing, or unsafe YAML)
    │   ├── PluginLoadError             its code cannot be imported, built, or is no plugin
    │   └── UnsafePluginError           others could change its code (permissions, owner, links)
    ├── DependencyError                 a ``requires`` that cannot be met
    │   └── DependencyCycleError        plugins that require each other
    ├── ReloadError                     a hot reload or rollback failed; the old version serves
    ├── PluginIndexError                a plugin index, or what it lists, refused (plugins/index/)
    │   ├── IndexTrustError             unsigned, unknown key, bad signature, expired, replayed
    │   ├── ArtifactError               an artifact whose hash, files or manifest do not match
    │   ├── ScanMismatchError           the scan recomputed at install differs from the index's
    │   └── ResolveError                requires that cannot be met from the index (cycle, range)
    ├── IsolationRefused                isolation: a plugin may not run so here (isolation/policy.py)
    ├── PrepareError                    mysql: the server's status or variables unreadable
    ├── NotPrepared                     mysql: a check ran though prepare() read nothing
    ├── ServerUnreadable                postgres: identity, settings or counters unreadable
    ├── ActionError                     kafka: an allowed action that cannot be done
    └── RequestFailed                   kafka: one request of a batch to one broker failed

The builtins' errors live in their packages (``mysql/plugin.py``, ``mysql/checks/common.py``,
``kafka/actions.py``, ``kafka/wire.py``, ``postgres/checks/common.py``); the rest are
here. A test compares this drawing with the classes (tests/framework/test_errors.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class PluginError(Exception):
    """Root of every error the framework raises."""


class RegistryError(PluginError):
    pass


class DuplicatePluginError(RegistryError):
    pass


class PluginNotFoundError(RegistryError):
    pass


class IllegalTransitionError(PluginError):
    def __init__(self, plugin_id: str, current: object, target: object) -> None:
        self.plugin_id = plugin_id
        self.current = current
        self.target = target
        super().__init__(
            f"plugin {plugin_id!r}: illegal transition {_name(current)} -> {_name(target)}"
        )


class ConfigError(PluginError):
    pass


class SecretError(ConfigError):
    pass


class PluginCallError(PluginError):
    """Plugin code failed. Carries the plugin id, the operation and the cause's text."""

    def __init__(self, plugin_id: str, operation: str, message: str, kind: str = "exception") -> None:
        self.plugin_id = plugin_id
        self.operation = operation
        self.kind = kind
        self.detail = message
        super().__init__(f"plugin {plugin_id!r} {operation}: {message}")


class PluginTimeoutError(PluginCallError):
    def __init__(self, plugin_id: str, operation: str, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(plugin_id, operation, f"timed out after {timeout:g}s", kind="timeout")


class ActionRefusedError(PluginError):
    def __init__(self, plugin_id: str, action: str, reason: str) -> None:
        self.plugin_id = plugin_id
        self.action = action
        self.reason = reason
        super().__init__(f"plugin {plugin_id!r}: action {action!r} refused: {reason}")


class ConnectError(PluginError):
    """The middleware could not be reached. The message must never hold a secret.
    ``title``, when given, is what the framework's finding says instead of "Cannot
    connect" (a server that accepted and then stayed silent was reached); ``kind`` names
    the cause in the finding's code (``<type>.connection.<kind>``, default
    ``unreachable``: ``maxclients_reached``, ``not_redis``...) and ``hint`` replaces the
    default suggestion ("Check that the server runs...") when the cause is known."""

    def __init__(self, message: str = "", title: str | None = None, *, kind: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message)
        self.title = title
        self.kind = kind
        self.hint = hint


class AuthError(ConnectError):
    """The middleware refused the credentials."""


class DeadlineExceeded(PluginError):
    pass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a plugin: where (file, field) and what."""

    file: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.field}" if self.field else self.file
        return f"{where}: {self.message}"


class InvalidPluginError(PluginError):
    """A plugin cannot be used; carries every problem found, each with file and field."""

    def __init__(self, file: str | Path, problems: list[Problem], plugin_id: str = "") -> None:
        self.file = str(file)
        self.problems = problems
        self.plugin_id = plugin_id
        who = f"plugin {plugin_id!r} " if plugin_id else ""
        detail = "; ".join(f"{p.field + ': ' if p.field else ''}{p.message}" for p in problems)
        super().__init__(f"{who}({self.file}): {detail}")


class ManifestError(InvalidPluginError):
    """A manifest is invalid (fields, YAML, size), or missing where one is required."""


class PluginLoadError(InvalidPluginError):
    """The plugin's code could not be imported or built, or is not the plugin its
    manifest describes (not a kind of manifest error: the manifest may be fine)."""


class UnsafePluginError(InvalidPluginError):
    """A plugin folder or file that another user could change (group- or world-writable,
    owned by someone else than us or root), or a link out of the plugin's folder: its
    code is not run (plugins/trust.py)."""


class DependencyError(PluginError):
    """A plugin's ``requires`` cannot be satisfied."""

    def __init__(self, plugin_id: str, location: str, message: str) -> None:
        self.plugin_id = plugin_id
        self.location = location
        super().__init__(f"plugin {plugin_id!r} ({location}): {message}")


class DependencyCycleError(DependencyError):
    def __init__(self, plugin_id: str, location: str, cycle: Sequence[str]) -> None:
        self.cycle = tuple(cycle)
        super().__init__(plugin_id, location,
                         "dependency cycle: " + " -> ".join(cycle) + " (refused)")


class PluginIndexError(PluginError):
    """A plugin index, an artifact or an install plan refused; nothing was installed."""


class IndexTrustError(PluginIndexError):
    pass


class ArtifactError(PluginIndexError):
    pass


class ScanMismatchError(PluginIndexError):
    pass


class ResolveError(PluginIndexError):
    pass


class ReloadError(PluginError):
    """A reload or rollback failed; the version that was serving still serves."""

    def __init__(self, plugin_id: str, stage: str, message: str, location: str = "",
                 serving: str = "") -> None:
        self.plugin_id = plugin_id
        self.stage = stage
        self.location = location
        where = f" ({location})" if location else ""
        keeps = f"; version {serving} keeps serving" if serving else ""
        super().__init__(f"plugin {plugin_id!r}{where}: {stage} failed: {message}{keeps}")


def _name(state: object) -> str:
    return str(getattr(state, "value", state))
