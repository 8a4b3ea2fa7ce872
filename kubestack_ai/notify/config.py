"""The ``notify:`` section of the fleet file."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h|d)?$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def seconds(value: Any) -> float:
    """``90``, ``"90s"``, ``"15m"``, ``"4h"``, ``"1d"`` -> seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    m = _DURATION.match(str(value).strip())
    if not m:
        raise ValueError(f"{value!r} is not a duration (e.g. 90, 90s, 15m, 4h)")
    return float(m.group(1)) * _UNIT[m.group(2)]


class NotifyConfig(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    alertmanager: tuple[str, ...] = ()
    """Alertmanager base URLs; alerts go to ``<url>/api/v2/alerts``."""
    webhook: tuple[str, ...] = ()
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
    """Seconds one HTTP request may take."""
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
    def _urls(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = [v]
        for url in v or ():
            if not str(url).startswith(("http://", "https://")):
                raise ValueError(f"{url!r} is not an http(s) URL")
        return v

    @property
    def enabled(self) -> bool:
        return bool(self.alertmanager or self.webhook)
