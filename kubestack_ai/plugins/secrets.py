"""Secret references (``env:NAME``, ``file:/path``), resolved where they are used, and only
where the operator allowed.

A resolved secret lives only in the plugin's client; it is never logged, stored or
put in an error message. Errors name the reference and the rule, never the value.

Whoever can queue a task or edit a fleet file chooses the references; so a reference
resolves only inside what the operator of the resolving process allowed
(:class:`SecretPolicy`, read from its environment), in this order:

1. ``file:PATH``: the path, with every symlink resolved (``realpath``), lies under an
   allowed secret directory: ``/run/secrets``, ``$KSA_HOME/secrets`` (``KSA_HOME``
   defaults to ``~/.ksa``), and each directory of ``KSA_SECRET_DIRS`` (``os.pathsep``
   separated). A secret file that its group or others can read is warned about once per
   file and process (as ssh warns of an unprotected key), and still read.
2. ``env:NAME``: the name matches an allowed pattern (:data:`DEFAULT_SECRET_ENV`, plus
   the comma-separated ``fnmatch`` patterns of ``KSA_SECRET_ENV``; case-sensitive). The
   default never matches the process's own settings (``KSA_DATABASE_URL``,
   ``KSA_BROKER_URL`` may hold passwords), nor ``HOME``, ``PATH``...

A reference outside these is refused with a :class:`SecretError` naming the rule and the
variable to set, before anything is read, and before any connection: the framework
checks every reference of a target (:func:`check_target_references`) before a plugin's
``connect``. Prior art: Datadog's secrets backend restricts what its helper may read.

A secret-looking field (:func:`is_secret_field`) holds a reference, never the secret;
``plugins/redaction.py`` hides the secrets typed there anyway.
"""

from __future__ import annotations

import os
import re
import stat
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from .errors import SecretError
from .logcontext import get_logger

log = get_logger(__name__)

SECRET_REF = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]*|file:/.+|exec:/.+)$")
SECRET_FIELD = re.compile(
    r"pass(word|wd|phrase)?|secret|tokens?$|api_?key|credential|private_?key|_ref$|"
    r"masterauth|jaas",
    re.IGNORECASE)
"""The one definition of a secret-looking name: fields whose values must be references
(``sentinel_password_ref``, ``api_key``, ...), and the keys (and ``config_set``-like
setting names: ``requirepass``, ``masterauth``, ``sasl.jaas.config``) whose values are
redacted wherever they are shown (``plugins/redaction.py``)."""

ENV_DIRS = "KSA_SECRET_DIRS"
ENV_NAMES = "KSA_SECRET_ENV"
DEFAULT_SECRET_DIRS = ("/run/secrets",)
"""Besides ``$KSA_HOME/secrets``."""
DEFAULT_SECRET_ENV = ("*PASSWORD", "*PASSWD", "*_PWD", "*_PW", "*_TOKEN", "*_SECRET", "*_API_KEY")
"""Names of environment variables an ``env:`` reference may read without configuration."""

_warned: set[str] = set()
_policies: dict[tuple[str | None, ...], SecretPolicy] = {}
"""SecretPolicy.from_env's, by the values of the variables it reads."""
_warned_lock = threading.Lock()


def is_secret_field(name: object) -> bool:
    return isinstance(name, str) and SECRET_FIELD.search(name) is not None


@dataclass(frozen=True)
class SecretPolicy:
    """Where references may point: directories (real paths) and environment name patterns."""

    dirs: tuple[str, ...]
    env_patterns: tuple[str, ...]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SecretPolicy:
        """The policy the environment sets: read afresh whenever one of the variables it
        depends on changes (built once per set of their values: the directories'
        ``realpath`` costs a ``lstat`` per path component, and every connect checks)."""
        env = os.environ if environ is None else environ
        key = (env.get("KSA_HOME"), env.get(ENV_DIRS), env.get(ENV_NAMES),
               os.environ.get("HOME"))  # Path.home() reads the process's HOME
        policy = _policies.get(key)
        if policy is None:
            home = Path(env.get("KSA_HOME") or Path.home() / ".ksa").expanduser()
            extra = [d for d in env.get(ENV_DIRS, "").split(os.pathsep) if d.strip()]
            dirs = [*DEFAULT_SECRET_DIRS, str(home / "secrets"), *extra]
            names = [p.strip() for p in env.get(ENV_NAMES, "").split(",") if p.strip()]
            policy = cls(dirs=tuple(dict.fromkeys(os.path.realpath(d) for d in dirs)),
                         env_patterns=tuple(dict.fromkeys([*DEFAULT_SECRET_ENV, *names])))
            if len(_policies) >= 64:
                _policies.clear()
            _policies[key] = policy
        return policy

    def check(self, ref: str) -> None:
        """Raise SecretError if ``ref`` may not be resolved here (nothing is read)."""
        kind, where = _parse(ref)
        if kind == "env":
            if not any(fnmatchcase(where, p) for p in self.env_patterns):
                raise SecretError(
                    f"{ref} refused: {where} matches no allowed secret name pattern "
                    f"({', '.join(self.env_patterns)}); add a pattern to {ENV_NAMES} "
                    f"(comma-separated, e.g. {ENV_NAMES}={where})")
            return
        if self.allowed_path(where) is None:
            raise SecretError(
                f"{ref} refused: not under an allowed secret directory "
                f"({', '.join(self.dirs)}) once symlinks are resolved; add its directory "
                f"to {ENV_DIRS} ({os.pathsep}-separated)")

    def allowed_path(self, path: str) -> str | None:
        """The real path of ``path`` when it lies under an allowed directory, else None."""
        real = os.path.realpath(path)
        for d in self.dirs:
            if real != d and os.path.commonpath([real, d]) == d:
                return real
        return None


def _parse(ref: str) -> tuple[str, str]:
    if not isinstance(ref, str) or not SECRET_REF.match(ref):
        # it may be the secret itself, typed where its reference belongs: never echoed
        raise SecretError("not a secret reference (use env:NAME, file:/absolute/path or "
                          "exec:/absolute/path); "
                          "the value is not shown")
    kind, _, where = ref.partition(":")
    return kind, where


def check_reference(ref: str | None, environ: Mapping[str, str] | None = None) -> None:
    """Raise SecretError if ``ref`` is no reference or one the policy refuses."""
    if ref is not None:
        SecretPolicy.from_env(environ).check(ref)


def target_references(target: Any) -> Iterator[tuple[str, str]]:
    """(field, reference) of every secret reference a target holds: ``auth.password``,
    ``tls.key_password`` and every secret-looking option, nested in dicts and lists."""
    auth, tls = getattr(target, "auth", None), getattr(target, "tls", None)
    if auth is not None and auth.password is not None:
        yield "auth.password", auth.password
    if tls is not None and tls.key_password is not None:
        yield "tls.key_password", tls.key_password
    yield from _option_refs(getattr(target, "options", None) or {}, "options", False)


def _option_refs(value: Any, where: str, secret: bool) -> Iterator[tuple[str, str]]:
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _option_refs(v, f"{where}.{k}", secret or is_secret_field(k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _option_refs(v, f"{where}[{i}]", secret)
    elif secret and isinstance(value, str):
        yield where, value


def check_target_references(target: Any, environ: Mapping[str, str] | None = None) -> None:
    """Every reference of ``target`` allowed, or a SecretError naming the field and the
    rule (the framework calls it before a plugin connects)."""
    policy: SecretPolicy | None = None  # most targets hold no reference: none built
    for field, ref in target_references(target):
        if policy is None:
            policy = SecretPolicy.from_env(environ)
        try:
            policy.check(ref)
        except SecretError as e:
            raise SecretError(f"{field}: {e}") from None


def resolve_secret(ref: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    if ref is None:
        return None
    env = os.environ if environ is None else environ
    policy = SecretPolicy.from_env(env)
    policy.check(ref)
    kind, where = _parse(ref)
    if kind == "env":
        if where not in env:
            raise SecretError(f"secret reference {ref!r}: environment variable {where} is not set")
        return env[where]
    if kind == "exec":
        return resolve_exec(ref, env)
    real = policy.allowed_path(where)
    assert real is not None  # checked above
    try:
        # the real path, not followed again: a link swapped in since is not read
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        with open(fd, encoding="utf-8") as fh:
            _warn_if_exposed(where, os.fstat(fh.fileno()))
            return fh.read().rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as e:
        why = e.strerror if isinstance(e, OSError) else "not UTF-8 text"
        raise SecretError(f"secret reference {ref!r}: cannot read {where}: {why}") from None


def _warn_if_exposed(path: str, st: os.stat_result) -> None:
    """Once per file and process: a secret its group or others can read (ssh refuses a
    key so exposed; a shared secret volume may need it, so this only warns)."""
    mode = stat.S_IMODE(st.st_mode)
    if not mode & 0o044:
        return
    with _warned_lock:
        if path in _warned:
            return
        _warned.add(path)
    log.warning("secret file %s is readable by %s (mode %04o): chmod go-r %s", path,
                "group and others" if mode & 0o044 == 0o044 else
                ("others" if mode & 0o004 else "its group"), mode, path)


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
    SecretPolicy.from_env(environ).check(ref)  # under an allowed secret directory
    path = os.path.realpath(ref[len("exec:"):])
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
