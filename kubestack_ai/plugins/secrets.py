"""Secret references (``env:NAME``, ``file:/path``), resolved where they are used.

A resolved secret lives only in the plugin's client; it is never logged, stored or
put in an error message. Errors name the reference, never the value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from .errors import SecretError
from .models import SECRET_REF


def resolve_secret(ref: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    if ref is None:
        return None
    env = os.environ if environ is None else environ
    if not SECRET_REF.match(ref):
        # it may be the secret itself, typed where its reference belongs: never echoed
        raise SecretError("not a secret reference (use env:NAME or file:/absolute/path); "
                          "the value is not shown")
    kind, _, where = ref.partition(":")
    if kind == "env":
        if where not in env:
            raise SecretError(f"secret reference {ref!r}: environment variable {where} is not set")
        return env[where]
    if kind == "file":
        try:
            with open(where, encoding="utf-8") as fh:
                return fh.read().rstrip("\r\n")
        except OSError as e:
            raise SecretError(f"secret reference {ref!r}: cannot read {where}: {e.strerror}") from None
    raise SecretError(f"secret reference {ref!r}: unknown kind {kind!r} (use env: or file:)")


def redact(text: str, *secrets: str | None) -> str:
    """Remove every given secret from ``text`` (for driver errors that echo them)."""
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text
