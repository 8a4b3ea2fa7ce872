"""The ``notify:`` section of the fleet file, and its receivers."""

from __future__ import annotations

import base64
import re
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kubestack_ai.plugins.models import _check_ref
from kubestack_ai.plugins.secrets import resolve_secret

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d)?$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
_FROZEN = ConfigDict(frozen=True, extra="forbid")


def seconds(value: Any) -> float:
    """``90``, ``"90s"``, ``"15m"``, ``"4h"``, ``"1d"`` -> seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    m = _DURATION.match(str(value).strip())
    if not m:
        raise ValueError(f"{value!r} is not a duration (e.g. 90, 90s, 15m, 4h)")
    return float(m.group(1)) * _UNIT[m.group(2)]


def origin(url: str) -> str:
    """``scheme://host[:port]`` of ``url``: how logs and pages name a receiver. Never the
    credentials (``user:password@``) nor the path (Slack-style webhook URLs carry their
    secret in the path)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}" if parts.netloc else "(receiver)"


class BasicAuth(BaseModel):
    model_config = _FROZEN

    username: str
    password: str
    """A secret reference: ``env:NAME`` or ``file:/path``."""

    @field_validator("password")
    @classmethod
    def _password_is_ref(cls, v: str) -> str:
        _check_ref(v, "basic_auth.password")
        return v


class Receiver(BaseModel):
    """One place notifications go: a URL, and credentials by reference. A bare URL in the
    fleet file is a receiver without credentials."""

    model_config = _FROZEN

    url: str
    basic_auth: BasicAuth | None = None
    bearer_token: str | None = None
    """A secret reference: ``env:NAME`` or ``file:/path``."""

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")) or not urlsplit(v).hostname:
            raise ValueError(f"{origin(v) if '@' in v else repr(v)} is not an http(s) URL")
        if "@" in urlsplit(v).netloc:
            # they would be logged and never sent (urllib ignores them); references only
            raise ValueError(f"credentials in a receiver URL are not accepted ({origin(v)}): "
                             "give basic_auth: {username, password: env:NAME} or "
                             "bearer_token: env:NAME")
        return v

    @field_validator("bearer_token")
    @classmethod
    def _token_is_ref(cls, v: str | None) -> str | None:
        return _check_ref(v, "bearer_token")

    @model_validator(mode="after")
    def _one_kind_of_auth(self) -> Receiver:
        if self.basic_auth is not None and self.bearer_token is not None:
            raise ValueError("give basic_auth or bearer_token, not both")
        return self

    @property
    def shown(self) -> str:
        return origin(self.url)

    def auth_header(self) -> str | None:
        """The Authorization header, its references resolved now (a rotated secret is
        picked up by the next send). Raises SecretError, which names the reference only."""
        if self.bearer_token is not None:
            return f"Bearer {resolve_secret(self.bearer_token)}"
        if self.basic_auth is not None:
            pw = resolve_secret(self.basic_auth.password) or ""
            pair = f"{self.basic_auth.username}:{pw}".encode()
            return f"Basic {base64.b64encode(pair).decode()}"
        return None


class NotifyConfig(BaseModel):
    model_config = _FROZEN

    alertmanager: tuple[Receiver, ...] = ()
    """Alertmanager base URLs; alerts go to ``<url>/api/v2/alerts``."""
    webhook: tuple[Receiver, ...] = ()
    """URLs that get a JSON POST on every status transition (and on repeat)."""
    min_severity: Literal["warning", "critical"] = "warning"
    repeat: float = Field(4 * 3600.0, gt=0)
    """Seconds between webhook reminders while a target stays in trouble."""
    resend: float = Field(60.0, gt=0)
    """Seconds between re-sends to Alertmanager while an alert lasts; each alert says it
    ends 3 resends later, well inside Alertmanager's resolve_timeout (5 m by default)."""
    poll: float = Field(5.0, gt=0)
    """Seconds between reads of the latest results."""
    timeout: float = Field(5.0, gt=0)
    """Seconds one send may take in all (connect, redirects, the whole answer)."""
    retries: int = Field(3, ge=0)
    """Webhook retries after a failure, with back-off 1 s, 2 s, 4 s, ..."""
    web_url: str | None = None
    """The web view's address, for links in alerts and webhooks."""

    @field_validator("repeat", "resend", "poll", "timeout", mode="before")
    @classmethod
    def _duration(cls, v: Any) -> float:
        return seconds(v)

    @field_validator("alertmanager", "webhook", mode="before")
    @classmethod
    def _receivers(cls, v: Any) -> Any:
        if isinstance(v, str | Receiver):
            v = [v]
        return [{"url": r} if isinstance(r, str) else r for r in v or ()]

    @property
    def enabled(self) -> bool:
        return bool(self.alertmanager or self.webhook)
