"""KubeStack AI's plugin framework. No Celery and no database in here.

The modules, one job each (the seed's components first)::

    manager.py       PluginManager: the facade the CLI, workers and tests call; owns
                     the five below and runs diagnose / health_check / execute
    registry.py      Registry: every loaded plugin, its config and state, by id and type
    lifecycle.py     LifecycleManager: init/start/stop/reload, scheduled health checks
    states.py          the legal state transitions
    sandbox.py       Sandbox: deadlines, exception capture, the action whitelist
    loader.py        Loader: builtins and external plugins into the registry
    builtins.py        the builtin factory registry (register_builtin, load_builtin)
    catalogue.py       the builtins as listed, plain data (``ksa plugin list``)
    discovery.py       finding external plugins: folders, KSA_PLUGIN_PATH, entry points
    manifest.py        reading a plugin.yaml safely
    importer.py        importing a plugin's code fresh under its own module names
    deps.py            ``requires``: version ranges and load order
    configschema.py    a manifest's config_schema applied to the config
    reloader.py      Reloader: hot reload and rollback of a plugin's code
    validate.py      ``ksa plugin validate``: every problem of a plugin folder at once

    base.py          the plugin contract: Plugin, MiddlewarePlugin, Run, @category
    models.py        the data contract: PluginInfo, MiddlewareTarget, Finding, results...
    errors.py        one error tree rooted in PluginError (drawn in its docstring)
    deadline.py      Deadline: a deadline with cancellation, passed to every call
    logcontext.py    plugin id and target key on every log line about a run
    secrets.py       secret references (env:, file:) resolved where used and allowed
                     (KSA_SECRET_DIRS, KSA_SECRET_ENV); what a secret-looking name is
    redaction.py     the one redaction: task reprs, log records, the audit log
    pyutil.py        names imported on first use; the GC paused for big batches

    redis/ kafka/ mysql/ tcp/    the builtin plugins: plugin.py, checks/, constants.py
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .pyutil import lazy_exports

if TYPE_CHECKING:
    from .base import MiddlewarePlugin, Plugin, Run, category, register_interrupt
    from .builtins import builtin_ids, load_builtin, register_builtin
    from .deadline import Deadline
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
        DependencyCycleError,
        DependencyError,
        DuplicatePluginError,
        IllegalTransitionError,
        InvalidPluginError,
        ManifestError,
        PluginCallError,
        PluginError,
        PluginLoadError,
        PluginNotFoundError,
        PluginTimeoutError,
        Problem,
        RegistryError,
        ReloadError,
        SecretError,
        UnsafePluginError,
    )
    from .execution import ActionRecord, ActionResult, ActionSpec, AuditSink
    from .lifecycle import TRANSITIONS, LifecycleFailure, LifecycleManager
    from .logcontext import LogContextFilter, get_logger, log_context
    from .manager import PluginManager
    from .manifest import Manifest, load_manifest
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
    from .reloader import ReloadReport
    from .sandbox import Outcome, Sandbox
    from .secrets import resolve_secret

# Each name is imported from its module on first use (PEP 562), so that importing one
# light module of the framework (the builtin catalogue, discovery's file scan, the log
# context) does not import pydantic and the models: ``ksa plugin list`` start-up.
_WHERE: dict[str, str] = {
    'MiddlewarePlugin': 'base',
    'Plugin': 'base',
    'Run': 'base',
    'category': 'base',
    'register_interrupt': 'base',
    'builtin_ids': 'builtins',
    'load_builtin': 'builtins',
    'register_builtin': 'builtins',
    'Deadline': 'deadline',
    'DEFAULT_PLUGIN_DIR': 'discovery',
    'ENTRY_POINT_GROUP': 'discovery',
    'PLUGIN_PATH_ENV': 'discovery',
    'Discovered': 'discovery',
    'DiscoveryReport': 'discovery',
    'discover_entry_points': 'discovery',
    'discover_plugins': 'discovery',
    'plugin_dirs': 'discovery',
    'ActionRefusedError': 'errors',
    'AuthError': 'errors',
    'ConfigError': 'errors',
    'ConnectError': 'errors',
    'DeadlineExceeded': 'errors',
    'DependencyCycleError': 'errors',
    'DependencyError': 'errors',
    'DuplicatePluginError': 'errors',
    'IllegalTransitionError': 'errors',
    'InvalidPluginError': 'errors',
    'ManifestError': 'errors',
    'PluginCallError': 'errors',
    'PluginError': 'errors',
    'PluginLoadError': 'errors',
    'PluginNotFoundError': 'errors',
    'PluginTimeoutError': 'errors',
    'Problem': 'errors',
    'RegistryError': 'errors',
    'ReloadError': 'errors',
    'SecretError': 'errors',
    'UnsafePluginError': 'errors',
    'ActionRecord': 'execution',
    'ActionResult': 'execution',
    'ActionSpec': 'execution',
    'AuditSink': 'execution',
    'TRANSITIONS': 'lifecycle',
    'LifecycleFailure': 'lifecycle',
    'LifecycleManager': 'lifecycle',
    'LogContextFilter': 'logcontext',
    'get_logger': 'logcontext',
    'log_context': 'logcontext',
    'PluginManager': 'manager',
    'Manifest': 'manifest',
    'load_manifest': 'manifest',
    'API_VERSION': 'models',
    'TLS': 'models',
    'Auth': 'models',
    'DiagnoseOptions': 'models',
    'DiagnosticResult': 'models',
    'Finding': 'models',
    'MiddlewareTarget': 'models',
    'Mode': 'models',
    'PluginConfig': 'models',
    'PluginInfo': 'models',
    'PluginState': 'models',
    'PluginType': 'models',
    'Severity': 'models',
    'Snapshot': 'models',
    'Status': 'models',
    'Timeouts': 'models',
    'split_endpoint': 'models',
    'Registry': 'registry',
    'ReloadReport': 'reloader',
    'Outcome': 'sandbox',
    'Sandbox': 'sandbox',
    'resolve_secret': 'secrets',
}



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
    # log context
    "LogContextFilter", "get_logger", "log_context",
    # external plugins
    "DEFAULT_PLUGIN_DIR", "ENTRY_POINT_GROUP", "PLUGIN_PATH_ENV", "DependencyCycleError",
    "DependencyError", "Discovered", "DiscoveryReport", "InvalidPluginError", "Manifest",
    "ManifestError", "PluginLoadError", "Problem", "ReloadError", "ReloadReport",
    "UnsafePluginError", "discover_entry_points", "discover_plugins", "load_manifest", "plugin_dirs",
    # actions
    "ActionRecord", "ActionResult", "ActionSpec", "AuditSink",
]

__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals(), __all__)
