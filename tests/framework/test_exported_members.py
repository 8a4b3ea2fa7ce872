"""The framework's public surface, locked: a change here is a change for plugin authors."""

from kubestack_ai import plugins

EXPECTED = {
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
    # actions (plugins/execution.py)
    "ActionRecord", "ActionResult", "ActionSpec", "AuditSink",
}


def test_public_api_is_exactly_the_expected_set():
    assert set(plugins.__all__) == EXPECTED
    assert len(plugins.__all__) == len(EXPECTED)
    for name in plugins.__all__:
        assert hasattr(plugins, name), name


def test_every_error_is_rooted_in_plugin_error():
    errors = [getattr(plugins, n) for n in plugins.__all__
              if isinstance(getattr(plugins, n), type) and issubclass(getattr(plugins, n), Exception)]
    assert errors and all(issubclass(e, plugins.PluginError) for e in errors)
