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
    if kind == "exec":
        return resolve_exec(ref, env)
    raise SecretError(f"secret reference {ref!r}: unknown kind {kind!r} (use env: or file:)")


def redact(text: str, *secrets: str | None) -> str:
    """Remove every given secret from ``text`` (for driver errors that echo them)."""
    for s in secrets:
        if s:
            text = text.replace(s, "***")
    return text


# -- exec: references (issue 21; docs/isolation.md) -----------------------------------------
#
# ``exec:/path/to/command``: a command (no arguments) under an allowed secret directory
# (/run/secrets, $KSA_HOME/secrets, KSA_SECRET_DIRS), neither group- nor world-writable,
# run by the worker with an empty environment, as Kubernetes runs exec credential
# plugins. It prints a token: an ExecCredential (``{"status": {"token": ...,
# "expirationTimestamp": ...}}``), ``{"token": ..., "expires_at": ...}`` (ISO 8601), or
# the bare token (no expiry: run again at every resolution). A token is kept until
# REFRESH_BEFORE seconds (or a tenth of its lifetime, if shorter) before it expires, then
# the command runs again. The command's output and error text are never shown.

EXEC_TIMEOUT = 10.0
"""Seconds an exec: command may run."""
REFRESH_BEFORE = 60.0
_exec_cache: dict[str, tuple[str, float, float]] = {}
"""ref -> (token, refresh at, expires at): monotonic-free wall clock (time.time())."""


def secret_dirs(environ: Mapping[str, str] | None = None) -> list[str]:
    env = os.environ if environ is None else environ
    home = env.get("KSA_HOME") or os.path.join(os.path.expanduser("~"), ".ksa")
    dirs = ["/run/secrets", os.path.join(home, "secrets")]
    dirs += [d for d in env.get("KSA_SECRET_DIRS", "").split(os.pathsep) if d]
    return [os.path.realpath(d) for d in dirs]


def forget_exec(ref: str) -> None:
    """Drop a cached exec: token (the server refused it: the next resolution runs again)."""
    _exec_cache.pop(ref, None)


def resolve_exec(ref: str, environ: Mapping[str, str] | None = None) -> str:
    import json
    import subprocess
    import time

    now = time.time()
    cached = _exec_cache.get(ref)
    if cached is not None and now < cached[1]:
        return cached[0]
    path = os.path.realpath(ref[len("exec:"):])
    dirs = secret_dirs(environ)
    if not any(path.startswith(d.rstrip("/") + "/") for d in dirs):
        raise SecretError(f"secret reference {ref!r}: the command is not under an allowed "
                          "secret directory (/run/secrets, $KSA_HOME/secrets, KSA_SECRET_DIRS)")
    try:
        st = os.stat(path)
    except OSError as e:
        raise SecretError(f"secret reference {ref!r}: {e.strerror}") from None
    if st.st_mode & 0o022:
        raise SecretError(f"secret reference {ref!r}: the command is writable by its group or "
                          "others; refused (chmod go-w)")
    try:
        p = subprocess.run([path], capture_output=True, timeout=EXEC_TIMEOUT, check=False,
                           env={"PATH": "/usr/bin:/bin"}, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise SecretError(f"secret reference {ref!r}: the command ran past {EXEC_TIMEOUT:g} s"
                          ) from None
    except OSError as e:
        raise SecretError(f"secret reference {ref!r}: cannot run it: {e.strerror}") from None
    if p.returncode != 0:
        raise SecretError(f"secret reference {ref!r}: the command exited with status "
                          f"{p.returncode} (its output is not shown)")
    out = p.stdout.decode(errors="replace").strip()
    token, expires = out, None
    if out.startswith("{"):
        try:
            doc = json.loads(out)
            status = doc.get("status", doc)
            token = status["token"]
            expires = status.get("expirationTimestamp") or status.get("expires_at")
        except (ValueError, KeyError, TypeError, AttributeError):
            raise SecretError(f"secret reference {ref!r}: the command's JSON has no token "
                              "(status.token or token)") from None
    if not isinstance(token, str) or not token:
        raise SecretError(f"secret reference {ref!r}: the command printed no token")
    if expires:
        import datetime as dt

        try:
            at = dt.datetime.fromisoformat(str(expires).replace("Z", "+00:00")).timestamp()
        except ValueError:
            raise SecretError(f"secret reference {ref!r}: expiry {expires!r} is not ISO 8601"
                              ) from None
        margin = min(REFRESH_BEFORE, max(0.0, (at - now) / 10))
        _exec_cache[ref] = (token, at - margin, at)
    return token
