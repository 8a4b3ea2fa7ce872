"""KubeStack AI's plugin framework. No Celery and no database in here."""

from __future__ import annotations

from .base import MiddlewarePlugin, Plugin, Run, category, register_interrupt
from .deadline import Deadline
from .deps import DependencyCycleError, DependencyError
from .discovery import (
    DEFAULT_PLUGIN_DIR,
    ENTRY_POINT_GROUP,
    PLUGIN_PATH_ENV,
    Discovered,
    DiscoveryReport,
    discover_entry_points,
    discover_plugins,
    plugin_dirs,
)
from .errors import (
    ActionRefusedError,
    AuthError,
    ConfigError,
    ConnectError,
    DeadlineExceeded,
    DuplicatePluginError,
    IllegalTransitionError,
    PluginCallError,
    PluginError,
    PluginNotFoundError,
    PluginTimeoutError,
    RegistryError,
    SecretError,
)
from .execution import ActionRecord, ActionResult, ActionSpec, AuditSink
from .external import PluginLoadError
from .hotreload import ReloadError, ReloadReport
from .lifecycle import TRANSITIONS, LifecycleFailure, LifecycleManager
from .loader import builtin_ids, load_builtin, register_builtin
from .manager import PluginManager
from .manifest import Manifest, ManifestError, Problem, load_manifest
from .models import (
    API_VERSION,
    TLS,
    Auth,
    DiagnoseOptions,
    DiagnosticResult,
    Finding,
    MiddlewareTarget,
    Mode,
    PluginConfig,
    PluginInfo,
    PluginState,
    PluginType,
    Severity,
    Snapshot,
    Status,
    Timeouts,
    split_endpoint,
)
from .registry import Registry
from .sandbox import Outcome, Sandbox
from .secrets import resolve_secret

__all__ = [
    "API_VERSION", "TLS", "TRANSITIONS", "ActionRefusedError", "Auth", "AuthError",
    "ConfigError", "ConnectError", "Deadline", "DeadlineExceeded", "DiagnoseOptions",
    "DiagnosticResult", "DuplicatePluginError", "Finding", "IllegalTransitionError",
    "LifecycleFailure", "LifecycleManager", "MiddlewarePlugin", "MiddlewareTarget", "Mode",
    "Outcome", "Plugin", "PluginCallError", "PluginConfig", "PluginError", "PluginInfo",
    "PluginManager", "PluginNotFoundError", "PluginState", "PluginTimeoutError", "PluginType",
    "Registry", "RegistryError", "Run", "Sandbox", "SecretError", "Severity", "Snapshot",
    "Status", "Timeouts", "builtin_ids", "category", "load_builtin", "register_builtin",
    "register_interrupt", "resolve_secret", "split_endpoint",
    # external plugins
    "DEFAULT_PLUGIN_DIR", "ENTRY_POINT_GROUP", "PLUGIN_PATH_ENV", "DependencyCycleError",
    "DependencyError", "Discovered", "DiscoveryReport", "Manifest", "ManifestError",
    "PluginLoadError", "Problem", "ReloadError", "ReloadReport", "discover_entry_points",
    "discover_plugins", "load_manifest", "plugin_dirs",
    # actions
    "ActionRecord", "ActionResult", "ActionSpec", "AuditSink",
]
