"""Who may read the web view: nobody but this machine unless credentials are set.

``ksa serve`` binds 127.0.0.1 by default. Binding any other address needs a bearer
token or basic-auth credentials, given by reference (``env:NAME`` / ``file:/path``),
checked on every route but ``/metrics``, which has its own optional token (Prometheus
sends it as ``authorization: {credentials_file: ...}``).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from dataclasses import dataclass, field

from kubestack_ai.plugins.errors import SecretError
from kubestack_ai.plugins.secrets import resolve_secret


class WebError(Exception):
    """The web view cannot start as configured; the message says what to change."""


@dataclass(frozen=True)
class WebAuth:
    token: str | None = field(default=None, repr=False)
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    metrics_token: str | None = field(default=None, repr=False)

    @classmethod
    def from_refs(cls, *, token_ref: str | None = None, user: str | None = None,
                  password_ref: str | None = None,
                  metrics_token_ref: str | None = None) -> WebAuth:
        """Resolve the references now; an error names the reference, never a value."""
        if bool(user) != bool(password_ref):
            raise WebError("basic auth needs both a user and a password reference")
        try:
            return cls(token=_ref(token_ref), user=user or None, password=_ref(password_ref),
                       metrics_token=_ref(metrics_token_ref))
        except SecretError as e:
            raise WebError(str(e)) from None

    @property
    def enabled(self) -> bool:
        return bool(self.token or self.user)

    def allows(self, authorization: str | None) -> bool:
        if not self.enabled:
            return True
        scheme, _, cred = (authorization or "").partition(" ")
        if scheme.lower() == "bearer" and self.token:
            return _same(cred.strip(), self.token)
        if scheme.lower() == "basic" and self.user and self.password:
            try:
                user, _, password = base64.b64decode(cred.strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            return _same(user, self.user) & _same(password, self.password)
        return False

    def allows_metrics(self, authorization: str | None) -> bool:
        if not self.metrics_token:
            return True
        scheme, _, cred = (authorization or "").partition(" ")
        return scheme.lower() == "bearer" and _same(cred.strip(), self.metrics_token)

    def check_bind(self, host: str) -> None:
        """Refuse to serve beyond this machine without credentials."""
        if not is_loopback(host) and not self.enabled:
            raise WebError(f"binding {host} serves the fleet beyond this machine: give a token "
                           "(--token-ref env:NAME) or basic-auth credentials (--user NAME "
                           "--password-ref env:NAME), or bind 127.0.0.1")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _ref(ref: str | None) -> str | None:
    if not ref:
        return None
    if not ref.startswith(("env:", "file:")):
        raise WebError("credentials are given by reference (env:NAME or file:/path), "
                       "never the secret itself")
    value = resolve_secret(ref)
    if not value:
        raise WebError(f"secret reference {ref!r} is empty")
    return value


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
