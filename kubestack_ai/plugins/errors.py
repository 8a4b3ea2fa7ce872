"""Errors of the plugin framework.

    PluginError
    ├── RegistryError
    │   ├── DuplicatePluginError        a plugin id registered twice
    │   └── PluginNotFoundError         an unknown plugin id or middleware type
    ├── IllegalTransitionError          a lifecycle move the state machine forbids
    ├── ConfigError                     a config or target that fails validation
    ├── SecretError                     a secret reference that cannot be resolved
    ├── PluginCallError                 plugin code raised; names plugin and operation
    │   └── PluginTimeoutError          plugin code overran its deadline
    ├── ActionRefusedError              an action not declared or not allowed
    ├── ConnectError                    the middleware cannot be reached
    │   └── AuthError                   the middleware refused the credentials
    └── DeadlineExceeded                the caller's deadline passed (cooperative)
"""

from __future__ import annotations


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
    """The middleware could not be reached. The message must never hold a secret."""


class AuthError(ConnectError):
    """The middleware refused the credentials."""


class DeadlineExceeded(PluginError):
    pass


def _name(state: object) -> str:
    return str(getattr(state, "value", state))
